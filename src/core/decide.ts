/**
 * decide(): one round of the decision core. Pure and deterministic: no I/O, no clock (`now` is
 * an argument), and the input history is never mutated; the caller passes the returned history
 * back next round.
 *
 * The pipeline, in order (each step that clamps or holds adds a reason and may set `limitedBy`):
 *  1. metrics: the latest sample per metric; NaN, infinite or negative values count as missing
 *     (InvalidMetric); counters are appended to the history.
 *  2. policies propose; the largest proposal wins. A policy missing a metric, or a round whose
 *     source failed, may only scale up (MissingMetrics: the HPA rule).
 *  3. activation: scale to zero only with an activation threshold, and from zero only above it.
 *  4. panic (Knative): demand >= threshold x ready capacity scales up at once, never down.
 *  5. stabilization windows (the HPA's min over the up window, max over the down window).
 *  6. rate limits per period, 7. cooldowns, 8. min/max after the schedule's windows,
 *  9. fallback replicas after repeated source failures (the KEDA rule).
 *
 * History kept: recommendations (for the windows), scale events (for rate limits and
 * cooldowns), counter series (for rates), consecutive failures, panic start, and per-policy
 * state under `policy:<label>`, activation state under `activation`, panic state under `panic`.
 */
import { cooldownLeft, rulesFor, scaleDownLimit, scaleUpLimit, stabilize } from './behavior.js';
import { readSamples, recordCounters } from './metrics.js';
import { type PolicyContext, type Proposal, policyLabel, proposeSteps, proposeTarget } from './policies.js';
import { boundsAt } from './schedule.js';
import { SLO_DEFAULTS, proposeSlo, reversalOf } from './slo.js';
import type { DecideInput, Decision, History, Policy, Reason, ReasonCode } from './types.js';

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

function readActiveAt(x: unknown): number | undefined {
  return x && typeof x === 'object' && 'activeAt' in x && typeof x.activeAt === 'number' ? x.activeAt : undefined;
}

