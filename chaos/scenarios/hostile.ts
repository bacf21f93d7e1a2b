/**
 * Hostile clients against the API (and the balancer's rate limit), each check bounded in time
 * and count, loopback only, returning the problems it found and the figures it reached:
 *
 * - random API keys: a fresh key per request does not escape the per-client limit;
 * - spoofed forwarded headers: from outside the trusted set they change nobody's bucket;
 * - behind a real Caddy: per-client limits apply per client, not per proxy;
 * - slow headers: a head trickled byte by byte is cut at the header timeout (408) while
 *   normal requests are served;
 * - header and body floods: refused (431, 413) without taking the server down;
 * - thousands of idle connections: the excess is closed at once, before the file
 *   descriptors run out, and the server answers once they go.
 *
 * Distinct clients on one machine: Linux routes all of 127.0.0.0/8 to the loopback
 * interface, so a client bound to 127.0.0.2 is, to the server, another address.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { dropSchema } from '../../src/db/migrate.js';
import { type RunningApi, type StartApiOptions, startApi } from '../../src/runtime/api/start.js';
import { createBalancer } from '../../src/balancer/balancer.js';
import { freePort } from '../../src/net/ports.js';
import { until } from '../system.js';

const TIDE_BIN = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));

export interface CheckResult {
  problems: string[];
  figures: Record<string, number>;
  /** Set when the check could not run here (a missing program); says why. */
  skipped?: string;
}

interface Answer {
  status: number;
  code: string | undefined;
}

/** One request with `agent: false` from `localAddress` (a loopback address standing for a client). */
export function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false, localAddress: init.localAddress, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, code });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

const JOB = '{"handler":"hash"}';
const post = (url: string, localAddress: string, headers: Record<string, string> = {}) =>
  request(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JOB, localAddress });

async function withApi<T>(databaseUrl: string, options: Partial<StartApiOptions>, body: (api: RunningApi) => Promise<T>): Promise<T> {
  const schema = `hostile_${randomBytes(5).toString('hex')}`;
  const api = await startApi({ databaseUrl, schema, port: 0, version: 'hostile', defaultMetrics: false, poolSize: 2, rateLimit: false, ...options });
  try {
    return await body(api);
  } finally {
    await api.close();
    await dropSchema(databaseUrl, schema);
  }
}

function tally(answers: Answer[]): { accepted: number; limited: number; other: string[] } {
  const other = answers.filter((a) => a.status !== 202 && a.status !== 429).map((a) => `${a.status} ${a.code ?? ''}`);
  return { accepted: answers.filter((a) => a.status === 202).length, limited: answers.filter((a) => a.status === 429).length, other };
}

async function sequence(n: number, one: (i: number) => Promise<Answer>): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < n; i++) out.push(await one(i));
  return out;
}

/** A fresh random X-API-Key per request: limited as one client, with keys enforced or not. */
export async function checkRandomKeys(databaseUrl: string): Promise<CheckResult> {
  const problems: string[] = [];
  const figures: Record<string, number> = {};
  await withApi(databaseUrl, { rateLimit: { max: 5, windowMs: 60_000 } }, async (api) => {
    const t = tally(await sequence(8, () => post(api.url, '127.0.0.2', { 'x-api-key': randomBytes(8).toString('hex') })));
    figures.randomKeysAccepted = t.accepted;
    figures.randomKeysLimited = t.limited;
    if (t.accepted !== 5 || t.limited !== 3) problems.push(`8 requests with random keys (keys not enforced, limit 5): ${t.accepted} accepted and ${t.limited} limited, not 5 and 3`);
    if (t.other.length) problems.push(`random keys got unexpected answers: ${t.other.join(', ')}`);
  });
  const key = `key-${randomBytes(12).toString('hex')}`;
  await withApi(databaseUrl, { rateLimit: { max: 5, windowMs: 60_000 }, apiKeys: [key] }, async (api) => {
    const random = await sequence(8, () => post(api.url, '127.0.0.3', { 'x-api-key': randomBytes(8).toString('hex') }));
    figures.randomKeysRefused = random.filter((a) => a.status === 401).length;
    if (figures.randomKeysRefused !== 8) problems.push(`8 random keys with keys enforced: ${figures.randomKeysRefused} answered 401`);
    // the verified key is its own client: the same address's other traffic does not use it up
    const verified = tally(await sequence(6, () => post(api.url, '127.0.0.3', { 'x-api-key': key })));
    if (verified.accepted !== 5 || verified.limited !== 1) problems.push(`6 requests with the verified key (limit 5): ${verified.accepted} accepted, ${verified.limited} limited, not 5 and 1`);
  });
  return { problems, figures };
}

