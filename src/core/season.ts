/**
 * Learned periodicity: the arrivals counted per minute, the period they repeat with (if any),
 * and the rate that period says is coming. A reactive policy scales after the fact; when a
 * start-up does not fit inside the SLO wait, the only way to keep it through a recurring burst is
 * to have the replicas ready before it, and history is what says when that is.
 *
 * State (`Season`, JSON-friendly, kept in the SLO policy's state and, by the live controller, in
 * PostgreSQL across restarts): `start` (ms, the start of the first closed bucket), `counts` (jobs
 * per closed minute, `null` where the minute was not counted whole: the controller started or
 * came back within it, was down, or a counter reset), `open` (the jobs counted so far in the
 * current minute) and `openWhole` (counted since its start), `last` (the counter reading and
 * when), and `detected` (the last detection: the period's length in buckets and its
 * correlation, how many buckets were closed then, and whether the look before found the same
 * period: only a confirmed period forecasts; re-run every `SEASON_DETECT_EVERY` closed minutes). Memory is bounded: at most `SEASON_BUCKETS` minutes (two days and an hour) are kept,
 * the oldest dropped first. A clock that steps back leaves the minutes it covers unknown; only
 * one that goes back before the first bucket starts afresh.
 *
 * Detection: the correlation between the first differences of the counts and the same
 * differences one period earlier, for periods from `SEASON_MIN_PERIOD` minutes to half of the
 * history (two whole cycles seen), each read at a resolution that gives it 12 to 24 points
 * (minutes for short cycles, hours for a day: a day's changes, minute by minute, are buried in
 * Poisson noise). Differences, not levels: a ramp or a staircase correlates with itself at every
 * lag, while only a pattern that repeats makes its changes repeat. The best correlation must
 * reach `SEASON_MIN_CORRELATION`; its multiples correlate too (and, read coarser, with less
 * noise), so the smallest believable period it is a whole multiple of wins. Two more tests keep
 * noise from passing for a pattern: the counts must swing well beyond Poisson noise (variance over
 * `SEASON_MIN_DISPERSION` times the mean: a few jobs a minute learn no period), and the period
 * must have forecast the history better than the count a start-up earlier did (a staircase's
 * steps recur at regular intervals, but the level one period ago is the worse guess there).
 *
 * Pure: no clock reads, no I/O; the same readings give the same state.
 */
import { climbsAcrossMiddle, climbsInBothHalves, median, slopeOf } from './arrival-rate.js';

/** Bucket length, ms. */
export const SEASON_BUCKET_MS = 60_000;
/** Buckets kept: two days and an hour, so a daily pattern's changes are seen twice over. */
export const SEASON_BUCKETS = 2 * 1440 + 60;
/** Shortest period looked for, buckets (shorter recurring bursts are the burst envelope's). */
export const SEASON_MIN_PERIOD = 5;
/** Resolutions the period is looked for at, minutes (divisors of an hour, so hours and days are whole). */
export const SEASON_RESOLUTIONS = [1, 2, 3, 5, 10, 15, 30, 60] as const;
/** Points per cycle looked for at each resolution (and twice that, less one, at most but at the coarsest). */
export const SEASON_POINTS_PER_CYCLE = 12;
/** Correlation a period needs to be believed. */
export const SEASON_MIN_CORRELATION = 0.6;
/**
 * The counts' variance must be this many times their mean (a Poisson count's variance) for a
 * period to be looked for: below, what swings is the noise of a few jobs a minute.
 */
export const SEASON_MIN_DISPERSION = 4;
/** Detection re-runs after this many closed buckets. */
export const SEASON_DETECT_EVERY = 5;
/** Cycles the forecast averages, newest first. */
export const SEASON_CYCLES = 3;

export interface SeasonPeriod {
  /** Length in buckets. */
  buckets: number;
  /** Correlation of the changes one period apart. */
  r: number;
}

export interface Season {
  start: number;
  counts: Array<number | null>;
  open: number;
  /** Whether the open bucket has been counted since its start (else it closes unknown). */
  openWhole: boolean;
  last: { at: number; total: number };
  /** The closed-bucket count at the last detection, and what it found. */
  detected?: { at: number; period: SeasonPeriod | null; confirmed?: boolean };
}

/** Bucket arrays already checked (the ones this module made): a round need not check them again. */
const checked = new WeakSet<object>();

