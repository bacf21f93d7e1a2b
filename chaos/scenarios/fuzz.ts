/**
 * Fuzzing with fast-check (fixed seed, thousands of cases): the API's JSON inputs through
 * Fastify's `inject()` on a real queue, and `tide.yaml` texts through parseConfig.
 *
 * Invariants: the API never answers 5xx (the database is up), and every error it answers is
 * `{ error: { code } }` with a documented code other than TIDE_INTERNAL; parseConfig either
 * returns a config or throws a TideError with a TIDE_CONFIG_* code, never anything else.
 * Each problem found is kept with its (shrunk) input, so the report shows it.
 */
import { randomBytes } from 'node:crypto';

import fc from 'fast-check';
import pg from 'pg';
import { stringify } from 'yaml';

import { parseConfig } from '../../src/config/load.js';
import { ERRORS, isTideError } from '../../src/errors.js';
import { startApi } from '../../src/runtime/api/start.js';
import { startControl } from '../../src/app/control.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import type { Scenario, ScenarioResult } from '../types.js';

export interface FuzzOutcome {
  cases: number;
  /** One line per failed property: the shrunk input and what was wrong. */
  problems: string[];
}

interface Request {
  method: 'GET' | 'POST';
  url: string;
  contentType: string | undefined;
  body: string | undefined;
}

const anyValue = fc.oneof(fc.jsonValue(), fc.constant(null), fc.double(), fc.bigInt().map(String), fc.string({ unit: 'binary' }));
const jobField = {
  handler: fc.oneof(fc.constantFrom('hash', 'sleep'), fc.string({ unit: 'binary', maxLength: 300 }), anyValue),
  queue: fc.oneof(fc.constantFrom('default', 'other'), fc.string({ maxLength: 100 }), anyValue),
  payload: fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.string({ unit: 'binary' })),
  priority: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 1e21), anyValue),
  delay_ms: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 2 ** 53, 1e308), anyValue),
  run_at: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.integer(), fc.constantFrom('0000-00-00', '9999-12-31T23:59:59Z', '275760-09-13T00:00:00.001Z', 8.64e15 + 1, -8.64e15 - 1), anyValue),
  max_attempts: fc.oneof(fc.integer(), fc.constantFrom(0, 1, 1000, 2 ** 31), anyValue),
  idempotency_key: fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.constantFrom('', '\u0000', '\ud800'), anyValue),
};
const job = fc
  .tuple(fc.record(jobField, { requiredKeys: [] }), fc.dictionary(fc.string({ maxLength: 12 }), anyValue, { maxKeys: 2 }))
  .map(([known, extra]) => (Object.keys(extra).length > 0 && Math.abs(JSON.stringify(extra).length % 3) === 0 ? { ...known, ...extra } : known));
const body = fc.oneof(
  { weight: 4, arbitrary: job.map((j) => JSON.stringify(j)) },
  { weight: 2, arbitrary: fc.array(job, { maxLength: 5 }).map((jobs) => JSON.stringify({ jobs })) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', '{"jobs":[]}', '{"jobs":null}', '{"__proto__":{"handler":"hash"}}', '{"constructor":{"prototype":{}}}', '[]', 'null', '1e999', '"\\ud800"', '{"handler":"hash","payload":"\\u0000"}') },
);
const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/JSON', undefined);
const request: fc.Arbitrary<Request> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ method: fc.constant('POST' as const), url: fc.constant('/v1/jobs'), contentType, body: fc.option(body, { nil: undefined }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      method: fc.constantFrom('GET' as const, 'POST' as const),
      url: fc.tuple(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.bigInt().map(String), fc.constantFrom('0', '-1', '9223372036854775808', '1e3', ' 1')), fc.boolean())
        .map(([id, retry]) => `/v1/jobs/${encodeURIComponent(id)}${retry ? '/retry' : ''}`),
      contentType,
      body: fc.option(body, { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ method: fc.constant('GET' as const), url: fc.constantFrom('/v1/queues', '/health', '/metrics', '/v1/queues?x=%00', '/%2e%2e/etc/passwd'), contentType: fc.constant(undefined), body: fc.constant(undefined) }) },
);

/** The problem with one API answer, or undefined when it is well-formed. */
function checkAnswer(status: number, text: string): string | undefined {
  if (status >= 500) return `status ${status}: ${text.slice(0, 200)}`;
  if (status < 400) return undefined;
  let code: unknown;
  try {
    code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return `status ${status} with a body that is not JSON: ${text.slice(0, 200)}`;
  }
  if (typeof code !== 'string' || !(code in ERRORS)) return `status ${status} without a documented error code: ${text.slice(0, 200)}`;
  if (code === 'TIDE_INTERNAL') return `status ${status} TIDE_INTERNAL: ${text.slice(0, 200)}`;
  return undefined;
}

