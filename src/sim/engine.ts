/**
 * The discrete-event simulator: one run of one policy over one scenario's jobs.
 *
 * Design. Time is continuous (seconds, float). Four kinds of event, taken in time order
 * (at equal times: completion, replica ready, arrival, policy tick):
 *  - arrival: the next entry of the sorted arrival array. If a ready replica has a free slot the
 *    job starts at once on the least-loaded one, else it joins the FIFO queue. The queue is not
 *    a structure: it is the index range [head, arrived) of the arrival array, because a free
 *    slot always takes the oldest waiting job.
 *  - completion: the top of a binary min-heap of busy slots (time, replica, job) in typed arrays.
 *    The freed slot takes the oldest waiting job at once (heap replace-top), unless its replica
 *    is draining; a draining replica with nothing in flight exits.
 *  - replica ready: a replica requested at t is paid from t and takes jobs from t + startup.
 *  - policy tick: every `intervalSeconds` from the first interval on (none at t = 0), the policy
 *    sees an Observation (what the live system would measure) and returns a desired count,
 *    clamped to the scenario's bounds. Scale-out requests new replicas; scale-in cancels
 *    starting replicas first (newest first), then drains the ready replicas with the fewest
 *    jobs in flight: they take no new job and exit when their last one finishes.
 * Replica states: free slot in the pool -> starting -> ready -> draining -> free (exited);
 * starting -> free (cancelled). The run stops at the trace's end; jobs still waiting are misses.
 *
 * Speed: no allocation per job, no closures in the loop; replicas are small parallel typed
 * arrays reused from a pool (at most a few hundred), the only per-job state is its wait.
 */
import type { Jobs } from './jobs.js';
import type { Scenario } from './scenario.js';

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

const STARTING = 1;
const READY = 2;
const DRAINING = 3;
/** A reversal of the desired count this soon after a change the other way is a flap. */
const FLAP_SECONDS = 300;
/** Window of the service-time statistics: 12 buckets of 5 s. */
const STAT_BUCKETS = 12;
const STAT_BUCKET_SECONDS = 5;

