/**
 * Live replay benchmark: what the simulator promises against what a real `tide up` delivers.
 *
 * `npm run bench:live [-- --json] [--minutes 12] [--trace file.csv] [--from 6000] [--window 3600] [--rate 2]`
 *
 * A window of a real arrival trace (default: the NASA STS-70 launch day, 1 s steps, from
 * ../shared/traces/real, read from there) is time-compressed so that two live runs fit in
 * `--minutes`, and its counts are multiplied by `--rate` so the peak needs several replicas.
 * Each live run starts the local system as `tide up` does (the jobs API behind the balancer,
 * worker replicas running the built-in `sleep` handler with lognormal 200 ms jobs, cv 1,
 * concurrency 4, the autoscaler on, the embedded PostgreSQL or DATABASE_URL) and replays the
 * window through `tide load`'s open model. Two runs: tide's SLO policy, then the HPA on queue
 * depth per replica (a `target` policy with the HPA's default behaviour, a 15 s round).
 *
 * Measured from the system itself: each job's wait (started_at - run_at) from the jobs table;
 * attainment and wait percentiles; replica-seconds from the supervisor's replica lifetimes
 * (spawned until exited); scale events and flaps (a reversal within 300 s) from the decision
 * journal; the start-up (spawn to the replica's health check, which it passes just before its
 * first claim). Then the same jobs (their arrival times and their measured service times)
 * through `tide simulate`'s engine with the same policy, bounds, round interval and the measured
 * start-up, and the differences. The controller's estimates (the arrival rate and service time
 * in its decision messages) are checked against the true ones over time, and the decisions of
 * the first 20 s (which a five-minute replay keeps) are printed live and simulated side by side.
 *
 * Writes bench/charts/live.svg (replicas, p95 wait and queue depth, live against simulated). The last stdout
 * line with --json: {"live":{..},"sim":{..},"gap":{..},"baseline_live":{..},"baseline_sim":{..},"startup_s":..,"estimates":{..},"first_rounds":{"live":[..],"sim":[..]}}.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import pg from 'pg';

import { parseConfig } from '../src/config/load.js';
import type { ServicePolicy } from '../src/core/types.js';
import type { JournalEntry } from '../src/controller/journal.js';
import { fallbackDataDir } from '../src/db/embedded.js';
import { resolveDatabase } from '../src/db/connect.js';
import { runLoad } from '../src/load/run.js';
import { loadTraceFile } from '../src/load/trace.js';
import { renderChart } from '../src/sim/chart.js';
import { type RunResult, countFlaps, percentiles, queueDepthSeries, simulate } from '../src/sim/engine.js';
import type { Jobs } from '../src/sim/jobs.js';
import type { PolicyRun } from '../src/sim/run.js';
import type { Scenario } from '../src/sim/scenario.js';
import { configPolicy } from '../src/sim/tide.js';
import { startSystem } from '../src/app/system.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    minutes: { type: 'string', default: '12' },
    trace: { type: 'string', default: path.join(here, '..', '..', 'shared', 'traces', 'real', 'nasa-http-1995-07-13-sts70-launch-1s.csv') },
    from: { type: 'string', default: '6000' },
    window: { type: 'string', default: '3600' },
    rate: { type: 'string', default: '2' },
  },
});
const json = values.json === true;
const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);

// The workload and the promise (the same for live and simulated runs).
const SERVICE_MS = 200;
const SERVICE_CV = 1;
const CONCURRENCY = 4;
const MIN = 1;
const MAX = 10;
const WAIT_S = 2;
const ATTAINMENT = 0.99;
/** What the policy is told the start-up is; the simulator gets the one measured. */
const STARTUP_GUESS_S = 1;
/** The HPA's queue-depth target per replica: the jobs a replica starts within W (concurrency x W / S). */
const HPA_TARGET = Math.round((CONCURRENCY * WAIT_S) / (SERVICE_MS / 1000));
const BUCKET_S = 10;

const minutes = Number(values.minutes);
const from = Number(values.from);
const windowSeconds = Number(values.window);
const rateScale = Number(values.rate);
if (!(minutes >= 3) || !(windowSeconds > 0) || !(from >= 0) || !(rateScale > 0)) {
  console.error('usage: npm run bench:live -- [--json] [--minutes >=3] [--trace file.csv] [--from s] [--window s] [--rate x]');
  process.exit(2);
}
// two live runs; a minute each for start, drain and stop
const loadSeconds = Math.max(60, (minutes * 60 - 120) / 2);
const compression = windowSeconds / loadSeconds;