/** API JSON inputs through inject() on a real queue in a schema of its own (dropped after). */
export async function fuzzApi(options: { databaseUrl: string; runs: number; seed: number }): Promise<FuzzOutcome> {
  const schema = `fuzz_${randomBytes(5).toString('hex')}`;
  const api = await startApi({ databaseUrl: options.databaseUrl, schema, port: 0, version: 'fuzz', rateLimit: false, defaultMetrics: false, poolSize: 2 });
  const problems: string[] = [];
  try {
    const property = fc.asyncProperty(request, async (r) => {
      const res = await api.app.inject({
        method: r.method,
        url: r.url,
        ...(r.contentType ? { headers: { 'content-type': r.contentType } } : {}),
        ...(r.body !== undefined ? { payload: r.body } : {}),
      });
      const problem = checkAnswer(res.statusCode, res.body);
      if (problem) throw new Error(problem);
    });
    const result = await fc.check(property, { seed: options.seed, numRuns: options.runs });
    if (result.failed) problems.push(`API: ${errorText(result.errorInstance)} for ${JSON.stringify(result.counterexample?.[0]).slice(0, 400)} (seed ${options.seed}, path ${result.counterexamplePath})`);
    return { cases: result.numRuns, problems };
  } finally {
    await api.close();
    const client = new pg.Client({ connectionString: options.databaseUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
  }
}

const VALID: Record<string, unknown> = {
  project: 'fuzz',
  database: { url: '${DATABASE_URL}', schema: 'tide' },
  balancer: { host: '127.0.0.1', port: 8080, health_check: { interval_seconds: 1 } },
  control: { host: '127.0.0.1', port: 8079 },
  autoscale: { interval_seconds: 5 },
  services: {
    api: { kind: 'api', replicas: 1, min: 1, max: 3 },
    worker: { kind: 'worker', replicas: 1, max: 8, concurrency: 10, queues: ['default'], scale: { policies: [{ kind: 'slo', waitSeconds: 30, attainment: 0.95, concurrency: 10 }] } },
  },
};
const PATHS = [
  ['project'], ['state_dir'], ['database'], ['database', 'url'], ['database', 'schema'], ['balancer', 'port'], ['balancer', 'retries'],
  ['balancer', 'health_check', 'fails'], ['balancer', 'rate_limit'], ['control', 'token'], ['control', 'host'], ['autoscale', 'interval_seconds'],
  ['services'], ['services', 'api'], ['services', 'api', 'kind'], ['services', 'api', 'min'], ['services', 'api', 'max'], ['services', 'api', 'env'],
  ['services', 'worker', 'scale'], ['services', 'worker', 'scale', 'policies'], ['services', 'worker', 'scale', 'policies', 0, 'waitSeconds'],
  ['services', 'worker', 'scale', 'behavior'], ['services', 'worker', 'scale', 'fallback'], ['services', 'worker', 'sources'], ['services', 'worker', 'actuator'],
  ['services', 'worker', 'queues'], ['services', 'worker', 'concurrency'], ['services', 'Bad Name'], ['services', 'worker', 'scale', 'schedule'],
] as const;
const yamlValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(-1, 0, 0.5, 1e308, Number.MAX_SAFE_INTEGER + 2, '', '${UNSET}', '${DATABASE_URL}', '${X:-7}', '${', '*', 'Europe/Nowhere', '61 * * * *', [{ cron: 'x' }], { kind: 'nope' }, { kind: 'postgres' }),
);
const mutated = fc.array(fc.tuple(fc.constantFrom(...PATHS), yamlValue, fc.boolean()), { minLength: 1, maxLength: 4 }).map((edits) => {
  const config = structuredClone(VALID);
  for (const [path, value, remove] of edits) {
    let at: Record<string | number, unknown> = config;
    for (const key of path.slice(0, -1)) {
      const next = at[key];
      if (typeof next !== 'object' || next === null) at[key] = {};
      at = at[key] as Record<string | number, unknown>;
    }
    if (remove) delete at[path.at(-1)!];
    else at[path.at(-1)!] = value;
  }
  return stringify(config);
});
/** A self-referencing anchor: a cyclic value once resolved (refused with TIDE_CONFIG_YAML). */
export const RECURSIVE_ALIAS = 'project: p\nservices: {}\na: &a [*a]\n';
const TOKENS = [
  RECURSIVE_ALIAS, '  s: &s { kind: api, env: *s }',
  'project: p', 'services:', '  a: { kind: api }', '  w: &w { kind: worker }', '  v: { <<: *w, max: 2 }', '  x: *nope', 'x: !!binary aGk=', 'y: !!js/function "f"',
  'project: p\nproject: q', '  b:\n    kind: command\n    command: "true"', 'state_dir: ~', ': :', '- - -', '%YAML 1.1', '---', '...', '\t', '"\\u0000"', 'a: &a { b: 1 }\nc: *a',
  '  c: { kind: worker, scale: { policies: [ { kind: target, metric: m, type: average, target: 0 } ] } }', '  d: { kind: worker, min: 5, max: 1 }', 'database: { url: "${DATABASE_URL:-x}" }',
];
const tokens = fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 8 }).map((lines) => lines.join('\n'));
const configText = fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 2, arbitrary: tokens }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) });

