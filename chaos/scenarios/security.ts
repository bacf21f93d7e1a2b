/**
 * Security: the control API refuses calls without its token when it listens beyond loopback;
 * API keys are enforced when configured; the SQL source runs nothing but a read; secrets (the
 * database password, API keys, the control token) appear in no log line, no /metrics, no
 * `tide ps --json` and no control API answer; hostile clients (./hostile.ts) neither escape
 * the per-client limits nor take the API down.
 *
 * Each check returns the problems it found (empty: it holds), so the CI tests and the runner
 * share them.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import pg from 'pg';

import { isTideError } from '../../src/errors.js';
import { startApi } from '../../src/runtime/api/start.js';
import { createSource } from '../../src/sources/registry.js';
import { startControl } from '../../src/app/control.js';
import { freePort } from '../../src/net/ports.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { startLoad } from '../load.js';
import { startChaosSystem, until } from '../system.js';
import type { Scenario, ScenarioResult } from '../types.js';
import { type CheckResult, checkBehindCaddy, checkFloods, checkIdleConnections, checkRandomKeys, checkSlowHeaders, checkSpoofedForwarded } from './hostile.js';

const TIDE_BIN = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));

async function answer(url: string, init: RequestInit = {}): Promise<{ status: number; code: string | undefined; text: string }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    // not JSON
  }
  return { status: res.status, code, text };
}

/** The control API bound beyond loopback: no token, a wrong one, the right one; and no token at all refused at start. */
export async function checkControlToken(): Promise<string[]> {
  const problems: string[] = [];
  const token = randomBytes(24).toString('hex');
  const target = new Supervisor({ services: [] });
  let downs = 0;
  try {
    await startControl({ target, host: '0.0.0.0', port: 0, onDown: () => void downs++ });
    problems.push('the control API started on 0.0.0.0 without a token');
  } catch (err) {
    if (!isTideError(err) || err.code !== 'TIDE_CONTROL_TOKEN_REQUIRED') problems.push(`no token on 0.0.0.0: expected TIDE_CONTROL_TOKEN_REQUIRED, got ${String(err)}`);
  }
  const control = await startControl({ target, host: '0.0.0.0', port: 0, token, onDown: () => void downs++ });
  try {
    const calls: Array<[string, string, string | undefined]> = [
      ['GET', '/v1/ps', undefined],
      ['GET', '/v1/ps', 'Bearer wrong-token-wrong-token'],
      ['GET', '/v1/ps', `Bearer ${token}x`],
      ['GET', '/v1/ps', token],
      ['POST', '/v1/scale', undefined],
      ['POST', '/v1/down', undefined],
      ['POST', '/v1/down', `Basic ${Buffer.from(`x:${token}`).toString('base64')}`],
      ['GET', '/v1/logs', undefined],
    ];
    for (const [method, path, auth] of calls) {
      const res = await answer(`${control.url}${path}`, {
        method,
        headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: '{"replicas":{}}' } : {}),
      });
      if (res.status !== 401 || res.code !== 'TIDE_CONTROL_UNAUTHORIZED') problems.push(`${method} ${path} with ${auth ? `"${auth.slice(0, 12)}..."` : 'no token'}: ${res.status} ${res.code ?? res.text.slice(0, 80)}, not 401 TIDE_CONTROL_UNAUTHORIZED`);
    }
    const ok = await answer(`${control.url}/v1/ps`, { headers: { authorization: `Bearer ${token}` } });
    if (ok.status !== 200) problems.push(`GET /v1/ps with the token: ${ok.status}, not 200`);
    if (downs > 0) problems.push('an unauthorized POST /v1/down stopped the supervisor');
  } finally {
    await control.close();
    await target.shutdown();
  }
  return problems;
}

/** API keys: every route but /health and /metrics needs one of them. */
export async function checkApiKeys(databaseUrl: string): Promise<string[]> {
  const problems: string[] = [];
  const key = `key-${randomBytes(12).toString('hex')}`;
  const schema = `sec_${randomBytes(5).toString('hex')}`;
  const api = await startApi({ databaseUrl, schema, port: 0, version: 'security', rateLimit: false, defaultMetrics: false, apiKeys: [key, `${key}-2`], poolSize: 2 });
  try {
    const post = (headers: Record<string, string>) =>
      answer(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"handler":"hash"}' });
    for (const [what, headers] of [
      ['no key', {}],
      ['a wrong key', { 'x-api-key': 'nope' }],
      ['a key with a suffix', { 'x-api-key': `${key}x` }],
      ['a prefix of the key', { 'x-api-key': key.slice(0, -1) }],
      ['the key as a bearer token', { authorization: `Bearer ${key}` }],
    ] as Array<[string, Record<string, string>]>) {
      const res = await post(headers);
      if (res.status !== 401 || res.code !== 'TIDE_API_UNAUTHORIZED') problems.push(`POST /v1/jobs with ${what}: ${res.status} ${res.code ?? ''}, not 401 TIDE_API_UNAUTHORIZED`);
    }
    for (const path of ['/v1/queues', '/v1/jobs/1', '/db/pool/stats']) {
      const res = await answer(`${api.url}${path}`);
      if (res.status !== 401) problems.push(`GET ${path} with no key: ${res.status}, not 401`);
    }
    if ((await post({ 'x-api-key': key })).status !== 202) problems.push('POST /v1/jobs with the first key was not accepted');
    if ((await post({ 'x-api-key': `${key}-2` })).status !== 202) problems.push('POST /v1/jobs with the second key was not accepted');
    if ((await answer(`${api.url}/health`)).status !== 200) problems.push('/health needs no key but did not answer 200');
  } finally {
    await api.close();
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
  }
  return problems;
}

