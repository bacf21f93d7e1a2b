/**
 * The vocabulary of `tide doctor`: the facts gathered once from a running system, the
 * thresholds the runbooks give, and a finding. Checks are pure functions over the facts
 * (src/doctor/checks/*.ts), so they are tested on constructed facts without a system.
 */
import type { ConnectionBudget } from '../db/budget.js';


export type Severity = 'critical' | 'warning' | 'info';

/** One problem found, with what showed it and what to do. */
export interface Finding {
  severity: Severity;
  /** Stable, kebab-case: `workers-not-consuming`, `uneven-load`, ... (docs/doctor.md lists them). */
  code: string;
  /** One line: what is wrong. */
  title: string;
  /** The numbers that show it. */
  evidence: string;
  /** What to do about it. */
  fix: string;
  /** The service, replica, queue or source it concerns, when one. */
  subject?: string;
}

/** The runbooks' numbers (docs/doctor.md cites each). */
export interface Thresholds {
  /** API p95 latency, seconds (habitat: "Response time p95 > 500ms"). */
  apiP95Seconds: number;
  /** API p95 that is critical (open-forge: p99 "> 2s" critical). */
  apiP95CriticalSeconds: number;
  /** Share of 5xx answers (habitat: "Error rate > 5%"). */
  apiErrorRate: number;
  /** Waiting jobs (habitat, monitor-service, open-forge: "> 1000"; open-forge critical "> 5000"). */
  queueDepthWarning: number;
  queueDepthCritical: number;
  /** Age of the oldest waiting job without an SLO (habitat: "Processing lag > 5 minutes"). */
  oldestAgeSeconds: number;
  /** Connections over max_connections (open-forge: "> 80% pool" warning, "> 95%" critical). */
  connectionsWarning: number;
  connectionsCritical: number;
  /** Busiest over quietest healthy replica's requests that counts as uneven. */
  unevenRatio: number;
  /** Fewer requests than this in the window says nothing about distribution. */
  unevenMinRequests: number;
  /** A reversal of direction within this many seconds of the last change is a flap (as the simulator counts them). */
  flapWindowSeconds: number;
  /** Flaps in the journal's last hour that make a finding. */
  flapCount: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  apiP95Seconds: 0.5,
  apiP95CriticalSeconds: 2,
  apiErrorRate: 0.05,
  queueDepthWarning: 1000,
  queueDepthCritical: 5000,
  oldestAgeSeconds: 300,
  connectionsWarning: 0.8,
  connectionsCritical: 0.95,
  unevenRatio: 3,
  unevenMinRequests: 20,
  flapWindowSeconds: 300,
  flapCount: 2,
};

/** A service as `tide ps` (or the config) describes it. */
export interface ServiceFacts {
  name: string;
  kind: 'api' | 'worker' | 'command';
  /** Replicas asked for; absent when only the config is known (no running `tide up`). */
  desired?: number;
  /** Replicas healthy (ready); absent when only the config is known. */
  healthy?: number;
  min: number;
  max: number;
  /** The queues a worker takes (absent: all). */
  queues?: string[];
  /** The wait its SLO policy promises, seconds, when it has one. */
  sloWaitSeconds?: number;
}

/** One API replica behind the balancer, over the gathering window. */
export interface UpstreamFacts {
  id: string;
  healthy: boolean;
  draining: boolean;
  /** Requests it was sent during the window. */
  requests: number;
  inFlight: number;
  /** Failed connections during the window. */
  failures: number;
}

/**
 * One API replica read directly (its /metrics and /db/pool/stats), over the window; or a
 * service's latency and error rate as a metric source reports them (no request counts then).
 */
export interface ApiReplicaFacts {
  id: string;
  /** Requests answered during the window (health checks and scrapes left out). */
  requests?: number;
  /** Of those, 5xx answers. */
  errors?: number;
  /** Share of 5xx answers, when a source gives it instead of counts. */
  errorRate?: number;
  /** p95 latency over the window, seconds (the upper bound of its histogram bucket). */
  p95Seconds?: number;
  /** Its database pool (GET /db/pool/stats). */
  pool?: { total: number; idle: number; waiting: number };
}

/** One queue, over the window. */
export interface QueueFacts {
  name: string;
  /** Where the figures came from: `api /v1/queues`, or a source's name. */
  source: string;
  /** The service that consumes it, when known. */
  service?: string;
  /** Jobs waiting now. */
  depth: number;
  /** Jobs waiting at the window's start. */
  depthBefore?: number;
  oldestAgeSeconds?: number;
  /** Jobs being processed now. */
  active?: number;
  /** Consumers attached (brokers that know it: RabbitMQ). */
  consumers?: number;
  /** Jobs completed during the window. */
  completed?: number;
}

export interface DatabaseFacts {
  /** Rows of pg_stat_activity that are client backends (0 when refused). */
  connections: number;
  /** max_connections (0 when refused). */
  maxConnections: number;
  /** The server refused the doctor's own connection: too many clients already (SQLSTATE 53300). */
  refused?: string;
  /** The connection budget at the config's max replicas, against the live (or declared) limit. */
  budget?: ConnectionBudget;
}

/** The supervised embedded database: its state, and its crashes since `tide up` started. */
export interface DatabaseSupervisionFacts {
  state: 'running' | 'down' | 'restarting' | 'failed' | 'stopped';
  restarts: number;
  /** The last crash (ms epoch) and its downtime (null while down). */
  lastCrash: { at: number; downMs: number | null } | null;
  lastError: string | null;
}

/** A scale the autoscaler applied (from its journal). */
export interface ScaleEvent {
  service: string;
  /** ms epoch */
  at: number;
  from: number;
  to: number;
}

/** A metric source or endpoint that could not be read. */
export interface SourceFailure {
  source: string;
  service?: string;
  code: string;
  message: string;
}

/** Everything the checks look at, gathered once. */
export interface Facts {
  /** ms epoch at the end of gathering. */
  at: number;
  windowSeconds: number;
  thresholds: Thresholds;
  services: ServiceFacts[];
  /** From the balancer's /lb/stats; absent without a balancer. */
  upstreams?: UpstreamFacts[];
  /** The balancer's own refusals during the window (its /lb/stats totals). */
  balancer?: { rateLimited: number; noUpstream: number };
  apis: ApiReplicaFacts[];
  queues: QueueFacts[];
  database?: DatabaseFacts;
  /** The embedded database as `tide up` supervises it (from `tide ps`); absent when not supervised. */
  databaseSupervision?: DatabaseSupervisionFacts;
  /** The autoscaler's applied scales of the last hour; absent without a journal. */
  scaleEvents?: ScaleEvent[];
  sourceFailures: SourceFailure[];
  /** What could not be looked at, and why (printed, not findings). */
  notes: string[];
}

/** A check: pure over the facts. */
export type Check = (facts: Facts) => Finding[];
