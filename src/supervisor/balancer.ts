/**
 * The load balancer: an HTTP/1.1 reverse proxy on one port in front of the API replicas.
 *
 * Design note. Each upstream (one API replica) has its own pool of keep-alive connections
 * (origin-pool.ts) and moves through these states:
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
 * - Retries: a request that fails with a connection error before any response byte reached
 *   the client is tried on another upstream when replaying it is safe: idempotent methods
 *   whose body (if any) was not sent yet, or any method when no connection was made.
 * - Draining: no new requests; the drain resolves when the in-flight count reaches 0, or
 *   after `drainTimeoutMs`, when the stragglers are cut off.
 *
 * The proxy path. A client connection (`ClientConnection`) reads one request head at a time
 * (http1.ts parses it strictly), and an `Exchange` carries that request to an upstream
 * connection and its response back. Both directions move raw bytes: the head is rewritten
 * once (hop-by-hop headers out, X-Forwarded-For/Proto in) and the body passes through as it
 * arrives, with backpressure both ways, never buffered whole; a small response goes out in
 * one write with its head. node:http and a general HTTP client each cost more per request
 * than the whole proxy does here (bench/README.md has the figures). Pipelined requests are
 * served in order, one at a time. Timeouts (an exchange with no progress either way, client
 * idle and slow heads) are enforced by one sweep, not a timer per request.
 */
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';

import { Agent } from 'undici';

import { type ErrorCode, TideError } from '../errors.js';
import { type TrustOptions, identifyClient, proxyTrust } from '../net/client-identity.js';
import { ChunkedScanner, Framing, MAX_REQUEST_HEAD, MAX_RESPONSE_HEAD, type RequestHead, type ResponseHead, parseRequestHead, parseResponseHead } from './http1.js';
import { type ConnectionUser, type OriginConnection, OriginPool } from './origin-pool.js';

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
  /** Tokens added per second to each client's bucket (a client: src/net/client-identity.ts). */
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
  /** Proxies in front whose forwarded header names the client the rate limit counts. Default: none (the socket's address). */
  trust?: TrustOptions;
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
  /** One upstream's state for `tide ps`; null for an unknown id. */
  upstreamState(id: string): 'in-rotation' | 'out' | 'draining' | null;
  stats(): BalancerStats;
  close(): Promise<void>;
}

interface Upstream {
  id: string;
  url: string;
  pool: OriginPool;
  /** `host:port`, for a request that came without a Host header (HTTP/1.0). */
  authority: string;
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

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

const MAX_BUCKETS = 10_000;

function errorCode(err: unknown): string {
  return (err as { code?: unknown } | null)?.code?.toString() ?? '';
}
/** A client's keep-alive connection is closed after this long idle (and told so in Keep-Alive). */
const CLIENT_KEEP_ALIVE_MS = 65_000;
/** A request head still incomplete after this long is refused with 408. */
const HEADERS_TIMEOUT_MS = 60_000;
/** Request body bytes held while no upstream connection is ready, before the client is paused. */
const MAX_PENDING_BODY = 64 * 1024;
/** Responses up to this size go out in one write with their head. */
const ONE_WRITE_BODY = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const KEEP_ALIVE_LINES = `connection: keep-alive\r\nkeep-alive: timeout=${CLIENT_KEEP_ALIVE_MS / 1000}\r\n\r\n`;
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
// Why a client socket is paused: a bit each, resumed when none is left.
const HOLD_BODY = 1;
const HOLD_PIPELINED = 2;

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
  const trust = proxyTrust(options.trust);
  const events = new EventEmitter();

  const list: Upstream[] = [];
  const byId = new Map<string, Upstream>();
  let cursor = 0;
  const totals = { retries: 0, no_upstream: 0, rate_limited: 0, requests: 0, failures: 0 };
  const buckets = new Map<string, Bucket>();
  const clients = new Set<ClientConnection>();
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

  /** A response the balancer writes itself: JSON, as the API's errors are. */
  function ownResponse(status: number, body: string, headers: Record<string, string>, close: boolean): string {
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    return `${head}${close ? 'connection: close\r\n\r\n' : KEEP_ALIVE_LINES}${body}`;
  }

