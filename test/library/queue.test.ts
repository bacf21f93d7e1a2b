/**
 * The library's queue client (`createQueue` from 'tidescale') on the real PostgreSQL: every
 * job option reaches the row, batches, get, retry with its two refusals, stats, and a worker
 * started in-process (`startWorker`) running typed handlers from `defineHandlers`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { TideError, createQueue, defineHandlers, startWorker } from '../../src/index.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

const handlers = defineHandlers({
  greet: async (payload: { name: string }) => `hello ${payload.name}`,
  explode: async (_payload: { why: string }) => {
    throw new Error('boom');
  },
});

let db: TestSchema;
before(async () => {
  db = await freshSchema('lib');
});
after(async () => {
  await db.drop();
});

test('createQueue: every job option is stored; a used idempotency key returns the first job', { timeout: 60_000 }, async () => {
  const queue = await createQueue<typeof handlers>({ databaseUrl: db.url, schema: db.schema });
  try {
    const runAt = new Date(Date.now() + 3_600_000);
    const first = await queue.enqueue('greet', { name: 'ada' }, { queue: 'mail', priority: 7, runAt, maxAttempts: 5, idempotencyKey: 'k1' });
    assert.equal(first.created, true);
    const again = await queue.enqueue('greet', { name: 'other' }, { queue: 'mail', idempotencyKey: 'k1' });
    assert.deepEqual(again, { id: first.id, created: false });
    const job = await queue.getJob(first.id);
    assert.ok(job);
    assert.equal(job.queue, 'mail');
    assert.equal(job.handler, 'greet');
    assert.deepEqual(job.payload, { name: 'ada' });
    assert.equal(job.priority, 7);
    assert.equal(job.maxAttempts, 5);
    assert.equal(job.idempotencyKey, 'k1');
    assert.equal(job.state, 'delayed');
    assert.ok(Math.abs(job.runAt - runAt.getTime()) < 1000, `run_at ${job.runAt} vs ${runAt.getTime()}`);

    const delayed = await queue.enqueue('greet', { name: 'bo' }, { delayMs: 60_000 });
    const delayedJob = await queue.getJob(delayed.id);
    assert.equal(delayedJob?.queue, 'default');
    assert.ok(delayedJob && delayedJob.runAt - delayedJob.createdAt >= 59_000);

    const many = await queue.enqueueMany([
      { handler: 'greet', payload: { name: 'x' }, queue: 'batch' },
      { handler: 'explode', payload: { why: 'y' }, queue: 'batch', maxAttempts: 1 },
    ]);
    assert.equal(many.length, 2);
    assert.ok(many.every((r) => r.created));
    const [stats] = await queue.stats('batch');
    assert.equal(stats?.ready, 2);

    // a bad option is the engine's own error, naming the field
    await assert.rejects(
      queue.enqueue('greet', { name: 'z' }, { maxAttempts: 0 }),
      (err: unknown) => err instanceof TideError && err.code === 'TIDE_QUEUE_INPUT' && err.where?.field === 'maxAttempts',
    );
    await assert.rejects(queue.retry('999999999'), (err: unknown) => err instanceof TideError && err.code === 'TIDE_API_JOB_NOT_FOUND');
    await assert.rejects(queue.retry(first.id), (err: unknown) => err instanceof TideError && err.code === 'TIDE_API_NOT_RETRYABLE');
  } finally {
    await queue.close();
  }
});

test('a worker started in-process runs typed handlers; a dead job comes back with retry', { timeout: 60_000 }, async () => {
  const queue = await createQueue<typeof handlers>({ databaseUrl: db.url, schema: db.schema });
  const worker = await startWorker({ connectionString: db.url, schema: db.schema, queues: ['work'], handlers, pollMs: 50, log: () => undefined });
  try {
    const ok = await queue.enqueue('greet', { name: 'grace' }, { queue: 'work' });
    const bad = await queue.enqueue('explode', { why: 'test' }, { queue: 'work', maxAttempts: 1 });
    const settled = async (id: string, state: string) => {
      for (;;) {
        const job = await queue.getJob(id);
        if (job?.state === state) return job;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    assert.equal((await settled(ok.id, 'completed')).result, 'hello grace');
    assert.equal((await settled(bad.id, 'dead')).lastError, 'boom');
    const retried = await queue.retry(bad.id);
    assert.equal(retried.attempts, 0);
    await settled(bad.id, 'dead');
    const [stats] = await queue.stats('work');
    assert.equal(stats?.completed, 1);
  } finally {
    await worker.stop(1000);
    await queue.close();
  }
});

// Compile-time checks (`npm run typecheck`): the handler map types enqueue's name and payload.
export async function typedEnqueue(queue: Awaited<ReturnType<typeof createQueue<typeof handlers>>>): Promise<void> {
  await queue.enqueue('greet', { name: 'ok' });
  // @ts-expect-error: greet takes { name: string }
  await queue.enqueue('greet', { nam: 'typo' });
  // @ts-expect-error: no handler is named greeet
  await queue.enqueue('greeet', { name: 'x' });
  // @ts-expect-error: a batch job's payload is typed by its handler too
  await queue.enqueueMany([{ handler: 'explode', payload: { name: 'x' } }]);
}
