/**
 * `prometheus`: one instant PromQL query (`/api/v1/query`) as one sample. The answer must be
 * a scalar or a vector of at most one series (aggregate with sum() or max() in the query);
 * an empty vector is no sample plus a note (the metric is missing, which the core treats as
 * missing, never as 0); an error answer is TIDE_SOURCE_QUERY with Prometheus's own words.
 *
 * Design: stateless apart from its HTTP agent, made on the first read and destroyed by close().
 */
import { z } from 'zod';

import { closedError, commonFields, finiteNumber, guardedRead, labelOf, sourceError } from './guard.js';
import { bearerHeader, httpClient } from './http.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

export const prometheusConfig = z.strictObject({
  ...commonFields,
  /** The server's base URL, for example http://prometheus:9090 (credentials may be inline). */
  url: z.string().regex(/^https?:\/\//, 'an http:// or https:// URL'),
  query: z.string().min(1),
  metric: z.string().min(1),
  /** The name of an environment variable holding a bearer token to send. */
  bearer_token_env: z.string().min(1).optional(),
});
export type PrometheusConfig = z.infer<typeof prometheusConfig>;

/** The value of a `[timestamp, "value"]` pair, or undefined when it is not one. */
function pairValue(pair: unknown): unknown {
  return Array.isArray(pair) && pair.length === 2 ? pair[1] : undefined;
}

export function createPrometheusSource(config: PrometheusConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('prometheus', config);
  const http = httpClient(config.timeout_ms);
  const endpoint = `${config.url.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(config.query)}`;
  let closed = false;
  let notes: string[] = [];

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      notes = [];
      return guardedRead(label, signal, config.timeout_ms, async (readSignal) => {
        const headers = bearerHeader(label, config.bearer_token_env, ctx);
        const answer = await http.get(endpoint, { headers, signal: readSignal });
        const body = (answer.isJson ? answer.json : undefined) as { status?: unknown; error?: unknown; errorType?: unknown; data?: unknown } | undefined;
        if (body?.status === 'error') {
          throw sourceError(label, 'TIDE_SOURCE_QUERY', `Prometheus says ${String(body.errorType ?? 'error')}: ${String(body.error ?? '')}`);
        }
        if (answer.status < 200 || answer.status >= 300) {
          throw sourceError(label, 'TIDE_SOURCE_FAILED', `Prometheus answered ${answer.status}: ${answer.text.slice(0, 200)}`);
        }
        if (body?.status !== 'success' || typeof body.data !== 'object' || body.data === null) {
          throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', 'the answer is not a Prometheus query result');
        }
        const data = body.data as { resultType?: unknown; result?: unknown };
        let raw: unknown;
        if (data.resultType === 'scalar') {
          raw = pairValue(data.result);
        } else if (data.resultType === 'vector' && Array.isArray(data.result)) {
          if (data.result.length === 0) {
            notes.push(`the query returned no series, so ${config.metric} is missing`);
            return [];
          }
          if (data.result.length > 1) {
            throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `the query returned ${data.result.length} series; aggregate them to one (sum, max, avg)`);
          }
          raw = pairValue((data.result[0] as { value?: unknown }).value);
        } else {
          throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `the query returned a ${String(data.resultType)}; it must be a scalar or an instant vector`);
        }
        // Prometheus writes NaN and infinities as strings; a missing value, not a bad answer.
        if (raw === 'NaN' || raw === '+Inf' || raw === '-Inf') {
          notes.push(`the query returned ${raw}, so ${config.metric} is missing`);
          return [];
        }
        return [{ metric: config.metric, value: finiteNumber(label, config.metric, raw), at: ctx.now() }];
      });
    },
    async close() {
      closed = true;
      await http.close();
    },
    notes: () => notes,
  };
}

export const prometheusSource: SourceDefinition<PrometheusConfig> = {
  kind: 'prometheus',
  summary: 'One instant PromQL query (a scalar or one series) via /api/v1/query.',
  schema: prometheusConfig,
  create: createPrometheusSource,
};