  function errorBody(code: ErrorCode, message: string): { status: number; body: string } {
    const err = new TideError(code, message);
    return { status: err.status, body: JSON.stringify({ error: err.toJSON() }) };
  }

  /**
   * One client connection: reads request heads one at a time and hands each request to an
   * Exchange; bytes of a pipelined next request wait in `buf` until the response is done.
   */
  class ClientConnection {
    readonly ip: string;
    buf: Buffer | null = null;
    exchange: Exchange | null = null;
    /** No more requests are read: the connection is ending. */
    closed = false;
    lastActive = Date.now();
    /** When the first bytes of a still incomplete head came (0: none waiting). */
    headSince = 0;
    private holds = 0;
    private reading = false;

    constructor(readonly socket: Socket) {
      this.ip = socket.remoteAddress ?? '';
    }

    onData(chunk: Buffer): void {
      if (this.closed) return;
      this.lastActive = Date.now();
      const x = this.exchange;
      if (x !== null && !x.requestDone) {
        const used = x.takeBody(chunk, 0, chunk.length);
        if (used < 0 || used === chunk.length) return;
        chunk = chunk.subarray(used);
      }
      this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
      if (this.exchange === null) this.readRequests();
      else if (this.buf.length > MAX_REQUEST_HEAD) this.hold(HOLD_PIPELINED);
    }

    /** Start the next request in `buf`, and the ones after it that complete at once. */
    readRequests(): void {
      if (this.reading) return; // a request ended while this loop started it: the loop goes on
      this.reading = true;
      try {
        while (this.buf !== null && this.exchange === null && !this.closed) {
          const buf = this.buf;
          let start = 0;
          // Empty lines before a request line are ignored (RFC 9112 2.2).
          while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
          const end = buf.indexOf(HEAD_END, start);
          if (end < 0 || end + 4 - start > MAX_REQUEST_HEAD) {
            if (buf.length - start > MAX_REQUEST_HEAD) {
              this.refuse('TIDE_LB_HEAD_TOO_LARGE', `The request head is larger than ${MAX_REQUEST_HEAD} bytes.`);
              return;
            }
            this.buf = start === buf.length ? null : buf.subarray(start);
            if (this.headSince === 0) this.headSince = Date.now();
            return;
          }
          this.headSince = 0;
          const head = parseRequestHead(buf.toString('latin1', start, end + 4));
          if (typeof head === 'string') {
            this.refuse('TIDE_LB_BAD_REQUEST', `Bad request: ${head}.`);
            return;
          }
          this.buf = end + 4 < buf.length ? buf.subarray(end + 4) : null;
          this.serve(head);
          const x = this.exchange as Exchange | null;
          if (x !== null && !x.requestDone && this.buf !== null) {
            const rest: Buffer = this.buf;
            this.buf = null;
            const used = x.takeBody(rest, 0, rest.length);
            if (used >= 0 && used < rest.length) this.buf = rest.subarray(used);
          }
        }
      } finally {
        this.reading = false;
        // Whichever way the loop ended (a request started, a head incomplete), read on once
        // what waits here is small again.
        if (this.buf === null || this.buf.length <= MAX_REQUEST_HEAD) this.unhold(HOLD_PIPELINED);
      }
    }

    private serve(head: RequestHead): void {
      // A request answered here with its body unread ends the connection: the body is not read.
      const close = !head.keepAlive || head.framing !== Framing.None;
      if (head.target === '/lb/stats' && head.method === 'GET') {
        this.answer(ownResponse(200, JSON.stringify(stats()), { 'cache-control': 'no-store' }, close), close);
        return;
      }
      const client = limit ? identifyClient({ peer: this.ip, headers: { [trust.header]: trust.header === 'forwarded' ? head.forwarded : head.forwardedFor } }, trust) : undefined;
      const wait = client ? rateLimitWait(client.id) : 0;
      if (wait > 0) {
        const { status, body } = errorBody('TIDE_LB_RATE_LIMITED', `Too many requests from ${client!.address}: the limit is ${limit!.ratePerSecond}/s (burst ${limit!.burst}).`);
        this.answer(ownResponse(status, body, { 'retry-after': String(wait) }, close), close);
        return;
      }
      const x = new Exchange(this, head);
      this.exchange = x;
      if (head.expectContinue && head.minor === 1 && head.framing !== Framing.None) this.socket.write(CONTINUE, 'latin1');
      x.start();
    }