/** One decision: the desired replica count, the reasons, and the history to pass back next round. */
export function decide(input: DecideInput): Decision {
  const { now, policy } = input;
  const current = Math.max(0, Math.round(input.current));
  const ready = Math.max(0, Math.round(input.ready));
  const prev = input.history;
  const reasons: Reason[] = [];
  let limitedBy: ReasonCode | undefined;
  const bind = (code: ReasonCode, message: string, replicas: number, policyName?: string) => {
    reasons.push({ code, message, replicas, ...(policyName === undefined ? {} : { policy: policyName }) });
    limitedBy = code;
  };
  const failures = input.sourceFailed ? prev.failures + 1 : 0;
  const state: Record<string, unknown> = { ...prev.state };

  // 1. Metrics.
  const view = readSamples(input.samples);
  for (const [metric, value] of view.invalid) {
    reasons.push({ code: 'InvalidMetric', message: `${metric} read ${String(value)}, not a finite non-negative number, so it counts as missing this round.` });
  }
  const counters = recordCounters(prev.counters, view, now);
  const bounds = boundsAt(policy, now);

  // 2. Policies propose; the largest wins; missing data may only scale up.
  let proposal: number | undefined;
  let partial = input.sourceFailed === true;
  if (input.sourceFailed) {
    reasons.push({ code: 'MissingMetrics', message: `A metric source failed this round (${failures} in a row), so no scale-down happens on what is left.` });
  }
  policy.policies.forEach((p, i) => {
    const label = policyLabel(p, i);
    const key = `policy:${label}`;
    const result = proposeOne(p, label, { now, current, ready, view, counters, events: prev.events, state: prev.state[key], maxReplicas: bounds.max });
    reasons.push(...result.reasons);
    if (result.state !== undefined) state[key] = result.state;
    if (result.missing.length > 0) {
      partial = true;
      reasons.push({ code: 'MissingMetrics', policy: label, message: `${label} lacks ${result.missing.join(', ')} this round, so it may only scale up.` });
    }
    if (result.replicas !== undefined) proposal = Math.max(proposal ?? 0, result.replicas);
  });
  let desired = proposal ?? current;
  if (partial && desired < current) {
    desired = current;
    bind('MissingMetrics', `Some metrics are missing, so ${current} replicas stay: the core never scales down on partial data.`, current);
  }

  // 3. Activation and scale to zero.
  const activation = policy.activation;
  if (activation) {
    const value = view.values.get(activation.metric);
    let activeAt = readActiveAt(prev.state.activation);
    if (value !== undefined && value > activation.threshold) activeAt = now;
    if (activeAt !== undefined) state.activation = { activeAt };
    if (current === 0) {
      if (value !== undefined && value > activation.threshold) {
        if (desired < 1) desired = 1;
        reasons.push({ code: 'ActivationThreshold', replicas: desired, message: `${activation.metric} is ${value}, above the activation threshold ${activation.threshold}: scaling from zero.` });
      } else if (desired > 0) {
        desired = 0;
        bind('ActivationThreshold', `${activation.metric} is ${value ?? 'missing'}, not above the activation threshold ${activation.threshold}: staying at zero.`, 0);
      }
    } else if (desired === 0) {
      const cooldown = (activation.cooldownSeconds ?? 300) * 1000;
      if (value === undefined || value > activation.threshold || (activeAt !== undefined && now - activeAt < cooldown)) {
        desired = 1;
        bind(
          'ActivationThreshold',
          value === undefined || value > activation.threshold
            ? `${activation.metric} is ${value ?? 'missing'}, not at or below the activation threshold ${activation.threshold}: keeping one replica.`
            : `${activation.metric} has been at or below the activation threshold for less than ${cooldown / 1000} s: keeping one replica.`,
          1,
        );
      } else {
        reasons.push({ code: 'ActivationThreshold', replicas: 0, message: `${activation.metric} is ${value}, at or below the activation threshold ${activation.threshold}: scaling to zero.` });
      }
    }
  } else if (desired === 0 && current > 0) {
    desired = 1;
    if (bounds.min === 0) bind('ActivationThreshold', 'No activation threshold is configured, so the service does not scale to zero.', 1);
  }

  // 4. Panic: a surge well beyond ready capacity scales up at once and blocks scale-down.
  let panicSince = prev.panicSince;
  if (policy.panic) {
    const cfg = policy.panic;
    const ps = readPanic(prev.state.panic);
    const proposals = [...ps.proposals.filter((p) => p.at > now - cfg.windowSeconds * 1000 && p.at < now), { at: now, replicas: desired }];
    const demand = Math.max(...proposals.map((p) => p.replicas));
    let lastTrigger = ps.lastTrigger;
    if (demand > current && demand >= cfg.threshold * Math.max(ready, 1)) {
      panicSince ??= now;
      lastTrigger = now;
    } else if (panicSince !== undefined && now - (lastTrigger ?? panicSince) >= (cfg.stableWindowSeconds ?? 60) * 1000) {
      panicSince = undefined;
    }
    state.panic = { proposals, ...(lastTrigger === undefined ? {} : { lastTrigger }) };
    if (panicSince !== undefined) {
      desired = Math.max(desired, demand, current);
      reasons.push({ code: 'Panic', replicas: desired, message: `Panic mode since ${new Date(panicSince).toISOString()}: demand ${demand} is at least ${cfg.threshold}x the ${ready} ready replicas, so the core scales up at once and not down.` });
    }
  }
  const panicking = panicSince !== undefined;

  // 5. Stabilization windows.
  const sloWindow = policy.policies.some((p) => p.kind === 'slo') ? SLO_DEFAULTS.scaleDownWindowSeconds : undefined;
  const up = rulesFor(policy.behavior, 'up', sloWindow);
  const down = rulesFor(policy.behavior, 'down', sloWindow);
  const keepRecs = Math.max(up.stabilizationWindowSeconds, down.stabilizationWindowSeconds) * 1000;
  const recommendations = [...prev.recommendations.filter((r) => r.at > now - keepRecs && r.at < now), { at: now, replicas: desired }];
  const recommended = desired;
  desired = stabilize(recommendations, now, current, panicking ? 0 : up.stabilizationWindowSeconds, down.stabilizationWindowSeconds);
  if (panicking) desired = Math.max(desired, current);
  if (desired < recommended) {
    bind('ScaleUpStabilized', `The lowest recommendation in the last ${up.stabilizationWindowSeconds} s is ${desired}, so the scale-up stops there.`, desired);
  } else if (desired > recommended) {
    bind('ScaleDownStabilized', `The highest recommendation in the last ${down.stabilizationWindowSeconds} s is ${desired}, so the scale-down stops there.`, desired);
  }

  // 6. Rate limits and 7. cooldowns (panic skips the scale-up ones).
  // as long as any rule looks back: the rate-limit periods, the cooldowns, an SLO policy's reversal window
  const reversals = policy.policies.flatMap((p) => (p.kind === 'slo' ? [reversalOf(p)] : []));
  const keepEvents =
    Math.max(600, up.cooldownSeconds, down.cooldownSeconds, ...up.policies.map((p) => p.periodSeconds), ...down.policies.map((p) => p.periodSeconds), ...reversals) * 1000;
  const events = prev.events.filter((e) => e.at > now - keepEvents && e.at <= now);
  if (desired > current && !panicking) {
    const limit = scaleUpLimit(up, events, now, current);
    if (limit !== undefined && desired > limit) {
      desired = limit;
      bind('ScaleUpLimit', `Scale-up rules allow at most ${limit} replicas now (${describe(up)}).`, limit);
    }
    const left = cooldownLeft(events, now, up.cooldownSeconds, 'up');
    if (desired > current && left > 0) {
      desired = current;
      bind('Cooldown', `The scale-up cooldown has ${Math.ceil(left)} s left, so ${current} replicas stay.`, current);
    }
  } else if (desired < current) {
    const limit = scaleDownLimit(down, events, now, current);
    if (limit !== undefined && desired < limit) {
      desired = limit;
      bind('ScaleDownLimit', `Scale-down rules allow at least ${limit} replicas now (${describe(down)}).`, limit);
    }
    const left = cooldownLeft(events, now, down.cooldownSeconds, 'down');
    if (desired < current && left > 0) {
      desired = current;
      bind('Cooldown', `The scale-down cooldown has ${Math.ceil(left)} s left, so ${current} replicas stay.`, current);
    }
  }

  // 8. Bounds, after the schedule.
  reasons.push(...bounds.reasons);
  const fromSchedule = bounds.reasons.length > 0 ? ' (as the schedule sets it now)' : '';
  if (desired < bounds.min) {
    desired = bounds.min;
    bind('TooFewReplicas', `The minimum is ${bounds.min}${fromSchedule}, so the count rises to it.`, desired);
  } else if (desired > bounds.max) {
    desired = bounds.max;
    bind('TooManyReplicas', `The maximum is ${bounds.max}${fromSchedule}, so the count stops there.`, desired);
  }

  // 9. Fallback after repeated source failures.
  if (policy.fallback && failures >= policy.fallback.failureThreshold) {
    desired = Math.min(bounds.max, Math.max(bounds.min, policy.fallback.replicas));
    bind('FallbackReplicas', `Metric sources failed ${failures} times in a row (threshold ${policy.fallback.failureThreshold}), so the count falls back to ${desired}.`, desired);
  }

  if (limitedBy === undefined) {
    reasons.push(
      desired === current
        ? { code: 'DesiredWithinRange', replicas: desired, message: `The policies ask for ${desired} replicas, which is within bounds: no change.` }
        : { code: 'ScalingActive', replicas: desired, message: `Scaling from ${current} to ${desired} replicas.` },
    );
  }
  const history: History = {
    recommendations,
    events: desired === current ? events : [...events, { at: now, from: current, to: desired }],
    counters,
    failures,
    state,
    ...(panicSince === undefined ? {} : { panicSince }),
  };
  return { desired, reasons, ...(limitedBy === undefined ? {} : { limitedBy }), history };
}

function describe(rules: ReturnType<typeof rulesFor>): string {
  if (rules.selectPolicy === 'Disabled') return 'this direction is disabled';
  const parts = rules.policies.map((p) => `${p.value}${p.type === 'Percent' ? '%' : ' pods'} per ${p.periodSeconds} s`);
  return `${parts.join(', ')}; select ${rules.selectPolicy}`;
}
