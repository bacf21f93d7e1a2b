/**
 * Queue benchmark: Tidescale's PostgreSQL queue against graphile-worker 0.17 in its documented
 * throughput mode (the anchor: `preset.worker = { localQueue: { size: 500 },
 * completeJobBatchDelay: 0, failJobBatchDelay: 0 }`) and at its defaults, same database, same
 * run, and BullMQ on Redis as a reference row (REDIS_URL, or the machine's Redis; left out when
 * it does not answer). Measures bulk enqueue rate, drain rate with 1 and 2 worker processes at
 * concurrency 16 (no-op jobs), enqueue-to-start latency at no load, and how long a SIGKILLed
 * worker's jobs take to complete elsewhere (Tidescale, default lease).
 *
 * Then the sustained run: each system gets jobs at a fixed rate (every 5 ms, those due, in one
 * bulk call: `enqueueMany`, `addJobs`, `addBulk`) while 2 worker processes run them, rising by half from 1,000/s; the highest rate
 * held for `--sustain-seconds` (default 60; 0 skips it) with the enqueue-to-start p99 under
 * 100 ms and no backlog left, and that p99 over the first and the last 10 s.
 *
 *   npm run bench:queue -- [--json] [--jobs 20000] [--sustain-seconds 60] [--sustain-from 1000]
 *
 * Last line (with --json): {"tide":{...},"graphile_batched":{...},"graphile":{...},"bullmq":{...},"ratio":{"drain":N,"drain_2p_vs_1p":N,"enqueue":N,"sustained":N,"drain_vs_defaults":N},"crash_recovery_s":N}
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Logger, type Runner, makeWorkerUtils, run, runMigrations } from 'graphile-worker';
import pg from 'pg';

import { resolveDatabase } from '../src/db/connect.js';
import { createPostgresQueue } from '../src/runtime/queue/postgres.js';
import { startWorker } from '../src/runtime/worker/worker.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    jobs: { type: 'string', default: '20000' },
    child: { type: 'string' },
    schema: { type: 'string' },
    url: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    'sustain-seconds': { type: 'string', default: '60' },
    /** The sustained run's first rate (then rising by half). */
    'sustain-from': { type: 'string', default: '1000' },
  },
});
const CONCURRENCY = Number(args.concurrency);
const silent = new Logger(() => () => undefined);
const self = fileURLToPath(import.meta.url);
/** graphile-worker's throughput settings, from its performance docs. */
const BATCHED: GraphileConfig.Preset = { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } };
type Kind = 'tide' | 'graphile' | 'graphile_batched' | 'bullmq';
/** BullMQ on Redis, a reference row: REDIS_URL, or the machine's Redis. */
const REDIS = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const bullConnection = () => ({ host: REDIS.hostname, port: Number(REDIS.port || 6379), maxRetriesPerRequest: null });
/**
 * BullMQ's throughput settings (its docs: finished jobs removed rather than kept in Redis, as
 * graphile-worker deletes them; the worker's concurrency as the others'); the lock and stalled
 * check stay at their defaults (a dead worker's jobs come back after the 30 s lock).
 */
const BULL_JOB = { removeOnComplete: true, removeOnFail: true };

type Message = { type: 'ready' } | { type: 'go' } | { type: 'stop' } | { type: 'starts'; t: number[]; at: number[] };