    answer(response: string, close: boolean): void {
      this.socket.write(response);
      if (close) this.end();
    }

    /** Refuse what the client sent (status from the code) and close the connection. */
    refuse(code: ErrorCode, message: string): void {
      const { status, body } = errorBody(code, message);
      this.answer(ownResponse(status, body, {}, true), true);
    }

    /** The exchange is over (its response written, or given up). */
    exchangeDone(close: boolean): void {
      this.exchange = null;
      this.unhold(HOLD_BODY);
      if (close) {
        this.end();
        return;
      }
      this.lastActive = Date.now();
      if (this.buf !== null) this.readRequests();
    }

    end(): void {
      this.closed = true;
      this.buf = null;
      this.socket.end();
      // Read on (and drop) whatever still comes, so the client's own close is seen.
      this.holds = 0;
      this.socket.resume();
    }

    hold(reason: number): void {
      if (this.holds === 0) this.socket.pause();
      this.holds |= reason;
    }

    unhold(reason: number): void {
      if ((this.holds & reason) === 0) return;
      this.holds &= ~reason;
      if (this.holds === 0) this.socket.resume();
    }

    /** Enforce the timeouts (called by the sweep). */
    sweep(t: number): void {
      const x = this.exchange;
      if (x !== null) {
        if (t - x.lastProgress >= upstreamTimeoutMs) x.timedOut();
      } else if (this.headSince > 0 && t - this.headSince >= HEADERS_TIMEOUT_MS) {
        this.refuse('TIDE_LB_REQUEST_TIMEOUT', `The request head did not arrive within ${HEADERS_TIMEOUT_MS / 1000} s.`);
      } else if (t - this.lastActive >= CLIENT_KEEP_ALIVE_MS) {
        this.socket.destroy();
      }
    }
  }

  /**
   * One request carried to an upstream and its response back, over one or more attempts
   * (a retry after a connection error is another attempt, on another upstream). It is the
   * user of the upstream connection it holds (origin-pool.ts calls it).
   */
  class Exchange implements ConnectionUser {
    /** The upstream of the current attempt; null between attempts and once settled. */
    u: Upstream | null = null;
    tried: Upstream[] | null = null;
    conn: OriginConnection | null = null;
    /** The whole request body was read from the client. */
    requestDone: boolean;
    bodyLeft: number;
    readonly chunks: ChunkedScanner | null;
    /** Body bytes read before an upstream connection was ready. */
    pending: Buffer[] | null = null;
    pendingBytes = 0;
    bodySent = false;
    /**
     * The last time the exchange moved (the attempt began, body bytes went up, response bytes
     * came or the client drained); the sweep ends it after `upstreamTimeoutMs` without any.
     */
    lastProgress = 0;
    response: ResponseHead | null = null;
    responseBuf: Buffer | null = null;
    responseLeft = 0;
    responseChunks: ChunkedScanner | null = null;
    /** A chunked response to an HTTP/1.0 client goes out as plain data. */
    unwrap = false;
    /** The response head reached the client: the exchange can no longer be retried or answered. */
    started = false;
    closeClient = false;
    done = false;
    upstreamPaused = false;

    constructor(
      readonly client: ClientConnection,
      readonly head: RequestHead,
    ) {
      this.requestDone = head.framing === Framing.None;
      this.bodyLeft = head.length;
      this.chunks = head.framing === Framing.Chunked ? new ChunkedScanner() : null;
    }

    /** Try the request on the least busy upstream not tried yet. */
    start(): void {
      const u = pick(this.tried);
      if (!u) {
        if (this.tried === null) {
          totals.no_upstream++;
          this.fail('TIDE_LB_NO_UPSTREAM', 'No healthy upstream to send the request to.', { 'retry-after': '1' });
        } else {
          totals.failures++;
          this.fail('TIDE_LB_UPSTREAM_FAILED', `Every upstream tried (${this.tried.map((t) => t.id).join(', ')}) failed to answer.`);
        }
        return;
      }
      this.u = u;
      u.inFlight++;
      u.requests++;
      totals.requests++;
      // The upstream timeout counts from here: a wait for a free connection is part of it.
      this.lastProgress = Date.now();
      u.pool.acquire(this);
    }