/** Reads a season back from state (persisted JSON included); anything malformed starts afresh. */
export function readSeason(value: unknown): Season | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  const last = v.last as Record<string, unknown> | undefined;
  if (typeof v.start !== 'number' || !Array.isArray(v.counts) || typeof v.open !== 'number' || !last || typeof last.at !== 'number' || typeof last.total !== 'number') return undefined;
  const counts = checked.has(v.counts) ? (v.counts as Array<number | null>) : v.counts.map((x) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null)).slice(-SEASON_BUCKETS);
  checked.add(counts);
  const dropped = v.counts.length - counts.length;
  const season: Season = { start: v.start + dropped * SEASON_BUCKET_MS, counts, open: Math.max(0, v.open), openWhole: v.openWhole === true, last: { at: last.at, total: last.total } };
  const d = v.detected as Record<string, unknown> | undefined;
  if (d && typeof d.at === 'number') {
    const p = d.period as Record<string, unknown> | null;
    season.detected = {
      at: d.at - dropped,
      period: p && typeof p.buckets === 'number' && typeof p.r === 'number' ? { buckets: p.buckets, r: p.r } : null,
      ...(d.confirmed === true ? { confirmed: true } : {}),
    };
  }
  return season;
}

/**
 * Counts a counter reading into the buckets: the jobs since the last reading are spread evenly
 * over the time between them. A minute not counted whole (the first one, or one after a gap
 * longer than a bucket, a counter that went down, or a clock that stepped back) closes unknown
 * rather than low: a restart must not read as a quiet minute.
 */
export function recordArrivals(prev: Season | undefined, now: number, total: number): Season {
  const bucketOf = (t: number) => Math.floor(t / SEASON_BUCKET_MS) * SEASON_BUCKET_MS;
  if (!prev || now < prev.start) return { start: bucketOf(now), counts: [], open: 0, openWhole: now === bucketOf(now), last: { at: now, total } };
  if (now < prev.last.at) return { ...prev, open: 0, openWhole: false, last: { at: now, total } };
  const openStart = prev.start + prev.counts.length * SEASON_BUCKET_MS;
  const known = total >= prev.last.total && now - prev.last.at <= SEASON_BUCKET_MS;
  const jobs = known ? total - prev.last.total : 0;
  if (now < openStart + SEASON_BUCKET_MS) {
    return { ...prev, open: prev.open + jobs, openWhole: prev.openWhole && known, last: { at: now, total } };
  }
  // One or more buckets close: the share of the jobs that fell in each, by time.
  const counts = prev.counts.slice();
  const span = Math.max(1, now - prev.last.at);
  const share = (from: number, to: number) => (jobs * Math.max(0, Math.min(to, now) - Math.max(from, prev.last.at))) / span;
  let bucket = openStart;
  counts.push(known && prev.openWhole ? prev.open + share(bucket, bucket + SEASON_BUCKET_MS) : null);
  for (bucket += SEASON_BUCKET_MS; bucket + SEASON_BUCKET_MS <= now; bucket += SEASON_BUCKET_MS) counts.push(known ? share(bucket, bucket + SEASON_BUCKET_MS) : null);
  const drop = Math.max(0, counts.length - SEASON_BUCKETS);
  const kept = drop > 0 ? counts.slice(drop) : counts;
  checked.add(kept);
  return {
    start: prev.start + drop * SEASON_BUCKET_MS,
    counts: kept,
    open: known ? share(bucket, now) : 0,
    openWhole: known || now === bucket,
    last: { at: now, total },
    ...(prev.detected ? { detected: { ...prev.detected, at: prev.detected.at - drop } } : {}),
  };
}

/** Whether counts swing beyond Poisson noise: their variance over `SEASON_MIN_DISPERSION` times their mean. */
function overdispersed(counts: readonly number[]): boolean {
  const mean = counts.reduce((a, x) => a + x, 0) / Math.max(1, counts.length);
  const variance = counts.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, counts.length - 1);
  return variance > SEASON_MIN_DISPERSION * mean;
}

/** Correlation of a[i] with a[i - lag] over the pairs where both are known; undefined on too few. */
function lagCorrelation(a: ReadonlyArray<number | null>, lag: number): number | undefined {
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = lag; i < a.length; i++) {
    const x = a[i];
    const y = a[i - lag];
    if (x === null || x === undefined || y === null || y === undefined) continue;
    n++;
    sx += x;
    sy += y;
    sxx += x * x;
    syy += y * y;
    sxy += x * y;
  }
  if (n < lag) return undefined;
  const vx = sxx - (sx * sx) / n;
  const vy = syy - (sy * sy) / n;
  if (vx <= 0 || vy <= 0) return undefined;
  return (sxy - (sx * sy) / n) / Math.sqrt(vx * vy);
}

/** Mean of the same bucket in the last `SEASON_CYCLES` known cycles before `b`, or undefined. */
function cycleMean(counts: ReadonlyArray<number | null>, b: number, period: number): number | undefined {
  let sum = 0;
  let n = 0;
  for (let i = b - period; n < SEASON_CYCLES && i >= 0; i -= period) {
    const x = i < counts.length ? counts[i] : null;
    if (x === null || x === undefined) continue;
    sum += x;
    n++;
  }
  return n > 0 ? sum / n : undefined;
}

