/**
 * `http-json`: a URL that answers numbers as JSON. Three shapes:
 * - with `paths` configured, `{ metric: "$.json.path" }`: one sample per path;
 * - HireFire's `[{ "name": "worker", "quantity": 12 }]`: one sample per entry, named `name`;
 * - a flat object `{ "queue_depth": 12, ... }`: one sample per numeric top-level field.
 * A configured path that is absent gives no sample and a note (the metric is missing); a
 * value that is there but not a number is TIDE_SOURCE_BAD_VALUE.
 *
 * Design: stateless apart from its HTTP agent, made on the first read and destroyed by close().
 */
import { z } from 'zod';

import type { Sample } from '../core/types.js';
import { closedError, commonFields, finiteNumber, guardedRead, labelOf, sourceError } from './guard.js';
import { bearerHeader, httpClient } from './http.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

/**
 * The steps of a JSON path: `$.a.b[0]['c d']` -> ['a', 'b', 0, 'c d']. The leading `$` is
 * optional. Undefined when the path is not in this small dialect.
 */
export function parseJsonPath(path: string): Array<string | number> | undefined {
  const rest = path.startsWith('$') ? path.slice(1) : `.${path}`;
  const steps: Array<string | number> = [];
  const step = /\.([^.[\]'"]+)|\[(\d+)\]|\[(?:'([^']*)'|"([^"]*)")\]/y;
  let at = 0;
  while (at < rest.length) {
    step.lastIndex = at;
    const m = step.exec(rest);
    if (!m) return undefined;
    steps.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (m[3] ?? m[4] ?? '')));
    at = step.lastIndex;
  }
  return steps.length > 0 ? steps : undefined;
}

const jsonPath = z.string().refine((p) => parseJsonPath(p) !== undefined, 'a JSON path such as $.queues.default.depth or $.items[0].count');

export const httpJsonConfig = z.strictObject({
  ...commonFields,
  url: z.string().regex(/^https?:\/\//, 'an http:// or https:// URL'),
  /** metric name -> JSON path of its number in the answer. */
  paths: z.record(z.string().min(1), jsonPath).optional(),
  /** The name of an environment variable holding a bearer token to send. */
  bearer_token_env: z.string().min(1).optional(),
});
export type HttpJsonConfig = z.infer<typeof httpJsonConfig>;

function follow(value: unknown, steps: ReadonlyArray<string | number>): { found: boolean; value: unknown } {
  let here = value;
  for (const step of steps) {
    if (typeof step === 'number' ? !Array.isArray(here) || step >= here.length : typeof here !== 'object' || here === null || Array.isArray(here) || !Object.hasOwn(here, step)) {
      return { found: false, value: undefined };
    }
    here = (here as Record<string | number, unknown>)[step];
  }
  return { found: true, value: here };
}

export function createHttpJsonSource(config: HttpJsonConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('http-json', config);
  const http = httpClient(config.timeout_ms);
  const paths = Object.entries(config.paths ?? {}).map(([metric, path]) => ({ metric, path, steps: parseJsonPath(path)! }));
  let closed = false;
  let notes: string[] = [];

  function samplesOf(body: unknown, at: number): Sample[] {
    if (paths.length > 0) {
      const samples: Sample[] = [];
      for (const { metric, path, steps } of paths) {
        const hit = follow(body, steps);
        if (!hit.found || hit.value === null) {
          notes.push(`${path} is not in the answer, so ${metric} is missing`);
          continue;
        }
        samples.push({ metric, value: finiteNumber(label, `${metric} (${path})`, hit.value), at });
      }
      return samples;
    }
    if (Array.isArray(body)) {
      // HireFire: [{ name, quantity }]
      return body.map((entry, i) => {
        const e = entry as { name?: unknown; quantity?: unknown } | null;
        if (typeof e?.name !== 'string' || e.name === '') {
          throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `entry ${i} has no name (expected HireFire's [{ "name": ..., "quantity": ... }])`);
        }
        return { metric: e.name, value: finiteNumber(label, `${e.name} quantity`, e.quantity), at };
      });
    }
    if (typeof body === 'object' && body !== null) {
      const samples = Object.entries(body)
        .filter((entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1]))
        .map(([metric, value]) => ({ metric, value, at }));
      if (samples.length === 0) throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', 'the answer has no numeric field (configure `paths` for nested values)');
      return samples;
    }
    throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', 'the answer is neither an object nor a list (configure `paths`)');
  }

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      notes = [];
      return guardedRead(label, signal, config.timeout_ms, async (readSignal) => {
        const headers = bearerHeader(label, config.bearer_token_env, ctx);
        const answer = await http.get(config.url, { headers, signal: readSignal });
        if (answer.status < 200 || answer.status >= 300) {
          throw sourceError(label, 'TIDE_SOURCE_FAILED', `${config.url.replace(/\/\/[^@/]*@/, '//')} answered ${answer.status}: ${answer.text.slice(0, 200)}`);
        }
        if (!answer.isJson) throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `the answer is not JSON: ${answer.text.slice(0, 80)}`);
        return samplesOf(answer.json, ctx.now());
      });
    },
    async close() {
      closed = true;
      await http.close();
    },
    notes: () => notes,
  };
}

export const httpJsonSource: SourceDefinition<HttpJsonConfig> = {
  kind: 'http-json',
  summary: 'Numbers from a URL answering JSON: HireFire-style [{ name, quantity }], a flat object, or configured JSON paths.',
  schema: httpJsonConfig,
  create: createHttpJsonSource,
};