    /**
     * Request body bytes from the client, in `buf[start, end)`. Returns where the body ended in
     * it (bytes past that belong to the next request), or -1 when the body was malformed.
     */
    takeBody(buf: Buffer, start: number, end: number): number {
      let stop: number;
      if (this.chunks !== null) {
        stop = this.chunks.scan(buf, start, end);
        if (stop < 0) {
          this.badBody(this.chunks.error ?? 'malformed chunked body');
          return -1;
        }
        if (this.chunks.done) this.requestDone = true;
      } else {
        stop = Math.min(end, start + this.bodyLeft);
        this.bodyLeft -= stop - start;
        if (this.bodyLeft === 0) this.requestDone = true;
      }
      if (stop > start && !this.done) this.forwardBody(start === 0 && stop === buf.length ? buf : buf.subarray(start, stop));
      return stop;
    }

    private forwardBody(bytes: Buffer): void {
      this.lastProgress = Date.now();
      if (this.conn !== null) {
        this.bodySent = true;
        if (!this.conn.socket.write(bytes)) this.client.hold(HOLD_BODY);
        return;
      }
      (this.pending ??= []).push(bytes);
      this.pendingBytes += bytes.length;
      if (this.pendingBytes > MAX_PENDING_BODY) this.client.hold(HOLD_BODY);
    }

    // --- the upstream connection (ConnectionUser)

    onConnection(conn: OriginConnection): void {
      if (this.done) {
        conn.pool.release(conn); // ended while it waited (the pool cancels most such waits)
        return;
      }
      this.conn = conn;
      const h = this.head;
      const client = this.client.ip;
      const upstreamHead = `${h.method} ${h.target} HTTP/1.1\r\n${h.lines}${h.hasHost ? '' : `host: ${this.u!.authority}\r\n`}x-forwarded-for: ${h.forwardedFor === undefined ? client : `${h.forwardedFor}, ${client}`}\r\nx-forwarded-proto: http\r\n\r\n`;
      const socket = conn.socket;
      if (this.pending === null) {
        // a body read with the head (the usual small POST) follows in this same turn: one write for both
        if (!this.requestDone) {
          socket.cork();
          process.nextTick(uncork, socket);
        }
        socket.write(upstreamHead, 'latin1');
        return;
      }
      socket.cork();
      socket.write(upstreamHead, 'latin1');
      for (const bytes of this.pending) socket.write(bytes);
      socket.uncork();
      this.pending = null;
      this.pendingBytes = 0;
      this.bodySent = true;
      if (socket.writableNeedDrain) this.client.hold(HOLD_BODY);
      else this.client.unhold(HOLD_BODY);
    }

    onConnectError(err: NodeJS.ErrnoException): void {
      this.conn = null;
      this.broken(err.code ?? 'ECONNREFUSED', err.message, true);
    }

    onUpstreamData(chunk: Buffer): void {
      if (this.response === null) this.responseHead(chunk);
      else {
        this.lastProgress = Date.now();
        this.responseBody(chunk, 0, chunk.length);
      }
    }

    onUpstreamEnd(): void {
      // A body delimited by the connection's close is complete.
      if (this.response?.framing === Framing.UntilClose && !this.done) this.complete();
    }

    onUpstreamClose(err: NodeJS.ErrnoException | undefined): void {
      this.conn = null;
      if (this.done) return;
      if (this.response?.framing === Framing.UntilClose && err === undefined) {
        this.complete();
        return;
      }
      this.broken(err?.code ?? 'ECONNRESET', err?.message ?? 'the upstream closed the connection', false);
    }

    onUpstreamDrain(): void {
      this.client.unhold(HOLD_BODY);
    }

    /** The client's socket drained: let the upstream's bytes flow again. */
    resumeUpstream(): void {
      if (!this.upstreamPaused) return;
      this.lastProgress = Date.now();
      this.upstreamPaused = false;
      this.conn?.socket.resume();
    }

    // --- the response

