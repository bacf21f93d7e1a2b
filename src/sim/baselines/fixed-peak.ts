/**
 * The `fixed-peak` baseline: the smallest constant replica count that meets the SLO over the
 * whole trace (shared scenarios README), found by bisection on the count: the count's replicas
 * are ready at t = 0 and never change. When even max_replicas misses the SLO, it is max_replicas.
 * Assumes attainment grows with the count, which holds for a fixed fleet (more slots never
 * delay a FIFO queue).
 */
import { type RunOptions, type RunResult, type SimPolicy, simulate } from '../engine.js';
import type { Jobs } from '../jobs.js';
import type { Scenario } from '../scenario.js';

export function fixedPolicy(replicas: number, name = 'fixed-peak'): SimPolicy {
  return { name, intervalSeconds: 0, decide: () => replicas };
}

export interface SearchOutcome {
  result: RunResult;
  /** What the search settled on, for the report ("replicas=20", "target=57.3"). */
  parameter: string;
  runs: number;
}

/** Finds the count; `final` are the options of the last run (the one reported). */
export function fixedPeak(scenario: Scenario, jobs: Jobs, final: RunOptions = {}): SearchOutcome {
  let runs = 0;
  const meets = (r: number): boolean => {
    runs++;
    return !simulate(scenario, jobs, fixedPolicy(r), { initialReplicas: r, abortWhenSloMissed: true, skipPercentiles: true }).aborted;
  };
  // bisection for the smallest count that meets; when none does it ends at max_replicas, whose
  // final run then reports the miss (so max itself needs no separate check)
  let lo = Math.max(1, scenario.minReplicas);
  let hi = scenario.maxReplicas;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (meets(mid)) hi = mid;
    else lo = mid + 1;
  }
  return { result: simulate(scenario, jobs, fixedPolicy(lo), { ...final, initialReplicas: lo }), parameter: `replicas=${lo}`, runs: runs + 1 };
}
