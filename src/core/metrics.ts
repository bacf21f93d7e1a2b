/**
 * Turning one round's samples into values the policies read, and counters into rates.
 *
 * State: counter series live in `History.counters` (metric -> time-ordered points). A point is
 * appended only when its time moves forward; a value that goes down is a counter reset and
 * starts the series again; points older than `COUNTER_KEEP_MS` are dropped. Rates are read off
 * the series by linear interpolation, so the result does not depend on how often decide() runs.
 */
import { METRIC, type Sample } from './types.js';

/** Metrics treated as cumulative counters (the core derives rates from them). */
export const COUNTERS: ReadonlySet<string> = new Set([METRIC.arrivalsTotal, METRIC.completionsTotal]);

/** How much counter history is kept: enough for the slow window plus the trend. */
export const COUNTER_KEEP_MS = 15 * 60_000;

/**
 * The window a service-time mean is read over, live (the builtin source) and simulated alike,
 * so the policy sees the same figure in both: the jobs completed in the last minute.
 */
export const SERVICE_WINDOW_SECONDS = 60;
const COUNTER_MAX_POINTS = 1_000;

export interface MetricView {
  /** Latest valid value of each metric. */
  values: Map<string, number>;
  /** Metrics whose latest sample was NaN, infinite or negative (so treated as missing). */
  invalid: Map<string, number>;
}

/** The latest sample of each metric wins; an invalid latest value makes the metric missing. */
export function readSamples(samples: readonly Sample[]): MetricView {
  const latest = new Map<string, Sample>();
  for (const s of samples) {
    const prev = latest.get(s.metric);
    if (!prev || !(s.at < prev.at)) latest.set(s.metric, s);
  }
  const values = new Map<string, number>();
  const invalid = new Map<string, number>();
  for (const [metric, s] of latest) {
    if (Number.isFinite(s.value) && s.value >= 0 && Number.isFinite(s.at)) values.set(metric, s.value);
    else invalid.set(metric, s.value);
  }
  return { values, invalid };
}

export type Series = Array<{ at: number; value: number }>;

/** Appends this round's counter values to the history's series (a new object; the input is not mutated). */
export function recordCounters(
  counters: Readonly<Record<string, Series>>,
  view: MetricView,
  now: number,
): Record<string, Series> {
  const out: Record<string, Series> = {};
  for (const [metric, series] of Object.entries(counters)) {
    out[metric] = series.filter((p) => p.at > now - COUNTER_KEEP_MS && p.at <= now);
  }
  for (const metric of COUNTERS) {
    const value = view.values.get(metric);
    if (value === undefined) continue;
    let series = out[metric] ?? [];
    const last = series[series.length - 1];
    if (last && now <= last.at) continue;
    if (last && value < last.value) series = [];
    series = [...series, { at: now, value }];
    if (series.length > COUNTER_MAX_POINTS) series = series.slice(series.length - COUNTER_MAX_POINTS);
    out[metric] = series;
  }
  return out;
}

/** The counter's value at time `t` by linear interpolation; clamps to the ends of the series. */
export function valueAt(series: Series, t: number): number | undefined {
  const first = series[0];
  if (!first) return undefined;
  if (t <= first.at) return first.value;
  for (let i = series.length - 1; i >= 0; i--) {
    const p = series[i]!;
    if (p.at <= t) {
      const next = series[i + 1];
      if (!next) return p.value;
      return p.value + ((next.value - p.value) * (t - p.at)) / (next.at - p.at);
    }
  }
  return first.value;
}

/**
 * Mean rate (per second) over [from, to], clipped to the span the series covers. Undefined when
 * the series has fewer than two points or covers no time in the range.
 */
export function rateOver(series: Series, from: number, to: number): number | undefined {
  const first = series[0];
  const last = series[series.length - 1];
  if (!first || !last || series.length < 2) return undefined;
  const a = Math.max(from, first.at);
  const b = Math.min(to, last.at);
  if (b - a <= 0) return undefined;
  return ((valueAt(series, b)! - valueAt(series, a)!) * 1000) / (b - a);
}

/** The smallest gap between the last few points, ms: the sampling period the series shows. */
export function samplingPeriod(series: Series): number | undefined {
  if (series.length < 2) return undefined;
  const last = series[series.length - 1]!;
  const prev = series[series.length - 2]!;
  return last.at - prev.at;
}

/** Metrics summed when several sources give them (the builtin source per queue). */
const SUMMED = new Set<string>([METRIC.queueDepth, METRIC.arrivalsTotal, METRIC.completionsTotal, METRIC.inFlight]);
const MAXED = new Set<string>([METRIC.oldestAge, METRIC.latencyP95]);

/**
 * Samples from several sources as one set the core reads: a metric given by more than one
 * source is summed (depth, counters, in flight), maxed (oldest age, p95) or averaged (the rest).
 */
export function combineSamples(perSource: Sample[][]): Sample[] {
  const groups = new Map<string, Sample[]>();
  for (const samples of perSource) {
    // the latest sample per metric of each source, so one source never counts twice
    const latest = new Map<string, Sample>();
    for (const s of samples) {
      const prev = latest.get(s.metric);
      if (!prev || s.at >= prev.at) latest.set(s.metric, s);
    }
    for (const s of latest.values()) groups.set(s.metric, [...(groups.get(s.metric) ?? []), s]);
  }
  const out: Sample[] = [];
  for (const [metric, list] of groups) {
    if (list.length === 1) {
      out.push(list[0]!);
      continue;
    }
    const at = Math.max(...list.map((s) => s.at));
    const values = list.map((s) => s.value);
    const value = SUMMED.has(metric)
      ? values.reduce((a, b) => a + b, 0)
      : MAXED.has(metric)
        ? Math.max(...values)
        : values.reduce((a, b) => a + b, 0) / values.length;
    out.push({ metric, value, at });
  }
  return out;
}