interface Policy {
  name: string;
  intervalSeconds: number;
  scale: string;
}
const TIDE: Policy = {
  name: 'tide',
  intervalSeconds: 5,
  scale: `policies: [{ kind: slo, waitSeconds: ${WAIT_S}, attainment: ${ATTAINMENT}, startupSeconds: ${STARTUP_GUESS_S} }]`,
};
const HPA: Policy = {
  name: 'hpa',
  intervalSeconds: 15,
  scale: `policies: [{ kind: target, metric: queue_depth, type: average, target: ${HPA_TARGET} }]`,
};

/** The run under way (its system and directory), for an interrupt to stop and remove. */
let current: { system: Awaited<ReturnType<typeof startSystem>>; dir: string } | undefined;

interface LiveJob {
  /** Seconds from the run's start. */
  arrival: number;
  /** Wait, s (Infinity when it never started). */
  wait: number;
  /** Measured service time, s (NaN when it did not finish). */
  service: number;
}

interface Lifetime {
  pid: number;
  spawned: number;
  healthy?: number;
  exited?: number;
}

interface LiveRun {
  policy: Policy;
  servicePolicy: ServicePolicy;
  jobs: LiveJob[];
  lifetimes: Lifetime[];
  journal: JournalEntry[];
  /** ms epoch of t = 0 (the load's start) and of the end of the measured span. */
  t0: number;
  end: number;
  dropped: number;
  failed: number;
}

interface Figures {
  jobs: number;
  attainment: number;
  wait_p50_s: number;
  wait_p95_s: number;
  wait_p99_s: number;
  replica_s: number;
  events: number;
  flaps: number;
}

function trace(): { t: number[]; count: number[] } {
  const all = loadTraceFile(values.trace!);
  const t: number[] = [];
  const count: number[] = [];
  for (let i = 0; i < all.t.length; i++) {
    const at = all.t[i]!;
    if (at < from || at >= from + windowSeconds) continue;
    t.push(at - from);
    count.push(all.count[i]! * rateScale);
  }
  if (t.length === 0) throw new Error(`the trace has no steps in ${from}..${from + windowSeconds} s`);
  return { t, count };
}