/**
 * Whether the period forecast the history better than the present does: over every bucket both
 * can forecast, the squared error of the cycle mean against that of the count `lead` buckets
 * before (what a reactive policy, a start-up late, acts on). A staircase's steps recur at regular
 * intervals too, but the level one period ago is a worse guess there than the level now.
 */
function beatsPersistence(counts: ReadonlyArray<number | null>, period: number, lead: number): boolean {
  let seasonal = 0;
  let persistence = 0;
  for (let b = period; b < counts.length; b++) {
    const x = counts[b];
    const before = b >= lead ? counts[b - lead] : null;
    const mean = cycleMean(counts, b, period);
    if (x === null || x === undefined || before === null || before === undefined || mean === undefined) continue;
    seasonal += (x - mean) ** 2;
    persistence += (x - before) ** 2;
  }
  return seasonal < persistence;
}

/**
 * The period the closed buckets repeat with, or null (see the module note); `lead` is the
 * buckets a forecast must look ahead (a start-up), against which the period must beat the present.
 */
export function detectPeriod(counts: ReadonlyArray<number | null>, lead = 1): SeasonPeriod | null {
  if (!overdispersed(counts.filter((x): x is number => x !== null))) return null;
  const found: SeasonPeriod[] = [];
  for (const [i, res] of SEASON_RESOLUTIONS.entries()) {
    // at this resolution, periods of 12 to 24 points (the finest from the shortest period, the
    // coarsest up to half the history): enough points per cycle to see its shape, and a minute's
    // Poisson noise averaged over `res` minutes, so a slow pattern's changes stand out
    const series = coarsen(counts, res);
    const diffs = series.map((x, j) => (j === 0 || x === null || series[j - 1] === null ? null : x - series[j - 1]!));
    const from = i === 0 ? SEASON_MIN_PERIOD : SEASON_POINTS_PER_CYCLE;
    const to = i === SEASON_RESOLUTIONS.length - 1 ? Math.floor(series.length / 2) : 2 * SEASON_POINTS_PER_CYCLE - 1;
    for (let lag = from; lag <= Math.min(to, Math.floor(series.length / 2)); lag++) {
      const r = lagCorrelation(diffs, lag);
      if (r !== undefined) found.push({ buckets: lag * res, r });
    }
  }
  const best = found.reduce((m, x) => Math.max(m, x.r), -Infinity);
  if (!(best >= SEASON_MIN_CORRELATION)) return null;
  // A multiple of the period correlates too, and at a coarser resolution with less noise: the
  // smallest believable period that the best one is (within a tenth) a whole multiple of.
  const top = found.find((x) => x.r === best)!;
  const period = found
    .filter((x) => x.r >= SEASON_MIN_CORRELATION && Math.abs(top.buckets / x.buckets - Math.round(top.buckets / x.buckets)) <= 0.1)
    .reduce((m, x) => (x.buckets < m.buckets ? x : m), top);
  return beatsPersistence(counts, period.buckets, Math.max(1, lead)) ? period : null;
}

/** Sums of `res` consecutive buckets (null where any of them is unknown). */
function coarsen(counts: ReadonlyArray<number | null>, res: number): Array<number | null> {
  if (res === 1) return counts.slice();
  const out: Array<number | null> = [];
  for (let j = 0; j + res <= counts.length; j += res) {
    let sum: number | null = 0;
    for (let k = j; k < j + res && sum !== null; k++) sum = counts[k] === null ? null : sum + counts[k]!;
    out.push(sum);
  }
  return out;
}

/** The season with its period detected afresh when enough buckets closed since the last time. */
export function withPeriod(season: Season, lead: number): Season {
  const closed = season.counts.length;
  if (season.detected && closed - season.detected.at < SEASON_DETECT_EVERY) return season;
  const period = detectPeriod(season.counts, lead);
  // believed once two detections in a row agree (within a tenth): a period that changes from one
  // look to the next is the noise of a short history, and pre-scaling on it is scaling at random
  const before = season.detected?.period;
  const confirmed = period !== null && before !== null && before !== undefined && Math.abs(period.buckets - before.buckets) <= 0.1 * before.buckets;
  return { ...season, detected: { at: closed, period, ...(confirmed ? { confirmed } : {}) } };
}

/**
 * The highest arrival rate (jobs/s) the learned period forecasts over [from, to] (ms): each
 * bucket there is the mean of the same bucket in the last `SEASON_CYCLES` cycles that are known.
 * Undefined without a period, or where no cycle is known.
 */
