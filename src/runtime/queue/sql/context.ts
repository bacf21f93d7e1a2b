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
}

/** Default service-time buckets (seconds), Prometheus-style. */
export const SERVICE_TIME_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function channelFor(schema: string): string {
  return `tide_jobs_${schema}`.slice(0, 63);
}

export function statementName(ctx: SqlContext, op: string): string {
  return `tide_${op}_${ctx.schema}`.slice(0, 63);
}

/** ms epoch of a timestamptz column, as float8 (pg returns numeric as a string). */
export const ms = (column: string): string => `(extract(epoch FROM ${column}) * 1000)::float8`;
