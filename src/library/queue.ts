/**
 * The queue client for application code: `createQueue()` connects to the same queue the
 * workers and the jobs API use (DATABASE_URL, a tide.yaml, or the embedded database) and
 * offers what the jobs API offers, in-process, with no HTTP hop: enqueue one job or many
 * (every option POST /v1/jobs takes), get a job, retry one, queue stats, close.
 *
 * Design: a thin shell over the PostgreSQL engine (src/runtime/queue); the engine validates
 * the jobs (TIDE_QUEUE_INPUT naming the field) and owns the SQL. The handler map's type, when
 * given (`createQueue<typeof handlers>()`), types each handler's payload at `enqueue`.
 */
import { type ResolvedDatabase, resolveDatabase } from '../db/connect.js';
import { TideError } from '../errors.js';
import type { HandlerMap, Payloads } from '../runtime/handlers/types.js';
import { type PostgresQueue, createPostgresQueue } from '../runtime/queue/postgres.js';
import type { EnqueueInput, EnqueueResult, Job, QueueStats } from '../runtime/queue/types.js';

/** The queue a job goes to when it names none: the one `tide worker` claims from by default. */
export const DEFAULT_QUEUE = 'default';

export interface QueueClientOptions {
  /**
   * PostgreSQL URL. Default: `database.url` of `config` when given, else DATABASE_URL, else
   * the embedded database under `stateDir` (started if `tide up` has not started it).
   */
  databaseUrl?: string;
  /** The schema holding the queue tables. Default: `database.schema` of `config`, else `tide`. */
  schema?: string;
  /** A tide.yaml to take the database, schema and state directory from. */
  config?: string;
  /** The state directory of the embedded database. Default: `state_dir` of `config`, else `.tide`. */
  stateDir?: string;
  /** Connections in the client's pool. Default 4. */
  poolSize?: number;
  /** Where progress lines go (starting the embedded database). Default: none. */
  log?: (line: string) => void;
}

/** Every option of a job, as POST /v1/jobs takes them (camelCase here). */
export interface JobOptions {
  /** The queue (default `default`). */
  queue?: string;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Run no earlier than this many ms from now. */
  delayMs?: number;
  /** Run no earlier than this time (a Date or ms since the epoch); wins over delayMs. */
  runAt?: Date | number;
  /** Attempts before the job is dead. Default 3. */
  maxAttempts?: number;
  /** Enqueueing again with a used key returns the first job instead of a new one. */
  idempotencyKey?: string;
}

/** One job of `enqueueMany`: a handler, its payload, and the job's options. */
export type JobSpec<P extends Record<string, unknown>> = {
  [K in keyof P & string]: { handler: K; payload: P[K] } & JobOptions;
}[keyof P & string];

/** The queue client; `P` maps each handler name to its payload type. */
export interface QueueClient<P extends Record<string, unknown> = Record<string, unknown>> {
  /** The schema the client works in. */
  readonly schema: string;
  /** Enqueues one job; resolves once it is committed (`created` false: its idempotency key was used). */
  enqueue<K extends keyof P & string>(handler: K, payload: P[K], options?: JobOptions): Promise<EnqueueResult>;
  /** Enqueues jobs in one statement (all or none); results in input order. */
  enqueueMany(jobs: ReadonlyArray<JobSpec<P>>): Promise<EnqueueResult[]>;
  /** The job, or undefined when no job has the id (purged, or never was). */
  getJob(id: string): Promise<Job | undefined>;
  /** Moves a dead (or failed, waiting to retry) job back to ready with its attempts reset. */
  retry(id: string): Promise<Job>;
  /** Each queue's depth, oldest waiting job, counters and service time; one queue when named. */
  stats(queue?: string): Promise<QueueStats[]>;
  /** Closes the pool, and stops the embedded database if this client started it. */
  close(): Promise<void>;
}

function toInput(handler: string, payload: unknown, options: JobOptions = {}): EnqueueInput {
  const input: EnqueueInput = { queue: options.queue ?? DEFAULT_QUEUE, handler, payload };
  if (options.priority !== undefined) input.priority = options.priority;
  if (options.delayMs !== undefined) input.delayMs = options.delayMs;
  if (options.runAt !== undefined) input.runAt = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
  if (options.maxAttempts !== undefined) input.maxAttempts = options.maxAttempts;
  if (options.idempotencyKey !== undefined) input.idempotencyKey = options.idempotencyKey;
  return input;
}

/** Where the database, schema and state directory come from: the options, then the config file, then the defaults. */
async function settings(options: QueueClientOptions): Promise<{ url: string | undefined; schema: string; stateDir: string }> {
  let fromConfig: { url?: string; schema?: string; stateDir?: string } = {};
  if (options.config) {
    const { loadConfig } = await import('../config/load.js');
    const config = await loadConfig(options.config);
    fromConfig = { ...(config.database.url ? { url: config.database.url } : {}), schema: config.database.schema, stateDir: config.stateDir };
  }
  return {
    url: options.databaseUrl ?? fromConfig.url ?? (process.env.DATABASE_URL || undefined),
    schema: options.schema ?? fromConfig.schema ?? 'tide',
    stateDir: options.stateDir ?? fromConfig.stateDir ?? '.tide',
  };
}

/**
 * Connects a queue client (and brings the queue's schema up to date, as `tide up` does).
 * Pass the handler map's type to type the payloads: `createQueue<typeof handlers>()`.
 */
export async function createQueue<H extends HandlerMap = HandlerMap>(options: QueueClientOptions = {}): Promise<QueueClient<Payloads<H>>> {
  const { url, schema, stateDir } = await settings(options);
  const database: ResolvedDatabase = await resolveDatabase({
    url,
    stateDir,
    ...(options.log ? { log: options.log } : {}),
    source: options.databaseUrl ? 'databaseUrl' : options.config && !process.env.DATABASE_URL ? options.config : 'DATABASE_URL',
  });
  let engine: PostgresQueue;
  try {
    engine = await createPostgresQueue({ connectionString: database.url, schema, poolSize: options.poolSize ?? 4 });
  } catch (err) {
    await database.stop().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    schema,
    enqueue: (handler, payload, jobOptions) => engine.enqueue(toInput(handler, payload, jobOptions)),
    enqueueMany: (jobs) => {
      if (!Array.isArray(jobs)) throw new TideError('TIDE_QUEUE_INPUT', 'enqueueMany takes an array of jobs.', { where: { field: 'jobs' } });
      return engine.enqueueMany(jobs.map(({ handler, payload, ...jobOptions }) => toInput(handler, payload, jobOptions)));
    },
    getJob: (id) => engine.getJob(id),
    retry: async (id) => {
      const job = await engine.retry(id);
      if (job) return job;
      const existing = await engine.getJob(id);
      if (!existing) throw new TideError('TIDE_API_JOB_NOT_FOUND', `No job has the id ${id}.`, { where: { field: 'id' } });
      throw new TideError('TIDE_API_NOT_RETRYABLE', `Job ${id} is ${existing.state}; only dead or failed jobs can be retried.`, { where: { field: 'id' } });
    },
    stats: (queue) => engine.stats(queue),
    close: () =>
      (closing ??= (async () => {
        await engine.close();
        await database.stop();
      })()),
  };
}
