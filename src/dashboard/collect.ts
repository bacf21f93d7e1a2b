/**
 * The dashboard's reading of a running system: the supervisor's `ps()`, the queue's stats,
 * every API replica's `/metrics` and the balancer's totals, and the autoscaler's status and
 * decisions when one runs. One `read()` per sampling round; snapshot.ts does the arithmetic.
 *
 * Design note: the collector keeps a little state between rounds. (1) The decision timeline
 * is fed by events (the controller's 'decision', once its journal's recent rows have been
 * loaded) into a pending list that the next read() drains, so no entry is lost between two
 * rounds and none is sent twice. (2) Without an autoscaler (or for scales by hand), a scale
 * is seen as a change of `scaledAt` in `ps()`, with the desired count of the previous round
 * as its "from". Every part of a read is guarded on its own: a part that fails (the database
 * restarting, a replica not answering) becomes a sentence in `problems`, never a failed
 * round.
 */
import { request } from 'node:http';

import type { ServiceControlStatus } from '../controller/controller.js';
import type { JournalEntry, ListOptions } from '../controller/journal.js';
import { histogramBuckets, parsePrometheusText, sumSeries } from '../metrics/prometheus-text.js';
import type { QueueStats } from '../runtime/queue/types.js';
import type { BalancerStats } from '../balancer/balancer.js';
import type { PsResult } from '../supervisor/supervisor.js';
import type { ApiReplicaReading, DatabaseView, QueueReading, Reading, ServiceView, TimelineEntry } from './snapshot.js';

/** The autoscaler as the dashboard reads it (what `startController` returns has these). */
export interface AutoscalerView {
  status(): ServiceControlStatus[];
  journal?: { list(options?: ListOptions): Promise<JournalEntry[]> };
  controller?: {
    on(event: 'decision', listener: (record: JournalEntry) => void): unknown;
    off(event: 'decision', listener: (record: JournalEntry) => void): unknown;
  };
}

export interface CollectorSources {
  supervisor: { ps(): PsResult };
  /** Opened on the first read (so a dashboard nobody watches holds no connection). */
  openQueue?: () => Promise<{ stats(): Promise<QueueStats[]>; close(): Promise<void> }>;
  balancer?: { stats(): BalancerStats } | undefined;
  /** The database's state (`tide up` supervises the embedded one). */
  database?: () => DatabaseView;
  /** A replica's /metrics text; default an HTTP GET on 127.0.0.1 with a 1 s timeout. */
  scrape?: (port: number) => Promise<string>;
  log?: (line: string) => void;
}

export interface Collector {
  read(now: number): Promise<Reading>;
  /** Shows this autoscaler's status and decisions from now on (and its journal's recent ones). */
  attachAutoscaler(view: AutoscalerView): void;
  close(): Promise<void>;
}

/** The entries of the timeline loaded from the journal when an autoscaler is attached. */
const JOURNAL_BACKFILL = 50;
/** Routes that are not traffic: health checks and scrapes (ours included) would flatten the p95. */
const NOT_TRAFFIC = new Set(['/health', '/metrics', '/db/pool/stats']);

/** A decision is a timeline entry when it changed (or wanted to change) the count. */
export function timelineFromDecision(d: JournalEntry): TimelineEntry | undefined {
  if (d.desired === d.current) return undefined;
  return {
    id: d.id ? `j${d.id}` : `d:${d.service}:${d.at}`,
    at: d.at,
    service: d.service,
    from: d.current,
    to: d.desired,
    by: 'autoscaler',
    applied: d.applied,
    limitedBy: d.limitedBy,
    reasons: d.reasons.map((r) => ({ code: r.code, message: r.message })),
  };
}

