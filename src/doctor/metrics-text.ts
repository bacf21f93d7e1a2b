/**
 * Reads what `tide doctor` needs from an API replica's Prometheus text (`GET /metrics`): the
 * `http_request_duration_seconds` histogram summed over every route but the health check and
 * scrapes, and the 5xx count. Two readings a window apart give that window's p95 and errors.
 */

/** Cumulative counters of one reading. */
export interface RequestCounters {
  /** le (seconds, Infinity for +Inf) -> cumulative count, summed over routes and statuses. */
  buckets: Map<number, number>;
  count: number;
  errors: number;
}

/** Routes that are not user traffic: the balancer's health checks, scrapes, doctor's own reads. */
const IGNORED_ROUTES = new Set(['/health', '/metrics', '/db/pool/stats', '/v1/queues']);

const LINE = /^http_request_duration_seconds_(bucket|count)\{([^}]*)\}\s+([0-9.eE+-]+|NaN|\+Inf)\s*$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export function parseRequestCounters(text: string): RequestCounters {
  const out: RequestCounters = { buckets: new Map(), count: 0, errors: 0 };
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(LABEL)) labels[l[1]!] = l[2]!;
    if (IGNORED_ROUTES.has(labels.route ?? '')) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === 'bucket') {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      out.buckets.set(le, (out.buckets.get(le) ?? 0) + value);
    } else {
      out.count += value;
      if (Number(labels.status_code) >= 500) out.errors += value;
    }
  }
  return out;
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
