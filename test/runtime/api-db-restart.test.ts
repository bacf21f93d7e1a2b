import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import type { FastifyInstance } from 'fastify';

import { type EmbeddedDatabase, fallbackDataDir, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { type RunningApi, startApi } from '../../src/runtime/api/start.js';

const enqueue = (app: FastifyInstance, body: unknown) =>
  app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });

/**
 * The pool may still hold a client the restart killed without telling it yet; the request
 * that finds it answers 503 and the pool drops that client. So recovery is "within a few
 * requests", with no waiting in between.
 */
async function firstSuccess(attempt: () => Promise<number>, tries = 5): Promise<number> {
  let status = 0;
  for (let i = 0; i < tries; i++) {
    status = await attempt();
    if (status < 500) return i;
  }
  assert.fail(`still ${status} after ${tries} requests`);
}

test('a database restart: 503 with Retry-After while it is down, recovery by itself, every accepted job kept', async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-api-restart-'));
  let db: EmbeddedDatabase | undefined;
  let api: RunningApi | undefined;
  try {
    db = await startEmbeddedPostgres({ stateDir });
    const port = db.port;
    api = await startApi({ databaseUrl: db.url, schema: 'restart_test', port: 0, version: 'test', rateLimit: false, defaultMetrics: false });
    const app = api.app;

    const accepted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await enqueue(app, { handler: 'hash', payload: { i } });
      assert.equal(res.statusCode, 202);
      accepted.push((res.json() as { id: string }).id);
    }
    const batch = await enqueue(app, { jobs: Array.from({ length: 20 }, (_, i) => ({ handler: 'sleep', payload: { i } })) });
    assert.equal(batch.statusCode, 202);
    accepted.push(...(batch.json() as { ids: string[] }).ids);

    await db.stop();

    const health = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 503);
    assert.equal((health.json() as { database: string }).database, 'down');
    assert.ok(Number(health.headers['retry-after']) > 0);

    for (const res of [
      await enqueue(app, { handler: 'hash' }),
      await enqueue(app, { jobs: [{ handler: 'hash' }] }),
      await app.inject({ method: 'GET', url: `/v1/jobs/${accepted[0]}` }),
      await app.inject({ method: 'GET', url: '/v1/queues' }),
    ]) {
      assert.equal(res.statusCode, 503, res.body);
      assert.equal((res.json() as { error: { code: string } }).error.code, 'TIDE_DB_UNAVAILABLE');
      assert.ok(Number(res.headers['retry-after']) > 0, 'a 503 says when to come back');
    }
    // /metrics still answers, with the request latencies, leaving out the queue series
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /http_request_duration_seconds_count\{method="POST",route="\/v1\/jobs",status_code="503"\} 2/);
    assert.doesNotMatch(metrics.body, /^tide_queue_ready/m);
    // a request that needs no database still answers while it is down
    assert.equal((await enqueue(app, { handler: 5 })).statusCode, 400);

    db = await startEmbeddedPostgres({ stateDir, port });
    await firstSuccess(async () => (await app.inject({ method: 'GET', url: '/health' })).statusCode);

    assert.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^tide_queue_ready\{queue="default"\} 25$/m);

    const after = await enqueue(app, { handler: 'hash', payload: 'after the restart' });
    assert.equal(after.statusCode, 202, after.body);
    accepted.push((after.json() as { id: string }).id);

    for (const id of accepted) {
      const res = await app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
      assert.equal(res.statusCode, 200, `job ${id} accepted with 202 must still exist`);
    }
    const stats = (await app.inject({ method: 'GET', url: '/v1/queues' })).json() as { queues: Array<{ ready: number }> };
    assert.equal(
      stats.queues.reduce((n, q) => n + q.ready, 0),
      accepted.length,
      'exactly the accepted jobs: none lost, none from the refused requests',
    );
  } finally {
    await api?.close();
    await db?.stop();
    await rm(stateDir, { recursive: true, force: true });
    // as root, mkdtemp's private directory sends the data under the temp directory
    await rm(fallbackDataDir(stateDir), { recursive: true, force: true });
  }
});
