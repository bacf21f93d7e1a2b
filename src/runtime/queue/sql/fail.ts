/**
 * Record a failed attempt in one statement: with attempts left the job goes back to ready
 * at now + backoff (exponential from `baseMs`, capped at `maxMs`, "equal jitter": half fixed,
 * half scaled by `jitter` in [0, 1)); out of attempts it is dead. Only the lease holder can
 * fail a job. The failure (and dead) counters move in the same statement.
 */
import type { FailOutcome } from '../types.js';
import { type Queryable, type SqlContext, bumpStats, ms, pickShard, statementName } from './context.js';

export async function failJob(
  db: Queryable,
  ctx: SqlContext,
  args: { id: string; workerId: string; error: string; baseMs: number; maxMs: number; jitter: number },
): Promise<FailOutcome | undefined> {
  const { q } = ctx;
  const text = `
WITH f AS (
  UPDATE ${q}.jobs j
  SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'ready' END,
      run_at = CASE WHEN j.attempts >= j.max_attempts THEN j.run_at
                    ELSE now() + least($5::float8, $4::float8 * power(2, greatest(j.attempts - 1, 0)))
                                 * (0.5 + 0.5 * $6::float8) * interval '1 millisecond' END,
      finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
      last_error = $3, locked_by = NULL, lease_until = NULL
  WHERE j.id = $1 AND j.locked_by = $2 AND j.state = 'active'
  RETURNING j.queue, j.state, j.run_at
), st AS (
  ${bumpStats(
    ctx,
    `SELECT queue, 1 AS failures, (state = 'dead')::int AS dead, -1 AS active, (state = 'ready')::int AS pending FROM f`,
    ['failures', 'dead', 'active', 'pending'],
    '$7',
  )}
  RETURNING 1
)
SELECT state, ${ms('run_at')} AS "runAt" FROM f WHERE (SELECT count(*) FROM st) >= 0`;
  const { rows } = await db.query<FailOutcome>({
    name: statementName(ctx, 'fail'),
    text,
    values: [args.id, args.workerId, args.error, args.baseMs, args.maxMs, args.jitter, pickShard()],
  });
  return rows[0];
}