/**
 * Forged X-Forwarded-For and Forwarded headers, a new one per request, from a client outside
 * the trusted set: straight at the API (which trusts 127.0.0.1 only) and through the balancer.
 */
export async function checkSpoofedForwarded(databaseUrl: string): Promise<CheckResult> {
  const problems: string[] = [];
  const figures: Record<string, number> = {};
  const spoof = (i: number): Record<string, string> => ({ 'x-forwarded-for': `10.${i}.0.1, 127.0.0.1`, forwarded: `for=10.${i}.0.2` });
  await withApi(databaseUrl, { rateLimit: { max: 5, windowMs: 60_000 }, trust: { trustedProxies: ['127.0.0.1'] } }, async (api) => {
    const t = tally(await sequence(20, (i) => post(api.url, '127.0.0.4', spoof(i))));
    figures.spoofedAtApiAccepted = t.accepted;
    if (t.accepted !== 5 || t.other.length) problems.push(`20 spoofed requests at the API from an untrusted address (limit 5): ${t.accepted} accepted ${t.other.join(' ')}`);
    // the trusted proxy's own address has a bucket of its own: the spoofer used none of it
    const proxied = await post(api.url, '127.0.0.1', { 'x-forwarded-for': '127.0.0.4' });
    if (proxied.status !== 429) problems.push(`a request forwarded by the trusted proxy for the spoofer was not limited as the spoofer (${proxied.status})`);
    if ((await post(api.url, '127.0.0.1', { 'x-forwarded-for': '127.0.0.5' })).status !== 202) problems.push('another client through the trusted proxy was limited');
  });
  await withApi(databaseUrl, {}, async (api) => {
    const lb = await createBalancer({ port: 0, host: '127.0.0.1', rateLimit: { ratePerSecond: 0.01, burst: 5 }, trust: { trustedProxies: ['127.0.0.1'] } });
    try {
      lb.addUpstream('api', api.url, { healthy: true });
      const t = tally(await sequence(20, (i) => post(lb.url, '127.0.0.4', spoof(i))));
      figures.spoofedAtBalancerAccepted = t.accepted;
      if (t.accepted !== 5 || t.other.length) problems.push(`20 spoofed requests at the balancer from an untrusted address (burst 5): ${t.accepted} accepted ${t.other.join(' ')}`);
      if ((await post(lb.url, '127.0.0.6')).status !== 202) problems.push('another client at the balancer was limited');
      // from the trusted proxy (127.0.0.1), the forwarded client is counted: its own bucket, not the proxy's
      const forwarded = tally(await sequence(6, () => post(lb.url, '127.0.0.1', { 'x-forwarded-for': '6.6.6.6, 10.0.0.7' })));
      figures.forwardedAtBalancerAccepted = forwarded.accepted;
      if (forwarded.accepted !== 5) problems.push(`6 requests through the trusted proxy for one client (burst 5): ${forwarded.accepted} accepted, not 5`);
      if ((await post(lb.url, '127.0.0.1', { 'x-forwarded-for': '10.0.0.8' })).status !== 202) problems.push('another client through the trusted proxy at the balancer was limited');
    } finally {
      await lb.close();
    }
  });
  return { problems, figures };
}

