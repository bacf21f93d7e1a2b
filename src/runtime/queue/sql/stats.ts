/**
 * Queue metrics in one statement: the counters, retained-count gauges and histogram come
 * from the small per-queue table (summed over its shards); ready, delayed, failed-awaiting-retry and the oldest ready
 * job come from the partial ready index of each queue (cost grows with the backlog, not with
 * the finished history), and active from the partial active index (bounded by the workers'
 * total concurrency).
 */
import type { QueueStats } from '../types.js';
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
  ready: string;
  delayed: string;
  failed: string;
  oldest_age: number | null;
  active: string;
}

export async function queueStats(db: Queryable, ctx: SqlContext, queue?: string): Promise<QueueStats[]> {
  const { q } = ctx;
  const { rows } = await db.query<StatsRow>({
    name: statementName(ctx, 'stats'),
    text: `
WITH shards AS (
  SELECT * FROM ${q}.queue_stats WHERE $1::text IS NULL OR queue = $1
), s AS (
  SELECT queue, sum(arrivals)::text AS arrivals, sum(completions)::text AS completions, sum(failures)::text AS failures,
         sum(completed)::text AS completed, sum(dead)::text AS dead, sum(st_sum)::float8 AS st_sum, sum(st_count)::text AS st_count
  FROM shards GROUP BY queue
), h AS (
  SELECT queue, array_agg(n::text ORDER BY k) AS st_buckets
  FROM (SELECT sh.queue, u.k, sum(u.b) AS n FROM shards sh, unnest(sh.st_buckets) WITH ORDINALITY AS u(b, k) GROUP BY sh.queue, u.k) x
  GROUP BY queue
)
SELECT s.*, h.st_buckets, r.ready, r.delayed, r.failed, r.oldest_age, a.active
FROM s JOIN h USING (queue)
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE run_at <= now()) AS ready,
         count(*) FILTER (WHERE run_at > now() AND attempts = 0) AS delayed,
         count(*) FILTER (WHERE run_at > now() AND attempts > 0) AS failed,
         extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8 AS oldest_age
  FROM ${q}.jobs WHERE state = 'ready' AND queue = s.queue
) r
CROSS JOIN LATERAL (SELECT count(*) AS active FROM ${q}.jobs WHERE state = 'active' AND queue = s.queue) a
ORDER BY s.queue`,
    values: [queue ?? null],
  });
  return rows.map((r) => {
    let cumulative = 0;
    const buckets = ctx.buckets.map((le, i) => {
      cumulative += Number(r.st_buckets[i] ?? 0);
      return { le, count: cumulative };
    });
    cumulative += Number(r.st_buckets[ctx.buckets.length] ?? 0);
    buckets.push({ le: Number.POSITIVE_INFINITY, count: cumulative });
    return {
      queue: r.queue,
      ready: Number(r.ready),
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
  });
}

export async function queueNames(db: Queryable, ctx: SqlContext): Promise<string[]> {
  const { rows } = await db.query<{ queue: string }>({
    name: statementName(ctx, 'queues'),
    text: `SELECT DISTINCT queue FROM ${ctx.q}.queue_stats ORDER BY queue`,
  });
  return rows.map((r) => r.queue);
}
