/**
 * Test helpers for the source tests: loopback servers that never answer or refuse, a free
 * port, and a snapshot of the process's open handles (to prove close() leaves nothing).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** A TCP server that accepts connections and never says a word. */
export interface Blackhole {
  host: string;
  port: number;
  /** Resolves when the first connection arrives (the read has reached the backend). */
  connected: Promise<void>;
  close(): Promise<void>;
}

export async function blackhole(): Promise<Blackhole> {
  const sockets = new Set<net.Socket>();
  let onConnect: () => void = () => {};
  const connected = new Promise<void>((resolve) => {
    onConnect = resolve;
  });
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onConnect();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    connected,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port nothing listens on (bound then released); shared with the other tests. */
export { freePort } from '../helpers/net.js';

const WATCHED = ['TCPSocketWrap', 'TCPWRAP', 'PipeWrap', 'Timeout', 'ProcessWrap', 'TLSWrap'];

/** `url` with its host set to 127.0.0.1 and its port to `port`: the same database URL aimed at a test server. */
export function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

/** Counts of the handle kinds a source could leak. */
export function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (WATCHED.includes(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/**
 * The handle kinds that are above `before`. Closed sockets leave the list on a later turn of
 * the event loop, so this lets a bounded number of turns pass first (turns, not time).
 */
export async function leakedHandles(before: Record<string, number>): Promise<Record<string, number>> {
  let extra: Record<string, number> = {};
  for (let turn = 0; turn < 50; turn++) {
    extra = {};
    for (const [kind, n] of Object.entries(handleCounts())) {
      if (n > (before[kind] ?? 0)) extra[kind] = n - (before[kind] ?? 0);
    }
    if (Object.keys(extra).length === 0) return extra;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return extra;
}

/** A unique name for a key or queue, so parallel test files never meet. */
export function uniqueName(prefix: string): string {
  return `tide_test_${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}