// ---------------------------------------------------------------- child: one worker process
async function child(kind: string, url: string, schema: string): Promise<void> {
  const send = (m: Message) => process.send!(m);
  // the sustained run's jobs: when each was enqueued (its payload) and when it started, sent in batches
  let sentT: number[] = [];
  let sentAt: number[] = [];
  const tick = (payload: unknown) => {
    sentT.push((payload as { t: number }).t);
    sentAt.push(Date.now());
  };
  setInterval(() => {
    if (sentT.length === 0) return;
    send({ type: 'starts', t: sentT, at: sentAt });
    sentT = [];
    sentAt = [];
  }, 200).unref();
  const stopHandlers: Array<() => Promise<void>> = [];
  process.on('message', (m: Message) => {
    if (m.type === 'go') void go();
    if (m.type === 'stop') void Promise.all(stopHandlers.map((s) => s())).then(() => process.exit(0));
  });
  async function go(): Promise<void> {
    if (kind === 'tide') {
      const worker = await startWorker({
        connectionString: url,
        schema,
        queues: ['bench'],
        concurrency: CONCURRENCY,
        handlers: {
          noop: () => null,
          tick: (p) => (tick(p), null),
          // hangs on its first attempt: the crash test kills the worker holding it
          hang: (_p, ctx) => (ctx.job.attempts === 1 ? new Promise(() => undefined) : null),
        },
        log: () => undefined,
      });
      stopHandlers.push(() => worker.stop(0));
    } else if (kind === 'bullmq') {
      // `schema` is the BullMQ queue's name
      const worker = new BullWorker(
        schema,
        async (job) => {
          if (job.name === 'tick') tick(job.data);
        },
        { connection: bullConnection(), concurrency: CONCURRENCY },
      );
      await worker.waitUntilReady();
      stopHandlers.push(() => worker.close());
    } else {
      const runner: Runner = await run({
        connectionString: url,
        schema,
        concurrency: CONCURRENCY,
        logger: silent,
        noHandleSignals: true,
        taskList: { noop: async () => undefined, tick: async (p) => tick(p) },
        ...(kind === 'graphile_batched' ? { preset: BATCHED } : {}),
      });
      stopHandlers.push(() => runner.stop());
    }
  }
  send({ type: 'ready' });
}

// ---------------------------------------------------------------- parent
interface Spawned {
  proc: ChildProcess;
  ready: Promise<void>;
  exited: Promise<void>;
}

