/**
 * The queue engine interfaces: the one seam between the runtime (API, worker, metrics) and
 * the storage. `QueueEngine` is the producer's and reader's side, `WorkerQueue` the consumer's;
 * the PostgreSQL engine implements both.
 */

export type JobState = 'ready' | 'delayed' | 'active' | 'completed' | 'failed' | 'dead';

export interface EnqueueInput {
  queue: string;
  /** The handler name the worker runs (for example `hash`, `sleep`, or a user handler). */
  handler: string;
  payload?: unknown;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Run no earlier than this many ms from now. */
  delayMs?: number;
  /** Run no earlier than this time (ms epoch); wins over delayMs. */
  runAt?: number;
  /** Attempts before the job is dead. Default 3 (queue setting). */
  maxAttempts?: number;
  /** Enqueueing again with a used key returns the first job instead of a new one. */
  idempotencyKey?: string;
}

export interface Job {
  id: string;
  queue: string;
  handler: string;
  payload: unknown;
  priority: number;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  idempotencyKey: string | null;
  result: unknown;
  lastError: string | null;
  createdAt: number;
  runAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The worker holding the lease while active. */
  lockedBy: string | null;
  leaseUntil: number | null;
}

export interface EnqueueResult {
  id: string;
  /** False when an idempotency key matched an existing job. */
  created: boolean;
}

/** A job handed to a worker, with the lease it holds. */
export interface ClaimedJob {
  id: string;
  queue: string;
  handler: string;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  enqueuedAt: number;
}

export interface QueueStats {
  queue: string;
  ready: number;
  delayed: number;
  active: number;
  dead: number;
  completed: number;
  failed: number;
  /** Seconds since the oldest ready job became runnable; 0 when none waits. */
  oldestReadyAgeSeconds: number;
  /** Monotonic counters since the queue was created. */
  arrivalsTotal: number;
  completionsTotal: number;
  failuresTotal: number;
  /**
   * Service time histogram (seconds): cumulative bucket counts by upper bound, sum, count, and
   * the sum of squares (counted since migration 0006).
   */
  serviceTime: { buckets: Array<{ le: number; count: number }>; sum: number; count: number; sumSquares: number };
}

export interface QueueEngine {
  enqueue(input: EnqueueInput): Promise<EnqueueResult>;
  enqueueMany(inputs: EnqueueInput[]): Promise<EnqueueResult[]>;
  getJob(id: string): Promise<Job | undefined>;
  /** Moves a dead or failed job back to ready with its attempts reset. */
  retry(id: string): Promise<Job | undefined>;
  stats(queue?: string): Promise<QueueStats[]>;
  /** The queues that exist (have had a job). */
  queues(): Promise<string[]>;
  close(): Promise<void>;
}

/** A wake-up subscription from listen(). */
export interface Listener {
  close(): Promise<void>;
}

/**
 * What a worker needs of its queue: claim jobs under a lease, keep the leases alive, finish the
 * jobs (each call checks that the lease is still the caller's), give them back, and be woken
 * when jobs arrive.
 */
export interface WorkerQueue {
  /** How long a claim holds a job without a heartbeat, ms. */
  readonly leaseMs: number;
  /** The polling fallback of listen(), ms. */
  readonly pollMs: number;
  claim(workerId: string, queues: readonly string[], limit: number): Promise<ClaimedJob[]>;
  /** Completes the jobs whose lease is still the worker's; returns their ids. */
  completeMany(workerId: string, items: Completion[]): Promise<string[]>;
  fail(id: string, workerId: string, error: unknown): Promise<FailOutcome | undefined>;
  /** Extends the leases still held; returns their ids. */
  heartbeat(workerId: string, ids: string[]): Promise<string[]>;
  /** Gives jobs back to the queue at once (a draining worker); returns the ids released. */
  release(workerId: string, ids: string[]): Promise<string[]>;
  /** Returns jobs whose lease expired (a dead worker's) to the queue; resolves with how many. */
  recoverExpired(limit?: number): Promise<number>;
  /** Deletes finished jobs older than `olderThanMs`, in batches; resolves with how many. */
  purgeFinished(olderThanMs: number, batch?: number): Promise<number>;
  listen(onWake: () => void, options?: { pollMs?: number; notify?: boolean }): Promise<Listener>;
  close(): Promise<void>;
}

/** A finished job for `completeMany`. */
export interface Completion {
  id: string;
  result?: unknown;
  /** Handler run time measured by the worker; default: now - started_at. */
  durationMs?: number;
}

/** Where a failed job went: back to ready (a retry at `runAt`) or dead. */
export interface FailOutcome {
  state: Extract<JobState, 'ready' | 'dead'>;
  runAt: number;
}
