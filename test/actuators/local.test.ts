import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LocalActuator } from '../../src/actuators/local.js';
import { createActuator } from '../../src/actuators/registry.js';
import type { LocalSupervisor } from '../../src/actuators/types.js';
import { TideError, isTideError } from '../../src/errors.js';
import { type ServiceSpec, Supervisor } from '../../src/supervisor/supervisor.js';
import { actuatorConformance, why } from './conformance.js';

// A replica that idles until told to stop.
const IDLE = 'process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 60_000);';

function workerSpec(extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return { name: 'worker', kind: 'command', command: { file: process.execPath, args: ['-e', IDLE] }, replicas: 0, stopGraceMs: 1_000, ...extra };
}

async function realSupervisor(extra: Partial<ServiceSpec> = {}) {
  const supervisor = new Supervisor({ services: [workerSpec(extra)] });
  await supervisor.start();
  return supervisor;
}

actuatorConformance('local (real supervisor, one injected refusal)', async () => {
  const supervisor = await realSupervisor();
  let calls = 0;
  let failNext = false;
  // The real supervisor, counted; failNextCall makes its next scale refuse the way it does
  // when a new replica does not come up (a real one takes a health-check timeout to show).
  const counted: LocalSupervisor = {
    scale(service, replicas, options) {
      calls++;
      if (failNext) {
        failNext = false;
        return Promise.reject(new TideError('TIDE_SUPERVISOR_REPLICA_UNHEALTHY', 'injected: a new replica did not become healthy'));
      }
      return supervisor.scale(service, replicas, options);
    },
    ps() {
      calls++;
      return supervisor.ps();
    },
  };
  const actuator = new LocalActuator(counted);
  return {
    actuator,
    service: 'worker',
    missingService: 'nope',
    platformCalls: async () => calls,
    failNextCall: async () => void (failNext = true),
    async close() {
      await actuator.close();
      await supervisor.shutdown();
    },
  };
});

test('local (real supervisor): replicas are real processes, the scale is marked as the autoscaler\'s, and the supervisor\'s refusals are coded', async () => {
  const supervisor = await realSupervisor({ max: 3 });
  try {
    const actuator = createActuator({ kind: 'local' }, { supervisor });
    await actuator.scale('worker', 2, why(2));
    const ps = supervisor.ps();
    assert.equal(ps.replicas.filter((r) => r.state === 'healthy' && r.pid !== null).length, 2);
    assert.equal(ps.services[0]?.scaledBy, 'autoscaler');
    assert.deepEqual(await actuator.observe('worker'), { desired: 2, ready: 2 });
    await assert.rejects(actuator.scale('worker', 4, why(4)), (err) => {
      assert.ok(isTideError(err));
      assert.equal(err.code, 'TIDE_ACTUATOR_FAILED');
      assert.deepEqual(err.details, { service: 'worker', supervisorCode: 'TIDE_SUPERVISOR_SCALE_INVALID' });
      return true;
    });
    assert.equal((await actuator.observe('worker')).desired, 2);
  } finally {
    await supervisor.shutdown();
  }
});

test('local: the registry refuses the local kind without a supervisor', () => {
  assert.throws(() => createActuator({ kind: 'local' }), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_CONFIG' && err.where?.field === 'actuator.kind');
  assert.throws(() => createActuator({ kind: 'local', replicas: 2 }), (err) => isTideError(err) && err.where?.field === 'actuator.replicas');
});
