/**
 * A latency histogram in the HDR style: log-linear buckets (a power-of-two range split into
 * 2^SUB linear sub-buckets), so every recorded value keeps about 3 significant digits
 * (relative error under 1/2^SUB = 0.1%) from 1 microsecond to about 1 hour, in a fixed
 * array of counts. Fixed layout means two histograms merge by adding arrays, which is how
 * worker threads send theirs to the main thread (a transferable Float64Array).
 *
 * Values are recorded in microseconds (integers); the API takes and returns milliseconds.
 */

const SUB_BITS = 10; // values below 1024 us are exact; above, 512 buckets per power of two (< 0.1% error)
const SUB = 1 << SUB_BITS;
const MAX_US = 2 ** 32 - 1; // ~71 minutes; larger values clamp to the top bucket
const SIZE = (32 - SUB_BITS + 2) * (SUB / 2);

function indexOf(value: number): number {
  const us = Math.min(MAX_US, value);
  if (us < SUB) return us; // the first range is exact
  const exp = 31 - Math.clz32(us); // floor(log2(us)), exact on integers
  const shift = exp - SUB_BITS + 1; // width of a sub-bucket in this range is 2^shift
  const sub = Math.floor(us / 2 ** shift) - SUB / 2;
  return (shift + 1) * (SUB / 2) + sub;
}

/** The value (us) a bucket stands for: the middle of its range. */
function valueOf(index: number): number {
  if (index < SUB) return index;
  const shift = Math.floor(index / (SUB / 2)) - 1;
  const sub = index % (SUB / 2);
  const width = 2 ** shift;
  return (sub + SUB / 2) * width + (width - 1) / 2;
}

/** The statistics a summary reports, in milliseconds. */
export interface LatencyStats {
  count: number;
  min: number;
  avg: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export class Histogram {
  /** Bucket counts (Float64 so one histogram can hold more than 2^32 values and be transferred). */
  readonly counts: Float64Array;
  count = 0;
  private sumUs = 0;
  private minUs = Number.POSITIVE_INFINITY;
  private maxUs = 0;

  constructor(counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(SIZE);
  }

  /** Records one value in milliseconds (negative values count as 0). */
  record(ms: number): void {
    const us = Math.min(MAX_US, Math.max(0, Math.round(ms * 1000)));
    this.counts[indexOf(us)]! += 1;
    this.count++;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** Adds another histogram's values into this one. */
  merge(other: Histogram | HistogramSnapshot): void {
    const counts = other.counts;
    for (let i = 0; i < SIZE; i++) {
      const c = counts[i]!;
      if (c !== 0) this.counts[i]! += c;
    }
    const o = other instanceof Histogram ? other.snapshot() : other;
    this.count += o.count;
    this.sumUs += o.sumUs;
    if (o.count > 0) {
      this.minUs = Math.min(this.minUs, o.minUs);
      this.maxUs = Math.max(this.maxUs, o.maxUs);
    }
  }

  /** The value (ms) at or below which `p` percent of values lie; 0 when empty. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      // clamp to the exact extremes, which the histogram keeps apart from the buckets
      if (seen >= rank) return Math.min(this.maxUs, Math.max(this.minUs, valueOf(i))) / 1000;
    }
    return this.maxUs / 1000;
  }

  stats(): LatencyStats {
    const empty = this.count === 0;
    return {
      count: this.count,
      min: empty ? 0 : this.minUs / 1000,
      avg: empty ? 0 : this.sumUs / this.count / 1000,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max: this.maxUs / 1000,
    };
  }

  /** A plain copy for postMessage (the counts array can be transferred). */
  snapshot(): HistogramSnapshot {
    return { counts: this.counts, count: this.count, sumUs: this.sumUs, minUs: this.minUs, maxUs: this.maxUs };
  }

  static from(s: HistogramSnapshot): Histogram {
    const h = new Histogram();
    h.merge(s);
    return h;
  }
}

export interface HistogramSnapshot {
  counts: Float64Array;
  count: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
}
