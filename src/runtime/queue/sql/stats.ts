/**
 * Queue figures in one statement, in time independent of the backlog. The counters, the
 * retained-count gauges, the histogram and the pending (stored ready) and active counts come
 * from the small per-queue table, summed over its shards; the statements that move jobs
 * between states keep them exact in the same transaction. Pending splits into due and not
 * yet due (delayed, or failed waiting out a retry) by walking the ready index one priority at
 * a time: per priority, one probe finds its earliest run_at (the oldest due job, when it is
 * due) and a range scan counts the jobs not yet due. The cost grows with the number of
 * distinct priorities and of jobs scheduled for later, not with the ready backlog.
 *
 * The read runs in a short read-only transaction with JIT compilation off: planned before
 * the tables have statistics, the walk's estimate can pass jit_above_cost, and compiling it
 * took 600 ms for a read that runs in 2. SET LOCAL holds behind a transaction-mode pooler.
 */
import type { QueueStats } from '../types.js';
import type pg from 'pg';

import { type Queryable, type SqlContext, statementName } from './context.js';

interface StatsRow {
  queue: string;
  arrivals: string;
  completions: string;
  failures: string;
  completed: string;
  dead: string;
  st_buckets: string[];
  st_sum: number;
  st_count: string;
  pending: string;
  active: string;
  delayed: string;
  failed: string;
  oldest_age: number | null;
}

export async function queueStats(pool: Pick<pg.Pool, 'connect'>, ctx: SqlContext, queue?: string): Promise<QueueStats[]> {
  const client = await pool.connect();
  let rows: StatsRow[];
  try {
    await client.query('BEGIN READ ONLY; SET LOCAL jit = off');
    rows = await readStats(client, ctx, queue);
    await client.query('COMMIT');
  } catch (err) {
    const broken = await client.query('ROLLBACK').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    client.release(broken);
    throw err;
  }
  client.release();
  return rows.map((r) => toStats(ctx, r));
}

async function readStats(db: Queryable, ctx: SqlContext, queue: string | undefined): Promise<StatsRow[]> {
  const { q } = ctx;
  const { rows } = await db.query<StatsRow>({
    name: statementName(ctx, 'stats'),
    text: `
WITH shards AS (
  SELECT * FROM ${q}.queue_stats WHERE $1::text IS NULL OR queue = $1
), s AS (
  SELECT queue, sum(arrivals)::text AS arrivals, sum(completions)::text AS completions, sum(failures)::text AS failures,
         sum(completed)::text AS completed, sum(dead)::text AS dead, sum(st_sum)::float8 AS st_sum, sum(st_count)::text AS st_count,
         sum(pending)::text AS pending, sum(active)::text AS active
  FROM shards GROUP BY queue
), h AS (
  SELECT queue, array_agg(n::text ORDER BY k) AS st_buckets
  FROM (SELECT sh.queue, u.k, sum(u.b) AS n FROM shards sh, unnest(sh.st_buckets) WITH ORDINALITY AS u(b, k) GROUP BY sh.queue, u.k) x
  GROUP BY queue
)
SELECT s.*, h.st_buckets, w.delayed, w.failed, w.oldest_age
FROM s JOIN h USING (queue)
CROSS JOIN LATERAL (
  WITH RECURSIVE p(pr) AS (
    (SELECT priority FROM ${q}.jobs WHERE state = 'ready' AND queue = s.queue ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM ${q}.jobs WHERE state = 'ready' AND queue = s.queue AND priority < p.pr ORDER BY priority DESC LIMIT 1)
    FROM p WHERE p.pr IS NOT NULL
  )
  SELECT coalesce(sum(later.delayed), 0) AS delayed, coalesce(sum(later.failed), 0) AS failed,
         extract(epoch FROM now() - min(first.run_at) FILTER (WHERE first.run_at <= now()))::float8 AS oldest_age
  FROM p
  CROSS JOIN LATERAL (
    SELECT run_at FROM ${q}.jobs WHERE state = 'ready' AND queue = s.queue AND priority = p.pr ORDER BY run_at, id LIMIT 1
  ) first
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE attempts = 0) AS delayed, count(*) FILTER (WHERE attempts > 0) AS failed
    FROM ${q}.jobs WHERE state = 'ready' AND queue = s.queue AND priority = p.pr AND run_at > now()
  ) later
  WHERE p.pr IS NOT NULL
) w
ORDER BY s.queue`,
    values: [queue ?? null],
  });
  return rows;
}

function toStats(ctx: SqlContext, r: StatsRow): QueueStats {
  let cumulative = 0;
  const buckets = ctx.buckets.map((le, i) => {
    cumulative += Number(r.st_buckets[i] ?? 0);
    return { le, count: cumulative };
  });
  cumulative += Number(r.st_buckets[ctx.buckets.length] ?? 0);
  buckets.push({ le: Number.POSITIVE_INFINITY, count: cumulative });
  return {
    queue: r.queue,
    ready: Number(r.pending) - Number(r.delayed) - Number(r.failed),
    delayed: Number(r.delayed),
    active: Number(r.active),
    dead: Number(r.dead),
    completed: Number(r.completed),
    failed: Number(r.failed),
    oldestReadyAgeSeconds: Math.max(0, r.oldest_age ?? 0),
    arrivalsTotal: Number(r.arrivals),
    completionsTotal: Number(r.completions),
    failuresTotal: Number(r.failures),
    serviceTime: { buckets, sum: r.st_sum, count: Number(r.st_count) },
  };
}

export async function queueNames(db: Queryable, ctx: SqlContext): Promise<string[]> {
  const { rows } = await db.query<{ queue: string }>({
    name: statementName(ctx, 'queues'),
    text: `SELECT DISTINCT queue FROM ${ctx.q}.queue_stats ORDER BY queue`,
  });
  return rows.map((r) => r.queue);
}
