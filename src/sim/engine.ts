/**
 * The discrete-event simulator: one run of one policy over one scenario's jobs.
 *
 * Design. Time is continuous (seconds, float). Four kinds of event (five with the urgent poll),
 * taken in time order (at equal times: completion, replica ready, arrival, policy tick, poll):
 *  - arrival: the next entry of the sorted arrival array. If a ready replica has a free slot the
 *    job starts at once (on the next such replica, round robin), else it joins the FIFO queue.
 *    The queue is not a structure: it is the index range [head, arrived) of the arrival array,
 *    because a free slot always takes the oldest waiting job.
 *  - completion: the top of a binary min-heap of busy slots (time, replica, job) in typed arrays.
 *    The freed slot takes the oldest waiting job at once (heap replace-top), unless its replica
 *    is draining; a draining replica with nothing in flight exits.
 *  - replica ready: a replica requested at t is paid from t and takes jobs from t + startup.
 *  - policy tick: every `intervalSeconds` from the first interval on (none at t = 0), the policy
 *    sees an Observation (what the live system would measure) and returns a desired count,
 *    clamped to the scenario's bounds. Scale-out requests new replicas; scale-in cancels
 *    starting replicas first (newest first), then drains the ready replicas with the fewest
 *    jobs in flight: they take no new job and exit when their last one finishes.
 *  - urgent poll (a policy with `urgentWaitSeconds`, as the live controller's trigger): every
 *    `urgentPollSeconds` (0.5 s) the oldest job's age is read, and a policy tick runs at the poll
 *    that finds it at or past that wait when the poll before did not.
 * Replica states: free slot in the pool -> starting -> ready -> draining -> free (exited);
 * starting -> free (cancelled). Arrivals stop at the trace's end; the run goes on, the policy
 * still deciding, until no job waits (as the live system works off what it accepted), at most W
 * longer: a job still waiting then has waited past W, a miss. Replicas are paid until the run stops.
 *
 * Speed: no allocation per job, no closures in the loop; replicas are small parallel typed
 * arrays reused from a pool (at most a few hundred), the only per-job state is its wait.
 */
import { ROUND_SCHEDULE } from '../core/decider.js';
import { SERVICE_WINDOW_SECONDS } from '../core/metrics.js';
import type { Jobs } from './jobs.js';
import type { Observation, RunOptions, RunResult, SimPolicy } from './observation.js';
import type { Scenario } from './scenario.js';
import { buildSeries, isFlap, percentiles } from './series.js';

export type * from './observation.js';
export { countFlaps, isFlap, percentiles, queueDepthSeries } from './series.js';

const STARTING = 1;
const READY = 2;
const DRAINING = 3;
/** Window of the service-time statistics (the live source's): buckets of 5 s. */
const STAT_BUCKET_SECONDS = 5;
const STAT_BUCKETS = SERVICE_WINDOW_SECONDS / STAT_BUCKET_SECONDS;

/** Runs one policy over one scenario's jobs. Deterministic: the same inputs give the same result. */
export function simulate(scenario: Scenario, jobs: Jobs, policy: SimPolicy, options: RunOptions = {}): RunResult {
  return new Run(scenario, jobs, policy, options).run();
}

/**
 * One run's state. A class rather than closures inside simulate(): its methods are created once,
 * so V8's optimised code carries over from run to run (searches do hundreds of short runs).
 */
class Run {
  private readonly arrivals: Float64Array;
  private readonly service: Float64Array;
  private readonly n: number;
  private readonly end: number;
  private readonly conc: number;
  private readonly startup: number;
  private readonly waitSlo: number;
  /** When the run stopped: the trace's end, or later while jobs still waited (at most W later). */
  private stopAt: number;
  private readonly minR: number;
  private readonly maxR: number;
  private readonly allowedMisses: number;
  private readonly interval: number;
  private readonly waits: Float64Array;

  // replica pool (ids reused after exit)
  private cap: number;
  private rState: Int8Array;
  private rBusy: Int32Array;
  private rRequested: Float64Array;
  private rReadyAt: Float64Array;
  private starting = 0;
  private ready = 0;
  private draining = 0;
  /** Free slots on ready (not draining) replicas. */
  private freeSlots = 0;
  /** The replica that took the last arriving job (round-robin dispatch). */
  private rr = 0;
  private nextReady = Number.POSITIVE_INFINITY;
  private replicaSeconds = 0;

