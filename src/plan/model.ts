/**
 * The capacity table: how many workers and API instances each arrival rate needs, from a
 * measured service time distribution and API capacity. Pure; the queueing model is the SLO
 * policy's own (src/core/erlang.ts through the same call the policy makes): M/G/N waits
 * (Erlang C with the Allen-Cunneen variability factor), with `concurrency` servers per worker,
 * planned for the policy's share of the allowed late jobs on the way up (SLO_DEFAULTS.upShare),
 * so the table shows the count tide's SLO policy would scale to at that steady rate.
 */
import { probWaitExceeds, replicasForWait } from '../core/erlang.js';
import { SLO_DEFAULTS } from '../core/slo.js';

export interface ServiceTime {
  /** Mean service time, s. */
  mean: number;
  /** Squared coefficient of variation (variance / mean^2). */
  scv: number;
}

export interface WorkerSlo {
  /** Jobs run at once per worker. */
  concurrency: number;
  /** The wait bound, s ("start within W"). */
  waitSeconds: number;
  /** Share of jobs that must start within the bound (0.99). */
  attainment: number;
}

export interface PlanRow {
  /** Arrivals, jobs/s (one API request each). */
  rate: number;
  workers: number;
  /** Busy share of the workers' slots at that count. */
  workerUtilisation: number;
  /** Undefined when the API was not measured. */
  apiInstances?: number;
}

/** The most workers the table considers for one rate (beyond it the row says ">= cap"). */
export const WORKER_CAP = 100_000;

/** The share of late jobs the table plans for: the SLO policy's on the way up. */
export function plannedLateShare(attainment: number): number {
  return (1 - attainment) * SLO_DEFAULTS.upShare;
}

/** Workers needed at `rate` jobs/s (0 at rate 0). */
export function workersNeeded(rate: number, service: ServiceTime, slo: WorkerSlo, cap = WORKER_CAP): number {
  if (!(rate > 0)) return 0;
  return replicasForWait({ lambda: rate, serviceTime: service.mean, scv: service.scv, wait: slo.waitSeconds }, plannedLateShare(slo.attainment), slo.concurrency, cap);
}

/**
 * Jobs/s one worker takes while keeping the SLO: the largest rate whose predicted late share
 * with `concurrency` servers is within the planned share (bisection; the share rises with rate).
 */
export function workerCapacity(service: ServiceTime, slo: WorkerSlo): number {
  const limit = plannedLateShare(slo.attainment);
  const late = (lambda: number) => probWaitExceeds(slo.concurrency, { lambda, serviceTime: service.mean, scv: service.scv, wait: slo.waitSeconds });
  let lo = 0;
  let hi = slo.concurrency / service.mean; // at or above this one worker is unstable
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (late(mid) <= limit) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** API instances needed at `rate` requests/s when one instance takes `perInstance` within the latency target. */
export function apiInstancesNeeded(rate: number, perInstance: number): number {
  if (!(rate > 0)) return 0;
  return Math.ceil(rate / perInstance - 1e-9);
}

/** The table rows for the given rates. */
export function capacityTable(rates: readonly number[], service: ServiceTime, slo: WorkerSlo, apiPerInstance?: number): PlanRow[] {
  return rates.map((rate) => {
    const workers = workersNeeded(rate, service, slo);
    const row: PlanRow = { rate, workers, workerUtilisation: workers > 0 ? (rate * service.mean) / (workers * slo.concurrency) : 0 };
    if (apiPerInstance !== undefined) row.apiInstances = apiInstancesNeeded(rate, apiPerInstance);
    return row;
  });
}

/** Mean and squared coefficient of variation of samples (ms in, s out). */
export function serviceTimeOf(samplesMs: readonly number[]): ServiceTime {
  const n = samplesMs.length;
  const mean = samplesMs.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? samplesMs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  return { mean: mean / 1000, scv: mean > 0 ? variance / (mean * mean) : 0 };
}
