/**
 * decide(): one round of the decision core. Pure and deterministic: no I/O, no clock (`now` is
 * an argument), and the input history is never mutated; the caller passes the returned history
 * back next round (core/decider.ts does).
 *
 * The pipeline, one function per stage, in order (each stage that clamps or holds adds a reason
 * and may set `limitedBy`):
 *  1. `readMetrics`: the latest sample per metric; NaN, infinite or negative values count as
 *     missing (InvalidMetric); counters are appended to the history.
 *  2. `propose`: policies propose; the largest proposal wins. A policy missing a metric, or a
 *     round whose source failed, may only scale up (MissingMetrics: the HPA rule).
 *  3. `activate`: scale to zero only with an activation threshold, and from zero only above it.
 *  4. `panic` (Knative): demand >= threshold x ready capacity scales up at once, never down.
 *  5. `stabilizeWindows`: the HPA's min over the up window, max over the down window.
 *  6. and 7. `limitRate`: rate limits per period, then cooldowns.
 *  8. `bound`: min/max after the schedule's windows (the only place bounds are enforced).
 *  9. `fallBack`: fallback replicas after repeated source failures (the KEDA rule).
 *
 * History kept: recommendations (for the windows), scale events (for rate limits and
 * cooldowns), counter series (for rates), consecutive failures, panic start, and per-policy
 * state under `policy:<label>`, activation state under `activation`, panic state under `panic`.
 */
import { cooldownLeft, rulesFor, scaleDownLimit, scaleUpLimit, stabilize } from './behavior.js';
import { type MetricView, readSamples, recordCounters } from './metrics.js';
import { type PolicyContext, type Proposal, policyLabel, proposeSteps, proposeTarget } from './policies.js';
import { boundsAt } from './schedule.js';
import { SLO_DEFAULTS, proposeSlo, reversalOf } from './slo.js';
import type { DecideInput, Decision, History, Policy, Reason, ReasonCode, ServicePolicy } from './types.js';

/** One round as it goes through the stages: the inputs read once, the count and reasons so far. */
interface Round {
  readonly now: number;
  readonly policy: ServicePolicy;
  readonly current: number;
  readonly ready: number;
  readonly prev: History;
  readonly sourceFailed: boolean;
  readonly failures: number;
  readonly view: MetricView;
  readonly counters: History['counters'];
  readonly bounds: ReturnType<typeof boundsAt>;
  desired: number;
  readonly reasons: Reason[];
  limitedBy?: ReasonCode;
  readonly state: Record<string, unknown>;
  panicSince?: number;
  recommendations: History['recommendations'];
  events: History['events'];
}

/** A stage set the count: say why, and that it bound the result. */
function bind(r: Round, code: ReasonCode, message: string, replicas: number): void {
  r.reasons.push({ code, message, replicas });
  r.limitedBy = code;
}

/** One decision: the desired replica count, the reasons, and the history to pass back next round. */
export function decide(input: DecideInput): Decision {
  const r = readMetrics(input);
  propose(r);
  activate(r);
  const panicking = panic(r);
  const rules = stabilizeWindows(r, panicking);
  limitRate(r, rules, panicking);
  bound(r);
  fallBack(r);
  return conclude(r);
}

// 1. Metrics.
function readMetrics(input: DecideInput): Round {
  const { now, policy } = input;
  const prev = input.history;
  const view = readSamples(input.samples);
  const reasons: Reason[] = [];
  for (const [metric, value] of view.invalid) {
    reasons.push({ code: 'InvalidMetric', message: `${metric} read ${String(value)}, not a finite non-negative number, so it counts as missing this round.` });
  }
  const current = Math.max(0, Math.round(input.current));
  return {
    now,
    policy,
    current,
    ready: Math.max(0, Math.round(input.ready)),
    prev,
    sourceFailed: input.sourceFailed === true,
    failures: input.sourceFailed ? prev.failures + 1 : 0,
    view,
    counters: recordCounters(prev.counters, view, now),
    bounds: boundsAt(policy, now),
    desired: current,
    reasons,
    state: { ...prev.state },
    ...(prev.panicSince === undefined ? {} : { panicSince: prev.panicSince }),
    recommendations: prev.recommendations,
    events: prev.events,
  };
}

