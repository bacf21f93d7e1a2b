import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EcsActuator, type EcsConfig, ecsSchema } from '../../src/actuators/ecs.js';
import { createActuator } from '../../src/actuators/registry.js';
import type { ScaleLogEntry } from '../../src/actuators/types.js';
import { isTideError } from '../../src/errors.js';
import { actuatorConformance, why } from './conformance.js';
import { FakeEcs } from './fake-ecs.js';

const SECRET = 'fake-secret-access-key-for-tests';
const credentials = { accessKeyId: 'AKIDFAKEFORTESTS', secretAccessKey: SECRET };

async function setup(config: Partial<EcsConfig> = {}) {
  const fake = new FakeEcs('eu-west-1');
  const endpoint = await fake.listen();
  const logged: ScaleLogEntry[] = [];
  // One attempt: the SDK's own retries would hide the injected 5xx from the suite.
  const actuator = new EcsActuator(ecsSchema.parse({ cluster: 'prod', region: 'eu-west-1', endpoint, maxAttempts: 1, ...config }), { log: (e) => logged.push(e) }, { credentials });
  return {
    fake,
    actuator,
    logged,
    async close() {
      await actuator.close();
      await fake.close();
    },
  };
}

actuatorConformance('ecs (fake ECS endpoint)', async () => {
  const s = await setup();
  s.fake.add('prod', 'worker', 1);
  return {
    actuator: s.actuator,
    service: 'worker',
    missingService: 'nope',
    platformCalls: async () => s.fake.requests.length,
    failNextCall: async () => void (s.fake.failNext = 1),
    close: s.close,
  };
});

test('ecs (fake ECS endpoint): UpdateService and DescribeServices carry the documented JSON 1.1 fields', async () => {
  const s = await setup({ services: { worker: 'shop-worker' } });
  try {
    s.fake.add('prod', 'shop-worker', 2, 1);
    await s.actuator.scale('worker', 5, why(5));
    assert.deepEqual(await s.actuator.observe('worker'), { desired: 5, ready: 4 });
    assert.deepEqual(
      s.fake.requests.map((r) => [r.target, r.body]),
      [
        ['AmazonEC2ContainerServiceV20141113.UpdateService', { cluster: 'prod', service: 'shop-worker', desiredCount: 5 }],
        ['AmazonEC2ContainerServiceV20141113.DescribeServices', { cluster: 'prod', services: ['shop-worker'] }],
      ],
    );
    assert.match(s.fake.requests[0]!.authorization, /Credential=AKIDFAKEFORTESTS\/\d{8}\/eu-west-1\/ecs\/aws4_request/);
    assert.deepEqual(s.logged, [{ actuator: 'ecs', service: 'worker', to: 5, reasons: [{ code: 'ScalingActive', message: 'conformance: scale to 5.' }] }]);
    assert.ok(!JSON.stringify(s.logged).includes(SECRET));
  } finally {
    await s.close();
  }
});

test('ecs (fake ECS endpoint): AWS errors keep their name; a missing cluster or inactive service is NOT_FOUND', async () => {
  const s = await setup({ cluster: 'nowhere' });
  try {
    await assert.rejects(s.actuator.scale('worker', 1, why(1)), (err) => {
      assert.ok(isTideError(err));
      assert.equal(err.code, 'TIDE_ACTUATOR_NOT_FOUND');
      assert.match(err.message, /ClusterNotFoundException/);
      assert.deepEqual(err.details, { awsError: 'ClusterNotFoundException', status: 400 });
      assert.ok(!err.message.includes(SECRET));
      return true;
    });
  } finally {
    await s.close();
  }
  const t = await setup();
  try {
    t.fake.add('prod', 'old', 0);
    t.fake.service('prod', 'old')!.status = 'INACTIVE';
    await assert.rejects(t.actuator.observe('old'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_NOT_FOUND' && /INACTIVE/.test(err.message));
    await assert.rejects(t.actuator.scale('old', 1, why(1)), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_NOT_FOUND' && /ServiceNotActiveException/.test(err.message));
    t.fake.failNext = 1;
    await assert.rejects(t.actuator.observe('old'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED' && /ServerException/.test(err.message));
  } finally {
    await t.close();
  }
});

test('ecs (fake ECS endpoint): with retries on, the SDK rides over one 5xx', async () => {
  const s = await setup({ maxAttempts: 2 });
  try {
    s.fake.add('prod', 'worker', 1);
    s.fake.failNext = 1;
    await s.actuator.scale('worker', 3, why(3));
    assert.equal(s.fake.service('prod', 'worker')?.desiredCount, 3);
    assert.equal(s.fake.requests.length, 2);
  } finally {
    await s.close();
  }
});

test('ecs (fake ECS endpoint): an endpoint that does not answer is TIDE_ACTUATOR_FAILED after timeoutSeconds', async () => {
  const s = await setup({ timeoutSeconds: 0.2 });
  try {
    s.fake.add('prod', 'worker', 1);
    s.fake.hang = true;
    await assert.rejects(s.actuator.observe('worker'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED' && /DescribeServices/.test(err.message));
    s.fake.hang = false;
    assert.deepEqual(await s.actuator.observe('worker'), { desired: 1, ready: 1 });
  } finally {
    await s.close();
  }
});

test('ecs: a bad config is TIDE_ACTUATOR_CONFIG naming the field', () => {
  for (const [config, field] of [
    [{ kind: 'ecs' }, 'actuator.cluster'],
    [{ kind: 'ecs', cluster: 'prod', region: 'Europe' }, 'actuator.region'],
    [{ kind: 'ecs', cluster: 'prod', endpoint: 'not a url' }, 'actuator.endpoint'],
    [{ kind: 'ecs', cluster: 'prod', secretAccessKey: 'x' }, 'actuator.secretAccessKey'],
  ] as const) {
    assert.throws(() => createActuator(config), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_CONFIG' && err.where?.field === field, JSON.stringify(config));
  }
});