/** Runs one policy over one scenario's jobs. Deterministic: the same inputs give the same result. */
export function simulate(scenario: Scenario, jobs: Jobs, policy: SimPolicy, options: RunOptions = {}): RunResult {
  const { arrivals, service } = jobs;
  const n = arrivals.length;
  const end = jobs.traceSeconds;
  const conc = scenario.concurrency;
  const startup = scenario.startupSeconds;
  const waitSlo = scenario.slo.waitSeconds;
  const minR = scenario.minReplicas;
  const maxR = scenario.maxReplicas;
  const allowedMisses = options.abortWhenSloMissed ? Math.floor((1 - scenario.slo.attainment) * n + 1e-9) : Number.POSITIVE_INFINITY;
  const interval = policy.intervalSeconds;

  const waits = new Float64Array(n);

  // --- replica pool (ids reused after exit; never more alive than max + draining ones)
  let cap = Math.max(16, maxR * 2);
  let rState = new Int8Array(cap);
  let rBusy = new Int32Array(cap);
  let rRequested = new Float64Array(cap);
  let rReadyAt = new Float64Array(cap);
  let starting = 0;
  let ready = 0;
  let draining = 0;
  let freeSlots = 0; // free slots on ready (not draining) replicas
  let nextReady = Number.POSITIVE_INFINITY;
  let replicaSeconds = 0;

  // --- busy-slot heap
  let hCap = Math.max(64, (maxR + 8) * conc * 2);
  let hTime = new Float64Array(hCap);
  let hRep = new Int32Array(hCap);
  let hJob = new Int32Array(hCap);
  let hSize = 0;

  // --- counters and integrals
  let head = 0; // oldest waiting job
  let arrived = 0; // jobs arrived so far
  let completions = 0;
  let inFlight = 0;
  let misses = 0;
  let lastT = 0;
  let busyArea = 0;
  let slotArea = 0;
  const statCount = new Float64Array(STAT_BUCKETS);
  const statSum = new Float64Array(STAT_BUCKETS);
  const statSq = new Float64Array(STAT_BUCKETS);
  let statEpoch = 0; // index of the 5 s bucket last written

  // --- desired count and its history
  let desired = Math.min(maxR, Math.max(minR, options.initialReplicas ?? scenario.initialReplicas));
  const desiredT: number[] = [0];
  const desiredV: number[] = [desired];
  let scaleEvents = 0;
  let flaps = 0;
  let lastDir = 0;
  let lastChange = Number.NEGATIVE_INFINITY;

  // --- paid replicas over time, for the series
  const wantSeries = options.seriesBucketSeconds !== undefined && options.seriesBucketSeconds > 0;
  const paidT: number[] = [];
  const paidV: number[] = [];

  function grow(): void {
    cap *= 2;
    const s = new Int8Array(cap);
    s.set(rState);
    rState = s;
    const b = new Int32Array(cap);
    b.set(rBusy);
    rBusy = b;
    const q = new Float64Array(cap);
    q.set(rRequested);
    rRequested = q;
    const r = new Float64Array(cap);
    r.set(rReadyAt);
    rReadyAt = r;
  }

  function allocReplica(): number {
    for (let i = 0; i < cap; i++) if (rState[i] === 0) return i;
    const id = cap;
    grow();
    return id;
  }

  function heapPush(time: number, rep: number, job: number): void {
    if (hSize === hCap) {
      hCap *= 2;
      const a = new Float64Array(hCap);
      a.set(hTime);
      hTime = a;
      const b = new Int32Array(hCap);
      b.set(hRep);
      hRep = b;
      const c = new Int32Array(hCap);
      c.set(hJob);
      hJob = c;
    }
    let i = hSize++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (hTime[p]! <= time) break;
      hTime[i] = hTime[p]!;
      hRep[i] = hRep[p]!;
      hJob[i] = hJob[p]!;
      i = p;
    }
    hTime[i] = time;
    hRep[i] = rep;
    hJob[i] = job;
  }

  /** Replaces the heap's top with a new entry (or removes it when rep < 0) and restores order. */
  function heapReplaceTop(time: number, rep: number, job: number): void {
    if (rep < 0) {
      hSize--;
      if (hSize === 0) return;
      time = hTime[hSize]!;
      rep = hRep[hSize]!;
      job = hJob[hSize]!;
    }
    let i = 0;
    const size = hSize;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const c = r < size && hTime[r]! < hTime[l]! ? r : l;
      if (hTime[c]! >= time) break;
      hTime[i] = hTime[c]!;
      hRep[i] = hRep[c]!;
      hJob[i] = hJob[c]!;
      i = c;
    }
    hTime[i] = time;
    hRep[i] = rep;
    hJob[i] = job;
  }

  function recordPaid(t: number): void {
    if (!wantSeries) return;
    paidT.push(t);
    paidV.push(starting + ready + draining);
  }

  function exitReplica(id: number, t: number): void {
    replicaSeconds += t - rRequested[id]!;
    rState[id] = 0;
  }

  function recomputeNextReady(): void {
    nextReady = Number.POSITIVE_INFINITY;
    if (starting === 0) return;
    for (let i = 0; i < cap; i++) if (rState[i] === STARTING && rReadyAt[i]! < nextReady) nextReady = rReadyAt[i]!;
  }

  /** Starts the oldest waiting job on replica `id` at time t and records its wait. */
  function startJob(id: number, t: number): void {
    const j = head++;
    const w = t - arrivals[j]!;
    waits[j] = w;
    if (w > waitSlo) misses++;
    rBusy[id]!++;
    inFlight++;
    heapPush(t + service[j]!, id, j);
  }

  function makeReady(id: number, t: number): void {
    rState[id] = READY;
    starting--;
    ready++;
    let free = conc;
    while (free > 0 && head < arrived) {
      startJob(id, t);
      free--;
    }
    freeSlots += free;
  }

  function scaleTo(target: number, t: number): void {
    let current = starting + ready;
    if (target > current) {
      for (; current < target; current++) {
        const id = allocReplica();
        rState[id] = STARTING;
        rBusy[id] = 0;
        rRequested[id] = t;
        rReadyAt[id] = t + startup;
        starting++;
        if (startup <= 0) makeReady(id, t);
        else if (t + startup < nextReady) nextReady = t + startup;
      }
    } else if (target < current) {
      let remove = current - target;
      // cancel replicas still starting, newest first
      while (remove > 0 && starting > 0) {
        let pick = -1;
        for (let i = 0; i < cap; i++) if (rState[i] === STARTING && (pick < 0 || rRequested[i]! >= rRequested[pick]!)) pick = i;
        starting--;
        exitReplica(pick, t);
        remove--;
      }
      recomputeNextReady();
      // then drain the ready replicas with the fewest jobs in flight
      while (remove > 0 && ready > 0) {
        let pick = -1;
        for (let i = 0; i < cap; i++) if (rState[i] === READY && (pick < 0 || rBusy[i]! < rBusy[pick]!)) pick = i;
        ready--;
        freeSlots -= conc - rBusy[pick]!;
        if (rBusy[pick] === 0) exitReplica(pick, t);
        else {
          rState[pick] = DRAINING;
          draining++;
        }
        remove--;
      }
    }
    recordPaid(t);
  }

  function setDesired(next: number, t: number): void {
    if (next === desired) return;
    const dir = next > desired ? 1 : -1;
    if (lastDir === -dir && t - lastChange < FLAP_SECONDS) flaps++;
    lastDir = dir;
    lastChange = t;
    scaleEvents++;
    desired = next;
    desiredT.push(t);
    desiredV.push(next);
    scaleTo(next, t);
  }

  // --- t = 0: the initial replicas are ready
  for (let k = 0; k < desired; k++) {
    const id = allocReplica();
    rState[id] = READY;
    rBusy[id] = 0;
    rRequested[id] = 0;
    ready++;
    freeSlots += conc;
  }
  recordPaid(0);

  const obs: Observation = {
    now: 0,
    desired,
    ready,
    starting: 0,
    draining: 0,
    queueDepth: 0,
    oldestAgeSeconds: 0,
    arrivalsTotal: 0,
    completionsTotal: 0,
    inFlight: 0,
    utilization: 0,
    busySlotSecondsTotal: 0,
    slotSecondsTotal: 0,
    serviceTimeMeanSeconds: Number.NaN,
    serviceTimeScv: Number.NaN,
    concurrency: conc,
  };

  let nextTick = interval > 0 ? interval : Number.POSITIVE_INFINITY;
  let aborted = false;
  const INF = Number.POSITIVE_INFINITY;

  for (;;) {
    const ta = arrived < n ? arrivals[arrived]! : INF;
    const tc = hSize > 0 ? hTime[0]! : INF;
    let t = ta < tc ? ta : tc;
    if (nextReady < t) t = nextReady;
    if (nextTick < t) t = nextTick;
    if (t >= end) break;
    if (t > lastT) {
      const dt = t - lastT;
      busyArea += inFlight * dt;
      slotArea += (ready + draining) * conc * dt;
      lastT = t;
    }
    if (tc <= t) {
      // completion
      const id = hRep[0]!;
      const j = hJob[0]!;
      completions++;
      const s = service[j]!;
      const epoch = Math.floor(t / STAT_BUCKET_SECONDS);
      if (epoch !== statEpoch) {
        // clear the buckets skipped since the last write (they hold data older than the window)
        const from = Math.max(statEpoch + 1, epoch - STAT_BUCKETS + 1);
        for (let e = from; e <= epoch; e++) {
          const b = e % STAT_BUCKETS;
          statCount[b] = 0;
          statSum[b] = 0;
          statSq[b] = 0;
        }
        statEpoch = epoch;
      }
      const b = epoch % STAT_BUCKETS;
      statCount[b]!++;
      statSum[b]! += s;
      statSq[b]! += s * s;
      if (rState[id] === READY && head < arrived) {
        // the freed slot takes the oldest waiting job
        const nj = head++;
        const w = t - arrivals[nj]!;
        waits[nj] = w;
        if (w > waitSlo) misses++;
        heapReplaceTop(t + service[nj]!, id, nj);
      } else {
        heapReplaceTop(0, -1, 0);
        rBusy[id]!--;
        inFlight--;
        if (rState[id] === READY) freeSlots++;
        else if (rState[id] === DRAINING && rBusy[id] === 0) {
          draining--;
          exitReplica(id, t);
          recordPaid(t);
        }
      }
    } else if (nextReady <= t) {
      for (let i = 0; i < cap; i++) if (rState[i] === STARTING && rReadyAt[i]! <= t) makeReady(i, t);
      recomputeNextReady();
    } else if (ta <= t) {
      arrived++;
      if (freeSlots > 0) {
        // least-loaded ready replica: work spreads as it does over workers polling one queue
        let pick = -1;
        for (let i = 0; i < cap; i++) if (rState[i] === READY && rBusy[i]! < conc && (pick < 0 || rBusy[i]! < rBusy[pick]!)) pick = i;
        freeSlots--;
        startJob(pick, t);
      }
    } else {
      // policy tick
      let cnt = 0;
      let sum = 0;
      let sq = 0;
      const epoch = Math.floor(t / STAT_BUCKET_SECONDS);
      for (let k = 0; k < STAT_BUCKETS; k++) {
        const e = epoch - k;
        if (e < 0 || e > statEpoch || statEpoch - e >= STAT_BUCKETS) continue;
        const bb = e % STAT_BUCKETS;
        cnt += statCount[bb]!;
        sum += statSum[bb]!;
        sq += statSq[bb]!;
      }
      if (cnt > 0) {
        const mean = sum / cnt;
        obs.serviceTimeMeanSeconds = mean;
        obs.serviceTimeScv = cnt > 1 ? Math.max(0, (sq / cnt - mean * mean) / (mean * mean)) : 0;
      }
      // else: keep the last known values, as a gauge would
      obs.now = t;
      obs.desired = desired;
      obs.ready = ready;
      obs.starting = starting;
      obs.draining = draining;
      obs.queueDepth = arrived - head;
      obs.oldestAgeSeconds = arrived > head ? t - arrivals[head]! : 0;
      obs.arrivalsTotal = arrived;
      obs.completionsTotal = completions;
      obs.inFlight = inFlight;
      const slots = (ready + draining) * conc;
      obs.utilization = slots > 0 ? inFlight / slots : 0;
      obs.busySlotSecondsTotal = busyArea;
      obs.slotSecondsTotal = slotArea;
      const want = policy.decide(obs);
      const next = Math.min(maxR, Math.max(minR, Number.isFinite(want) ? Math.round(want) : desired));
      setDesired(next, t);
      nextTick += interval;
    }
    if (misses > allowedMisses) {
      aborted = true;
      lastT = t;
      break;
    }
  }

  const stopAt = aborted ? lastT : end;
  // jobs still waiting at the end: misses with their wait so far
  for (let j = head; j < arrived; j++) {
    waits[j] = stopAt - arrivals[j]!;
    misses++;
  }
  if (aborted) for (let j = arrived; j < n; j++) waits[j] = 0;
  // replicas are paid until the end
  for (let i = 0; i < cap; i++) if (rState[i] !== 0) replicaSeconds += stopAt - rRequested[i]!;

  const result: RunResult = {
    policy: policy.name,
    jobs: n,
    attainment: n > 0 ? (n - misses) / n : 1,
    waitP50: Number.NaN,
    waitP95: Number.NaN,
    waitP99: Number.NaN,
    waitMax: Number.NaN,
    replicaSeconds,
    lowerBoundSeconds: jobs.lowerBoundSeconds,
    efficiency: replicaSeconds > 0 ? jobs.lowerBoundSeconds / replicaSeconds : 0,
    scaleEvents,
    flaps,
    traceSeconds: end,
    aborted,
    desiredAt: { t: desiredT, replicas: desiredV },
  };
  if (!options.skipPercentiles && !aborted) {
    const [p50, p95, p99, max] = percentiles(waits, [0.5, 0.95, 0.99, 1]);
    result.waitP50 = p50!;
    result.waitP95 = p95!;
    result.waitP99 = p99!;
    result.waitMax = max!;
  }
  if (wantSeries && !aborted) {
    paidT.push(end);
    paidV.push(paidV[paidV.length - 1] ?? 0);
    result.series = buildSeries(arrivals, waits, end, options.seriesBucketSeconds!, paidT, paidV);
  }
  return result;
}