function proposeOne(p: Policy, label: string, ctx: PolicyContext): Proposal {
  switch (p.kind) {
    case 'target':
      return proposeTarget(p, label, ctx);
    case 'steps':
      return proposeSteps(p, label, ctx);
    case 'slo':
      return proposeSlo(p, label, ctx);
  }
}

// 2. Policies propose; the largest wins; missing data may only scale up.
function propose(r: Round): void {
  const { now, current, ready, view, counters, prev } = r;
  let proposal: number | undefined;
  let partial = r.sourceFailed;
  if (r.sourceFailed) {
    r.reasons.push({ code: 'MissingMetrics', message: `A metric source failed this round (${r.failures} in a row), so no scale-down happens on what is left.` });
  }
  r.policy.policies.forEach((p, i) => {
    const label = policyLabel(p, i);
    const key = `policy:${label}`;
    const result = proposeOne(p, label, { now, current, ready, view, counters, events: prev.events, state: prev.state[key], maxReplicas: r.bounds.max });
    r.reasons.push(...result.reasons);
    if (result.state !== undefined) r.state[key] = result.state;
    if (result.missing.length > 0) {
      partial = true;
      r.reasons.push({ code: 'MissingMetrics', policy: label, message: `${label} lacks ${result.missing.join(', ')} this round, so it may only scale up.` });
    }
    if (result.replicas !== undefined) proposal = Math.max(proposal ?? 0, result.replicas);
  });
  r.desired = proposal ?? current;
  if (partial && r.desired < current) {
    r.desired = current;
    bind(r, 'MissingMetrics', `Some metrics are missing, so ${current} replicas stay: the core never scales down on partial data.`, current);
  }
}

function readActiveAt(x: unknown): number | undefined {
  return x && typeof x === 'object' && 'activeAt' in x && typeof x.activeAt === 'number' ? x.activeAt : undefined;
}

// 3. Activation and scale to zero.
function activate(r: Round): void {
  const { now, current } = r;
  const activation = r.policy.activation;
  if (!activation) {
    if (r.desired === 0 && current > 0) {
      r.desired = 1;
      if (r.bounds.min === 0) bind(r, 'ActivationThreshold', 'No activation threshold is configured, so the service does not scale to zero.', 1);
    }
    return;
  }
  const value = r.view.values.get(activation.metric);
  let activeAt = readActiveAt(r.prev.state.activation);
  if (value !== undefined && value > activation.threshold) activeAt = now;
  if (activeAt !== undefined) r.state.activation = { activeAt };
  if (current === 0) {
    if (value !== undefined && value > activation.threshold) {
      if (r.desired < 1) r.desired = 1;
      r.reasons.push({ code: 'ActivationThreshold', replicas: r.desired, message: `${activation.metric} is ${value}, above the activation threshold ${activation.threshold}: scaling from zero.` });
    } else if (r.desired > 0) {
      r.desired = 0;
      bind(r, 'ActivationThreshold', `${activation.metric} is ${value ?? 'missing'}, not above the activation threshold ${activation.threshold}: staying at zero.`, 0);
    }
  } else if (r.desired === 0) {
    const cooldown = (activation.cooldownSeconds ?? 300) * 1000;
    if (value === undefined || value > activation.threshold || (activeAt !== undefined && now - activeAt < cooldown)) {
      r.desired = 1;
      bind(
        r,
        'ActivationThreshold',
        value === undefined || value > activation.threshold
          ? `${activation.metric} is ${value ?? 'missing'}, not at or below the activation threshold ${activation.threshold}: keeping one replica.`
          : `${activation.metric} has been at or below the activation threshold for less than ${cooldown / 1000} s: keeping one replica.`,
        1,
      );
    } else {
      r.reasons.push({ code: 'ActivationThreshold', replicas: 0, message: `${activation.metric} is ${value}, at or below the activation threshold ${activation.threshold}: scaling to zero.` });
    }
  }
}

