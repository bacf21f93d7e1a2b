/**
 * Reading one job, and retrying a dead or failed one (back to ready now, attempts reset,
 * the dead gauge moved in the same statement).
 */
import type { Job, JobState } from '../types.js';
import { type Queryable, type SqlContext, bumpStats, ms, pickShard, statementName } from './context.js';

interface JobRow {
  id: string;
  queue: string;
  handler: string;
  payload: unknown;
  priority: number;
  state: 'ready' | 'active' | 'completed' | 'dead';
  attempts: number;
  max_attempts: number;
  idempotency_key: string | null;
  result: unknown;
  last_error: string | null;
  created_at: number;
  run_at: number;
  started_at: number | null;
  finished_at: number | null;
  locked_by: string | null;
  lease_until: number | null;
  due: boolean;
}

const COLUMNS = (t: string) => `${t}.id::text AS id, ${t}.queue, ${t}.handler, ${t}.payload, ${t}.priority, ${t}.state, ${t}.attempts,
  ${t}.max_attempts, ${t}.idempotency_key, ${t}.result, ${t}.last_error, ${ms(`${t}.created_at`)} AS created_at,
  ${ms(`${t}.run_at`)} AS run_at, ${ms(`${t}.started_at`)} AS started_at, ${ms(`${t}.finished_at`)} AS finished_at,
  ${t}.locked_by, ${ms(`${t}.lease_until`)} AS lease_until, (${t}.run_at <= now()) AS due`;

/** Stored `ready` splits by time: not yet due is `delayed`, or `failed` when waiting out a retry backoff. */
function publicState(row: JobRow): JobState {
  if (row.state !== 'ready' || row.due) return row.state;
  return row.attempts > 0 ? 'failed' : 'delayed';
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    queue: row.queue,
    handler: row.handler,
    payload: row.payload,
    priority: row.priority,
    state: publicState(row),
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    idempotencyKey: row.idempotency_key,
    result: row.result,
    lastError: row.last_error,
    createdAt: row.created_at,
    runAt: row.run_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    lockedBy: row.locked_by,
    leaseUntil: row.lease_until,
  };
}

/** Ids are bigint; anything else is "no such job", not a database error. */
export function isJobId(id: string): boolean {
  return /^[1-9]\d{0,18}$/.test(id) && BigInt(id) <= 9223372036854775807n;
}

export async function getJob(db: Queryable, ctx: SqlContext, id: string): Promise<Job | undefined> {
  if (!isJobId(id)) return undefined;
  const { rows } = await db.query<JobRow>({
    name: statementName(ctx, 'get'),
    text: `SELECT ${COLUMNS('j')} FROM ${ctx.q}.jobs j WHERE j.id = $1`,
    values: [id],
  });
  return rows[0] && toJob(rows[0]);
}

export async function retryJob(db: Queryable, ctx: SqlContext, id: string): Promise<Job | undefined> {
  if (!isJobId(id)) return undefined;
  const { q } = ctx;
  const { rows } = await db.query<JobRow>({
    name: statementName(ctx, 'retry'),
    text: `
WITH old AS (
  SELECT id, queue, state FROM ${q}.jobs
  WHERE id = $1 AND (state = 'dead' OR (state = 'ready' AND attempts > 0 AND run_at > now()))
  FOR UPDATE
), upd AS (
  UPDATE ${q}.jobs j SET state = 'ready', attempts = 0, run_at = now(), finished_at = NULL
  FROM old WHERE j.id = old.id
  RETURNING j.*
), st AS (
  ${bumpStats(ctx, `SELECT queue, -1 AS dead, 1 AS pending FROM old WHERE state = 'dead'`, ['dead', 'pending'], '$3')}
  RETURNING 1
), woke AS (
  SELECT pg_notify($2, queue) FROM upd
)
SELECT ${COLUMNS('upd')} FROM upd WHERE (SELECT count(*) FROM st) >= 0 AND (SELECT count(*) FROM woke) >= 0`,
    values: [id, ctx.channel, pickShard()],
  });
  return rows[0] && toJob(rows[0]);
}
