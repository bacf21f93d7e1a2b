/**
 * The SLO policy: "a fraction A of jobs start within W seconds". See docs/slo-policy.md for the
 * model and its assumptions.
 *
 * Each round it estimates the arrival rate from the counter (sub-window rates: a fast estimate
 * that wins on a step up, a median, and a clipped least-squares line whose trend, when clear of
 * the noise, is projected over the start-up delay; and a burst envelope that scale-in must
 * still serve), and proposes the larger of (a) the smallest
 * count whose predicted share of waits over W (Erlang C with an Allen-Cunneen variability
 * correction) is under half of 1 - A, on the sustained rate, and (b) the count that serves the
 * backlog in time (FIFO deadlines), counting starting and new replicas only from when they
 * will be ready.
 *
 * State (per policy, in History.state):
 * - `belowSince`: when a smaller count first qualified for scale-in with margin. undefined ->
 *   now when one qualifies; back to undefined when it stops qualifying, the policy proposes up,
 *   or a recent scale-up blocks scale-in; after the hold the smaller count is proposed.
 * - `service`: the smoothed service-time mean and scv, and the completions counter at the last
 *   update (the weight of a new reading grows with the jobs completed since).
 * - `damping`: the flap-damping penalty, its last update time, and the scale-down event last
 *   counted (each scale-up within 300 s of a scale-down adds one; it halves every half-life).
 */
import { replicasForWait } from './erlang.js';
import { rateOver, samplingPeriod, type Series } from './metrics.js';
import { type PolicyContext, type Proposal, round } from './policies.js';
import { METRIC, type ServicePolicy, type SloPolicy } from './types.js';

/** Defaults of the SLO policy (docs/slo-policy.md explains each); exported so docs and tests name one source. */
export const SLO_DEFAULTS: Readonly<{
  upShare: number;
  margin: number;
  scaleInHoldSeconds: number;
  fastWindowSeconds: number;
  slowWindowSeconds: number;
  maxProjection: number;
  longWindowSeconds: number;
  scaleDownWindowSeconds: number;
  reversalSeconds: number;
  drainShare: number;
  trendDeviations: number;
  burstMemorySeconds: number;
  burstWaitShare: number;
  absorbWaitShare: number;
  burstRecurrences: number;
  onOffDispersion: number;
  jumpFactor: number;
  jumpDeviations: number;
  dampingHalfLifeSeconds: number;
  noiseDeviations: number;
  warmupCompletions: number;
  saturatedMinCompletions: number;
  littleFullWeightCompletions: number;
}> = {
  /** Share of the allowed late fraction the policy plans for on the way up (a safety factor). */
  upShare: 0.5,
  margin: 0.25,
  scaleInHoldSeconds: 15,
  fastWindowSeconds: 10,
  slowWindowSeconds: 120,
  /** The start-up projection may add at most this multiple of the current rate. */
  maxProjection: 1,
  /** Steady traffic is read over this long (see estimateRate). */
  longWindowSeconds: 600,
  /** Default scale-down stabilization window for a service with an SLO policy, seconds. */
  scaleDownWindowSeconds: 30,
  /** No scale-in proposal within this many seconds after a scale-up (a reversal is a flap). */
  reversalSeconds: 300,
  /** When start-up is longer than the wait bound, new replicas must drain within this share of W once ready. */
  drainShare: 1,
  /** A trend is projected over the start-up delay only when its slope is this many deviations above zero. */
  trendDeviations: 4,
  /** Scale-in keeps the burst envelope of this many seconds (times the damping factor). */
  burstMemorySeconds: 120,
  /** In the burst envelope a burst's own backlog may use this share of W (the rest is for the randomness the Erlang part sizes for). */
  burstWaitShare: 0.5,
  /**
   * A swing to a level already seen within the reversal window is absorbed by the queue when its
   * backlog drains within this share of W: half of what scale-in leaves for bursts
   * (`burstWaitShare`), so scale-up always sizes above the scale-in floor.
   */
  absorbWaitShare: 0.25,
  /**
   * Bursts recur when the rates climb across the middle of their range at least this many
   * times, and then the burst envelope remembers them for the reversal window (a scale-in the
   * next burst undoes within it is a flap).
   */
  burstRecurrences: 3,
  /** Sub-window rates whose scatter around the line exceeds this many times the Poisson variance are on/off traffic: no trend is read from them. */
  onOffDispersion: 16,
  /** The newest sub-window alone counts as a step when its rate is over this multiple of the slow level... */
  jumpFactor: 2,
  /** ...and this many Poisson deviations above it. */
  jumpDeviations: 6,
  /** Half-life of the flap-damping penalty, seconds. */
  dampingHalfLifeSeconds: 1800,
  /** Until this many jobs have completed, the service time is at least Little's-law estimate. */
  warmupCompletions: 1000,
  /** Little's law on a saturated fleet is read only over a window with this many completions. */
  saturatedMinCompletions: 5,
  /** A Little's-law reading off this many completions or more gets its full smoothing weight; fewer, proportionally less. */
  littleFullWeightCompletions: 20,
  /** Scale-in plans for this many Poisson deviations of arrival-rate noise above the plan. */
  noiseDeviations: 2,
};

