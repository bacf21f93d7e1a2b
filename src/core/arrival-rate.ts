/**
 * The SLO policy's arrival-rate estimates from the counter: sub-window rates, a fast estimate
 * that wins on a step up, a median and a clipped least-squares trend, the burst envelope that
 * scale-in must still serve, and the swings the queue absorbs (docs/slo-policy.md).
 */
import { rateOver, samplingPeriod, type Series } from './metrics.js';
import { SLO_DEFAULTS, reversalOf } from './slo-defaults.js';
import type { SloPolicy } from './types.js';

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
  /**
   * True while fewer than three sub-windows are read: a level cannot yet be told from a lump (the
   * step and jump tests need three too), so the rate may size what arrives during a start-up but
   * not the steady state (20,000 jobs dumped in the first five seconds read as 4,000 jobs/s).
   */
  short: boolean;
  /** When the planned rate is a level already reached within the reversal window: the envelope of that window's bursts (`absorbedRate`), which the wait target sizes for instead. */
  absorbed?: number;
}

/**
 * Least squares of ys on xs: the means, the sums of squares and products about them, and the sum
 * of squared residuals around the line through the means with a given slope (the fitted one,
 * Sxy / Sxx, or another the caller settles on).
 */
export function leastSquares(xs: readonly number[], ys: readonly number[]): { mx: number; my: number; sxx: number; sxy: number; residual(slope: number): number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  const residual = (slope: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (ys[i]! - my - slope * (xs[i]! - mx)) ** 2;
    return sum;
  };
  return { mx, my, sxx, sxy, residual };
}

/** Sub-windows read before a level can be told from a lump (`RateEstimate.short` until then). */
const LEVEL_SUB_WINDOWS = 3;

/**
 * Standard errors each half of a window must climb by for the window to read as a ramp: a step
 * or a flash crowd inside it climbs in one half only (half a window reads a slope coarsely).
 */
const HALF_DEVIATIONS = 2;

/**
 * A least-squares line's slope and its standard error, from the scatter around the line but
 * never under `floorVar` per point (Infinity with fewer than three points).
 */
export function slopeOf(xs: readonly number[], ys: readonly number[], floorVar = 0): { b: number; se: number; mx: number; my: number; residual(slope: number): number } {
  const fit = leastSquares(xs, ys);
  const n = xs.length;
  const b = fit.sxx > 0 ? fit.sxy / fit.sxx : 0;
  const se = n > 2 && fit.sxx > 0 ? Math.sqrt(Math.max(fit.residual(b) / (n - 2), floorVar) / fit.sxx) : Infinity;
  return { b, se, mx: fit.mx, my: fit.my, residual: fit.residual };
}

/** Whether each half of the points (split at the middle) climbs by `HALF_DEVIATIONS` of its own slope's standard errors: a ramp, not a step. */
export function climbsInBothHalves(xs: readonly number[], ys: readonly number[], floorVar = 0): boolean {
  const mid = xs.length >> 1;
  const climbs = (from: number, to: number): boolean => {
    const half = slopeOf(xs.slice(from, to), ys.slice(from, to), floorVar);
    return half.b > HALF_DEVIATIONS * half.se;
  };
  return climbs(0, mid) && climbs(mid, xs.length);
}

/** The median (NaN of none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
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
  return climbsAcrossMiddle([...rates].reverse()) >= SLO_DEFAULTS.burstRecurrences;
}

/** How many times values (oldest first) climb from at or below the middle of their range to above it. */
export function climbsAcrossMiddle(values: readonly number[]): number {
  const mid = (Math.min(...values) + Math.max(...values)) / 2;
  let rises = 0;
  for (let i = 1; i < values.length; i++) if (values[i - 1]! <= mid && values[i]! > mid) rises++;
  return rises;
}

/**
 * ln k! = ln Gamma(k + 1) for real k >= 0, continuous in k (counts read off counters need not be
 * whole): Stirling's series from 1 on (within 1e-3 at 1, far closer above), and below 1 the
 * recurrence k! = (k + 1)! / (k + 1).
 */
function logFactorial(k: number): number {
  if (k < 1) return logFactorial(k + 1) - Math.log(k + 1);
  return k * Math.log(k) - k + 0.5 * Math.log(2 * Math.PI * k) + 1 / (12 * k) - 1 / (360 * k ** 3);
}

/**
 * ln P(X >= k) for X ~ Poisson(mu), k > mu: the term at k times the geometric bound on the rest
 * (each next term is at most mu / (k + 1) of the one before). 0 (certain) when k <= mu.
 */
export function poissonTailLog(k: number, mu: number): number {
  if (k <= mu) return 0;
  const term = -mu + k * Math.log(mu) - logFactorial(k);
  return term - Math.log(1 - mu / (k + 1));
}

/** ln of the standard normal upper tail at z > 0 (its asymptotic series; within 1% from z = 3). */
export function normalTailLog(z: number): number {
  return -(z * z) / 2 - Math.log(z * Math.sqrt(2 * Math.PI)) + Math.log(1 - 1 / (z * z) + 3 / z ** 4);
}

