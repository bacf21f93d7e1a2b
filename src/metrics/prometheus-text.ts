/**
 * Prometheus text exposition (format 0.0.4) and histogram arithmetic: the one place Tidescale
 * reads a replica's `/metrics` and turns histogram buckets into a quantile. Pure: no I/O, so
 * the dashboard, the controller and `tide doctor` can share it and test it without sockets.
 *
 * The quantile follows PromQL's `histogram_quantile`: find the bucket holding the rank, then
 * interpolate linearly inside it (the first bucket's lower bound is 0 when its bound is
 * positive); a rank in the +Inf bucket answers the highest finite bound. Over a window, take
 * the bucket *increases* (`bucketIncrease`) first, as `rate()` does, with a counter that went
 * down read as a restart from zero.
 */

/** One line of the exposition: a series and its value. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One cumulative bucket: how many observations were <= `le`. */
export interface Bucket {
  le: number;
  count: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/**
 * Parses Prometheus text exposition into samples. Comments, `# HELP`/`# TYPE` lines and blank
 * lines are skipped; a line that does not parse is skipped too (a scrape should not fail on
 * one odd line), and counted in `skipped`.
 */
export function parsePrometheusText(text: string): { samples: PromSample[]; skipped: number } {
  const samples: PromSample[] = [];
  let skipped = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parsed = parseLine(line);
    if (parsed) samples.push(parsed);
    else skipped++;
  }
  return { samples, skipped };
}

function parseLine(line: string): PromSample | undefined {
  const name = NAME.exec(line)?.[0];
  if (!name) return undefined;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const key = NAME.exec(line.slice(i))?.[0];
      if (!key || line[i + key.length] !== '=' || line[i + key.length + 1] !== '"') return undefined;
      i += key.length + 2;
      let value = '';
      // label values escape only \\, \" and \n
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined;
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : (next ?? '');
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      labels[key] = value;
    }
  }
  // value, then an optional timestamp we do not need
  const [valueText] = line.slice(i).trim().split(/\s+/);
  if (valueText === undefined || valueText === '') return undefined;
  const value = parseValue(valueText);
  return value === undefined ? undefined : { name, labels, value };
}

function parseValue(text: string): number | undefined {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  const n = Number(text);
  return Number.isNaN(n) ? undefined : n;
}

/** Keeps series whose labels pass `filter` (all, without one). */
export type LabelFilter = (labels: Record<string, string>) => boolean;

/**
 * The cumulative buckets of histogram `name` (without the `_bucket` suffix), summed over every
 * series that passes `filter` (so over methods, routes and status codes), sorted by bound.
 */
export function histogramBuckets(samples: readonly PromSample[], name: string, filter: LabelFilter = () => true): Bucket[] {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !filter(s.labels)) continue;
    const le = parseValue(s.labels.le ?? '');
    if (le === undefined || Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** The sum of every series named `name` that passes `filter` (0 when there is none). */
export function sumSeries(samples: readonly PromSample[], name: string, filter: LabelFilter = () => true): number {
  let total = 0;
  for (const s of samples) if (s.name === name && filter(s.labels) && Number.isFinite(s.value)) total += s.value;
  return total;
}

/**
 * How much each cumulative bucket grew from `before` to `after`. A bucket that shrank means
 * the process restarted (its counters began again at 0), so the whole of `after` is the
 * increase, as PromQL's `increase()` reads a counter reset. Bounds missing from `before`
 * count from 0.
 */
export function bucketIncrease(before: readonly Bucket[], after: readonly Bucket[]): Bucket[] {
  const prior = new Map(before.map((b) => [b.le, b.count]));
  const reset = after.some((b) => b.count < (prior.get(b.le) ?? 0));
  return after.map((b) => ({ le: b.le, count: reset ? b.count : b.count - (prior.get(b.le) ?? 0) }));
}

/** Adds bucket lists bound by bound (the buckets of several replicas). */
export function addBuckets(lists: ReadonlyArray<readonly Bucket[]>): Bucket[] {
  const byLe = new Map<number, number>();
  for (const list of lists) for (const b of list) byLe.set(b.le, (byLe.get(b.le) ?? 0) + b.count);
  return [...byLe.entries()].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/**
 * The `q` quantile (0..1) of cumulative buckets, as PromQL's `histogram_quantile`; null when
 * there is no observation (or no +Inf bucket to count them by).
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`a quantile is between 0 and 1, not ${q}`);
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const last = sorted[sorted.length - 1];
  if (!last || last.le !== Number.POSITIVE_INFINITY || last.count <= 0) return null;
  const total = last.count;
  const rank = q * total;
  let i = sorted.findIndex((b) => b.count >= rank);
  if (i < 0) i = sorted.length - 1;
  const bucket = sorted[i]!;
  if (bucket.le === Number.POSITIVE_INFINITY) {
    // no upper bound to interpolate to: the highest finite bound, as Prometheus answers
    return sorted.length >= 2 ? sorted[sorted.length - 2]!.le : null;
  }
  const lower = i === 0 ? (bucket.le > 0 ? 0 : bucket.le) : sorted[i - 1]!.le;
  const below = i === 0 ? 0 : sorted[i - 1]!.count;
  const inBucket = bucket.count - below;
  if (inBucket <= 0) return bucket.le;
  return lower + (bucket.le - lower) * ((rank - below) / inBucket);
}