interface SloState {
  belowSince?: number;
  /** Smoothed service-time mean and scv, and the completions counter they were last updated at. */
  service?: { mean: number; scv: number; completions: number };
  /** Flap damping: a penalty that grows by one per reversal and halves every `dampingHalfLifeSeconds`. */
  damping?: { level: number; at: number; counted: number };
  /** Little's-law service time (jobs in flight over throughput), smoothed over time, and when it was last updated. */
  little?: { mean: number; at: number };
}

function num(o: object, key: string): number | undefined {
  const v = (o as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function readState(state: unknown): SloState {
  if (!state || typeof state !== 'object') return {};
  const out: SloState = {};
  const belowSince = num(state, 'belowSince');
  if (belowSince !== undefined) out.belowSince = belowSince;
  const service = (state as Record<string, unknown>).service;
  if (service && typeof service === 'object') {
    const mean = num(service, 'mean');
    const scv = num(service, 'scv');
    const completions = num(service, 'completions');
    if (mean !== undefined && scv !== undefined && completions !== undefined) out.service = { mean, scv, completions };
  }
  const little = (state as Record<string, unknown>).little;
  if (little && typeof little === 'object') {
    const mean = num(little, 'mean');
    const at = num(little, 'at');
    if (mean !== undefined && at !== undefined) out.little = { mean, at };
  }
  const damping = (state as Record<string, unknown>).damping;
  if (damping && typeof damping === 'object') {
    const level = num(damping, 'level');
    const at = num(damping, 'at');
    const counted = num(damping, 'counted');
    if (level !== undefined && at !== undefined && counted !== undefined) out.damping = { level, at, counted };
  }
  return out;
}

/** Time over which a new Little's-law reading gets about two thirds of the weight, ms. */
const LITTLE_SMOOTHING_MS = 60_000;

/** Completions over which a new service-time reading gets about two thirds of the weight. */
const SERVICE_SMOOTHING_JOBS = 200;

/**
 * Smooths the service-time reading by the number of jobs completed since the last update, so a
 * window holding few jobs (just after load drops) cannot swing the estimate far.
 */
function smoothService(prev: SloState['service'], mean: number, scv: number, completions: number | undefined): NonNullable<SloState['service']> {
  if (!prev || completions === undefined || completions < prev.completions) return { mean, scv, completions: completions ?? 0 };
  const w = 1 - Math.exp(-(completions - prev.completions) / SERVICE_SMOOTHING_JOBS);
  return { mean: prev.mean + w * (mean - prev.mean), scv: prev.scv + w * (scv - prev.scv), completions };
}

/** Arrival-rate estimates, jobs/s. */
export interface RateEstimate {
  /** The lower of the two newest sub-window rates. */
  fast: number;
  /** The median sub-window rate over the slow window. */
  slow: number;
  /** The level now plus a clear trend over the start-up delay, ignoring a step up not yet in the median. */
  sustained: number;
  /** What the policy plans for on the way up: `sustained`, the fast rate after a step up, or the newest rate after a jump. */
  planned: number;
  /** What a smaller count must still serve: `planned` (`sustained` when bursts recur) plus two standard deviations of Poisson noise. */
  cautious: number;
  /** True when the newest sub-windows stand clear above the slow level (a step up). */
  rising: boolean;
  /** The burst envelope (`burstRate`) over the burst memory: a smaller fleet must still serve this many jobs/s. */
  burstDown: number;
  /** True when the bursts in the burst memory recur (`recurring`): the envelope then covers the recurring memory. */
  recurring: boolean;
  /** True when only the newest sub-window jumped (more than `jumpFactor` times the slow level and `jumpDeviations` above it); `planned` is then that sub-window's rate. */
  jumped: boolean;
  /** When the planned rate is a level already reached within the reversal window: the envelope of that window's bursts (`absorbedRate`), which the wait target sizes for instead. */
  absorbed?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Whether sub-window rates (newest first) show bursts that recur: the rates swing between a low
 * and a high level far apart (six Poisson deviations at the high level) and climb across their
 * midpoint at least `SLO_DEFAULTS.burstRecurrences` times. A single step up or down does not
 * recur; Poisson noise around a level does not swing that far.
 */
export function recurring(rates: readonly number[], subSeconds: number): boolean {
  if (rates.length < 4) return false;
  const lo = Math.min(...rates);
  const hi = Math.max(...rates);
  if (hi - lo <= 6 * Math.sqrt(Math.max(hi, 1 / subSeconds) / subSeconds)) return false;
  const mid = (lo + hi) / 2;
  let rises = 0;
  for (let i = rates.length - 1; i > 0; i--) if (rates[i]! <= mid && rates[i - 1]! > mid) rises++;
  return rises >= SLO_DEFAULTS.burstRecurrences;
}

/**
 * Burst memory as an arrival envelope: the lowest steady service rate under which every burst
 * of the memory window starts its jobs within `wait` seconds. A burst at rate r held for τ
 * seconds into a fleet serving μ jobs/s leaves its last job waiting (r − μ)τ/μ, so μ ≥ rτ/(τ + w)
 * suffices for that burst; the envelope is the largest such μ over every window of at least
 * two sub-windows (from the memory's sub-window rates). Each sub-window rate is first clipped to
 * the higher of its neighbours, so a lump that landed in one sub-window counts as backlog (the
 * drain part's business), not as a burst. Undefined with fewer than two sub-windows.
 */
export function burstRate(series: Series, now: number, subMs: number, memorySeconds: number, wait: number, recurringMemorySeconds = memorySeconds): number | undefined {
  return burstEnvelope(series, now, subMs, memorySeconds, wait, recurringMemorySeconds)?.rate;
}

/** Sub-window rates (newest first) over the last `seconds`, as far back as the series goes. */
function subWindowRates(series: Series, now: number, subMs: number, seconds: number): number[] {
  const first = series[0];
  const out: number[] = [];
  if (!first) return out;
  for (let end = now; end - subMs >= first.at && end > now - seconds * 1000 + 1; end -= subMs) {
    const r = rateOver(series, end - subMs, end);
    if (r === undefined) break;
    out.push(r);
  }
  return out;
}

/** Each rate clipped to the higher of its neighbours: a lump that landed in one sub-window is backlog, not a burst. */
function clipLumps(rates: readonly number[]): number[] {
  return rates.map((r, i) => Math.min(r, Math.max(rates[i - 1] ?? 0, rates[i + 1] ?? 0)));
}

/** The largest rτ/(τ + wait) over every window of two sub-windows or more (see `burstRate`). */
function envelopeOf(clipped: readonly number[], sub: number, wait: number): number {
  const m = clipped.length;
  const prefix = [0];
  for (let i = 0; i < m; i++) prefix.push(prefix[i]! + clipped[i]! * sub);
  let best = 0;
  for (let i = 0; i < m; i++) {
    for (let j = i + 2; j <= m; j++) {
      const mu = (prefix[j]! - prefix[i]!) / ((j - i) * sub + wait);
      if (mu > best) best = mu;
    }
  }
  return best;
}

/** `burstRate`, and whether the bursts recur (so the longer memory applied). */
function burstEnvelope(series: Series, now: number, subMs: number, memorySeconds: number, wait: number, recurringMemorySeconds: number): { rate: number; recurring: boolean } | undefined {
  const all = subWindowRates(series, now, subMs, Math.max(memorySeconds, recurringMemorySeconds));
  const sub = subMs / 1000;
  const recur = recurring(all, sub);
  const rates = recur ? all : all.slice(0, Math.floor((memorySeconds * 1000 + 1) / subMs));
  if (rates.length < 2) return undefined;
  return { rate: envelopeOf(clipLumps(rates), sub, wait), recurring: recur };
}

/** The policy's reversal window: how long a scale-up is not undone (`reversalSeconds`, default 300 s). */
export function reversalOf(p: SloPolicy): number {
  return p.reversalSeconds ?? SLO_DEFAULTS.reversalSeconds;
}

/**
 * What the wait target may size for when the planned rate is a level the traffic already reached
 * within the reversal window (the sub-window rates before the two newest, lumps clipped): the
 * envelope of that window's bursts with `wait` for their backlog (`burstRate`). Such swings are
 * noise the queue absorbs; a count that follows each of them is scaled in and out again within
 * the reversal window. Undefined for a level not seen there (a step from quiet, a flash crowd),
 * which is planned at once.
 */
export function absorbedRate(series: Series, now: number, subMs: number, planned: number, wait: number, reversalSeconds: number = SLO_DEFAULTS.reversalSeconds): number | undefined {
  const recent = subWindowRates(series, now, subMs, reversalSeconds);
  const seen = Math.max(0, ...clipLumps(recent.slice(2)));
  if (recent.length < 3 || planned > seen) return undefined;
  return envelopeOf(clipLumps(recent), subMs / 1000, wait);
}

/**
 * Arrival rates from the counter, read as sub-window rates (10 s by default, at least one
 * sampling period) over the slow window.
 *
 * - A step up: the two newest sub-windows both stand more than three Poisson deviations above
 *   the median; then the lower of them is the level (the fast estimate wins on the way up).
 *   A jump (the newest sub-window alone far above) is planned at once too.
 * - Otherwise: a least-squares line through the sub-window rates, each first clipped to the
 *   median plus four deviations, so a lump that arrived in one interval (a batch) counts as
 *   backlog and not as a rate that will last. The level is the line's value now, never below
 *   the median (or the mean if lower), and the projection adds the line's slope over the
 *   start-up delay, unless the rates scatter like on/off traffic.
 * - The burst envelope over the burst memory (`burstRate`), which scale-in must still serve.
 */
export function estimateRate(series: Series, now: number, p: SloPolicy, memorySeconds: number = SLO_DEFAULTS.burstMemorySeconds): RateEstimate | undefined {
  const period = samplingPeriod(series);
  if (period === undefined) return undefined;
  const fastMs = (p.fastWindowSeconds ?? SLO_DEFAULTS.fastWindowSeconds) * 1000;
  const slowMs = Math.max(fastMs, (p.slowWindowSeconds ?? SLO_DEFAULTS.slowWindowSeconds) * 1000);
  const sub = Math.max(fastMs / 2, period);
  const rates: number[] = []; // newest first
  for (let end = now; end > now - slowMs + 1; end -= sub) {
    const r = rateOver(series, end - sub, end);
    if (r === undefined) break;
    rates.push(r);
  }
  const r0 = rates[0];
  if (r0 === undefined) return undefined;
  const r1 = rates[1] ?? r0;
  const fast = Math.min(r0, r1);
  const slow = median(rates);
  const subSeconds = sub / 1000;
  // Poisson deviation of one sub-window's rate at the slow level (at least one job's worth).
  const dev = Math.sqrt(Math.max(slow, 1 / subSeconds) / subSeconds);
  const startup = p.startupSeconds ?? 0;
  const rising = rates.length >= 3 && fast > slow + 3 * dev;
  // A drop: both newest sub-windows clearly below the median. Scale-up decisions then follow
  // the newer rate (the median lags by half the window); scale-in still waits for the median.
  const falling = rates.length >= 3 && Math.max(r0, r1) < slow - 3 * dev;
  let level: number;
  let slope = 0;
  // The level the plan never goes under (but on a drop): the median, or on on/off traffic, where
  // the median flips between the off and the on rate, the mean if lower (bursts are the
  // envelope's business, below).
  let floor = slow;
  let levelSpan = rates.length * subSeconds;
  if (falling) {
    level = Math.max(r0, r1);
  } else {
    const clipped = rates.map((r) => Math.min(r, slow + 4 * dev));
    const n = clipped.length;
    // x: seconds before now of each sub-window's centre (0.5 sub for the newest).
    const xs = clipped.map((_, i) => -(i + 0.5) * subSeconds);
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = clipped.reduce((a, b) => a + b, 0) / n;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < n; i++) {
      sxx += (xs[i]! - mx) ** 2;
      sxy += (xs[i]! - mx) * (clipped[i]! - my);
    }
    const fitted = n >= 4 && sxx > 0 ? sxy / sxx : 0;
    let residual = 0;
    for (let i = 0; i < n; i++) residual += (clipped[i]! - my - fitted * (xs[i]! - mx)) ** 2;
    const slopeDev = n > 2 && sxx > 0 ? Math.sqrt(residual / (n - 2) / sxx) : Infinity;
    // Only a trend that stands clear of the noise moves the plan: a noisy slope projected over
    // the start-up delay would swing the count up and down with every burst.
    // On/off traffic (sub-window rates scattered far beyond Poisson noise) has no line to trust:
    // a change in the duty cycle looks like a trend, and the line's end sits at the on rate.
    const onOff = n > 2 && residual / (n - 2) > SLO_DEFAULTS.onOffDispersion * dev * dev;
    slope = !onOff && fitted > SLO_DEFAULTS.trendDeviations * slopeDev && fast > slow ? fitted : 0;
    // The line's value now, but never above what the newest sub-windows saw: only the start-up
    // projection below looks ahead.
    if (!rising) floor = Math.min(slow, my);
    level = Math.max(floor, Math.min(slope > 0 ? my - slope * mx : my, Math.max(r0, r1)));
    // Steady traffic: when the window's mean sits within the noise of the long window's (no step,
    // no trend, no on/off swing), the long window is the level. Its estimate is several times
    // steadier, and every swing of the level is a swing of the count that scale-in then holds.
    const long = rateOver(series, now - SLO_DEFAULTS.longWindowSeconds * 1000, now);
    if (long !== undefined && !rising && !onOff && slope === 0) {
      const scatter = n > 1 ? Math.sqrt(clipped.reduce((a, r) => a + (r - my) ** 2, 0) / (n - 1) / n) : Infinity;
      const meanDev = Math.max(Math.sqrt(Math.max(long, 1 / (n * subSeconds)) / (n * subSeconds)), scatter);
      if (Math.abs(my - long) <= 3 * meanDev) {
        level = long;
        floor = long;
        // Its noise is that of a ten-minute mean, when a start-up fits in W (an error then shows
        // as backlog in time for the backlog part to correct it).
        if (startup < p.waitSeconds) levelSpan = Math.min(SLO_DEFAULTS.longWindowSeconds, (now - series[0]!.at) / 1000);
      }
    }
  }
  const sustained = level + Math.min(Math.max(0, slope) * startup, SLO_DEFAULTS.maxProjection * level);
  // A jump: the newest sub-window alone more than doubles the slow level, far outside its noise.
  // Waiting for the second sub-window to confirm it costs a whole sub-window of detection delay,
  // which on a flash crowd is the difference between 90% and 92% attainment (docs/slo-policy.md,
  // "The best a reactive policy can do"); a lump that lands in one sub-window is planned as a
  // step for one round, which only matters when start-up is longer than W (the backlog part
  // counts arrivals over the start-up then).
  const jumped = !rising && rates.length >= 3 && r0 > SLO_DEFAULTS.jumpFactor * slow && r0 > slow + SLO_DEFAULTS.jumpDeviations * dev;
  const planned = rising ? Math.max(fast, sustained) : jumped ? Math.max(r0, sustained) : sustained;
  // The plan's own Poisson noise: a fitted line's end has about twice the deviation of the mean.
  // The count behind it covers the whole window (the long one when the level was read there), so
  // its deviation is at least one job over the window (not over one sub-window: that floor would
  // keep idle replicas for long jobs). And an error in the estimate lasts until the next windows
  // show it: the queue absorbs what the error piles up over W, so only the error of a rate
  // averaged over the window plus W matters.
  const w = Math.max(0, p.waitSeconds);
  const spanSeconds = levelSpan + w;
  const planDev = 2 * Math.sqrt(Math.max(planned, 1 / spanSeconds) / spanSeconds);
  const envelope = burstEnvelope(series, now, sub, memorySeconds, w * SLO_DEFAULTS.burstWaitShare, reversalOf(p));
  const burstDown = envelope?.rate ?? 0;
  // When bursts recur, a burst's onset (a step up, a jump) is the next burst, not a new level:
  // the envelope sizes for it, and scale-in is not blocked by every burst that comes along.
  const cautious = Math.max(envelope?.recurring ? sustained : planned, floor) + SLO_DEFAULTS.noiseDeviations * planDev;
  // Only when a start-up fits in W: otherwise a swing the count did not follow cannot be corrected
  // in time (replicas asked for once the backlog shows come too late).
  const absorbed = startup < w ? absorbedRate(series, now, sub, planned, w * SLO_DEFAULTS.absorbWaitShare, reversalOf(p)) : undefined;
  return { fast, slow, sustained, planned, cautious, rising, jumped, burstDown, recurring: envelope?.recurring ?? false, ...(absorbed === undefined ? {} : { absorbed }) };
}

/**
 * Replicas such that `work` replica-seconds are done by `deadline`: ready ones work the whole
 * time, starting ones from when they will be ready, new ones after the full start-up.
 */
function replicasForWork(work: number, deadline: number, startup: number, ready: number, starting: readonly number[]): number {
  if (work <= 0) return 0;
  if (work <= ready * deadline) return Math.ceil(work / deadline - 1e-9);
  let done = ready * deadline;
  let count = ready;
  for (const remaining of [...starting].sort((a, b) => a - b)) {
    if (done >= work) return count;
    done += Math.max(0, deadline - remaining);
    count++;
  }
  if (done >= work) return count;
  return count + Math.ceil((work - done) / (deadline - startup) - 1e-9);
}

/**
 * Seconds until each replica still starting is ready, from the scale-up events of the last
 * start-up period (newest first); replicas no event explains are assumed to have just started.
 */
export function startingReplicas(events: ReadonlyArray<{ at: number; from: number; to: number }>, now: number, count: number, startupSeconds: number): number[] {
  const out: number[] = [];
  for (let i = events.length - 1; i >= 0 && out.length < count; i--) {
    const e = events[i]!;
    const age = (now - e.at) / 1000;
    if (age >= startupSeconds) break;
    for (let k = 0; k < e.to - e.from && out.length < count; k++) out.push(startupSeconds - age);
  }
  while (out.length < count) out.push(startupSeconds);
  return out;
}

/**
 * Replicas to keep the backlog's promise, new ones counted only from when they will be ready:
 * - the jobs waiting now must all start before the oldest of them reaches W (when new replicas
 *   can still help by then);
 * - by the horizon (start-up plus what is left of W, or a share of W when start-up eats it),
 *   the backlog and every job arriving before horizon - W must have started (FIFO: later
 *   arrivals may still be waiting and on time).
 */
export function replicasToDrain(input: {
  backlog: number;
  lambda: number;
  serviceTime: number;
  concurrency: number;
  waitSeconds: number;
  startupSeconds: number;
  ready: number;
  /** Seconds until each replica still starting is ready. */
  starting?: readonly number[];
  /** Seconds the oldest waiting job has waited (0 if unknown). */
  oldestAge?: number;
}): number {
  const { backlog, lambda, serviceTime, concurrency, waitSeconds, startupSeconds } = input;
  const ready = Math.max(0, input.ready);
  const perJob = serviceTime / concurrency; // replica-seconds per job
  const newServe = Math.max(waitSeconds - startupSeconds, Math.min(waitSeconds, startupSeconds) * SLO_DEFAULTS.drainShare);
  const horizon = startupSeconds + newServe;
  const starting = input.starting ?? [];
  const byHorizon = replicasForWork((backlog + lambda * Math.max(0, horizon - waitSeconds)) * perJob, horizon, startupSeconds, ready, starting);
  const deadline = waitSeconds - (input.oldestAge ?? 0);
  // When new replicas would have only a sliver of time left before that deadline, they cannot
  // save those jobs; sizing for it would ask for a crowd that is useless a moment later.
  const byDeadline = deadline - startupSeconds >= waitSeconds / 4 ? replicasForWork(backlog * perJob, deadline, startupSeconds, ready, starting) : 0;
  return Math.max(byHorizon, byDeadline);
}

/** The SLO policy's proposal for one round. */
export function proposeSlo(p: SloPolicy, label: string, ctx: PolicyContext): Proposal {
  const series = ctx.counters[METRIC.arrivalsTotal] ?? [];
  const serviceReading = ctx.view.values.get(METRIC.serviceTimeMean);
  const backlog = ctx.view.values.get(METRIC.queueDepth);
  const missing: string[] = [];
  if (!ctx.view.values.has(METRIC.arrivalsTotal)) missing.push(METRIC.arrivalsTotal);
  if (serviceReading === undefined) missing.push(METRIC.serviceTimeMean);
  if (backlog === undefined) missing.push(METRIC.queueDepth);
  if (serviceReading === undefined && backlog !== undefined && backlog > 0 && ctx.current === 0 && missing.length === 1) {
    // At zero replicas no job completes, so no service time is ever measured: start one.
    return {
      replicas: 1,
      missing,
      reasons: [{ code: 'SloBacklog', policy: label, replicas: 1, message: `${label}: ${backlog} jobs wait and no replica runs; starting one (no service time is known yet).` }],
    };
  }
  if (missing.length > 0 || serviceReading === undefined || backlog === undefined) return { missing, reasons: [] };
  const prevState = readState(ctx.state);
  const service = smoothService(
    prevState.service,
    serviceReading,
    ctx.view.values.get(METRIC.serviceTimeScv) ?? 1,
    ctx.view.values.get(METRIC.completionsTotal),
  );
  const scv = service.scv;
  const c = Math.max(1, p.concurrency);
  // Warm-up: the first jobs to complete are the short ones, so early readings run low. Little's
  // law on the slots (jobs in flight / completions per second) counts the long jobs still running.
  // It is read over the slow window and smoothed like the mean: a reading off a few completions
  // swings widely, and taking the larger of two noisy figures every round ratchets the count up.
  const completed = ctx.view.values.get(METRIC.completionsTotal);
  // Jobs in service cannot outnumber the slots of a steady fleet: the queue counts as active also
  // the jobs a worker has claimed ahead of starting them (docs/queue.md), which are waiting.
  const active = ctx.view.values.get(METRIC.inFlight);
  const inFlight = active === undefined ? undefined : Math.min(active, Math.max(ctx.current, ctx.ready) * c);
  const completions = ctx.counters[METRIC.completionsTotal] ?? [];
  const windowMs = (p.slowWindowSeconds ?? SLO_DEFAULTS.slowWindowSeconds) * 1000;
  const throughput = rateOver(completions, ctx.now - windowMs, ctx.now);
  // Only over a window with a steady fleet: new replicas fill slots before completions catch up.
  const steady = !ctx.events.some((e) => e.at > ctx.now - windowMs - (p.startupSeconds ?? 0) * 1000);
  const littleReading = steady && inFlight !== undefined && throughput !== undefined && throughput > 0 ? inFlight / throughput : undefined;
  // A reading off a handful of completions is mostly noise (one job done in the window reads as
  // the window's length times the jobs in flight): its weight grows with the completions behind it.
  const behind = throughput === undefined ? 0 : (throughput * windowMs) / 1000;
  const reliability = Math.min(1, behind / SLO_DEFAULTS.littleFullWeightCompletions);
  const prevLittle = prevState.little;
  const little =
    littleReading === undefined
      ? prevLittle
      : prevLittle === undefined || ctx.now < prevLittle.at
        ? { mean: Math.max(service.mean, littleReading * reliability), at: ctx.now }
        : { mean: prevLittle.mean + (1 - Math.exp(-(ctx.now - prevLittle.at) / LITTLE_SMOOTHING_MS)) * reliability * (littleReading - prevLittle.mean), at: ctx.now };
  const warm = completed !== undefined && completed < SLO_DEFAULTS.warmupCompletions;
  const estimated = warm && little !== undefined ? Math.max(service.mean, little.mean) : service.mean;
  // With jobs already waiting past W every slot is busy, so jobs in flight over completions per
  // second is the service time itself (Little's law on a saturated fleet), with no warm-up bias:
  // the count is sized on it when it reads higher than the estimate, which early readings and
  // heavy tails leave too low, and which is then what makes jobs late.
  const saturated = steady && backlog > 0 && (ctx.view.values.get(METRIC.oldestAge) ?? 0) > p.waitSeconds && inFlight !== undefined && throughput !== undefined;
  const busyLittle = saturated && throughput * (windowMs / 1000) >= SLO_DEFAULTS.saturatedMinCompletions ? inFlight / throughput : 0;
  const serviceTime = Math.max(estimated, busyLittle);
  // Flap damping (as in BGP route-flap damping): each scale-up soon after a scale-down adds one
  // to a penalty that halves every half-life; scale-in then remembers bursts and holds longer.
  const lastEvent = ctx.events[ctx.events.length - 1];
  let damping = prevState.damping
    ? {
        ...prevState.damping,
        level: prevState.damping.level * 0.5 ** ((ctx.now - prevState.damping.at) / 1000 / SLO_DEFAULTS.dampingHalfLifeSeconds),
        at: ctx.now,
      }
    : { level: 0, at: ctx.now, counted: -1 };
  const recentDown =
    lastEvent !== undefined && lastEvent.to < lastEvent.from && ctx.now - lastEvent.at < reversalOf(p) * 1000 && lastEvent.at > damping.counted;
  const damp = 1 + damping.level;
  const rate = estimateRate(series, ctx.now, p, SLO_DEFAULTS.burstMemorySeconds * damp);
  // One counter point gives no rate yet: plan for the backlog alone, and do not scale in.
  const warming = rate === undefined;
  const lambda = rate?.planned ?? 0;
  const age = ctx.view.values.get(METRIC.oldestAge) ?? 0;
  const startup = p.startupSeconds ?? 0;
  const allowedLate = 1 - p.attainment;
  const cap = Math.max(1, ctx.maxReplicas, ctx.current);
  // The wait target is a steady-state figure: size it on the sustained rate. A step up reaches
  // the count first through the backlog part, which plans with the fast rate.
  // A loose budget is capacity: the queue absorbs any swing of the rate shorter than what is left
  // of W after a start-up (a burst's jobs wait, and start in time, while the backlog part brings
  // replicas for what lasts longer). So the steady-state figure reads the rate averaged over that
  // span when it is longer than the slow window.
  const absorbMs = Math.max(0, p.waitSeconds - startup) * 1000;
  const averaged = absorbMs > (p.slowWindowSeconds ?? SLO_DEFAULTS.slowWindowSeconds) * 1000 ? rateOver(series, ctx.now - absorbMs, ctx.now) : undefined;
  // Recurring bursts are the same: the envelope of the recent ones (what a fleet must serve for
  // each of them to drain within its share of W) is the steady rate, not the on-phase rate.
  // A swing to a level already seen within the reversal window is noise the queue absorbs (a
  // count that followed it would be scaled in and out again): the envelope of the recent bursts.
  const steadyRate = Math.min(rate?.sustained ?? 0, averaged ?? Infinity, rate?.absorbed ?? Infinity, rate?.recurring && !rate.rising && !rate.jumped ? rate.burstDown : Infinity);
  const model = { lambda: steadyRate, serviceTime, scv, wait: p.waitSeconds };
  const forWait = replicasForWait(model, allowedLate * SLO_DEFAULTS.upShare, c, cap);
  const drainInput = {
    backlog,
    lambda,
    serviceTime,
    concurrency: c,
    waitSeconds: p.waitSeconds,
    startupSeconds: startup,
    ready: Math.min(ctx.ready, ctx.current),
    starting: startingReplicas(ctx.events, ctx.now, Math.max(0, ctx.current - ctx.ready), startup),
    oldestAge: age,
  };
  const forDrain = replicasToDrain(drainInput);
  const needed = Math.max(forWait, forDrain);
  const learned = little === undefined ? {} : { little };
  const facts = `arrivals ${round(rate?.fast ?? 0)}/s fast, ${round(rate?.slow ?? 0)}/s slow, planned ${round(lambda)}/s; service ${round(serviceTime)} s (scv ${round(scv)}); backlog ${round(backlog)}, oldest ${round(age)} s`;
  const state = prevState;

  if (needed >= ctx.current || rate === undefined) {
    const replicas = Math.max(needed, warming ? ctx.current : 0);
    if (replicas > ctx.current && recentDown && lastEvent) damping = { level: damping.level + 1, at: ctx.now, counted: lastEvent.at };
    const code = forDrain > forWait ? 'SloBacklog' : 'SloWaitTarget';
    const message =
      code === 'SloBacklog'
        ? `${label}: ${replicas} replicas drain the backlog within the horizon (${facts}).`
        : `${label}: ${replicas} replicas keep the predicted share of waits over ${p.waitSeconds} s under ${round(allowedLate * SLO_DEFAULTS.upShare)} (${facts}).`;
    return { replicas, missing: warming ? [METRIC.arrivalsTotal] : [], reasons: [{ code, policy: label, replicas, message }], state: { service, damping, ...learned } };
  }

  // Scale-in: the smaller count must serve the cautious rate (two deviations of noise above the
  // plan) at a stricter share (the margin), and keep qualifying for the hold time.
  const margin = p.margin ?? SLO_DEFAULTS.margin;
  const cautious = { ...model, lambda: rate.cautious };
  // Scale to zero when a cold start fits in W: nothing waits, nothing is needed, under one job is
  // expected at the cautious rate during a start-up (a cold start then delays one job, by less
  // than W), and under one at the planned rate within the reversal window (the next job's cold
  // start is then not a flap, more often than not). The core goes to zero only with an activation.
  const coldStartFits =
    needed === 0 && backlog === 0 && startup < p.waitSeconds && rate.cautious * startup < 1 && rate.planned * reversalOf(p) < 1;
  const smaller = Math.max(
    needed,
    replicasToDrain({ ...drainInput, lambda: rate.cautious }),
    coldStartFits ? 0 : replicasForWait(cautious, allowedLate * margin, c, cap),
    // burst memory: a repeat of the bursts remembered must still drain within its share of W
    Math.min(cap, Math.ceil((rate.burstDown * serviceTime) / c - 1e-9)),
  );
  // every scale-in hold keeps the current count and says which guard held it
  const holdAt = (message: string, belowSince?: number) => ({
    replicas: ctx.current,
    missing: [],
    reasons: [{ code: 'SloHysteresis' as const, policy: label, replicas: ctx.current, message: `${label}: ${message} (${facts}).` }],
    state: { ...(belowSince === undefined ? {} : { belowSince }), service, damping, ...learned },
  });
  if (smaller >= ctx.current) {
    return holdAt(
      `${needed} replicas would meet the target, but not with the scale-in margin or for the bursts of the last ${round(SLO_DEFAULTS.burstMemorySeconds * damp)} s (envelope ${round(rate.burstDown)}/s), so it keeps ${ctx.current}`,
    );
  }
  const lastUp = ctx.events.reduce((t, e) => (e.to > e.from && e.at > t ? e.at : t), -Infinity);
  const sinceUp = (ctx.now - lastUp) / 1000;
  if (sinceUp < reversalOf(p)) {
    return holdAt(
      `${smaller} replicas would meet the target with margin, but the last scale-up was ${Math.round(sinceUp)} s ago (under ${reversalOf(p)} s), so it keeps ${ctx.current}`,
    );
  }
  const since = state.belowSince ?? ctx.now;
  const hold = (p.scaleInHoldSeconds ?? SLO_DEFAULTS.scaleInHoldSeconds) * 1000 * damp;
  if (ctx.now - since < hold) {
    return holdAt(`${smaller} replicas would meet the target with margin; holding ${ctx.current} until that has held for ${hold / 1000} s`, since);
  }
  return {
    replicas: smaller,
    missing: [],
    reasons: [
      {
        code: 'SloWaitTarget',
        policy: label,
        replicas: smaller,
        message: `${label}: ${smaller} replicas keep the predicted share of waits over ${p.waitSeconds} s under ${round(allowedLate * margin)} (${facts}).`,
      },
    ],
    state: { belowSince: since, service, damping, ...learned },
  };
}

/**
 * The ServicePolicy Tidescale recommends for a queue-worker tier with an SLO: the SLO policy
 * alone, with unlimited scale-up (the policy already plans for start-up delay, and the HPA's
 * doubling per 15 s is what makes spikes miss) and the HPA's scale-down stabilization.
 */
export function sloServicePolicy(input: {
  waitSeconds: number;
  attainment: number;
  concurrency: number;
  startupSeconds?: number;
  min: number;
  max: number;
}): ServicePolicy {
  return {
    min: input.min,
    max: input.max,
    policies: [
      {
        kind: 'slo',
        waitSeconds: input.waitSeconds,
        attainment: input.attainment,
        concurrency: input.concurrency,
        ...(input.startupSeconds === undefined ? {} : { startupSeconds: input.startupSeconds }),
      },
    ],
    behavior: {
      // An empty list sets no rate limit.
      scaleUp: { stabilizationWindowSeconds: 0, policies: [] },
      scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
    },
  };
}
