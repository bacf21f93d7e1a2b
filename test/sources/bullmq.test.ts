import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { bullmqConfig, createBullmqSource } from '../../src/sources/bullmq.js';
import { sourceConformance } from './conformance.js';
import { uniqueName } from './helpers.js';

const url = process.env.REDIS_URL ?? '';
const skip = !url && 'REDIS_URL is not set';
const signal = () => new AbortController().signal;
/** The injected "now": jobs below are stamped 30, 20 and 10 s before it. */
const NOW = 1_767_225_600_000;
const name = uniqueName('bullmq');
const emptyName = uniqueName('bullmq_empty');
let conn: Redis | undefined;
let queue: Queue | undefined;
let empty: Queue | undefined;

before(async () => {
  if (skip) return;
  conn = new Redis(url, { maxRetriesPerRequest: null });
  queue = new Queue(name, { connection: conn });
  empty = new Queue(emptyName, { connection: conn });
  // Enqueued oldest first, each with a known creation time.
  await queue.add('a', {}, { timestamp: NOW - 30_000, jobId: 'a' });
  await queue.add('b', {}, { timestamp: NOW - 20_000, jobId: 'b' });
  await queue.add('c', {}, { timestamp: NOW - 10_000, jobId: 'c' });
});

after(async () => {
  if (!conn) return;
  await queue!.obliterate({ force: true });
  await empty!.obliterate({ force: true });
  await queue!.close();
  await empty!.close();
  await conn.quit();
});

sourceConformance('bullmq', {
  skip,
  create: (c) => createBullmqSource(bullmqConfig.parse({ url, queue: name }), c),
  hanging: (host, port, timeoutMs, c) => createBullmqSource(bullmqConfig.parse({ url: `redis://${host}:${port}`, queue: name, timeout_ms: timeoutMs }), c),
  unreachable: (port, c) => createBullmqSource(bullmqConfig.parse({ url: `redis://127.0.0.1:${port}`, queue: name }), c),
});

function byMetric(samples: Array<{ metric: string; value: number }>): Record<string, number> {
  return Object.fromEntries(samples.map((s) => [s.metric, s.value]));
}

test('which end of the wait list is oldest: ascending order (and getWaiting) gives the oldest, descending the newest', { skip }, async () => {
  // Jobs a, b, c were enqueued in that order at known times: the tail of the list is the oldest.
  assert.deepEqual((await queue!.getJobs(['wait'], 0, 0, true)).map((j) => j.id), ['a']);
  assert.deepEqual((await queue!.getJobs(['wait'], 0, 0, false)).map((j) => j.id), ['c']);
  assert.deepEqual((await queue!.getWaiting(0, 0)).map((j) => j.id), ['a']);
  assert.deepEqual((await queue!.getJobs(['wait'], 0, -1, true)).map((j) => j.timestamp), [NOW - 30_000, NOW - 20_000, NOW - 10_000]);
});

test('waiting and active counts and the oldest waiting job\'s age, on the injected clock', { skip }, async () => {
  const source = createBullmqSource(bullmqConfig.parse({ url, queue: name }), { now: () => NOW });
  try {
    assert.deepEqual(byMetric(await source.read(signal())), { queue_depth: 3, in_flight: 0, queue_oldest_age_seconds: 30 });
    // A LIFO job goes to the tail (it runs next), but it is not the oldest.
    await queue!.add('d', {}, { timestamp: NOW - 5_000, jobId: 'd', lifo: true });
    // A prioritized job waits in its own set; an older one there counts.
    await queue!.add('e', {}, { timestamp: NOW - 45_000, jobId: 'e', priority: 1 });
    assert.deepEqual(byMetric(await source.read(signal())), { queue_depth: 5, in_flight: 0, queue_oldest_age_seconds: 45 });
    await queue!.remove('e');
    await queue!.remove('d');
    assert.deepEqual(byMetric(await source.read(signal())), { queue_depth: 3, in_flight: 0, queue_oldest_age_seconds: 30 });
    // A worker takes the oldest job: it is in flight, and the next oldest is b.
    const worker = new Worker(name, null, { connection: conn!, autorun: false });
    try {
      const job = await worker.getNextJob('token', { block: false });
      assert.equal(job?.id, 'a');
      assert.deepEqual(byMetric(await source.read(signal())), { queue_depth: 2, in_flight: 1, queue_oldest_age_seconds: 20 });
      await job!.moveToCompleted('done', 'token', false);
      assert.deepEqual(byMetric(await source.read(signal())), { queue_depth: 2, in_flight: 0, queue_oldest_age_seconds: 20 });
    } finally {
      await worker.close();
    }
  } finally {
    await source.close();
  }
});

test('an empty queue reports 0 waiting and an oldest age of 0', { skip }, async () => {
  const source = createBullmqSource(bullmqConfig.parse({ url, queue: emptyName }), { now: () => NOW });
  try {
    assert.deepEqual(byMetric(await source.read(signal())), { queue_depth: 0, in_flight: 0, queue_oldest_age_seconds: 0 });
  } finally {
    await source.close();
  }
});
