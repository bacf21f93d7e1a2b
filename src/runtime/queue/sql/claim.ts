/**
 * Claim up to `limit` runnable jobs in one statement. Each named queue is read through the
 * partial ready index in claim order (priority desc, run_at, id) with FOR UPDATE SKIP LOCKED,
 * so concurrent claimers take disjoint rows without waiting for each other; the picked rows
 * become active under this worker's lease in the same statement (no read-modify-write), and
 * the pending and active counts move with them.
 * `*` claims from every queue that exists.
 */
import type { ClaimedJob } from '../types.js';
import { type Queryable, type SqlContext, bumpStats, ms, pickShard, statementName } from './context.js';

export async function claimJobs(
  db: Queryable,
  ctx: SqlContext,
  workerId: string,
  queues: readonly string[],
  limit: number,
  leaseMs: number,
): Promise<ClaimedJob[]> {
  const { q } = ctx;
  const all = queues.includes('*');
  const text = `
WITH picked AS (
  SELECT c.id FROM unnest(coalesce($2::text[], (SELECT coalesce(array_agg(DISTINCT queue), '{}') FROM ${q}.queue_stats))) AS qn(name)
  CROSS JOIN LATERAL (
    SELECT j.id, j.priority, j.run_at FROM ${q}.jobs j
    WHERE j.state = 'ready' AND j.queue = qn.name AND j.run_at <= now()
    ORDER BY j.priority DESC, j.run_at, j.id
    LIMIT $3 FOR UPDATE SKIP LOCKED
  ) c
  ORDER BY c.priority DESC, c.run_at, c.id
  LIMIT $3
), claimed AS (
  UPDATE ${q}.jobs j
  SET state = 'active', attempts = j.attempts + 1, locked_by = $1, started_at = now(),
      lease_until = now() + $4::float8 * interval '1 millisecond'
  FROM picked WHERE j.id = picked.id
  RETURNING j.id, j.queue, j.handler, j.payload, j.attempts, j.max_attempts, j.created_at
), st AS (
  ${bumpStats(ctx, 'SELECT queue, -count(*) AS pending, count(*) AS active FROM claimed GROUP BY queue', ['pending', 'active'], '$5')}
  RETURNING 1
)
SELECT id::text AS id, queue, handler, payload, attempts, max_attempts AS "maxAttempts", ${ms('created_at')} AS "enqueuedAt"
FROM claimed WHERE (SELECT count(*) FROM st) >= 0`;
  const { rows } = await db.query<ClaimedJob>({
    name: statementName(ctx, 'claim'),
    text,
    values: [workerId, all ? null : queues, limit, leaseMs, pickShard()],
  });
  return rows;
}
