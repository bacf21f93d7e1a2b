/**
 * Measuring one replica, for the capacity table.
 *
 * Worker: a real worker runs in this process on the given database and schema, with the
 * handler wrapped to time each job (the same handler time the queue's service-time histogram
 * records). One probe job gives a first service time S0; then a short ramp enqueues at 25%,
 * 50%, 75%, 100% and 125% of the worker's estimated throughput (concurrency / S0), one step
 * each, so the sample covers the worker idle, busy and saturated; the last step starts with a
 * backlog of two jobs per slot and measures the throughput at saturation. Everything is bounded by `maxSeconds`.
 *
 * API: the load generator (in a worker thread, so an in-process API keeps its event loop)
 * sends POST /v1/jobs at rising rates after one warm-up step at the first rate, doubling
 * until the p95 misses the target, requests fail or the achieved rate falls short, then bisects between the last good and first bad
 * rate. The capacity is the highest rate that met the target.
 */
import { performance } from 'node:perf_hooks';

import { TideError } from '../errors.js';
import { runLoad } from '../load/run.js';
import { builtinHandlers } from '../runtime/handlers/index.js';
import type { Handlers, JobHandler } from '../runtime/handlers/types.js';
import { createPostgresQueue } from '../runtime/queue/postgres.js';
import { startWorker } from '../runtime/worker/worker.js';
import { type ServiceTime, serviceTimeOf } from './model.js';

export interface WorkerMeasureOptions {
  databaseUrl: string;
  schema: string;
  handler: string;
  payload: unknown;
  concurrency: number;
  /** User handlers (merged over the built-ins). */
  handlers?: Handlers;
  /** Upper bound on the whole measurement. Default 30 s. */
  maxSeconds?: number;
  /** Length of one ramp step; default max(0.5 s, 3 x the probe's service time), within maxSeconds. */
  stepSeconds?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface WorkerMeasurement extends ServiceTime {
  /** Jobs timed. */
  samples: number;
  p50: number;
  p95: number;
  /** Jobs/s finished while saturated (the last ramp step), and concurrency / mean for comparison. */
  saturatedThroughput: number;
  theoreticalThroughput: number;
}

const QUEUE = 'plan';

/** Runs the worker measurement (see the module note). Throws TIDE_PLAN_MEASUREMENT when no job finishes. */
export async function measureWorker(o: WorkerMeasureOptions): Promise<WorkerMeasurement> {
  const log = o.log ?? (() => undefined);
  const deadline = performance.now() + (o.maxSeconds ?? 30) * 1000;
  const base: JobHandler | undefined = o.handlers?.[o.handler] ?? builtinHandlers[o.handler];
  if (!base) throw new TideError('TIDE_USAGE', `There is no handler "${o.handler}" (built-in: ${Object.keys(builtinHandlers).join(', ')}; add yours with --handlers).`, { where: { arg: '--handler' } });

  const samples: number[] = [];
  const finishedAt: number[] = [];
  let failures = 0;
  let waiter: { count: number; resolve: () => void } | undefined;
  // every job is timed, failed or not: it held a slot that long
  const timed: JobHandler = async (payload, ctx) => {
    const t0 = performance.now();
    try {
      return await base(payload, ctx);
    } catch (err) {
      failures++;
      throw err;
    } finally {
      const t1 = performance.now();
      samples.push(t1 - t0);
      finishedAt.push(t1);
      if (waiter && samples.length >= waiter.count) waiter.resolve();
    }
  };
  const finished = () => samples.length;
  /** Resolves true once `count` jobs have finished, false at the deadline or on abort. */
  const until = (count: number) =>
    new Promise<boolean>((resolve) => {
      if (finished() >= count) return resolve(true);
      const settle = (ok: boolean) => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        waiter = undefined;
        resolve(ok);
      };
      const onAbort = () => settle(false);
      const timer = setTimeout(() => settle(false), Math.max(0, deadline - performance.now()));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      waiter = { count, resolve: () => settle(true) };
    });

