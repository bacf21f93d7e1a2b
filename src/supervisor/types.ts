/** What the supervisor runs (a ServiceSpec per service) and what it reports (`ps()`, `logs()`). */
import type { BackoffTimings } from './backoff.js';

export type ReplicaState = 'starting' | 'healthy' | 'draining' | 'stopped' | 'crashed' | 'backoff' | 'failed';

/** Where an api service's healthy replicas are registered: the load balancer's side. */
export interface UpstreamPool {
  /** `healthy: true`: the supervisor has checked it, so it may take traffic at once. */
  addUpstream(id: string, url: string, options?: { healthy?: boolean }): unknown;
  /** Stops new requests to the upstream; resolves when the ones in flight are done. */
  removeUpstream(id: string): Promise<unknown>;
  /** The balancer's own view of an upstream (its health checks), for `tide ps`. */
  upstreamState?(id: string): BalancerView | null;
}

/**
 * An api replica as the balancer sees it: taking requests, out after failed health checks
 * (or a refused connection), or draining (no new requests, those in flight finishing).
 */
export type BalancerView = 'in-rotation' | 'out' | 'draining';

/** How to start one service's replicas: plain data, built from the config by `tide up`. */
export interface ServiceSpec {
  name: string;
  kind: 'api' | 'worker' | 'command';
  /** Program and arguments. `{port}` in an argument is replaced by the replica's port. */
  command: { file: string; args: string[] } | { shell: string };
  /** Extra environment (DATABASE_URL, TIDE_SCHEMA, WORKER_CONCURRENCY, ...). */
  env?: Record<string, string>;
  /** Give each replica a free loopback port (PORT env, `{port}`). True for api services. */
  listens?: boolean;
  /** Replica n listens on basePort + n - 1 instead of a free port the OS picks. */
  basePort?: number;
  /** Poll this path on the replica's port until 200 before calling it healthy. */
  healthPath?: string;
  replicas: number;
  min?: number;
  max?: number;
  /** SIGTERM to SIGKILL. Default 30 s. */
  stopGraceMs?: number;
  /** The balancer healthy replicas join. */
  pool?: UpstreamPool;
}

export interface SupervisorOptions {
  services: ServiceSpec[];
  /** Injectable for tests; defaults to Date.now. */
  now?: () => number;
  backoff?: Partial<BackoffTimings>;
  /** Time a replica has to pass its health check. Default 30 s. */
  startTimeoutMs?: number;
  /** Health poll period. Default 100 ms. */
  healthIntervalMs?: number;
  /** Lines kept per service for `tide logs`. Default 2000. */
  logLines?: number;
}

/** One line a replica printed. */
export interface LogLine {
  service: string;
  index: number;
  stream: 'stdout' | 'stderr' | 'tide';
  line: string;
  /** ms epoch */
  at: number;
}

/** One row of `tide ps`. */
export interface ReplicaStatus {
  id: string;
  service: string;
  index: number;
  pid: number | null;
  port: number | null;
  state: ReplicaState;
  restarts: number;
  uptimeSeconds: number | null;
  /** CPU time used (user + system) and resident memory, from /proc when there is one. */
  cpuSeconds: number | null;
  rssBytes: number | null;
  lastExit: { code: number | null; signal: string | null; at: number } | null;
  /** The balancer's view of an api replica in the pool; null when it is not in one. */
  balancer: BalancerView | null;
  /**
   * The last lines its previous process wrote to stderr before it exited on its own (why it
   * crashed or could not start); null while it has not crashed.
   */
  lastError: string[] | null;
}

export interface ServiceStatus {
  name: string;
  kind: ServiceSpec['kind'];
  desired: number;
  healthy: number;
  /**
   * An api service's replicas the balancer sends requests to; null without a balancer. A
   * replica can be healthy as a process and out of rotation (its health answers 503 while the
   * database is away, say): `unavailable` says none is taking requests, `degraded` that some are out.
   */
  inRotation: number | null;
  state: 'running' | 'starting' | 'degraded' | 'unavailable' | 'failed' | 'stopped';
  min: number;
  max: number;
  /** When a scale last changed this service (ms epoch), and whether by hand. */
  scaledAt: number | null;
  scaledBy: string | null;
  /** The last scale by hand (`tide scale`), which the autoscaler respects for a while. */
  manualScaledAt: number | null;
  /** ms epoch until which the autoscaler leaves this service alone after a manual scale; null when not paused. */
  pausedUntil: number | null;
}

export interface PsResult {
  services: ServiceStatus[];
  replicas: ReplicaStatus[];
}
