/**
 * The queue engine interface: the one seam between the runtime (API, worker, metrics) and
 * the storage. The PostgreSQL engine implements it; a Redis engine could later.
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
  /** Service time histogram (seconds): cumulative bucket counts by upper bound, sum, count. */
  serviceTime: { buckets: Array<{ le: number; count: number }>; sum: number; count: number };
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
