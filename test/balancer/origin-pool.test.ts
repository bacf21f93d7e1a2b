// The balancer's keep-alive connections to one upstream (balancer/origin-pool.ts) on real
// loopback sockets: reuse, the connection cap and its queue, cancelling a wait, keep-alive
// expiry on an injected clock, refused connections, and destroy. Waits on events, not time.
import assert from 'node:assert/strict';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { after, before, test } from 'node:test';

import { type ConnectionUser, type OriginConnection, OriginPool } from '../../src/balancer/origin-pool.js';
import { freePort } from '../../src/net/ports.js';

/** A user that records what the pool tells it, with a promise per kind of event. */
class User implements ConnectionUser {
  conn: OriginConnection | null = null;
  data = '';
  readonly connected: Promise<OriginConnection>;
  readonly failed: Promise<NodeJS.ErrnoException>;
  readonly closed: Promise<NodeJS.ErrnoException | undefined>;
  private resolveConnected!: (c: OriginConnection) => void;
  private resolveFailed!: (e: NodeJS.ErrnoException) => void;
  private resolveClosed!: (e: NodeJS.ErrnoException | undefined) => void;
  private onData: (() => void) | null = null;
  constructor() {
    this.connected = new Promise((r) => (this.resolveConnected = r));
    this.failed = new Promise((r) => (this.resolveFailed = r));
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }
  onConnection(conn: OriginConnection): void {
    this.conn = conn;
    this.resolveConnected(conn);
  }
  onConnectError(err: NodeJS.ErrnoException): void {
    this.resolveFailed(err);
  }
  onUpstreamData(chunk: Buffer): void {
    this.data += chunk.toString();
    this.onData?.();
  }
  onUpstreamEnd(): void {}
  onUpstreamClose(err: NodeJS.ErrnoException | undefined): void {
    this.resolveClosed(err);
  }
  onUpstreamDrain(): void {}
  /** Resolves once `text` has arrived. */
  received(text: string): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.data.includes(text)) resolve();
      };
      this.onData = check;
      check();
    });
  }
}

let server: Server;
let port: number;
let accepted = 0;
const sockets = new Set<Socket>();

before(async () => {
  // answers every chunk with "ok:<chunk>", and counts the connections it accepted
  server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', (chunk) => socket.write(`ok:${chunk.toString()}`));
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('a released connection is lent again: one TCP connection carries exchange after exchange', async () => {
  const pool = new OriginPool('127.0.0.1', port, 4);
  const before = accepted;
  try {
    const a = new User();
    pool.acquire(a);
    const conn = await a.connected;
    conn.socket.write('one');
    await a.received('ok:one');
    pool.release(conn);
    const b = new User();
    pool.acquire(b);
    assert.equal(await b.connected, conn, 'the idle connection, at once');
    conn.socket.write('two');
    await b.received('ok:two');
    assert.equal(accepted - before, 1);
  } finally {
    await pool.destroy();
  }
});

test('at the cap, users wait their turn (first come, first served), and a cancelled wait gets nothing', async () => {
  const pool = new OriginPool('127.0.0.1', port, 1);
  try {
    const first = new User();
    const cancelled = new User();
    const third = new User();
    pool.acquire(first);
    pool.acquire(cancelled);
    pool.acquire(third);
    const conn = await first.connected;
    pool.cancel(cancelled);
    pool.release(conn);
    assert.equal(await third.connected, conn);
    assert.equal(cancelled.conn, null);
  } finally {
    await pool.destroy();
  }
});

test('an idle connection past its keep-alive time is not reused: a new one is opened, and the sweep closes the old', async () => {
  let now = 0;
  const pool = new OriginPool('127.0.0.1', port, 4, () => now);
  const before = accepted;
  try {
    const a = new User();
    pool.acquire(a);
    const old = await a.connected;
    old.keepAliveHint(3000); // the upstream said `Keep-Alive: timeout=3`: reuse for under 2 s
    pool.release(old);
    now = 2500;
    const oldClosed = new Promise((resolve) => old.socket.once('close', resolve));
    pool.sweep();
    await oldClosed;
    const b = new User();
    pool.acquire(b);
    const fresh = await b.connected;
    assert.notEqual(fresh, old);
    assert.equal(accepted - before, 2);
  } finally {
    await pool.destroy();
  }
});

test('nothing listening: the user hears ECONNREFUSED and nothing was sent', async () => {
  const pool = new OriginPool('127.0.0.1', await freePort(), 2);
  try {
    const u = new User();
    pool.acquire(u);
    assert.equal((await u.failed).code, 'ECONNREFUSED');
  } finally {
    await pool.destroy();
  }
});

test('destroy: a busy connection breaks (not a clean end) and waiting users get a connect error', async () => {
  const pool = new OriginPool('127.0.0.1', port, 1);
  const busy = new User();
  const waiting = new User();
  pool.acquire(busy);
  await busy.connected;
  pool.acquire(waiting);
  await pool.destroy();
  assert.equal((await busy.closed)?.code, 'ECONNABORTED');
  assert.equal((await waiting.failed).code, 'ECONNABORTED');
  const late = new User();
  pool.acquire(late);
  assert.equal((await late.failed).code, 'ECONNABORTED', 'a destroyed pool opens nothing');
});
