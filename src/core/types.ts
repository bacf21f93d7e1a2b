/**
 * The decision core's vocabulary. Everything here is data (and one pure mapping): no I/O, no
 * clocks. The controller (live) and the simulator (virtual time) both feed `decide()` with
 * these shapes.
 */

/** What a metric source returns; a source never decides anything. */
export interface Sample {
  metric: string;
  value: number;
  /** ms epoch (or virtual ms in the simulator) */
  at: number;
}

/**
 * Well-known metric names. Sources and the simulator publish these; policies may also name
 * any other metric a source provides.
 */
export const METRIC = {
  /** Jobs waiting (ready), not counting jobs in flight. */
  queueDepth: 'queue_depth',
  /** Seconds the oldest waiting job has waited. */
  oldestAge: 'queue_oldest_age_seconds',
  /** Cumulative arrivals (a counter); the core derives rates from it over its own windows. */
  arrivalsTotal: 'arrivals_total',
  /** Cumulative completions (a counter). */
  completionsTotal: 'completions_total',
  /** Mean service time of recent jobs, seconds. */
  serviceTimeMean: 'service_time_mean_seconds',
  /** Squared coefficient of variation of service time (variance / mean^2). */
  serviceTimeScv: 'service_time_scv',
  /** Jobs being processed now, all replicas. */
  inFlight: 'in_flight',
  /** Busy slots over all slots of ready replicas, 0..1. */
  utilization: 'utilization',
  /** Mean CPU use of the replicas, 0..1 of a core each. */
  cpu: 'cpu_utilization',
  memory: 'memory_utilization',
  /** API latency p95, seconds. */
  latencyP95: 'http_p95_seconds',
  errorRate: 'http_error_rate',
} as const;

/** A queue's figures as the builtin source (live) and the simulator (virtual) both have them. */
export interface QueueFigures {
  depth: number;
  oldestAgeSeconds: number;
  arrivalsTotal: number;
  completionsTotal: number;
  inFlight: number;
  /** Absent until a job has completed. */
  serviceTimeMeanSeconds?: number | undefined;
  serviceTimeScv?: number | undefined;
}

/** A queue's figures as samples under the well-known names: one mapping for every reader of a queue. */
export function queueSamples(f: QueueFigures, at: number): Sample[] {
  const samples: Sample[] = [
    { metric: METRIC.queueDepth, value: f.depth, at },
    { metric: METRIC.oldestAge, value: f.oldestAgeSeconds, at },
    { metric: METRIC.arrivalsTotal, value: f.arrivalsTotal, at },
    { metric: METRIC.completionsTotal, value: f.completionsTotal, at },
    { metric: METRIC.inFlight, value: f.inFlight, at },
  ];
  if (f.serviceTimeMeanSeconds !== undefined) samples.push({ metric: METRIC.serviceTimeMean, value: f.serviceTimeMeanSeconds, at });
  if (f.serviceTimeScv !== undefined) samples.push({ metric: METRIC.serviceTimeScv, value: f.serviceTimeScv, at });
  return samples;
}

/** Stable reason codes, in the HPA's style. Each Reason pairs one with a sentence. */
export type ReasonCode =
  | 'ScalingActive'
  | 'DesiredWithinRange'
  | 'WithinTolerance'
  | 'TooFewReplicas'
  | 'TooManyReplicas'
  | 'ScaleUpLimit'
  | 'ScaleDownLimit'
  | 'ScaleUpStabilized'
  | 'ScaleDownStabilized'
  | 'Cooldown'
  | 'MissingMetrics'
  | 'InvalidMetric'
  | 'FallbackReplicas'
  | 'ScheduleWindow'
  | 'Panic'
  | 'ActivationThreshold'
  | 'PolicyProposal'
  | 'SloBacklog'
  | 'SloWaitTarget'
  | 'SloHysteresis';

export interface Reason {
  code: ReasonCode;
  /** One sentence a person can read. */
  message: string;
  /** Which policy (by index or name) it concerns, when it concerns one. */
  policy?: string;
  /** The replica count proposed or imposed at this step, when there is one. */
  replicas?: number;
}

/** Stabilization, rate limits and cooldowns: the HPA's `behavior` plus cooldowns. */
export interface ScalingRules {
  /** Seconds; the HPA takes the min of recommendations in the up window, max in the down window. */
  stabilizationWindowSeconds?: number;
  /** How several rate-limit policies combine: the most change (`Max`), the least (`Min`), or none (`Disabled`). */
  selectPolicy?: 'Max' | 'Min' | 'Disabled';
  policies?: Array<{ type: 'Pods' | 'Percent'; value: number; periodSeconds: number }>;
  /** Seconds after a change in this direction before another one. */
  cooldownSeconds?: number;
}

