/**
 * `runLoad(options, { signal, onProgress }) -> Summary`: the load generator as a library.
 * It validates the options into one plan per thread, runs them (in this thread when there is
 * one and nothing asks for isolation, else in worker threads), merges the histograms and
 * counters, and returns the summary. `tide load` is a thin shell over it.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

import { TideError } from '../errors.js';
import { type Counters, type EnginePlan, type EngineResult, type ModelSpec, emptyCounters, modelDuration, runEngine } from './engine.js';
import { Histogram } from './histogram.js';
import { type ScheduleSpec, peakRate } from './schedule.js';
import type { Stage } from './stages.js';
import type { Summary } from './summary.js';
import { DEMO_JOB, type RequestTemplate, validateTemplate } from './template.js';

/** Requests/s one thread sends comfortably on a small machine (bench/load.ts measures it); `threads: 'auto'` divides by it. */
export const RATE_PER_THREAD = 25_000;

export interface LoadOptions {
  /** The target, `http://host:port[/path]`. A bare origin gets `POST /v1/jobs` with a demo job. */
  url: string;
  method?: string;
  /** Path and query (overrides the URL's); `{{counter}}`, `{{uuid}}`, `{{random}}`, `{{thread}}` allowed. */
  path?: string;
  headers?: Record<string, string>;
  body?: string;

  /** Open (arrival rate; the default) or closed (virtual users). */
  model?: 'open' | 'closed';
  /** Open: constant requests/s for `durationMs`. */
  rate?: number;
  durationMs?: number;
  /** Open: rate targets; closed: VU targets. Interpolated linearly from `rate` / `vus` (default 0). */
  stages?: Stage[];
  /** Open: replay a `t,count` trace, with time divided by `compression` (default 1). */
  trace?: { t: ArrayLike<number>; count: ArrayLike<number>; compression?: number };
  /** Closed: virtual users (constant for `durationMs`, or the start of `stages`). */
  vus?: number;

  /** Open: arrivals more than this late are dropped. Default 1000 ms. */
  maxLagMs?: number;
  /** Open: the most requests outstanding; arrivals over it are dropped. Default 10000. */
  maxInFlight?: number;
  /** Connections in all (open model; closed: one per VU). Default 100. */
  connections?: number;
  /** Per-request timeout, ms. Default 10000. */
  timeoutMs?: number;
  /** Worker threads: a number, or 'auto' (one per RATE_PER_THREAD of peak rate, at most the cores). Default 'auto'. */
  threads?: number | 'auto';
  /** Run even one thread in a worker thread (keeps the load off an in-process target's event loop). */
  isolate?: boolean;
  /** Seed of `{{random}}`. Default 1. */
  seed?: number;
}

export interface Progress {
  elapsedMs: number;
  durationMs: number;
  sent: number;
  completed: number;
  failed: number;
  dropped: number;
  inFlight: number;
}

export interface LoadHooks {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Default 500 ms. */
  progressIntervalMs?: number;
}

function usage(message: string, arg: string): TideError {
  return new TideError('TIDE_USAGE', message, { where: { arg } });
}

/** Validates a target URL; throws TIDE_LOAD_URL naming the argument. */
export function parseTarget(url: string, arg = 'URL'): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new TideError('TIDE_LOAD_URL', `"${url}" is not a URL; expected http://host:port[/path].`, { where: { arg }, cause });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TideError('TIDE_LOAD_URL', `"${url}" must start with http:// or https://, not ${parsed.protocol}//.`, { where: { arg } });
  }
  if (!parsed.hostname) throw new TideError('TIDE_LOAD_URL', `"${url}" names no host; expected http://host:port[/path].`, { where: { arg } });
  return parsed;
}

