/**
 * One client connection: reads one request head at a time (http1.ts parses it strictly),
 * answers what the balancer answers itself (`GET /lb/stats`, the rate limit) and hands every
 * other request to an Exchange. Pipelined requests are served in order, one at a time: bytes
 * of the next request wait in `buf` until the response is done.
 */
import type { Socket } from 'node:net';

import type { ErrorCode } from '../errors.js';
import { type ProxyTrust, identifyClient } from '../net/client-identity.js';
import { type ExchangeClient, Exchange, HOLD_BODY, type ProxyContext } from './exchange.js';
import { Framing, MAX_REQUEST_HEAD, type RequestHead, parseRequestHead } from './http1.js';
import type { RateLimiter } from './rate-limit.js';
import { CLIENT_KEEP_ALIVE_MS, HEAD_END, errorBody, ownResponse } from './responses.js';
import type { BalancerStats } from './types.js';

/** What a client connection needs of the balancer around it. */
export interface ConnectionContext extends ProxyContext {
  readonly limiter: RateLimiter | null;
  readonly trust: ProxyTrust;
  stats(): BalancerStats;
}

/** A request head still incomplete after this long is refused with 408. */
const HEADERS_TIMEOUT_MS = 60_000;
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Why a client socket is paused (beside HOLD_BODY): a pipelined request waits its turn. */
const HOLD_PIPELINED = 2;

export class ClientConnection implements ExchangeClient {
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

  constructor(
    readonly socket: Socket,
    private readonly ctx: ConnectionContext,
  ) {
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
      this.answer(ownResponse(200, JSON.stringify(this.ctx.stats()), { 'cache-control': 'no-store' }, close), close);
      return;
    }
    const limiter = this.ctx.limiter;
    const client = limiter ? identifyClient({ peer: this.ip, headers: { [this.ctx.trust.header]: this.ctx.trust.header === 'forwarded' ? head.forwarded : head.forwardedFor } }, this.ctx.trust) : undefined;
    const wait = client ? limiter!.wait(client.id) : 0;
    if (wait > 0) {
      const { status, body } = errorBody('TIDE_LB_RATE_LIMITED', `Too many requests from ${client!.address}: the limit is ${limiter!.limit.ratePerSecond}/s (burst ${limiter!.limit.burst}).`);
      this.answer(ownResponse(status, body, { 'retry-after': String(wait) }, close), close);
      return;
    }
    const x = new Exchange(this, head, this.ctx);
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
      if (t - x.lastProgress >= this.ctx.upstreamTimeoutMs) x.timedOut();
    } else if (this.headSince > 0 && t - this.headSince >= HEADERS_TIMEOUT_MS) {
      this.refuse('TIDE_LB_REQUEST_TIMEOUT', `The request head did not arrive within ${HEADERS_TIMEOUT_MS / 1000} s.`);
    } else if (t - this.lastActive >= CLIENT_KEEP_ALIVE_MS) {
      this.socket.destroy();
    }
  }
}
