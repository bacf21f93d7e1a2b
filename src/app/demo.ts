/**
 * `tide demo`: the whole system on this machine under a built-in load, narrated.
 *
 * Design note. Three loops share one clock (the demo's start):
 * - the load generator, an open model: Poisson arrivals at the scenario's rate λ(t), each a
 *   `POST /v1/jobs` (the `sleep` handler, lognormal mean 200 ms, cv 1) through the balancer.
 *   Open means arrivals do not wait for answers, as real clients do not; a cap on requests
 *   in flight keeps a stalled system from piling up sockets (those arrivals count as shed).
 *   Inter-arrival times come from a seeded generator, so a run's load is reproducible.
 * - the autoscaler of `tide up` (src/controller), from the demo project's own `scale:` blocks
 *   (DEMO_CONFIG): the workers on an SLO, the api on its replicas' CPU. The demo only listens
 *   to its decisions ('decision' events) and prints the ones that change a count.
 * - the reporter: one line per interval (replicas, depth, oldest age, jobs/s, API p95, and
 *   what the autoscaler last said per service) and a summary at the end, after the load stops
 *   and the queue drains. `lost` counts accepted jobs (202) that neither completed nor failed
 *   once the queue is empty: it must be 0.
 */
import type { DecisionRecord } from '../controller/controller.js';
import type { Reason } from '../core/types.js';
import { TideError } from '../errors.js';
import { Histogram } from '../load/histogram.js';
import { mulberry32 } from '../random.js';
import type { QueueStats } from '../runtime/queue/types.js';
import type { RunningSystem } from './system.js';

export type Scenario = 'calm-spike' | 'steady' | 'ramp';
export const SCENARIOS: readonly Scenario[] = ['calm-spike', 'steady', 'ramp'];

/** The calm-spike scenario's spike, as fractions of the run. */
const SPIKE = [0.35, 0.7] as const;

/** Jobs per second asked of the system at `fraction` (0..1) of the run. */
export function arrivalRate(scenario: Scenario, fraction: number): number {
  switch (scenario) {
    // sized for a small machine (2 cores) running everything: one worker serves ~50 jobs/s, so
    // the spike needs a third worker (two would run at exactly capacity: a queue that never drains)
    case 'steady':
      return 40;
    case 'ramp':
      return 10 + 90 * Math.min(1, Math.max(0, fraction));
    case 'calm-spike':
      return fraction >= SPIKE[0] && fraction < SPIKE[1] ? 120 : 15;
  }
}

/**
 * The demo's project, as a tide.yaml would say it (ports 0: any free ones). Workers keep a
 * promise, "95% of jobs start within 3 s" (the SLO policy sizes them from the arrival rate,
 * the service time and the backlog); the api aims at half a core per replica, measured from
 * its processes. A 2 s round suits a run of a few minutes; the api's scale-down window is
 * shortened from the HPA's 300 s for the same reason.
 */
export function demoConfig(options: { stateDir: string; schema: string }): string {
  return [
    'project: demo',
    `state_dir: ${JSON.stringify(options.stateDir)}`,
    `database: { schema: ${options.schema} }`,
    'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 1 } }',
    'control: { host: 127.0.0.1, port: 0 }',
    'autoscale: { interval_seconds: 2, manual_pause_seconds: 60 }',
    'services:',
    '  api:',
    '    kind: api',
    '    replicas: 1',
    '    min: 1',
    '    max: 3',
    '    stop_grace_seconds: 10',
    '    sources: { cpu: { kind: process } }',
    '    scale:',
    '      policies: [{ kind: target, metric: cpu_utilization, type: utilization, target: 0.5 }]',
    '      behavior: { scaleDown: { stabilizationWindowSeconds: 30 } }',
    '  worker:',
    '    kind: worker',
    '    replicas: 1',
    '    min: 1',
    '    max: 8',
    `    concurrency: ${CONCURRENCY}`,
    '    stop_grace_seconds: 15',
    '    scale:',
    '      policies: [{ kind: slo, waitSeconds: 3, attainment: 0.95, startupSeconds: 2 }]',
  ].join('\n');
}

