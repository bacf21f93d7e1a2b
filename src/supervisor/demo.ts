/**
 * `tide demo`: the whole system on this machine under a built-in load, narrated.
 *
 * Design note. Three loops share one clock (the demo's start):
 * - the load generator, an open model: Poisson arrivals at the scenario's rate λ(t), each a
 *   `POST /v1/jobs` (the `sleep` handler, lognormal mean 200 ms, cv 1) through the balancer.
 *   Open means arrivals do not wait for answers, as real clients do not; a cap on requests
 *   in flight keeps a stalled system from piling up sockets (those arrivals count as shed).
 *   Inter-arrival times come from a seeded generator, so a run's load is reproducible.
 * - the scaler, every tick: until the live autoscaler lands this is a scripted rule (the
 *   capacity the measured arrival rate needs at 75% utilisation, plus enough to clear the
 *   backlog within a few seconds; up at once, down one replica at a time after three calm
 *   ticks), applied through the supervisor like `tide scale`.
 * - the reporter: one line per interval (replicas, depth, oldest age, jobs/s, API p95) and a
 *   summary at the end, after the load stops and the queue drains. `lost` counts accepted
 *   jobs (202) that neither completed nor failed once the queue is empty: it must be 0.
 */
import type { QueueStats } from '../runtime/queue/types.js';
import { TideError } from '../errors.js';
import type { RunningSystem } from './system.js';

export type Scenario = 'calm-spike' | 'steady' | 'ramp';
export const SCENARIOS: readonly Scenario[] = ['calm-spike', 'steady', 'ramp'];

/** Jobs per second asked of the system at `fraction` (0..1) of the run. */
export function arrivalRate(scenario: Scenario, fraction: number): number {
  switch (scenario) {
    // sized for a small machine (2 cores) running everything: one worker serves ~50 jobs/s
    case 'steady':
      return 40;
    case 'ramp':
      return 10 + 90 * Math.min(1, Math.max(0, fraction));
    case 'calm-spike':
      return fraction >= 0.35 && fraction < 0.7 ? 100 : 15;
  }
}

export interface DemoOptions {
  system: RunningSystem;
  minutes: number;
  scenario: Scenario;
  /** Status line period. Default 5 s (shorter for short runs). */
  intervalMs?: number;
  print: (line: string) => void;
  seed?: number;
  /** Most requests in flight from the generator. Default 256. */
  maxInFlight?: number;
}

export interface DemoSummary {
  scenario: Scenario;
  seconds: number;
  /** Arrivals the generator made, and what became of them. */
  offered: number;
  shed: number;
  accepted: number;
  rejected: number;
  completed: number;
  failed: number;
  lost: number;
  /** Time from enqueue to start, p95 over a sample of the accepted jobs. */
  waitP95Ms: number | null;
  apiP95Ms: number | null;
  peakDepth: number;
  peakOldestSeconds: number;
  replicas: Record<string, { min: number; max: number; timeline: string }>;
  scaleEvents: Array<{ atSeconds: number; service: string; from: number; to: number; why: string }>;
}

const MEAN_SERVICE_MS = 200;
const CONCURRENCY = 10;
const TARGET_UTILISATION = 0.75;
const BACKLOG_CLEAR_SECONDS = 5;

/** A small seeded PRNG (mulberry32): reproducible arrivals. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Workers the scripted rule asks for (see the design note). */
export function scriptedWorkers(ratePerSecond: number, depth: number, max: number): number {
  const perWorker = (CONCURRENCY * 1000) / MEAN_SERVICE_MS;
  const forRate = ratePerSecond / (perWorker * TARGET_UTILISATION);
  const forBacklog = depth / (perWorker * BACKLOG_CLEAR_SECONDS);
  return Math.min(max, Math.max(1, Math.ceil(forRate + forBacklog)));
}

function sum(stats: QueueStats[]) {
  return stats.reduce(
    (t, s) => ({
      ready: t.ready + s.ready,
      active: t.active + s.active,
      oldest: Math.max(t.oldest, s.oldestReadyAgeSeconds),
      arrivals: t.arrivals + s.arrivalsTotal,
      completions: t.completions + s.completionsTotal,
      failures: t.failures + s.failuresTotal,
      dead: t.dead + s.dead,
    }),
    { ready: 0, active: 0, oldest: 0, arrivals: 0, completions: 0, failures: 0, dead: 0 },
  );
}