    private responseHead(chunk: Buffer): void {
      let buf = this.responseBuf === null ? chunk : Buffer.concat([this.responseBuf, chunk]);
      for (;;) {
        const end = buf.indexOf(HEAD_END);
        if (end < 0) {
          if (buf.length > MAX_RESPONSE_HEAD) this.invalidResponse(`its response head is larger than ${MAX_RESPONSE_HEAD} bytes`);
          else this.responseBuf = Buffer.from(buf); // a copy: the read buffer is reused (and this is rare)
          return;
        }
        const parsed = parseResponseHead(buf.toString('latin1', 0, end + 4), this.head.method);
        if (typeof parsed === 'string') {
          this.invalidResponse(parsed);
          return;
        }
        if (parsed.status === 101) {
          this.invalidResponse('it switched protocols, which the balancer never asks for');
          return;
        }
        if (parsed.status < 200) {
          // 1xx: the final answer follows.
          buf = buf.subarray(end + 4);
          this.responseBuf = null;
          if (buf.length === 0) return;
          continue;
        }
        this.responseBuf = null;
        this.sendHead(parsed, buf, end + 4);
        return;
      }
    }

    private sendHead(response: ResponseHead, buf: Buffer, bodyStart: number): void {
      this.response = response;
      if (response.keepAliveHintMs !== undefined) this.conn?.keepAliveHint(response.keepAliveHintMs);
      const h = this.head;
      const chunked = response.framing === Framing.Chunked;
      this.unwrap = chunked && h.minor === 0;
      this.closeClient = closing || !h.keepAlive || !this.requestDone || response.framing === Framing.UntilClose || this.unwrap;
      let text = `HTTP/1.1 ${response.statusText}\r\n${response.lines}`;
      if (chunked && !this.unwrap) text += `transfer-encoding: ${response.transferEncoding}\r\n`;
      text += this.closeClient ? 'connection: close\r\n\r\n' : KEEP_ALIVE_LINES;
      this.started = true;
      const socket = this.client.socket;
      if (response.framing === Framing.None) {
        socket.write(text, 'latin1');
        if (bodyStart < buf.length) response.keepAlive = false; // bytes after a body-less answer
        this.complete();
        return;
      }
      if (response.framing === Framing.Length && buf.length - bodyStart === response.length && response.length <= ONE_WRITE_BODY) {
        // The usual small answer: head and whole body in one write.
        const out = Buffer.allocUnsafe(text.length + response.length);
        out.write(text, 0, 'latin1');
        buf.copy(out, text.length, bodyStart);
        socket.write(out);
        this.complete();
        return;
      }
      // The body still streams: the no-progress timeout watches it from here.
      this.lastProgress = Date.now();
      this.responseLeft = response.length;
      this.responseChunks = chunked ? new ChunkedScanner() : null;
      socket.write(text, 'latin1');
      if (bodyStart < buf.length) this.responseBody(buf, bodyStart, buf.length);
    }

    private responseBody(buf: Buffer, start: number, end: number): void {
      const response = this.response!;
      if (response.framing === Framing.Length) {
        const stop = Math.min(end, start + this.responseLeft);
        this.responseLeft -= stop - start;
        this.send(buf, start, stop);
        if (stop < end) response.keepAlive = false; // more than it announced: out of step
        if (this.responseLeft === 0) this.complete();
        return;
      }
      if (response.framing === Framing.Chunked) {
        const scanner = this.responseChunks!;
        const stop = this.unwrap ? scanner.scan(buf, start, end, (from, to) => this.send(buf, from, to)) : scanner.scan(buf, start, end);
        if (stop < 0) {
          this.cutOff(`upstream ${this.u?.id} sent a malformed chunked body: ${scanner.error}`);
          return;
        }
        if (!this.unwrap) this.send(buf, start, stop);
        if (scanner.done) {
          if (stop < end) response.keepAlive = false;
          this.complete();
        }
        return;
      }
      this.send(buf, start, end);
    }

    /** Write `buf[start, end)` to the client; a copy, since upstream bytes sit in a reused buffer. */
    private send(buf: Buffer, start: number, end: number): void {
      if (end <= start) return;
      if (!this.client.socket.write(Buffer.from(buf.subarray(start, end))) && !this.upstreamPaused && this.conn !== null) {
        // Our client is slower than the upstream: pause the upstream socket until it drains.
        this.upstreamPaused = true;
        this.conn.socket.pause();
      }
    }

