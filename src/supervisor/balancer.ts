/**
 * The load balancer: an HTTP reverse proxy on one port in front of the API replicas.
 *
 * Design note. Each upstream (one API replica) has its own undici `Pool` of keep-alive
 * connections and moves through these states:
 *
 *   added (unhealthy, unless added healthy) --passes--> healthy --fails / connection error--> unhealthy
 *                       \______________________ drain / remove ______________________/
 *                                                   |
 *                                               draining --in flight reach 0 (or timeout)--> removed
 *
 * - Choice: least connections (fewest requests in flight) among healthy, non-draining
 *   upstreams; ties go round-robin from a cursor, so equal load spreads evenly.
 * - Active checks: every `intervalMs`, GET `healthPath` on a separate connection (a check must
 *   not queue behind the traffic it judges); `fails` consecutive failures mark an upstream
 *   down, `passes` consecutive passes mark it up. A new upstream is checked at once.
 * - Passive checks: a connection error (refused, reset, closed) marks an upstream down at
 *   once; only the active check brings it back.
 * - Retries: a request that fails with a connection error before any response byte is tried
 *   on another upstream when replaying it is safe: idempotent methods whose body (if any) was
 *   not read yet, or any method when the connection was never made (nothing was sent).
 * - Draining: no new requests; the drain resolves when the in-flight count reaches 0, or
 *   after `drainTimeoutMs`, when the stragglers are cut off.
 *
 * Speed: requests are forwarded with undici's `dispatch` and a plain handler object (the
 * callback protocol undici runs on natively, so no stream objects or header objects are
 * built per request); headers stay flat `[name, value, ...]` arrays end to end, and bodies
 * stream both ways with backpressure, never buffered.
 */
import { EventEmitter } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Agent, Pool } from 'undici';
import type { Dispatcher } from 'undici';

import { type ErrorCode, TideError } from '../errors.js';

export interface HealthCheckOptions {
  /** Time between checks of each upstream. Default 2000. */
  intervalMs: number;
  /** A check slower than this fails. Default 1000. */
  timeoutMs: number;
  /** Consecutive failed checks that mark an upstream down. Default 2. */
  fails: number;
  /** Consecutive passing checks that mark an upstream up. Default 1. */
  passes: number;
}

export interface RateLimitOptions {
  /** Tokens added per second to each client IP's bucket. */
  ratePerSecond: number;
  /** Bucket size. */
  burst: number;
}

export interface BalancerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Path the active health check GETs. Default /health. */
  healthPath?: string;
  healthCheck?: Partial<HealthCheckOptions>;
  /** Further upstreams to try after a connection failure. Default 2. */
  retries?: number;
  rateLimit?: RateLimitOptions;
  /** How long `drain`/`removeUpstream` waits for in-flight requests. Default 30000. */
  drainTimeoutMs?: number;
  /** Time to wait for an upstream's response headers. Default 60000. */
  upstreamTimeoutMs?: number;
  /** Keep-alive connections per upstream at most; more requests queue. Default 128. */
  connectionsPerUpstream?: number;
  /** One line per state change (upstream up/down, draining). */
  log?: (line: string) => void;
  /** Clock for the rate limiter; default Date.now. */
  now?: () => number;
}

export interface AddUpstreamOptions {
  /** Start healthy (the caller has checked it) instead of waiting for the first check. */
  healthy?: boolean;
}

/** One upstream in `stats()` and `GET /lb/stats`. */
export interface UpstreamStats {
  id: string;
  address: string;
  healthy: boolean;
  draining: boolean;
  in_flight: number;
  requests: number;
  failures: number;
}

export interface BalancerStats {
  upstreams: UpstreamStats[];
  totals: {
    upstreams: number;
    healthy: number;
    in_flight: number;
    requests: number;
    failures: number;
    retries: number;
    no_upstream: number;
    rate_limited: number;
  };
}

