/**
 * The end-of-run summary: counts, rate, the latency distribution from the merged histogram,
 * status codes, errors and dropped iterations; its text form and its JSON form.
 */
import type { Histogram, LatencyStats } from './histogram.js';
import type { ThresholdResult } from './thresholds.js';

export interface Summary {
  model: 'open' | 'closed';
  url: string;
  threads: number;
  /** Requests started. */
  sent: number;
  /** Requests finished (a response or an error). */
  requests: number;
  /** Responses 200..399. */
  ok: number;
  /** Responses >= 400 plus errors (k6's http_req_failed). */
  failed: number;
  /** Open-model arrivals not sent: too late, or over the in-flight cap. */
  dropped: number;
  /** Run length, s. */
  durationSeconds: number;
  /** Requests finished per second. */
  rate: number;
  /** ms; open model: from the intended send time (what thresholds check). */
  latency: LatencyStats;
  /** ms, from each request's socket write: without the generator's lag or the wait for a free socket (how wrk and autocannon time; wrk2's "uncorrected"). */
  sendLatency: LatencyStats;
  statusCodes: Record<string, number>;
  errors: Record<string, number>;
  /** The merged histogram, for any other percentile. */
  histogram: Histogram;
}

/** The summary as one JSON-ready object (no histogram), with the threshold results. */
export function summaryJson(s: Summary, thresholds: readonly ThresholdResult[] = []): Record<string, unknown> {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    model: s.model,
    url: s.url,
    threads: s.threads,
    requests: s.requests,
    sent: s.sent,
    ok: s.ok,
    failed: s.failed,
    failed_rate: s.requests === 0 ? 0 : round(s.failed / s.requests),
    dropped_iterations: s.dropped,
    duration_s: round(s.durationSeconds),
    rate: round(s.rate),
    latency_ms: Object.fromEntries(Object.entries(s.latency).filter(([k]) => k !== 'count').map(([k, v]) => [k, round(v)])),
    latency_from_send_ms: Object.fromEntries(Object.entries(s.sendLatency).filter(([k]) => k !== 'count').map(([k, v]) => [k, round(v)])),
    status_codes: s.statusCodes,
    errors: s.errors,
    thresholds: thresholds.map((t) => ({ threshold: t.threshold, actual: round(t.actual), ok: t.ok })),
  };
}

const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)}s` : `${x.toFixed(2)}ms`);

/** The summary as text lines for a terminal. */
export function formatSummary(s: Summary, thresholds: readonly ThresholdResult[] = []): string {
  const l = s.latency;
  const lines = [
    `${s.model} model, ${s.threads} thread${s.threads === 1 ? '' : 's'}, ${s.url}`,
    `requests      ${s.requests} in ${s.durationSeconds.toFixed(1)}s, ${s.rate.toFixed(1)}/s; ok ${s.ok}, failed ${s.failed} (${((s.requests ? s.failed / s.requests : 0) * 100).toFixed(2)}%)`,
    `latency       min ${ms(l.min)}  avg ${ms(l.avg)}  p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p95 ${ms(l.p95)}  p99 ${ms(l.p99)}  max ${ms(l.max)}${s.model === 'open' ? '  (from the intended send time)' : ''}`,
    ...(s.model === 'open' ? [`  from write   p50 ${ms(s.sendLatency.p50)}  p99 ${ms(s.sendLatency.p99)}  (the same requests timed from their socket write, as wrk and autocannon time)`] : []),
    `status codes  ${Object.entries(s.statusCodes).map(([c, n]) => `${c}: ${n}`).join(', ') || 'none'}`,
  ];
  if (Object.keys(s.errors).length > 0) lines.push(`errors        ${Object.entries(s.errors).map(([c, n]) => `${c}: ${n}`).join(', ')}`);
  if (s.model === 'open') lines.push(`dropped       ${s.dropped} iterations`);
  for (const t of thresholds) lines.push(`threshold     ${t.ok ? 'ok  ' : 'FAIL'} ${t.threshold} (actual ${Math.round(t.actual * 1000) / 1000})`);
  return lines.join('\n');
}