  const queue = await createPostgresQueue({ connectionString: o.databaseUrl, schema: o.schema });
  const worker = await startWorker({
    connectionString: o.databaseUrl,
    schema: o.schema,
    queues: [QUEUE],
    concurrency: o.concurrency,
    handlers: { ...o.handlers, [o.handler]: timed },
    pollMs: 200,
    log,
  });
  let enqueued = 0;
  const enqueue = async (n: number) => {
    if (n <= 0) return;
    await queue.enqueueMany(Array.from({ length: n }, () => ({ queue: QUEUE, handler: o.handler, payload: o.payload, maxAttempts: 1 })));
    enqueued += n;
  };
  try {
    await enqueue(1);
    if (!(await until(1))) throw new TideError('TIDE_PLAN_MEASUREMENT', `The probe job (${o.handler}) did not finish within ${o.maxSeconds ?? 30} s.`);
    if (failures > 0) throw new TideError('TIDE_PLAN_MEASUREMENT', `The probe job (${o.handler}) failed: check --payload.`, { where: { arg: '--payload' } });
    const s0 = Math.max(0.001, samples[0]! / 1000);
    const mu0 = o.concurrency / s0;
    const budget = Math.max(0, (deadline - performance.now()) / 1000);
    const step = Math.min(o.stepSeconds ?? Math.max(0.5, 3 * s0), budget / 7);
    log(`probe: ${(s0 * 1000).toFixed(1)} ms; ramp of 5 steps of ${step.toFixed(2)} s up to ${(1.25 * mu0).toFixed(1)} jobs/s`);
    let saturatedStart = 0;
    let saturatedEnd = 0;
    // enqueue each step's jobs in ticks of 50 ms at the step's rate
    for (const share of [0.25, 0.5, 0.75, 1, 1.25]) {
      const rate = share * mu0;
      const stepStart = performance.now();
      let sent = 0;
      if (share === 1.25) {
        // a backlog of two rounds of slots first, so the worker is saturated for the whole step
        saturatedStart = stepStart;
        await enqueue(2 * o.concurrency);
      }
      while (performance.now() - stepStart < step * 1000 && !o.signal?.aborted) {
        const due = Math.floor((rate * (performance.now() - stepStart)) / 1000) + 1;
        await enqueue(due - sent);
        sent = due;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (share === 1.25) saturatedEnd = performance.now();
    }
    const drained = await until(enqueued);
    if (!drained) log(`stopped with ${enqueued - finished()} jobs unfinished (the time bound)`);
    if (finished() < 2) throw new TideError('TIDE_PLAN_MEASUREMENT', `Only ${finished()} ${o.handler} job(s) finished within the time bound.`);
    const saturated = finishedAt.filter((t) => t >= saturatedStart && t < saturatedEnd).length / ((saturatedEnd - saturatedStart) / 1000 || 1);
    const sorted = [...samples].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! / 1000;
    const service = serviceTimeOf(samples);
    return {
      ...service,
      samples: samples.length,
      p50: q(0.5),
      p95: q(0.95),
      saturatedThroughput: saturated,
      theoreticalThroughput: o.concurrency / service.mean,
    };
  } finally {
    await worker.stop(1000);
    await queue.close();
  }
}

export interface ApiMeasureOptions {
  url: string;
  /** Latency target: the p95 must be at most this, ms. */
  latencyP95Ms: number;
  /** The request: POST /v1/jobs with this body by default. */
  body: string;
  path?: string;
  /** First rate tried. Default 50/s. */
  startRate?: number;
  /** Length of one step. Default 1 s. */
  stepSeconds?: number;
  /** At most this many steps. Default 12. */
  maxSteps?: number;
  /** Run the load in a worker thread (an in-process API). Default true. */
  isolate?: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ApiStep {
  rate: number;
  achieved: number;
  p95: number;
  failedRate: number;
  ok: boolean;
}

export interface ApiMeasurement {
  /** Requests/s one instance takes within the latency target (0 if none did). */
  capacity: number;
  steps: ApiStep[];
}

/** Ramps the load on one API instance (see the module note). Throws TIDE_PLAN_MEASUREMENT when even the first rate misses. */
export async function measureApi(o: ApiMeasureOptions): Promise<ApiMeasurement> {
  const steps: ApiStep[] = [];
  const stepMs = (o.stepSeconds ?? 1) * 1000;
  const maxSteps = o.maxSteps ?? 12;
  const tryRate = async (rate: number): Promise<ApiStep> => {
    const s = await runLoad(
      {
        url: o.url,
        method: 'POST',
        path: o.path ?? '/v1/jobs',
        body: o.body,
        rate,
        durationMs: stepMs,
        threads: 1,
        isolate: o.isolate ?? true,
        maxLagMs: Math.max(1000, o.latencyP95Ms * 5),
      },
      o.signal ? { signal: o.signal } : {},
    );
    const failedRate = s.requests ? s.failed / s.requests : 1;
    const offered = s.requests + s.dropped;
    const achieved = s.requests / (stepMs / 1000);
    const ok = s.latency.p95 <= o.latencyP95Ms && failedRate <= 0.01 && s.dropped <= 0.01 * offered && achieved >= 0.95 * rate;
    const step = { rate, achieved, p95: s.latency.p95, failedRate, ok };
    o.log?.(`api ${rate.toFixed(0)}/s: achieved ${achieved.toFixed(0)}/s, p95 ${s.latency.p95.toFixed(1)} ms, failed ${(failedRate * 100).toFixed(1)}% ${ok ? 'ok' : 'over'}`);
    steps.push(step);
    return step;
  };
  let good = 0;
  let bad = Number.POSITIVE_INFINITY;
  let rate = o.startRate ?? 50;
  // a warm-up step, not counted: the API's JIT, its pool's connections, the thread's loading
  await tryRate(rate);
  steps.length = 0;
  while (steps.length < maxSteps && !o.signal?.aborted) {
    const step = await tryRate(rate);
    if (step.ok) good = rate;
    else bad = rate;
    if (!Number.isFinite(bad)) rate *= 2;
    else if (bad / Math.max(good, 1) <= 1.15 || good === 0) break;
    else rate = Math.round((good + bad) / 2);
  }
  if (good === 0) {
    throw new TideError('TIDE_PLAN_MEASUREMENT', `The API at ${o.url} missed p95 <= ${o.latencyP95Ms} ms (or failed requests) even at ${steps[0]?.rate ?? rate}/s.`, {
      where: { arg: '--api' },
    });
  }
  return { capacity: good, steps };
}
