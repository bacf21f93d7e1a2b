/**
 * Running policies over scenarios: the named policies (`tide` and the baselines), the searches
 * behind `fixed-peak` and the tuned baselines, the per-scenario job cache, and the JSON rows
 * `tide simulate --json` and the benchmark print.
 */
import { TideError } from '../errors.js';
import { cronScriptPolicy } from './baselines/cron-script.js';
import { type SearchOutcome, fixedPeak } from './baselines/fixed-peak.js';
import { hpaPolicy } from './baselines/hpa.js';
import { kedaPolicy } from './baselines/keda.js';
import { stepTablePolicy } from './baselines/step-table.js';
import { targetCpuPolicy } from './baselines/target-cpu.js';
import { tunedSearch } from './baselines/tuned.js';
import { type RunOptions, type RunResult, type SimPolicy, simulate } from './engine.js';
import { type Jobs, drawJobs } from './jobs.js';
import { type Scenario, loadScenario, loadTrace } from './scenario.js';
import { tidePolicy } from './tide.js';

export const POLICY_NAMES = ['tide', 'hpa', 'keda', 'step-table', 'cron-script', 'target-cpu', 'fixed-peak', 'hpa-tuned', 'keda-tuned'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Parses `--policy a,b` (or `all`); TIDE_SIM_UNKNOWN_POLICY names an unknown one. */
export function parsePolicies(list: string | undefined): PolicyName[] {
  if (list === undefined || list === 'all') return [...POLICY_NAMES];
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!(POLICY_NAMES as readonly string[]).includes(name)) {
      throw new TideError('TIDE_SIM_UNKNOWN_POLICY', `No policy "${name}"; the policies are ${POLICY_NAMES.join(', ')} (or all).`, { where: { arg: '--policy' } });
    }
  }
  if (names.length === 0) throw new TideError('TIDE_SIM_UNKNOWN_POLICY', '--policy names no policy.', { where: { arg: '--policy' } });
  return [...new Set(names)] as PolicyName[];
}

/** A scenario ready to run: validated, its trace read, its jobs drawn. */
export interface LoadedScenario {
  scenario: Scenario;
  jobs: Jobs;
}

export function prepareScenario(file: string, seed = 1): LoadedScenario {
  const scenario = loadScenario(file);
  return { scenario, jobs: drawJobs(scenario, loadTrace(scenario), seed) };
}

export interface PolicyRun {
  scenario: string;
  result: RunResult;
  /** What a search settled on (fixed-peak's count, a tuned target). */
  parameter?: string;
  /** Simulations it took (1, or more for searches). */
  runs: number;
  /** Wall-clock seconds for this policy. */
  seconds: number;
}

/** Builds a fresh instance of a plain (non-search) policy. */
export async function makePolicy(name: Exclude<PolicyName, 'fixed-peak' | 'hpa-tuned' | 'keda-tuned'>, scenario: Scenario): Promise<SimPolicy> {
  switch (name) {
    case 'tide':
      return tidePolicy(scenario);
    case 'hpa':
      return hpaPolicy(scenario);
    case 'keda':
      return kedaPolicy(scenario);
    case 'step-table':
      return stepTablePolicy(scenario);
    case 'cron-script':
      return cronScriptPolicy(scenario);
    case 'target-cpu':
      return targetCpuPolicy(scenario);
  }
}

/** Runs one named policy (with its search, for the searched ones). */
export async function runPolicy(name: PolicyName, loaded: LoadedScenario, options: RunOptions = {}): Promise<PolicyRun> {
  const { scenario, jobs } = loaded;
  const started = performance.now();
  let outcome: SearchOutcome;
  if (name === 'fixed-peak') outcome = fixedPeak(scenario, jobs, options);
  else if (name === 'hpa-tuned') outcome = tunedSearch(scenario, jobs, name, (target) => hpaPolicy(scenario, { name, target }), options);
  else if (name === 'keda-tuned') outcome = tunedSearch(scenario, jobs, name, (target) => kedaPolicy(scenario, { name, target }), options);
  else outcome = { result: simulate(scenario, jobs, await makePolicy(name, scenario), options), parameter: '', runs: 1 };
  return {
    scenario: scenario.name,
    result: outcome.result,
    ...(outcome.parameter ? { parameter: outcome.parameter } : {}),
    runs: outcome.runs,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The JSON row of `tide simulate --json` (exact keys, in this order). */
export interface JsonRow {
  scenario: string;
  policy: string;
  attainment: number;
  slo_attainment: number;
  wait_p95: number;
  wait_p99: number;
  replica_seconds: number;
  lower_bound_seconds: number;
  efficiency: number;
  scale_events: number;
  flaps: number;
  trace_seconds: number;
}

export function jsonRow(scenario: Scenario, run: PolicyRun): JsonRow {
  const r = run.result;
  return {
    scenario: scenario.name,
    policy: r.policy,
    attainment: round(r.attainment, 6),
    slo_attainment: scenario.slo.attainment,
    wait_p95: round(r.waitP95, 3),
    wait_p99: round(r.waitP99, 3),
    replica_seconds: round(r.replicaSeconds, 1),
    lower_bound_seconds: round(r.lowerBoundSeconds, 1),
    efficiency: round(r.efficiency, 4),
    scale_events: r.scaleEvents,
    flaps: r.flaps,
    trace_seconds: r.traceSeconds,
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
