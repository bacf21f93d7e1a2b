/**
 * Gathers the facts `tide doctor` checks, once, from a running system: a `tide up` through
 * its control API (`ps`, the balancer's `/lb/stats`, every API replica's `/metrics`,
 * `/db/pool/stats` and `/v1/queues`), API replicas and a balancer named directly, the metric
 * sources of a tide.yaml (for systems Tidescale did not start), PostgreSQL's
 * `pg_stat_activity` against `max_connections`, and the controller's journal (for flapping).
 *
 * Design note: two snapshots `windowMs` apart, because most symptoms are rates ("depth grows
 * while nothing completes", "one replica got few of the requests", p95 of recent requests),
 * and cumulative counters read once say nothing about now. Everything that fails to answer
 * becomes a `sourceFailures` entry (a finding) or a note, never an exception: a doctor that
 * stops at the first dead endpoint is no use on a sick system. Every source, client and timer
 * opened here is closed before `gatherFacts` returns.
 */
import pg from 'pg';

import type { TideConfig } from '../config/schema.js';
import { type Sample, METRIC } from '../core/types.js';
import { type ConnectionBudget, type ConnectionLimit, connectionBudget } from '../db/budget.js';
import { readConnectionLimit } from '../db/budget-live.js';
import { isTideError } from '../errors.js';
import type { MetricSource } from '../sources/types.js';
import type { ControlClient } from '../app/client.js';
import type { BalancerStats } from '../balancer/balancer.js';
import type { PsResult } from '../supervisor/supervisor.js';
import { type RequestCounters, parseRequestCounters, quantileUpperBound, windowCounters } from './metrics-text.js';
import {
  type ApiReplicaFacts,
  type DatabaseSupervisionFacts,
  DEFAULT_THRESHOLDS,
  type Facts,
  type QueueFacts,
  type ScaleEvent,
  type ServiceFacts,
  type SourceFailure,
  type Thresholds,
  type UpstreamFacts,
} from './types.js';

export interface GatherOptions {
  /** A running `tide up` (its services, replicas and balancer). */
  control?: ControlClient;
  /** A load balancer's base URL (its `/lb/stats`), besides or instead of the one `tide up` reports. */
  balancerUrl?: string;
  /** API replicas to read directly, besides those `tide up` reports. */
  apis?: Array<{ id: string; url: string }>;
  /** Sent as X-API-Key to the API replicas (their `/v1/queues` needs it when keys are configured). */
  apiKey?: string;
  /** For pg_stat_activity and the journal. */
  databaseUrl?: string;
  /** The schema of the journal (default `tide`). */
  schema?: string;
  /** The project: service bounds, queues, SLO waits, and its metric `sources:`. */
  config?: TideConfig;
  /** Read the config's metric sources (default true when a config is given). */
  readSources?: boolean;
  /** Between the two snapshots. Default 5000. */
  windowMs?: number;
  /** Per HTTP request or source read. Default 3000. */
  timeoutMs?: number;
  thresholds?: Partial<Thresholds>;
  now?: () => number;
  /** How the window passes (a test may pass its own). */
  wait?: (ms: number) => Promise<void>;
  /** Builds a source from its config (default: the source registry). */
  createSource?: (config: Record<string, unknown>, field: string) => MetricSource;
}

interface QueueRow {
  queue: string;
  ready: number;
  active: number;
  oldest_ready_age_s: number | null;
  completions_total: number;
}

interface Snapshot {
  ps?: PsResult & { balancer?: string | null; database?: unknown };
  lb?: BalancerStats;
  metrics: Map<string, RequestCounters>;
  queues?: { from: string; rows: QueueRow[] };
  samples: Map<string, Sample[]>;
}

interface NamedSource {
  name: string;
  service: string;
  source: MetricSource;
}

/** A journal row older than this says nothing about the sources now. */
const JOURNAL_RECENT_MS = 120_000;

const realWait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function message(err: unknown): { code: string; message: string } {
  if (isTideError(err)) return { code: err.code, message: err.message };
  const e = err as { name?: string; message?: string; cause?: { message?: string } };
  const why = e.cause?.message ? `${e.message}: ${e.cause.message}` : (e.message ?? String(err));
  return { code: e.name === 'TimeoutError' ? 'TIDE_SOURCE_ABORTED' : 'TIDE_SOURCE_FAILED', message: why };
}

