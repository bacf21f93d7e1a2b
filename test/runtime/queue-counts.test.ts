/**
 * The queue's figures are kept by the statements that move jobs, not counted on every read:
 * after a seeded storm of concurrent enqueues (due, delayed, with priorities and repeated
 * idempotency keys), claims, completions, failures (retried and dead), releases, lease
 * expiries, retries of dead jobs and purges, stats() agrees exactly with a full count of the
 * rows, and a database migrated from before the counts were kept is seeded from its rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import type { QueueStats } from '../../src/runtime/queue/types.js';
import { mulberry32 } from '../../src/random.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

let schema: TestSchema;
let queue: PostgresQueue;
let sql: pg.Client;

before(async () => {
  schema = await freshSchema('tqc');
  const direct = process.env.DATABASE_UPSTREAM_URL;
  // a long backoff, so failed jobs wait out their retry ("failed") while the test looks
  queue = await createPostgresQueue({
    connectionString: schema.url,
    schema: schema.schema,
    backoffBaseMs: 600_000,
    poolSize: 6,
    ...(direct ? { directUrl: direct } : {}),
  });
  sql = new pg.Client({ connectionString: schema.url });
  await sql.connect();
});

after(async () => {
  await sql.end();
  await queue.close();
  await schema.drop();
});

const STATES = ['ready', 'delayed', 'failed', 'active', 'completed', 'dead'] as const;

type Figures = Pick<QueueStats, 'queue' | 'ready' | 'delayed' | 'failed' | 'active' | 'completed' | 'dead'> & { oldest: number };

/** The figures by a full count of the rows (what stats() used to do on every read). */
async function counted(): Promise<Figures[]> {
  const { rows } = await sql.query<Record<string, string>>(`
SELECT queue,
       count(*) FILTER (WHERE state = 'ready' AND run_at <= now()) AS ready,
       count(*) FILTER (WHERE state = 'ready' AND run_at > now() AND attempts = 0) AS delayed,
       count(*) FILTER (WHERE state = 'ready' AND run_at > now() AND attempts > 0) AS failed,
       count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE state = 'ready' AND run_at <= now())), 0) AS oldest
FROM "${schema.schema}".jobs GROUP BY queue ORDER BY queue`);
  return rows.map((r) => ({
    queue: r.queue!,
    ready: Number(r.ready),
    delayed: Number(r.delayed),
    failed: Number(r.failed),
    active: Number(r.active),
    completed: Number(r.completed),
    dead: Number(r.dead),
    oldest: Number(r.oldest),
  }));
}

async function read(): Promise<Figures[]> {
  return (await queue.stats())
    .map((s) => ({
      queue: s.queue,
      ready: s.ready,
      delayed: s.delayed,
      failed: s.failed,
      active: s.active,
      completed: s.completed,
      dead: s.dead,
      oldest: s.oldestReadyAgeSeconds,
    }))
    .filter((f) => f.ready + f.delayed + f.failed + f.active + f.completed + f.dead > 0);
}

/** Exact on every count; the oldest age within the time between the two reads. */
async function assertAgrees(step: string): Promise<void> {
  const [mine, truth] = [await read(), await counted()];
  const strip = (fs: Figures[]) => fs.map(({ oldest: _oldest, ...rest }) => rest);
  assert.deepEqual(strip(mine), strip(truth), `after ${step}`);
  for (const [i, f] of mine.entries()) {
    assert.ok(Math.abs(f.oldest - truth[i]!.oldest) < 5, `oldest ready age of ${f.queue} after ${step}: ${f.oldest} vs ${truth[i]!.oldest}`);
  }
}

