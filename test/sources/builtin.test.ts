import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import pg from 'pg';

import { isTideError } from '../../src/errors.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { builtinConfig, createBuiltinSource, serviceWindow } from '../../src/sources/builtin.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';
import { sourceConformance } from './conformance.js';
import { withPort } from './helpers.js';

const url = process.env.DATABASE_URL ?? '';
const signal = () => new AbortController().signal;
const ctx = { now: () => 13_000 };
let schema: TestSchema;
let engine: PostgresQueue;

before(async () => {
  schema = await freshSchema('src_builtin');
  engine = await createPostgresQueue({ connectionString: url, schema: schema.schema, poolSize: 2 });
  // One job in "warm" so the conformance suite reads a queue that exists.
  await engine.enqueue({ queue: 'warm', handler: 'sleep' });
});

after(async () => {
  await engine.close();
  await schema.drop();
});

function source(queue: string, extra: Record<string, unknown> = {}) {
  return createBuiltinSource(builtinConfig.parse({ connection_string: url, schema: schema.schema, queue, ...extra }), ctx);
}

sourceConformance('builtin', {
  create: (c) => createBuiltinSource(builtinConfig.parse({ connection_string: url, schema: schema.schema, queue: 'warm' }), c),
  hanging: (_host, port, timeoutMs, c) => createBuiltinSource(builtinConfig.parse({ connection_string: withPort(url, port), queue: 'warm', timeout_ms: timeoutMs }), c),
  unreachable: (port, c) => createBuiltinSource(builtinConfig.parse({ connection_string: withPort(url, port), queue: 'warm' }), c),
});

function byMetric(samples: Array<{ metric: string; value: number }>): Record<string, number> {
  return Object.fromEntries(samples.map((s) => [s.metric, s.value]));
}

test('QueueStats become the well-known metrics, service time mean from the histogram sum / count', async () => {
  const s = source('work');
  try {
    // Made runnable a minute ago: the oldest ready job has waited at least 60 s (server clock).
    await engine.enqueueMany([0, 1, 2].map(() => ({ queue: 'work', handler: 'sleep', runAt: Date.now() - 60_000 })));
    const before = byMetric(await s.read(signal()));
    assert.equal(before.queue_depth, 3);
    assert.equal(before.in_flight, 0);
    assert.equal(before.arrivals_total, 3);
    assert.equal(before.completions_total, 0);
    assert.ok(before.queue_oldest_age_seconds! >= 60 && before.queue_oldest_age_seconds! < 600, `age ${before.queue_oldest_age_seconds}`);
    assert.equal(before.service_time_mean_seconds, undefined);
    assert.match(s.notes!().join(' '), /no job has completed yet/);

    const claimed = await engine.claim('worker-1', ['work'], 2);
    assert.equal(claimed.length, 2);
    assert.ok(await engine.complete(claimed[0]!.id, 'worker-1', null, 500));
    const afterOne = await s.read(signal());
    assert.ok(afterOne.every((x) => x.at === 13_000));
    assert.deepEqual({ ...byMetric(afterOne), queue_oldest_age_seconds: 0 }, {
      queue_depth: 1,
      in_flight: 1,
      arrivals_total: 3,
      completions_total: 1,
      queue_oldest_age_seconds: 0,
      service_time_mean_seconds: 0.5,
      service_time_scv: 0,
    });
    assert.ok(await engine.complete(claimed[1]!.id, 'worker-1', null, 1_500));
    const afterTwo = byMetric(await s.read(signal()));
    assert.equal(afterTwo.service_time_mean_seconds, 1);
    // 0.5 s and 1.5 s: second moment 1.25 over a mean of 1, so scv 0.25 (the sums of squares the queue keeps)
    assert.ok(Math.abs(afterTwo.service_time_scv! - 0.25) < 1e-9, String(afterTwo.service_time_scv));
  } finally {
    await s.close();
  }
});