/** Gathers the facts (two snapshots `windowMs` apart); never throws for an endpoint that fails. */
export async function gatherFacts(options: GatherOptions): Promise<Facts> {
  const now = options.now ?? Date.now;
  const windowMs = options.windowMs ?? 5000;
  const timeoutMs = options.timeoutMs ?? 3000;
  const wait = options.wait ?? realWait;
  const failures: SourceFailure[] = [];
  const notes: string[] = [];
  const failed = (source: string, err: unknown, service?: string) => {
    if (!failures.some((f) => f.source === source)) failures.push({ source, ...(service ? { service } : {}), ...message(err) });
  };

  const getJson = async <T>(url: string, withKey = false): Promise<T> => {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: withKey && options.apiKey ? { 'x-api-key': options.apiKey } : {} });
    const text = await res.text();
    if (!res.ok) throw Object.assign(new Error(`${url} answered ${res.status}: ${text.slice(0, 200)}`), { name: 'HttpError' });
    return JSON.parse(text) as T;
  };
  const getText = async (url: string): Promise<string> => {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    return text;
  };

  const sources = openSources(options, notes, failed);
  try {
    // API replicas: the ones named, then the healthy api replicas `tide up` reports
    const apis = [...(options.apis ?? [])];
    const first = await snapshot(undefined);
    const second = await (async () => {
      await wait(windowMs);
      return snapshot(first);
    })();
    return await assemble(first, second);

    async function snapshot(previous: Snapshot | undefined): Promise<Snapshot> {
      const snap: Snapshot = { metrics: new Map(), samples: new Map() };
      if (options.control) {
        try {
          snap.ps = await options.control.request<Snapshot['ps'] & object>('GET', '/v1/ps');
        } catch (err) {
          failed('tide up control API', err);
        }
      }
      if (!previous && snap.ps) {
        const apiServices = new Set(snap.ps.services.filter((s) => s.kind === 'api').map((s) => s.name));
        for (const r of snap.ps.replicas) {
          if (apiServices.has(r.service) && r.state === 'healthy' && r.port) apis.push({ id: r.id, url: `http://127.0.0.1:${r.port}` });
        }
      }
      const balancer = options.balancerUrl ?? snap.ps?.balancer ?? previous?.ps?.balancer ?? undefined;
      const reads: Array<Promise<void>> = [];
      if (balancer) {
        reads.push(
          getJson<BalancerStats>(`${balancer.replace(/\/$/, '')}/lb/stats`).then(
            (s) => void (snap.lb = s),
            (err) => failed('balancer /lb/stats', err),
          ),
        );
      }
      for (const api of apis) {
        reads.push(
          getText(`${api.url}/metrics`).then(
            (text) => void snap.metrics.set(api.id, parseRequestCounters(text)),
            (err) => failed(`${api.id} /metrics`, err),
          ),
        );
      }
      // the queue figures are the same from any replica: the first that answers
      reads.push(
        (async () => {
          for (const api of apis) {
            try {
              const body = await getJson<{ queues: QueueRow[] }>(`${api.url}/v1/queues`, true);
              snap.queues = { from: `${api.id} /v1/queues`, rows: body.queues };
              return;
            } catch (err) {
              failed(`${api.id} /v1/queues`, err);
            }
          }
        })(),
      );
      for (const s of sources) {
        reads.push(
          s.source.read(AbortSignal.timeout(timeoutMs)).then(
            (samples) => void snap.samples.set(s.name, samples),
            (err) => failed(`source ${s.name}`, err, s.service),
          ),
        );
      }
      await Promise.all(reads);
      return snap;
    }

    async function assemble(a: Snapshot, b: Snapshot): Promise<Facts> {
      const windowSeconds = windowMs / 1000;
      const services = serviceFacts(b.ps ?? a.ps, options.config);
      const upstreams = upstreamFacts(a.lb, b.lb);
      const refusals = b.lb ? balancerFacts(a.lb, b.lb) : undefined;
      const apiFacts: ApiReplicaFacts[] = [];
      for (const api of apis) {
        const after = b.metrics.get(api.id);
        // a replica whose /metrics failed (a failure is recorded) is still looked at for its pool
        if (!after) {
          apiFacts.push({ id: api.id });
          continue;
        }
        const w = windowCounters(a.metrics.get(api.id), after);
        const p95 = quantileUpperBound(w, 0.95);
        apiFacts.push({ id: api.id, requests: w.count, errors: w.errors, ...(p95 === undefined ? {} : { p95Seconds: p95 }) });
      }
      // pools are read once, at the end: "waiting" is a state, not a rate
      await Promise.all(
        apis.map(async (api) => {
          const fact = apiFacts.find((f) => f.id === api.id);
          if (!fact) return;
          try {
            fact.pool = await getJson<{ total: number; idle: number; waiting: number }>(`${api.url}/db/pool/stats`);
          } catch (err) {
            // an API without a pool (not Tidescale's) has no such route: not a failure
            if (!/ 404/.test(message(err).message)) failed(`${api.id} /db/pool/stats`, err);
          }
        }),
      );
      const queues = [...queueFactsFromApi(a.queues, b.queues), ...queueFactsFromSources(sources, a.samples, b.samples)];
      sourceApiFacts(sources, b.samples, apiFacts);
      const facts: Facts = {
        at: now(),
        windowSeconds,
        thresholds: { ...DEFAULT_THRESHOLDS, ...options.thresholds },
        services,
        ...(upstreams ? { upstreams } : {}),
        ...(refusals ? { balancer: refusals } : {}),
        apis: apiFacts,
        queues,
        sourceFailures: failures,
        notes,
      };
      const db = (b.ps ?? a.ps)?.database as Partial<DatabaseSupervisionFacts> & { supervised?: boolean } | undefined;
      if (db?.supervised && db.state) facts.databaseSupervision = { state: db.state, restarts: db.restarts ?? 0, lastCrash: db.lastCrash ?? null, lastError: db.lastError ?? null };
      if (!b.lb && !options.balancerUrl && !b.ps?.balancer) notes.push('no load balancer to read: uneven distribution not checked');
      if (apis.length === 0) notes.push('no API replica to read: latency, errors and pools not checked');
      await databaseFacts(facts);
      return facts;
    }
  } finally {
    await Promise.all(sources.map((s) => s.source.close().catch(() => undefined)));
  }

  async function databaseFacts(facts: Facts): Promise<void> {
    if (!options.databaseUrl) {
      notes.push('no database URL (--database-url, database.url or DATABASE_URL): connections and the journal not checked');
      return;
    }
    // query_timeout is the client's own: a statement_timeout startup parameter is refused by PgBouncer
    const client = new pg.Client({ connectionString: options.databaseUrl, connectionTimeoutMillis: timeoutMs, application_name: 'tide doctor', query_timeout: timeoutMs });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ connections: number; max: number }>(
        "SELECT count(*)::int AS connections, current_setting('max_connections')::int AS max FROM pg_stat_activity WHERE backend_type = 'client backend'",
      );
      facts.database = { connections: rows[0]!.connections, maxConnections: rows[0]!.max };
      if (options.config) facts.database.budget = await budgetFacts(options.config, options.databaseUrl);
      facts.scaleEvents = await journalEvents(client, options.schema ?? 'tide', now() - 3600_000);
      if (facts.scaleEvents === undefined) delete facts.scaleEvents;
    } catch (err) {
      // "too many clients" is the very symptom looked for, not a failure to look
      if ((err as { code?: string }).code === '53300') facts.database = { connections: 0, maxConnections: 0, refused: (err as Error).message };
      else failed('database', err);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The budget at max replicas against the declared limit, else the live one (the pooler's, behind one). */
  async function budgetFacts(config: TideConfig, url: string): Promise<ConnectionBudget> {
    const declared = config.database.maxConnections;
    let limit: ConnectionLimit | undefined = declared ? { limit: declared, source: 'database.max_connections' } : undefined;
    let pooled = config.database.pooler === 'pgbouncer';
    if (!limit) {
      const live = await readConnectionLimit(url, timeoutMs).catch(() => undefined);
      if (live) ({ pooled, ...limit } = live);
    }
    return connectionBudget(Object.values(config.services), limit, { listens: !pooled || config.database.directUrl !== undefined });
  }

  async function journalEvents(client: pg.Client, schema: string, since: number): Promise<ScaleEvent[] | undefined> {
    const exists = await client.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [schema, 'decisions']);
    if (exists.rowCount === 0) {
      notes.push(`no decision journal in schema ${schema}: flapping not checked`);
      return undefined;
    }
    // the journal's own table (src/controller/journal.ts): applied changes of the last hour
    const { rows } = await client.query<{ service: string; at: Date; current: number; desired: number }>(
      `SELECT service, at, current, desired FROM "${schema.replace(/"/g, '""')}".decisions WHERE applied AND desired <> current AND at >= $1 ORDER BY at`,
      [new Date(since)],
    );
    // the live loop's own source failures: the latest decision of each service, if recent
    const latest = await client.query<{ service: string; errors: Array<{ code: string; message: string; source?: string }> }>(
      `SELECT DISTINCT ON (service) service, errors FROM "${schema.replace(/"/g, '""')}".decisions WHERE at >= $1 ORDER BY service, at DESC`,
      [new Date(now() - JOURNAL_RECENT_MS)],
    );
    for (const row of latest.rows) {
      for (const e of row.errors ?? []) {
        if (!e.code?.startsWith('TIDE_SOURCE') || failures.some((f) => f.source === `source ${e.source ?? '?'}`)) continue;
        failures.push({ source: `source ${e.source ?? '?'}`, service: row.service, code: e.code, message: `${e.message} (the autoscaler's last round, from its journal)` });
      }
    }
    return rows.map((r) => ({ service: r.service, at: r.at.getTime(), from: r.current, to: r.desired }));
  }
}