/** ln of how rare a jump's count must be: the normal tail at `jumpDeviations` (1e-9 at six). */
const JUMP_TAIL_LOG = normalTailLog(SLO_DEFAULTS.jumpDeviations);

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
function burstEnvelope(series: Series, now: number, subMs: number, memorySeconds: number, wait: number, recurringMemorySeconds: number, recursLonger = false): { rate: number; recurring: boolean } | undefined {
  const all = subWindowRates(series, now, subMs, Math.max(memorySeconds, recurringMemorySeconds));
  const sub = subMs / 1000;
  const recur = recursLonger || recurring(all, sub);
  const rates = recur ? all : all.slice(0, Math.floor((memorySeconds * 1000 + 1) / subMs));
  if (rates.length < 2) return undefined;
  return { rate: envelopeOf(clipLumps(rates), sub, wait), recurring: recur };
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
 *   start-up delay, unless the rates scatter like on/off traffic, or W holds two start-ups and
 *   the line climbs in one half of the window only (a step: followed, not projected).
 * - The burst envelope over the burst memory (`burstRate`), which scale-in must still serve.
 */
export function estimateRate(series: Series, now: number, p: SloPolicy, memorySeconds: number = SLO_DEFAULTS.burstMemorySeconds, recursLonger = false, dispersion = 1): RateEstimate | undefined {
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
  // Three sub-windows tell a level from a lump: the step, drop and jump tests need them.
  const known = rates.length >= LEVEL_SUB_WINDOWS;
  const rising = known && fast > slow + 3 * dev;
  // A drop: both newest sub-windows clearly below the median. Scale-up decisions then follow
  // the newer rate (the median lags by half the window); scale-in still waits for the median.
  const falling = known && Math.max(r0, r1) < slow - 3 * dev;
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
    // The scatter around the line is at least one job's worth per sub-window: on sparse traffic
    // a window of empty sub-windows and a job in each of the last two has almost no residual, and
    // its "trend" would be projected over the start-up as if it were certain. Only when a
    // start-up fits in W: otherwise the first jobs after quiet are all the warning there is.
    const floorVar = startup < p.waitSeconds ? 1 / subSeconds ** 2 : 0;
    const line = slopeOf(xs, clipped, floorVar);
    const { mx, my } = line;
    const fitted = n >= 4 ? line.b : 0;
    const residual = line.residual(fitted);
    const slopeDev = line.se;
    // Only a trend that stands clear of the noise moves the plan: a noisy slope projected over
    // the start-up delay would swing the count up and down with every burst.
    // On/off traffic (sub-window rates scattered far beyond Poisson noise) has no line to trust:
    // a change in the duty cycle looks like a trend, and the line's end sits at the on rate.
    const onOff = n > 2 && residual / (n - 2) > SLO_DEFAULTS.onOffDispersion * dev * dev;
    // A step climbs in the newest sub-windows only: a ramp climbs in both halves of the window.
    // When W holds two start-ups, a step is followed rather than projected (if it was a ramp
    // after all, a second scale-up still lands in time); otherwise any clear slope is projected.
    const clear = !onOff && fitted > SLO_DEFAULTS.trendDeviations * slopeDev && fast > slow;
    const ramp = clear && (2 * startup > p.waitSeconds || (n >= 8 && climbsInBothHalves(xs, clipped, floorVar)));
    slope = ramp ? fitted : 0;
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
      // When a start-up takes W, a level read too low is paid in late jobs before a correction can
      // land: the long window may then raise the level, never lower it (on a sawtooth's climb the
      // ten-minute mean trails the two-minute one within the noise, and the climb was missed).
      if (Math.abs(my - long) <= 3 * meanDev && (startup < p.waitSeconds || long >= my)) {
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
  // "Far outside its noise" by the Poisson tail itself: at a job or two per sub-window the normal
  // approximation's six deviations are a count of seven, which a sawtooth's peak reaches several
  // times an hour; the Poisson tail asks for twelve.
  const jumped =
    !rising &&
    known &&
    r0 > SLO_DEFAULTS.jumpFactor * slow &&
    poissonTailLog(r0 * subSeconds, Math.max(slow * subSeconds, 1)) < JUMP_TAIL_LOG;
  const planned = rising ? Math.max(fast, sustained) : jumped ? Math.max(r0, sustained) : sustained;
  // The plan's own Poisson noise: a fitted line's end has about twice the deviation of the mean.
  // The count behind it covers the whole window (the long one when the level was read there), so
  // its deviation is at least one job over the window (not over one sub-window: that floor would
  // keep idle replicas for long jobs). And an error in the estimate lasts until the next windows
  // show it: the queue absorbs what the error piles up over W, so only the error of a rate
  // averaged over the window plus W matters. Arrivals that swing beyond Poisson noise from minute
  // to minute (`dispersion`, the caller's measure) widen it by the square root of that factor.
  const w = Math.max(0, p.waitSeconds);
  const spanSeconds = levelSpan + w;
  const planDev = 2 * Math.sqrt((dispersion * Math.max(planned, 1 / spanSeconds)) / spanSeconds);
  const envelope = burstEnvelope(series, now, sub, memorySeconds, w * SLO_DEFAULTS.burstWaitShare, reversalOf(p), recursLonger);
  const burstDown = envelope?.rate ?? 0;
  // When bursts recur, a burst's onset (a step up, a jump) is the next burst, not a new level:
  // the envelope sizes for it, and scale-in is not blocked by every burst that comes along.
  const cautious = Math.max(envelope?.recurring ? sustained : planned, floor) + SLO_DEFAULTS.noiseDeviations * planDev;
  // Only when a start-up fits in W: otherwise a swing the count did not follow cannot be corrected
  // in time (replicas asked for once the backlog shows come too late).
  const absorbed = startup < w ? absorbedRate(series, now, sub, planned, w * SLO_DEFAULTS.absorbWaitShare, reversalOf(p)) : undefined;
  return { fast, slow, sustained, planned, cautious, rising, jumped, burstDown, recurring: envelope?.recurring ?? false, short: !known, ...(absorbed === undefined ? {} : { absorbed }) };
}
