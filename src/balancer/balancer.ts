/**
 * The load balancer: an HTTP/1.1 reverse proxy on one port in front of the API replicas.
 *
 * Its parts, one file each:
 * - upstreams.ts: the replicas, their states (healthy, down, draining), the least-connections
 *   pick and the active health checks; origin-pool.ts: each upstream's keep-alive connections.
 * - client-connection.ts: a client's connection, reading request heads (http1.ts parses them)
 *   and answering what the balancer answers itself; rate-limit.ts: a token bucket per client.
 * - exchange.ts: one request carried to an upstream and its response back, with retries.
 *
 * Here: the server that ties them, and one sweep for every timeout (an exchange with no progress
 * either way, client idle and slow heads, idle upstream connections) rather than a timer per
 * request. node:http and a general HTTP client each cost more per request than the whole proxy
 * does (bench/README.md has the figures).
 */
import { EventEmitter } from 'node:events';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';

import { TideError } from '../errors.js';
import { proxyTrust } from '../net/client-identity.js';
import { ClientConnection, type ConnectionContext } from './client-connection.js';
import { RateLimiter } from './rate-limit.js';
import type { Balancer, BalancerOptions, HealthCheckOptions } from './types.js';
import { Upstreams } from './upstreams.js';

export type * from './types.js';

/**
 * Start a load balancer listening on `host:port`.
 * @throws TideError TIDE_LB_PORT_IN_USE or TIDE_LB_LISTEN when the port cannot be bound.
 */
export async function createBalancer(options: BalancerOptions = {}): Promise<Balancer> {
  const host = options.host ?? '127.0.0.1';
  const check: HealthCheckOptions = { intervalMs: 2000, timeoutMs: 1000, fails: 2, passes: 1, ...options.healthCheck };
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
  const log = options.log ?? (() => {});
  const events = new EventEmitter();
  const upstreams = new Upstreams({
    check,
    healthPath: options.healthPath ?? '/health',
    drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
    connections: options.connectionsPerUpstream ?? 128,
    log,
    events,
  });
  const limiter = options.rateLimit ? new RateLimiter(options.rateLimit, options.now ?? Date.now) : null;
  const stats = () => upstreams.stats(limiter?.limited ?? 0);
  const ctx: ConnectionContext = { upstreams, retries: options.retries ?? 2, upstreamTimeoutMs, log, limiter, trust: proxyTrust(options.trust), stats };
  const clients = new Set<ClientConnection>();

  function onConnection(socket: Socket): void {
    if (upstreams.closing) {
      socket.destroy();
      return;
    }
    const client = new ClientConnection(socket, ctx);
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
    for (const u of upstreams.list) u.pool.sweep();
  }
  const sweeper = setInterval(sweep, Math.max(10, Math.min(1000, upstreamTimeoutMs / 4)));
  sweeper.unref();

  const server: Server = createServer({ noDelay: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      clearInterval(sweeper);
      void upstreams.close();
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
    addUpstream: (id, url, add) => upstreams.add(id, url, add),
    removeUpstream: (id) => upstreams.remove(id),
    drain: async (id) => {
      const u = upstreams.get(id);
      if (u) await upstreams.drain(u);
    },
    checkHealth: async (id) => {
      const u = upstreams.get(id);
      if (!u) throw new TideError('TIDE_LB_UNKNOWN_UPSTREAM', `No upstream "${id}" in the load balancer.`);
      return upstreams.check(u);
    },
    upstreams: () => upstreams.upstreams(),
    upstreamState: (id) => upstreams.state(id),
    stats,
    async close() {
      if (upstreams.closing) return;
      const released = upstreams.close();
      clearInterval(sweeper);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const client of clients) client.socket.destroy();
      await Promise.all([closed, released]);
    },
  };
}
