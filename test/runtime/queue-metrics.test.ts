import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Registry } from 'prom-client';

import { registerQueueMetrics } from '../../src/runtime/queue/metrics.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

let schema: TestSchema;
let queue: PostgresQueue;

before(async () => {
  schema = await freshSchema('tqm');
  queue = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, poolSize: 2 });
});

after(async () => {
  await queue.close();
  await schema.drop();
});

test('queue metrics render in the Prometheus text format from one stats read per scrape', async () => {
  await queue.enqueueMany([
    { queue: 'm', handler: 'h' },
    { queue: 'm', handler: 'h' },
    { queue: 'm', handler: 'h', delayMs: 60_000 },
  ]);
  const [job] = await queue.claim('w', ['m'], 1);
  await queue.complete(job!.id, 'w', null, 30);
  let reads = 0;
  const counting = new Proxy(queue, {
    get(target, prop, receiver) {
      if (prop === 'stats') return (...args: []) => (reads++, target.stats(...args));
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  let clock = 1_000_000;
  const registry = new Registry();
  registerQueueMetrics(registry, counting, { now: () => clock });
  const text = await registry.metrics();
  assert.equal(reads, 1);
  assert.match(text, /# TYPE tide_queue_ready gauge\ntide_queue_ready\{queue="m"\} 1\n/);
  assert.match(text, /tide_queue_delayed\{queue="m"\} 1\n/);
  assert.match(text, /tide_queue_active\{queue="m"\} 0\n/);
  assert.match(text, /tide_queue_dead\{queue="m"\} 0\n/);
  assert.match(text, /# TYPE tide_queue_arrivals_total counter\ntide_queue_arrivals_total\{queue="m"\} 3\n/);
  assert.match(text, /tide_queue_completions_total\{queue="m"\} 1\n/);
  assert.match(text, /tide_queue_failures_total\{queue="m"\} 0\n/);
  assert.match(text, /tide_queue_oldest_ready_age_seconds\{queue="m"\} [\d.e-]+\n/);
  assert.match(text, /# TYPE tide_job_service_time_seconds histogram/);
  assert.match(text, /tide_job_service_time_seconds_bucket\{queue="m",le="0.025"\} 0\n/);
  assert.match(text, /tide_job_service_time_seconds_bucket\{queue="m",le="0.05"\} 1\n/);
  assert.match(text, /tide_job_service_time_seconds_bucket\{queue="m",le="\+Inf"\} 1\n/);
  assert.match(text, /tide_job_service_time_seconds_sum\{queue="m"\} 0.03\n/);
  assert.match(text, /tide_job_service_time_seconds_count\{queue="m"\} 1\n/);
  await registry.metrics();
  clock += 999;
  await registry.metrics();
  assert.equal(reads, 1, 'scrapes within a second of the read share it');
  clock += 1;
  await registry.metrics();
  assert.equal(reads, 2, 'a scrape a second after the read reads again');
});

test('a failed read serves no later scrape', async () => {
  let fail = true;
  let reads = 0;
  const flaky = new Proxy(queue, {
    get(target, prop, receiver) {
      if (prop === 'stats') return () => (reads++, fail ? Promise.reject(new Error('database down')) : target.stats());
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  const registry = new Registry();
  registerQueueMetrics(registry, flaky, { now: () => 5_000 });
  await assert.rejects(registry.metrics(), /database down/);
  fail = false;
  assert.match(await registry.metrics(), /tide_queue_ready/);
  assert.equal(reads, 2);
});