export function createCollector(sources: CollectorSources): Collector {
  const log = sources.log ?? (() => {});
  const scrape = sources.scrape ?? scrapeLoopback;
  let queue: Awaited<ReturnType<NonNullable<CollectorSources['openQueue']>>> | undefined;
  let opening: Promise<void> | undefined;
  let closed = false;
  let autoscaler: AutoscalerView | undefined;
  let pending: TimelineEntry[] = [];
  const seen = new Set<string>();
  const lastScaledAt = new Map<string, number | null>();
  const lastDesired = new Map<string, number>();
  // a dry run (or a hold at a limit) proposes the same change every round: show it once
  const lastProposal = new Map<string, string>();
  const onDecision = (d: JournalEntry) => {
    const entry = timelineFromDecision(d);
    const key = entry ? `${entry.from}>${entry.to}:${entry.applied}:${entry.limitedBy}` : '';
    if (lastProposal.get(d.service) === key) return;
    lastProposal.set(d.service, key);
    push(entry);
  };

  function push(entry: TimelineEntry | undefined): void {
    if (!entry || seen.has(entry.id)) return;
    seen.add(entry.id);
    // the set only guards against a journal row and its live event both arriving; keep it small
    if (seen.size > 5_000) seen.clear();
    pending.push(entry);
  }

  async function readQueues(problems: string[]): Promise<QueueReading[]> {
    if (!sources.openQueue) return [];
    try {
      opening ??= sources.openQueue().then((q) => {
        if (closed) return void q.close();
        queue = q;
      });
      await opening;
      if (!queue) return [];
      const stats = await queue.stats();
      return stats.map((s) => ({
        queue: s.queue,
        ready: s.ready,
        delayed: s.delayed,
        active: s.active,
        dead: s.dead,
        oldestAgeSeconds: s.oldestReadyAgeSeconds,
        completionsTotal: s.completionsTotal,
        failuresTotal: s.failuresTotal,
      }));
    } catch (err) {
      // the next round tries again (a database restart, say)
      if (!queue) opening = undefined;
      problems.push(`queue stats: ${err instanceof Error ? err.message : String(err)}`);
      return [];
    }
  }

  async function readApi(ps: PsResult, problems: string[]): Promise<ApiReplicaReading[] | null> {
    const apis = new Set(ps.services.filter((s) => s.kind === 'api').map((s) => s.name));
    if (apis.size === 0) return null;
    const replicas = ps.replicas.filter((r) => apis.has(r.service) && r.state === 'healthy' && r.port !== null && r.pid !== null);
    const readings = await Promise.all(
      replicas.map(async (r): Promise<ApiReplicaReading | undefined> => {
        try {
          const { samples } = parsePrometheusText(await scrape(r.port!));
          const traffic = (labels: Record<string, string>) => !NOT_TRAFFIC.has(labels.route ?? '');
          const errors = (labels: Record<string, string>) => traffic(labels) && (labels.status_code ?? '').startsWith('5');
          return {
            key: `${r.id}:${r.pid}`,
            buckets: histogramBuckets(samples, 'http_request_duration_seconds', traffic),
            requests: sumSeries(samples, 'http_request_duration_seconds_count', traffic),
            errors: sumSeries(samples, 'http_request_duration_seconds_count', errors),
          };
        } catch (err) {
          problems.push(`${r.id} /metrics: ${err instanceof Error ? err.message : String(err)}`);
          return undefined;
        }
      }),
    );
    return readings.filter((r): r is ApiReplicaReading => r !== undefined);
  }

  function readServices(ps: PsResult, now: number): ServiceView[] {
    const control = new Map((autoscaler?.status() ?? []).map((s) => [s.service, s]));
    return ps.services.map((s): ServiceView => {
      const previous = lastScaledAt.get(s.name);
      // a scale since the last round: by hand, or by the autoscaler when no autoscaler view tells us why
      if (previous !== undefined && s.scaledAt !== null && s.scaledAt !== previous && (s.scaledBy === 'manual' || !autoscaler)) {
        const from = lastDesired.get(s.name) ?? s.desired;
        push({
          id: `s:${s.name}:${s.scaledAt}`,
          at: s.scaledAt,
          service: s.name,
          from,
          to: s.desired,
          by: s.scaledBy ?? 'manual',
          applied: true,
          limitedBy: null,
          reasons: [
            s.scaledBy === 'manual'
              ? { code: 'ManualScale', message: `Scaled by hand from ${from} to ${s.desired} (tide scale or the dashboard).` }
              : { code: 'Scaled', message: `Scaled from ${from} to ${s.desired} by ${s.scaledBy ?? 'someone'}.` },
          ],
        });
      }
      lastScaledAt.set(s.name, s.scaledAt);
      lastDesired.set(s.name, s.desired);
      const c = control.get(s.name);
      return {
        name: s.name,
        kind: s.kind,
        desired: s.desired,
        ready: s.healthy,
        min: s.min,
        max: s.max,
        state: s.state,
        scaledAt: s.scaledAt,
        scaledBy: s.scaledBy,
        ...(c
          ? {
              autoscaler: {
                desired: c.desired,
                pausedUntil: c.pausedUntil !== null && c.pausedUntil > now ? c.pausedUntil : null,
                dryRun: c.dryRun,
                lastDecision: c.lastDecision
                  ? { at: c.lastDecision.at, current: c.lastDecision.current, desired: c.lastDecision.desired, limitedBy: c.lastDecision.limitedBy, reasons: c.lastDecision.reasons }
                  : null,
              },
            }
          : {}),
      };
    });
  }

  return {
    async read(now) {
      const problems: string[] = [];
      const ps = sources.supervisor.ps();
      const [queues, api] = await Promise.all([readQueues(problems), readApi(ps, problems)]);
      let services: ServiceView[];
      try {
        services = readServices(ps, now);
      } catch (err) {
        problems.push(`autoscaler status: ${err instanceof Error ? err.message : String(err)}`);
        services = [];
      }
      const totals = sources.balancer?.stats().totals;
      const database = sources.database?.() ?? null;
      if (database?.state && database.state !== 'running') {
        const since = database.lastCrash ? `, down for ${Math.round((now - database.lastCrash.at) / 1000)} s` : '';
        problems.unshift(
          database.state === 'failed'
            ? `database: the embedded PostgreSQL failed (it kept going down); tide up no longer restarts it${since}`
            : `database: the embedded PostgreSQL is ${database.state}${since}; tide up restarts it, the replicas reconnect by themselves`,
        );
      }
      const timeline = pending.sort((a, b) => a.at - b.at);
      pending = [];
      return {
        at: now,
        database,
        services,
        queues,
        api,
        balancerFailures: totals ? totals.failures + totals.no_upstream : null,
        timeline,
        problems,
      };
    },
    attachAutoscaler(view) {
      autoscaler?.controller?.off('decision', onDecision);
      autoscaler = view;
      view.controller?.on('decision', onDecision);
      view.journal
        ?.list({ limit: JOURNAL_BACKFILL * 4 })
        .then((rows) => {
          const changes = rows.map(timelineFromDecision).filter((e): e is TimelineEntry => e !== undefined);
          for (const e of changes.slice(0, JOURNAL_BACKFILL).reverse()) push(e);
        })
        .catch((err: unknown) => log(`dashboard: the decision journal could not be read: ${err instanceof Error ? err.message : String(err)}`));
    },
    async close() {
      closed = true;
      autoscaler?.controller?.off('decision', onDecision);
      await opening?.catch(() => undefined);
      await queue?.close().catch(() => undefined);
      queue = undefined;
    },
  };
}

/** GET /metrics on a loopback replica: no keep-alive (nothing left open), 1 s to answer. */
function scrapeLoopback(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: 1_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 1 s')));
    req.on('error', reject);
    req.end();
  });
}
