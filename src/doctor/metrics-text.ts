/**
 * Reads what `tide doctor` needs from an API replica's Prometheus text (`GET /metrics`): the
 * `http_request_duration_seconds` histogram summed over every route but the health check and
 * scrapes, and the 5xx count. Two readings a window apart give that window's p95 and errors.
 * The exposition itself is parsed by `src/metrics/prometheus-text.ts`, shared with the dashboard.
 */
import { histogramBuckets, parsePrometheusText, sumSeries } from '../metrics/prometheus-text.js';

/** Cumulative counters of one reading. */
export interface RequestCounters {
  /** le (seconds, Infinity for +Inf) -> cumulative count, summed over routes and statuses. */
  buckets: Map<number, number>;
  count: number;
  errors: number;
}

/** Routes that are not user traffic: the balancer's health checks, scrapes, doctor's own reads. */
const IGNORED_ROUTES = new Set(['/health', '/metrics', '/db/pool/stats', '/v1/queues']);

const HISTOGRAM = 'http_request_duration_seconds';

function isUserTraffic(labels: Record<string, string>): boolean {
  return !IGNORED_ROUTES.has(labels.route ?? '');
}

/** One reading, parsed by the shared exposition parser; series with a NaN or infinite value count as absent. */
export function parseRequestCounters(text: string): RequestCounters {
  const samples = parsePrometheusText(text).samples.filter((s) => Number.isFinite(s.value));
  const buckets = new Map(histogramBuckets(samples, HISTOGRAM, isUserTraffic).map((b) => [b.le, b.count]));
  const count = sumSeries(samples, `${HISTOGRAM}_count`, isUserTraffic);
  const errors = sumSeries(samples, `${HISTOGRAM}_count`, (labels) => isUserTraffic(labels) && Number(labels.status_code) >= 500);
  return { buckets, count, errors };
}

/** The window between two readings; a restarted replica (counters went down) counts from zero. */
export function windowCounters(before: RequestCounters | undefined, after: RequestCounters): RequestCounters {
  if (!before || after.count < before.count) return after;
  const buckets = new Map<number, number>();
  for (const [le, n] of after.buckets) buckets.set(le, n - (before.buckets.get(le) ?? 0));
  return { buckets, count: after.count - before.count, errors: after.errors - before.errors };
}

/** The upper bound of the bucket holding quantile q (as histogram_quantile would bound it); undefined with no requests. */
export function quantileUpperBound(c: RequestCounters, q: number): number | undefined {
  if (c.count <= 0) return undefined;
  const rank = q * c.count;
  const les = [...c.buckets.keys()].sort((a, b) => a - b);
  let finite: number | undefined;
  for (const le of les) {
    if (Number.isFinite(le)) finite = le;
    if ((c.buckets.get(le) ?? 0) >= rank) return Number.isFinite(le) ? le : finite;
  }
  return finite;
}