  // busy-slot heap: (end time, replica, job)
  private hCap: number;
  private hTime: Float64Array;
  private hRep: Int32Array;
  private hJob: Int32Array;
  private hSize = 0;

  // counters and integrals
  /** Oldest waiting job. */
  private head = 0;
  /** Jobs arrived so far. */
  private arrived = 0;
  private completions = 0;
  private inFlight = 0;
  private misses = 0;
  private lastT = 0;
  private busyArea = 0;
  private slotArea = 0;
  private readonly statCount = new Float64Array(STAT_BUCKETS);
  private readonly statSum = new Float64Array(STAT_BUCKETS);
  private readonly statSq = new Float64Array(STAT_BUCKETS);
  /** Index of the 5 s bucket last written. */
  private statEpoch = 0;

  // the desired count and its history
  private desired: number;
  private readonly desiredT: number[] = [0];
  private readonly desiredV: number[];
  private scaleEvents = 0;
  private flaps = 0;
  private lastDir = 0;
  private lastChange = Number.NEGATIVE_INFINITY;

  // paid replicas over time, for the series
  private readonly wantSeries: boolean;
  private readonly paidT: number[] = [];
  private readonly paidV: number[] = [];

  constructor(
    private readonly scenario: Scenario,
    private readonly jobs: Jobs,
    private readonly policy: SimPolicy,
    private readonly options: RunOptions,
  ) {
    this.arrivals = jobs.arrivals;
    this.service = jobs.service;
    this.n = jobs.arrivals.length;
    this.end = jobs.traceSeconds;
    this.stopAt = this.end;
    this.conc = scenario.concurrency;
    this.startup = scenario.startupSeconds;
    this.waitSlo = scenario.slo.waitSeconds;
    this.minR = scenario.minReplicas;
    this.maxR = scenario.maxReplicas;
    this.allowedMisses = options.abortWhenSloMissed ? Math.floor((1 - scenario.slo.attainment) * this.n + 1e-9) : Number.POSITIVE_INFINITY;
    this.interval = policy.intervalSeconds;
    this.waits = new Float64Array(this.n);
    this.cap = Math.max(16, this.maxR * 2);
    this.rState = new Int8Array(this.cap);
    this.rBusy = new Int32Array(this.cap);
    this.rRequested = new Float64Array(this.cap);
    this.rReadyAt = new Float64Array(this.cap);
    this.rr = this.cap - 1; // the first job goes to replica 0
    this.hCap = Math.max(64, (this.maxR + 8) * this.conc * 2);
    this.hTime = new Float64Array(this.hCap);
    this.hRep = new Int32Array(this.hCap);
    this.hJob = new Int32Array(this.hCap);
    this.desired = Math.min(this.maxR, Math.max(this.minR, options.initialReplicas ?? scenario.initialReplicas));
    this.desiredV = [this.desired];
    this.wantSeries = options.seriesBucketSeconds !== undefined && options.seriesBucketSeconds > 0;
  }

  private grow(): void {
    this.cap *= 2;
    const s = new Int8Array(this.cap);
    s.set(this.rState);
    this.rState = s;
    const b = new Int32Array(this.cap);
    b.set(this.rBusy);
    this.rBusy = b;
    const q = new Float64Array(this.cap);
    q.set(this.rRequested);
    this.rRequested = q;
    const r = new Float64Array(this.cap);
    r.set(this.rReadyAt);
    this.rReadyAt = r;
  }

  private allocReplica(): number {
    for (let i = 0; i < this.cap; i++) if (this.rState[i] === 0) return i;
    const id = this.cap;
    this.grow();
    return id;
  }

