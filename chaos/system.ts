/**
 * The system a chaos scenario runs against: `startSystem` (the code behind `tide up`) with an
 * api and a worker service as real child processes on a schema of their own, plus the audit
 * that checks what became of every accepted job.
 *
 * Design note. Each run gets a fresh schema (`chaos_<random>`) holding the queue and a `runs`
 * table the `chaos` handler writes to (see handlers.ts); `stop()` stops the system and drops
 * the schema, so nothing is left behind whether the scenario passed or not. Waiting is on
 * conditions (the queue empty, a replica healthy), polled, never on fixed sleeps.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { parseConfig } from '../src/config/load.js';
import type { LogLine } from '../src/supervisor/supervisor.js';
import { type RunningSystem, startSystem } from '../src/app/system.js';

const HANDLERS = fileURLToPath(new URL('./handlers.ts', import.meta.url));

export interface ChaosSystemOptions {
  /** The PostgreSQL to use; `embedded`: the system starts (and supervises) an embedded one of its own, as `tide up` does. */
  databaseUrl: string | 'embedded';
  api: { replicas: number; max: number };
  worker: { replicas: number; max: number; concurrency: number };
  /** Extra environment for every replica. */
  env?: Record<string, string>;
  /** Environment for the api replicas only (API_KEYS). */
  apiEnv?: Record<string, string>;
  controlToken?: string;
  workerArgs?: string[];
  /** The worker's `scale:` and `sources:` blocks (the autoscaler runs when scale is set), and the `autoscale:` block. */
  workerScale?: Record<string, unknown>;
  workerSources?: Record<string, Record<string, unknown>>;
  autoscale?: Record<string, unknown>;
  log?: (line: string) => void;
  onLog?: (line: LogLine) => void;
}

export interface ChaosSystem {
  system: RunningSystem;
  schema: string;
  /** A pool on the run's database, for the audit (closed by stop()). */
  db: pg.Pool;
  /** The `tide.yaml` text the system was started from. */
  configText: string;
  /** Stops the system, drops the schema, removes the state directory. Idempotent. */
  stop(): Promise<void>;
}