/**
 * Nearest-rank percentiles (the value at rank ceil(p * n)). Zeros (jobs that started on
 * arrival, usually most of them) are counted, not sorted: only the positive waits are.
 */
export function percentiles(values: Float64Array, ps: number[]): number[] {
  const n = values.length;
  if (n === 0) return ps.map(() => 0);
  let positives = 0;
  for (let i = 0; i < n; i++) if (values[i]! > 0) positives++;
  const pos = new Float64Array(positives);
  let k = 0;
  for (let i = 0; i < n; i++) if (values[i]! > 0) pos[k++] = values[i]!;
  pos.sort();
  const zeros = n - positives;
  return ps.map((p) => {
    const rank = Math.max(1, Math.ceil(p * n - 1e-9));
    return rank <= zeros ? 0 : pos[rank - zeros - 1]!;
  });
}

function buildSeries(arrivals: Float64Array, waits: Float64Array, end: number, bucket: number, paidT: number[], paidV: number[]): RunSeries {
  const buckets = Math.ceil(end / bucket);
  const arr = new Float64Array(buckets);
  const p95 = new Float64Array(buckets).fill(Number.NaN);
  let j = 0;
  for (let b = 0; b < buckets; b++) {
    const to = (b + 1) * bucket;
    const from = j;
    while (j < arrivals.length && arrivals[j]! < to) j++;
    arr[b] = j - from;
    if (j > from) p95[b] = percentiles(waits.subarray(from, j), [0.95])[0]!;
  }
  // time-averaged paid replicas per bucket, from the step function (paidT, paidV)
  const reps = new Float64Array(buckets);
  for (let i = 0; i + 1 < paidT.length; i++) {
    let a = paidT[i]!;
    const z = paidT[i + 1]!;
    const v = paidV[i]!;
    while (a < z) {
      const b = Math.min(buckets - 1, Math.floor(a / bucket));
      const stop = Math.min(z, (b + 1) * bucket);
      reps[b]! += (v * (stop - a)) / bucket;
      if (stop <= a) break;
      a = stop;
    }
  }
  return { bucketSeconds: bucket, arrivals: arr, replicas: reps, waitP95: p95 };
}