/** The config's metric sources as built sources (nothing connects until a read). */
function openSources(options: GatherOptions, notes: string[], failed: (source: string, err: unknown, service?: string) => void): NamedSource[] {
  const config = options.config;
  if (!config || options.readSources === false || !options.createSource) return [];
  const out: NamedSource[] = [];
  for (const service of Object.values(config.services)) {
    for (const [name, cfg] of Object.entries(service.sources ?? {})) {
      // CPU from /proc needs the pids of a running `tide up`; `tide ps` shows them instead
      if (cfg.kind === 'process') {
        notes.push(`source ${name} (${service.name}): process sources are read by the autoscaler inside tide up, not here`);
        continue;
      }
      try {
        out.push({ name, service: service.name, source: options.createSource({ name, ...cfg }, `services.${service.name}.sources.${name}`) });
      } catch (err) {
        failed(`source ${name}`, err, service.name);
      }
    }
    // Tidescale workers running without `tide up` (Compose, Kubernetes): their queue, read
    // from the database as the autoscaler would, when no API replica is there to ask
    const alone = !options.control && !options.apis?.length;
    if (alone && service.kind === 'worker' && !service.sources && options.databaseUrl) {
      for (const queue of service.queues?.filter((q) => q !== '*') ?? ['default']) {
        const name = `queue-${queue}`;
        const cfg = { kind: 'builtin', name, connection_string: options.databaseUrl, schema: config.database.schema, queue };
        try {
          out.push({ name, service: service.name, source: options.createSource(cfg, `services.${service.name}.queues`) });
        } catch (err) {
          failed(`source ${name}`, err, service.name);
        }
      }
    }
  }
  return out;
}