/** The request template for the options (the demo job for a bare origin). */
export function templateFor(options: LoadOptions, target: URL): RequestTemplate {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.headers ?? {})) headers[k.toLowerCase()] = v;
  const bare = (target.pathname === '/' || target.pathname === '') && !target.search;
  if (options.method === undefined && options.path === undefined && options.body === undefined && bare) {
    headers['content-type'] ??= 'application/json';
    return { method: 'POST', path: '/v1/jobs', headers, body: DEMO_JOB };
  }
  const body = options.body;
  if (body !== undefined && headers['content-type'] === undefined && /^\s*[[{]/.test(body)) headers['content-type'] = 'application/json';
  const method = (options.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new TideError('TIDE_LOAD_TEMPLATE', `"${options.method}" is not an HTTP method.`, { where: { arg: '--method' } });
  const template: RequestTemplate = { method, path: options.path ?? `${target.pathname}${target.search}`, headers };
  if (body !== undefined) template.body = body;
  if (!template.path.startsWith('/')) throw new TideError('TIDE_LOAD_TEMPLATE', `The path "${template.path}" must start with /.`, { where: { arg: '--path' } });
  return template;
}

/** The model the options describe; throws TIDE_USAGE on contradictions. */
export function modelFor(options: LoadOptions): ModelSpec {
  const model = options.model ?? (options.vus !== undefined ? 'closed' : 'open');
  const positive = (x: number | undefined, arg: string) => {
    if (x !== undefined && !(Number.isFinite(x) && x >= 0)) throw usage(`${arg} must be a number >= 0, not ${x}.`, arg);
  };
  positive(options.rate, '--rate');
  positive(options.vus, '--vus');
  positive(options.durationMs, '--duration');
  if (model === 'closed') {
    if (options.rate !== undefined || options.trace) throw usage('The closed model runs virtual users: use --vus/--stages, not --rate or --trace.', options.rate !== undefined ? '--rate' : '--trace');
    const startVus = options.vus ?? 0;
    if (options.stages && options.stages.length > 0) return { kind: 'closed', startVus, stages: options.stages };
    if (options.vus === undefined || options.durationMs === undefined) throw usage('The closed model needs --vus and --duration, or --stages.', '--vus');
    return { kind: 'closed', startVus, stages: [{ durationMs: options.durationMs, target: startVus }] };
  }
  if (options.vus !== undefined) throw usage('--vus belongs to the closed model (--model closed).', '--vus');
  const maxInFlight = options.maxInFlight ?? 10_000;
  const maxLagMs = options.maxLagMs ?? 1000;
  let schedule: ScheduleSpec;
  if (options.trace) {
    if (options.stages || options.rate !== undefined) throw usage('--trace replays its own rates: leave out --rate and --stages.', '--trace');
    const compression = options.trace.compression ?? 1;
    if (!(compression > 0 && Number.isFinite(compression))) throw usage(`--compress must be a number > 0, not ${compression}.`, '--compress');
    schedule = { kind: 'trace', t: Array.from(options.trace.t), count: Array.from(options.trace.count), compression };
  } else if (options.stages && options.stages.length > 0) {
    schedule = { kind: 'ramping', startRate: options.rate ?? 0, stages: options.stages };
  } else {
    if (options.rate === undefined || options.durationMs === undefined) throw usage('The open model needs --rate and --duration, --stages, or --trace.', '--rate');
    schedule = { kind: 'constant', rate: options.rate, durationMs: options.durationMs };
  }
  return { kind: 'open', schedule, maxInFlight, maxLagMs };
}

function threadCount(options: LoadOptions, model: ModelSpec): number {
  const t = options.threads ?? 'auto';
  if (t !== 'auto') {
    if (!(Number.isInteger(t) && t >= 1 && t <= 64)) throw usage(`--threads must be a whole number from 1 to 64, or auto, not ${t}.`, '--threads');
    return t;
  }
  if (model.kind === 'closed') return 1;
  return Math.max(1, Math.min(os.availableParallelism(), Math.ceil(peakRate(model.schedule) / RATE_PER_THREAD)));
}

/** The per-thread plans for the options (validates everything; starts nothing). */
export function planLoad(options: LoadOptions): { plans: EnginePlan[]; model: ModelSpec; url: string } {
  const target = parseTarget(options.url);
  const template = templateFor(options, target);
  validateTemplate(template);
  const model = modelFor(options);
  const threads = threadCount(options, model);
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!(timeoutMs > 0)) throw usage('--timeout must be > 0.', '--timeout');
  const connections = options.connections ?? 100;
  if (!(Number.isInteger(connections) && connections >= 1)) throw usage('--connections must be a whole number >= 1.', '--connections');
  const peakVus = model.kind === 'closed' ? Math.max(model.startVus, ...model.stages.map((s) => s.target)) : 0;
  const plans = Array.from({ length: threads }, (_, index): EnginePlan => ({
    origin: target.origin,
    template,
    model,
    // closed: a connection per VU, so no VU waits for another's socket
    connections: model.kind === 'closed' ? Math.max(1, Math.ceil(peakVus / threads)) : Math.max(1, Math.ceil(connections / threads)),
    timeoutMs,
    seed: options.seed ?? 1,
    thread: { index, count: threads },
  }));
  return { plans, model, url: options.url };
}

type ThreadMessage = { type: 'progress'; counters: Counters } | { type: 'done'; result: EngineResult } | { type: 'error'; message: string };

/** Runs one plan in a worker thread; `live` mirrors its progress counters. */
function runInThread(plan: EnginePlan, live: { counters: Counters }, signal: AbortSignal | undefined): Promise<EngineResult> {
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(ts ? './thread.ts' : './thread.js', import.meta.url);
  // Running from TypeScript sources (tests, `tide` through tsx), the thread registers the tsx
  // loader itself before importing its entry: loader hooks are not inherited by worker threads.
  const worker = ts
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`, {
        eval: true,
        workerData: plan,
      })
    : new Worker(entry, { workerData: plan });
  return new Promise<EngineResult>((resolve, reject) => {
    const onAbort = () => worker.postMessage('abort');
    signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
      void worker.terminate();
    };
    worker.on('message', (m: ThreadMessage) => {
      if (m.type === 'progress') live.counters = m.counters;
      else if (m.type === 'done') settle(() => resolve(m.result));
      else settle(() => reject(new TideError('TIDE_INTERNAL', `A load thread failed: ${m.message}`)));
    });
    worker.on('error', (err) => settle(() => reject(err)));
    worker.on('exit', (code) => settle(() => reject(new TideError('TIDE_INTERNAL', `A load thread exited (${code}) before reporting.`))));
  });
}

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Runs a load and returns its summary. Rejects only on bad options (TideError) or a bug; a failing target is counted, not thrown. */
export async function runLoad(options: LoadOptions, hooks: LoadHooks = {}): Promise<Summary> {
  const { plans, model, url } = planLoad(options);
  const durationMs = modelDuration(model);
  const inThread = plans.length > 1 || options.isolate === true;
  const live = plans.map(() => ({ counters: emptyCounters() }));
  const started = performance.now();
  let progress: NodeJS.Timeout | undefined;
  if (hooks.onProgress) {
    const report = hooks.onProgress;
    progress = setInterval(() => {
      const p: Progress = { elapsedMs: performance.now() - started, durationMs, sent: 0, completed: 0, failed: 0, dropped: 0, inFlight: 0 };
      for (const { counters: c } of live) {
        p.sent += c.sent;
        p.completed += c.completed;
        p.failed += c.failed;
        p.dropped += c.dropped;
        p.inFlight += c.inFlight;
      }
      report(p);
    }, hooks.progressIntervalMs ?? 500);
  }
  let results: EngineResult[];
  try {
    results = await Promise.all(plans.map((plan, i) => (inThread ? runInThread(plan, live[i]!, hooks.signal) : runEngine(plan, live[i]!.counters, hooks.signal))));
  } finally {
    if (progress) clearInterval(progress);
  }
  const histogram = new Histogram();
  const sendHistogram = new Histogram();
  const statusCodes: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let sent = 0;
  let requests = 0;
  let failed = 0;
  let dropped = 0;
  let elapsedMs = 0;
  for (const r of results) {
    histogram.merge(r.histogram);
    sendHistogram.merge(r.sendHistogram);
    add(statusCodes, r.statusCodes);
    add(errors, r.errors);
    sent += r.sent;
    requests += r.completed;
    failed += r.failed;
    dropped += r.dropped;
    elapsedMs = Math.max(elapsedMs, r.elapsedMs);
  }
  const durationSeconds = elapsedMs / 1000;
  return {
    model: model.kind,
    url,
    threads: plans.length,
    sent,
    requests,
    ok: requests - failed,
    failed,
    dropped,
    durationSeconds,
    rate: durationSeconds > 0 ? requests / durationSeconds : 0,
    latency: histogram.stats(),
    sendLatency: sendHistogram.stats(),
    statusCodes,
    errors,
    histogram,
  };
}