function spawnChild(kind: Kind, url: string, schema: string): Spawned {
  const proc = fork(self, ['--child', kind, '--schema', schema, '--url', url, '--concurrency', String(CONCURRENCY)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise<void>((resolve) => proc.on('message', (m: Message) => m.type === 'ready' && resolve()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { proc, ready, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const log = (line: string) => process.stdout.write(`${line}\n`);

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

interface SystemUnderTest {
  name: Kind;
  schema: string;
  /** The sustained run's producer: the jobs due since its last tick, in one call. */
  enqueueBatch(payloads: Array<{ t: number }>): Promise<unknown>;
  /** Jobs waiting (not started). */
  waiting(): Promise<number>;
  /** Enqueue `n` no-op jobs in chunks; returns jobs per second. */
  enqueue(n: number): Promise<number>;
  /** True when every enqueued job has finished. */
  drained(): Promise<boolean>;
  latency(samples: number): Promise<{ mean_ms: number; p95_ms: number }>;
  close(): Promise<void>;
}

const CHUNK = 1000;
const chunks = (n: number) => Array.from({ length: Math.ceil(n / CHUNK) }, (_, i) => Math.min(CHUNK, n - i * CHUNK));

function summarise(latencies: number[]): { mean_ms: number; p95_ms: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    mean_ms: round(sorted.reduce((a, b) => a + b, 0) / sorted.length, 2),
    p95_ms: round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]!, 2),
  };
}

async function tideSystem(url: string, pool: pg.Pool): Promise<SystemUnderTest> {
  const schema = `bench_tide_${randomBytes(4).toString('hex')}`;
  const queue = await createPostgresQueue({ connectionString: url, schema, poolSize: 2 });
  const producer = await createPostgresQueue({ connectionString: url, schema, poolSize: 10, migrate: false });
  let expected = 0;
  return {
    name: 'tide',
    schema,
    enqueueBatch: (payloads) => producer.enqueueMany(payloads.map((payload) => ({ queue: 'bench', handler: 'tick', payload }))),
    async waiting() {
      const [s] = await queue.stats('bench');
      return s ? s.ready + s.delayed : 0;
    },
    async enqueue(n) {
      const t0 = performance.now();
      for (const size of chunks(n)) await queue.enqueueMany(Array.from({ length: size }, () => ({ queue: 'bench', handler: 'noop', payload: {} })));
      expected += n;
      return n / ((performance.now() - t0) / 1000);
    },
    async drained() {
      const { rows } = await pool.query<{ n: string }>(`SELECT coalesce(sum(completions), 0)::text AS n FROM "${schema}".queue_stats WHERE queue = 'bench'`);
      return Number(rows[0]?.n ?? 0) >= expected;
    },
    async latency(samples) {
      const latencies: number[] = [];
      let resolveStart: (() => void) | undefined;
      const worker = await startWorker({
        connectionString: url,
        schema,
        queues: ['latency'],
        concurrency: 1,
        handlers: {
          ping: (p) => {
            latencies.push(Date.now() - (p as { t: number }).t);
            resolveStart?.();
            return null;
          },
        },
        log: () => undefined,
      });
      for (let i = 0; i < samples; i++) {
        const started = new Promise<void>((r) => (resolveStart = r));
        await queue.enqueue({ queue: 'latency', handler: 'ping', payload: { t: Date.now() } });
        await started;
        await sleep(10);
      }
      await worker.stop();
      return summarise(latencies);
    },
    close: async () => {
      await producer.close();
      await queue.close();
    },
  };
}

async function graphileSystem(url: string, pool: pg.Pool, name: 'graphile' | 'graphile_batched'): Promise<SystemUnderTest> {
  const schema = `bench_gw_${randomBytes(4).toString('hex')}`;
  await runMigrations({ connectionString: url, schema, logger: silent });
  const utils = await makeWorkerUtils({ connectionString: url, schema, logger: silent });
  return {
    name,
    schema,
    enqueueBatch: (payloads) => utils.addJobs(payloads.map((payload) => ({ identifier: 'tick', payload }))),
    async waiting() {
      const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}"._private_jobs WHERE locked_at IS NULL`);
      return Number(rows[0]!.n);
    },
    async enqueue(n) {
      const t0 = performance.now();
      for (const size of chunks(n)) await utils.addJobs(Array.from({ length: size }, () => ({ identifier: 'noop', payload: {} })));
      return n / ((performance.now() - t0) / 1000);
    },
    async drained() {
      // graphile-worker deletes a job when it completes
      const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}"._private_jobs`);
      return Number(rows[0]!.n) === 0;
    },
    async latency(samples) {
      const latencies: number[] = [];
      let resolveStart: (() => void) | undefined;
      const runner = await run({
        connectionString: url,
        schema,
        concurrency: 1,
        logger: silent,
        noHandleSignals: true,
        taskList: {
          ping: async (p) => {
            latencies.push(Date.now() - (p as { t: number }).t);
            resolveStart?.();
          },
        },
        ...(name === 'graphile_batched' ? { preset: BATCHED } : {}),
      });
      for (let i = 0; i < samples; i++) {
        const started = new Promise<void>((r) => (resolveStart = r));
        await utils.addJob('ping', { t: Date.now() });
        await started;
        await sleep(10);
      }
      await runner.stop();
      return summarise(latencies);
    },
    close: async () => {
      await utils.release();
    },
  };
}

/** BullMQ on Redis (undefined when Redis does not answer): `schema` is the queue's name. */
async function bullmqSystem(): Promise<SystemUnderTest | undefined> {
  const name = `bench-bull-${randomBytes(4).toString('hex')}`;
  const queue = new BullQueue(name, { connection: bullConnection(), defaultJobOptions: BULL_JOB });
  queue.on('error', () => undefined);
  const answered = await Promise.race([queue.waitUntilReady().then(() => true), sleep(3000).then(() => false)]).catch(() => false);
  if (!answered) {
    log(`  BullMQ row left out: Redis at ${REDIS.host} did not answer`);
    await queue.close().catch(() => undefined);
    return undefined;
  }
  /** Jobs in the given states. */
  const jobsIn = async (...states: Parameters<typeof queue.getJobCounts>) => Object.values(await queue.getJobCounts(...states)).reduce((a, b) => a + b, 0);
  return {
    name: 'bullmq',
    schema: name,
    enqueueBatch: (payloads) => queue.addBulk(payloads.map((data) => ({ name: 'tick', data }))),
    waiting: () => jobsIn('wait', 'prioritized', 'delayed'),
    async enqueue(n) {
      const t0 = performance.now();
      for (const size of chunks(n)) await queue.addBulk(Array.from({ length: size }, () => ({ name: 'noop', data: {} })));
      return n / ((performance.now() - t0) / 1000);
    },
    // finished jobs are removed: drained when nothing waits or runs
    drained: async () => (await jobsIn('wait', 'prioritized', 'delayed', 'active', 'waiting-children')) === 0,
    async latency(samples) {
      const latencies: number[] = [];
      let resolveStart: (() => void) | undefined;
      const pingQueue = `${name}-latency`;
      const pings = new BullQueue(pingQueue, { connection: bullConnection(), defaultJobOptions: BULL_JOB });
      const worker = new BullWorker(
        pingQueue,
        async (job) => {
          latencies.push(Date.now() - (job.data as { t: number }).t);
          resolveStart?.();
        },
        { connection: bullConnection(), concurrency: 1 },
      );
      await worker.waitUntilReady();
      try {
        for (let i = 0; i < samples; i++) {
          const started = new Promise<void>((r) => (resolveStart = r));
          await pings.add('ping', { t: Date.now() });
          await started;
          await sleep(10);
        }
      } finally {
        await worker.close();
        await pings.obliterate({ force: true }).catch(() => undefined);
        await pings.close();
      }
      return summarise(latencies);
    },
    close: async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    },
  };
}