/** Where Debian's (or any) caddy is, or undefined. */
export function caddyBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, 'caddy');
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

/** Caddy on a free loopback port with `caddyfile` (`{port}` filled in); stopped and its files removed by `stop`. */
export async function startCaddy(binary: string, caddyfile: (port: number) => string): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-caddy-'));
  const port = await freePort();
  const file = path.join(dir, 'Caddyfile');
  await writeFile(file, caddyfile(port));
  // its data and config directories in the temp dir: nothing left in HOME, no admin port shared
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  const child: ChildProcess = spawn(binary, ['run', '--config', file, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const up = await until(
    () =>
      child.exitCode !== null || // a broken Caddyfile: stop waiting
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    15_000,
    100,
  );
  if (!up || child.exitCode !== null) {
    await stop();
    throw new Error(`caddy did not listen on 127.0.0.1:${port} within 15 s: ${stderr.slice(-800)}`);
  }
  return { url: `http://127.0.0.1:${port}`, stop };
}

/**
 * A real Caddy (reverse_proxy, round robin) in front of two API replicas that trust exactly
 * Caddy's address: each client gets its own limit, and a forged header through Caddy or
 * straight at a replica changes nothing.
 */
export async function checkBehindCaddy(databaseUrl: string): Promise<CheckResult> {
  const binary = caddyBinary();
  if (!binary) return { problems: [], figures: {}, skipped: 'caddy is not installed (Debian: apt-get install caddy); the check behind a real Caddy did not run' };
  const problems: string[] = [];
  const figures: Record<string, number> = {};
  const schema = `hostile_${randomBytes(5).toString('hex')}`;
  const replicas: RunningApi[] = [];
  let caddy: { url: string; stop(): Promise<void> } | undefined;
  try {
    for (let i = 0; i < 2; i++) {
      // what the Compose export runs: the default limit's shape, trusting exactly the proxy
      replicas.push(await startApi({ databaseUrl, schema, port: 0, version: 'hostile', defaultMetrics: false, poolSize: 2, rateLimit: { max: 5, windowMs: 60_000 }, trust: { trustedProxies: ['127.0.0.1'] } }));
    }
    const upstreams = replicas.map((r) => r.url.replace('http://', '')).join(' ');
    caddy = await startCaddy(binary, (port) => `{\n\tadmin off\n\tauto_https off\n}\n\nhttp://127.0.0.1:${port} {\n\treverse_proxy ${upstreams} {\n\t\tlb_policy round_robin\n\t}\n}\n`);
    const perClientMax = 5 * replicas.length;
    const a = tally(await sequence(perClientMax + 4, () => post(caddy!.url, '127.0.0.2')));
    figures.caddyClientAAccepted = a.accepted;
    figures.caddyClientALimited = a.limited;
    if (a.accepted > perClientMax || a.limited < 4 || a.other.length) problems.push(`client A through Caddy: ${a.accepted} accepted, ${a.limited} limited ${a.other.join(' ')} (limit 5 per replica, ${replicas.length} replicas)`);
    const b = tally(await sequence(5, () => post(caddy!.url, '127.0.0.3')));
    figures.caddyClientBAccepted = b.accepted;
    if (b.accepted !== 5) problems.push(`client B through Caddy after client A used up its limit: ${b.accepted} of 5 accepted (limited per proxy, not per client)`);
    // a forger through Caddy: Caddy does not trust it, so it writes the forger's own address
    const forged = tally(await sequence(perClientMax + 4, (i) => post(caddy!.url, '127.0.0.4', { 'x-forwarded-for': `10.9.${i}.1`, forwarded: `for=10.8.${i}.1` })));
    figures.caddyForgerAccepted = forged.accepted;
    if (forged.accepted > perClientMax || forged.limited < 4) problems.push(`a client forging X-Forwarded-For through Caddy: ${forged.accepted} accepted, ${forged.limited} limited (its headers bought it more than one client's limit)`);
    // straight at a replica, claiming to be a fresh client behind the proxy
    const direct = tally(await sequence(8, (i) => post(replicas[0]!.url, '127.0.0.5', { 'x-forwarded-for': `10.7.${i}.1` })));
    figures.directForgerAccepted = direct.accepted;
    if (direct.accepted !== 5) problems.push(`a client forging X-Forwarded-For straight at a replica: ${direct.accepted} of 8 accepted, not 5`);
  } catch (err) {
    problems.push(`behind Caddy: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await caddy?.stop();
    await Promise.all(replicas.map((r) => r.close()));
    await dropSchema(databaseUrl, schema);
  }
  return { problems, figures };
}

/** A raw connection that sends `head` (if any) and records what comes back and when it closes. */
interface RawConnection {
  socket: net.Socket;
  opened: number;
  received: string;
  closedAt: number | undefined;
  closed: Promise<void>;
}

function rawConnect(port: number, localAddress = '127.0.0.1'): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const conn: RawConnection = { socket, opened: 0, received: '', closedAt: undefined, closed: Promise.resolve() };
    conn.closed = new Promise<void>((done) =>
      socket.on('close', () => {
        conn.closedAt = performance.now();
        done();
      }),
    );
    socket.on('data', (c: Buffer) => (conn.received += c.toString('latin1')));
    socket.once('connect', () => {
      conn.opened = performance.now();
      resolve(conn);
    });
    socket.once('error', (err) => {
      if (conn.opened === 0) reject(err);
    });
  });
}

const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);

/** One request on an open keep-alive connection; resolves with the status once the whole response (Content-Length framed) came, 0 on a close or after 10 s. */
async function exchange(conn: RawConnection, text: string): Promise<number> {
  conn.received = '';
  conn.socket.write(text);
  const complete = () => {
    const end = conn.received.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(conn.received.slice(0, end))?.[1] ?? 0);
    return Buffer.byteLength(conn.received.slice(end + 4), 'latin1') >= length;
  };
  const done = await until(() => complete() || conn.closedAt !== undefined, 10_000, 10);
  return done && complete() ? statusOf(conn.received) : 0;
}

/**
 * Slow headers: 200 connections trickle a head a header line at a time; each is answered 408
 * TIDE_API_REQUEST_TIMEOUT at the header timeout, and normal requests meanwhile are served.
 */
export async function checkSlowHeaders(databaseUrl: string, connections = 200): Promise<CheckResult> {
  const problems: string[] = [];
  const figures: Record<string, number> = {};
  const headersTimeoutMs = 1_000;
  await withApi(databaseUrl, { headersTimeoutMs }, async (api) => {
    const port = Number(new URL(api.url).port);
    const slow = await Promise.all(Array.from({ length: connections }, () => rawConnect(port)));
    for (const c of slow) c.socket.write('POST /v1/jobs HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => {
      for (const c of slow) if (c.closedAt === undefined && !c.socket.destroyed) c.socket.write('X-Slow: y\r\n');
    }, 100);
    let served = 0;
    let notServed = 0;
    try {
      // normal requests while the slow heads are held
      for (let i = 0; i < 10; i++) {
        const res = await post(api.url, '127.0.0.2');
        if (res.status === 202) served++;
        else notServed++;
      }
      await Promise.race([Promise.all(slow.map((c) => c.closed)), new Promise((r) => setTimeout(r, headersTimeoutMs * 6).unref())]);
    } finally {
      clearInterval(trickle);
      for (const c of slow) c.socket.destroy();
    }
    const cut = slow.filter((c) => c.closedAt !== undefined && statusOf(c.received) === 408 && c.received.includes('TIDE_API_REQUEST_TIMEOUT'));
    const latest = Math.max(0, ...cut.map((c) => c.closedAt! - c.opened));
    figures.slowHeadConnections = connections;
    figures.slowHeadsCut408 = cut.length;
    figures.slowHeadLatestCutS = Math.round(latest / 100) / 10;
    figures.servedDuringSlowHeads = served;
    if (cut.length !== connections) problems.push(`${connections - cut.length} of ${connections} slow heads were not answered 408 TIDE_API_REQUEST_TIMEOUT within ${(headersTimeoutMs * 6) / 1000} s`);
    if (notServed > 0) problems.push(`${notServed} of 10 normal requests were not served while slow heads were held`);
  });
  return { problems, figures };
}

/** Header and body floods: oversized heads get 431, oversized bodies 413, and the API goes on. */
export async function checkFloods(databaseUrl: string, requests = 50): Promise<CheckResult> {
  const problems: string[] = [];
  const figures: Record<string, number> = {};
  const bodyLimit = 64 * 1024;
  await withApi(databaseUrl, { bodyLimit }, async (api) => {
    const port = Number(new URL(api.url).port);
    // headers: 400 lines of 80 bytes (32 KiB), at once on `requests` connections
    const flood = `POST /v1/jobs HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 400 }, (_, i) => `X-Flood-${i}: ${'h'.repeat(64)}\r\n`).join('')}\r\n`;
    const heads = await Promise.all(
      Array.from({ length: requests }, async () => {
        const c = await rawConnect(port);
        c.socket.write(flood);
        await Promise.race([c.closed, new Promise((r) => setTimeout(r, 10_000).unref())]);
        c.socket.destroy();
        return statusOf(c.received) === 431 && c.received.includes('TIDE_API_HEADERS_TOO_LARGE');
      }),
    );
    figures.headerFloodBytes = flood.length * requests;
    figures.headerFloods431 = heads.filter(Boolean).length;
    if (figures.headerFloods431 !== requests) problems.push(`${requests - figures.headerFloods431} of ${requests} 32 KiB heads were not answered 431 TIDE_API_HEADERS_TOO_LARGE`);

    // bodies: a declared 1 GiB body, and a chunked one streamed until the server stops it
    const declared = await rawConnect(port);
    declared.socket.write(`POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${2 ** 30}\r\n\r\n{"handler":"`);
    await Promise.race([until(() => statusOf(declared.received) !== 0, 10_000, 20), declared.closed]);
    figures.declaredBodyStatus = statusOf(declared.received);
    declared.socket.destroy();
    if (figures.declaredBodyStatus !== 413) problems.push(`a declared 1 GiB body was answered ${figures.declaredBodyStatus}, not 413`);

    const chunked = await rawConnect(port);
    chunked.socket.write('POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = `${(16 * 1024).toString(16)}\r\n${'b'.repeat(16 * 1024)}\r\n`;
    let sent = 0;
    // at most 64 MiB, stopping once the server answered
    while (statusOf(chunked.received) === 0 && chunked.closedAt === undefined && sent < 64 * 1024 * 1024) {
      if (!chunked.socket.write(chunk)) await new Promise((r) => { chunked.socket.once('drain', r); setTimeout(r, 200).unref(); });
      sent += 16 * 1024;
    }
    await Promise.race([until(() => statusOf(chunked.received) !== 0, 10_000, 20), chunked.closed]);
    figures.chunkedBodyStatus = statusOf(chunked.received);
    figures.chunkedBodyKiBSentBeforeAnswer = Math.round(sent / 1024);
    chunked.socket.destroy();
    if (figures.chunkedBodyStatus !== 413) problems.push(`a chunked body past the ${bodyLimit}-byte limit was answered ${figures.chunkedBodyStatus}, not 413`);

    if ((await post(api.url, '127.0.0.2')).status !== 202) problems.push('a normal request after the floods was not accepted');
  });
  return { problems, figures };
}

