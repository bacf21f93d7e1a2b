/**
 * The PostgreSQL queue engine: the `QueueEngine` the API uses, plus the worker-side
 * operations (claim, complete, fail, heartbeat, release, recover, purge, listen).
 *
 * Design note. A job row moves ready -> active (claim: leased to one worker until
 * lease_until) -> completed | ready (failed with attempts left, run_at pushed back by the
 * backoff) | dead (out of attempts). An active job whose lease runs out (its worker died or
 * hung without heartbeating) goes back to ready in the sweep, so delivery is at least once.
 * Every transition is one SQL statement (see ./sql/, one module per operation) guarded by
 * `locked_by = workerId`, so a worker that lost its lease cannot complete or fail a job that
 * now belongs to another worker. Counters and gauges for metrics move in the same
 * statements. Wake-ups: one NOTIFY per statement and queue that made jobs runnable, with a
 * polling fallback for connections where NOTIFY never arrives (PgBouncer transaction mode).
 */
import { hostname } from 'node:os';

import pg from 'pg';

import { migrate, quoteSchema } from '../../db/migrate.js';
import { isDataError, toAccessError, toDbError } from '../../db/errors.js';
import { type PoolerSetting, detectPooler, directUrlFromEnv, poolerFromEnv } from '../../db/pooler.js';
import { TideError } from '../../errors.js';
import { claimJobs } from './sql/claim.js';
import { completeJobs } from './sql/complete.js';
import { SERVICE_TIME_BUCKETS, type SqlContext, channelFor } from './sql/context.js';
import { GroupCommit } from './group-commit.js';
import { JOB_LIMITS, JOB_NAME } from './limits.js';
import { type EnqueueRow, enqueueRows, idsForKeys } from './sql/enqueue.js';
import { failJob } from './sql/fail.js';
import { getJob, retryJob } from './sql/jobs.js';
import { heartbeatJobs, recoverExpiredJobs, releaseJobs } from './sql/lease.js';
import { purgeFinishedBatch } from './sql/purge.js';
import { queueNames, queueStats } from './sql/stats.js';
import type { ClaimedJob, Completion, EnqueueInput, EnqueueResult, FailOutcome, Job, Listener, QueueEngine, QueueStats, WorkerQueue } from './types.js';

export type { Completion, FailOutcome, Listener } from './types.js';

export interface PostgresQueueOptions {
  connectionString: string;
  /** Schema holding the queue tables. Default `tide`. */
  schema?: string;
  /** Use this pool instead of creating one (it is not ended by close()). */
  pool?: pg.Pool;
  /** Connections in the pool this engine creates. Default 10. */
  poolSize?: number;
  /**
   * How long a claim holds a job without a heartbeat. Default 5000 ms: with the worker's
   * sweep every second, a SIGKILLed worker's jobs run again within about 6 s (under 10 s).
   */
  leaseMs?: number;
  /** Attempts before a job is dead, when the job does not say. Default 3. */
  defaultMaxAttempts?: number;
  /** First retry delay; doubles per attempt. Default 1000 ms. */
  backoffBaseMs?: number;
  /** Longest retry delay. Default 1 hour. */
  backoffMaxMs?: number;
  /** Polling fallback for listen(), in ms. Default 1000. */
  pollMs?: number;
  /** Random source in [0, 1) for the backoff jitter (inject a seeded one in tests). */
  random?: () => number;
  /** Apply migrations on creation (under an advisory lock). Default true. */
  migrate?: boolean;
  /**
   * Find out on creation whether a pooler stands in front (one connection). Default true; off,
   * statements stay unnamed until a listener settles it (what a reader that must be abortable
   * at any moment wants: the creation then opens no connection).
   */
  detectPoolerOnCreate?: boolean;
  /**
   * Use named prepared statements (parsed and planned once per connection). Default: on for
   * a direct connection, off behind a pooler (PgBouncer 1.21+ with max_prepared_statements
   * keeps them: say true to use them there).
   */
  preparedStatements?: boolean;
  /**
   * A pooler between us and PostgreSQL: `pgbouncer` (any transaction-mode pooler), `none`,
   * or `auto` (detected when the engine is created). Default TIDE_DB_POOLER, else `auto`.
   */
  pooler?: PoolerSetting;
  /**
   * A connection that bypasses the pooler, used only for LISTEN. Default DATABASE_DIRECT_URL.
   * Behind a pooler without one, wake-ups come from polling.
   */
  directUrl?: string;
}

