/**
 * One thread's share of a load run: sends requests with undici and records what came back.
 *
 * Design note. Open model: a scheduler walks the intended send times (schedule.ts) and fires
 * each request when its time comes; latency is measured from the intended time, not from the
 * moment the request left, so a stalled server (or a client that fell behind) shows as
 * latency instead of hiding as fewer requests (coordinated omission). Two bounds keep it from
 * queueing without limit, as k6's dropped_iterations does: an arrival more than `maxLagMs`
 * late when its turn comes, or one arriving while `maxInFlight` requests are outstanding, is
 * dropped and counted. The scheduler sleeps with setTimeout to within a millisecond of the
 * next send and yields with setImmediate for the rest, so sends are on time without spinning
 * a core at low rates.
 *
 * Requests go through the lean HTTP/1.1 client (client.ts) for http:, undici for https:.
 *
 * Closed model: virtual users, each looping request -> response; a controller every 50 ms
 * sets the number of active VUs to the stage value interpolated at that moment (k6's
 * ramping-vus); a VU over the target finishes its request and stops. Latency is from send.
 *
 * States: running -> (schedule or stages done, or aborted) -> draining (no new requests;
 * in-flight requests finish, or are aborted when the signal fires) -> done.
 */
import { performance } from 'node:perf_hooks';

import { Pool } from 'undici';

import { LeanPool, serialize } from './client.js';
import { Histogram, type HistogramSnapshot } from './histogram.js';
import { type ScheduleSpec, arrivals, scheduleDuration, split } from './schedule.js';
import { type Stage, stagesDuration, valueAt } from './stages.js';
import { type RequestTemplate, renderer } from './template.js';

export type ModelSpec =
  | { kind: 'open'; schedule: ScheduleSpec; maxInFlight: number; maxLagMs: number }
  | { kind: 'closed'; startVus: number; stages: Stage[] };

/** What one thread runs; serializable (it is posted to worker threads). */
export interface EnginePlan {
  /** Origin only: `http://host:port`. */
  origin: string;
  template: RequestTemplate;
  model: ModelSpec;
  /** Connections this thread opens (at most). */
  connections: number;
  /** Per-request timeout (headers and body), ms. */
  timeoutMs: number;
  seed: number;
  thread: { index: number; count: number };
}

/** Counters a thread reports, in progress and at the end. */
export interface Counters {
  sent: number;
  completed: number;
  failed: number;
  dropped: number;
  inFlight: number;
  statusCodes: Record<string, number>;
  errors: Record<string, number>;
}

export interface EngineResult extends Counters {
  histogram: HistogramSnapshot;
  /** Latency from each request's socket write: without the scheduler's lag or the wait for a free socket. */
  sendHistogram: HistogramSnapshot;
  /** From the first intended send to the last response, ms. */
  elapsedMs: number;
}

export function emptyCounters(): Counters {
  return { sent: 0, completed: 0, failed: 0, dropped: 0, inFlight: 0, statusCodes: {}, errors: {} };
}

/** A stable name for a failed request's error: the socket error code, or undici's. */
function errorName(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; name?: unknown };
  if (typeof e.code === 'string' && e.code !== 'UND_ERR_SOCKET') return e.code;
  if (e.cause && typeof e.cause.code === 'string') return e.cause.code;
  if (typeof e.code === 'string') return e.code;
  return typeof e.name === 'string' ? e.name : 'Error';
}

/** This thread's VU target at `t` ms: its share of the interpolated total, VUs spread evenly over threads. */
function threadVus(total: number, index: number, count: number): number {
  const v = Math.round(total);
  return Math.round((v * (index + 1)) / count) - Math.round((v * index) / count);
}

/**
 * Sends one request and calls `done` once: the status (0 with an error name on failure), and
 * when the request went out (its socket write; undici: when it was handed over; 0 if never).
 */
type Transport = { send(path: string, body: string | undefined, done: (status: number, error: string | undefined, writtenAt: number) => void): void; destroy(): void };

function transport(plan: EnginePlan): Transport {
  const url = new URL(plan.origin);
  const { method, headers } = plan.template;
  if (url.protocol === 'http:') {
    const pool = new LeanPool(url.hostname.replace(/^\[|\]$/g, ''), Number(url.port || 80), plan.connections, plan.timeoutMs);
    const head = method === 'HEAD';
    let cached: { path: string; body: string | undefined; bytes: Buffer } | undefined;
    return {
      send(path, body, done) {
        // a template without variables serializes once
        if (!cached || cached.path !== path || cached.body !== body) cached = { path, body, bytes: serialize(method, path, url.host, headers, body) };
        pool.request(cached.bytes, head, done);
      },
      destroy: () => pool.destroy(),
    };
  }
  const pool = new Pool(plan.origin, {
    connections: plan.connections,
    pipelining: 1,
    headersTimeout: plan.timeoutMs,
    bodyTimeout: plan.timeoutMs,
    connectTimeout: Math.min(plan.timeoutMs, 10_000),
  });
  return {
    send(path, body, done) {
      const at = performance.now();
      pool
        .request({ origin: plan.origin, path, method, headers, body: body ?? null })
        .then(async (res) => {
          await res.body.dump({ limit: Number.POSITIVE_INFINITY });
          done(res.statusCode, undefined, at);
        })
        .catch((err: unknown) => done(0, errorName(err), at));
    },
    destroy: () => void pool.destroy().catch(() => undefined),
  };
}

