/** What a simulated policy sees at each tick, what a run takes and what it returns. */

/** What a policy sees at a tick: the signals a live system's metric sources would give it. */
export interface Observation {
  /** Virtual seconds since the run started. */
  now: number;
  /** The replica count currently desired (requested): starting + ready, not draining. */
  desired: number;
  /** Replicas ready and taking jobs (not draining). */
  ready: number;
  starting: number;
  draining: number;
  /** Jobs waiting (not in flight). */
  queueDepth: number;
  /** Seconds the oldest waiting job has waited (0 when none waits). */
  oldestAgeSeconds: number;
  /** Counter: jobs arrived so far. */
  arrivalsTotal: number;
  /** Counter: jobs completed so far. */
  completionsTotal: number;
  /** Jobs being processed, on all replicas (draining ones included). */
  inFlight: number;
  /** Busy slots over the slots of ready and draining replicas, 0..1 (0 with no such replica). */
  utilization: number;
  /** Counter: integral of busy slots over time (slot-seconds), as a CPU-seconds counter would be. */
  busySlotSecondsTotal: number;
  /** Counter: integral of the slots of ready and draining replicas over time. */
  slotSecondsTotal: number;
  /** Mean service time of jobs completed in the last 60 s, seconds; NaN before the first completion. */
  serviceTimeMeanSeconds: number;
  /** Squared coefficient of variation of those service times; NaN before the first completion. */
  serviceTimeScv: number;
  /** Slots per replica. */
  concurrency: number;
}

/** A scaling policy under simulation: called every `intervalSeconds` of virtual time. */
export interface SimPolicy {
  readonly name: string;
  readonly intervalSeconds: number;
  /** The live controller's urgent trigger: a round when the oldest job's age crosses this many seconds. */
  readonly urgentWaitSeconds?: number;
  /** Seconds between the urgent trigger's polls (the live default, `urgent_poll_seconds`, is 0.5). */
  readonly urgentPollSeconds?: number;
  /** Returns the desired replica count (the engine clamps it to the scenario's bounds). */
  decide(observation: Observation): number;
}

export interface RunOptions {
  /** Replicas ready at t = 0 (default: the scenario's initial_replicas). */
  initialReplicas?: number;
  /** Stop as soon as the SLO can no longer be met (for searches); the result is then marked `aborted`. */
  abortWhenSloMissed?: boolean;
  /** Bucket width in seconds for the time series (arrivals, replicas, p95 wait); none when absent. */
  seriesBucketSeconds?: number;
  /** Skip the wait percentiles (for searches that only need attainment). */
  skipPercentiles?: boolean;
}

/** Per-bucket series for charts. */
export interface RunSeries {
  bucketSeconds: number;
  /** Jobs arrived per bucket. */
  arrivals: Float64Array;
  /** Time-averaged replicas paid for in each bucket. */
  replicas: Float64Array;
  /** p95 wait of the jobs that arrived in each bucket, seconds (NaN when none arrived). */
  waitP95: Float64Array;
  /** Time-averaged jobs waiting (not started) in each bucket: the queue depth. */
  depth: Float64Array;
}

/** The metrics of one run, as the scenarios README defines them. */
export interface RunResult {
  policy: string;
  jobs: number;
  /** Jobs that started within slo.waitSeconds, over all jobs (still-waiting ones are misses). */
  attainment: number;
  waitP50: number;
  waitP95: number;
  waitP99: number;
  waitMax: number;
  replicaSeconds: number;
  lowerBoundSeconds: number;
  efficiency: number;
  scaleEvents: number;
  flaps: number;
  traceSeconds: number;
  /** True when the run stopped early because the SLO was already lost (abortWhenSloMissed). */
  aborted: boolean;
  /** Desired replica count over time: change times and values (starting with t = 0). */
  desiredAt: { t: number[]; replicas: number[] };
  series?: RunSeries;
}
