/**
 * The chaos suite's job handlers, loaded by real `tide worker` replicas (`--handlers`).
 *
 * `chaos` records every run (job id, attempt, worker id, start and end by the database clock)
 * in `<CHAOS_SCHEMA>.runs` before doing anything else, so the audit can tell a job that ran
 * twice, and on which workers. The record comes first on purpose: a run the worker was killed
 * in the middle of must still show. Payload: `{ ms }` waits that long (aborting with the
 * drain), `{ fail: true }` throws after recording, so the job ends dead after its own attempts.
 */
import pg from 'pg';

import type { JobContext } from '../src/runtime/handlers/types.js';

let pool: pg.Pool | undefined;

function runs(): { pool: pg.Pool; table: string } {
  const schema = process.env.CHAOS_SCHEMA;
  if (!schema || !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error('CHAOS_SCHEMA is not set to a schema name');
  // allowExitOnIdle: the worker's drain ends the process; an idle pool must not hold it open
  pool ??= new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4, allowExitOnIdle: true });
  return { pool, table: `"${schema}".runs` };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason as Error)), { once: true });
  });
}

export async function chaos(payload: { ms?: number; fail?: boolean } | null, ctx: JobContext): Promise<{ worker: string }> {
  const { pool, table } = runs();
  const { rows } = await pool.query<{ run_id: number }>(
    `INSERT INTO ${table} (job_id, worker, attempt, started) VALUES ($1, $2, $3, clock_timestamp()) RETURNING run_id`,
    [ctx.job.id, ctx.workerId, ctx.job.attempts],
  );
  if (payload?.fail) throw new Error('this job fails on purpose (chaos: dead after its own attempts)');
  await pause(Math.max(0, Math.min(10_000, payload?.ms ?? 0)), ctx.signal);
  await pool.query(`UPDATE ${table} SET ended = clock_timestamp() WHERE run_id = $1`, [rows[0]!.run_id]);
  return { worker: ctx.workerId };
}