interface PanicState {
  lastTrigger?: number;
  proposals: Array<{ at: number; replicas: number }>;
}

function readPanic(x: unknown): PanicState {
  if (x && typeof x === 'object' && 'proposals' in x && Array.isArray(x.proposals)) {
    const lastTrigger = 'lastTrigger' in x && typeof x.lastTrigger === 'number' ? x.lastTrigger : undefined;
    return { proposals: x.proposals as PanicState['proposals'], ...(lastTrigger === undefined ? {} : { lastTrigger }) };
  }
  return { proposals: [] };
}

// 4. Panic: a surge well beyond ready capacity scales up at once and blocks scale-down. Returns whether it is on.
function panic(r: Round): boolean {
  const cfg = r.policy.panic;
  if (cfg) {
    const { now, current, ready } = r;
    const ps = readPanic(r.prev.state.panic);
    const proposals = [...ps.proposals.filter((p) => p.at > now - cfg.windowSeconds * 1000 && p.at < now), { at: now, replicas: r.desired }];
    const demand = Math.max(...proposals.map((p) => p.replicas));
    let lastTrigger = ps.lastTrigger;
    if (demand > current && demand >= cfg.threshold * Math.max(ready, 1)) {
      r.panicSince ??= now;
      lastTrigger = now;
    } else if (r.panicSince !== undefined && now - (lastTrigger ?? r.panicSince) >= (cfg.stableWindowSeconds ?? 60) * 1000) {
      delete r.panicSince;
    }
    r.state.panic = { proposals, ...(lastTrigger === undefined ? {} : { lastTrigger }) };
    if (r.panicSince !== undefined) {
      r.desired = Math.max(r.desired, demand, current);
      r.reasons.push({ code: 'Panic', replicas: r.desired, message: `Panic mode since ${new Date(r.panicSince).toISOString()}: demand ${demand} is at least ${cfg.threshold}x the ${ready} ready replicas, so the core scales up at once and not down.` });
    }
  }
  return r.panicSince !== undefined;
}

type Rules = ReturnType<typeof rulesFor>;

// 5. Stabilization windows. Returns the behaviour rules of both directions, which the rate limits use too.
function stabilizeWindows(r: Round, panicking: boolean): { up: Rules; down: Rules } {
  const { now, current, policy } = r;
  const sloWindow = policy.policies.some((p) => p.kind === 'slo') ? SLO_DEFAULTS.scaleDownWindowSeconds : undefined;
  const up = rulesFor(policy.behavior, 'up', sloWindow);
  const down = rulesFor(policy.behavior, 'down', sloWindow);
  const keepRecs = Math.max(up.stabilizationWindowSeconds, down.stabilizationWindowSeconds) * 1000;
  r.recommendations = [...r.prev.recommendations.filter((x) => x.at > now - keepRecs && x.at < now), { at: now, replicas: r.desired }];
  const recommended = r.desired;
  r.desired = stabilize(r.recommendations, now, current, panicking ? 0 : up.stabilizationWindowSeconds, down.stabilizationWindowSeconds);
  if (panicking) r.desired = Math.max(r.desired, current);
  if (r.desired < recommended) {
    bind(r, 'ScaleUpStabilized', `The lowest recommendation in the last ${up.stabilizationWindowSeconds} s is ${r.desired}, so the scale-up stops there.`, r.desired);
  } else if (r.desired > recommended) {
    bind(r, 'ScaleDownStabilized', `The highest recommendation in the last ${down.stabilizationWindowSeconds} s is ${r.desired}, so the scale-down stops there.`, r.desired);
  }
  return { up, down };
}

