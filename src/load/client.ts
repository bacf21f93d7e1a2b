/**
 * A lean HTTP/1.1 client for plain-http load: keep-alive sockets, one request outstanding per
 * socket, requests queued FIFO when every socket is busy, and a response parser that reads
 * only what a load test needs (status, Content-Length or chunked framing, Connection: close)
 * and skips the body. It exists because a load generator's own cost per request caps the rate
 * it can offer: undici's request() builds a stream and a few promises per response, and this
 * does a buffer write and an index search (bench/load.ts compares them with wrk and
 * autocannon). HTTPS goes through undici instead (engine.ts).
 *
 * States of a connection: connecting -> idle <-> busy (one request) -> closed. A socket that
 * errors or closes fails its request (the error's code, such as ECONNREFUSED or ECONNRESET)
 * and is dropped; the next request opens a new one. A request fails with TIMEOUT when its
 * socket is silent for `timeoutMs`.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/** Called once per request: the status (0 on failure), the error's name, and when the request was written to its socket (performance.now(); 0 if never). */
export type Done = (status: number, error: string | undefined, writtenAt: number) => void;

interface Request {
  bytes: Buffer;
  head: boolean;
  done: Done;
  writtenAt: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

class Connection {
  readonly socket: net.Socket;
  current: Request | undefined;
  // parser state for the current response
  private buf: Buffer | undefined;
  private status = 0;
  private remaining = -1; // body bytes left; -1 while reading headers
  private chunked = false;
  private untilClose = false;
  private keepAlive = true;
  private chunkTrailer = false;

  constructor(
    port: number,
    host: string,
    private readonly timeoutMs: number,
    private readonly onFree: (c: Connection) => void,
    private readonly onGone: (c: Connection) => void,
  ) {
    this.socket = net.connect({ port, host, noDelay: true });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.fail(err.code ?? err.name));
    this.socket.on('timeout', () => this.fail('TIMEOUT'));
    this.socket.on('close', () => {
      if (this.current && this.untilClose && this.remaining !== -1) this.complete();
      else this.fail('ECONNRESET');
      this.onGone(this);
    });
  }

  send(req: Request): void {
    this.current = req;
    this.buf = undefined;
    this.remaining = -1;
    this.chunked = false;
    this.untilClose = false;
    this.chunkTrailer = false;
    this.socket.setTimeout(this.timeoutMs);
    req.writtenAt = performance.now();
    this.socket.write(req.bytes);
  }

  private fail(code: string): void {
    const req = this.current;
    this.current = undefined;
    this.socket.destroy();
    req?.done(0, code, req.writtenAt);
  }

  private complete(): void {
    const req = this.current!;
    this.current = undefined;
    this.socket.setTimeout(0);
    const status = this.status;
    if (!this.keepAlive) this.socket.destroy();
    req.done(status, undefined, req.writtenAt);
    if (this.keepAlive && !this.socket.destroyed) this.onFree(this);
  }

  private onData(d: Buffer): void {
    if (!this.current) return; // nothing asked: ignore (a server talking out of turn)
    let data = this.buf ? Buffer.concat([this.buf, d]) : d;
    this.buf = undefined;
    if (this.remaining === -1) {
      const end = data.indexOf(CRLF2);
      if (end < 0) {
        this.buf = data;
        return;
      }
      this.parseHead(data.toString('latin1', 0, end));
      data = data.subarray(end + 4);
      if (this.current.head || this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) this.remaining = 0;
      if (!this.chunked && !this.untilClose && this.remaining === 0) return this.complete();
    }
    if (this.untilClose) return; // the body ends when the socket closes
    if (!this.chunked) {
      this.remaining -= data.length;
      if (this.remaining <= 0) this.complete();
      return;
    }
    this.readChunks(data);
  }

  private parseHead(head: string): void {
    this.status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    const length = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower);
    this.chunked = /\r\ntransfer-encoding:[^\r]*chunked/.test(lower);
    this.keepAlive = !/\r\nconnection:[^\r]*close/.test(lower) && !head.startsWith('HTTP/1.0');
    if (this.chunked) this.remaining = 0;
    else if (length) this.remaining = Number(length[1]);
    else {
      this.remaining = 0;
      // no framing: the body runs to the end of the connection (unless there is no body)
      this.untilClose = !(this.current?.head || this.status === 204 || this.status === 304);
      if (this.untilClose) this.keepAlive = false;
    }
  }

  /** Chunked framing: size line, data, CRLF; a 0 size then trailers up to an empty line. */
  private readChunks(data: Buffer): void {
    let at = 0;
    while (at <= data.length) {
      if (this.chunkTrailer) {
        // after the last chunk: lines until an empty one
        const eol = data.indexOf(CRLF, at);
        if (eol < 0) break;
        if (eol === at) return this.complete();
        at = eol + 2;
        continue;
      }
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, data.length - at);
        this.remaining -= take;
        at += take;
        if (this.remaining > 0) return;
        continue;
      }
      // the CRLF after a chunk's data, then the next size line
      const eol = data.indexOf(CRLF, at);
      if (eol < 0) break;
      if (eol === at) {
        at += 2;
        continue;
      }
      const size = Number.parseInt(data.toString('latin1', at, eol), 16);
      at = eol + 2;
      if (!(size >= 0)) return this.fail('BAD_CHUNK');
      if (size === 0) this.chunkTrailer = true;
      else this.remaining = size;
    }
    if (at < data.length) this.buf = data.subarray(at);
  }
}

/** A pool of up to `connections` keep-alive sockets to one http origin. */
export class LeanPool {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly queue: Request[] = [];
  private destroyed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connections: number,
    private readonly timeoutMs: number,
  ) {}

  /** Sends one request (bytes already serialized); `done` is called exactly once. */
  request(bytes: Buffer, head: boolean, done: Done): void {
    if (this.destroyed) return done(0, 'DESTROYED', 0);
    const req = { bytes, head, done, writtenAt: 0 };
    const conn = this.idle.pop();
    if (conn) return conn.send(req);
    if (this.all.size < this.connections) return this.open().send(req);
    this.queue.push(req);
  }

  private open(): Connection {
    const conn = new Connection(
      this.port,
      this.host,
      this.timeoutMs,
      (c) => this.free(c),
      (c) => this.gone(c),
    );
    this.all.add(conn);
    return conn;
  }

  private free(c: Connection): void {
    const next = this.queue.shift();
    if (next) c.send(next);
    else this.idle.push(c);
  }

  private gone(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    // a queued request gets a fresh socket in its place
    const next = this.queue.shift();
    if (next && !this.destroyed) this.open().send(next);
  }

  /** Fails everything queued or in flight and closes the sockets. */
  destroy(): void {
    this.destroyed = true;
    for (const req of this.queue.splice(0)) req.done(0, 'DESTROYED', 0);
    for (const c of [...this.all]) c.socket.destroy();
  }
}

/** The bytes of one request. */
export function serialize(method: string, path: string, host: string, headers: Readonly<Record<string, string>>, body: string | undefined): Buffer {
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const [k, v] of Object.entries(headers)) if (k !== 'host' && k !== 'content-length') head += `${k}: ${v}\r\n`;
  if (body !== undefined) {
    const b = Buffer.from(body);
    return Buffer.concat([Buffer.from(`${head}content-length: ${b.length}\r\n\r\n`, 'latin1'), b]);
  }
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') head += 'content-length: 0\r\n';
  return Buffer.from(`${head}\r\n`, 'latin1');
}