export interface DemoOptions {
  system: RunningSystem;
  minutes: number;
  scenario: Scenario;
  /** Status line period. Default 5 s (shorter for short runs). */
  intervalMs?: number;
  print: (line: string) => void;
  seed?: number;
  /** The workers' SLO wait: the summary tells the share of jobs that started within it. */
  sloWaitSeconds?: number;
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
  /** The share (0..1) of the sampled jobs that started within `sloWaitSeconds`, when given. */
  withinSloWait: number | null;
  apiP95Ms: number | null;
  peakDepth: number;
  peakOldestSeconds: number;
  replicas: Record<string, { min: number; max: number; timeline: string }>;
  /** The seconds of the run the spike lasts (calm-spike only). */
  spike: { fromSeconds: number; toSeconds: number } | null;
  /** The autoscaler's rounds over the run, and each decision that changed a count. */
  autoscaler: {
    rounds: number;
    decisions: DemoDecision[];
    /** Each service's last decision at the end: its count, codes and sentence (why it holds). */
    last: Record<string, { desired: number; codes: string[]; why: string }>;
  };
}

/** One decision of the autoscaler that changed a service's count. */
export interface DemoDecision {
  atSeconds: number;
  service: string;
  from: number;
  to: number;
  direction: 'up' | 'down';
  /** Applied through the supervisor (false: paused by a manual scale). */
  applied: boolean;
  /** The reason codes that made it: the winning policy's, and the step that bounded it. */
  reasons: string[];
  /** The winning policy's sentence. */
  why: string;
}

const MEAN_SERVICE_MS = 200;
const CONCURRENCY = 10;

/** A small seeded PRNG (mulberry32): reproducible arrivals. */
export const seeded: (seed: number) => () => number = mulberry32;

/** The 95th percentile of what a histogram holds (ms), or null when it holds nothing. */
function p95(h: Histogram): number | null {
  return h.count === 0 ? null : h.percentile(95);
}

/**
 * The codes that explain a decision in a few words: the proposal that won (the largest
 * replica count a policy asked for) and the step that bounded the result, if one did.
 */
export function headline(reasons: readonly Reason[], limitedBy: string | null): { codes: string[]; why: string } {
  const proposals = reasons.filter((r) => r.policy !== undefined && r.replicas !== undefined);
  const winner = proposals.reduce<Reason | undefined>((best, r) => (best === undefined || r.replicas! > best.replicas! ? r : best), undefined) ?? reasons[0];
  const codes = [winner?.code, limitedBy].filter((c): c is string => !!c);
  return { codes: [...new Set(codes)], why: winner?.message ?? '' };
}

/**
 * A reason's sentence and its figures, for two readable lines: the core's sentences end with
 * the measurements in parentheses ("... (arrivals 16/s fast, ...; backlog 72, oldest 0.6 s).").
 */
