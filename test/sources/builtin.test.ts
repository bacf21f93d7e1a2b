import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { isTideError } from '../../src/errors.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { builtinConfig, createBuiltinSource } from '../../src/sources/builtin.js';
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
