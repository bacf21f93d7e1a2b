import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TideError } from '../../src/errors.js';
import { loadHandlers } from '../../src/runtime/handlers/index.js';
import { hash } from '../../src/runtime/handlers/hash.js';
import { lognormalMs, sleepMs } from '../../src/runtime/handlers/sleep.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type RunningWorker, startWorker } from '../../src/runtime/worker/worker.js';
import * as fixtures from '../fixtures/jobs.js';
import { closeRunsPool, createRunsTable } from '../fixtures/runs.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';
import { freePort } from '../helpers/net.js';

let schema: TestSchema;
let queue: PostgresQueue;
const workers = new Set<RunningWorker>();

before(async () => {
  schema = await freshSchema('tw');
  queue = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, poolSize: 3 });
  await createRunsTable(schema.url, schema.schema);
  process.env.FIXTURE_SCHEMA = schema.schema;
});

after(async () => {
  await Promise.all([...workers].map((w) => w.stop(0)));
  await closeRunsPool();
  await queue.close();
  await schema.drop();
});

const lines: string[] = [];

async function worker(options: Partial<Parameters<typeof startWorker>[0]> = {}): Promise<RunningWorker> {
  const w = await startWorker({
    connectionString: schema.url,
    schema: schema.schema,
    handlers: { ...fixtures },
    backoffBaseMs: 0,
    log: (l) => lines.push(l),
    pollMs: 50,
    ...options,
  });
  workers.add(w);
  return w;
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('built-in handlers', () => {
  test('hash hashes repeatedly and validates its payload', async () => {
    const one = await hash({ data: 'abc', rounds: 1 });
    assert.equal(one.digest, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const many = await hash({ data: 'abc', rounds: 12_000, algorithm: 'sha1' });
    assert.equal(many.digest.length, 40);
    await assert.rejects(hash({ data: 1 }), (e: TideError) => e.code === 'TIDE_HANDLER_PAYLOAD' && e.where?.field === 'payload.data');
    await assert.rejects(hash({ data: 'x', algorithm: 'nope' }), (e: TideError) => e.code === 'TIDE_HANDLER_PAYLOAD');
  });

  test('sleep takes fixed or lognormal times', () => {
    assert.equal(sleepMs({ ms: 25 }), 25);
    assert.throws(() => sleepMs({ ms: -1 }), (e: TideError) => e.code === 'TIDE_HANDLER_PAYLOAD');
    assert.throws(() => sleepMs({}), (e: TideError) => e.code === 'TIDE_HANDLER_PAYLOAD');
    // a seeded generator: the sample mean of many draws is near the asked mean
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const draws = Array.from({ length: 20_000 }, () => lognormalMs(100, 0.5, random));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    assert.ok(Math.abs(mean - 100) < 3, `mean ${mean}`);
    assert.equal(lognormalMs(100, 0), 100);
  });

  test('handler modules load from named or default exports, with coded errors otherwise', async () => {
    const handlers = await loadHandlers('test/fixtures/jobs.ts');
    assert.deepEqual(Object.keys(handlers).sort(), ['boom', 'echo', 'record']);
    await assert.rejects(loadHandlers('test/fixtures/missing.ts'), (e: TideError) => e.code === 'TIDE_HANDLERS_LOAD' && e.where?.file === 'test/fixtures/missing.ts');
    await assert.rejects(loadHandlers('test/fixtures/runs.ts').then(() => loadHandlers('package.json')), (e: TideError) => e.code === 'TIDE_HANDLERS_LOAD');
  });
});

describe('worker in process', () => {
  test('runs jobs to completion, stores results, fails unknown handlers without crashing', async () => {
    const q = 'inproc';
    const port = await freePort();
    const w = await worker({ queues: [q], concurrency: 4, metricsPort: port, metricsHost: '127.0.0.1' });
    const echo = await queue.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ queue: q, handler: 'echo', payload: { i } })));
    const hashed = await queue.enqueue({ queue: q, handler: 'hash', payload: { data: 'abc', rounds: 1 } });
    const slept = await queue.enqueue({ queue: q, handler: 'sleep', payload: { ms: 5 } });
    const unknown = await queue.enqueue({ queue: q, handler: 'no-such-handler', maxAttempts: 1 });
    const failing = await queue.enqueue({ queue: q, handler: 'boom', maxAttempts: 2 });
    await until(async () => {
      const [s] = await queue.stats(q);
      return s!.completed === 32 && s!.dead === 2;
    }, 10_000, 'all jobs finished');
    assert.deepEqual((await queue.getJob(echo[7]!.id))!.result, { i: 7 });
    assert.equal(((await queue.getJob(hashed.id))!.result as { digest: string }).digest.slice(0, 8), 'ba7816bf');
    assert.deepEqual((await queue.getJob(slept.id))!.result, { slept_ms: 5 });
    const u = (await queue.getJob(unknown.id))!;
    assert.equal(u.state, 'dead');
    assert.match(u.lastError!, /^TIDE_HANDLER_UNKNOWN: No handler "no-such-handler"/);
    const f = (await queue.getJob(failing.id))!;
    assert.equal(f.state, 'dead');
    assert.equal(f.attempts, 2);
    assert.equal(f.lastError, 'boom');

    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(health.status, 200);
    const body = (await health.json()) as { status: string; pid: number; processed: number };
    assert.equal(body.status, 'ok');
    assert.equal(body.pid, process.pid);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /tide_worker_jobs_processed_total\{queue="inproc",outcome="completed"\} 32/);
    assert.match(metrics, /process_cpu_user_seconds_total/);
    await w.stop();
    workers.delete(w);
    assert.equal(w.processed, 32 + 1 + 2);
  });

  test('stop() with a short grace releases unfinished jobs at once, attempt not counted', async () => {
    const q = 'release';
    const w = await worker({ queues: [q], concurrency: 3 });
    const jobs = await queue.enqueueMany(Array.from({ length: 3 }, () => ({ queue: q, handler: 'record', payload: { hangFirst: true } })));
    await until(async () => (await queue.stats(q))[0]!.active === 3, 10_000, 'jobs claimed');
    await w.stop(50);
    workers.delete(w);
    for (const { id } of jobs) {
      const job = (await queue.getJob(id))!;
      assert.equal(job.state, 'ready');
      assert.equal(job.attempts, 0);
      assert.equal(job.lockedBy, null);
    }
    // released, not lost: the next worker takes them (still attempt 1)
    const next = await worker({ queues: [q], concurrency: 3 });
    await until(async () => (await queue.stats(q))[0]!.active === 3, 10_000, 'jobs claimed again');
    await next.stop(0);
    workers.delete(next);
  });

  /** 2,000 quick jobs (the worker learns its start rate), then a slow one, then 40 quick ones. */
  async function aheadScenario(q: string): Promise<{ w: RunningWorker; aheadSeen: number }> {
    const w = await worker({ queues: [q], concurrency: 1, leaseMs: 300, sweepMs: 50 });
    await queue.enqueueMany(Array.from({ length: 2000 }, () => ({ queue: q, handler: 'echo', priority: 3 })));
    const slow = await queue.enqueue({ queue: q, handler: 'sleep', payload: { ms: 900 }, priority: 2 });
    await queue.enqueueMany(Array.from({ length: 40 }, () => ({ queue: q, handler: 'echo', priority: 1 })));
    await until(async () => (await queue.getJob(slow.id))?.state === 'active', 30_000, 'the slow job running');
    // one slot, more than one job leased: the rest were claimed ahead
    return { w, aheadSeen: (await queue.stats(q))[0]!.active - 1 };
  }

  test('jobs claimed ahead of a free slot keep their lease while they wait: none runs twice', async () => {
    const q = 'ahead';
    const { w, aheadSeen } = await aheadScenario(q);
    assert.ok(aheadSeen > 0, 'jobs were claimed ahead while the slow one ran');
    // the slow job outlasts the 300 ms lease three times over, with sweeps every 50 ms
    await until(async () => (await queue.stats(q))[0]!.completionsTotal === 2041, 30_000, 'all completed');
    const { rows } = await queue.pool.query(`SELECT count(*)::int AS n FROM "${schema.schema}".jobs WHERE queue = $1 AND attempts <> 1`, [q]);
    assert.equal(rows[0].n, 0, 'every job ran exactly once');
    await w.stop();
    workers.delete(w);
  });

  test('stop() releases the jobs claimed ahead at once, attempt not counted; nothing stays locked', async () => {
    const q = 'ahead-stop';
    const { w, aheadSeen } = await aheadScenario(q);
    assert.ok(aheadSeen > 0, 'jobs were claimed ahead while the slow one ran');
    await w.stop(0);
    workers.delete(w);
    const { rows } = await queue.pool.query<{ state: string; attempts: number; locked: boolean; n: number }>(
      `SELECT state, attempts, locked_by IS NOT NULL AS locked, count(*)::int AS n FROM "${schema.schema}".jobs WHERE queue = $1 GROUP BY 1, 2, 3 ORDER BY 1`,
      [q],
    );
    const ready = rows.filter((r) => r.state === 'ready');
    assert.deepEqual(rows.map((r) => r.state), ['completed', 'ready'], JSON.stringify(rows));
    assert.ok(ready.every((r) => r.attempts === 0 && !r.locked), JSON.stringify(rows));
    assert.equal(ready.reduce((n, r) => n + r.n, 0), 41, 'the slow job and the 40 after it are back, ready');
  });

  test('jobs claimed ahead that turn out slow go back to the queue instead of waiting here', async () => {
    const q = 'ahead-slow';
    const w = await worker({ queues: [q], concurrency: 1 });
    await queue.enqueueMany(Array.from({ length: 2000 }, () => ({ queue: q, handler: 'echo', priority: 2 })));
    const slow = await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: q, handler: 'sleep', payload: { ms: 1000 }, priority: 1 })));
    const slowIds = slow.map((j) => j.id);
    const slowIn = async (state: string, attempts?: number) =>
      (
        await queue.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${schema.schema}".jobs WHERE id = ANY($1::bigint[]) AND state = $2 AND ($3::int IS NULL OR attempts = $3)`,
          [slowIds, state, attempts ?? null],
        )
      ).rows[0]!.n;
    // one slot, more than one slow job leased: the others were claimed ahead
    await until(async () => (await slowIn('active')) > 1, 30_000, 'slow jobs claimed ahead');
    // the slot is busy for a second per job: what waits ahead goes back (ready, attempt not counted)
    await until(async () => (await slowIn('active')) <= 1 && (await slowIn('ready', 0)) > 0, 10_000, 'the surplus released');
    await w.stop(0);
    workers.delete(w);
  });

  test('a job whose lease was taken over is aborted here and cannot be finished by this worker', async () => {
    const q = 'stolen';
    const w = await worker({ queues: [q], concurrency: 1, leaseMs: 300 });
    const { id } = await queue.enqueue({ queue: q, handler: 'record', payload: { hangFirst: true } });
    await until(async () => (await queue.getJob(id))?.state === 'active', 10_000, 'claimed');
    // another holder now (as if the lease had expired and another worker had claimed it)
    await queue.pool.query(`UPDATE "${schema.schema}".jobs SET locked_by = 'thief' WHERE id = $1`, [id]);
    await until(async () => lines.some((l) => l.includes(`job ${id}: lease lost`)), 10_000, 'the lease loss noticed');
    await until(async () => lines.some((l) => l.startsWith(`job ${id} (stolen/record) failed`) && l.endsWith('-> lease lost')), 10_000, 'the run aborted');
    const job = (await queue.getJob(id))!;
    assert.equal(job.state, 'active');
    assert.equal(job.lockedBy, 'thief', 'the stale worker did not touch the new holder\'s job');
    assert.equal(job.lastError, null);
    await w.stop(0);
    workers.delete(w);
  });

  test('a job finished here whose lease lapsed before its completion was written is not run again when claimed back', async () => {
    const q = 'refound';
    // completions wait 3 s before they are written; the sweep runs every 50 ms
    const w = await worker({ queues: [q], concurrency: 1, completionDelayMs: 3000, sweepMs: 50 });
    const { id } = await queue.enqueue({ queue: q, handler: 'record', payload: {} });
    const runs = async () => (await queue.pool.query(`SELECT count(*)::int AS n FROM "${schema.schema}".runs WHERE job_id = $1`, [id])).rows[0].n as number;
    const ended = async () => (await queue.pool.query(`SELECT count(*)::int AS n FROM "${schema.schema}".runs WHERE job_id = $1 AND ended IS NOT NULL`, [id])).rows[0].n as number;
    await until(async () => (await ended()) === 1, 10_000, 'the run finished');
    // its lease runs out while the completion waits (as when heartbeats stall): swept, then claimed back
    await queue.pool.query(`UPDATE "${schema.schema}".jobs SET lease_until = now() - interval '1 second' WHERE id = $1`, [id]);
    await until(async () => (await queue.getJob(id))!.attempts === 2, 10_000, 'claimed again');
    await until(async () => (await queue.getJob(id))?.state === 'completed', 10_000, 'completed');
    assert.equal(await runs(), 1, 'the handler ran once');
    await w.stop();
    workers.delete(w);
  });

  test('finished jobs older than the retention are purged', async () => {
    const q = 'retention';
    const w = await worker({ queues: [q], concurrency: 2, retentionMs: 1, purgeEveryMs: 20 });
    const jobs = await queue.enqueueMany(Array.from({ length: 5 }, () => ({ queue: q, handler: 'echo' })));
    await until(async () => (await queue.stats(q))[0]!.completionsTotal === 5, 10_000, 'completed');
    await until(async () => (await queue.getJob(jobs[4]!.id)) === undefined, 10_000, 'purged');
    const [s] = await queue.stats(q);
    assert.equal(s!.completed, 0);
    assert.equal(s!.completionsTotal, 5);
    await w.stop();
    workers.delete(w);
  });
});
