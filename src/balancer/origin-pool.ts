/**
 * Keep-alive connections to one upstream (an API replica) for the balancer's proxy path.
 *
 * Design note. A connection is connecting, busy (lent to one exchange: no pipelining), idle,
 * or gone. `acquire` lends the most recently used idle connection at once, opens a new one
 * while fewer than `max` exist, or queues the exchange (first come, first served) for the
 * next connection that frees up. An idle connection is not reused past its keep-alive time
 * (the upstream's `Keep-Alive: timeout` hint less a second, else `DEFAULT_KEEP_ALIVE_MS`):
 * a request must not be written into a socket the upstream is about to close. Each socket's
 * listeners are set once, when it opens, and call whichever exchange holds it, so lending a
 * connection costs no listener bookkeeping.
 */
import { type Socket, connect } from 'node:net';

/** Idle time before an upstream that gave no keep-alive hint may close (node's default is 5 s). */
const DEFAULT_KEEP_ALIVE_MS = 4000;
const MAX_KEEP_ALIVE_MS = 60_000;
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * Every upstream socket reads into this one buffer (`onread`): no stream machinery and no new
 * Buffer per read. A read is handed to its exchange and handled before the next read starts;
 * whatever is kept past that, or written where the write may not finish at once, is copied.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** What holds a connection: one exchange at a time. */
export interface ConnectionUser {
  /** The connection is open and lent to this user. */
  onConnection(conn: OriginConnection): void;
  /** No connection could be made: nothing was sent. */
  onConnectError(err: NodeJS.ErrnoException): void;
  /** Bytes from the upstream, valid only during this call (see READ_BUFFER). */
  onUpstreamData(chunk: Buffer): void;
  /** The upstream ended its side (a body delimited by the close is complete). */
  onUpstreamEnd(): void;
  /** The connection closed while lent (`err` when it broke). */
  onUpstreamClose(err: NodeJS.ErrnoException | undefined): void;
  /** The socket's write buffer drained. */
  onUpstreamDrain(): void;
}

function removed(): NodeJS.ErrnoException {
  return Object.assign(new Error('the upstream was removed'), { code: 'ECONNABORTED' });
}

export class OriginConnection {
  user: ConnectionUser | null = null;
  connecting = true;
  idleSince = 0;
  keepAliveMs = DEFAULT_KEEP_ALIVE_MS;
  error: NodeJS.ErrnoException | undefined;

  constructor(
    readonly pool: OriginPool,
    readonly socket: Socket,
  ) {}

  /** Take the upstream's `Keep-Alive: timeout` hint (ms) into account. */
  keepAliveHint(ms: number): void {
    this.keepAliveMs = Math.max(0, Math.min(MAX_KEEP_ALIVE_MS, ms - 1000));
  }
}

export class OriginPool {
  private readonly all = new Set<OriginConnection>();
  private readonly idle: OriginConnection[] = [];
  private readonly waiting: ConnectionUser[] = [];
  private destroyed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Lend a connection to `user` now, or as soon as one is open or free. */
  acquire(user: ConnectionUser): void {
    const t = this.now();
    while (this.idle.length > 0) {
      const conn = this.idle.pop()!;
      // not ended either: a replica's FIN may be read but the close not yet handled
      if (t - conn.idleSince < conn.keepAliveMs && conn.socket.writable) {
        conn.user = user;
        user.onConnection(conn);
        return;
      }
      conn.socket.destroy();
    }
    if (this.all.size < this.max) this.open(user);
    else this.waiting.push(user);
  }

  /** `user` no longer wants a connection (its client left while it waited). */
  cancel(user: ConnectionUser): void {
    const i = this.waiting.indexOf(user);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      return;
    }
    for (const conn of this.all) {
      // Still connecting for it: the connection goes idle (or to the next waiter) once open.
      if (conn.user === user && conn.connecting) conn.user = null;
    }
  }

  /** The exchange on `conn` is complete and the connection may carry another. */
  release(conn: OriginConnection): void {
    conn.user = null;
    if (this.destroyed || conn.socket.destroyed) {
      conn.socket.destroy();
      return;
    }
    const next = this.waiting.shift();
    if (next) {
      conn.user = next;
      next.onConnection(conn);
      return;
    }
    conn.idleSince = this.now();
    this.idle.push(conn);
  }

  /** Close `conn` (its exchange broke off or its framing is not to be trusted again). */
  discard(conn: OriginConnection): void {
    conn.user = null;
    conn.socket.destroy();
  }

  /** Close idle connections past their keep-alive time. */
  sweep(): void {
    const t = this.now();
    for (const conn of this.idle) {
      if (t - conn.idleSince >= conn.keepAliveMs) conn.socket.destroy();
    }
  }

  /** Close every connection, busy ones too (as broken: a body cut here is not complete); waiting users get a connect error. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    const closed = [...this.all].map((conn) => new Promise<void>((resolve) => {
      conn.error ??= removed();
      if (conn.socket.closed) resolve();
      else conn.socket.once('close', () => resolve());
      conn.socket.destroy();
    }));
    for (const user of this.waiting.splice(0)) user.onConnectError(removed());
    await Promise.all(closed);
  }

  private open(user: ConnectionUser): void {
    if (this.destroyed) {
      user.onConnectError(removed());
      return;
    }
    const conn: OriginConnection = new OriginConnection(
      this,
      connect({
        host: this.host,
        port: this.port,
        noDelay: true,
        timeout: CONNECT_TIMEOUT_MS,
        onread: {
          buffer: READ_BUFFER,
          callback: (bytes: number, buffer: Uint8Array) => {
            if (conn.user) conn.user.onUpstreamData((buffer as Buffer).subarray(0, bytes));
            else conn.socket.destroy(); // bytes nobody asked for: the connection is out of step
            return true;
          },
        },
      }),
    );
    const socket = conn.socket;
    conn.user = user;
    this.all.add(conn);
    socket.once('connect', () => {
      conn.connecting = false;
      socket.setTimeout(0);
      if (conn.user) conn.user.onConnection(conn);
      else this.release(conn);
    });
    socket.once('timeout', () => {
      if (!conn.connecting) return;
      conn.error = Object.assign(new Error(`connect timeout after ${CONNECT_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' });
      socket.destroy();
    });
    socket.on('end', () => conn.user?.onUpstreamEnd());
    socket.on('drain', () => conn.user?.onUpstreamDrain());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      conn.error = err;
    });
    socket.on('close', () => {
      this.all.delete(conn);
      const i = this.idle.indexOf(conn);
      if (i >= 0) this.idle.splice(i, 1);
      const holder = conn.user;
      conn.user = null;
      if (holder) {
        if (conn.connecting) holder.onConnectError(conn.error ?? Object.assign(new Error('the connection closed while opening'), { code: 'ECONNRESET' }));
        else holder.onUpstreamClose(conn.error);
      }
      // A slot is free: open one for the next in line.
      const next = this.destroyed ? undefined : this.waiting.shift();
      if (next) this.open(next);
    });
  }
}
