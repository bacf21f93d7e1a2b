/**
 * Enqueue any number of jobs in one statement: the batch travels as one JSON parameter,
 * ids are drawn from the sequence first (so every input row maps to its id without relying
 * on RETURNING order), a used idempotency key inserts nothing (ON CONFLICT DO NOTHING, which
 * also waits out a concurrent insert of the same key), the arrivals counters move in the same
 * statement, and one NOTIFY goes out per queue with runnable jobs (not one per job).
 */
import { type Queryable, type SqlContext, bumpStats, pickShard, statementName } from './context.js';

export interface EnqueueRow {
  i: number;
  queue: string;
  handler: string;
  /** The payload as JSON text (serialised once, when the job was checked). */
  payload: string;
  priority: number;
  run_at_ms: number | null;
  delay_ms: number | null;
  max_attempts: number;
  key: string | null;
}

export interface EnqueueOutcome {
  i: number;
  id: string;
  key: string | null;
  created: boolean;
}

export async function enqueueRows(db: Queryable, ctx: SqlContext, rows: EnqueueRow[]): Promise<EnqueueOutcome[]> {
  const { q } = ctx;
  const text = `
WITH input AS MATERIALIZED (
  SELECT nextval('${q}.jobs_id_seq'::regclass) AS id, x.*
  FROM jsonb_to_recordset($1::jsonb) AS x(i int, queue text, handler text, payload jsonb, priority int,
                                           run_at_ms float8, delay_ms float8, max_attempts int, key text)
), ins AS (
  INSERT INTO ${q}.jobs (id, queue, handler, payload, priority, run_at, max_attempts, idempotency_key)
  SELECT id, queue, handler, payload, priority,
         CASE WHEN run_at_ms IS NOT NULL THEN to_timestamp(run_at_ms / 1000.0)
              WHEN delay_ms > 0 THEN now() + delay_ms * interval '1 millisecond'
              ELSE now() END,
         max_attempts, key
  FROM input ORDER BY i
  ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id, queue, run_at
), counted AS (
  ${bumpStats(ctx, 'SELECT queue, count(*) AS arrivals, count(*) AS pending FROM ins GROUP BY queue', ['arrivals', 'pending'], '$2')}
  RETURNING 1
), woke AS (
  SELECT pg_notify($3, w.queue) FROM (SELECT DISTINCT queue FROM ins WHERE run_at <= now()) w
)
SELECT input.i, input.id::text AS id, input.key, (ins.id IS NOT NULL) AS created
FROM input LEFT JOIN ins ON ins.id = input.id
WHERE (SELECT count(*) FROM woke) >= 0 AND (SELECT count(*) FROM counted) >= 0
ORDER BY input.i`;
  const result = await db.query<EnqueueOutcome>({
    name: statementName(ctx, 'enqueue'),
    text,
    values: [batchJson(rows), pickShard(), ctx.channel],
  });
  return result.rows;
}

/** The batch as one JSON array, each payload spliced in as the text it already is. */
function batchJson(rows: EnqueueRow[]): string {
  const parts = rows.map(({ payload, ...rest }) => `${JSON.stringify(rest).slice(0, -1)},"payload":${payload}}`);
  return `[${parts.join(',')}]`;
}

/** The ids of the jobs holding these idempotency keys. */
export async function idsForKeys(db: Queryable, ctx: SqlContext, keys: string[]): Promise<Map<string, string>> {
  const { rows } = await db.query<{ id: string; key: string }>({
    name: statementName(ctx, 'keys'),
    text: `SELECT id::text AS id, idempotency_key AS key FROM ${ctx.q}.jobs WHERE idempotency_key = ANY($1::text[])`,
    values: [keys],
  });
  return new Map(rows.map((r) => [r.key, r.id]));
}
