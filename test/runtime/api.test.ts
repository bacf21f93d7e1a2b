import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';

import { TideError } from '../../src/errors.js';
import { type ApiOptions, buildApi } from '../../src/runtime/api/server.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

let schema: TestSchema;
let pool: pg.Pool;
let engine: PostgresQueue;
const apps: FastifyInstance[] = [];

function build(extra: Partial<ApiOptions> = {}): FastifyInstance {
  const app = buildApi({
    engine,
    pool,
    version: '9.9.9-test',
    knownHandlers: ['hash', 'sleep'],
    dbCheck: async () => {
      await pool.query('SELECT 1');
    },
    rateLimit: false,
    ...extra,
  });
  apps.push(app);
  return app;
}

function errorOf(res: LightMyRequestResponse): { code: string; message: string; where?: { field?: string } } {
  const body = res.json() as { error?: { code: string; message: string; where?: { field?: string } } };
  assert.ok(body.error, `expected an error body, got ${res.body}`);
  assert.equal(typeof body.error.message, 'string');
  return body.error;
}

function post(app: FastifyInstance, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

before(async () => {
  schema = await freshSchema('api');
  pool = new pg.Pool({ connectionString: schema.url, max: 4 });
  pool.on('error', () => undefined);
  engine = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, pool });
});

after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await engine.close();
  await pool.end();
  await schema.drop();
});

