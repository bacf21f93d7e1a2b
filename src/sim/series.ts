/** Measures over a run: flaps among the count's changes, wait percentiles, and the series a report charts. */
import type { RunSeries } from './observation.js';

/** A reversal of the desired count this soon after a change the other way is a flap. */
const FLAP_SECONDS = 300;

/** Whether a change in direction `dir` (+1, -1), `secondsSince` after one in `prevDir`, is a flap. */
export function isFlap(prevDir: number, dir: number, secondsSince: number): boolean {
  return prevDir === -dir && secondsSince < FLAP_SECONDS;
}

/** The flaps in a list of count changes (`at` in seconds, in order), counted as a run counts them. */
export function countFlaps(changes: ReadonlyArray<{ at: number; from: number; to: number }>): number {
  let flaps = 0;
  let lastDir = 0;
  let lastAt = Number.NEGATIVE_INFINITY;
  for (const c of changes) {
    const dir = Math.sign(c.to - c.from);
    if (dir === 0) continue;
    if (isFlap(lastDir, dir, c.at - lastAt)) flaps++;
    lastDir = dir;
    lastAt = c.at;
  }
  return flaps;
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

export function buildSeries(arrivals: Float64Array, waits: Float64Array, end: number, bucket: number, paidT: number[], paidV: number[]): RunSeries {
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
  return { bucketSeconds: bucket, arrivals: arr, replicas: reps, waitP95: p95, depth: queueDepthSeries(arrivals, waits, buckets, bucket) };
}

/**
 * The time-averaged queue depth per bucket: a job arriving at a and starting after a wait w
 * is waiting over [a, a + w] (one that never started, until the end). `waits` in seconds,
 * parallel to `arrivals`.
 */
export function queueDepthSeries(arrivals: ArrayLike<number>, waits: ArrayLike<number>, buckets: number, bucket: number): Float64Array {
  const depth = new Float64Array(buckets);
  const end = buckets * bucket;
  for (let j = 0; j < arrivals.length; j++) {
    let a = arrivals[j]!;
    const z = Math.min(end, a + waits[j]!);
    while (a < z) {
      const b = Math.floor(a / bucket);
      const stop = Math.min(z, (b + 1) * bucket);
      depth[b]! += (stop - a) / bucket;
      a = stop;
    }
  }
  return depth;
}
