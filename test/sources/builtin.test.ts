import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

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
    });
    assert.ok(await engine.complete(claimed[1]!.id, 'worker-1', null, 1_500));
    assert.equal(byMetric(await s.read(signal())).service_time_mean_seconds, 1);
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
  assert.equal(read(0, 0, 0), undefined);
  assert.equal(read(10_000, 10, 10), 1);
  assert.equal(read(20_000, 2, 1), 2);
  assert.equal(read(30_000, 5, 2), 3);
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

test('a schema without the queue tables is TIDE_SOURCE_NOT_FOUND (the source never migrates)', async () => {
  const s = source('work', { schema: `${schema.schema}_absent` });
  try {
    await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_NOT_FOUND' && /no queue tables/.test(err.message));
  } finally {
    await s.close();
  }
});