export interface Behavior {
  scaleUp?: ScalingRules;
  scaleDown?: ScalingRules;
}

/** HPA-style target tracking. `utilization`: desired = ceil(current * value / target); `average`: ceil(total / target). */
export interface TargetPolicy {
  kind: 'target';
  name?: string;
  metric: string;
  type: 'utilization' | 'average';
  target: number;
  /** Default 0.1. */
  tolerance?: number;
}

/** Threshold tables, as in the runbooks: "depth > 1000: +5; < 100: -2". */
export interface StepsPolicy {
  kind: 'steps';
  name?: string;
  metric: string;
  /** Checked from the highest threshold down; the first that matches applies. */
  up?: Array<{ above: number; add?: number; set?: number; percent?: number }>;
  down?: Array<{ below: number; remove?: number; set?: number; percent?: number }>;
}

/** Tidescale's own: "a fraction `attainment` of jobs start within `waitSeconds`". */
export interface SloPolicy {
  kind: 'slo';
  name?: string;
  waitSeconds: number;
  attainment: number;
  /** Slots per replica (WORKER_CONCURRENCY). */
  concurrency: number;
  /** Seconds from a scale-out request to the new replica taking jobs. */
  startupSeconds?: number;
  /**
   * Scale-in hysteresis: a smaller count is chosen only if it keeps the predicted share of late
   * jobs under `margin x (1 - attainment)`. Default 0.25 (see docs/slo-policy.md).
   */
  margin?: number;
  /** Seconds the smaller count must keep qualifying before the policy proposes it. Default 15. */
  scaleInHoldSeconds?: number;
  /**
   * The reversal window, seconds: a scale-up is not undone within it (the scale-in is held), and
   * a scale-up soon after a scale-in within it is damped. Default 300 (see docs/slo-policy.md).
   */
  reversalSeconds?: number;
  /** Fast arrival-rate window, seconds (default 10). The fast estimate wins on the way up. */
  fastWindowSeconds?: number;
  /** Slow arrival-rate window, seconds (default 120). */
  slowWindowSeconds?: number;
}

/** Cron windows that raise or lower min/max ("0 22 * * *: worker min 2"). */
export interface ScheduleEntry {
  /** Five-field cron expression for when the window starts. */
  cron: string;
  /** How long the window lasts, seconds; absent: until the next entry starts. */
  durationSeconds?: number;
  min?: number;
  max?: number;
  /** IANA time zone; default UTC. */
  timezone?: string;
}

export type Policy = TargetPolicy | StepsPolicy | SloPolicy;

export interface ServicePolicy {
  min: number;
  max: number;
  policies: Policy[];
  schedule?: ScheduleEntry[];
  behavior?: Behavior;
  /** After this many consecutive source failures, go to `replicas` (the KEDA rule). */
  fallback?: { failureThreshold: number; replicas: number };
  /** Scale from zero only when this metric exceeds the threshold; scale to zero only below it. */
  activation?: {
    metric: string;
    threshold: number;
    /** Seconds the metric must stay at or below the threshold before 1 -> 0 (KEDA's cooldownPeriod); default 300. */
    cooldownSeconds?: number;
  };
  /** Knative-style panic: when demand >= threshold x capacity, scale up at once and never down. */
  panic?: { threshold: number; windowSeconds: number; stableWindowSeconds?: number };
}

/** What the core remembers between decisions. Opaque to callers; they pass it back. */
export interface History {
  /** (time, recommendation) pairs for stabilization windows. */
  recommendations: Array<{ at: number; replicas: number }>;
  /** Past scale events for rate limits and cooldowns. */
  events: Array<{ at: number; from: number; to: number }>;
  /** Counter samples the core derives rates from. */
  counters: Record<string, Array<{ at: number; value: number }>>;
  /** Consecutive source failures seen. */
  failures: number;
  /** When panic mode started, if on. */
  panicSince?: number;
  /** Free-form per-policy state (for example the SLO policy's smoothed estimates). */
  state: Record<string, unknown>;
}

export interface DecideInput {
  now: number;
  /** Replicas currently desired (requested). */
  current: number;
  /** Replicas ready and taking work. */
  ready: number;
  samples: Sample[];
  policy: ServicePolicy;
  history: History;
  /** True when a metric source failed in this round (its metrics are then missing). */
  sourceFailed?: boolean;
}

export interface Decision {
  desired: number;
  reasons: Reason[];
  /** The code of the step that bound the result, when something clamped or held it. */
  limitedBy?: ReasonCode;
  history: History;
}

export function emptyHistory(): History {
  return { recommendations: [], events: [], counters: {}, failures: 0, state: {} };
}