/** tide.yaml texts through parseConfig: a config, or a TideError with a TIDE_CONFIG_* code. */
export async function fuzzConfig(options: { runs: number; seed: number }): Promise<FuzzOutcome> {
  const env = { DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db' };
  const property = fc.property(configText, (text) => {
    try {
      parseConfig(text, 'fuzz.yaml', env);
    } catch (err) {
      if (!isTideError(err)) throw new Error(`not a TideError: ${errorText(err)}`);
      if (!err.code.startsWith('TIDE_CONFIG_')) throw new Error(`${err.code}, not a TIDE_CONFIG_* code: ${err.message}`);
      if (!err.where?.file) throw new Error(`${err.code} does not name the file: ${err.message}`);
    }
  });
  const result = fc.check(property, { seed: options.seed, numRuns: options.runs });
  const problems = result.failed ? [`tide.yaml: ${errorText(result.errorInstance)} for ${JSON.stringify(result.counterexample?.[0]).slice(0, 600)} (seed ${options.seed}, path ${result.counterexamplePath})`] : [];
  return { cases: result.numRuns, problems };
}

/**
 * The control API's JSON inputs (POST /v1/scale, /v1/restart; GET /v1/logs' query) over real
 * HTTP, on a supervisor whose one service is pinned to 0 replicas (so no body can start a
 * process): never a 5xx, every error a documented code. POST /v1/down is left out (it stops).
 */
export async function fuzzControl(options: { runs: number; seed: number }): Promise<FuzzOutcome> {
  const target = new Supervisor({ services: [{ name: 'svc', kind: 'command', command: { shell: 'true' }, replicas: 0, min: 0, max: 0 }] });
  const control = await startControl({ target, host: '127.0.0.1', port: 0, onDown: () => undefined });
  const problems: string[] = [];
  const controlRequest = fc.oneof(
    fc.record({
      path: fc.constantFrom('/v1/scale', '/v1/restart'),
      body: fc.oneof(
        fc.record({ replicas: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom('svc', '__proto__', 'constructor'), fc.string()), anyValue, { maxKeys: 3 }), anyValue) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
        fc.record({ service: fc.oneof(fc.constantFrom('svc', 'nope', ''), anyValue) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc.string({ unit: 'binary', maxLength: 100 }),
      ),
      method: fc.constant('POST'),
    }),
    fc.record({
      path: fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([service, tail]) => `/v1/logs?service=${encodeURIComponent(service)}&tail=${encodeURIComponent(tail)}`),
      body: fc.constant(undefined),
      method: fc.constant('GET'),
    }),
  );
  try {
    const property = fc.asyncProperty(controlRequest, async (r) => {
      const res = await fetch(`${control.url}${r.path}`, { method: r.method, headers: { 'content-type': 'application/json' }, ...(r.body !== undefined ? { body: r.body } : {}) });
      const problem = checkAnswer(res.status, await res.text());
      if (problem) throw new Error(problem);
    });
    const result = await fc.check(property, { seed: options.seed, numRuns: options.runs });
    if (result.failed) problems.push(`control API: ${errorText(result.errorInstance)} for ${JSON.stringify(result.counterexample?.[0]).slice(0, 400)} (seed ${options.seed}, path ${result.counterexamplePath})`);
    return { cases: result.numRuns, problems };
  } finally {
    await control.close();
    await target.shutdown();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export const fuzz: Scenario = {
  name: 'fuzz',
  checks: 'API and control API JSON inputs: never 5xx, every error coded; tide.yaml: only TIDE_CONFIG_* errors',
  async run(options): Promise<ScenarioResult> {
    const started = performance.now();
    const runs = options.full ? 20_000 : 3_000;
    const api = await fuzzApi({ databaseUrl: options.databaseUrl, runs, seed: options.seed });
    const config = await fuzzConfig({ runs, seed: options.seed });
    const control = await fuzzControl({ runs: Math.round(runs / 3), seed: options.seed });
    return {
      name: this.name,
      did: `fast-check, seed ${options.seed}: ${api.cases} API requests through inject() (job bodies, batches, raw text, content types, job ids), ${config.cases} tide.yaml texts (mutated valid configs, YAML token soups, random text) and ${control.cases} control API requests (scale, restart, logs)`,
      durationMs: performance.now() - started,
      counts: { apiCases: api.cases, configCases: config.cases, controlCases: control.cases, problems: api.problems.length + config.problems.length + control.problems.length },
      violations: [...api.problems, ...config.problems, ...control.problems],
      notes: [],
    };
  },
};
