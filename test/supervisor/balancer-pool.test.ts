import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createBalancer } from '../../src/balancer/balancer.js';
import { type ServiceSpec, Supervisor } from '../../src/supervisor/supervisor.js';

const server = new URL('../fixtures/supervisor-server.mjs', import.meta.url).pathname;

/** Clients sending requests through the balancer back to back until stopped. */
function requestStream(url: string, clients: number) {
  let running = true;
  const outcome = { ok: 0, failed: [] as string[], pids: new Set<number>() };
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/work?ms=15`);
        const body = (await res.json()) as { pid: number };
        if (res.status === 200) outcome.ok++, outcome.pids.add(body.pid);
        else outcome.failed.push(`status ${res.status}`);
      } catch (err) {
        outcome.failed.push(String(err));
      }
    }
  });
  return {
    outcome,
    /** Resolves once `n` more requests have succeeded (progress, not time). */
    async progress(n: number) {
      const target = outcome.ok + n;
      while (outcome.ok < target && outcome.failed.length === 0) await new Promise((r) => setImmediate(r));
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcome;
    },
  };
}

async function setup() {
  const balancer = await createBalancer({ host: '127.0.0.1', port: 0, healthCheck: { intervalMs: 200 } });
  const spec: ServiceSpec = {
    name: 'api',
    kind: 'command',
    command: { file: process.execPath, args: [server] },
    listens: true,
    healthPath: '/health',
    replicas: 3,
    max: 4,
    stopGraceMs: 5_000,
    pool: balancer,
  };
  const sup = new Supervisor({ services: [spec] });
  await sup.start();
  return { balancer, sup };
}

test('scaling the API in under a stream of requests fails none (real balancer, real processes)', { timeout: 60_000 }, async () => {
  const { balancer, sup } = await setup();
  const stream = requestStream(balancer.url, 6);
  try {
    await stream.progress(100);
    await sup.scale('api', 1);
    await stream.progress(100);
    const outcome = await stream.stop();
    assert.deepEqual(outcome.failed, []);
    assert.ok(outcome.pids.size >= 3, 'the stream reached every replica before the scale-in');
    assert.deepEqual(balancer.upstreams().map((u) => u.id), ['api.1']);
    assert.equal(sup.ps().replicas.length, 1);
  } finally {
    await stream.stop();
    await sup.shutdown();
    await balancer.close();
  }
});

test('a rolling restart under a stream of requests fails none and replaces every replica', { timeout: 60_000 }, async () => {
  const { balancer, sup } = await setup();
  const stream = requestStream(balancer.url, 6);
  try {
    const before = new Set(sup.ps().replicas.map((r) => r.pid));
    await stream.progress(100);
    await sup.restart('api');
    await stream.progress(100);
    const outcome = await stream.stop();
    assert.deepEqual(outcome.failed, []);
    const after = sup.ps().replicas;
    assert.equal(after.length, 3);
    assert.ok(after.every((r) => r.state === 'healthy' && !before.has(r.pid)), 'every replica is new');
    assert.equal(balancer.upstreams().length, 3);
  } finally {
    await stream.stop();
    await sup.shutdown();
    await balancer.close();
  }
});

test('a SIGKILLed API replica: only requests in flight on it may fail, and it rejoins once healthy', { timeout: 60_000 }, async () => {
  const { balancer, sup } = await setup();
  const stream = requestStream(balancer.url, 3);
  try {
    await stream.progress(50);
    const victim = sup.ps().replicas[0]!;
    process.kill(victim.pid!, 'SIGKILL');
    await new Promise<void>((resolve) => {
      const check = () => {
        const r = sup.ps().replicas.find((x) => x.id === victim.id);
        if (r?.state === 'healthy' && r.restarts === 1) sup.off('state', check), resolve();
      };
      sup.on('state', check);
    });
    await stream.progress(100);
    const outcome = await stream.stop();
    // GETs that broke on the dead connection are retried by the balancer; at most the
    // three in flight on the victim could fail
    assert.ok(outcome.failed.length <= 3, `failed: ${outcome.failed.join(', ')}`);
    assert.equal(balancer.upstreams().length, 3);
  } finally {
    await stream.stop();
    await sup.shutdown();
    await balancer.close();
  }
});
