/**
 * Complete a batch of jobs in one statement, each only if this worker still holds it
 * (locked_by): a worker whose lease ran out and whose job went to another worker cannot
 * complete it over the new holder. The completion and failure counters and the service-time
 * histogram (with the sum of squares, for the jobs' variability) move in the same statement, so
 * metrics never disagree with the rows.
 */
import type { Completion } from '../types.js';
import { type Queryable, type SqlContext, bumpStats, pickShard, statementName } from './context.js';


/** Returns the ids actually completed (those this worker still held). */
export async function completeJobs(db: Queryable, ctx: SqlContext, workerId: string, items: Completion[]): Promise<string[]> {
  const { q } = ctx;
  const text = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(id bigint, result jsonb, ms float8)
), done AS (
  UPDATE ${q}.jobs j
  SET state = 'completed', result = i.result, finished_at = now(), locked_by = NULL, lease_until = NULL
  FROM input i
  WHERE j.id = i.id AND j.id = ANY($5::bigint[]) AND j.locked_by = $1 AND j.state = 'active'
  RETURNING j.id, j.queue, coalesce(i.ms / 1000.0, extract(epoch FROM now() - j.started_at)::float8) AS secs
), binned AS (
  SELECT queue, width_bucket(secs, $3::float8[]) + 1 AS b, count(*) AS c, sum(secs) AS s, sum(secs * secs) AS s2
  FROM done GROUP BY 1, 2
), agg AS (
  SELECT queue, sum(c)::bigint AS n, sum(s) AS s, sum(s2) AS s2, array_agg(b) AS bs, array_agg(c) AS cs
  FROM binned GROUP BY queue
), st AS (
  ${bumpStats(
    ctx,
    `SELECT queue, n AS completions, n AS completed, -n AS active, s AS st_sum, s2 AS st_sum_sq, n AS st_count,
            ARRAY(SELECT coalesce(cs[array_position(bs, k)], 0) FROM generate_series(1, ${ctx.buckets.length + 1}) k ORDER BY k) AS st_buckets
     FROM agg`,
    ['completions', 'completed', 'active', 'st_sum', 'st_sum_sq', 'st_count'],
    '$4',
    true,
  )}
  RETURNING 1
)
SELECT id::text AS id FROM done WHERE (SELECT count(*) FROM st) >= 0`;
  const { rows } = await db.query<{ id: string }>({
    name: statementName(ctx, 'complete'),
    text,
    values: [
      workerId,
      JSON.stringify(items.map((c) => ({ id: c.id, result: c.result ?? null, ms: c.durationMs ?? null }))),
      ctx.buckets,
      pickShard(),
      items.map((c) => c.id),
    ],
  });
  return rows.map((r) => r.id);
}
