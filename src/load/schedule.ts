/**
 * When the open model sends: the intended send times (ms after the start) of a constant
 * rate, a ramp of rates (k6's ramping-arrival-rate: rates interpolated linearly between
 * stage targets) or a replayed trace (`t,count` rows, compressed in time). Pure generators,
 * so the schedule is exact and testable without a clock; a thread takes every Nth arrival
 * (`split`), which divides any schedule's rate by N and keeps the total count exact.
 */
import type { Stage } from './stages.js';

/** A serializable description of an open-model schedule (it crosses to worker threads). */
export type ScheduleSpec =
  | { kind: 'constant'; rate: number; durationMs: number }
  | { kind: 'ramping'; startRate: number; stages: Stage[] }
  | { kind: 'trace'; t: number[]; count: number[]; compression: number };

/** Arrivals at `rate`/s from 0 for `durationMs`: k / rate for every k with k / rate < duration. */
function* constant(rate: number, durationMs: number): Generator<number> {
  if (!(rate > 0)) return;
  const gap = 1000 / rate;
  for (let k = 0; k * gap < durationMs; k++) yield k * gap;
}

/**
 * Arrival k (from 0) comes when the cumulative count N(t) (the integral of the rate) reaches
 * k. Within a stage the rate is linear, so N is quadratic in t and solved in closed form.
 */
function* ramping(startRate: number, stages: readonly Stage[]): Generator<number> {
  let before = 0; // N at the start of the stage
  let t0 = 0;
  let k = 0;
  let from = startRate;
  for (const s of stages) {
    const d = s.durationMs;
    const a = (s.target - from) / (2 * d * 1000); // arrivals per ms^2 / 2
    const b = from / 1000; // arrivals per ms at the stage start
    const total = b * d + a * d * d;
    while (k < before + total) {
      const c = k - before;
      const t = Math.abs(a) < 1e-15 ? c / b : (-b + Math.sqrt(Math.max(0, b * b + 4 * a * c))) / (2 * a);
      yield t0 + Math.min(d, Math.max(0, t));
      k++;
    }
    before += total;
    t0 += d;
    from = s.target;
  }
}

/**
 * Row i's `count` arrivals spread evenly over [t_i, t_i+1) (the last row lasts as long as
 * the one before it, or 1 s), all times divided by `compression`. Fractional counts carry
 * over to the next row, so the total is the sum of the counts, rounded down.
 */
function* trace(t: readonly number[], count: readonly number[], compression: number): Generator<number> {
  let carry = 0;
  for (let i = 0; i < t.length; i++) {
    const start = t[i]!;
    const end = i + 1 < t.length ? t[i + 1]! : start + (i > 0 ? start - t[i - 1]! : 1);
    const exact = count[i]! + carry;
    const n = Math.floor(exact + 1e-9);
    carry = exact - n;
    const len = ((end - start) * 1000) / compression;
    for (let j = 0; j < n; j++) yield (start * 1000) / compression + (j * len) / n;
  }
}

/** The intended send times of a schedule, in increasing order. */
export function arrivals(spec: ScheduleSpec): Generator<number> {
  switch (spec.kind) {
    case 'constant':
      return constant(spec.rate, spec.durationMs);
    case 'ramping':
      return ramping(spec.startRate, spec.stages);
    case 'trace':
      return trace(spec.t, spec.count, spec.compression);
  }
}

/** Every `count`th arrival starting at `index`: one thread's share of a schedule. */
export function* split(times: Iterable<number>, index: number, count: number): Generator<number> {
  let i = 0;
  for (const t of times) {
    if (i % count === index) yield t;
    i++;
  }
}

/** How long the schedule lasts, ms. */
export function scheduleDuration(spec: ScheduleSpec): number {
  switch (spec.kind) {
    case 'constant':
      return spec.durationMs;
    case 'ramping':
      return spec.stages.reduce((s, x) => s + x.durationMs, 0);
    case 'trace': {
      const n = spec.t.length;
      const last = spec.t[n - 1]! + (n > 1 ? spec.t[n - 1]! - spec.t[n - 2]! : 1);
      return (last * 1000) / spec.compression;
    }
  }
}

/** The highest request rate (per s) the schedule asks for, to size threads. */
export function peakRate(spec: ScheduleSpec): number {
  switch (spec.kind) {
    case 'constant':
      return spec.rate;
    case 'ramping':
      return Math.max(spec.startRate, ...spec.stages.map((s) => s.target));
    case 'trace': {
      let peak = 0;
      for (let i = 0; i < spec.t.length; i++) {
        const len = i + 1 < spec.t.length ? spec.t[i + 1]! - spec.t[i]! : i > 0 ? spec.t[i]! - spec.t[i - 1]! : 1;
        peak = Math.max(peak, (spec.count[i]! * spec.compression) / len);
      }
      return peak;
    }
  }
}