/** Drain rate with `processes` worker processes: children start first, then all go at once. */
async function drain(system: SystemUnderTest, url: string, jobs: number, processes: number): Promise<{ enqueue: number; drain: number }> {
  const enqueueRate = await system.enqueue(jobs);
  const children = Array.from({ length: processes }, () => spawnChild(system.name, url, system.schema));
  try {
    await Promise.all(children.map((c) => c.ready));
    const t0 = performance.now();
    for (const c of children) c.proc.send({ type: 'go' } satisfies Message);
    await waitFor(() => system.drained(), 120_000, `${system.name} drain`);
    const rate = jobs / ((performance.now() - t0) / 1000);
    log(`  ${system.name}: enqueue ${Math.round(enqueueRate)} jobs/s; drain with ${processes} process(es) x${CONCURRENCY}: ${Math.round(rate)} jobs/s`);
    return { enqueue: enqueueRate, drain: rate };
  } finally {
    for (const c of children) c.proc.send({ type: 'stop' } satisfies Message);
    await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(10_000)]);
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  }
}

/** Seconds from SIGKILL of a worker holding jobs until those jobs completed on another worker. */
async function crashRecovery(url: string, pool: pg.Pool): Promise<number> {
  const schema = `bench_crash_${randomBytes(4).toString('hex')}`;
  const queue = await createPostgresQueue({ connectionString: url, schema, poolSize: 1 });
  const stat = async (column: 'completions') =>
    Number((await pool.query<{ n: string }>(`SELECT coalesce(sum(${column}), 0)::text AS n FROM "${schema}".queue_stats WHERE queue = 'bench'`)).rows[0]?.n ?? 0);
  const active = async () => Number((await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".jobs WHERE state = 'active'`)).rows[0]!.n);
  const victim = spawnChild('tide', url, schema);
  const rescuer = spawnChild('tide', url, schema);
  try {
    await victim.ready;
    victim.proc.send({ type: 'go' } satisfies Message);
    await queue.enqueueMany(Array.from({ length: 4 }, () => ({ queue: 'bench', handler: 'hang' })));
    await waitFor(async () => (await active()) === 4, 30_000, 'the victim to claim the jobs');
    await rescuer.ready;
    rescuer.proc.send({ type: 'go' } satisfies Message);
    victim.proc.kill('SIGKILL');
    const t0 = performance.now();
    await waitFor(async () => (await stat('completions')) === 4, 60_000, 'recovery');
    return (performance.now() - t0) / 1000;
  } finally {
    victim.proc.kill('SIGKILL');
    rescuer.proc.send({ type: 'stop' } satisfies Message);
    await Promise.race([rescuer.exited, sleep(10_000)]);
    if (rescuer.proc.exitCode === null) rescuer.proc.kill('SIGKILL');
    await queue.close();
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

interface Trial {
  rate: number;
  achieved: number;
  p99_ms: number;
  p99_first_ms: number;
  p99_last_ms: number;
  waiting_at_end: number;
  ok: boolean;
}

const p99 = (xs: number[]) => {
  if (xs.length === 0) return Infinity;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
};

/**
 * `rate` jobs/s enqueued one at a time for `seconds` while 2 worker processes run them: the
 * enqueue-to-start p99 (overall, first and last 10 s), and the jobs still waiting at the end.
 * Sustained: p99 under 100 ms and no backlog left beyond one second's arrivals.
 */
async function sustainedTrial(system: SystemUnderTest, url: string, rate: number, seconds: number): Promise<Trial> {
  const children = Array.from({ length: 2 }, () => spawnChild(system.name, url, system.schema));
  const starts: Array<{ t: number; at: number }> = [];
  for (const c of children) c.proc.on('message', (m: Message) => m.type === 'starts' && m.t.forEach((t, i) => starts.push({ t, at: m.at[i]! })));
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.proc.send({ type: 'go' } satisfies Message);
    await sleep(500);
    const t0 = Date.now();
    let sent = 0;
    const inFlight = new Set<Promise<unknown>>();
    while (Date.now() - t0 < seconds * 1000) {
      const due = Math.floor(((Date.now() - t0) / 1000) * rate);
      // every 5 ms, what is due in one bulk call (each system's fastest enqueue); at most 20 calls
      // outstanding, so a system that cannot take the rate shows as a lower one
      if (due > sent && inFlight.size < 20) {
        const now = Date.now();
        const n = Math.min(due - sent, 5000);
        const p: Promise<unknown> = system.enqueueBatch(Array.from({ length: n }, () => ({ t: now }))).finally(() => inFlight.delete(p));
        inFlight.add(p);
        sent += n;
      }
      await sleep(5);
    }
    const elapsed = (Date.now() - t0) / 1000;
    await Promise.all(inFlight);
    const waiting = await system.waiting();
    await sleep(400); // the last batches of start times
    const lat = (from: number, to: number) => starts.filter((s) => s.t >= t0 + from * 1000 && s.t < t0 + to * 1000).map((s) => s.at - s.t);
    const all = lat(0, seconds);
    const trial = {
      rate,
      achieved: Math.round(sent / elapsed),
      p99_ms: p99(all),
      p99_first_ms: p99(lat(0, 10)),
      p99_last_ms: p99(lat(seconds - 10, seconds)),
      waiting_at_end: waiting,
      ok: false,
    };
    trial.ok = trial.achieved >= rate * 0.95 && trial.p99_ms < 100 && waiting <= rate;
    return trial;
  } finally {
    for (const c of children) c.proc.send({ type: 'stop' } satisfies Message);
    await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(10_000)]);
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  }
}

/** The highest rate, rising by half from 1,000/s, that a system sustains; each trial drains first. */
async function sustained(system: SystemUnderTest, url: string, seconds: number): Promise<{ rate: number; trials: Trial[] }> {
  const trials: Trial[] = [];
  let held = 0;
  for (let rate = Number(args['sustain-from']); rate <= 64_000; rate = Math.round(rate * 1.5)) {
    const t = await sustainedTrial(system, url, rate, seconds);
    trials.push(t);
    log(
      `  ${system.name}: ${rate}/s for ${seconds} s: enqueued ${t.achieved}/s, enqueue-to-start p99 ${round(t.p99_ms)} ms (first 10 s ${round(t.p99_first_ms)}, last 10 s ${round(t.p99_last_ms)}), ${t.waiting_at_end} waiting at the end${t.ok ? '' : ': not sustained'}`,
    );
    if (!t.ok) break;
    held = rate;
    // what is left runs before the next trial
    await waitFor(async () => (await system.waiting()) === 0, 120_000, `${system.name} to catch up`).catch(() => undefined);
  }
  return { rate: held, trials };
}

async function parent(): Promise<void> {
  const jobs = Number(args.jobs);
  const database = await resolveDatabase({ log });
  const url = database.url;
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const systems: SystemUnderTest[] = [];
  try {
    const { rows } = await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    log(`queue benchmark: ${jobs} no-op jobs, concurrency ${CONCURRENCY}, PostgreSQL ${rows[0]!.v}${database.embedded ? ' (embedded)' : ''}`);
    const tide = await tideSystem(url, pool);
    const batched = await graphileSystem(url, pool, 'graphile_batched');
    const graphile = await graphileSystem(url, pool, 'graphile');
    const bullmq = await bullmqSystem();
    systems.push(tide, batched, graphile, ...(bullmq ? [bullmq] : []));
    const results: Record<Kind, Record<string, number>> = { tide: {}, graphile_batched: {}, graphile: {}, bullmq: {} };
    for (const processes of [1, 2]) {
      // rotate which system goes first so none always runs on a warmer database
      const order = processes === 1 ? systems : [...systems].reverse();
      for (const system of order) {
        const r = await drain(system, url, jobs, processes);
        results[system.name][`drain_${processes}p_jobs_s`] = Math.round(r.drain);
        results[system.name][`enqueue_${processes}_jobs_s`] = Math.round(r.enqueue);
      }
    }
    for (const system of systems) {
      const lat = await system.latency(40);
      results[system.name].latency_mean_ms = lat.mean_ms;
      results[system.name].latency_p95_ms = lat.p95_ms;
      log(`  ${system.name}: enqueue-to-start latency at no load: mean ${lat.mean_ms} ms, p95 ${lat.p95_ms} ms`);
    }
    for (const { name } of systems) {
      const r = results[name];
      r.enqueue_jobs_s = Math.round((r.enqueue_1_jobs_s! + r.enqueue_2_jobs_s!) / 2);
      delete r.enqueue_1_jobs_s;
      delete r.enqueue_2_jobs_s;
    }
    const sustain = Number(args['sustain-seconds']);
    const sustainedRates: Partial<Record<Kind, number>> = {};
    if (sustain > 0) {
      log(`sustained: jobs at a fixed rate (bulk enqueues every 5 ms) while 2 worker processes x${CONCURRENCY} run them, ${sustain} s per rate`);
      for (const system of systems) {
        const r = await sustained(system, url, sustain);
        sustainedRates[system.name] = r.rate;
        results[system.name].sustained_jobs_s = r.rate;
        const last = r.trials.filter((t) => t.ok).pop();
        if (last) {
          results[system.name].sustained_p99_first_ms = round(last.p99_first_ms);
          results[system.name].sustained_p99_last_ms = round(last.p99_last_ms);
        }
      }
    }
    const crash = await crashRecovery(url, pool);
    log(`  tide: a SIGKILLed worker's jobs completed elsewhere after ${round(crash, 2)} s (default lease 5 s); graphile-worker 0.17: 4 hours (its fixed lock timeout)`);
    const anchor = results.graphile_batched;
    const drainRatio = Math.min(results.tide.drain_1p_jobs_s! / anchor.drain_1p_jobs_s!, results.tide.drain_2p_jobs_s! / anchor.drain_2p_jobs_s!);
    const summary = {
      tide: results.tide,
      graphile_batched: anchor,
      graphile: results.graphile,
      bullmq: bullmq ? results.bullmq : null,
      ratio: {
        drain: round(drainRatio, 2),
        drain_2p_vs_1p: round(results.tide.drain_2p_jobs_s! / results.tide.drain_1p_jobs_s!, 2),
        enqueue: round(results.tide.enqueue_jobs_s! / anchor.enqueue_jobs_s!, 2),
        ...(sustain > 0 && sustainedRates.graphile_batched ? { sustained: round((sustainedRates.tide ?? 0) / sustainedRates.graphile_batched, 2) } : {}),
        drain_vs_defaults: round(Math.min(results.tide.drain_1p_jobs_s! / results.graphile.drain_1p_jobs_s!, results.tide.drain_2p_jobs_s! / results.graphile.drain_2p_jobs_s!), 2),
      },
      crash_recovery_s: round(crash, 2),
    };
    log(
      `ratio (tide / graphile batched): drain ${summary.ratio.drain} (the lower of 1 and 2 processes), enqueue ${summary.ratio.enqueue}; ` +
        `tide 2 processes / 1: ${summary.ratio.drain_2p_vs_1p}; drain against graphile's defaults ${summary.ratio.drain_vs_defaults}`,
    );
    if (args.json) log(JSON.stringify(summary));
  } finally {
    for (const s of systems) {
      await s.close().catch(() => undefined);
      await pool.query(`DROP SCHEMA IF EXISTS "${s.schema}" CASCADE`).catch(() => undefined);
    }
    await pool.end();
    await database.stop();
  }
}

if (args.child) await child(args.child, args.url!, args.schema!);
else await parent();
