/**
 * One request carried to an upstream and its response back, over one or more attempts (a
 * retry after a connection error is another attempt, on another upstream). Both directions
 * move raw bytes: the head is rewritten once (hop-by-hop headers out, X-Forwarded-For/Proto
 * in) and the body passes through as it arrives, with backpressure both ways, never buffered
 * whole; a small response goes out in one write with its head.
 *
 * Retries: a request that fails with a connection error before any response byte reached the
 * client is tried on another upstream when replaying it is safe: idempotent methods whose body
 * (if any) was not sent yet, or any method when no connection was made.
 */
import type { Socket } from 'node:net';

import type { ErrorCode } from '../errors.js';
import { ChunkedScanner, Framing, MAX_RESPONSE_HEAD, type RequestHead, type ResponseHead, parseResponseHead } from './http1.js';
import type { ConnectionUser, OriginConnection } from './origin-pool.js';
import { HEAD_END, KEEP_ALIVE_LINES, errorBody, ownResponse } from './responses.js';
import type { Upstream, Upstreams } from './upstreams.js';

/** What an exchange needs of the balancer around it. */
export interface ProxyContext {
  readonly upstreams: Upstreams;
  /** Further upstreams to try after a connection failure. */
  readonly retries: number;
  /** An exchange with no progress either way for this long is ended (504, or cut off). */
  readonly upstreamTimeoutMs: number;
  readonly log: (line: string) => void;
}

/** The client connection an exchange answers on. */
export interface ExchangeClient {
  readonly ip: string;
  readonly socket: Socket;
  /** No more requests are read: the connection is ending. */
  closed: boolean;
  hold(reason: number): void;
  unhold(reason: number): void;
  exchangeDone(close: boolean): void;
}

/** Why a client socket is paused: the request body waits for the upstream. */
export const HOLD_BODY = 1;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Request body bytes held while no upstream connection is ready, before the client is paused. */
const MAX_PENDING_BODY = 64 * 1024;
/** Responses up to this size go out in one write with their head. */
const ONE_WRITE_BODY = 16 * 1024;

export class Exchange implements ConnectionUser {
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
   * came or the client drained); the sweep ends it after `this.ctx.upstreamTimeoutMs` without any.
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
    readonly client: ExchangeClient,
    readonly head: RequestHead,
    private readonly ctx: ProxyContext,
  ) {
    this.requestDone = head.framing === Framing.None;
    this.bodyLeft = head.length;
    this.chunks = head.framing === Framing.Chunked ? new ChunkedScanner() : null;
  }

  /** Try the request on the least busy upstream not tried yet. */
  start(): void {
    const u = this.ctx.upstreams.pick(this.tried);
    if (!u) {
      if (this.tried === null) {
        this.ctx.upstreams.totals.no_upstream++;
        this.fail('TIDE_LB_NO_UPSTREAM', 'No healthy upstream to send the request to.', { 'retry-after': '1' });
      } else {
        this.ctx.upstreams.totals.failures++;
        this.fail('TIDE_LB_UPSTREAM_FAILED', `Every upstream tried (${this.tried.map((t) => t.id).join(', ')}) failed to answer.`);
      }
      return;
    }
    this.u = u;
    u.inFlight++;
    u.requests++;
    this.ctx.upstreams.totals.requests++;
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
    this.closeClient = this.ctx.upstreams.closing || !h.keepAlive || !this.requestDone || response.framing === Framing.UntilClose || this.unwrap;
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
    if (!this.ctx.upstreams.closing && !u.removed) {
      u.failures++;
      this.ctx.upstreams.markDown(u, `${code}: ${message}`);
    }
    if (this.started) {
      this.cutOff(`upstream ${u.id} broke off its response: ${code}`);
      return;
    }
    const replayable = this.head.framing === Framing.None || !this.bodySent;
    const safe = IDEMPOTENT.has(this.head.method) || notSent;
    const attempt = this.tried === null ? 0 : this.tried.length;
    if (replayable && safe && attempt < this.ctx.retries && !this.ctx.upstreams.closing && !this.done) {
      this.ctx.upstreams.totals.retries++;
      (this.tried ??= []).push(u);
      this.response = null;
      this.responseBuf = null;
      this.start();
      return;
    }
    this.ctx.upstreams.totals.failures++;
    this.fail('TIDE_LB_UPSTREAM_FAILED', `Upstream ${u.id} failed: ${code}.`);
  }

  private invalidResponse(reason: string): void {
    const u = this.abandonAttempt()!;
    u.failures++;
    this.ctx.upstreams.totals.failures++;
    this.fail('TIDE_LB_UPSTREAM_FAILED', `Upstream ${u.id} sent an invalid response: ${reason}.`);
  }

  /** No progress within the upstream timeout (called by the sweep): 504 before the response head, a cut after. */
  timedOut(): void {
    if (this.done) return;
    this.ctx.upstreams.totals.failures++;
    if (this.started) {
      this.cutOff(`no progress for ${this.ctx.upstreamTimeoutMs} ms (a stalled upstream or a client that does not read)`);
      return;
    }
    const u = this.abandonAttempt()!;
    this.fail('TIDE_LB_UPSTREAM_TIMEOUT', `Upstream ${u.id} did not answer within ${this.ctx.upstreamTimeoutMs} ms.`);
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
    if (!this.done) this.ctx.log(`request ${this.head.method} ${this.head.target} cut off: ${reason}`);
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
      this.ctx.upstreams.settle(u);
    }
    return u;
  }
}

function uncork(socket: Socket): void {
  socket.uncork();
}