/** Events: `up` (id), `down` (id, reason), `draining` (id), `removed` (id). */
export interface Balancer {
  /** `http://host:port` the balancer listens on. */
  readonly url: string;
  readonly events: EventEmitter;
  /** Add (or re-point) an upstream; it gets traffic once healthy. */
  addUpstream(id: string, url: string, options?: AddUpstreamOptions): void;
  /** Drain, then forget the upstream and close its connections. Unknown ids resolve at once. */
  removeUpstream(id: string): Promise<void>;
  /** Stop sending new requests; resolves when those in flight are done (or the drain timeout). */
  drain(id: string): Promise<void>;
  /** Run one health check now; resolves to whether it passed. */
  checkHealth(id: string): Promise<boolean>;
  upstreams(): UpstreamStats[];
  stats(): BalancerStats;
  close(): Promise<void>;
}

interface Upstream {
  id: string;
  url: string;
  pool: Pool;
  healthy: boolean;
  draining: boolean;
  removed: boolean;
  inFlight: number;
  requests: number;
  failures: number;
  passes: number;
  fails: number;
  timer: NodeJS.Timeout | null;
  drained: Array<() => void>;
}

interface Bucket {
  tokens: number;
  at: number;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node answers `Expect: 100-continue` itself; undici refuses to send it.
  'expect',
]);

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Errors that mean the connection broke (the upstream is gone), not a slow answer. */
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);
/** Errors that mean no connection was made, so nothing of the request was sent. */
const NOT_SENT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

const MAX_BUCKETS = 10_000;

/** The exchange a response belongs to, for the shared listeners below. */
const kExchange = Symbol('exchange');
type ExchangeResponse = ServerResponse & { [kExchange]?: { clientClosed(): void; resumeResponse: (() => void) | null } };

function abortOnClose(this: ExchangeResponse): void {
  this[kExchange]?.clientClosed();
}

function resumeOnDrain(this: ExchangeResponse): void {
  this[kExchange]?.resumeResponse?.();
}

function errorCode(err: unknown): string {
  return (err as { code?: unknown } | null)?.code?.toString() ?? '';
}

/**
 * Start a load balancer listening on `host:port`.
 * @throws TideError TIDE_LB_LISTEN when the port cannot be bound.
 */