    // --- endings

    /** The response is complete: the upstream connection goes back to its pool if it can. */
    private complete(): void {
      this.done = true;
      const u = this.u!;
      const conn = this.conn;
      this.conn = null;
      if (conn !== null) {
        if (this.upstreamPaused) conn.socket.resume();
        if (this.response!.keepAlive && this.requestDone) u.pool.release(conn);
        else u.pool.discard(conn);
      }
      this.settleAttempt();
      this.client.exchangeDone(this.closeClient || !this.requestDone);
    }

    /** The attempt's connection failed before the exchange finished: retry, answer 502, or cut off. */
    private broken(code: string, message: string, notSent: boolean): void {
      const u = this.settleAttempt();
      if (u === null) return;
      if (!closing && !u.removed) {
        u.failures++;
        markDown(u, `${code}: ${message}`);
      }
      if (this.started) {
        this.cutOff(`upstream ${u.id} broke off its response: ${code}`);
        return;
      }
      const replayable = this.head.framing === Framing.None || !this.bodySent;
      const safe = IDEMPOTENT.has(this.head.method) || notSent;
      const attempt = this.tried === null ? 0 : this.tried.length;
      if (replayable && safe && attempt < retries && !closing && !this.done) {
        totals.retries++;
        (this.tried ??= []).push(u);
        this.response = null;
        this.responseBuf = null;
        this.start();
        return;
      }
      totals.failures++;
      this.fail('TIDE_LB_UPSTREAM_FAILED', `Upstream ${u.id} failed: ${code}.`);
    }

    private invalidResponse(reason: string): void {
      const u = this.abandonAttempt()!;
      u.failures++;
      totals.failures++;
      this.fail('TIDE_LB_UPSTREAM_FAILED', `Upstream ${u.id} sent an invalid response: ${reason}.`);
    }

    /** No progress within the upstream timeout (called by the sweep): 504 before the response head, a cut after. */
    timedOut(): void {
      if (this.done) return;
      totals.failures++;
      if (this.started) {
        this.cutOff(`no progress for ${upstreamTimeoutMs} ms (a stalled upstream or a client that does not read)`);
        return;
      }
      const u = this.abandonAttempt()!;
      this.fail('TIDE_LB_UPSTREAM_TIMEOUT', `Upstream ${u.id} did not answer within ${upstreamTimeoutMs} ms.`);
    }

    /** The client sent a malformed chunked body. */
    private badBody(reason: string): void {
      this.abandonAttempt();
      if (this.started) this.cutOff(reason);
      else this.fail('TIDE_LB_BAD_REQUEST', `Bad request: ${reason}.`);
    }

    /** Answer the client with an error of the balancer's own, unless it is gone. */
    private fail(code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
      if (this.done) return;
      this.done = true;
      const close = !this.head.keepAlive || !this.requestDone;
      const { status, body } = errorBody(code, message);
      this.client.socket.write(ownResponse(status, body, headers, close));
      this.client.exchangeDone(close);
    }

    /**
     * The response broke off after its head went out: all the client can be told is a reset
     * connection (a plain close would pass for the end of a body delimited by the close).
     */
    private cutOff(reason: string): void {
      this.abandonAttempt();
      if (!this.done) log(`request ${this.head.method} ${this.head.target} cut off: ${reason}`);
      this.done = true;
      this.client.closed = true;
      this.client.socket.resetAndDestroy();
    }

    /** The client went away: stop the upstream request too. */
    clientGone(): void {
      if (this.done) return;
      this.done = true;
      this.abandonAttempt();
    }

    /**
     * Let go of the current attempt, if any: close its connection (its state is unknown) or
     * leave the pool's queue, and end its count in flight. Returns its upstream.
     */
    private abandonAttempt(): Upstream | null {
      const u = this.u;
      if (u !== null) {
        if (this.conn !== null) u.pool.discard(this.conn);
        else u.pool.cancel(this);
      }
      this.conn = null;
      return this.settleAttempt();
    }

