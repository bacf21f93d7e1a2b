/**
 * What the dashboard shows, and the pure arithmetic from raw readings to it.
 *
 * A Reading is what one sampling round gathered: gauges as they are (replicas, queue depth,
 * oldest age) and counters as cumulative totals (jobs completed, each API replica's request
 * histogram). A Snapshot is what the page draws: the gauges, plus rates and quantiles over the
 * window between two readings (`snapshotOf(previous, current)`). Keeping the counters raw in
 * the reading and the window arithmetic here makes it testable without a clock or a socket.
 */
import type { Reason } from '../core/types.js';
import { type Bucket, addBuckets, bucketIncrease, histogramQuantile } from '../metrics/prometheus-text.js';

/** One service as the supervisor (and the autoscaler, when one runs) sees it. */
export interface ServiceView {
  name: string;
  kind: 'api' | 'worker' | 'command';
  /** Replicas asked for. */
  desired: number;
  /** Replicas healthy now. */
  ready: number;
  min: number;
  max: number;
  state: string;
  /** When a scale last changed it (ms epoch) and by whom (`manual`, `autoscaler`). */
  scaledAt: number | null;
  scaledBy: string | null;
  /** Present when the autoscaler controls the service. */
  autoscaler?: {
    desired: number | null;
    pausedUntil: number | null;
    dryRun: boolean;
    lastDecision: { at: number; current: number; desired: number; limitedBy: string | null; reasons: Reason[] } | null;
  };
}

export interface QueueReading {
  queue: string;
  ready: number;
  delayed: number;
  active: number;
  dead: number;
  oldestAgeSeconds: number;
  completionsTotal: number;
  failuresTotal: number;
}

/** One API replica's cumulative request counters, from its /metrics. */
export interface ApiReplicaReading {
  /** Replica id and pid: a restarted process is a new series (its counters began again). */
  key: string;
  /** `http_request_duration_seconds` buckets over the routes that serve traffic. */
  buckets: Bucket[];
  /** Responses counted, and those with a 5xx status. */
  requests: number;
  errors: number;
}

/** One entry of the decision timeline. */
export interface TimelineEntry {
  /** Stable, for de-duplication on the page. */
  id: string;
  at: number;
  service: string;
  from: number;
  to: number;
  /** `autoscaler`, `manual`, or who else scaled it. */
  by: string;
  applied: boolean;
  limitedBy: string | null;
  reasons: Array<{ code: string; message: string }>;
}

/** The database as `tide up` supervises it (the embedded one); null state: not supervised. */
export interface DatabaseView {
  kind: 'embedded' | 'external';
  state: string | null;
  restarts: number;
  /** The last crash: when, and how long until it accepted connections again (null while down). */
  lastCrash: { at: number; downMs: number | null } | null;
}

export interface Reading {
  /** ms epoch */
  at: number;
  /** Absent where the collector is not told about the database. */
  database?: DatabaseView | null;
  services: ServiceView[];
  queues: QueueReading[];
  /** Per API replica; absent when there is no api service. */
  api: ApiReplicaReading[] | null;
  /** The balancer's requests that reached no replica (no upstream, or every try failed). */
  balancerFailures: number | null;
  /** Timeline entries that appeared since the previous reading. */
  timeline: TimelineEntry[];
  /** What could not be read this round (one sentence each), shown on the page. */
  problems: string[];
}

export interface QueueView {
  queue: string;
  depth: number;
  delayed: number;
  active: number;
  dead: number;
  oldestAgeSeconds: number;
  /** Completions per second over the window; null on the first reading or after a reset. */
  jobsPerSecond: number | null;
}

export interface ApiView {
  /** p95 response time over the window (seconds); null without requests. */
  p95Seconds: number | null;
  /** 5xx responses (and balancer failures) over all responses in the window; null without requests. */
  errorRate: number | null;
  requestsPerSecond: number | null;
}

/** What one SSE `snapshot` event carries. Never a secret: no URL with credentials, no token. */
export interface Snapshot {
  at: number;
  database: DatabaseView | null;
  services: ServiceView[];
  queues: QueueView[];
  api: ApiView | null;
  timeline: TimelineEntry[];
  problems: string[];
}

/** The API window: per replica seen in both readings, its increase; a new replica contributes from its second reading. */
function apiWindow(previous: Reading | undefined, current: Reading, seconds: number): ApiView | null {
  if (current.api === null) return null;
  if (!previous?.api || seconds <= 0) return { p95Seconds: null, errorRate: null, requestsPerSecond: null };
  const before = new Map(previous.api.map((r) => [r.key, r]));
  const increases: Bucket[][] = [];
  let requests = 0;
  let errors = 0;
  for (const r of current.api) {
    const p = before.get(r.key);
    if (!p) continue;
    increases.push(bucketIncrease(p.buckets, r.buckets));
    const reset = r.requests < p.requests || r.errors < p.errors;
    requests += reset ? r.requests : r.requests - p.requests;
    errors += reset ? r.errors : r.errors - p.errors;
  }
  // requests the balancer could not place never reached a replica's histogram
  const lost = current.balancerFailures !== null && previous.balancerFailures !== null ? Math.max(0, current.balancerFailures - previous.balancerFailures) : 0;
  const total = requests + lost;
  return {
    p95Seconds: histogramQuantile(0.95, addBuckets(increases)),
    errorRate: total > 0 ? (errors + lost) / total : null,
    requestsPerSecond: total / seconds,
  };
}

/** The snapshot of `current`, with rates over the window since `previous` (none without one). */
export function snapshotOf(previous: Reading | undefined, current: Reading): Snapshot {
  const seconds = previous ? (current.at - previous.at) / 1000 : 0;
  const before = new Map((previous?.queues ?? []).map((q) => [q.queue, q]));
  const queues = current.queues.map((q): QueueView => {
    const p = before.get(q.queue);
    const done = p ? q.completionsTotal - p.completionsTotal : Number.NaN;
    return {
      queue: q.queue,
      depth: q.ready,
      delayed: q.delayed,
      active: q.active,
      dead: q.dead,
      oldestAgeSeconds: q.oldestAgeSeconds,
      // a counter that went down (the queue's stats were reset) gives no rate for this window
      jobsPerSecond: seconds > 0 && done >= 0 ? done / seconds : null,
    };
  });
  return {
    at: current.at,
    database: current.database ?? null,
    services: current.services,
    queues,
    api: apiWindow(previous, current, seconds),
    timeline: current.timeline,
    problems: current.problems,
  };
}

/**
 * A URL with its password (and any token-looking query parameter) replaced by `***`, for
 * showing where a database is without showing its secret.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