describe('queue figures kept by the statements', () => {
  test('agree with a full count after a seeded storm of every transition, run concurrently', async () => {
    const random = mulberry32(20261206);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const queues = ['storm-a', 'storm-b', 'storm-c'];
    const workers = ['w1', 'w2', 'w3'];
    const held = new Map<string, string[]>(workers.map((w) => [w, []]));
    let keys = 0;

    const ops: Record<string, () => Promise<unknown>> = {
      async enqueue() {
        const n = 1 + Math.floor(random() * 20);
        const jobs = Array.from({ length: n }, () => {
          const r = random();
          return {
            queue: pick(queues),
            handler: 'h',
            priority: pick([0, 0, 0, 5, -3]),
            maxAttempts: pick([1, 2, 3]),
            // due now, due in the past, or far in the future (never near the boundary while the test reads)
            ...(r < 0.15 ? { delayMs: 3_600_000 } : r < 0.3 ? { runAt: Date.now() - 60_000 } : {}),
            ...(random() < 0.2 ? { idempotencyKey: `k${Math.floor(keys++ / 2)}` } : {}),
          };
        });
        await queue.enqueueMany(jobs);
      },
      async claim() {
        const w = pick(workers);
        const got = await queue.claim(w, random() < 0.3 ? ['*'] : [pick(queues)], 1 + Math.floor(random() * 8));
        held.get(w)!.push(...got.map((j) => j.id));
      },
      async complete() {
        const w = pick(workers);
        const mine = held.get(w)!.splice(0, 1 + Math.floor(random() * 5));
        await queue.completeMany(w, mine.map((id) => ({ id, result: { ok: true } })));
      },
      async fail() {
        const w = pick(workers);
        const id = held.get(w)!.shift();
        if (id) await queue.fail(id, w, new Error('storm'));
      },
      async release() {
        const w = pick(workers);
        await queue.release(w, held.get(w)!.splice(0, 2));
      },
      async expire() {
        // time passing for one worker's leases: they run out, and the sweep takes them back
        const w = pick(workers);
        await sql.query(`UPDATE "${schema.schema}".jobs SET lease_until = now() - interval '1 second' WHERE locked_by = $1 AND state = 'active'`, [w]);
        held.set(w, []);
        await queue.recoverExpired(1000);
      },
      async retryDead() {
        const { rows } = await sql.query<{ id: string }>(`SELECT id::text AS id FROM "${schema.schema}".jobs WHERE state = 'dead' LIMIT 3`);
        await Promise.all(rows.map((r) => queue.retry(r.id)));
      },
      async purge() {
        await queue.purgeFinished(0, 50);
      },
    };
    const weights: Array<[string, number]> = [
      ['enqueue', 6],
      ['claim', 6],
      ['complete', 5],
      ['fail', 3],
      ['release', 1],
      ['expire', 1],
      ['retryDead', 1],
      ['purge', 1],
    ];
    const total = weights.reduce((a, [, w]) => a + w, 0);
    const draw = (): string => {
      let r = random() * total;
      for (const [name, w] of weights) if ((r -= w) < 0) return name;
      return 'enqueue';
    };

    const seen = new Set<string>();
    for (let round = 0; round < 40; round++) {
      const batch = Array.from({ length: 6 }, draw);
      // concurrent statements race on the same rows and shard counters; a lost race (a job
      // completed by one call and failed by another) is part of the storm, not an error
      await Promise.all(batch.map((name) => ops[name]!()));
      await assertAgrees(`round ${round} (${batch.join(', ')})`);
      for (const f of await read()) for (const k of STATES) if (f[k] > 0) seen.add(k);
    }
    // the storm reached every state
    assert.deepEqual([...seen].sort(), [...STATES].sort());
  });

  test('a database from before the counts were kept is seeded from its rows by the migration', async () => {
    const q = 'legacy';
    await queue.enqueueMany([
      { queue: q, handler: 'h' },
      { queue: q, handler: 'h' },
      { queue: q, handler: 'h', delayMs: 3_600_000 },
    ]);
    await queue.claim('w9', [q], 1);
    // forget the counts, as a database migrated up to 0003 never had them, and take 0004 back
    await sql.query(`UPDATE "${schema.schema}".queue_stats SET pending = 0, active = 0 WHERE queue = $1`, [q]);
    await sql.query(`DROP VIEW "${schema.schema}".queue_figures_view CASCADE`);
    await sql.query(`ALTER TABLE "${schema.schema}".queue_stats DROP COLUMN pending, DROP COLUMN active`);
    await sql.query(`DELETE FROM "${schema.schema}".migrations WHERE id = 4`);
    assert.deepEqual(await queue.migrate(), [4]);
    const [legacy] = (await queue.stats(q)).map((s) => [s.ready, s.delayed, s.active]);
    assert.deepEqual(legacy, [1, 1, 1]);
    await assertAgrees('the migration');
  });
});
