/**
 * The autoscaler inside `tide up` (startSystem, real worker processes, real PostgreSQL), seen
 * through the commands a person types: a `process` source named in a service's `sources:`
 * measures that service's replicas, and a manual `tide scale` pauses the autoscaler at once
 * (`tide ps --json` says until when) and for the whole pause, though it would scale back in.
 *
 * The policy is chosen so the autoscaler always wants one replica: idle workers use a few
 * percent of a core against a 90% target, with no scale-down window. Everything waits on the
 * controller's 'decision' events, never on wall time.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { parseConfig } from '../../src/config/load.js';
import type { ServiceControlStatus } from '../../src/controller/controller.js';
import { decisionWhere } from '../../src/controller/events.js';
import type { PsResult } from '../../src/supervisor/supervisor.js';
import { startSystem } from '../../src/app/system.js';
import { freshSchema } from '../helpers/db.js';

const run = promisify(execFile);
const bin = new URL('../../bin/tide.js', import.meta.url).pathname;

test('tide up: a process source measures its service, and a manual tide scale pauses the autoscaler at once and for the whole pause', { timeout: 90_000 }, async () => {
  const db = await freshSchema('supauto');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-supauto-'));
  const config = parseConfig(
    [
      'project: supauto',
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      'balancer: { port: 0 }',
      'control: { port: 0 }',
      'autoscale: { interval_seconds: 0.3, manual_pause_seconds: 60 }',
      'services:',
      '  worker:',
      '    kind: worker',
      '    replicas: 1',
      '    max: 3',
      '    queues: [jobs]',
      '    stop_grace_seconds: 2',
      '    sources: { cpu: { kind: process } }',
      '    scale:',
      '      policies: [{ kind: target, metric: cpu_utilization, type: utilization, target: 0.9 }]',
      '      behavior: { scaleDown: { stabilizationWindowSeconds: 0 } }',
    ].join('\n'),
    path.join(dir, 'tide.yaml'),
  );
  const system = await startSystem(config, { configDir: dir, log: () => {} });
  const controller = system.autoscaler!.controller;
  const cli = async (...args: string[]) => (await run(process.execPath, [bin, ...args, '--state-dir', system.stateDir], { cwd: dir, env: process.env })).stdout;
  try {
    // the process source got the supervisor's pids: CPU needs two reads of the same process
    const measured = await decisionWhere(controller, (r) => r.metrics.cpu_utilization !== undefined);
    assert.deepEqual(measured.errors, [], 'the process source builds and reads inside tide up');
    assert.ok(measured.metrics.memory_rss_bytes! > 1e6, `the worker's resident memory: ${JSON.stringify(measured.metrics)}`);
    assert.equal(measured.desired, 1, 'an idle worker is far under the 90% target');

    const before = Date.now();
    await cli('scale', 'worker=2');
    const ps = JSON.parse(await cli('ps', '--json')) as PsResult & { autoscaler: ServiceControlStatus[] };
    const worker = ps.services.find((s) => s.name === 'worker')!;
    assert.equal(worker.desired, 2);
    assert.equal(worker.scaledBy, 'manual');
    assert.ok(worker.pausedUntil !== null && worker.pausedUntil >= before + 59_000, `pausedUntil right after tide scale: ${JSON.stringify(worker)}`);
    assert.equal(ps.autoscaler.find((s) => s.service === 'worker')?.pausedUntil, worker.pausedUntil, 'GET /v1/ps carries the autoscaler status');
    assert.match(await cli('ps'), /manual \d+s ago; autoscaling paused \d+s more/);

    // the autoscaler still wants 1 (both replicas measured, idle), and leaves the 2 alone
    const wanted = await decisionWhere(controller, (r) => r.current === 2 && r.desired === 1);
    assert.equal(wanted.paused, true);
    assert.equal(wanted.applied, false);
    const roundsLater = controller.rounds + 3;
    await decisionWhere(controller, () => controller.rounds >= roundsLater);
    const after = system.supervisor.ps().services.find((s) => s.name === 'worker')!;
    assert.equal(after.desired, 2, 'no scale-in during the pause');
    assert.equal(after.scaledBy, 'manual', 'the last scale is still the manual one');
  } finally {
    await system.stop('test over');
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  }
});