describe('POST /v1/jobs', () => {
  test('accepts one job with 202 and its id, after the row is committed', async () => {
    const app = build();
    const res = await post(app, { handler: 'hash', payload: { n: 1 }, priority: 5, max_attempts: 2 });
    assert.equal(res.statusCode, 202, res.body);
    const { id, created } = res.json() as { id: string; created: boolean };
    assert.equal(created, true);
    // a separate connection sees it: the 202 came after the commit
    const { rows } = await pool.query(`SELECT handler, priority, max_attempts FROM "${schema.schema}".jobs WHERE id = $1`, [id]);
    assert.deepEqual(rows, [{ handler: 'hash', priority: 5, max_attempts: 2 }]);
  });

  test('accepts a batch with 202, ids in order, and idempotency keys return the first job', async () => {
    const app = build();
    const first = await post(app, { handler: 'sleep', idempotency_key: 'order-17' });
    assert.equal(first.statusCode, 202);
    const res = await post(app, {
      jobs: [
        { handler: 'hash', queue: 'emails' },
        { handler: 'sleep', idempotency_key: 'order-17' },
        { handler: 'hash', run_at: '2030-01-01T00:00:00Z' },
        { handler: 'hash', delay_ms: 60_000 },
      ],
    });
    assert.equal(res.statusCode, 202, res.body);
    const body = res.json() as { ids: string[]; created: boolean[] };
    assert.equal(body.ids.length, 4);
    assert.deepEqual(body.created, [true, false, true, true]);
    assert.equal(body.ids[1], (first.json() as { id: string }).id);

    const delayed = await app.inject({ method: 'GET', url: `/v1/jobs/${body.ids[2]}` });
    assert.equal(delayed.statusCode, 200);
    assert.deepEqual(
      { state: (delayed.json() as { state: string }).state, run_at: (delayed.json() as { run_at: string }).run_at },
      { state: 'delayed', run_at: '2030-01-01T00:00:00.000Z' },
    );
  });

  test('a wrong type, an unknown field or a missing field names the field', async () => {
    const app = build();
    const cases: Array<[unknown, string]> = [
      [{ handler: 5 }, 'handler'],
      [{ handler: 'hash', priority: 'high' }, 'priority'],
      [{ handler: 'hash', priority: '5' }, 'priority'],
      [{ handler: 'hash', max_atempts: 3 }, 'max_atempts'],
      [{ payload: {} }, 'handler'],
      [{ handler: 'hash', run_at: 'tomorrow' }, 'run_at'],
      [{ handler: 'hash', delay_ms: -1 }, 'delay_ms'],
      [{ handler: 'hash', queue: 'has space' }, 'queue'],
      [{ jobs: [{ handler: 'hash' }, { handler: 'hash', max_attempts: 0 }] }, 'jobs[1].max_attempts'],
      [{ jobs: [{ handler: 'hash' }, { handler: 'hash', extra: 1 }] }, 'jobs[1].extra'],
      [{ jobs: 'all of them' }, 'jobs'],
      [{ jobs: [] }, 'jobs'],
      [{ jobs: Array.from({ length: 1001 }, () => ({ handler: 'hash' })) }, 'jobs'],
      [[{ handler: 'hash' }], 'body'],
      ['null', 'body'],
    ];
    for (const [body, field] of cases) {
      const res = await post(app, body);
      assert.equal(res.statusCode, 400, `${JSON.stringify(body).slice(0, 80)}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.code, 'TIDE_API_VALIDATION');
      assert.equal(err.where?.field, field, JSON.stringify(body).slice(0, 80));
    }
  });

  test('values PostgreSQL cannot store, or times out of range, are 400s naming the field', async () => {
    const app = build();
    const cases: Array<[string, string]> = [
      ['{"handler":"hash","payload":{"note":"a\\u0000b"}}', 'payload'],
      ['{"handler":"hash","payload":{"\\u0000":1}}', 'payload'],
      ['{"jobs":[{"handler":"hash"},{"handler":"hash","payload":["\\ud800"]}]}', 'jobs[1].payload'],
      ['{"handler":"hash","idempotency_key":"k\\u0000"}', 'idempotency_key'],
      ['{"handler":"hash","run_at":1e20}', 'run_at'],
      ['{"handler":"hash","run_at":"0000-01-01T00:00:00Z"}', 'run_at'],
    ];
    for (const [body, field] of cases) {
      const res = await post(app, body);
      assert.equal(res.statusCode, 400, `${body}: ${res.body}`);
      assert.deepEqual([errorOf(res).code, errorOf(res).where?.field], ['TIDE_API_VALIDATION', field], body);
    }
    // a paired surrogate (an emoji) is fine
    assert.equal((await post(app, { handler: 'hash', payload: { mood: '\u{1F600}' } })).statusCode, 202);
  });

  test('arbitrary bodies never get a 5xx, and every error is coded (seeded property test)', async () => {
    const app = build();
    // 'binary' strings include NUL and unpaired surrogates, which PostgreSQL refuses
    const json = fc.jsonValue({ stringUnit: 'binary' });
    const field = fc.oneof(json, fc.string({ unit: 'binary' }), fc.integer(), fc.double(), fc.constantFrom('hash', 'sleep', 'default', '', '*'));
    const job = fc.record(
      {
        queue: field,
        handler: fc.oneof(fc.constantFrom('hash', 'sleep'), field),
        payload: json,
        priority: field,
        delay_ms: field,
        run_at: field,
        max_attempts: field,
        idempotency_key: fc.oneof(fc.string({ unit: 'binary' }), field),
        extra: field,
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(
      job.map((j) => JSON.stringify(j)),
      fc.array(job, { maxLength: 4 }).map((jobs) => JSON.stringify({ jobs })),
      json.map((v) => JSON.stringify(v) ?? ''),
      fc.string({ unit: 'binary' }),
    );
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const res = await post(app, text);
        assert.ok(res.statusCode < 500, `${res.statusCode} for ${text.slice(0, 200)}: ${res.body}`);
        if (res.statusCode >= 400) assert.match(errorOf(res).code, /^TIDE_[A-Z_]+$/);
      }),
      { seed: 20261122, numRuns: 150 },
    );
  });

  test('malformed or empty JSON is a 400 TIDE_API_BAD_JSON, never a 500', async () => {
    const app = build();
    for (const body of ['{"handler": "hash"', '', '{"handler": "hash",}', '{"__proto__": {"x": 1}, "handler": "hash"}']) {
      const res = await post(app, body);
      assert.equal(res.statusCode, 400, `${body}: ${res.body}`);
      assert.equal(errorOf(res).code, 'TIDE_API_BAD_JSON');
    }
  });

  test('a body that is not JSON by its content type is a 415 TIDE_API_MEDIA_TYPE', async () => {
    const res = await build().inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'application/xml' }, payload: '<job/>' });
    assert.equal(res.statusCode, 415);
    assert.deepEqual([errorOf(res).code, errorOf(res).where?.field], ['TIDE_API_MEDIA_TYPE', 'content-type']);
  });

  test('a body over the limit is a 413 TIDE_API_BODY_TOO_LARGE', async () => {
    const app = build({ bodyLimit: 1024 });
    const res = await post(app, { handler: 'hash', payload: 'x'.repeat(2000) });
    assert.equal(res.statusCode, 413);
    assert.equal(errorOf(res).code, 'TIDE_API_BODY_TOO_LARGE');
    assert.equal((await post(app, { handler: 'hash', payload: 'small' })).statusCode, 202);
  });

  test('an unknown handler or queue is a 422 naming the field', async () => {
    const app = build({ knownQueues: ['default', 'emails'] });
    let res = await post(app, { handler: 'nope' });
    assert.equal(res.statusCode, 422);
    assert.deepEqual([errorOf(res).code, errorOf(res).where?.field], ['TIDE_API_UNKNOWN_HANDLER', 'handler']);
    res = await post(app, { jobs: [{ handler: 'hash' }, { handler: 'hash', queue: 'other' }] });
    assert.equal(res.statusCode, 422);
    assert.deepEqual([errorOf(res).code, errorOf(res).where?.field], ['TIDE_API_UNKNOWN_QUEUE', 'jobs[1].queue']);
    // nothing of a refused batch is enqueued
    const stats = await engine.stats('other');
    assert.equal(stats[0]?.arrivalsTotal ?? 0, 0);
  });
});

describe('jobs and queues', () => {
  test('GET /v1/jobs/:id: a bad id is 400, a missing job 404', async () => {
    const app = build();
    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999']) {
      const res = await app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
      assert.equal(res.statusCode, 400, id);
      assert.deepEqual([errorOf(res).code, errorOf(res).where?.field], ['TIDE_API_BAD_JOB_ID', 'id']);
    }
    const res = await app.inject({ method: 'GET', url: '/v1/jobs/987654321' });
    assert.equal(res.statusCode, 404);
    assert.equal(errorOf(res).code, 'TIDE_API_JOB_NOT_FOUND');
  });

  test('GET /v1/queues reports each queue', async () => {
    const app = build();
    await post(app, { jobs: [{ handler: 'hash', queue: 'stats-q' }, { handler: 'hash', queue: 'stats-q' }] });
    const res = await app.inject({ method: 'GET', url: '/v1/queues' });
    assert.equal(res.statusCode, 200);
    const q = (res.json() as { queues: Array<Record<string, unknown>> }).queues.find((s) => s.queue === 'stats-q');
    assert.ok(q);
    assert.equal(q.ready, 2);
    assert.equal(q.arrivals_total, 2);
    assert.equal(q.dead, 0);
  });

  test('POST /v1/jobs/:id/retry brings a dead job back; others are 409 or 404', async () => {
    const app = build();
    const { id } = (await post(app, { handler: 'hash', queue: 'retry-q', max_attempts: 1 })).json() as { id: string };
    const [claimed] = await engine.claim('test-worker', ['retry-q'], 1);
    assert.equal(claimed?.id, id);
    const outcome = await engine.fail(id, 'test-worker', new Error('boom'));
    assert.ok(outcome);
    assert.equal(((await app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as { state: string }).state, 'dead');

    const res = await app.inject({ method: 'POST', url: `/v1/jobs/${id}/retry` });
    assert.equal(res.statusCode, 200, res.body);
    const job = res.json() as { state: string; attempts: number; last_error: string };
    assert.deepEqual([job.state, job.attempts], ['ready', 0]);

    const again = await app.inject({ method: 'POST', url: `/v1/jobs/${id}/retry` });
    assert.equal(again.statusCode, 409);
    assert.equal(errorOf(again).code, 'TIDE_API_NOT_RETRYABLE');
    const missing = await app.inject({ method: 'POST', url: '/v1/jobs/987654321/retry' });
    assert.equal(missing.statusCode, 404);
    const bad = await app.inject({ method: 'POST', url: '/v1/jobs/x/retry' });
    assert.equal(errorOf(bad).code, 'TIDE_API_BAD_JOB_ID');
  });

  test('an unknown route is a coded 404', async () => {
    const res = await build().inject({ method: 'GET', url: '/v2/nothing?x=1' });
    assert.equal(res.statusCode, 404);
    assert.equal(errorOf(res).code, 'TIDE_API_NOT_FOUND');
  });
});

describe('keys and limits', () => {
  test('API keys: missing or wrong is 401; /health and /metrics stay open', async () => {
    const app = build({ apiKeys: ['key-one', 'key-two'] });
    let res = await post(app, { handler: 'hash' });
    assert.equal(res.statusCode, 401);
    assert.deepEqual([errorOf(res).code, errorOf(res).where?.field], ['TIDE_API_UNAUTHORIZED', 'x-api-key']);
    res = await post(app, { handler: 'hash' }, { 'x-api-key': 'key-three' });
    assert.equal(res.statusCode, 401);
    res = await post(app, { handler: 'hash' }, { 'x-api-key': 'key-two' });
    assert.equal(res.statusCode, 202);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/queues' })).statusCode, 401);
    assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
  });

  test('rate limit per client: 429 with Retry-After and a coded body; other clients and probes unaffected', async () => {
    const app = build({ apiKeys: ['alice', 'bob'], rateLimit: { max: 2, windowMs: 60_000 } });
    const get = (key: string) => app.inject({ method: 'GET', url: '/v1/queues', headers: { 'x-api-key': key } });
    assert.equal((await get('alice')).statusCode, 200);
    assert.equal((await get('alice')).statusCode, 200);
    const limited = await get('alice');
    assert.equal(limited.statusCode, 429);
    assert.equal(errorOf(limited).code, 'TIDE_API_RATE_LIMITED');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${String(limited.headers['retry-after'])}`);
    assert.equal((await get('bob')).statusCode, 200);
    for (let i = 0; i < 3; i++) assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  });
});

describe('health, metrics, pool, plugins', () => {
  test('/health: 200 with its fields when the database answers, 503 with Retry-After when not', async () => {
    let clock = 1_000_000;
    const app = build({ now: () => clock });
    clock += 42_000;
    const res = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
    const body = res.json() as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['database', 'hostname', 'pid', 'status', 'uptime_s', 'version']);
    assert.deepEqual([body.status, body.database, body.version, body.pid, body.uptime_s], ['ok', 'up', '9.9.9-test', process.pid, 42]);
    assert.equal(typeof body.hostname, 'string');

    const down = build({ dbCheck: () => Promise.reject(new Error('connect ECONNREFUSED')) });
    const res2 = await down.inject({ method: 'GET', url: '/health' });
    assert.equal(res2.statusCode, 503);
    assert.equal((res2.json() as { database: string }).database, 'down');
    assert.ok(Number(res2.headers['retry-after']) > 0);
  });

  test('/metrics: the request histogram by route pattern and status, process metrics, a registry per server', async () => {
    const app = build();
    const other = build();
    const { id } = (await post(app, { handler: 'hash' })).json() as { id: string };
    await app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
    await app.inject({ method: 'GET', url: '/v1/jobs/987654321' });
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(text, /# TYPE http_request_duration_seconds histogram/);
    assert.match(text, /http_request_duration_seconds_count\{method="POST",route="\/v1\/jobs",status_code="202"\} 1/);
    assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\/v1\/jobs\/:id",status_code="200"\} 1/);
    assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\/v1\/jobs\/:id",status_code="404"\} 1/);
    assert.doesNotMatch(text, new RegExp(`route="/v1/jobs/${id}"`), 'labels carry the pattern, never the raw URL');
    assert.match(text, /process_cpu_user_seconds_total/);
    // the queue's gauges and counters, through registerQueueMetrics
    assert.match(text, /# TYPE tide_queue_ready gauge/);
    assert.match(text, /tide_queue_ready\{queue="default"\} \d+/);
    assert.match(text, /tide_queue_oldest_ready_age_seconds\{queue="default"\} [\d.e-]+/);
    assert.match(text, /tide_queue_arrivals_total\{queue="default"\} [1-9]\d*/);
    const otherText = (await other.inject({ method: 'GET', url: '/metrics' })).body;
    assert.doesNotMatch(otherText, /route="\/v1\/jobs",status_code="202"/, 'each server counts only its own requests');
  });

  test('/db/pool/stats reports the pool', async () => {
    const res = await build().inject({ method: 'GET', url: '/db/pool/stats' });
    assert.equal(res.statusCode, 200);
    const body = res.json() as { total: number; idle: number; waiting: number };
    assert.deepEqual(Object.keys(body).sort(), ['idle', 'total', 'waiting']);
    assert.ok(body.total >= body.idle);
  });

  test('user routes load from a plugin module; a broken one fails with TIDE_API_ROUTES_PLUGIN', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tide-api-plugin-'));
    try {
      const good = path.join(dir, 'routes.mjs');
      await writeFile(good, "export default async function routes(app) { app.get('/hello', async () => ({ hello: 'world' })); }\n");
      const bad = path.join(dir, 'bad.mjs');
      await writeFile(bad, 'export const nothing = 1;\n');
      const app = build({ plugins: [good], apiKeys: ['k'] });
      const res = await app.inject({ method: 'GET', url: '/hello', headers: { 'x-api-key': 'k' } });
      assert.deepEqual(res.json(), { hello: 'world' });
      assert.equal((await app.inject({ method: 'GET', url: '/hello' })).statusCode, 401, 'user routes sit behind the same keys');

      for (const plugin of [bad, path.join(dir, 'missing.mjs')]) {
        const broken = build({ plugins: [plugin] });
        await assert.rejects(async () => {
          await broken.ready();
        }, (err: unknown) => err instanceof TideError && err.code === 'TIDE_API_ROUTES_PLUGIN');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