function serviceFacts(ps: Snapshot['ps'], config: TideConfig | undefined): ServiceFacts[] {
  const fromConfig = (name: string) => config?.services[name];
  const slo = (name: string) => {
    const p = fromConfig(name)?.scale?.policies.find((x) => x.kind === 'slo');
    return p?.kind === 'slo' ? { sloWaitSeconds: p.waitSeconds } : {};
  };
  const queues = (name: string) => {
    const q = fromConfig(name)?.queues;
    return q && !q.includes('*') ? { queues: q } : {};
  };
  if (ps) {
    return ps.services.map((s) => ({ name: s.name, kind: s.kind, desired: s.desired, healthy: s.healthy, min: s.min, max: s.max, ...queues(s.name), ...slo(s.name) }));
  }
  // without a running tide up the counts are unknown: the config gives bounds and queues only
  return Object.values(config?.services ?? {}).map((s) => ({ name: s.name, kind: s.kind, min: s.min, max: s.max, ...queues(s.name), ...slo(s.name) }));
}

function upstreamFacts(a: BalancerStats | undefined, b: BalancerStats | undefined): UpstreamFacts[] | undefined {
  if (!b) return undefined;
  return b.upstreams.map((u) => {
    const before = a?.upstreams.find((x) => x.id === u.id);
    const delta = (now: number, then: number | undefined) => (then === undefined || now < then ? now : now - then);
    return { id: u.id, healthy: u.healthy, draining: u.draining, requests: delta(u.requests, before?.requests), inFlight: u.in_flight, failures: delta(u.failures, before?.failures) };
  });
}