async function live(policy: Policy, databaseUrl: string, window: { t: number[]; count: number[] }): Promise<LiveRun> {
  const schema = `bench_live_${randomBytes(4).toString('hex')}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-bench-live-'));
  const config = parseConfig(
    [
      'project: live',
      `database: { url: "${databaseUrl}", schema: ${schema} }`,
      'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 1 } }',
      'control: { host: 127.0.0.1, port: 0 }',
      `autoscale: { interval_seconds: ${policy.intervalSeconds} }`,
      'services:',
      '  api:',
      '    kind: api',
      '    replicas: 1',
      '  worker:',
      '    kind: worker',
      `    replicas: ${MIN}`,
      `    min: ${MIN}`,
      `    max: ${MAX}`,
      `    concurrency: ${CONCURRENCY}`,
      '    stop_grace_seconds: 10',
      '    scale:',
      `      ${policy.scale}`,
      '',
    ].join('\n'),
    path.join(dir, 'tide.yaml'),
  );
  const servicePolicy = config.services.worker!.scale!;
  const system = await startSystem(config, { configDir: dir, log: () => {}, writeState: false });
  current = { system, dir };
  const lifetimes = new Map<number, Lifetime>();
  const onState = (r: { service?: string; id: string; pid: number | null; state: string }) => {
    if (r.pid === null || !r.id.startsWith('worker')) return;
    const now = Date.now();
    const life = lifetimes.get(r.pid) ?? { pid: r.pid, spawned: now };
    lifetimes.set(r.pid, life);
    if (r.state === 'healthy' && life.healthy === undefined) life.healthy = now;
    if (r.state === 'stopped' && life.exited === undefined) life.exited = now;
  };
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => {}); // an interrupt stops the database under it
  await client.connect();
  try {
    system.supervisor.on('state', onState);
    const startedAt = Date.now();
    for (const r of system.supervisor.ps().replicas) {
      if (r.pid !== null && r.id.startsWith('worker')) lifetimes.set(r.pid, { pid: r.pid, spawned: startedAt, healthy: startedAt });
    }
    const url = `${system.balancer!.url}/v1/jobs`;
    const body = JSON.stringify({ handler: 'sleep', payload: { mean_ms: SERVICE_MS, cv: SERVICE_CV } });
    say(`  ${policy.name}: replaying ${window.t.length} steps (${Math.round(window.count.reduce((a, b) => a + b, 0))} jobs) over ${loadSeconds} s through ${url}`);
    const t0 = Date.now();
    let lastLine = 0;
    const summary = await runLoad(
      { url, method: 'POST', headers: { 'content-type': 'application/json' }, body, trace: { t: window.t, count: window.count, compression }, isolate: true, threads: 1 },
      {
        onProgress: (p) => {
          if (p.elapsedMs - lastLine < 30_000) return;
          lastLine = p.elapsedMs;
          const workers = system.supervisor.ps().replicas.filter((r) => r.id.startsWith('worker')).length;
          say(`    ${Math.round(p.elapsedMs / 1000)} s: ${p.completed} enqueued, ${p.dropped} dropped, ${workers} worker replicas`);
        },
      },
    );
    // drain: what was accepted is worked off (bounded at a minute)
    for (let waited = 0; waited < 60_000; waited += 500) {
      const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".jobs WHERE state IN ('ready', 'active')`);
      if (Number(rows[0]!.n) === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const end = Date.now();
    const journal = await system.autoscaler!.journal.list({ service: 'worker', since: t0 - 1000, limit: 10_000 });
    const { rows } = await client.query<{ created: number; run: number; started: number | null; finished: number | null }>(
      `SELECT extract(epoch FROM created_at) * 1000 AS created, extract(epoch FROM run_at) * 1000 AS run,
              extract(epoch FROM started_at) * 1000 AS started, extract(epoch FROM finished_at) * 1000 AS finished
         FROM "${schema}".jobs`,
    );
    const jobs = rows
      .map((r) => ({
        arrival: (Number(r.created) - t0) / 1000,
        wait: r.started === null ? Number.POSITIVE_INFINITY : Math.max(0, (Number(r.started) - Number(r.run)) / 1000),
        service: r.started === null || r.finished === null ? Number.NaN : (Number(r.finished) - Number(r.started)) / 1000,
      }))
      .sort((a, b) => a.arrival - b.arrival);
    return { policy, servicePolicy, jobs, lifetimes: [...lifetimes.values()], journal: journal.reverse(), t0, end, dropped: summary.dropped, failed: summary.failed };
  } finally {
    current = undefined;
    system.supervisor.off('state', onState);
    await system.stop('benchmark done');
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await client.end();
    await rm(dir, { recursive: true, force: true });
  }
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Flaps as the simulator counts them: a change of the desired count reversing one the other way within 300 s. */
function liveFigures(run: LiveRun): Figures {
  const waits = run.jobs.map((j) => j.wait);
  const onTime = waits.filter((w) => w <= WAIT_S).length;
  // the simulator's percentiles, so both columns read the waits alike
  const [p50, p95, p99] = percentiles(Float64Array.from(waits), [0.5, 0.95, 0.99]);
  let replicaMs = 0;
  for (const l of run.lifetimes) replicaMs += Math.max(0, Math.min(l.exited ?? run.end, run.end) - Math.max(l.spawned, run.t0));
  const changes = run.journal.filter((e) => e.applied && e.desired !== e.current).map((e) => ({ at: (e.at - run.t0) / 1000, from: e.current, to: e.desired }));
  return {
    jobs: waits.length,
    attainment: round(onTime / Math.max(1, waits.length), 5),
    wait_p50_s: round(p50!),
    wait_p95_s: round(p95!),
    wait_p99_s: round(p99!),
    replica_s: Math.round(replicaMs / 1000),
    events: changes.length,
    flaps: countFlaps(changes),
  };
}

function simFigures(r: RunResult): Figures {
  return {
    jobs: r.jobs,
    attainment: round(r.attainment, 5),
    wait_p50_s: round(r.waitP50),
    wait_p95_s: round(r.waitP95),
    wait_p99_s: round(r.waitP99),
    replica_s: Math.round(r.replicaSeconds),
    events: r.scaleEvents,
    flaps: r.flaps,
  };
}

/** Spawn to health check, s, of the replicas started during the run (the median). */
function startup(run: LiveRun): number {
  const xs = run.lifetimes.filter((l) => l.spawned > run.t0 && l.healthy !== undefined).map((l) => (l.healthy! - l.spawned) / 1000);
  xs.sort((a, b) => a - b);
  return xs.length === 0 ? Number.NaN : xs[xs.length >> 1]!;
}

