/**
 * The balancer's upstreams (one per API replica) and their states:
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
 * - Passive checks: the proxy marks an upstream down at once on a connection error
 *   (`markDown`); only the active check brings it back.
 * - Draining: no new requests; the drain resolves when the in-flight count reaches 0, or
 *   after `drainTimeoutMs`, when the stragglers are cut off.
 */
import type { EventEmitter } from 'node:events';

import { Agent } from 'undici';

import { TideError } from '../errors.js';
import { OriginPool } from './origin-pool.js';
import type { AddUpstreamOptions, BalancerStats, HealthCheckOptions, UpstreamStats } from './types.js';

export interface Upstream {
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

export interface UpstreamsOptions {
  check: HealthCheckOptions;
  healthPath: string;
  drainTimeoutMs: number;
  /** Keep-alive connections per upstream at most. */
  connections: number;
  log: (line: string) => void;
  events: EventEmitter;
}

/** The proxy's counts over every upstream (the rate limiter counts its own). */
export interface ProxyTotals {
  requests: number;
  failures: number;
  retries: number;
  no_upstream: number;
}

export class Upstreams {
  readonly list: Upstream[] = [];
  readonly totals: ProxyTotals = { requests: 0, failures: 0, retries: 0, no_upstream: 0 };
  /** Set once by `close()`: no upstream is added or checked again, no request retried. */
  closing = false;
  private readonly byId = new Map<string, Upstream>();
  private cursor = 0;
  /** Health checks on their own connections, so they never wait behind proxied traffic. */
  private readonly checker: Agent;

  constructor(private readonly o: UpstreamsOptions) {
    this.checker = new Agent({ connections: 2, keepAliveTimeout: Math.max(o.check.intervalMs * 2, 4000), connect: { timeout: o.check.timeoutMs } });
  }

  get(id: string): Upstream | undefined {
    return this.byId.get(id);
  }

  /** Least in flight among usable upstreams, ties round-robin from the cursor. */
  pick(tried: Upstream[] | null): Upstream | undefined {
    const list = this.list;
    const n = list.length;
    let best: Upstream | undefined;
    let bestIndex = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const u = list[i]!;
      if (!u.healthy || u.draining || (tried !== null && tried.includes(u))) continue;
      if (best === undefined || u.inFlight < best.inFlight) {
        best = u;
        bestIndex = i;
        if (u.inFlight === 0) break;
      }
    }
    if (best) this.cursor = (bestIndex + 1) % n;
    return best;
  }

  markDown(u: Upstream, reason: string): void {
    u.passes = 0;
    if (!u.healthy) return;
    u.healthy = false;
    this.o.log(`upstream ${u.id} (${u.url}) down: ${reason}`);
    this.o.events.emit('down', u.id, reason);
  }

  private markUp(u: Upstream): void {
    if (u.healthy || u.removed) return;
    u.healthy = true;
    this.o.log(`upstream ${u.id} (${u.url}) up`);
    this.o.events.emit('up', u.id);
  }

  /** A request on `u` is over: one fewer in flight, and a drain waiting for none resolves. */
  settle(u: Upstream): void {
    u.inFlight--;
    if (u.inFlight === 0 && u.draining && u.drained.length > 0) {
      for (const resolve of u.drained.splice(0)) resolve();
    }
  }

  // --- health checks

  async check(u: Upstream): Promise<boolean> {
    const { check, healthPath } = this.o;
    let ok = false;
    let reason = '';
    try {
      const response = await this.checker.request({
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
      const code = (err as { code?: unknown } | null)?.code?.toString() ?? '';
      reason = `health check failed: ${code || (err instanceof Error ? err.message : String(err))}`;
    }
    if (u.removed) return ok;
    if (ok) {
      u.fails = 0;
      u.passes++;
      if (u.passes >= check.passes) this.markUp(u);
    } else {
      u.passes = 0;
      u.fails++;
      if (u.fails >= check.fails) this.markDown(u, reason);
    }
    return ok;
  }

  private schedule(u: Upstream, delayMs: number): void {
    if (u.removed || this.closing) return;
    u.timer = setTimeout(() => {
      u.timer = null;
      void this.check(u).finally(() => this.schedule(u, this.o.check.intervalMs));
    }, delayMs);
    u.timer.unref();
  }

  // --- the set

  add(id: string, url: string, add: AddUpstreamOptions = {}): void {
    if (this.closing) throw new TideError('TIDE_LB_CLOSED', `The load balancer is closed; cannot add upstream ${id}.`);
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:') throw new TideError('TIDE_LB_UPSTREAM_URL', `Upstream ${id} is at ${url}; the balancer forwards to http:// addresses only.`);
    const origin = parsed.origin;
    const existing = this.byId.get(id);
    if (existing && existing.url === origin && !existing.draining) {
      if (add.healthy) this.markUp(existing);
      return;
    }
    if (existing) {
      // Re-pointed (a replica restarted on another port): the old address is gone.
      this.forget(existing);
      void existing.pool.destroy();
    }
    const port = Number(parsed.port || 80);
    const u: Upstream = {
      id,
      url: origin,
      pool: new OriginPool(parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port, this.o.connections),
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
    this.list.push(u);
    this.byId.set(id, u);
    this.o.log(`upstream ${id} added at ${origin}`);
    if (add.healthy) this.markUp(u);
    this.schedule(u, add.healthy ? this.o.check.intervalMs : 0);
  }

  private forget(u: Upstream): void {
    u.removed = true;
    if (u.timer) clearTimeout(u.timer);
    u.timer = null;
    const i = this.list.indexOf(u);
    if (i >= 0) this.list.splice(i, 1);
    if (this.byId.get(u.id) === u) this.byId.delete(u.id);
    if (this.cursor >= this.list.length) this.cursor = 0;
    for (const resolve of u.drained.splice(0)) resolve();
  }

  drain(u: Upstream): Promise<void> {
    const { log, events, drainTimeoutMs } = this.o;
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

  async remove(id: string): Promise<void> {
    const u = this.byId.get(id);
    if (!u) return;
    await this.drain(u);
    this.forget(u);
    this.o.events.emit('removed', id);
    // In-flight stragglers past the drain timeout are cut off here.
    await u.pool.destroy();
  }

  state(id: string): 'in-rotation' | 'out' | 'draining' | null {
    const u = this.byId.get(id);
    return !u ? null : u.draining ? 'draining' : u.healthy ? 'in-rotation' : 'out';
  }

  upstreams(): UpstreamStats[] {
    return this.list.map((u) => ({ id: u.id, address: u.url, healthy: u.healthy, draining: u.draining, in_flight: u.inFlight, requests: u.requests, failures: u.failures }));
  }

  stats(rateLimited: number): BalancerStats {
    const upstreams = this.upstreams();
    const t = this.totals;
    return {
      upstreams,
      totals: {
        upstreams: upstreams.length,
        healthy: upstreams.filter((u) => u.healthy && !u.draining).length,
        in_flight: upstreams.reduce((n, u) => n + u.in_flight, 0),
        requests: t.requests,
        failures: t.failures,
        retries: t.retries,
        no_upstream: t.no_upstream,
        rate_limited: rateLimited,
      },
    };
  }

  /** Forget every upstream and close their connections and the checker's. */
  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.list];
    for (const u of all) this.forget(u);
    await Promise.all([...all.map((u) => u.pool.destroy()), this.checker.destroy().catch(() => undefined)]);
  }
}
