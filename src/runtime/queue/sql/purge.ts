/**
 * Retention: delete one batch of finished (completed or dead) jobs older than a cutoff, and
 * move the retained-count gauges with them. Batches keep each transaction short, so a large
 * purge never holds locks the claim path needs.
 */
import { type Queryable, type SqlContext, bumpStats, pickShard, statementName } from './context.js';

export async function purgeFinishedBatch(db: Queryable, ctx: SqlContext, olderThanMs: number, batch: number): Promise<number> {
  const { q } = ctx;
  const { rows } = await db.query<{ n: string }>({
    name: statementName(ctx, 'purge'),
    text: `
WITH gone AS (
  DELETE FROM ${q}.jobs WHERE id IN (
    SELECT id FROM ${q}.jobs
    WHERE state IN ('completed', 'dead') AND finished_at < now() - $1::float8 * interval '1 millisecond'
    ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)
  RETURNING queue, state
), st AS (
  ${bumpStats(
    ctx,
    `SELECT queue, -count(*) FILTER (WHERE state = 'completed') AS completed, -count(*) FILTER (WHERE state = 'dead') AS dead
     FROM gone GROUP BY queue`,
    ['completed', 'dead'],
    '$3',
  )}
  RETURNING 1
)
SELECT (SELECT count(*) FROM gone)::text AS n, (SELECT count(*) FROM st) AS touched`,
    values: [olderThanMs, batch, pickShard()],
  });
  return Number(rows[0]?.n ?? 0);
}