export function seasonalPeak(season: Season, from: number, to: number): number | undefined {
  const period = season.detected?.period;
  if (!period || !season.detected?.confirmed) return undefined;
  let peak: number | undefined;
  const first = Math.floor((from - season.start) / SEASON_BUCKET_MS);
  const last = Math.floor((to - season.start) / SEASON_BUCKET_MS);
  for (let b = first; b <= last; b++) {
    const mean = cycleMean(season.counts, b, period.buckets);
    if (mean !== undefined) peak = Math.max(peak ?? 0, mean / (SEASON_BUCKET_MS / 1000));
  }
  return peak;
}

/** Closed minutes the recurrence test reads, newest. */
export const SEASON_RECUR_MINUTES = 30;

/**
 * Whether bursts recur on the scale of minutes: over the last `SEASON_RECUR_MINUTES` known
 * minutes the counts swing beyond Poisson noise (variance over `SEASON_MIN_DISPERSION` times
 * the mean) and climb across the middle of their range at least `times` times. The sub-window
 * test (arrival-rate.ts `recurring`) sees only the reversal window, so it cannot see bursts that
 * come every few minutes, nor resolve them at a few jobs per sub-window; this one can, and needs
 * no period: irregular bursts recur too.
 */
export function recursByMinute(season: Season | undefined, times: number): boolean {
  if (!season) return false;
  const recent = season.counts.slice(-SEASON_RECUR_MINUTES).filter((x): x is number => x !== null);
  if (recent.length < 2 * times) return false;
  return overdispersed(recent) && climbsAcrossMiddle(recent) >= times;
}

/** The median of a squared standard normal: a median of squares over it estimates the variance. */
const MEDIAN_CHI2_1 = 0.4549;

/**
 * How far the arrivals swing beyond Poisson noise from one minute to the next: the Allan variance
 * of the per-minute counts (half the squared difference of neighbouring known minutes, which a
 * steady trend such as a day's ramp barely moves; read off the median square, so that one step or
 * one flash crowd does not count as a swing for half an hour) over their Poisson variance (the
 * mean count), over the last `SEASON_RECUR_MINUTES` minutes. 1 (Poisson) unless it is over
 * `SEASON_MIN_DISPERSION`, as for the recurrence test (a median of a few dozen squares scatters
 * widely around 1 on Poisson counts), and until ten pairs of minutes are known.
 */
export function minuteDispersion(season: Season | undefined): number {
  if (!season) return 1;
  const recent = season.counts.slice(-SEASON_RECUR_MINUTES);
  const squares: number[] = [];
  let sum = 0;
  let known = 0;
  for (let i = 0; i < recent.length; i++) {
    const c = recent[i];
    if (c === null || c === undefined) continue;
    sum += c;
    known++;
    const before = i > 0 ? recent[i - 1] : null;
    if (before !== null && before !== undefined) squares.push((c - before) ** 2);
  }
  if (squares.length < 10 || sum <= 0) return 1;
  const dispersion = median(squares) / MEDIAN_CHI2_1 / 2 / (sum / known);
  return dispersion > SEASON_MIN_DISPERSION ? dispersion : 1;
}

/** Closed minutes a trend is read over. */
const TREND_MINUTES = 10;

/**
 * A rise that lasts: the least-squares line through the last `TREND_MINUTES` closed minutes (all
 * known), when its slope stands more than `deviations` standard errors above zero (errors from
 * the scatter around the line) and the counts climb in both halves of those minutes
 * (`climbsInBothHalves`: a step or a flash crowd inside them climbs in one half only). The line's rate at `at` (jobs/s) and its
 * slope (jobs/s a second); undefined otherwise. A two-minute window's mean lags a ramp by a
 * minute, and ten-second sub-windows seldom read its slope clear of their noise.
 */
export function minuteTrend(season: Season | undefined, at: number, deviations: number): { rate: number; slope: number } | undefined {
  if (!season || season.counts.length < TREND_MINUTES) return undefined;
  const ys = season.counts.slice(-TREND_MINUTES);
  if (ys.some((y) => y === null)) return undefined;
  // the minutes at x = 0, 1, ...
  const xs = ys.map((_, i) => i);
  const all = slopeOf(xs, ys as number[]);
  if (!(all.b > deviations * all.se)) return undefined;
  if (!climbsInBothHalves(xs, ys as number[])) return undefined;
  const bucketSeconds = SEASON_BUCKET_MS / 1000;
  // minutes past the first one's middle, where its count is centred
  const x = (at - (season.start + (season.counts.length - TREND_MINUTES) * SEASON_BUCKET_MS)) / SEASON_BUCKET_MS - 0.5;
  return { rate: Math.max(0, all.my + all.b * (x - all.mx)) / bucketSeconds, slope: all.b / bucketSeconds / bucketSeconds };
}