function scenarioFor(run: LiveRun, startupSeconds: number): { scenario: Scenario; jobs: Jobs } {
  const traceSeconds = (run.end - run.t0) / 1000;
  const known = run.jobs.filter((j) => Number.isFinite(j.service));
  const meanService = known.reduce((a, j) => a + j.service, 0) / Math.max(1, known.length);
  const arrivals = Float64Array.from(run.jobs.map((j) => Math.max(0, j.arrival)));
  const service = Float64Array.from(run.jobs.map((j) => (Number.isFinite(j.service) ? j.service : meanService)));
  const scenario: Scenario = {
    name: `live-${run.policy.name}`,
    file: 'live',
    traceFile: 'live',
    stepSeconds: 1,
    scale: 1,
    serviceTime: { dist: 'lognormal', meanSeconds: SERVICE_MS / 1000, cv: SERVICE_CV },
    concurrency: CONCURRENCY,
    startupSeconds,
    initialReplicas: MIN,
    minReplicas: MIN,
    maxReplicas: MAX,
    slo: { waitSeconds: WAIT_S, attainment: ATTAINMENT },
  };
  const lowerBoundSeconds = service.reduce((a, s) => a + s, 0) / CONCURRENCY;
  return { scenario, jobs: { arrivals, service, traceSeconds, lowerBoundSeconds, seed: 0 } };
}

/** The decisions of the first seconds, live or simulated: when, the count, and the figures the policy gave. */
interface FirstRound {
  at: number;
  desired: number;
  figures: string;
}

const FIRST_ROUNDS_S = 20;

/** The figures an SLO decision message gives ("arrivals ... oldest N s"), or the message itself. */
function figuresOf(reasons: ReadonlyArray<{ message: string }>): string {
  for (const r of reasons) {
    const m = /\((arrivals [^)]*)\)/.exec(r.message);
    if (m) return m[1]!;
  }
  return reasons[0]?.message ?? '';
}

async function simulated(run: LiveRun, startupSeconds: number, first: FirstRound[] = []): Promise<RunResult> {
  const { scenario, jobs } = scenarioFor(run, startupSeconds);
  const policy = configPolicy(run.servicePolicy, {
    name: `${run.policy.name} sim`,
    intervalSeconds: run.policy.intervalSeconds,
    onDecision: (obs, d) => {
      if (obs.now <= FIRST_ROUNDS_S) first.push({ at: obs.now, desired: d.desired, figures: figuresOf(d.reasons) });
    },
  });
  return simulate(scenario, jobs, policy, { seriesBucketSeconds: BUCKET_S });
}

/** The live run as the chart's series: arrivals, replicas paid per bucket, p95 wait of the jobs arriving in each. */
function liveResult(run: LiveRun, figures: Figures): RunResult {
  const traceSeconds = (run.end - run.t0) / 1000;
  const n = Math.ceil(traceSeconds / BUCKET_S);
  const arrivals = new Float64Array(n);
  const replicas = new Float64Array(n);
  const waitP95 = new Float64Array(n).fill(Number.NaN);
  const byBucket: number[][] = Array.from({ length: n }, () => []);
  for (const j of run.jobs) {
    const b = Math.min(n - 1, Math.max(0, Math.floor(j.arrival / BUCKET_S)));
    arrivals[b]!++;
    byBucket[b]!.push(j.wait);
  }
  byBucket.forEach((ws, b) => {
    if (ws.length > 0) waitP95[b] = percentiles(Float64Array.from(ws), [0.95])[0]!;
  });
  for (const l of run.lifetimes) {
    const a = Math.max(0, (l.spawned - run.t0) / 1000);
    const z = Math.min(traceSeconds, ((l.exited ?? run.end) - run.t0) / 1000);
    for (let b = Math.floor(a / BUCKET_S); b < n && b * BUCKET_S < z; b++) {
      const lo = Math.max(a, b * BUCKET_S);
      const hi = Math.min(z, (b + 1) * BUCKET_S);
      if (hi > lo) replicas[b]! += (hi - lo) / BUCKET_S;
    }
  }
  return {
    policy: `${run.policy.name} live`,
    jobs: figures.jobs,
    attainment: figures.attainment,
    waitP50: figures.wait_p50_s,
    waitP95: figures.wait_p95_s,
    waitP99: figures.wait_p99_s,
    waitMax: Number.NaN,
    replicaSeconds: figures.replica_s,
    lowerBoundSeconds: 0,
    efficiency: 0,
    scaleEvents: figures.events,
    flaps: figures.flaps,
    traceSeconds,
    aborted: false,
    desiredAt: { t: [], replicas: [] },
    series: {
      bucketSeconds: BUCKET_S,
      arrivals,
      replicas,
      waitP95,
      depth: queueDepthSeries(
        run.jobs.map((j) => j.arrival),
        run.jobs.map((j) => (Number.isFinite(j.wait) ? j.wait : traceSeconds)),
        n,
        BUCKET_S,
      ),
    },
  };
}