export function splitFigures(sentence: string): [string, string | undefined] {
  const m = /^(.*?) (\(.*\))\.?$/.exec(sentence);
  return m ? [m[1]!, m[2]!] : [sentence, undefined];
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

/** Runs the load and the reporter while the system's autoscaler scales; resolves with the summary. */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const { system, print, scenario } = options;
  const balancer = system.balancer;
  if (!balancer) throw new TideError('TIDE_INTERNAL', 'The demo needs its api service behind the balancer.');
  const autoscaler = system.autoscaler;
  if (!autoscaler) throw new TideError('TIDE_INTERNAL', 'The demo needs the autoscaler of its system (startSystem without `autoscaler: false`).');
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
  let latencies = new Histogram();
  const allLatencies = new Histogram();
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
        latencies.record(ms);
        allLatencies.record(ms);
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

  // --- the autoscaler's decisions, as they come
  const decisions: DemoDecision[] = [];
  const roundsAtStart = autoscaler.controller.rounds;
  // a paused service (a `tide scale` during the demo) is decided on every round: say it once
  const unapplied = new Map<string, string>();
  const onDecision = (record: DecisionRecord) => {
    const move = `${record.current}->${record.desired}`;
    if (record.applied || record.desired === record.current) unapplied.delete(record.service);
    if (record.desired === record.current) return;
    if (!record.applied) {
      if (unapplied.get(record.service) === move) return;
      unapplied.set(record.service, move);
    }
    const { codes, why } = headline(record.reasons, record.limitedBy);
    const decision: DemoDecision = {
      atSeconds: seconds(),
      service: record.service,
      from: record.current,
      to: record.desired,
      direction: record.desired > record.current ? 'up' : 'down',
      applied: record.applied,
      reasons: codes,
      why,
    };
    decisions.push(decision);
    const note = record.applied ? '' : record.paused ? ' (paused by a manual scale: not applied)' : ' (not applied)';
    const [sentence, figures] = splitFigures(why);
    print(`        autoscaler: ${record.service} ${record.current} -> ${record.desired} [${codes.join(', ')}]${note} ${sentence}`);
    if (figures) print(`                    ${figures}`);
  };
  autoscaler.controller.on('decision', onDecision);

  // --- the reporter
  const timelines = new Map<string, number[]>();
  let peakDepth = 0;
  let peakOldest = 0;
  let previous = baseline;
  let previousAt = Date.now();
  const report = async () => {
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
    const apiP95 = p95(latencies);
    latencies = new Histogram();
    const said = new Map(autoscaler.status().map((st) => [st.service, st.lastDecision]));
    const replicas = ps.services
      .map((s) => {
        const last = said.get(s.name);
        const wants = last ? ` [${last.desired} ${headline(last.reasons, last.limitedBy).codes.join(', ')}]` : '';
        return `${s.name} ${s.healthy}${s.desired !== s.healthy ? `->${s.desired}` : ''}${wants}`;
      })
      .join('  ');
    print(
      `${String(Math.round(seconds())).padStart(4)}s  ${replicas}  depth ${String(current.ready).padStart(4)}  oldest ${current.oldest.toFixed(1)}s  ` +
        `in ${arrivalRateNow.toFixed(0)}/s  done ${doneRate.toFixed(0)}/s  api p95 ${apiP95 === null ? '-' : `${apiP95.toFixed(0)}ms`}`,
    );
  };

  let end: ReturnType<typeof sum>;
  try {
    print(`demo: scenario ${scenario}, ${options.minutes} min; load through ${balancer.url}; a line every ${(intervalMs / 1000).toFixed(0)} s:`);
    print('  healthy replicas (->asked for) [what the autoscaler last decided, and why], jobs waiting, the oldest one\'s age, jobs/s in and done, API p95');
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
    end = sum(await queue.stats());
    while (end.ready + end.active > 0 && Date.now() < drainDeadline) {
      await new Promise((r) => setTimeout(r, 250));
      end = sum(await queue.stats());
    }
    await report();
  } finally {
    autoscaler.controller.off('decision', onDecision);
  }

  const sample = acceptedIds.filter((_, i) => i % Math.max(1, Math.floor(acceptedIds.length / 400)) === 0);
  const waits = new Histogram();
  let withinWait = 0;
  for (const id of sample) {
    const job = await queue.getJob(id);
    if (job?.startedAt == null) continue;
    const wait = job.startedAt - Math.max(job.createdAt, job.runAt);
    waits.record(wait);
    if (options.sloWaitSeconds !== undefined && wait <= options.sloWaitSeconds * 1000) withinWait++;
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
    waitP95Ms: p95(waits),
    withinSloWait: options.sloWaitSeconds === undefined || waits.count === 0 ? null : withinWait / waits.count,
    apiP95Ms: p95(allLatencies),
    peakDepth,
    peakOldestSeconds: peakOldest,
    replicas,
    spike: scenario === 'calm-spike' ? { fromSeconds: SPIKE[0] * options.minutes * 60, toSeconds: SPIKE[1] * options.minutes * 60 } : null,
    autoscaler: {
      rounds: autoscaler.controller.rounds - roundsAtStart,
      decisions,
      last: Object.fromEntries(
        autoscaler.status().flatMap((st) => (st.lastDecision ? [[st.service, { desired: st.lastDecision.desired, ...headline(st.lastDecision.reasons, st.lastDecision.limitedBy) }]] : [])),
      ),
    },
  };
}
