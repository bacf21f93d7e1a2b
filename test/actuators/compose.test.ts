import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ComposeActuator, type ComposeConfig, composeSchema, parseComposePs, parseInspect } from '../../src/actuators/compose.js';
import { createActuator } from '../../src/actuators/registry.js';
import type { ScaleLogEntry } from '../../src/actuators/types.js';
import { isTideError } from '../../src/errors.js';
import { actuatorConformance, why } from './conformance.js';

const FAKE_DOCKER = fileURLToPath(new URL('../fixtures/fake-docker/docker.mjs', import.meta.url));

interface FakeService {
  replicas: number;
  healthcheck?: boolean;
  notReady?: number;
  oneOff?: number;
  vanished?: number;
}
interface FakeState {
  project: string;
  file?: string;
  format: 'lines' | 'array';
  failNext: number;
  hang?: boolean;
  calls: string[][];
  services: Record<string, FakeService>;
}

/** A fake docker with its own state file. FAKE_DOCKER_STATE is set for this process's children. */
async function fakeDocker(overrides: Partial<FakeState> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-fake-docker-'));
  const statePath = path.join(dir, 'state.json');
  const initial: FakeState = { project: 'demo', format: 'lines', failNext: 0, calls: [], services: { worker: { replicas: 0 } }, ...overrides };
  await writeFile(statePath, JSON.stringify(initial));
  process.env.FAKE_DOCKER_STATE = statePath;
  const read = async () => JSON.parse(await readFile(statePath, 'utf8')) as FakeState;
  return {
    read,
    async update(change: (s: FakeState) => void) {
      const s = await read();
      change(s);
      await writeFile(statePath, JSON.stringify(s));
    },
    config(extra: Partial<ComposeConfig> = {}): ComposeConfig {
      return composeSchema.parse({ project: initial.project, docker: FAKE_DOCKER, ...(initial.file ? { file: initial.file } : {}), ...extra });
    },
    async remove() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

for (const format of ['lines', 'array'] as const) {
  actuatorConformance(`compose (fake docker, ps as ${format === 'lines' ? 'JSON lines' : 'a JSON array'})`, async () => {
    const fake = await fakeDocker({ format, services: { worker: { replicas: 0 } } });
    const actuator = new ComposeActuator(fake.config());
    return {
      actuator,
      service: 'worker',
      missingService: 'nope',
      platformCalls: async () => (await fake.read()).calls.length,
      failNextCall: () => fake.update((s) => void (s.failNext = 1)),
      async close() {
        await actuator.close();
        await fake.remove();
      },
    };
  });
}

test('compose (fake docker): the exact documented arguments, with and without -f', async () => {
  for (const file of [undefined, 'deploy/compose.prod.yaml']) {
    const fake = await fakeDocker({ project: 'shop', ...(file ? { file } : {}), services: { worker: { replicas: 1 } } });
    try {
      const actuator = new ComposeActuator(fake.config());
      await actuator.scale('worker', 4, why(4));
      await actuator.observe('worker');
      const f = file ? ['-f', file] : [];
      assert.deepEqual((await fake.read()).calls, [
        // compose: auto asks once which Compose runs here
        ['compose', 'version'],
        ['compose', '-p', 'shop', ...f, 'up', '-d', '--no-recreate', '--scale', 'worker=4', 'worker'],
        ['compose', '-p', 'shop', ...f, 'ps', '-a', '--format', 'json', 'worker'],
      ]);
    } finally {
      await fake.remove();
    }
  }
});

test('compose (fake docker): ready counts running containers that are healthy or have no healthcheck; compose run containers are not replicas', async () => {
  const fake = await fakeDocker({ services: { api: { replicas: 3, healthcheck: true, notReady: 1 }, worker: { replicas: 4, notReady: 2, oneOff: 2 } } });
  try {
    const actuator = new ComposeActuator(fake.config());
    // A fresh actuator has applied nothing: desired is the containers ps lists.
    assert.deepEqual(await actuator.observe('api'), { desired: 3, ready: 2 });
    assert.deepEqual(await actuator.observe('worker'), { desired: 4, ready: 2 });
  } finally {
    await fake.remove();
  }
});

test('compose (fake docker, standalone Compose): containers removed between ps and inspect are gone, not a failed read', async () => {
  const fake = await fakeDocker({ services: { worker: { replicas: 3, vanished: 2 } } });
  try {
    const actuator = new ComposeActuator(fake.config({ compose: 'standalone', dockerCompose: FAKE_DOCKER }));
    assert.deepEqual(await actuator.observe('worker'), { desired: 3, ready: 3 });
    // one inspect of all five, then one without each missing container docker named
    const inspects = (await fake.read()).calls.filter((c) => c[0] === 'inspect');
    assert.deepEqual(inspects.map((c) => c.length - 1), [5, 4, 3]);
  } finally {
    await fake.remove();
  }
});

test('compose (fake docker): a failed call carries the last line of docker\'s stderr; scale logs the reasons', async () => {
  const fake = await fakeDocker();
  const logged: ScaleLogEntry[] = [];
  try {
    const actuator = createActuator({ kind: 'compose', project: 'demo', docker: FAKE_DOCKER }, { log: (e) => logged.push(e) });
    await fake.update((s) => void (s.failNext = 1));
    await assert.rejects(actuator.scale('worker', 2, why(2)), (err) => {
      assert.ok(isTideError(err));
      assert.equal(err.code, 'TIDE_ACTUATOR_FAILED');
      assert.match(err.message, /Error response from daemon: fake failure injected by the test$/);
      return true;
    });
    assert.deepEqual(logged, [], 'a failed scale is not logged as done');
    await actuator.scale('worker', 2, why(2));
    assert.deepEqual(logged, [{ actuator: 'compose', service: 'worker', to: 2, reasons: [{ code: 'ScalingActive', message: 'conformance: scale to 2.' }] }]);
    await actuator.close();
  } finally {
    await fake.remove();
  }
});

test('compose (fake docker): a docker that hangs is stopped at the timeout and reported', async () => {
  const fake = await fakeDocker({ hang: true });
  try {
    // plugin named: the 0.2 s budget is for the hanging call, not for finding which Compose runs
    const actuator = new ComposeActuator(fake.config({ timeoutSeconds: 0.2, compose: 'plugin' }));
    await assert.rejects(actuator.observe('worker'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED' && /did not finish within 0.2 s/.test(err.message));
  } finally {
    await fake.remove();
  }
});

test('compose: a missing docker binary is TIDE_ACTUATOR_FAILED naming the field to set', async () => {
  const missing = path.join(tmpdir(), 'no-such-docker-binary');
  const plugin = new ComposeActuator(composeSchema.parse({ project: 'demo', compose: 'plugin', docker: missing }));
  await assert.rejects(plugin.observe('worker'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED' && err.where?.field === 'docker');
  const standalone = new ComposeActuator(composeSchema.parse({ project: 'demo', compose: 'standalone', dockerCompose: missing }));
  await assert.rejects(standalone.observe('worker'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED' && err.where?.field === 'dockerCompose');
  // auto, with neither: one error saying both were tried, asked again on the next call
  const auto = new ComposeActuator(composeSchema.parse({ project: 'demo', docker: missing, dockerCompose: missing }));
  for (let i = 0; i < 2; i++) {
    await assert.rejects(auto.observe('worker'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED' && err.where?.field === 'compose' && /Compose v2.*Compose v1/.test(err.message));
  }
});

test('compose: docker inspect output (the standalone Compose path) read into ps rows', () => {
  const inspect = [
    { Name: '/p-worker-1', Config: { Labels: { 'com.docker.compose.service': 'worker', 'com.docker.compose.oneoff': 'False' } }, State: { Status: 'running' } },
    { Name: '/p-worker-2', Config: { Labels: { 'com.docker.compose.service': 'worker' } }, State: { Status: 'running', Health: { Status: 'starting' } } },
    { Name: '/p-worker-3', Config: { Labels: null }, State: { Status: 'exited' } },
    { Name: '/p-worker-run-1', Config: { Labels: { 'com.docker.compose.service': 'worker', 'com.docker.compose.oneoff': 'True' } }, State: { Status: 'running' } },
  ];
  assert.deepEqual(parseInspect(JSON.stringify(inspect)), [
    { Name: 'p-worker-1', Service: 'worker', State: 'running', Health: '', OneOff: false },
    { Name: 'p-worker-2', Service: 'worker', State: 'running', Health: 'starting', OneOff: false },
    { Name: 'p-worker-3', Service: '', State: 'exited', Health: '', OneOff: false },
    { Name: 'p-worker-run-1', Service: 'worker', State: 'running', Health: '', OneOff: true },
  ]);
  assert.deepEqual(parseInspect(''), []);
  assert.throws(() => parseInspect('Error: No such object'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED');
  assert.throws(() => parseInspect('[{"Name":"x"}]'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED');
});

test('compose: service names that could read as flags are refused before docker runs', async () => {
  const actuator = new ComposeActuator(composeSchema.parse({ project: 'demo', docker: path.join(tmpdir(), 'no-such-docker-binary') }));
  for (const bad of ['--all', '-d', 'a b', '', 'x/y']) {
    await assert.rejects(actuator.scale(bad, 1, why(1)), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_CONFIG' && err.where?.field === 'service');
  }
});

test('compose: ps output in both shapes Compose has printed, and empty output', () => {
  const c = { Name: 'p-w-1', Service: 'w', State: 'running', Health: '' };
  assert.deepEqual(parseComposePs(''), []);
  assert.deepEqual(parseComposePs('[]\n'), []);
  assert.deepEqual(parseComposePs(JSON.stringify([c, { ...c, Name: 'p-w-2' }])).map((x) => x.Name), ['p-w-1', 'p-w-2']);
  assert.deepEqual(parseComposePs(`${JSON.stringify(c)}\n${JSON.stringify({ ...c, Name: 'p-w-2' })}\n`).map((x) => x.Name), ['p-w-1', 'p-w-2']);
  // Health absent (older Compose prints no Health field without a healthcheck).
  assert.equal(parseComposePs(JSON.stringify({ Name: 'n', Service: 'w', State: 'running' }))[0]!.Health, '');
  // a `compose run` container is marked by its labels
  const labels = (oneoff: string) => `com.docker.compose.project=p,com.docker.compose.oneoff=${oneoff},com.docker.compose.service=w`;
  assert.deepEqual(parseComposePs(`${JSON.stringify({ ...c, Labels: labels('True') })}\n${JSON.stringify({ ...c, Labels: labels('False') })}`).map((x) => x.OneOff), [true, false]);
  assert.throws(() => parseComposePs('WARN[0000] something\n'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED');
  assert.throws(() => parseComposePs('[{"Name":"x"}]'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED');
});

test('registry: a bad compose config is TIDE_ACTUATOR_CONFIG naming the field', () => {
  const cases: Array<[unknown, string]> = [
    [{ kind: 'compose', project: 'Bad Name' }, 'actuator.project'],
    [{ kind: 'compose' }, 'actuator.project'],
    [{ kind: 'compose', project: 'ok', timeoutSeconds: -1 }, 'actuator.timeoutSeconds'],
    [{ kind: 'compose', project: 'ok', scale: 3 }, 'actuator.scale'],
    [{ kind: 'swarm' }, 'actuator.kind'],
    [{}, 'actuator.kind'],
    ['compose', 'actuator'],
  ];
  for (const [config, field] of cases) {
    assert.throws(() => createActuator(config), (err) => {
      assert.ok(isTideError(err));
      assert.equal(err.code, 'TIDE_ACTUATOR_CONFIG');
      assert.equal(err.where?.field, field, JSON.stringify(config));
      return true;
    });
  }
  assert.throws(() => createActuator({ kind: 'compose' }, {}, { field: 'services.worker.actuator', file: 'tide.yaml' }), (err) =>
    isTideError(err) && err.where?.field === 'services.worker.actuator.project' && err.where.file === 'tide.yaml',
  );
});