/**
 * The controller's beliefs against the truth: each round's planned arrival rate against the
 * jobs that arrived in the 10 s before it, and its service time against the mean of the jobs
 * finished in the minute before it (from the jobs table: the handler's draws as they ran).
 */
function estimates(run: LiveRun): { rounds: number; rate_error_median: number; service_error_median: number; service_first_s: number | null; service_true_s: number } {
  const figure = /planned ([\d.]+)\/s; service ([\d.]+) s/;
  const rateErrors: number[] = [];
  const serviceErrors: number[] = [];
  let first: number | null = null;
  const finished = run.jobs.filter((j) => Number.isFinite(j.service)).map((j) => ({ at: j.arrival + j.wait + j.service, s: j.service }));
  const trueMean = finished.reduce((a, f) => a + f.s, 0) / Math.max(1, finished.length);
  for (const e of run.journal) {
    const m = e.reasons.map((r) => figure.exec(r.message)).find((x) => x !== null);
    if (!m) continue;
    const at = (e.at - run.t0) / 1000;
    if (at < 20) {
      first ??= Number(m[2]);
      continue;
    }
    const arrived = run.jobs.filter((j) => j.arrival > at - 10 && j.arrival <= at).length / 10;
    if (arrived > 0) rateErrors.push(Math.abs(Number(m[1]) - arrived) / arrived);
    const recent = finished.filter((f) => f.at > at - 60 && f.at <= at);
    if (recent.length >= 20) {
      const mean = recent.reduce((a, f) => a + f.s, 0) / recent.length;
      serviceErrors.push(Math.abs(Number(m[2]) - mean) / mean);
    }
  }
  const median = (xs: number[]) => (xs.length === 0 ? Number.NaN : round(percentiles(Float64Array.from(xs), [0.5])[0]!));
  return { rounds: rateErrors.length, rate_error_median: median(rateErrors), service_error_median: median(serviceErrors), service_first_s: first, service_true_s: round(trueMean) };
}

function line(name: string, f: Figures): string {
  return `${name.padEnd(10)} attainment ${(f.attainment * 100).toFixed(2)}%  wait p50/p95/p99 ${f.wait_p50_s}/${f.wait_p95_s}/${f.wait_p99_s} s  ${f.replica_s} replica-s  ${f.events} scale events, ${f.flaps} flaps  (${f.jobs} jobs)`;
}

