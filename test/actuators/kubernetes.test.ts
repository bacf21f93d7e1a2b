import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { KubeConfig } from '@kubernetes/client-node';

import { KubernetesActuator, type KubernetesConfig, kubernetesSchema } from '../../src/actuators/kubernetes.js';
import { createActuator } from '../../src/actuators/registry.js';
import type { ScaleLogEntry } from '../../src/actuators/types.js';
import { isTideError } from '../../src/errors.js';
import { actuatorConformance, why } from './conformance.js';
import { FakeKubernetes } from './fake-kubernetes.js';

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server, skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'fake-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  return kc;
}

async function setup(config: Partial<KubernetesConfig> = {}) {
  const fake = new FakeKubernetes();
  const server = await fake.listen();
  const logged: ScaleLogEntry[] = [];
  const actuator = new KubernetesActuator(kubernetesSchema.parse({ namespace: 'shop', ...config }), { log: (e) => logged.push(e) }, { kubeConfig: kubeConfigFor(server) });
  return {
    fake,
    server,
    actuator,
    logged,
    async close() {
      await actuator.close();
      await fake.close();
    },
  };
}

for (const workload of ['Deployment', 'StatefulSet'] as const) {
  actuatorConformance(`kubernetes ${workload} (fake API server)`, async () => {
    const s = await setup({ workload });
    s.fake.add(workload === 'Deployment' ? 'deployments' : 'statefulsets', 'shop', 'worker', 1);
    return {
      actuator: s.actuator,
      service: 'worker',
      missingService: 'nope',
      platformCalls: async () => s.fake.requests.length,
      failNextCall: async () => void (s.fake.failNext = 1),
      close: s.close,
    };
  });
}

test('kubernetes (fake API server): scale reads the scale subresource, then sends a merge patch of spec.replicas', async () => {
  const s = await setup();
  try {
    s.fake.add('deployments', 'shop', 'worker', 1);
    await s.actuator.scale('worker', 5, why(5));
    const path = '/apis/apps/v1/namespaces/shop/deployments/worker/scale';
    assert.deepEqual(
      s.fake.requests.map((r) => [r.method, r.path, r.method === 'PATCH' ? r.contentType : undefined, r.body]),
      [
        ['GET', path, undefined, undefined],
        ['PATCH', path, 'application/merge-patch+json', { spec: { replicas: 5 } }],
      ],
    );
    assert.ok(s.fake.requests.every((r) => r.authorization === 'Bearer fake-token'));
    assert.equal(s.fake.get('deployments', 'shop', 'worker')?.replicas, 5);
    assert.deepEqual(s.logged, [{ actuator: 'kubernetes', service: 'worker', from: 1, to: 5, reasons: [{ code: 'ScalingActive', message: 'conformance: scale to 5.' }] }]);
    // Already 5: a read and no write, and nothing logged.
    await s.actuator.scale('worker', 5, why(5));
    assert.deepEqual(s.fake.requests.slice(2).map((r) => r.method), ['GET']);
    assert.equal(s.logged.length, 1);
  } finally {
    await s.close();
  }
});

test('kubernetes (fake API server): ready is the Deployment\'s status.readyReplicas, 0 when the server omits it', async () => {
  const s = await setup({ names: { worker: 'jobs-worker' } });
  try {
    s.fake.add('deployments', 'shop', 'jobs-worker', 4, 3);
    assert.deepEqual(await s.actuator.observe('worker'), { desired: 4, ready: 1 });
    s.fake.get('deployments', 'shop', 'jobs-worker')!.notReady = 4;
    assert.deepEqual(await s.actuator.observe('worker'), { desired: 4, ready: 0 });
    assert.equal(s.fake.requests.at(-1)?.path, '/apis/apps/v1/namespaces/shop/deployments/jobs-worker');
  } finally {
    await s.close();
  }
});