/** Runs one thread's share. `counters` is updated live, for progress reports. */
export async function runEngine(plan: EnginePlan, counters: Counters, signal?: AbortSignal): Promise<EngineResult> {
  const histogram = new Histogram();
  const sendHistogram = new Histogram();
  const client = transport(plan);
  const render = renderer(plan.template, plan.thread.index, plan.thread.count, plan.seed);
  const staticPath = render.hasVariables ? undefined : render.path();
  const staticBody = render.hasVariables ? undefined : render.body();
  // an abort destroys the pool, which fails what is in flight at once (no listener per request)
  const onAbort = () => client.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });

  // one request, timed from `startedAt`; `after` runs once it is recorded
  const send = (startedAt: number, after: () => void): void => {
    counters.sent++;
    counters.inFlight++;
    const path = staticPath ?? render.path();
    const body = staticPath === undefined ? render.body() : staticBody;
    client.send(path, body, (status, error, writtenAt) => {
      if (error !== undefined) {
        counters.errors[error] = (counters.errors[error] ?? 0) + 1;
        counters.failed++;
      } else {
        const code = String(status);
        counters.statusCodes[code] = (counters.statusCodes[code] ?? 0) + 1;
        // k6's http_req_failed: anything outside 200..399
        if (status >= 400) counters.failed++;
      }
      const end = performance.now();
      histogram.record(end - startedAt);
      // a request that never went out (refused before writing, destroyed) has no send time
      if (writtenAt > 0) sendHistogram.record(end - writtenAt);
      counters.completed++;
      counters.inFlight--;
      after();
    });
  };

  const start = performance.now();
  let lastEnd = start;
  try {
    if (plan.model.kind === 'open') await runOpen(plan.model, plan.thread, start, counters, send, signal);
    else await runClosed(plan.model, plan.thread, start, send, signal);
    lastEnd = performance.now();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    client.destroy();
  }
  return { ...counters, statusCodes: { ...counters.statusCodes }, errors: { ...counters.errors }, histogram: histogram.snapshot(), sendHistogram: sendHistogram.snapshot(), elapsedMs: lastEnd - start };
}

type Send = (startedAt: number, after: () => void) => void;

async function runOpen(
  model: Extract<ModelSpec, { kind: 'open' }>,
  thread: EnginePlan['thread'],
  start: number,
  counters: Counters,
  send: Send,
  signal: AbortSignal | undefined,
): Promise<void> {
  const times = split(arrivals(model.schedule), thread.index, thread.count);
  let next = times.next();
  let scheduled = false; // every arrival is sent or dropped
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    // the run ends when the schedule is done and the last response is in (or on abort)
    const after = () => {
      if (scheduled && counters.inFlight === 0) finish();
    };
    signal?.addEventListener('abort', finish, { once: true });
    const pump = () => {
      timer = undefined;
      if (signal?.aborted) return;
      const now = performance.now() - start;
      while (!next.done && next.value <= now) {
        const intended = next.value;
        if (now - intended > model.maxLagMs || counters.inFlight >= model.maxInFlight) counters.dropped++;
        else send(start + intended, after);
        next = times.next();
      }
      if (next.done) {
        scheduled = true;
        return after();
      }
      const wait = next.value - (performance.now() - start);
      if (wait >= 1) timer = setTimeout(pump, Math.floor(wait));
      else setImmediate(pump);
    };
    pump();
  });
}

async function runClosed(
  model: Extract<ModelSpec, { kind: 'closed' }>,
  thread: EnginePlan['thread'],
  start: number,
  send: Send,
  signal: AbortSignal | undefined,
): Promise<void> {
  const total = stagesDuration(model.stages);
  let target = 0;
  let stopped = false;
  let running = 0;
  const active: boolean[] = [];
  let allStopped: (() => void) | undefined;
  // VU i loops while i < target; a VU over the target (or after the end) stops after its response
  const loop = (i: number) => {
    if (!stopped && i < target) return send(performance.now(), () => loop(i));
    active[i] = false;
    running--;
    if (running === 0) allStopped?.();
  };
  const control = () => {
    const t = performance.now() - start;
    target = stopped ? 0 : threadVus(valueAt(model.stages, t, model.startVus), thread.index, thread.count);
    for (let i = 0; i < target; i++) {
      if (!active[i]) {
        active[i] = true;
        running++;
        loop(i);
      }
    }
  };
  // stop at once on abort: the destroyed client fails requests synchronously, and a VU must not loop on that
  const onAbort = () => (stopped = true);
  signal?.addEventListener('abort', onAbort, { once: true });
  control();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (signal?.aborted || performance.now() - start >= total) {
        stopped = true;
        clearInterval(tick);
        resolve();
        return;
      }
      control();
    }, 50);
  });
  if (running > 0) await new Promise<void>((resolve) => (allStopped = resolve));
  signal?.removeEventListener('abort', onAbort);
}

/** Total run length of a model, ms (for progress). */
export function modelDuration(model: ModelSpec): number {
  return model.kind === 'open' ? scheduleDuration(model.schedule) : stagesDuration(model.stages);
}
