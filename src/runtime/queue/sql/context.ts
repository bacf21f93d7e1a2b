/**
 * What every queue statement needs: where the tables are, the wake-up channel, and the
 * fixed service-time buckets. Statements are named prepared statements (parsed and planned
 * once per connection); names carry the schema because a pool may serve several schemas.
 */
import type pg from 'pg';

export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.ClientBase, 'query'>;

export interface SqlContext {
  /** The schema, as a quoted identifier. */
  q: string;
  /** The schema name as given (for statement names). */
  schema: string;
  /** LISTEN/NOTIFY channel for "runnable jobs arrived". */
  channel: string;
  /** Service-time bucket upper bounds in seconds (the +Inf bucket is implicit). */
  buckets: readonly number[];
  /** Named prepared statements (off behind a pooler that cannot keep them, e.g. PgBouncer transaction mode before 1.21). */
  prepared: boolean;
}

/**
 * Service-time buckets (seconds), Prometheus-style. Stored per bucket with +Inf last (15
 * positions); queue_figures (migration 0004) sums the 15 positions, so a change here needs a
 * migration.
 */
export const SERVICE_TIME_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function channelFor(schema: string): string {
  return `tide_jobs_${schema}`.slice(0, 63);
}

export function statementName(ctx: SqlContext, op: string): string | undefined {
  return ctx.prepared ? `tide_${op}_${ctx.schema}`.slice(0, 63) : undefined;
}

/** ms epoch of a timestamptz column, as float8 (pg returns numeric as a string). */
export const ms = (column: string): string => `(extract(epoch FROM ${column}) * 1000)::float8`;

/** Counter rows per queue (see migration 0002); a statement picks one at random. */
export const STATS_SHARDS = 16;

export function pickShard(): number {
  return Math.floor(Math.random() * STATS_SHARDS);
}

/**
 * SQL that adds per-queue increments to this statement's shard row of queue_stats, creating
 * it when missing. Rows go in queue order, so two statements bumping the same queues on the
 * same shard lock them in one order and cannot deadlock. `source` selects `queue` and the
 * named increment columns; with
 * `histogram`, it also selects `st_buckets` (per-bucket increments, same length).
 */
export function bumpStats(ctx: SqlContext, source: string, columns: string[], shardParam: string, histogram = false): string {
  const zeros = `array_fill(0::bigint, ARRAY[${ctx.buckets.length + 1}])`;
  const set = columns.map((c) => `${c} = s.${c} + excluded.${c}`);
  if (histogram) {
    set.push(
      'st_buckets = ARRAY(SELECT a + b FROM unnest(s.st_buckets, excluded.st_buckets) WITH ORDINALITY AS t(a, b, k) ORDER BY k)',
    );
  }
  return `INSERT INTO ${ctx.q}.queue_stats AS s (queue, shard, st_buckets, ${columns.join(', ')})
  SELECT src.queue, ${shardParam}::smallint, ${histogram ? 'src.st_buckets' : zeros}, ${columns.map((c) => `src.${c}`).join(', ')}
  FROM (${source}) src ORDER BY src.queue
  ON CONFLICT (queue, shard) DO UPDATE SET ${set.join(', ')}`;
}