  private heapPush(time: number, rep: number, job: number): void {
    if (this.hSize === this.hCap) {
      this.hCap *= 2;
      const a = new Float64Array(this.hCap);
      a.set(this.hTime);
      this.hTime = a;
      const b = new Int32Array(this.hCap);
      b.set(this.hRep);
      this.hRep = b;
      const c = new Int32Array(this.hCap);
      c.set(this.hJob);
      this.hJob = c;
    }
    const hTime = this.hTime;
    const hRep = this.hRep;
    const hJob = this.hJob;
    let i = this.hSize++;
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
  private heapReplaceTop(time: number, rep: number, job: number): void {
    const hTime = this.hTime;
    const hRep = this.hRep;
    const hJob = this.hJob;
    if (rep < 0) {
      this.hSize--;
      if (this.hSize === 0) return;
      time = hTime[this.hSize]!;
      rep = hRep[this.hSize]!;
      job = hJob[this.hSize]!;
    }
    let i = 0;
    const size = this.hSize;
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

  private recordPaid(t: number): void {
    if (!this.wantSeries) return;
    this.paidT.push(t);
    this.paidV.push(this.starting + this.ready + this.draining);
  }

  private exitReplica(id: number, t: number): void {
    this.replicaSeconds += t - this.rRequested[id]!;
    this.rState[id] = 0;
  }

  private recomputeNextReady(): void {
    this.nextReady = Number.POSITIVE_INFINITY;
    if (this.starting === 0) return;
    for (let i = 0; i < this.cap; i++) if (this.rState[i] === STARTING && this.rReadyAt[i]! < this.nextReady) this.nextReady = this.rReadyAt[i]!;
  }

  /** Starts the oldest waiting job on replica `id` at time t and records its wait. */
  private startJob(id: number, t: number): void {
    const j = this.head++;
    const w = t - this.arrivals[j]!;
    this.waits[j] = w;
    if (w > this.waitSlo) this.misses++;
    this.rBusy[id]!++;
    this.inFlight++;
    this.heapPush(t + this.service[j]!, id, j);
  }

  private makeReady(id: number, t: number): void {
    this.rState[id] = READY;
    this.starting--;
    this.ready++;
    let free = this.conc;
    while (free > 0 && this.head < this.arrived) {
      this.startJob(id, t);
      free--;
    }
    this.freeSlots += free;
  }

  private scaleTo(target: number, t: number): void {
    let current = this.starting + this.ready;
    if (target > current) {
      for (; current < target; current++) {
        const id = this.allocReplica();
        this.rState[id] = STARTING;
        this.rBusy[id] = 0;
        this.rRequested[id] = t;
        this.rReadyAt[id] = t + this.startup;
        this.starting++;
        if (this.startup <= 0) this.makeReady(id, t);
        else if (t + this.startup < this.nextReady) this.nextReady = t + this.startup;
      }
    } else if (target < current) {
      let remove = current - target;
      // cancel replicas still starting, newest first
      while (remove > 0 && this.starting > 0) {
        let pick = -1;
        for (let i = 0; i < this.cap; i++) if (this.rState[i] === STARTING && (pick < 0 || this.rRequested[i]! >= this.rRequested[pick]!)) pick = i;
        this.starting--;
        this.exitReplica(pick, t);
        remove--;
      }
      this.recomputeNextReady();
      // then drain the ready replicas with the fewest jobs in flight
      while (remove > 0 && this.ready > 0) {
        let pick = -1;
        for (let i = 0; i < this.cap; i++) if (this.rState[i] === READY && (pick < 0 || this.rBusy[i]! < this.rBusy[pick]!)) pick = i;
        this.ready--;
        this.freeSlots -= this.conc - this.rBusy[pick]!;
        if (this.rBusy[pick] === 0) this.exitReplica(pick, t);
        else {
          this.rState[pick] = DRAINING;
          this.draining++;
        }
        remove--;
      }
    }
    this.recordPaid(t);
  }

  private setDesired(next: number, t: number): void {
    if (next === this.desired) return;
    const dir = next > this.desired ? 1 : -1;
    if (isFlap(this.lastDir, dir, t - this.lastChange)) this.flaps++;
    this.lastDir = dir;
    this.lastChange = t;
    this.scaleEvents++;
    this.desired = next;
    this.desiredT.push(t);
    this.desiredV.push(next);
    this.scaleTo(next, t);
  }

  private complete(t: number): void {
    const id = this.hRep[0]!;
    const j = this.hJob[0]!;
    this.completions++;
    const s = this.service[j]!;
    const epoch = Math.floor(t / STAT_BUCKET_SECONDS);
    if (epoch !== this.statEpoch) {
      // clear the buckets skipped since the last write (they hold data older than the window)
      const from = Math.max(this.statEpoch + 1, epoch - STAT_BUCKETS + 1);
      for (let e = from; e <= epoch; e++) {
        const b = e % STAT_BUCKETS;
        this.statCount[b] = 0;
        this.statSum[b] = 0;
        this.statSq[b] = 0;
      }
      this.statEpoch = epoch;
    }
    const b = epoch % STAT_BUCKETS;
    this.statCount[b]!++;
    this.statSum[b]! += s;
    this.statSq[b]! += s * s;
    const state = this.rState[id];
    if (state === READY && this.head < this.arrived) {
      // the freed slot takes the oldest waiting job
      const nj = this.head++;
      const w = t - this.arrivals[nj]!;
      this.waits[nj] = w;
      if (w > this.waitSlo) this.misses++;
      this.heapReplaceTop(t + this.service[nj]!, id, nj);
    } else {
      this.heapReplaceTop(0, -1, 0);
      this.rBusy[id]!--;
      this.inFlight--;
      if (state === READY) this.freeSlots++;
      else if (state === DRAINING && this.rBusy[id] === 0) {
        this.draining--;
        this.exitReplica(id, t);
        this.recordPaid(t);
      }
    }
  }

  private arrive(t: number): void {
    this.arrived++;
    if (this.freeSlots > 0) {
      // round robin over ready replicas with a free slot: work spreads as it does over workers
      // polling one queue, and finding one costs O(1) amortised (a least-loaded scan cost
      // O(replicas) per job at low load)
      const rState = this.rState;
      const rBusy = this.rBusy;
      const cap = this.cap;
      let i = this.rr;
      for (let k = 0; k < cap; k++) {
        i = i + 1 === cap ? 0 : i + 1;
        if (rState[i] === READY && rBusy[i]! < this.conc) break;
      }
      this.rr = i;
      this.freeSlots--;
      this.startJob(i, t);
    }
  }

  private tick(t: number, obs: Observation): void {
    let cnt = 0;
    let sum = 0;
    let sq = 0;
    const epoch = Math.floor(t / STAT_BUCKET_SECONDS);
    for (let k = 0; k < STAT_BUCKETS; k++) {
      const e = epoch - k;
      if (e < 0 || e > this.statEpoch || this.statEpoch - e >= STAT_BUCKETS) continue;
      const bb = e % STAT_BUCKETS;
      cnt += this.statCount[bb]!;
      sum += this.statSum[bb]!;
      sq += this.statSq[bb]!;
    }
    if (cnt > 0) {
      const mean = sum / cnt;
      obs.serviceTimeMeanSeconds = mean;
      obs.serviceTimeScv = cnt > 1 ? Math.max(0, (sq / cnt - mean * mean) / (mean * mean)) : 0;
    }
    // else: keep the last known values, as a gauge would
    obs.now = t;
    obs.desired = this.desired;
    obs.ready = this.ready;
    obs.starting = this.starting;
    obs.draining = this.draining;
    obs.queueDepth = this.arrived - this.head;
    obs.oldestAgeSeconds = this.arrived > this.head ? t - this.arrivals[this.head]! : 0;
    obs.arrivalsTotal = this.arrived;
    obs.completionsTotal = this.completions;
    obs.inFlight = this.inFlight;
    const slots = (this.ready + this.draining) * this.conc;
    obs.utilization = slots > 0 ? this.inFlight / slots : 0;
    obs.busySlotSecondsTotal = this.busyArea;
    obs.slotSecondsTotal = this.slotArea;
    const want = this.policy.decide(obs);
    const next = Math.min(this.maxR, Math.max(this.minR, Number.isFinite(want) ? Math.round(want) : this.desired));
    this.setDesired(next, t);
  }

  run(): RunResult {
    // t = 0: the initial replicas are ready
    for (let k = 0; k < this.desired; k++) {
      const id = this.allocReplica();
      this.rState[id] = READY;
      this.rBusy[id] = 0;
      this.rRequested[id] = 0;
      this.ready++;
      this.freeSlots += this.conc;
    }
    this.recordPaid(0);

    const obs: Observation = {
      now: 0,
      desired: this.desired,
      ready: this.ready,
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
      concurrency: this.conc,
    };

    const INF = Number.POSITIVE_INFINITY;
    const arrivals = this.arrivals;
    const n = this.n;
    const end = this.end;
    let nextTick = this.interval > 0 ? this.interval : INF;
    let aborted = false;
    const urgentWait = this.policy.urgentWaitSeconds;
    const pollEvery = this.policy.urgentPollSeconds ?? ROUND_SCHEDULE.urgentPollSeconds;
    let nextPoll = urgentWait === undefined || !(pollEvery > 0) ? INF : pollEvery;
    let overWait = false;
    for (;;) {
      const ta = this.arrived < n ? arrivals[this.arrived]! : INF;
      const tc = this.hSize > 0 ? this.hTime[0]! : INF;
      let t = ta < tc ? ta : tc;
      if (this.nextReady < t) t = this.nextReady;
      if (nextTick < t) t = nextTick;
      if (nextPoll < t) t = nextPoll;
      if (t >= end && (this.head >= this.arrived || t >= end + this.waitSlo)) {
        this.stopAt = this.head >= this.arrived ? Math.max(end, this.lastT) : end + this.waitSlo;
        break;
      }
      if (t > this.lastT) {
        const dt = t - this.lastT;
        this.busyArea += this.inFlight * dt;
        this.slotArea += (this.ready + this.draining) * this.conc * dt;
        this.lastT = t;
      }
      if (tc <= t) this.complete(t);
      else if (this.nextReady <= t) {
        for (let i = 0; i < this.cap; i++) if (this.rState[i] === STARTING && this.rReadyAt[i]! <= t) this.makeReady(i, t);
        this.recomputeNextReady();
      } else if (ta <= t) this.arrive(t);
      else if (nextTick <= t) {
        this.tick(t, obs);
        nextTick += this.interval;
      } else {
        // the urgent poll: a round when the oldest job's age crosses the wait, once per crossing
        const over = this.arrived > this.head && t - arrivals[this.head]! >= urgentWait!;
        if (over && !overWait) this.tick(t, obs);
        overWait = over;
        nextPoll += pollEvery;
      }
      if (this.misses > this.allowedMisses) {
        aborted = true;
        break;
      }
    }
    return this.finish(aborted);
  }

  private finish(aborted: boolean): RunResult {
    const stopAt = aborted ? this.lastT : this.stopAt;
    const { arrivals, waits, n } = this;
    // jobs still waiting when the run stops: misses with their wait so far
    for (let j = this.head; j < this.arrived; j++) {
      waits[j] = stopAt - arrivals[j]!;
      this.misses++;
    }
    if (aborted) for (let j = this.arrived; j < n; j++) waits[j] = 0;
    // replicas are paid until the end
    for (let i = 0; i < this.cap; i++) if (this.rState[i] !== 0) this.replicaSeconds += stopAt - this.rRequested[i]!;

    const result: RunResult = {
      policy: this.policy.name,
      jobs: n,
      attainment: n > 0 ? (n - this.misses) / n : 1,
      waitP50: Number.NaN,
      waitP95: Number.NaN,
      waitP99: Number.NaN,
      waitMax: Number.NaN,
      replicaSeconds: this.replicaSeconds,
      lowerBoundSeconds: this.jobs.lowerBoundSeconds,
      efficiency: this.replicaSeconds > 0 ? this.jobs.lowerBoundSeconds / this.replicaSeconds : 0,
      scaleEvents: this.scaleEvents,
      flaps: this.flaps,
      traceSeconds: this.end,
      aborted,
      desiredAt: { t: this.desiredT, replicas: this.desiredV },
    };
    if (!this.options.skipPercentiles && !aborted) {
      const [p50, p95, p99, max] = percentiles(waits, [0.5, 0.95, 0.99, 1]);
      result.waitP50 = p50!;
      result.waitP95 = p95!;
      result.waitP99 = p99!;
      result.waitMax = max!;
    }
    if (this.wantSeries && !aborted) {
      this.paidT.push(this.end);
      this.paidV.push(this.paidV[this.paidV.length - 1] ?? 0);
      result.series = buildSeries(arrivals, waits, this.end, this.options.seriesBucketSeconds!, this.paidT, this.paidV);
    }
    return result;
  }
}