/** Runs the load, the scripted scaler and the reporter; resolves with the summary. */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const { system, print, scenario } = options;
  const balancer = system.balancer;
  if (!balancer) throw new TideError('TIDE_INTERNAL', 'The demo needs its api service behind the balancer.');
  const { createPostgresQueue } = await import('../runtime/queue/postgres.js');
  const queue = await createPostgresQueue({ connectionString: system.databaseUrl, schema: system.schema, poolSize: 2, migrate: false });
  const durationMs = options.minutes * 60_000;
  const intervalMs = options.intervalMs ?? Math.min(5_000, Math.max(1_000, durationMs / 10));
  const maxInFlight = options.maxInFlight ?? 256;
  const random = seeded(options.seed ?? 42);
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  const sup = system.supervisor;

  const baseline = sum(await queue.stats());
  const tally = { offered: 0, shed: 0, accepted: 0, rejected: 0, inFlight: 0 };
  const acceptedIds: string[] = [];
  let latencies: number[] = [];
  const allLatencies: number[] = [];
  const rejections = new Map<string, number>();

  // --- the load generator
  const jobsUrl = `${balancer.url.replace('0.0.0.0', '127.0.0.1')}/v1/jobs`;
  const body = JSON.stringify({ handler: 'sleep', payload: { mean_ms: MEAN_SERVICE_MS, cv: 1 } });
  const pending = new Set<Promise<void>>();
  const send = () => {
    tally.offered++;
    if (tally.inFlight >= maxInFlight) return void tally.shed++;
    tally.inFlight++;
    const t0 = performance.now();
    const request = fetch(jobsUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      .then(async (res) => {
        const text = await res.text();
        const ms = performance.now() - t0;
        latencies.push(ms);
        allLatencies.push(ms);
        if (res.status === 202 || res.status === 201 || res.status === 200) {
          tally.accepted++;
          const id = (JSON.parse(text) as { id?: string }).id;
          if (id) acceptedIds.push(id);
        } else {
          tally.rejected++;
          rejections.set(String(res.status), (rejections.get(String(res.status)) ?? 0) + 1);
        }
      })
      .catch((err: unknown) => {
        tally.rejected++;
        const key = (err as { cause?: { code?: string } }).cause?.code ?? 'network';
        rejections.set(key, (rejections.get(key) ?? 0) + 1);
      })
      .finally(() => {
        tally.inFlight--;
        pending.delete(request);
      });
    pending.add(request);
  };
  let generating = true;
  let nextArrival = 0;
  let loadTimer: NodeJS.Timeout | undefined;
  const loadDone = new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = Date.now() - started;
      if (!generating || elapsed >= durationMs) return resolve();
      while (nextArrival <= elapsed) {
        send();
        const rate = arrivalRate(scenario, nextArrival / durationMs);
        nextArrival += (-Math.log(1 - random()) / rate) * 1000;
      }
      loadTimer = setTimeout(tick, Math.max(1, Math.min(50, nextArrival - elapsed)));
    };
    tick();
  });

  // --- the scripted scaler and the reporter
  const scaleEvents: DemoSummary['scaleEvents'] = [];
  const timelines = new Map<string, number[]>();
  const busy = new Set<string>();
  let calmTicks = 0;
  let peakDepth = 0;
  let peakOldest = 0;
  let previous = baseline;
  let previousAt = Date.now();
  const scale = (service: string, to: number, why: string) => {
    const status = sup.ps().services.find((s) => s.name === service);
    if (!status || busy.has(service) || status.desired === to) return;
    scaleEvents.push({ atSeconds: seconds(), service, from: status.desired, to, why });
    print(`  scale ${service} ${status.desired} -> ${to}: ${why}`);
    busy.add(service);
    sup
      .scale(service, to, { by: 'demo' })
      .catch((err: unknown) => print(`  scale ${service} failed: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => busy.delete(service));
  };
  const report = async (final = false) => {
    const now = Date.now();
    const current = sum(await queue.stats());
    const dt = Math.max(0.001, (now - previousAt) / 1000);
    const arrivalRateNow = (current.arrivals - previous.arrivals) / dt;
    const doneRate = (current.completions - previous.completions) / dt;
    previous = current;
    previousAt = now;
    peakDepth = Math.max(peakDepth, current.ready);
    peakOldest = Math.max(peakOldest, current.oldest);
    const ps = sup.ps();
    for (const s of ps.services) timelines.set(s.name, [...(timelines.get(s.name) ?? []), s.healthy]);
    const p95 = percentile(latencies, 95);
    latencies = [];
    const replicas = ps.services.map((s) => `${s.name} ${s.healthy}${s.desired !== s.healthy ? `->${s.desired}` : ''}`).join('  ');
    print(
      `${String(Math.round(seconds())).padStart(4)}s  ${replicas}  depth ${String(current.ready).padStart(4)}  oldest ${current.oldest.toFixed(1)}s  ` +
        `in ${arrivalRateNow.toFixed(0)}/s  done ${doneRate.toFixed(0)}/s  api p95 ${p95 === null ? '-' : `${p95.toFixed(0)}ms`}`,
    );
    if (final) return;
    const worker = ps.services.find((s) => s.kind === 'worker');
    if (worker) {
      const want = scriptedWorkers(arrivalRateNow, current.ready, worker.max);
      if (want > worker.desired) {
        calmTicks = 0;
        scale(worker.name, want, `${arrivalRateNow.toFixed(0)} jobs/s in, ${current.ready} waiting, oldest ${current.oldest.toFixed(1)}s`);
      } else if (want < worker.desired && ++calmTicks >= 3) {
        calmTicks = 0;
        scale(worker.name, worker.desired - 1, `calm: ${want} would do`);
      } else if (want >= worker.desired) calmTicks = 0;
    }
    const api = ps.services.find((s) => s.kind === 'api');
    if (api && p95 !== null) {
      // a slow p95 at a trickle is a busy machine, not a busy API: ask for a real rate too
      if ((p95 > 250 && arrivalRateNow > 30) || arrivalRateNow > 120) {
        if (api.desired < api.max) scale(api.name, api.desired + 1, `api p95 ${p95.toFixed(0)} ms at ${arrivalRateNow.toFixed(0)} req/s`);
      }
      else if (p95 < 30 && arrivalRateNow < 50 && api.desired > api.min && calmTicks >= 2) scale(api.name, api.desired - 1, 'calm');
    }
  };

  print(`demo: scenario ${scenario}, ${options.minutes} min; load through ${balancer.url}; a line every ${(intervalMs / 1000).toFixed(0)} s`);
  let reporting = Promise.resolve();
  const reporter = setInterval(() => {
    reporting = reporting.then(() => report()).catch((err: unknown) => print(`  (status read failed: ${String(err)})`));
  }, intervalMs);
  try {
    await loadDone;
  } finally {
    generating = false;
    if (loadTimer) clearTimeout(loadTimer);
    clearInterval(reporter);
    await reporting;
  }
  await Promise.all([...pending]);

  // --- drain: the queue empties (bounded), then count
  print(`load stopped after ${seconds()} s; waiting for the queue to drain`);
  const drainDeadline = Date.now() + 120_000;
  let end = sum(await queue.stats());
  while (end.ready + end.active > 0 && Date.now() < drainDeadline) {
    await new Promise((r) => setTimeout(r, 250));
    end = sum(await queue.stats());
  }
  await report(true);

  const sample = acceptedIds.filter((_, i) => i % Math.max(1, Math.floor(acceptedIds.length / 400)) === 0);
  const waits: number[] = [];
  for (const id of sample) {
    const job = await queue.getJob(id);
    if (job?.startedAt != null) waits.push(job.startedAt - Math.max(job.createdAt, job.runAt));
  }
  await queue.close();

  const completed = end.completions - baseline.completions;
  const failed = end.dead - baseline.dead;
  const replicas: DemoSummary['replicas'] = {};
  for (const [name, counts] of timelines) {
    const changes = counts.filter((c, i) => i === 0 || c !== counts[i - 1]);
    replicas[name] = { min: Math.min(...counts), max: Math.max(...counts), timeline: changes.join(' -> ') };
  }
  if (rejections.size > 0) print(`  rejected requests by cause: ${[...rejections].map(([k, v]) => `${k} x${v}`).join(', ')}`);
  return {
    scenario,
    seconds: seconds(),
    offered: tally.offered,
    shed: tally.shed,
    accepted: tally.accepted,
    rejected: tally.rejected,
    completed,
    failed,
    lost: Math.max(0, tally.accepted - completed - failed),
    waitP95Ms: percentile(waits, 95),
    apiP95Ms: percentile(allLatencies, 95),
    peakDepth,
    peakOldestSeconds: peakOldest,
    replicas,
    scaleEvents,
  };
}