// 6. Rate limits and 7. cooldowns (panic skips the scale-up ones).
function limitRate(r: Round, { up, down }: { up: Rules; down: Rules }, panicking: boolean): void {
  const { now, current, policy } = r;
  // as long as any rule looks back: the rate-limit periods, the cooldowns, an SLO policy's reversal window
  const reversals = policy.policies.flatMap((p) => (p.kind === 'slo' ? [reversalOf(p)] : []));
  const keepEvents =
    Math.max(600, up.cooldownSeconds, down.cooldownSeconds, ...up.policies.map((p) => p.periodSeconds), ...down.policies.map((p) => p.periodSeconds), ...reversals) * 1000;
  const events = r.prev.events.filter((e) => e.at > now - keepEvents && e.at <= now);
  r.events = events;
  if (r.desired > current && !panicking) {
    const limit = scaleUpLimit(up, events, now, current);
    if (limit !== undefined && r.desired > limit) {
      r.desired = limit;
      bind(r, 'ScaleUpLimit', `Scale-up rules allow at most ${limit} replicas now (${describe(up)}).`, limit);
    }
    const left = cooldownLeft(events, now, up.cooldownSeconds, 'up');
    if (r.desired > current && left > 0) {
      r.desired = current;
      bind(r, 'Cooldown', `The scale-up cooldown has ${Math.ceil(left)} s left, so ${current} replicas stay.`, current);
    }
  } else if (r.desired < current) {
    const limit = scaleDownLimit(down, events, now, current);
    if (limit !== undefined && r.desired < limit) {
      r.desired = limit;
      bind(r, 'ScaleDownLimit', `Scale-down rules allow at least ${limit} replicas now (${describe(down)}).`, limit);
    }
    const left = cooldownLeft(events, now, down.cooldownSeconds, 'down');
    if (r.desired < current && left > 0) {
      r.desired = current;
      bind(r, 'Cooldown', `The scale-down cooldown has ${Math.ceil(left)} s left, so ${current} replicas stay.`, current);
    }
  }
}

function describe(rules: Rules): string {
  if (rules.selectPolicy === 'Disabled') return 'this direction is disabled';
  const parts = rules.policies.map((p) => `${p.value}${p.type === 'Percent' ? '%' : ' pods'} per ${p.periodSeconds} s`);
  return `${parts.join(', ')}; select ${rules.selectPolicy}`;
}

// 8. Bounds, after the schedule.
function bound(r: Round): void {
  const { bounds } = r;
  r.reasons.push(...bounds.reasons);
  const fromSchedule = bounds.reasons.length > 0 ? ' (as the schedule sets it now)' : '';
  if (r.desired < bounds.min) {
    r.desired = bounds.min;
    bind(r, 'TooFewReplicas', `The minimum is ${bounds.min}${fromSchedule}, so the count rises to it.`, r.desired);
  } else if (r.desired > bounds.max) {
    r.desired = bounds.max;
    bind(r, 'TooManyReplicas', `The maximum is ${bounds.max}${fromSchedule}, so the count stops there.`, r.desired);
  }
}

// 9. Fallback after repeated source failures (within the bounds).
function fallBack(r: Round): void {
  const { fallback } = r.policy;
  if (!fallback || r.failures < fallback.failureThreshold) return;
  r.desired = Math.min(r.bounds.max, Math.max(r.bounds.min, fallback.replicas));
  bind(r, 'FallbackReplicas', `Metric sources failed ${r.failures} times in a row (threshold ${fallback.failureThreshold}), so the count falls back to ${r.desired}.`, r.desired);
}

/** The decision, with a closing reason when no stage bound the count, and the history to pass back. */
function conclude(r: Round): Decision {
  const { desired, current, reasons, limitedBy } = r;
  if (limitedBy === undefined) {
    reasons.push(
      desired === current
        ? { code: 'DesiredWithinRange', replicas: desired, message: `The policies ask for ${desired} replicas, which is within bounds: no change.` }
        : { code: 'ScalingActive', replicas: desired, message: `Scaling from ${current} to ${desired} replicas.` },
    );
  }
  const history: History = {
    recommendations: r.recommendations,
    events: desired === current ? r.events : [...r.events, { at: r.now, from: current, to: desired }],
    counters: r.counters,
    failures: r.failures,
    state: r.state,
    ...(r.panicSince === undefined ? {} : { panicSince: r.panicSince }),
  };
  return { desired, reasons, ...(limitedBy === undefined ? {} : { limitedBy }), history };
}