/**
 * Thousands of idle connections at a `tide api` process whose file descriptor limit is low:
 * the API holds what its limit allows, closes the excess at once, stays up, reaps the idle
 * ones at the header timeout, and then serves.
 */
export async function checkIdleConnections(databaseUrl: string, connections = 3_000): Promise<CheckResult> {
  const problems: string[] = [];
  const figures: Record<string, number> = {};
  const fileLimit = 512;
  const schema = `hostile_${randomBytes(5).toString('hex')}`;
  const port = await freePort();
  // `ulimit -n` lowers this child's soft limit only
  const child = spawn('sh', ['-c', `ulimit -n ${fileLimit} && exec "$0" "$@"`, process.execPath, TIDE_BIN, 'api', '--port', String(port), '--schema', schema, '--headers-timeout', '2000', '--rate-limit', '0'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const open: RawConnection[] = [];
  try {
    const up = await until(async () => (await request(`${url}/health`).catch(() => ({ status: 0 }))).status === 200, 30_000, 100);
    if (!up) throw new Error(`tide api did not answer /health within 30 s: ${stderr.slice(-600)}`);
    // clients already connected before the flood: their requests need database connections
    // (the pool opens them on demand), which need file descriptors of their own
    const regulars = await Promise.all(Array.from({ length: 12 }, () => rawConnect(port)));
    for (const r of regulars) {
      if ((await exchange(r, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')) !== 200) throw new Error('a regular client got no /health before the flood');
    }
    // open them in waves (bounded by the listen backlog), each left idle
    let refusedAtConnect = 0;
    for (let i = 0; i < connections; i += 250) {
      const wave = await Promise.allSettled(Array.from({ length: Math.min(250, connections - i) }, (_, k) => rawConnect(port, `127.0.1.${((i + k) % 250) + 1}`)));
      for (const r of wave) {
        if (r.status === 'fulfilled') open.push(r.value);
        else refusedAtConnect++;
      }
    }
    // the excess is closed by the server right away; the held ones stay until the header timeout
    await until(() => open.filter((c) => c.closedAt === undefined).length < connections, 2_000, 50);
    await new Promise((r) => setTimeout(r, 300));
    const held = open.filter((c) => c.closedAt === undefined).length;
    figures.idleConnectionsOpened = connections;
    figures.idleConnectionsHeld = held;
    figures.idleConnectionsClosedAtOnce = open.length - held + refusedAtConnect;
    figures.fileDescriptorLimit = fileLimit;
    const job = `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${JOB.length}\r\n\r\n${JOB}`;
    const during = await Promise.all(regulars.map((r) => exchange(r, job)));
    figures.regularRequestsServedDuringFlood = during.filter((st) => st === 202).length;
    if (figures.regularRequestsServedDuringFlood !== regulars.length) problems.push(`clients connected before the flood: ${figures.regularRequestsServedDuringFlood} of ${regulars.length} jobs accepted during it (answers: ${during.join(', ')})`);
    for (const r of regulars) r.socket.destroy();
    if (held >= fileLimit) problems.push(`the API held ${held} connections with a file descriptor limit of ${fileLimit}`);
    if (held === 0) problems.push('the API held no idle connection at all');
    if (child.exitCode !== null) problems.push(`the API exited under ${connections} idle connections: ${stderr.slice(-400)}`);
    // reaped at the header timeout: then a normal request is served
    const reaped = await until(() => open.every((c) => c.closedAt !== undefined), 10_000, 100);
    if (!reaped) problems.push(`${open.filter((c) => c.closedAt === undefined).length} idle connections were still open 10 s after the 2 s header timeout`);
    const after = await request(`${url}/health`).catch((err: Error) => ({ status: 0, code: err.message }));
    if (after.status !== 200) problems.push(`/health after the idle flood: ${after.status} ${after.code ?? ''}`);
    if (/EMFILE/.test(stderr)) problems.push(`the API ran out of file descriptors: ${stderr.slice(-300)}`);
  } catch (err) {
    problems.push(`idle connections: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    for (const c of open) c.socket.destroy();
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await dropSchema(databaseUrl, schema);
  }
  return { problems, figures };
}