const window = trace();
say(
  `live replay: ${path.basename(values.trace!)} from ${from} s for ${windowSeconds} s, counts x${rateScale}, compressed ${round(compression, 2)}x into ${loadSeconds} s per run; ` +
    `sleep jobs lognormal ${SERVICE_MS} ms cv ${SERVICE_CV}, concurrency ${CONCURRENCY}, ${MIN}-${MAX} replicas; SLO ${ATTAINMENT * 100}% within ${WAIT_S} s`,
);
const stateDir = path.join('.tide', 'bench-live');
const database = await resolveDatabase({ url: process.env.DATABASE_URL, stateDir, log: say });
let stopping = false;
const interrupted = (signal: string) => {
  if (stopping) return;
  stopping = true;
  say(`${signal}: stopping what the benchmark started`);
  // the running system (its replicas at once) and its directory, then the database
  const run = current;
  void (run ? run.system.stop(signal, { now: true }).then(() => rm(run.dir, { recursive: true, force: true })) : Promise.resolve())
    .catch(() => {})
    .then(() => database.stop())
    .finally(() => process.exit(130));
};
process.on('SIGINT', () => interrupted('SIGINT'));
process.on('SIGTERM', () => interrupted('SIGTERM'));
try {
  const tide = await live(TIDE, database.url, window);
  const hpa = await live(HPA, database.url, window);
  const startupS = round(startup(tide) || startup(hpa) || STARTUP_GUESS_S, 2);
  const tideLive = liveFigures(tide);
  const hpaLive = liveFigures(hpa);
  const simFirst: FirstRound[] = [];
  const tideSimRun = await simulated(tide, startupS, simFirst);
  const hpaSimRun = await simulated(hpa, startupS);
  const tideSim = simFigures(tideSimRun);
  const hpaSim = simFigures(hpaSimRun);
  say(`start-up measured (spawn to health check, median): ${startupS} s; the load dropped ${tide.dropped} + ${hpa.dropped} and failed ${tide.failed} + ${hpa.failed} requests`);
  const timeline = (changes: Array<[number, number]>) => changes.map(([t, n]) => `${Math.round(t)}s->${n}`).join(' ');
  const liveChanges = (run: LiveRun): Array<[number, number]> => run.journal.filter((e) => e.applied && e.desired !== e.current).map((e) => [(e.at - run.t0) / 1000, e.desired]);
  const simChanges = (r: RunResult): Array<[number, number]> => r.desiredAt.t.map((t, i) => [t, r.desiredAt.replicas[i]!] as [number, number]).slice(1);
  say(`scale changes: tide live ${timeline(liveChanges(tide))}; sim ${timeline(simChanges(tideSimRun))}; hpa live ${timeline(liveChanges(hpa))}; sim ${timeline(simChanges(hpaSimRun))}`);
  // the first rounds decide a five-minute replay (no scale-in within 300 s of a scale-up): what each side saw
  const liveFirst: FirstRound[] = tide.journal
    .filter((e) => e.at - tide.t0 <= FIRST_ROUNDS_S * 1000)
    .map((e) => ({ at: round((e.at - tide.t0) / 1000, 1), desired: e.desired, figures: figuresOf(e.reasons) }));
  for (const [side, rounds] of [['live', liveFirst], ['sim', simFirst]] as const) {
    for (const r of rounds) say(`  first rounds, tide ${side} ${r.at} s -> ${r.desired}: ${r.figures}`);
  }
  say(line('tide live', tideLive));
  say(line('tide sim', tideSim));
  say(line('hpa live', hpaLive));
  say(line('hpa sim', hpaSim));
  const gap = {
    attainment_pts: round((tideLive.attainment - tideSim.attainment) * 100, 2),
    replica_s_ratio: round(tideLive.replica_s / Math.max(1, tideSim.replica_s)),
  };
  const order = (a: Figures, b: Figures) => ({ cost: Math.sign(a.replica_s - b.replica_s), attainment: Math.sign(a.attainment - b.attainment) });
  const liveOrder = order(tideLive, hpaLive);
  const simOrder = order(tideSim, hpaSim);
  const sameOrder = liveOrder.cost === simOrder.cost && liveOrder.attainment === simOrder.attainment;
  const est = estimates(tide);
  say(
    `gap (live - sim): attainment ${gap.attainment_pts} points, replica-seconds x${gap.replica_s_ratio}; tide against hpa live and simulated in the same order: ${sameOrder ? 'yes' : 'no'} ` +
      `(targets: within 1 point and 10%, same order)`,
  );
  say(
    `controller's estimates (tide run, ${est.rounds} rounds): planned rate off by ${est.rate_error_median} (median relative error against the last 10 s), ` +
      `service time by ${est.service_error_median} (against the last minute's jobs); first service estimate ${est.service_first_s} s, true mean ${est.service_true_s} s`,
  );
  const chartsDir = path.join(here, 'charts');
  mkdirSync(chartsDir, { recursive: true });
  const chartScenario = scenarioFor(tide, startupS).scenario;
  const asRun = (result: RunResult): PolicyRun => ({ scenario: 'live', result, runs: 1, seconds: 0 });
  writeFileSync(
    path.join(chartsDir, 'live.svg'),
    renderChart({ ...chartScenario, name: 'live replay' }, [asRun(liveResult(tide, tideLive)), asRun(tideSimRun), asRun(liveResult(hpa, hpaLive)), asRun(hpaSimRun)]),
  );
  say('chart: bench/charts/live.svg');
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ live: tideLive, sim: tideSim, gap, same_order: sameOrder, baseline_live: hpaLive, baseline_sim: hpaSim, startup_s: startupS, estimates: est, first_rounds: { live: liveFirst, sim: simFirst } })}\n`,
    );
  }
} finally {
  await database.stop();
  if (!process.env.DATABASE_URL) await rm(fallbackDataDir(path.resolve(stateDir)), { recursive: true, force: true }).catch(() => {});
}