test('kubernetes (fake API server): a 409 Conflict is re-read and retried, a bounded number of times', async () => {
  const s = await setup({ conflictRetries: 3 });
  try {
    s.fake.add('deployments', 'shop', 'worker', 1);
    s.fake.conflictNext = 2;
    await s.actuator.scale('worker', 3, why(3));
    assert.equal(s.fake.get('deployments', 'shop', 'worker')?.replicas, 3);
    assert.deepEqual(s.fake.requests.map((r) => r.method), ['GET', 'PATCH', 'GET', 'PATCH', 'GET', 'PATCH']);

    s.fake.requests.length = 0;
    s.fake.conflictNext = 100;
    await assert.rejects(s.actuator.scale('worker', 6, why(6)), (err) => {
      assert.ok(isTideError(err));
      assert.equal(err.code, 'TIDE_ACTUATOR_FAILED');
      assert.match(err.message, /the object has been modified/);
      return true;
    });
    assert.equal(s.fake.requests.filter((r) => r.method === 'PATCH').length, 4, 'the first try and 3 retries');
    assert.equal(s.fake.get('deployments', 'shop', 'worker')?.replicas, 3);
  } finally {
    s.fake.conflictNext = 0;
    await s.close();
  }
});

test('kubernetes (fake API server): the fake follows the documented scale subresource (415 for other patch types, 409 for a stale PUT)', async () => {
  const s = await setup();
  try {
    s.fake.add('deployments', 'shop', 'worker', 2);
    const url = `${s.server}/apis/apps/v1/namespaces/shop/deployments/worker/scale`;
    const jsonPatch = await fetch(url, { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: '[{"op":"replace","path":"/spec/replicas","value":3}]' });
    assert.equal(jsonPatch.status, 415);
    assert.equal(((await jsonPatch.json()) as { kind: string }).kind, 'Status');
    const stale = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'worker', namespace: 'shop', resourceVersion: '1' }, spec: { replicas: 3 } }),
    });
    assert.equal(stale.status, 409);
    assert.deepEqual(((await stale.json()) as { reason: string; code: number }).reason, 'Conflict');
    assert.equal(s.fake.get('deployments', 'shop', 'worker')?.replicas, 2);
  } finally {
    await s.close();
  }
});

test('kubernetes (fake API server): the registry loads a kubeconfig file path', async () => {
  const fake = new FakeKubernetes();
  const server = await fake.listen();
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-kubeconfig-'));
  try {
    fake.add('deployments', 'default', 'api', 2);
    const file = path.join(dir, 'config');
    await writeFile(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{ name: fake, cluster: { server: "' + server + '", insecure-skip-tls-verify: true } }]',
        'users: [{ name: fake, user: { token: file-token } }]',
        'contexts: [{ name: fake, context: { cluster: fake, user: fake } }]',
        'current-context: fake',
      ].join('\n'),
    );
    const actuator = createActuator({ kind: 'kubernetes', kubeconfig: file });
    assert.deepEqual(await actuator.observe('api'), { desired: 2, ready: 2 });
    assert.equal(fake.requests[0]?.authorization, 'Bearer file-token');
    await actuator.close();
  } finally {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('kubernetes (fake API server): a server that does not answer is TIDE_ACTUATOR_FAILED after timeoutSeconds', async () => {
  const s = await setup({ timeoutSeconds: 0.2 });
  try {
    s.fake.add('deployments', 'shop', 'worker', 1);
    s.fake.hang = true;
    await assert.rejects(s.actuator.observe('worker'), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_FAILED' && /no answer within 0.2 s/.test(err.message));
    s.fake.hang = false;
    assert.deepEqual(await s.actuator.observe('worker'), { desired: 1, ready: 1 });
  } finally {
    await s.close();
  }
});

test('kubernetes: a bad config is TIDE_ACTUATOR_CONFIG naming the field', () => {
  for (const [config, field] of [
    [{ kind: 'kubernetes', namespace: 'Not_A_Name' }, 'actuator.namespace'],
    [{ kind: 'kubernetes', workload: 'DaemonSet' }, 'actuator.workload'],
    [{ kind: 'kubernetes', conflictRetries: 99 }, 'actuator.conflictRetries'],
    [{ kind: 'kubernetes', kubeconfig: path.join(tmpdir(), 'no-such-kubeconfig') }, 'actuator.kubeconfig'],
  ] as const) {
    assert.throws(() => createActuator(config), (err) => isTideError(err) && err.code === 'TIDE_ACTUATOR_CONFIG' && err.where?.field === field, JSON.stringify(config));
  }
});
