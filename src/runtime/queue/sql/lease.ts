/**
 * Lease upkeep: heartbeats extend the leases a worker still holds; release hands jobs back
 * at once (a draining worker's unfinished jobs, attempt not counted); the sweep returns jobs
 * whose lease ran out (their worker died or hung) to ready, or to dead when that was their
 * last attempt, counting each as a failure.
 */
import { type Queryable, type SqlContext, bumpStats, pickShard, statementName } from './context.js';

/**
 * Returns the ids whose lease was renewed. Rows locked by a concurrent statement of this
 * worker (its completion or failure being written) are skipped, not waited for: waiting
 * could deadlock with that statement, and the row is leaving the active state anyway.
 */
export async function heartbeatJobs(db: Queryable, ctx: SqlContext, workerId: string, ids: string[], leaseMs: number): Promise<string[]> {
  const { q } = ctx;
  const { rows } = await db.query<{ id: string }>({
    name: statementName(ctx, 'heartbeat'),
    text: `
WITH mine AS (
  SELECT id FROM ${q}.jobs WHERE id = ANY($2::bigint[]) AND locked_by = $1 AND state = 'active'
  ORDER BY id FOR UPDATE SKIP LOCKED
)
UPDATE ${q}.jobs j SET lease_until = now() + $3::float8 * interval '1 millisecond'
FROM mine WHERE j.id = mine.id
RETURNING j.id::text AS id`,
    values: [workerId, ids, leaseMs],
  });
  return rows.map((r) => r.id);
}

/** Returns the ids released. */
export async function releaseJobs(db: Queryable, ctx: SqlContext, workerId: string, ids: string[]): Promise<string[]> {
  const { q } = ctx;
  const { rows } = await db.query<{ id: string }>({
    name: statementName(ctx, 'release'),
    text: `
WITH r AS (
  UPDATE ${q}.jobs SET state = 'ready', attempts = greatest(attempts - 1, 0), locked_by = NULL, lease_until = NULL, started_at = NULL
  WHERE id = ANY($2::bigint[]) AND locked_by = $1 AND state = 'active'
  RETURNING id, queue
), st AS (
  ${bumpStats(ctx, 'SELECT queue, -count(*) AS active, count(*) AS pending FROM r GROUP BY queue', ['active', 'pending'], '$4')}
  RETURNING 1
), woke AS (
  SELECT pg_notify($3, w.queue) FROM (SELECT DISTINCT queue FROM r) w
)
SELECT id::text AS id FROM r WHERE (SELECT count(*) FROM woke) >= 0 AND (SELECT count(*) FROM st) >= 0`,
    values: [workerId, ids, ctx.channel, pickShard()],
  });
  return rows.map((r) => r.id);
}

/** Returns how many expired leases were recovered (at most `limit`). */
export async function recoverExpiredJobs(db: Queryable, ctx: SqlContext, limit: number): Promise<number> {
  const { q } = ctx;
  const { rows } = await db.query<{ n: string }>({
    name: statementName(ctx, 'recover'),
    text: `
WITH expired AS (
  SELECT id FROM ${q}.jobs WHERE state = 'active' AND lease_until < now()
  ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED
), r AS (
  UPDATE ${q}.jobs j
  SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'ready' END,
      finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
      last_error = 'lease expired: worker ' || coalesce(j.locked_by, '?') || ' stopped renewing it (crashed or hung)',
      locked_by = NULL, lease_until = NULL
  FROM expired e WHERE j.id = e.id
  RETURNING j.queue, j.state
), st AS (
  ${bumpStats(
    ctx,
    `SELECT queue, count(*) AS failures, count(*) FILTER (WHERE state = 'dead') AS dead, -count(*) AS active,
            count(*) FILTER (WHERE state = 'ready') AS pending
     FROM r GROUP BY queue`,
    ['failures', 'dead', 'active', 'pending'],
    '$3',
  )}
  RETURNING 1
), woke AS (
  SELECT pg_notify($2, w.queue) FROM (SELECT DISTINCT queue FROM r WHERE state = 'ready') w
)
SELECT count(*)::text AS n FROM r WHERE (SELECT count(*) FROM st) >= 0 AND (SELECT count(*) FROM woke) >= 0`,
    values: [limit, ctx.channel, pickShard()],
  });
  return Number(rows[0]?.n ?? 0);
}
