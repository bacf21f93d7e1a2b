/**
 * Queue figures in one call, in time independent of the backlog: the counters, the
 * retained-count gauges, the histogram and the pending (stored ready) and active counts come
 * from the small per-queue table, summed over its shards, and the statements that move jobs
 * between states keep them exact in the same transaction; the split of pending into due and
 * not yet due, and the oldest due job, come from a walk of the ready index one priority at a
 * time. The statement is the function `queue_figures` (migration 0004), which runs it with
 * JIT compilation off.
 */
import type { QueueStats } from '../types.js';
import { type Queryable, type SqlContext, statementName } from './context.js';

interface FiguresRow {
  queue: string;
  arrivals: string;
  completions: string;
  failures: string;
  completed: string;
  dead: string;
  pending: string;
  active: string;
  st_buckets: string[];
  st_sum: number;
  st_count: string;
  st_sum_sq: number;
  delayed: string;
  failed: string;
  oldest_age: number | null;
}

export async function queueStats(db: Queryable, ctx: SqlContext, queue?: string): Promise<QueueStats[]> {
  const { rows } = await db.query<FiguresRow>({
    name: statementName(ctx, 'stats'),
    // the sum of squares from the shard rows beside the function's figures (migration 0006 adds it
    // to the table, not to the function's result, which running older readers have prepared)
    text: `SELECT f.*, (SELECT sum(s.st_sum_sq)::float8 FROM ${ctx.q}.queue_stats s WHERE s.queue = f.queue) AS st_sum_sq FROM ${ctx.q}.queue_figures($1) f`,
    values: [queue ?? null],
  });
  return rows.map((r) => toStats(ctx, r));
}

function toStats(ctx: SqlContext, r: FiguresRow): QueueStats {
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
    serviceTime: { buckets, sum: r.st_sum, count: Number(r.st_count), sumSquares: r.st_sum_sq },
  };
}

export async function queueNames(db: Queryable, ctx: SqlContext): Promise<string[]> {
  const { rows } = await db.query<{ queue: string }>({
    name: statementName(ctx, 'queues'),
    text: `SELECT DISTINCT queue FROM ${ctx.q}.queue_stats ORDER BY queue`,
  });
  return rows.map((r) => r.queue);
}