/** The SQL source: writes in any disguise fail, and the table is unchanged afterwards. */
export async function checkSqlReadOnly(databaseUrl: string): Promise<{ problems: string[]; refused: number; rolledBack: number }> {
  const problems: string[] = [];
  const schema = `sec_${randomBytes(5).toString('hex')}`;
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  let refused = 0;
  let rolledBack = 0;
  try {
    await db.query(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".t (v int); INSERT INTO "${schema}".t VALUES (1); CREATE SEQUENCE "${schema}".s`);
    const t = `"${schema}".t`;
    const writes = [
      `INSERT INTO ${t} VALUES (2) RETURNING 1`,
      `WITH x AS (INSERT INTO ${t} VALUES (3) RETURNING 1) SELECT count(*) FROM x`,
      `UPDATE ${t} SET v = 9 RETURNING 1`,
      `DELETE FROM ${t} RETURNING 1`,
      `SELECT 1; INSERT INTO ${t} VALUES (4)`,
      `COMMIT; INSERT INTO ${t} VALUES (5)`,
      `SELECT nextval('"${schema}".s')`,
      `CREATE TABLE "${schema}".t2 AS SELECT 1 AS v`,
      `TRUNCATE ${t}`,
      `DROP TABLE ${t}`,
      // PostgreSQL lets lo_create run in a read-only transaction; the source's rollback must undo it
      `SELECT lo_create(0)`,
    ];
    const largeObjects = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM pg_largeobject_metadata')).rows[0]!.n);
    const objectsBefore = await largeObjects();
    for (const query of writes) {
      const source = createSource({ kind: 'postgres', name: 'sec', connection_string: databaseUrl, query, metric: 'm', timeout_ms: 5_000 }, { field: 'security' });
      try {
        await source.read(AbortSignal.timeout(10_000));
        if (!query.includes('lo_create')) problems.push(`the SQL source ran a write: ${query}`);
        else if ((await largeObjects()) !== objectsBefore) problems.push('lo_create through the SQL source left a large object behind');
        else rolledBack++;
      } catch (err) {
        if (!isTideError(err)) problems.push(`the write ${query} failed without a TideError: ${String(err)}`);
        else refused++;
      } finally {
        await source.close();
      }
    }
    const { rows } = await db.query<{ v: number }>(`SELECT v FROM ${t} ORDER BY v`);
    if (rows.length !== 1 || rows[0]!.v !== 1) problems.push(`the table changed: ${JSON.stringify(rows)}`);
    const seq = await db.query<{ is_called: boolean }>(`SELECT is_called FROM "${schema}".s`);
    if (seq.rows[0]?.is_called) problems.push('the sequence was advanced');
    const t2 = await db.query(`SELECT to_regclass('"${schema}".t2') AS r`);
    if ((t2.rows[0] as { r: unknown }).r !== null) problems.push('a table was created');
  } finally {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end();
  }
  return { problems, refused, rolledBack };
}

/** The URL with a password (generated if it had none: the test server trusts loopback). */
export function withPassword(databaseUrl: string): { url: string; password: string } {
  const u = new URL(databaseUrl);
  if (u.password) return { url: databaseUrl, password: decodeURIComponent(u.password) };
  const password = `pw-${randomBytes(12).toString('hex')}`;
  u.password = password;
  return { url: u.toString(), password };
}

/**
 * A whole system with a password in its database URL, API keys and a control token; every
 * output a person or a scraper sees is captured and searched for the secrets.
 */
export async function checkSecretsHidden(databaseUrl: string): Promise<{ problems: string[]; bytes: number; outputs: number; notes: string[] }> {
  const { url, password } = withPassword(databaseUrl);
  const apiKey = `apikey-${randomBytes(12).toString('hex')}`;
  const token = `token-${randomBytes(16).toString('hex')}`;
  const secrets = [password, encodeURIComponent(password), apiKey, token];
  const captured: Array<{ where: string; text: string }> = [];
  const notes: string[] = [];
  // nothing listens there: a source that cannot connect, with the password in its URL
  const closed = new URL(url);
  closed.port = String(await freePort());
  const sql = (connection: string, query: string) => ({ kind: 'postgres', connection_string: connection, query, metric: 'queue_depth', timeout_ms: 1_000 });
  const chaos = await startChaosSystem({
    databaseUrl: url,
    api: { replicas: 2, max: 2 },
    worker: { replicas: 1, max: 2, concurrency: 4 },
    apiEnv: { API_KEYS: apiKey },
    controlToken: token,
    // the autoscaler runs, with sources that work, fail on their query, and cannot connect:
    // their errors reach the journal, the control API, the dashboard and the logs
    autoscale: { interval_seconds: 0.5 },
    workerScale: { policies: [{ kind: 'target', metric: 'queue_depth', type: 'average', target: 50 }], fallback: { failureThreshold: 2, replicas: 1 } },
    workerSources: {
      'sql-ok': sql(url, 'SELECT 1'),
      'sql-bad': sql(url, 'SELECT nope FROM nowhere'),
      'sql-down': sql(closed.toString(), 'SELECT 1'),
    },
    // every request logged, so the headers' fate is tested too
    env: { LOG_LEVEL: 'info' },
    log: (line) => captured.push({ where: 'supervisor log', text: line }),
    onLog: (l) => captured.push({ where: `${l.service}.${l.index} ${l.stream}`, text: l.line }),
  });
  try {
    const { system } = chaos;
    const lb = system.balancer!.url;
    // traffic that makes noise: accepted jobs, a wrong key, a failing job, an unknown route
    const load = startLoad({ url: lb, ratePerSecond: 30, seed: 1, headers: { 'x-api-key': apiKey }, job: (i) => (i % 5 === 0 ? { handler: 'hash', payload: { rounds: 'many' } } : { handler: 'sleep', payload: { ms: 5 } }) });
    await Promise.race([load.accepted(40), new Promise((r) => setTimeout(r, 20_000).unref())]);
    await load.stop();
    for (const headers of [{ 'x-api-key': `${apiKey}-wrong` }, { authorization: `Bearer ${token}` }, {}] as Array<Record<string, string>>) {
      captured.push({ where: 'API answer', text: (await answer(`${lb}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"handler":"hash"}' })).text });
    }
    captured.push({ where: 'API answer', text: (await answer(`${lb}/nowhere?token=x`, { headers: { 'x-api-key': apiKey } })).text });
    // a replica that crashes and restarts logs its exit
    const worker = system.supervisor.ps().replicas.find((r) => r.service === 'worker' && r.pid !== null);
    if (worker?.pid) {
      process.kill(worker.pid, 'SIGKILL');
      await until(() => system.supervisor.ps().replicas.some((r) => r.id === worker.id && r.state === 'healthy' && r.pid !== worker.pid), 30_000);
    }
    for (const r of system.supervisor.ps().replicas) {
      if (r.port === null) continue;
      captured.push({ where: `${r.id} /metrics`, text: (await answer(`http://127.0.0.1:${r.port}/metrics`)).text });
      captured.push({ where: `${r.id} /health`, text: (await answer(`http://127.0.0.1:${r.port}/health`)).text });
    }
    const auth = { authorization: `Bearer ${token}` };
    const failing = await until(async () => {
      const ps = (await (await fetch(`${system.control.url}/v1/ps`, { headers: auth })).json()) as { autoscaler?: Array<{ failingSources: unknown[]; lastDecision: unknown }> };
      return (ps.autoscaler?.[0]?.failingSources.length ?? 0) >= 2;
    }, 30_000);
    if (!failing) notes.push('the autoscaler did not report its two failing sources within 30 s');
    const events = await sseText(`${system.control.url}/dashboard/events`, auth, 3);
    if (!events.includes('snapshot')) notes.push(`the dashboard sent no snapshot event: ${events.slice(0, 120)}`);
    captured.push({ where: 'dashboard events', text: events });
    const configFile = path.join(await mkdtemp(path.join(tmpdir(), 'tide-sec-')), 'tide.yaml');
    await writeFile(configFile, chaos.configText);
    const decisions = await promisify(execFile)(process.execPath, [TIDE_BIN, 'decisions', '--json', '-c', configFile, '--limit', '50'], { timeout: 30_000 })
      .catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: `tide decisions failed: ${err.stderr ?? String(err)}` }));
    await rm(path.dirname(configFile), { recursive: true, force: true });
    captured.push({ where: 'tide decisions --json', text: `${decisions.stdout}\n${decisions.stderr}` });
    if (!decisions.stdout.includes('sql-bad')) notes.push(`tide decisions --json shows no failing source: ${decisions.stderr.slice(0, 200)}`);
    captured.push({ where: 'control GET /v1/ps', text: (await answer(`${system.control.url}/v1/ps`, { headers: auth })).text });
    captured.push({ where: 'control GET /v1/logs', text: (await answer(`${system.control.url}/v1/logs?tail=2000`, { headers: auth })).text });
    const ps = await promisify(execFile)(process.execPath, [TIDE_BIN, 'ps', '--json', '--url', system.control.url], {
      env: { ...process.env, TIDE_CONTROL_TOKEN: token },
      timeout: 30_000,
    }).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: `tide ps failed: ${err.stderr ?? String(err)}` }));
    captured.push({ where: 'tide ps --json', text: `${ps.stdout}\n${ps.stderr}` });
    if (!ps.stdout.includes('"replicas"')) notes.push(`tide ps --json printed no replicas: ${ps.stderr.slice(0, 200)}`);
  } finally {
    await chaos.stop();
  }
  const problems: string[] = [];
  for (const { where, text } of captured) {
    const found = secrets.filter((s) => text.includes(s));
    if (found.length > 0) problems.push(`${where} shows a secret (${found.map((s) => (s === token ? 'the control token' : s === apiKey ? 'an API key' : 'the database password')).join(', ')}): ${redact(text, secrets).slice(0, 300)}`);
  }
  return { problems: [...new Set(problems)], bytes: captured.reduce((n, c) => n + c.text.length, 0), outputs: captured.length, notes };
}