function balancerFacts(a: BalancerStats | undefined, b: BalancerStats): NonNullable<Facts['balancer']> {
  const delta = (now: number, then: number | undefined) => (then === undefined || now < then ? now : now - then);
  return { rateLimited: delta(b.totals.rate_limited, a?.totals.rate_limited), noUpstream: delta(b.totals.no_upstream, a?.totals.no_upstream) };
}

function queueFactsFromApi(a: Snapshot['queues'], b: Snapshot['queues']): QueueFacts[] {
  if (!b) return [];
  return b.rows.map((row) => {
    const before = a?.rows.find((r) => r.queue === row.queue);
    return {
      name: row.queue,
      source: b.from,
      depth: row.ready,
      ...(before ? { depthBefore: before.ready, completed: Math.max(0, row.completions_total - before.completions_total) } : {}),
      ...(row.oldest_ready_age_s === null ? {} : { oldestAgeSeconds: row.oldest_ready_age_s }),
      active: row.active,
    };
  });
}

function latest(samples: Sample[] | undefined, metric: string): number | undefined {
  let value: number | undefined;
  for (const s of samples ?? []) if (s.metric === metric && Number.isFinite(s.value)) value = s.value;
  return value;
}

function queueFactsFromSources(sources: NamedSource[], a: Map<string, Sample[]>, b: Map<string, Sample[]>): QueueFacts[] {
  const out: QueueFacts[] = [];
  for (const s of sources) {
    const depth = latest(b.get(s.name), METRIC.queueDepth);
    if (depth === undefined) continue;
    const before = latest(a.get(s.name), METRIC.queueDepth);
    const doneA = latest(a.get(s.name), METRIC.completionsTotal);
    const doneB = latest(b.get(s.name), METRIC.completionsTotal);
    const age = latest(b.get(s.name), METRIC.oldestAge);
    const active = latest(b.get(s.name), METRIC.inFlight);
    const consumers = latest(b.get(s.name), 'consumers');
    out.push({
      name: s.name,
      source: `source ${s.name}`,
      service: s.service,
      depth,
      ...(before === undefined ? {} : { depthBefore: before }),
      ...(age === undefined ? {} : { oldestAgeSeconds: age }),
      ...(active === undefined ? {} : { active }),
      ...(consumers === undefined ? {} : { consumers }),
      ...(doneA !== undefined && doneB !== undefined ? { completed: Math.max(0, doneB - doneA) } : {}),
    });
  }
  return out;
}

/** A source's API latency and error rate (a Prometheus query, say) as one more "replica". */
function sourceApiFacts(sources: NamedSource[], b: Map<string, Sample[]>, out: ApiReplicaFacts[]): void {
  for (const s of sources) {
    const p95 = latest(b.get(s.name), METRIC.latencyP95);
    const errorRate = latest(b.get(s.name), METRIC.errorRate);
    if (p95 === undefined && errorRate === undefined) continue;
    out.push({ id: `${s.service} (source ${s.name})`, ...(p95 === undefined ? {} : { p95Seconds: p95 }), ...(errorRate === undefined ? {} : { errorRate }) });
  }
}
