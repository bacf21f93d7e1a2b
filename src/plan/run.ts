/**
 * `runPlan(options) -> PlanResult`: the capacity planner as a library. It measures one
 * worker (and, when asked, one API instance) on a real database, in a schema of its own that
 * it drops afterwards, then computes the capacity table (model.ts). `tide plan` is a thin
 * shell over it.
 */
import { randomBytes } from 'node:crypto';

import { resolveDatabase } from '../db/connect.js';
import { dropSchema } from '../db/migrate.js';
import { TideError } from '../errors.js';
import { parseTarget } from '../load/run.js';
import { startApi } from '../runtime/api/start.js';
import type { Handlers } from '../runtime/handlers/types.js';
import { type ApiMeasurement, type WorkerMeasurement, measureApi, measureWorker } from './measure.js';
import { type PlanRow, capacityTable, workerCapacity } from './model.js';

export interface PlanOptions {
  handler: string;
  payload: unknown;
  /** Jobs per worker at once. */
  concurrency: number;
  waitSeconds: number;
  attainment: number;
  /** Arrival rates for the table, jobs/s. */
  rates: number[];
  handlers?: Handlers;
  /** A PostgreSQL URL; default DATABASE_URL, else the embedded server. */
  databaseUrl?: string;
  stateDir?: string;
  /** Measure the API too: at `url`, or an in-process API when absent. */
  api?: { url?: string; latencyP95Ms: number; startRate?: number; stepSeconds?: number; maxSteps?: number };
  /** Use this (existing or not) schema instead of a fresh one; it is dropped at the end either way. */
  schema?: string;
  /** Bound on the worker measurement, s. Default 30. */
  maxSeconds?: number;
  /** Length of a worker ramp step (default from the probe). */
  stepSeconds?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PlanResult {
  handler: string;
  payload: unknown;
  concurrency: number;
  slo: { waitSeconds: number; attainment: number };
  service: WorkerMeasurement;
  /** Jobs/s one worker takes within the SLO. */
  workerCapacity: number;
  api?: ApiMeasurement & { url: string; inProcess: boolean; latencyP95Ms: number };
  rows: PlanRow[];
}

function check(ok: boolean, message: string, arg: string): void {
  if (!ok) throw new TideError('TIDE_USAGE', message, { where: { arg } });
}

/** Validates the options (TIDE_USAGE naming the flag). */
export function validatePlan(o: PlanOptions): void {
  check(Number.isInteger(o.concurrency) && o.concurrency >= 1, `--concurrency must be a whole number >= 1, not ${o.concurrency}.`, '--concurrency');
  check(o.waitSeconds > 0 && Number.isFinite(o.waitSeconds), `--wait must be a number of seconds > 0, not ${o.waitSeconds}.`, '--wait');
  check(o.attainment > 0 && o.attainment < 1, `--attainment must be between 0 and 1 (0.99), not ${o.attainment}.`, '--attainment');
  check(o.rates.length > 0 && o.rates.every((r) => Number.isFinite(r) && r >= 0), '--rates must be a comma-separated list of numbers >= 0 (10,50,100).', '--rates');
  if (o.api) {
    check(o.api.latencyP95Ms > 0, `--latency-p95 must be > 0, not ${o.api.latencyP95Ms}.`, '--latency-p95');
    if (o.api.url !== undefined) parseTarget(o.api.url, '--api');
  }
}

/** Measures and plans (see the module note). */
export async function runPlan(o: PlanOptions): Promise<PlanResult> {
  validatePlan(o);
  const log = o.log ?? (() => undefined);
  const db = await resolveDatabase({ ...(o.databaseUrl !== undefined ? { url: o.databaseUrl } : {}), ...(o.stateDir ? { stateDir: o.stateDir } : {}), log });
  const schema = o.schema ?? `tide_plan_${randomBytes(4).toString('hex')}`;
  try {
    log(`measuring one worker (${o.handler}, concurrency ${o.concurrency}) on ${db.embedded ? 'the embedded PostgreSQL' : 'DATABASE_URL'}`);
    const service = await measureWorker({
      databaseUrl: db.url,
      schema,
      handler: o.handler,
      payload: o.payload,
      concurrency: o.concurrency,
      ...(o.handlers ? { handlers: o.handlers } : {}),
      ...(o.maxSeconds !== undefined ? { maxSeconds: o.maxSeconds } : {}),
      ...(o.stepSeconds !== undefined ? { stepSeconds: o.stepSeconds } : {}),
      log,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const slo = { concurrency: o.concurrency, waitSeconds: o.waitSeconds, attainment: o.attainment };
    const capacity = workerCapacity(service, slo);
    let api: PlanResult['api'];
    if (o.api) {
      const local = o.api.url === undefined ? await startApi({ databaseUrl: db.url, schema, port: 0, log, version: 'plan', rateLimit: false }) : undefined;
      const url = o.api.url ?? local!.url;
      try {
        log(`measuring one API instance at ${local ? 'an in-process API' : url}: p95 <= ${o.api.latencyP95Ms} ms`);
        const measured = await measureApi({
          url,
          latencyP95Ms: o.api.latencyP95Ms,
          body: JSON.stringify({ handler: o.handler, queue: 'plan', payload: o.payload }),
          ...(o.api.startRate !== undefined ? { startRate: o.api.startRate } : {}),
          ...(o.api.stepSeconds !== undefined ? { stepSeconds: o.api.stepSeconds } : {}),
          ...(o.api.maxSteps !== undefined ? { maxSteps: o.api.maxSteps } : {}),
          log,
          ...(o.signal ? { signal: o.signal } : {}),
        });
        api = { ...measured, url, inProcess: local !== undefined, latencyP95Ms: o.api.latencyP95Ms };
      } finally {
        await local?.close();
      }
    }
    return {
      handler: o.handler,
      payload: o.payload,
      concurrency: o.concurrency,
      slo: { waitSeconds: o.waitSeconds, attainment: o.attainment },
      service,
      workerCapacity: capacity,
      ...(api ? { api } : {}),
      rows: capacityTable(o.rates, service, slo, api?.capacity),
    };
  } finally {
    await dropSchema(db.url, schema).catch((err: Error) => log(`could not drop the schema ${schema}: ${err.message}`));
    await db.stop();
  }
}

/** The result as text: what was measured, then the table. */
export function formatPlan(r: PlanResult): string {
  const s = r.service;
  const lines = [
    `worker: ${r.handler} ${JSON.stringify(r.payload)}, concurrency ${r.concurrency}`,
    `  measured ${s.samples} jobs: service time mean ${(s.mean * 1000).toFixed(1)} ms, p50 ${(s.p50 * 1000).toFixed(1)} ms, p95 ${(s.p95 * 1000).toFixed(1)} ms, scv ${s.scv.toFixed(2)}`,
    `  throughput when saturated ${s.saturatedThroughput.toFixed(1)} jobs/s (concurrency / mean: ${s.theoreticalThroughput.toFixed(1)})`,
    `  SLO ${(r.slo.attainment * 100).toFixed(1)}% of jobs start within ${r.slo.waitSeconds} s: one worker takes ${r.workerCapacity.toFixed(1)} jobs/s`,
  ];
  if (r.api) {
    lines.push(`api: ${r.api.inProcess ? 'in-process' : r.api.url}, p95 <= ${r.api.latencyP95Ms} ms: one instance takes ${r.api.capacity.toFixed(0)} requests/s`);
    lines.push(`  ramp: ${r.api.steps.map((x) => `${x.rate.toFixed(0)}/s p95 ${x.p95.toFixed(1)}ms${x.ok ? '' : ' (over)'}`).join(', ')}`);
  }
  const head = ['jobs/s', 'workers', 'worker util', ...(r.api ? ['api instances'] : [])];
  const rows = r.rows.map((row) => [String(row.rate), String(row.workers), `${(row.workerUtilisation * 100).toFixed(0)}%`, ...(r.api ? [String(row.apiInstances)] : [])]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  lines.push('', fmt(head), ...rows.map(fmt));
  return lines.join('\n');
}

/** The result as one JSON-ready object. */
export function planJson(r: PlanResult): Record<string, unknown> {
  const round = (x: number) => Math.round(x * 1e4) / 1e4;
  return {
    handler: r.handler,
    payload: r.payload,
    concurrency: r.concurrency,
    slo: { wait_s: r.slo.waitSeconds, attainment: r.slo.attainment },
    service_time: {
      samples: r.service.samples,
      mean_s: round(r.service.mean),
      scv: round(r.service.scv),
      p50_s: round(r.service.p50),
      p95_s: round(r.service.p95),
      saturated_jobs_per_s: round(r.service.saturatedThroughput),
    },
    worker_capacity_jobs_per_s: round(r.workerCapacity),
    api: r.api
      ? { url: r.api.url, in_process: r.api.inProcess, latency_p95_ms: r.api.latencyP95Ms, capacity_rps: r.api.capacity, steps: r.api.steps.map((s) => ({ rate: s.rate, achieved: round(s.achieved), p95_ms: round(s.p95), failed_rate: round(s.failedRate), ok: s.ok })) }
      : null,
    rows: r.rows.map((row) => ({ rate: row.rate, workers: row.workers, worker_utilisation: round(row.workerUtilisation), ...(row.apiInstances !== undefined ? { api_instances: row.apiInstances } : {}) })),
  };
}
