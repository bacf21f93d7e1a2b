/**
 * `hpa-tuned` and `keda-tuned`: the HPA / KEDA baselines with the per-replica target replaced by
 * the largest value for which the run meets the SLO attainment (when none does, the value with
 * the highest attainment): the best an operator reaches by tuning them by hand (shared
 * scenarios README).
 *
 * Attainment is not monotone in the target (on step-down only a narrow band meets the SLO), so
 * the search sweeps a geometric grid of ~9% steps from 4x the default target downwards and
 * stops at the first (largest) value that meets the SLO, then bisects between it and the grid
 * point above it. Runs abort as soon as the SLO is lost, so failing targets cost little.
 */
import { type RunOptions, type RunResult, type SimPolicy, simulate } from '../engine.js';
import type { Jobs } from '../jobs.js';
import type { Scenario } from '../scenario.js';
import type { SearchOutcome } from './fixed-peak.js';
import { backlogPerReplica } from './target.js';

export const TUNE_GRID_STEP = 1.09;
/** The grid spans [default / TUNE_BELOW, default * TUNE_ABOVE]. */
export const TUNE_ABOVE = 4;
export const TUNE_BELOW = 200;
const BISECT_STEPS = 6;

/** Searches the target; `make` builds the policy for a target, `final` are the reported run's options. */
export function tunedSearch(
  scenario: Scenario,
  jobs: Jobs,
  name: string,
  make: (target: number) => SimPolicy,
  final: RunOptions = {},
): SearchOutcome {
  const base = backlogPerReplica(scenario);
  const grid: number[] = [];
  for (let x = base * TUNE_ABOVE; x >= base / TUNE_BELOW; x /= TUNE_GRID_STEP) grid.push(x);
  let runs = 0;
  const run = (target: number, abort: boolean): RunResult => {
    runs++;
    return simulate(scenario, jobs, make(target), { abortWhenSloMissed: abort, skipPercentiles: true });
  };
  let found = -1;
  for (let i = 0; i < grid.length; i++) {
    if (!run(grid[i]!, true).aborted) {
      found = i;
      break;
    }
  }
  let chosen: number;
  if (found < 0) {
    // none meets the SLO: the value with the highest attainment, from a sweep of every fourth
    // grid point (full runs, ~41% apart) and then the grid points around the best one
    let best = -1;
    let bestIndex = 0;
    const tryIndex = (i: number): void => {
      if (i < 0 || i >= grid.length) return;
      const a = run(grid[i]!, false).attainment;
      if (a > best) {
        best = a;
        bestIndex = i;
      }
    };
    for (let i = 0; i < grid.length; i += 4) tryIndex(i);
    const around = bestIndex;
    for (const d of [-2, 2, -1, 1]) tryIndex(around + d);
    chosen = grid[bestIndex]!;
  } else if (found === 0) {
    chosen = grid[0]!;
  } else {
    // pass at grid[found], fail at grid[found - 1] (larger): bisect in log space
    let pass = grid[found]!;
    let fail = grid[found - 1]!;
    for (let k = 0; k < BISECT_STEPS; k++) {
      const mid = Math.sqrt(pass * fail);
      if (run(mid, true).aborted) fail = mid;
      else pass = mid;
    }
    chosen = pass;
  }
  const result = simulate(scenario, jobs, make(chosen), final);
  result.policy = name;
  return { result, parameter: `target=${round3(chosen)}`, runs: runs + 1 };
}

function round3(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(3);
}
