/**
 * Judging a policy against the baselines over many scenarios (a generated family, or the public
 * scenarios): per scenario, whether it meets the SLO where a baseline does, its cost over the
 * cheapest baseline that meets the SLO, and its flaps per hour; over all, the shares the policy
 * benchmark prints and its targets.
 */
import { median } from '../core/arrival-rate.js';

/** The untuned adaptive baselines a user would otherwise run. */
export const ADAPTIVE_BASELINES = ['hpa', 'keda', 'step-table', 'cron-script', 'target-cpu'] as const;
/** What a family is judged against: the adaptive baselines and the hindsight fixed fleet. */
export const FAMILY_BASELINES = [...ADAPTIVE_BASELINES, 'fixed-peak'] as const;

export interface PolicyFigures {
  attainment: number;
  replicaSeconds: number;
  flaps: number;
}

/** One scenario's runs, by policy name. */
export interface ScenarioRuns {
  name: string;
  /** The SLO's attainment target. */
  attainment: number;
  /** The trace's length, seconds. */
  traceSeconds: number;
  /** What was drawn (family scenarios), for the worst-five list. */
  params?: Record<string, unknown>;
  runs: Record<string, PolicyFigures>;
}

export interface Verdict {
  name: string;
  /** Some baseline meets the SLO. */
  baselineMeets: boolean;
  /** Some adaptive baseline (not the hindsight fleet) meets the SLO. */
  adaptiveMeets: boolean;
  meets: boolean;
  attainment: number;
  /** The best attainment of an adaptive baseline. */
  bestAdaptive: number;
  /** The policy's replica-seconds over the cheapest SLO-meeting baseline's (when there is one). */
  costRatio?: number;
  cheapest?: string;
  flapsPerHour: number;
  /** Fails the attainment target: misses where a baseline meets, or below the best adaptive elsewhere. */
  attainmentFail: boolean;
  params?: Record<string, unknown>;
}

export function judge(s: ScenarioRuns, policy = 'tide'): Verdict {
  const mine = s.runs[policy];
  if (!mine) throw new Error(`no ${policy} run for ${s.name}`);
  const meets = mine.attainment >= s.attainment;
  let cheapest: string | undefined;
  let bestAdaptive = 0;
  let adaptiveMeets = false;
  for (const name of FAMILY_BASELINES) {
    const r = s.runs[name];
    if (!r) continue;
    if ((ADAPTIVE_BASELINES as readonly string[]).includes(name)) {
      bestAdaptive = Math.max(bestAdaptive, r.attainment);
      if (r.attainment >= s.attainment) adaptiveMeets = true;
    }
    if (r.attainment >= s.attainment && (cheapest === undefined || r.replicaSeconds < s.runs[cheapest]!.replicaSeconds)) cheapest = name;
  }
  const baselineMeets = cheapest !== undefined;
  const hours = s.traceSeconds / 3600;
  return {
    name: s.name,
    baselineMeets,
    adaptiveMeets,
    meets,
    attainment: mine.attainment,
    bestAdaptive,
    ...(cheapest === undefined ? {} : { cheapest, costRatio: mine.replicaSeconds / s.runs[cheapest]!.replicaSeconds }),
    flapsPerHour: hours > 0 ? mine.flaps / hours : 0,
    attainmentFail: baselineMeets ? !meets : mine.attainment < bestAdaptive - 1e-9,
    ...(s.params === undefined ? {} : { params: s.params }),
  };
}

export interface Summary {
  scenarios: number;
  /** Scenarios where a baseline meets the SLO, and of those where the policy meets it too. */
  baseline_meets: number;
  slo_met_where_baseline_meets: number;
  /** The same, counting only the adaptive baselines (the hindsight fleet knows the whole trace in advance). */
  adaptive_meets: number;
  slo_met_where_adaptive_meets: number;
  /** Scenarios no baseline meets where the policy's attainment is below the best adaptive baseline's. */
  below_best_adaptive: number;
  /** Of the scenarios where the policy meets the SLO and a baseline does: the share at or below 1.0x the cheapest. */
  cost_share_le_1: number;
  median_cost_ratio: number;
  /** Share of scenarios with at most 2 flaps an hour. */
  flap_share_le_2: number;
  max_flaps_per_hour: number;
  targets_met: boolean;
  worst: Array<{ name: string; attainment: number; slo: number; cost_ratio: number | null; cheapest: string | null; flaps_per_hour: number; params?: Record<string, unknown> }>;
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** How bad a verdict is, for the worst-five list: attainment failures first, then cost, then flaps. */
function badness(v: Verdict): number {
  return (v.attainmentFail ? 100 : 0) + (v.costRatio ?? 1) + Math.max(0, v.flapsPerHour - 2) / 4;
}

export function summarize(scenarios: ScenarioRuns[], slos: ReadonlyMap<string, number>, policy = 'tide'): Summary {
  const verdicts = scenarios.map((s) => judge(s, policy));
  const withBaseline = verdicts.filter((v) => v.baselineMeets);
  const costed = verdicts.filter((v) => v.meets && v.costRatio !== undefined);
  const costShare = costed.length === 0 ? 1 : costed.filter((v) => v.costRatio! <= 1 + 1e-9).length / costed.length;
  const medianCost = median(costed.map((v) => v.costRatio!));
  const flapShare = verdicts.length === 0 ? 1 : verdicts.filter((v) => v.flapsPerHour <= 2 + 1e-9).length / verdicts.length;
  const attainmentFails = verdicts.filter((v) => v.attainmentFail).length;
  const worst = [...verdicts]
    .sort((a, b) => badness(b) - badness(a))
    .slice(0, 5)
    .map((v) => ({
      name: v.name,
      attainment: r3(v.attainment * 100) / 100,
      slo: slos.get(v.name) ?? Number.NaN,
      cost_ratio: v.costRatio === undefined ? null : r3(v.costRatio),
      cheapest: v.cheapest ?? null,
      flaps_per_hour: r3(v.flapsPerHour),
      ...(v.params === undefined ? {} : { params: v.params }),
    }));
  return {
    scenarios: verdicts.length,
    baseline_meets: withBaseline.length,
    slo_met_where_baseline_meets: withBaseline.filter((v) => v.meets).length,
    adaptive_meets: verdicts.filter((v) => v.adaptiveMeets).length,
    slo_met_where_adaptive_meets: verdicts.filter((v) => v.adaptiveMeets && v.meets).length,
    below_best_adaptive: verdicts.filter((v) => !v.baselineMeets && v.attainmentFail).length,
    cost_share_le_1: r3(costShare),
    median_cost_ratio: r3(medianCost),
    flap_share_le_2: r3(flapShare),
    max_flaps_per_hour: r3(Math.max(0, ...verdicts.map((v) => v.flapsPerHour))),
    targets_met: attainmentFails === 0 && costShare >= 0.9 && medianCost <= 0.8 && flapShare >= 0.9,
    worst,
  };
}
