/** The load balancer's options and the figures it reports (`stats()`, `GET /lb/stats`). */
import type { EventEmitter } from 'node:events';

import type { TrustOptions } from '../net/client-identity.js';

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