export async function startChaosSystem(options: ChaosSystemOptions): Promise<ChaosSystem> {
  const schema = `chaos_${randomBytes(5).toString('hex')}`;
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-chaos-'));
  const embedded = options.databaseUrl === 'embedded';
  const openAudit = async (url: string) => {
    const pool = new pg.Pool({ connectionString: url, max: 3 });
    // scenarios stop and start the database on purpose: an idle client's error must not crash us
    pool.on('error', () => undefined);
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    // the chaos handler writes here; no job runs before the load starts, so after startSystem is soon enough
    await pool.query(
      `CREATE TABLE "${schema}".runs (run_id serial PRIMARY KEY, job_id bigint NOT NULL, worker text NOT NULL,
        attempt int NOT NULL, started timestamptz NOT NULL, ended timestamptz)`,
    );
    return pool;
  };
  let db: pg.Pool | undefined = embedded ? undefined : await openAudit(options.databaseUrl);
  const env = (vars: Record<string, string> | undefined) =>
    vars && Object.keys(vars).length > 0 ? `, env: ${JSON.stringify(vars)}` : '';
  const configText = [
    'project: chaos',
    `state_dir: ${JSON.stringify(stateDir)}`,
    embedded ? `database: { schema: ${schema} }` : `database: { url: ${JSON.stringify(options.databaseUrl)}, schema: ${schema} }`,
    'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 0.5, timeout_seconds: 1 } }',
    `control: { host: 127.0.0.1, port: 0${options.controlToken ? `, token: ${JSON.stringify(options.controlToken)}` : ''} }`,
    ...(options.autoscale ? [`autoscale: ${JSON.stringify(options.autoscale)}`] : []),
    'services:',
    `  api: { kind: api, replicas: ${options.api.replicas}, min: 1, max: ${options.api.max}, stop_grace_seconds: 10${env(options.apiEnv)} }`,
    `  worker: { kind: worker, replicas: ${options.worker.replicas}, min: 1, max: ${options.worker.max}, concurrency: ${options.worker.concurrency}, stop_grace_seconds: 10, handlers: ${JSON.stringify(HANDLERS)}${flow('scale', options.workerScale)}${flow('sources', options.workerSources)} }`,
  ].join('\n');
  const config = parseConfig(configText, '<chaos>');
  let system: RunningSystem;
  try {
    system = await startSystem(config, {
      configDir: stateDir,
      writeState: false,
      log: options.log ?? (() => undefined),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      env: { CHAOS_SCHEMA: schema, ...options.env },
      ...(options.workerArgs ? { workerArgs: options.workerArgs } : {}),
      embeddedDatabase: embedded,
    });
    db ??= await openAudit(system.databaseUrl).catch(async (err: unknown) => {
      await system.stop('chaos setup failed');
      throw err;
    });
  } catch (err) {
    if (db) await dropSchema(db, schema).catch(() => undefined);
    await db?.end();
    await rm(stateDir, { recursive: true, force: true });
    throw err;
  }
  const audit = db;
  let stopping: Promise<void> | undefined;
  return {
    system,
    schema,
    db: audit,
    configText,
    stop() {
      stopping ??= (async () => {
        // the embedded database goes with the system: drop nothing there, remove its data
        if (embedded) await audit.end();
        const dataDir = system.databaseWatch?.dataDir;
        await system.stop('chaos scenario over');
        if (!embedded) {
          await dropSchema(audit, schema).catch(() => undefined);
          await audit.end();
        }
        await rm(stateDir, { recursive: true, force: true });
        // as root the data lives outside the state directory (where the postgres user reaches it)
        if (dataDir) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** `, key: {...}` in YAML flow style (JSON is YAML), or nothing. */
function flow(key: string, value: unknown): string {
  return value === undefined ? '' : `, ${key}: ${JSON.stringify(value)}`;
}

async function dropSchema(db: pg.Pool, schema: string): Promise<void> {
  await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Polls `check` every `everyMs` until it is true; false if `timeoutMs` passes first. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return true;
    } catch {
      // a check that cannot answer yet (the database restarting) counts as not yet
    }
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Waits until no job is ready (including retries waiting out their backoff) or active. */
export function drained(db: pg.Pool, schema: string, timeoutMs: number): Promise<boolean> {
  return until(async () => {
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".jobs WHERE state IN ('ready', 'active')`);
    return rows[0]?.n === '0';
  }, timeoutMs, 250);
}

export interface JobAudit {
  accepted: number;
  completed: number;
  /** Dead after their own failures (the payload asked to fail). */
  deadOwnFailures: number;
  /** Dead although they never asked to fail: lost attempts to kills, a bug. */
  deadOther: number;
  /** Accepted with 202 but no such row: lost. */
  missing: number;
  /** Still ready or active when the audit ran. */
  unfinished: number;
  /** Jobs whose handler ran more than once (chaos handler only). */
  duplicates: number;
  /** Of those, the ones every earlier run of which was on a killed worker. */
  duplicatesOnKilled: number;
  /** Examples of what broke an invariant, for the report. */
  examples: string[];
}

/**
 * What became of every accepted job, from the database. `killedPids` are the worker
 * processes SIGKILLed during the run: a duplicate run is expected only after one of them.
 */
export async function auditJobs(db: pg.Pool, schema: string, accepted: string[], killedPids: Iterable<number>): Promise<JobAudit> {
  const audit: JobAudit = { accepted: accepted.length, completed: 0, deadOwnFailures: 0, deadOther: 0, missing: 0, unfinished: 0, duplicates: 0, duplicatesOnKilled: 0, examples: [] };
  const example = (line: string) => audit.examples.length < 10 && audit.examples.push(line);
  const { rows } = await db.query<{ id: string; state: string; fail: boolean; last_error: string | null }>(
    `SELECT id::text AS id, state, coalesce((payload->>'fail')::boolean, false) AS fail, last_error
       FROM "${schema}".jobs WHERE id = ANY($1::bigint[])`,
    [accepted],
  );
  const seen = new Set<string>();
  for (const r of rows) {
    seen.add(r.id);
    if (r.state === 'completed') audit.completed++;
    else if (r.state === 'dead' && r.fail) audit.deadOwnFailures++;
    else if (r.state === 'dead') audit.deadOther++, example(`job ${r.id} dead without failing itself: ${r.last_error ?? ''}`);
    else audit.unfinished++, example(`job ${r.id} still ${r.state}`);
  }
  for (const id of accepted) if (!seen.has(id)) audit.missing++, example(`job ${id} accepted with 202 but not in the queue`);

  const killed = new Set([...killedPids].map(String));
  const runs = await db.query<{ job_id: string; workers: string[] }>(
    `SELECT job_id::text, array_agg(worker ORDER BY run_id) AS workers FROM "${schema}".runs
      WHERE job_id NOT IN (SELECT id FROM "${schema}".jobs WHERE coalesce((payload->>'fail')::boolean, false))
      GROUP BY job_id HAVING count(*) > 1`,
  );
  for (const r of runs.rows) {
    audit.duplicates++;
    // worker ids are host:pid:random; every run but the last must have been on a killed process
    const earlier = r.workers.slice(0, -1);
    if (earlier.every((w) => killed.has(w.split(':').at(-2) ?? ''))) audit.duplicatesOnKilled++;
    else example(`job ${r.job_id} ran ${r.workers.length} times, on ${r.workers.join(', ')}, not after a kill`);
  }
  return audit;
}

/** Resolves after `ms`, or at once when `signal` aborts (so no timer outlives the scenario). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export function secs(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s`;
}