test('the service time is the mean of the last minute\'s jobs; a minute without completions keeps the last mean', async () => {
  let now = 1_000_000;
  const s = createBuiltinSource(builtinConfig.parse({ connection_string: url, schema: schema.schema, queue: 'window' }), { now: () => now });
  const finish = async (n: number, durationMs: number) => {
    await engine.enqueueMany(Array.from({ length: n }, () => ({ queue: 'window', handler: 'sleep' })));
    for (const job of await engine.claim('worker-w', ['window'], n)) assert.ok(await engine.complete(job.id, 'worker-w', null, durationMs));
  };
  const mean = async () => byMetric(await s.read(signal())).service_time_mean_seconds;
  try {
    await finish(4, 1000);
    assert.equal(await mean(), 1); // the first reading: the queue's history so far
    now += 30_000;
    await finish(4, 3000);
    assert.equal(await mean(), 3); // the jobs since the reading before
    now += 40_000;
    await finish(2, 3000);
    // a minute back is the first reading: the last minute's six jobs, all of 3 s (the lifetime mean is 2.2 s)
    assert.equal(await mean(), 3);
    now += 120_000;
    assert.equal(await mean(), 3, 'no completion within the minute: the last mean stands');
    await finish(1, 500);
    assert.equal(await mean(), 0.5);
  } finally {
    await s.close();
  }
});

test('serviceWindow: starts over when the counts go down (the tables made again)', () => {
  const read = serviceWindow(60_000);
  assert.equal(read(0, { sum: 0, count: 0, sumSquares: 0 }), undefined);
  assert.equal(read(10_000, { sum: 10, count: 10, sumSquares: 10 })?.mean, 1);
  assert.equal(read(20_000, { sum: 2, count: 1, sumSquares: 4 })?.mean, 2);
  assert.equal(read(30_000, { sum: 5, count: 2, sumSquares: 13 })?.mean, 3);
});

test('serviceWindow: the scv is the window\'s, from the sums of squares', () => {
  const read = serviceWindow(60_000);
  // a history whose squares were not all counted (a schema migrated to 0006 later): no scv yet
  assert.deepEqual(read(0, { sum: 100, count: 50, sumSquares: 7 }), { mean: 2 });
  // then one job of 1 s and one of 3 s: mean 2, second moment 5, scv 5 / 4 - 1
  assert.deepEqual(read(10_000, { sum: 104, count: 52, sumSquares: 17 }), { mean: 2, scv: 0.25 });
  // one job in the window: no spread within it (the core pools the windows)
  assert.deepEqual(read(80_000, { sum: 109, count: 53, sumSquares: 42 }), { mean: 5, scv: 0 });
});

test('a queue that has had no job reads as zeros with a note', async () => {
  const s = source('never');
  try {
    assert.deepEqual(byMetric(await s.read(signal())), { queue_depth: 0, queue_oldest_age_seconds: 0, arrivals_total: 0, completions_total: 0, in_flight: 0 });
    assert.match(s.notes!().join(' '), /no job yet/);
  } finally {
    await s.close();
  }
});

test('queue tables from before a migration are TIDE_SOURCE_NOT_FOUND, saying what migrates them', async () => {
  const old = await freshSchema('src_builtin_old');
  const legacy = await createPostgresQueue({ connectionString: url, schema: old.schema, poolSize: 1 });
  await legacy.close();
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const s = source('work', { schema: old.schema });
  try {
    // the schema as a version before migration 0006 left it
    await pool.query(`ALTER TABLE "${old.schema}".queue_stats DROP COLUMN st_sum_sq`);
    await pool.query(`DELETE FROM "${old.schema}".migrations WHERE id = 6`);
    await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_NOT_FOUND' && /older version/.test(err.message) && /tide worker/.test(err.message));
  } finally {
    await s.close();
    await pool.end();
    await old.drop();
  }
});

test('a schema without the queue tables is TIDE_SOURCE_NOT_FOUND (the source never migrates)', async () => {
  const s = source('work', { schema: `${schema.schema}_absent` });
  try {
    await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_NOT_FOUND' && /no queue tables/.test(err.message));
  } finally {
    await s.close();
  }
});
