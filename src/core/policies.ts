/**
 * The policies that propose a replica count: `target` (the HPA rule) and `steps` (runbook
 * threshold tables) here, `slo` in slo.ts. A policy only proposes; behaviour rules and bounds
 * are applied after the largest proposal wins (decide.ts).
 */
import type { MetricView, Series } from './metrics.js';
import type { History, Policy, Reason, StepsPolicy, TargetPolicy } from './types.js';

/** What a policy sees in one round. */
export interface PolicyContext {
  now: number;
  current: number;
  ready: number;
  view: MetricView;
  counters: Readonly<Record<string, Series>>;
  /** Past scale events (from the history), newest last. */
  events: History['events'];
  /** This policy's own state from the previous round (undefined at first). */
  state: unknown;
  /** The largest count the service may have now (schedule-adjusted max), a cap for searches. */
  maxReplicas: number;
}

export interface Proposal {
  /** Undefined when the policy could not propose (see `missing`). */
  replicas?: number;
  /** Metrics the policy needed and did not get (missing or invalid) this round. */
  missing: string[];
  reasons: Reason[];
  /** The policy's state to keep for the next round. */
  state?: unknown;
}

/** A label for reasons: the policy's name, or its kind and position. */
export function policyLabel(p: Policy, index: number): string {
  return p.name ?? `${p.kind}[${index}]`;
}

function missing(metric: string): Proposal {
  return { missing: [metric], reasons: [] };
}

/** HPA target tracking; tolerance keeps the count when the ratio is within 1 +- tolerance. */
export function proposeTarget(p: TargetPolicy, label: string, ctx: PolicyContext): Proposal {
  const value = ctx.view.values.get(p.metric);
  if (value === undefined) return missing(p.metric);
  const tolerance = p.tolerance ?? 0.1;
  const ratio = p.type === 'utilization' ? value / p.target : ctx.current > 0 ? value / (ctx.current * p.target) : Infinity;
  if (ctx.current > 0 && Math.abs(ratio - 1) <= tolerance) {
    return {
      replicas: ctx.current,
      missing: [],
      reasons: [
        {
          code: 'WithinTolerance',
          policy: label,
          replicas: ctx.current,
          message: `${p.metric} is ${round(value)} against a target of ${p.target}${p.type === 'average' ? ' per replica' : ''}: within the ${tolerance} tolerance, so ${label} keeps ${ctx.current}.`,
        },
      ],
    };
  }
  const replicas = p.type === 'utilization' ? Math.ceil(ctx.current * ratio) : Math.ceil(value / p.target);
  return {
    replicas,
    missing: [],
    reasons: [
      {
        code: 'PolicyProposal',
        policy: label,
        replicas,
        message:
          p.type === 'utilization'
            ? `${p.metric} is ${round(value)} against a target of ${p.target}, so ${label} proposes ceil(${ctx.current} x ${round(ratio)}) = ${replicas}.`
            : `${p.metric} totals ${round(value)} against ${p.target} per replica, so ${label} proposes ${replicas}.`,
      },
    ],
  };
}

/** Threshold tables: the highest `above` that the value exceeds, else the lowest `below` it is under. */
export function proposeSteps(p: StepsPolicy, label: string, ctx: PolicyContext): Proposal {
  const value = ctx.view.values.get(p.metric);
  if (value === undefined) return missing(p.metric);
  const up = [...(p.up ?? [])].sort((a, b) => b.above - a.above).find((s) => value > s.above);
  if (up) {
    const replicas =
      up.set ?? (up.percent !== undefined ? Math.ceil(ctx.current * (1 + up.percent / 100)) : ctx.current + (up.add ?? 0));
    return {
      replicas,
      missing: [],
      reasons: [{ code: 'PolicyProposal', policy: label, replicas, message: `${p.metric} is ${round(value)}, above ${up.above}, so ${label} proposes ${replicas}.` }],
    };
  }
  const down = [...(p.down ?? [])].sort((a, b) => a.below - b.below).find((s) => value < s.below);
  if (down) {
    const replicas = Math.max(
      0,
      down.set ??
        (down.percent !== undefined ? Math.floor(ctx.current * (1 - down.percent / 100)) : ctx.current - (down.remove ?? 0)),
    );
    return {
      replicas,
      missing: [],
      reasons: [{ code: 'PolicyProposal', policy: label, replicas, message: `${p.metric} is ${round(value)}, below ${down.below}, so ${label} proposes ${replicas}.` }],
    };
  }
  return {
    replicas: ctx.current,
    missing: [],
    reasons: [
      { code: 'WithinTolerance', policy: label, replicas: ctx.current, message: `${p.metric} is ${round(value)}: no step applies, so ${label} keeps ${ctx.current}.` },
    ],
  };
}

/** Rounds for messages only. */
export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const abs = Math.abs(x);
  const digits = abs >= 100 ? 0 : abs >= 1 ? 2 : 3;
  return Number(x.toFixed(digits));
}