export async function createBalancer(options: BalancerOptions = {}): Promise<Balancer> {
  const host = options.host ?? '127.0.0.1';
  const healthPath = options.healthPath ?? '/health';
  const check: HealthCheckOptions = { intervalMs: 2000, timeoutMs: 1000, fails: 2, passes: 1, ...options.healthCheck };
  const retries = options.retries ?? 2;
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
  const connections = options.connectionsPerUpstream ?? 128;
  const log = options.log ?? (() => {});
  const now = options.now ?? Date.now;
  const limit = options.rateLimit;
  const events = new EventEmitter();

  const list: Upstream[] = [];
  const byId = new Map<string, Upstream>();
  let cursor = 0;
  const totals = { retries: 0, no_upstream: 0, rate_limited: 0, requests: 0, failures: 0 };
  const buckets = new Map<string, Bucket>();
  // Health checks on their own connections, so they never wait behind proxied traffic.
  const checker = new Agent({ connections: 2, keepAliveTimeout: Math.max(check.intervalMs * 2, 4000), connect: { timeout: check.timeoutMs } });
  let closing = false;

  // --- choosing an upstream

  /** Least in flight among usable upstreams, ties round-robin from the cursor. */
  function pick(tried: Upstream[] | null): Upstream | undefined {
    const n = list.length;
    let best: Upstream | undefined;
    let bestIndex = 0;
    for (let k = 0; k < n; k++) {
      const i = (cursor + k) % n;
      const u = list[i]!;
      if (!u.healthy || u.draining || (tried !== null && tried.includes(u))) continue;
      if (best === undefined || u.inFlight < best.inFlight) {
        best = u;
        bestIndex = i;
        if (u.inFlight === 0) break;
      }
    }
    if (best) cursor = (bestIndex + 1) % n;
    return best;
  }

  function markDown(u: Upstream, reason: string): void {
    u.passes = 0;
    if (!u.healthy) return;
    u.healthy = false;
    log(`upstream ${u.id} (${u.url}) down: ${reason}`);
    events.emit('down', u.id, reason);
  }

  function markUp(u: Upstream): void {
    if (u.healthy || u.removed) return;
    u.healthy = true;
    log(`upstream ${u.id} (${u.url}) up`);
    events.emit('up', u.id);
  }

  function settle(u: Upstream): void {
    u.inFlight--;
    if (u.inFlight === 0 && u.draining && u.drained.length > 0) {
      for (const resolve of u.drained.splice(0)) resolve();
    }
  }

  // --- proxying

  function sendError(res: ServerResponse, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const err = new TideError(code, message);
    const body = JSON.stringify({ error: err.toJSON() });
    res.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  /**
   * Request headers for the upstream (hop-by-hop removed, X-Forwarded-* added), and whether
   * the request has a body. One pass over `rawHeaders`: reading `req.headers` would make node
   * build a header object per request.
   */
  function forwardHeaders(req: IncomingMessage): { headers: string[]; hasBody: boolean } {
    const raw = req.rawHeaders;
    const out: string[] = [];
    let forwardedFor: string | undefined;
    let connection: string | undefined;
    let hasBody = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') connection = value.toLowerCase();
        else if (lower === 'transfer-encoding') hasBody = true;
        continue;
      }
      if (lower === 'x-forwarded-for') {
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      }
      if (lower === 'x-forwarded-proto') continue;
      if (lower === 'content-length' && value !== '0') hasBody = true;
      out.push(name, value);
    }
    const client = req.socket.remoteAddress ?? '';
    out.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`, 'x-forwarded-proto', 'http');
    if (connection !== undefined && connection !== 'keep-alive' && connection !== 'close') {
      // Headers the Connection header names are hop-by-hop too (RFC 9110 7.6.1). Rare: a second pass.
      const named = new Set(connection.split(',').map((token) => token.trim()));
      const kept: string[] = [];
      for (let i = 0; i < out.length; i += 2) {
        if (!named.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
      }
      return { headers: kept, hasBody };
    }
    return { headers: out, hasBody };
  }

  function responseHeaders(raw: Buffer[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1');
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      out.push(name, raw[i + 1]!.toString('latin1'));
    }
    return out;
  }

  /**
   * One attempt at forwarding a request, as an undici dispatch handler. A class (not closures)
   * because one is made per request: methods live on the prototype, and the 'close'/'drain'
   * listeners are shared functions that find their exchange on the response.
   */
  class Exchange implements Dispatcher.DispatchHandler {
    abortRequest: ((err?: Error) => void) | null = null;
    resumeResponse: (() => void) | null = null;
    started = false;
    done = false;
    clientGone = false;

    constructor(
      readonly req: IncomingMessage,
      readonly res: ServerResponse,
      readonly headers: string[],
      readonly hasBody: boolean,
      readonly tried: Upstream[] | null,
      readonly u: Upstream,
    ) {}

    onConnect(abort: (err?: Error) => void): void {
      this.abortRequest = abort;
      // The client left while the request waited for a connection: do not send it at all.
      if (this.clientGone) abort(new Error('client closed the connection'));
    }

    onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
      if (statusCode < 200) return true; // 1xx: the final answer follows
      this.resumeResponse = resume;
      // writeHead throws on a header node refuses; then nothing was sent and onError answers 502.
      this.res.writeHead(statusCode, responseHeaders(rawHeaders));
      this.started = true;
      return true;
    }

    onData(chunk: Buffer): boolean {
      if (this.res.write(chunk)) return true;
      // Our client is slower than the upstream: pause the upstream socket until it drains.
      this.res.once('drain', resumeOnDrain);
      return false;
    }

    onComplete(): void {
      this.finish();
      this.res.end();
    }

    onError(err: Error): void {
      this.finish();
      const { req, res, u, tried } = this;
      const code = errorCode(err);
      const broken = CONNECTION_ERRORS.has(code);
      if (broken && !closing) {
        u.failures++;
        markDown(u, `${code}: ${err.message}`);
      }
      if (this.started || res.destroyed || res.writableEnded) {
        res.destroy();
        return;
      }
      const replayable = !this.hasBody || !req.readableDidRead;
      const safe = IDEMPOTENT.has(req.method ?? 'GET') || NOT_SENT_ERRORS.has(code);
      const attempt = tried === null ? 0 : tried.length;
      if (broken && replayable && safe && attempt < retries && !closing) {
        totals.retries++;
        proxy(req, res, this.headers, this.hasBody, tried === null ? [u] : [...tried, u]);
        return;
      }
      totals.failures++;
      if (code === 'UND_ERR_HEADERS_TIMEOUT') {
        sendError(res, 'TIDE_LB_UPSTREAM_TIMEOUT', `Upstream ${u.id} did not answer within ${upstreamTimeoutMs} ms.`);
      } else {
        sendError(res, 'TIDE_LB_UPSTREAM_FAILED', `Upstream ${u.id} failed: ${code || err.message}.`);
      }
    }

    /** The client went away before the response finished: stop the upstream request too. */
    clientClosed(): void {
      this.clientGone = true;
      if (!this.done && this.abortRequest) this.abortRequest(new Error('client closed the connection'));
    }

    finish(): void {
      this.done = true;
      this.res.off('close', abortOnClose);
      this.res.off('drain', resumeOnDrain);
      settle(this.u);
    }
  }

  function proxy(req: IncomingMessage, res: ServerResponse, headers: string[], hasBody: boolean, tried: Upstream[] | null): void {
    const u = pick(tried);
    if (!u) {
      if (tried === null) {
        totals.no_upstream++;
        sendError(res, 'TIDE_LB_NO_UPSTREAM', 'No healthy upstream to send the request to.', { 'retry-after': '1' });
      } else {
        totals.failures++;
        sendError(res, 'TIDE_LB_UPSTREAM_FAILED', `Every upstream tried (${tried.map((t) => t.id).join(', ')}) failed to answer.`);
      }
      return;
    }
    u.inFlight++;
    u.requests++;
    totals.requests++;
    const exchange = new Exchange(req, res, headers, hasBody, tried, u);
    (res as ExchangeResponse)[kExchange] = exchange;
    res.on('close', abortOnClose);
    u.pool.dispatch(
      { origin: u.url, path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: hasBody ? req : null, headersTimeout: upstreamTimeoutMs },
      exchange,
    );
  }

  function rateLimited(req: IncomingMessage, res: ServerResponse): boolean {
    if (!limit) return false;
    const ip = req.socket.remoteAddress ?? '';
    const t = now();
    let bucket = buckets.get(ip);
    if (!bucket) {
      if (buckets.size >= MAX_BUCKETS) sweepBuckets(t);
      bucket = { tokens: limit.burst, at: t };
      buckets.set(ip, bucket);
    } else {
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((t - bucket.at) / 1000) * limit.ratePerSecond);
      bucket.at = t;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return false;
    }
    totals.rate_limited++;
    const wait = Math.max(1, Math.ceil((1 - bucket.tokens) / limit.ratePerSecond));
    sendError(res, 'TIDE_LB_RATE_LIMITED', `Too many requests from ${ip}: the limit is ${limit.ratePerSecond}/s (burst ${limit.burst}).`, { 'retry-after': String(wait) });
    return true;
  }

  /** Forget buckets that have refilled: they are the same as a new one. */
  function sweepBuckets(t: number): void {
    if (!limit) return;
    for (const [ip, b] of buckets) {
      if (b.tokens + ((t - b.at) / 1000) * limit.ratePerSecond >= limit.burst) buckets.delete(ip);
    }
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/lb/stats' && req.method === 'GET') {
      const body = JSON.stringify(stats());
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (rateLimited(req, res)) return;
    const { headers, hasBody } = forwardHeaders(req);
    proxy(req, res, headers, hasBody, null);
  }

  // --- health checks

  async function runCheck(u: Upstream): Promise<boolean> {
    let ok = false;
    let reason = '';
    try {
      const response = await checker.request({
        origin: u.url,
        path: healthPath,
        method: 'GET',
        headersTimeout: check.timeoutMs,
        bodyTimeout: check.timeoutMs,
        signal: AbortSignal.timeout(check.timeoutMs),
      });
      await response.body.dump();
      ok = response.statusCode >= 200 && response.statusCode < 300;
      if (!ok) reason = `health check answered ${response.statusCode}`;
    } catch (err) {
      reason = `health check failed: ${errorCode(err) || (err instanceof Error ? err.message : String(err))}`;
    }
    if (u.removed) return ok;
    if (ok) {
      u.fails = 0;
      u.passes++;
      if (u.passes >= check.passes) markUp(u);
    } else {
      u.passes = 0;
      u.fails++;
      if (u.fails >= check.fails) markDown(u, reason);
    }
    return ok;
  }

  function schedule(u: Upstream, delayMs: number): void {
    if (u.removed || closing) return;
    u.timer = setTimeout(() => {
      u.timer = null;
      void runCheck(u).finally(() => schedule(u, check.intervalMs));
    }, delayMs);
    u.timer.unref();
  }

  // --- upstream set

  function forget(u: Upstream): void {
    u.removed = true;
    if (u.timer) clearTimeout(u.timer);
    u.timer = null;
    const i = list.indexOf(u);
    if (i >= 0) list.splice(i, 1);
    if (byId.get(u.id) === u) byId.delete(u.id);
    if (cursor >= list.length) cursor = 0;
    for (const resolve of u.drained.splice(0)) resolve();
  }

  function drainUpstream(u: Upstream): Promise<void> {
    if (!u.draining) {
      u.draining = true;
      log(`upstream ${u.id} (${u.url}) draining (${u.inFlight} in flight)`);
      events.emit('draining', u.id);
    }
    if (u.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        log(`upstream ${u.id} still had ${u.inFlight} in flight after ${drainTimeoutMs} ms of draining`);
        resolve();
      }, drainTimeoutMs);
      timer.unref();
      u.drained.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async function removeUpstream(id: string): Promise<void> {
    const u = byId.get(id);
    if (!u) return;
    await drainUpstream(u);
    forget(u);
    events.emit('removed', id);
    // In-flight stragglers past the drain timeout are cut off here.
    await u.pool.destroy().catch(() => undefined);
  }

  function addUpstream(id: string, url: string, add: AddUpstreamOptions = {}): void {
    if (closing) throw new TideError('TIDE_LB_CLOSED', `The load balancer is closed; cannot add upstream ${id}.`);
    const origin = new URL(url).origin;
    const existing = byId.get(id);
    if (existing && existing.url === origin && !existing.draining) {
      if (add.healthy) markUp(existing);
      return;
    }
    if (existing) {
      // Re-pointed (a replica restarted on another port): the old address is gone.
      forget(existing);
      void existing.pool.destroy().catch(() => undefined);
    }
    const u: Upstream = {
      id,
      url: origin,
      pool: new Pool(origin, { connections, pipelining: 1, headersTimeout: upstreamTimeoutMs, keepAliveTimeout: 30_000 }),
      healthy: false,
      draining: false,
      removed: false,
      inFlight: 0,
      requests: 0,
      failures: 0,
      passes: 0,
      fails: 0,
      timer: null,
      drained: [],
    };
    list.push(u);
    byId.set(id, u);
    log(`upstream ${id} added at ${origin}`);
    if (add.healthy) markUp(u);
    schedule(u, add.healthy ? check.intervalMs : 0);
  }

  function upstreamStats(u: Upstream): UpstreamStats {
    return { id: u.id, address: u.url, healthy: u.healthy, draining: u.draining, in_flight: u.inFlight, requests: u.requests, failures: u.failures };
  }

  function stats(): BalancerStats {
    const upstreams = list.map(upstreamStats);
    return {
      upstreams,
      totals: {
        upstreams: upstreams.length,
        healthy: upstreams.filter((u) => u.healthy && !u.draining).length,
        in_flight: upstreams.reduce((n, u) => n + u.in_flight, 0),
        requests: totals.requests,
        failures: totals.failures,
        retries: totals.retries,
        no_upstream: totals.no_upstream,
        rate_limited: totals.rate_limited,
      },
    };
  }

  // --- the server

  const server: Server = createServer({ keepAliveTimeout: 65_000 }, onRequest);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new TideError('TIDE_LB_LISTEN', `The load balancer cannot listen on ${host}:${options.port ?? 8080}: ${err.code ?? err.message}.`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${shownHost}:${address.port}`,
    events,
    addUpstream,
    removeUpstream,
    drain: async (id) => {
      const u = byId.get(id);
      if (u) await drainUpstream(u);
    },
    checkHealth: async (id) => {
      const u = byId.get(id);
      if (!u) throw new TideError('TIDE_LB_UNKNOWN_UPSTREAM', `No upstream "${id}" in the load balancer.`);
      return runCheck(u);
    },
    upstreams: () => list.map(upstreamStats),
    stats,
    async close() {
      if (closing) return;
      closing = true;
      const all = [...list];
      for (const u of all) forget(u);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([closed, ...all.map((u) => u.pool.destroy().catch(() => undefined)), checker.destroy().catch(() => undefined)]);
    },
  };
}