/** The first `events` server-sent events of a stream, as text (bounded: 15 s at most). */
async function sseText(url: string, headers: Record<string, string>, events: number): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  let text = '';
  try {
    const res = await fetch(url, { headers, signal: controller.signal });
    const decoder = new TextDecoder();
    for await (const chunk of res.body ?? []) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      if ((text.match(/\n\n/g) ?? []).length >= events) break;
    }
  } catch {
    // aborted by the bound: what came so far is what is searched
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return text;
}

function redact(text: string, secrets: string[]): string {
  return secrets.reduce((t, s) => t.replaceAll(s, '<SECRET>'), text);
}

export const security: Scenario = {
  name: 'security',
  checks: 'control token and API keys enforced; the SQL source only reads; no secret in logs, /metrics, tide ps; random keys and forged forwarded headers do not escape per-client limits (behind a real Caddy too); slow heads, header and body floods and idle connections are refused without taking the API down',
  async run(options): Promise<ScenarioResult> {
    const started = performance.now();
    const control = await checkControlToken();
    const keys = await checkApiKeys(options.databaseUrl);
    const sql = await checkSqlReadOnly(options.databaseUrl);
    const secrets = await checkSecretsHidden(options.databaseUrl);
    const hostile: CheckResult[] = [];
    for (const [what, check] of [
      ['random keys', checkRandomKeys],
      ['forged forwarded headers', checkSpoofedForwarded],
      ['behind Caddy', checkBehindCaddy],
      ['slow headers', (url: string) => checkSlowHeaders(url, options.full ? 1_000 : 200)],
      ['header and body floods', (url: string) => checkFloods(url, options.full ? 200 : 50)],
      ['idle connections', (url: string) => checkIdleConnections(url, options.full ? 10_000 : 3_000)],
    ] as const) {
      options.log(`security: hostile clients: ${what}`);
      hostile.push(await check(options.databaseUrl));
    }
    const hostileProblems = hostile.flatMap((h) => h.problems);
    return {
      name: this.name,
      did: 'control API on 0.0.0.0 called with no, wrong and right tokens; the API with keys called with no, wrong and right keys; the SQL source given 11 kinds of write; a system with a database password, API keys and a control token run with request logging, a failing job and a worker crash, and its logs, /metrics, /health, control API, dashboard events, `tide decisions --json` and `tide ps --json` searched (the autoscaler running with SQL sources, with the password in their URLs, that fail on their query or cannot connect); hostile clients: random API keys, forged X-Forwarded-For and Forwarded headers (at the API, the balancer, and through a real Caddy in front of two replicas), slow heads, 32 KiB heads, 1 GiB and endless chunked bodies, thousands of idle connections at a `tide api` with 512 file descriptors',
      durationMs: performance.now() - started,
      counts: {
        sqlWritesRefused: sql.refused,
        sqlWritesRolledBack: sql.rolledBack,
        outputsSearched: secrets.outputs,
        bytesSearched: secrets.bytes,
        ...Object.assign({}, ...hostile.map((h) => h.figures)),
        problems: control.length + keys.length + sql.problems.length + secrets.problems.length + hostileProblems.length,
      },
      violations: [...control, ...keys, ...sql.problems, ...secrets.problems, ...hostileProblems],
      notes: [...secrets.notes, ...hostile.flatMap((h) => (h.skipped ? [h.skipped] : []))],
    };
  },
};