const INT32 = 2 ** 31 - 1;
/** \u0000 in JSON text, not preceded by an escaped backslash. */
const NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/;

function bad(message: string, field: string): TideError {
  return new TideError('TIDE_QUEUE_INPUT', message, { where: { field } });
}

/** Validates one enqueue input into a statement row; throws TIDE_QUEUE_INPUT naming the field. */
function toRow(input: EnqueueInput, i: number, defaultMaxAttempts: number, prefix: string): EnqueueRow {
  const at = (f: string) => `${prefix}${f}`;
  if (typeof input !== 'object' || input === null) throw bad('A job must be an object.', prefix || 'job');
  if (typeof input.queue !== 'string' || !JOB_NAME.test(input.queue) || input.queue === '*') {
    throw bad(`The queue name must be 1-${JOB_LIMITS.nameMaxLength} letters, digits or _.:-/ characters, not ${JSON.stringify(input.queue)}.`, at('queue'));
  }
  if (typeof input.handler !== 'string' || !JOB_NAME.test(input.handler)) {
    throw bad(`The handler name must be 1-${JOB_LIMITS.nameMaxLength} letters, digits or _.:-/ characters, not ${JSON.stringify(input.handler)}.`, at('handler'));
  }
  const priority = input.priority ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority) > INT32) throw bad(`priority must be an integer, not ${String(priority)}.`, at('priority'));
  const maxAttempts = input.maxAttempts ?? defaultMaxAttempts;
  const attempts = JOB_LIMITS.maxAttempts;
  if (!Number.isInteger(maxAttempts) || maxAttempts < attempts.min || maxAttempts > attempts.max) {
    throw bad(`maxAttempts must be an integer from ${attempts.min} to ${attempts.max}, not ${String(maxAttempts)}.`, at('maxAttempts'));
  }
  if (input.runAt !== undefined && !(Number.isFinite(input.runAt) && input.runAt >= 0)) {
    throw bad(`runAt must be a time in ms since the epoch, not ${String(input.runAt)}.`, at('runAt'));
  }
  if (input.delayMs !== undefined && !(Number.isFinite(input.delayMs) && input.delayMs >= 0)) {
    throw bad(`delayMs must be a number >= 0, not ${String(input.delayMs)}.`, at('delayMs'));
  }
  if (input.idempotencyKey !== undefined && (typeof input.idempotencyKey !== 'string' || input.idempotencyKey.length === 0 || input.idempotencyKey.length > JOB_LIMITS.idempotencyKeyMaxLength || input.idempotencyKey.includes('\u0000'))) {
    throw bad(`idempotencyKey must be a string of 1-${JOB_LIMITS.idempotencyKeyMaxLength} characters, without NUL.`, at('idempotencyKey'));
  }
  // serialised once, here: what jsonb will store (undefined fields dropped, dates as strings)
  let payload: string | undefined;
  try {
    payload = JSON.stringify(input.payload ?? null);
  } catch (cause) {
    throw new TideError('TIDE_QUEUE_INPUT', `The payload is not JSON-serialisable: ${(cause as Error).message}`, { cause, where: { field: at('payload') } });
  }
  if (payload === undefined) throw bad(`The payload is not JSON-serialisable: a ${typeof input.payload}.`, at('payload'));
  // jsonb has no NUL character: refused here with the field named, not by the database
  if (NUL_ESCAPE.test(payload)) throw bad('The payload holds a NUL character (\\u0000), which PostgreSQL cannot store in jsonb; remove it or encode the data (base64).', at('payload'));
  return {
    i,
    queue: input.queue,
    handler: input.handler,
    payload,
    priority,
    run_at_ms: input.runAt ?? null,
    delay_ms: input.runAt === undefined ? (input.delayMs ?? null) : null,
    max_attempts: maxAttempts,
    key: input.idempotencyKey ?? null,
  };
}