    /** End the current attempt's count in flight (once). */
    private settleAttempt(): Upstream | null {
      const u = this.u;
      if (u !== null) {
        this.u = null;
        settle(u);
      }
      return u;
    }
  }

  /** Seconds to wait before this client may send again, or 0 when it may now. */
  function rateLimitWait(clientId: string): number {
    if (!limit) return 0;
    const t = now();
    let bucket = buckets.get(clientId);
    if (!bucket) {
      if (buckets.size >= MAX_BUCKETS) sweepBuckets(t);
      bucket = { tokens: limit.burst, at: t };
      buckets.set(clientId, bucket);
    } else {
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((t - bucket.at) / 1000) * limit.ratePerSecond);
      bucket.at = t;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    totals.rate_limited++;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.ratePerSecond));
  }

  /** Forget buckets that have refilled: they are the same as a new one. */
  function sweepBuckets(t: number): void {
    if (!limit) return;
    for (const [ip, b] of buckets) {
      if (b.tokens + ((t - b.at) / 1000) * limit.ratePerSecond >= limit.burst) buckets.delete(ip);
    }
  }

  function onConnection(socket: Socket): void {
    if (closing) {
      socket.destroy();
      return;
    }
    const client = new ClientConnection(socket);
    clients.add(client);
    socket.on('data', (chunk: Buffer) => client.onData(chunk));
    socket.on('drain', () => client.exchange?.resumeUpstream());
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      client.closed = true;
      clients.delete(client);
      client.exchange?.clientGone();
    });
  }

  /** Timeouts and idle upstream connections, checked on one timer rather than one per request. */
  function sweep(): void {
    const t = Date.now();
    for (const client of clients) client.sweep(t);
    for (const u of list) u.pool.sweep();
  }
  const sweeper = setInterval(sweep, Math.max(10, Math.min(1000, upstreamTimeoutMs / 4)));
  sweeper.unref();

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
    await u.pool.destroy();
  }

  function addUpstream(id: string, url: string, add: AddUpstreamOptions = {}): void {
    if (closing) throw new TideError('TIDE_LB_CLOSED', `The load balancer is closed; cannot add upstream ${id}.`);
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:') throw new TideError('TIDE_LB_UPSTREAM_URL', `Upstream ${id} is at ${url}; the balancer forwards to http:// addresses only.`);
    const origin = parsed.origin;
    const existing = byId.get(id);
    if (existing && existing.url === origin && !existing.draining) {
      if (add.healthy) markUp(existing);
      return;
    }
    if (existing) {
      // Re-pointed (a replica restarted on another port): the old address is gone.
      forget(existing);
      void existing.pool.destroy();
    }
    const port = Number(parsed.port || 80);
    const u: Upstream = {
      id,
      url: origin,
      pool: new OriginPool(parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port, connections),
      authority: parsed.host,
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

  const server: Server = createServer({ noDelay: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      clearInterval(sweeper);
      const port = options.port ?? 8080;
      const where = { field: 'balancer.port' };
      reject(
        err.code === 'EADDRINUSE'
          ? new TideError(
              'TIDE_LB_PORT_IN_USE',
              `The load balancer's port ${host}:${port} is in use by another process; stop that process (\`ss -ltnp 'sport = :${port}'\` names it) or set balancer.port in tide.yaml to a free port (0 picks one).`,
              { cause: err, where },
            )
          : new TideError(
              'TIDE_LB_LISTEN',
              `The load balancer cannot listen on ${host}:${port}: ${err.code ?? err.message}${err.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE; set balancer.port to 1024 or above)' : ''}.`,
              { cause: err, where },
            ),
      );
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
    upstreamState: (id) => {
      const u = byId.get(id);
      return !u ? null : u.draining ? 'draining' : u.healthy ? 'in-rotation' : 'out';
    },
    stats,
    async close() {
      if (closing) return;
      closing = true;
      const all = [...list];
      for (const u of all) forget(u);
      clearInterval(sweeper);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const client of clients) client.socket.destroy();
      await Promise.all([closed, ...all.map((u) => u.pool.destroy()), checker.destroy().catch(() => undefined)]);
    },
  };
}

function uncork(socket: Socket): void {
  socket.uncork();
}