/** Runs `fn`, mapping connection failures to TIDE_DB_UNAVAILABLE. */
async function db<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toDbError(err);
  }
}

export class PostgresQueue implements QueueEngine, WorkerQueue {
  readonly schema: string;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly pool: pg.Pool;
  private readonly ctx: SqlContext;
  private readonly poolerSetting: PoolerSetting;
  private readonly explicitPrepared: boolean | undefined;
  private readonly directUrl: string | undefined;
  /** True once a pooler is declared or detected: no session state from then on. */
  private behindPooler: boolean;
  /** False while `auto` has not been settled (the database was not reachable yet). */
  private detected: boolean;
  private readonly ownsPool: boolean;
  private readonly defaultMaxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly random: () => number;
  private readonly connectionString: string;
  private readonly listeners = new Set<Listener>();
  private readonly group: GroupCommit<{ row: EnqueueRow; input: EnqueueInput }, EnqueueResult>;

  constructor(options: PostgresQueueOptions) {
    this.schema = options.schema ?? 'tide';
    this.ctx = {
      q: quoteSchema(this.schema),
      schema: this.schema,
      channel: channelFor(this.schema),
      buckets: SERVICE_TIME_BUCKETS,
      prepared: false,
    };
    this.poolerSetting = options.pooler ?? poolerFromEnv();
    this.explicitPrepared = options.preparedStatements;
    this.directUrl = options.directUrl ?? directUrlFromEnv();
    // until detection says otherwise (auto), assume a pooler: unnamed statements are always safe
    this.behindPooler = this.poolerSetting !== 'none';
    this.detected = this.poolerSetting !== 'auto';
    this.ctx.prepared = this.explicitPrepared ?? !this.behindPooler;
    this.connectionString = options.connectionString;
    this.leaseMs = options.leaseMs ?? 5000;
    this.pollMs = options.pollMs ?? 1000;
    this.defaultMaxAttempts = options.defaultMaxAttempts ?? 3;
    this.backoffBaseMs = options.backoffBaseMs ?? 1000;
    this.backoffMaxMs = options.backoffMaxMs ?? 3_600_000;
    this.random = options.random ?? Math.random;
    this.ownsPool = !options.pool;
    this.pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10 });
    // an idle client dropped by a server restart emits here; without a listener node would crash
    if (this.ownsPool) this.pool.on('error', () => undefined);
    this.group = new GroupCommit({
      run: (items) => this.insert(items.map((x, i) => ({ ...x.row, i })), items.map((x) => x.input)),
      // half the pool: the rest stays free for reads, claims and the other statements
      maxInFlight: Math.max(1, Math.floor((this.pool.options.max ?? 10) / 2)),
      maxBatch: 1000,
      isDataError,
    });
  }

  /** True when the engine talks to PostgreSQL through a pooler (declared or detected). */
  get pooled(): boolean {
    return this.behindPooler;
  }

  /**
   * Settles `auto`: asks one connection whether a pooler answered it (see db/pooler.ts).
   * A declared setting is kept as it is. Returns whether the engine is behind a pooler.
   */
  async detectPooler(): Promise<boolean> {
    if (!this.detected) {
      const client = await db(() => this.pool.connect());
      try {
        this.behindPooler = await db(() => detectPooler(client));
        this.detected = true;
      } finally {
        client.release();
      }
      this.ctx.prepared = this.explicitPrepared ?? !this.behindPooler;
    }
    return this.behindPooler;
  }

  /**
   * Enqueues one job. Jobs enqueued together (concurrent requests of one API process, a
   * library's concurrent calls) share one statement and one commit (group-commit.ts); this
   * resolves once this job's own commit is done.
   */
  async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    // checked here, so a bad job fails alone and before any batch
    return this.group.add({ row: toRow(input, 0, this.defaultMaxAttempts, ''), input });
  }

  /** Enqueues all jobs in one statement; results in input order. */
  async enqueueMany(inputs: EnqueueInput[], fieldPrefix = 'jobs'): Promise<EnqueueResult[]> {
    if (!Array.isArray(inputs)) throw bad('enqueueMany takes an array of jobs.', fieldPrefix || 'jobs');
    if (inputs.length === 0) return [];
    const rows = inputs.map((input, i) => toRow(input, i, this.defaultMaxAttempts, fieldPrefix ? `${fieldPrefix}[${i}].` : ''));
    return this.insert(rows, inputs);
  }

  /** One statement for checked rows (row i is input i). */
  private insert(rows: EnqueueRow[], inputs: EnqueueInput[]): Promise<EnqueueResult[]> {
    return db(async () => {
      const outcomes = await enqueueRows(this.pool, this.ctx, rows).catch((err: unknown) => {
        // refused for what a job holds (e.g. a lone surrogate in a payload string): the caller's input
        if (!isDataError(err)) throw err;
        const which = rows.length === 1 ? 'the job' : `one of the ${rows.length} jobs`;
        throw new TideError('TIDE_QUEUE_INPUT', `PostgreSQL refused ${which}: ${(err as Error).message}. Check the payload's strings.`, {
          cause: err,
          where: { field: 'payload' },
        });
      });
      const results: EnqueueResult[] = outcomes.map((o) => ({ id: o.id, created: o.created }));
      // a used key: the first job's id (a separate read: a concurrent insert of the same key
      // committed after this statement's snapshot, so the statement itself cannot see it; in
      // one statement, the first job of the batch holding the key)
      const missing = outcomes.filter((o) => !o.created && o.key !== null);
      if (missing.length > 0) {
        const ids = await idsForKeys(this.pool, this.ctx, [...new Set(missing.map((o) => o.key!))]);
        for (const o of missing) {
          const id = ids.get(o.key!);
          // purged between the two statements: insert that one again (on its own: not through
          // the group commit this statement may itself be part of)
          results[o.i] = id ? { id, created: false } : (await this.insert([{ ...rows[o.i]!, i: 0 }], [inputs[o.i]!]))[0]!;
        }
      }
      return results;
    });
  }

  getJob(id: string): Promise<Job | undefined> {
    return db(() => getJob(this.pool, this.ctx, id));
  }

  retry(id: string): Promise<Job | undefined> {
    return db(() => retryJob(this.pool, this.ctx, id));
  }

  stats(queue?: string): Promise<QueueStats[]> {
    return db(() => queueStats(this.pool, this.ctx, queue));
  }

  queues(): Promise<string[]> {
    return db(() => queueNames(this.pool, this.ctx));
  }

  /** Leases up to `limit` runnable jobs from `queues` (`*`: all) to `workerId`. */
  claim(workerId: string, queues: readonly string[], limit: number): Promise<ClaimedJob[]> {
    if (limit <= 0 || queues.length === 0) return Promise.resolve([]);
    return db(() => claimJobs(this.pool, this.ctx, workerId, queues, limit, this.leaseMs));
  }

  /** Completes one job if `workerId` still holds it; false when it does not. */
  async complete(id: string, workerId: string, result?: unknown, durationMs?: number): Promise<boolean> {
    const done = await this.completeMany(workerId, [{ id, result, ...(durationMs === undefined ? {} : { durationMs }) }]);
    return done.length === 1;
  }

  /** Completes a batch in one statement; returns the ids completed (those still held). */
  completeMany(workerId: string, items: Completion[]): Promise<string[]> {
    if (items.length === 0) return Promise.resolve([]);
    return db(() => completeJobs(this.pool, this.ctx, workerId, items));
  }

  /**
   * Records a failed attempt: back to ready after the backoff, or dead when out of attempts.
   * Undefined when `workerId` no longer holds the job.
   */
  fail(id: string, workerId: string, error: unknown): Promise<FailOutcome | undefined> {
    const message = describeError(error);
    return db(() =>
      failJob(this.pool, this.ctx, { id, workerId, error: message, baseMs: this.backoffBaseMs, maxMs: this.backoffMaxMs, jitter: this.random() }),
    );
  }

  /** Renews the leases `workerId` still holds among `ids`; returns those renewed. */
  heartbeat(workerId: string, ids: string[]): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return db(() => heartbeatJobs(this.pool, this.ctx, workerId, ids, this.leaseMs));
  }

  /** Hands jobs back to ready at once (drain), attempt not counted; returns those released. */
  release(workerId: string, ids: string[]): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return db(() => releaseJobs(this.pool, this.ctx, workerId, ids));
  }

  /** Returns jobs whose lease expired to ready (or dead on their last attempt); returns how many. */
  recoverExpired(limit = 1000): Promise<number> {
    return db(() => recoverExpiredJobs(this.pool, this.ctx, limit));
  }

  /** Deletes completed and dead jobs finished more than `olderThanMs` ago, `batch` rows per statement. */
  async purgeFinished(olderThanMs: number, batch = 1000): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await db(() => purgeFinishedBatch(this.pool, this.ctx, olderThanMs, batch));
      total += n;
      if (n < batch) return total;
    }
  }

  /**
   * Calls `onWake` when jobs may have become runnable: on NOTIFY from this schema's channel,
   * and every `pollMs` regardless (the fallback when notifications never arrive). The LISTEN
   * connection reconnects by itself after a database restart. Behind a pooler, LISTEN runs
   * on the direct connection when there is one; without one, polling alone wakes.
   */
  async listen(onWake: () => void, options: { pollMs?: number; notify?: boolean } = {}): Promise<Listener> {
    const pollMs = options.pollMs ?? this.pollMs;

    let closed = false;
    /** The current LISTEN connection, or the attempt to open one. */
    let current: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const poll = setInterval(() => onWake(), pollMs);
    const reconnect = (): void => {
      if (closed || retry) return;
      retry = setTimeout(() => {
        retry = undefined;
        void connect();
      }, Math.min(pollMs, 1000));
    };
    const connect = async (): Promise<void> => {
      if (closed) return;
      // the database was away when the engine started: settle `auto` first, or try again later
      await this.detectPooler().catch(() => undefined);
      if (!this.detected) return reconnect();
      const listenUrl = this.behindPooler ? this.directUrl : this.connectionString;
      if (!listenUrl) return; // behind a pooler with no direct connection: polling alone
      const c = new pg.Client({ connectionString: listenUrl });
      current = c;
      c.on('notification', () => onWake());
      c.on('error', () => undefined);
      // the server went away (restart, failover): listen again; polling covers the gap
      const lost = () => {
        if (current !== c) return;
        current = undefined;
        reconnect();
      };
      c.on('end', lost);
      try {
        await c.connect();
        await c.query(`LISTEN "${this.ctx.channel}"`);
        if (closed) {
          await c.end();
          return;
        }
        // notifications sent while we were not listening are gone: look once
        onWake();
      } catch {
        lost();
        await c.end().catch(() => undefined);
      }
    };
    if (options.notify !== false) await connect();
    const listener: Listener = {
      close: async () => {
        if (closed) return;
        closed = true;
        clearInterval(poll);
        if (retry) clearTimeout(retry);
        this.listeners.delete(listener);
        const c = current;
        current = undefined;
        await c?.end().catch(() => undefined);
      },
    };
    this.listeners.add(listener);
    return listener;
  }

  /** Applies migrations to this engine's schema. */
  async migrate(): Promise<number[]> {
    const client = await db(() => this.pool.connect());
    try {
      return await migrate(client, this.schema);
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.group.settled();
    await Promise.all([...this.listeners].map((l) => l.close()));
    if (this.ownsPool) await this.pool.end();
  }
}

/** The text stored as a job's last error: code and message for a TideError, message otherwise. */
export function describeError(error: unknown): string {
  if (error instanceof TideError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Creates the engine (and, unless told not to, brings its schema up to date). */
export async function createPostgresQueue(options: PostgresQueueOptions): Promise<PostgresQueue> {
  const queue = new PostgresQueue(options);
  // a database not reachable yet leaves `auto` unsettled (unnamed statements meanwhile; listen() settles it later)
  if (options.detectPoolerOnCreate !== false) await queue.detectPooler().catch(() => undefined);
  if (options.migrate !== false) {
    try {
      await queue.migrate();
    } catch (err) {
      await queue.close().catch(() => undefined);
      throw toAccessError(err, options.connectionString);
    }
  }
  return queue;
}

/** A worker id unique across hosts and restarts: host, pid, random suffix. */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}
