/**
 * Behaviour rules after the policies have proposed: stabilization windows, rate limits per
 * period, and cooldowns. The arithmetic follows the Kubernetes HPA (`replica_calculator` /
 * `horizontal.go`): stabilization keeps `current` unless every recommendation in the up window
 * is above it (then their min) or every one in the down window is below it (then their max);
 * rate limits measure change from the count at the start of each period.
 */
import type { Behavior, History, ScalingRules } from './types.js';

/** The HPA's defaults: up max(4 pods, 100%) per 15 s with no window; down 100% per 15 s, 300 s window. */
export const DEFAULT_SCALE_UP: Required<Omit<ScalingRules, 'cooldownSeconds'>> = {
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies: [
    { type: 'Pods', value: 4, periodSeconds: 15 },
    { type: 'Percent', value: 100, periodSeconds: 15 },
  ],
};

export const DEFAULT_SCALE_DOWN: Required<Omit<ScalingRules, 'cooldownSeconds'>> = {
  stabilizationWindowSeconds: 300,
  selectPolicy: 'Max',
  policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
};

/**
 * The rules in force for a direction: the user's, with the HPA's defaults for what they leave
 * out. A service with an `slo` policy gets two other defaults (`sloDownWindowSeconds` set):
 * no scale-up rate limit, because that policy sizes its step from the backlog and the start-up
 * delay itself and the HPA's doubling per 15 s is what makes spikes miss their SLO; and a
 * shorter scale-down window, because that policy carries its own scale-in hysteresis (a
 * margin, a hold, and no scale-in soon after a scale-up).
 */
export function rulesFor(
  behavior: Behavior | undefined,
  direction: 'up' | 'down',
  sloDownWindowSeconds?: number,
): Required<Omit<ScalingRules, 'cooldownSeconds'>> & { cooldownSeconds: number } {
  const given = direction === 'up' ? behavior?.scaleUp : behavior?.scaleDown;
  const d = direction === 'up' ? DEFAULT_SCALE_UP : DEFAULT_SCALE_DOWN;
  const hasSlo = sloDownWindowSeconds !== undefined;
  const window = direction === 'down' && hasSlo ? sloDownWindowSeconds : d.stabilizationWindowSeconds;
  return {
    stabilizationWindowSeconds: given?.stabilizationWindowSeconds ?? window,
    selectPolicy: given?.selectPolicy ?? d.selectPolicy,
    policies: given?.policies ?? (direction === 'up' && hasSlo ? [] : d.policies),
    cooldownSeconds: given?.cooldownSeconds ?? 0,
  };
}

/** The stabilized recommendation: `current` moved only as far as the whole window agrees. */
export function stabilize(
  recommendations: History['recommendations'],
  now: number,
  current: number,
  upWindowSeconds: number,
  downWindowSeconds: number,
): number {
  const last = recommendations[recommendations.length - 1];
  if (!last) return current;
  let up = last.replicas;
  let down = last.replicas;
  for (const r of recommendations) {
    if (r.at > now - upWindowSeconds * 1000) up = Math.min(up, r.replicas);
    if (r.at > now - downWindowSeconds * 1000) down = Math.max(down, r.replicas);
  }
  let result = current;
  if (result < up) result = up;
  if (result > down) result = down;
  return result;
}

/** Net replicas added (up) or removed (down) by recorded events inside the period. */
function changedInPeriod(events: History['events'], now: number, periodSeconds: number, direction: 'up' | 'down'): number {
  let sum = 0;
  for (const e of events) {
    if (e.at <= now - periodSeconds * 1000) continue;
    if (direction === 'up' && e.to > e.from) sum += e.to - e.from;
    if (direction === 'down' && e.to < e.from) sum += e.from - e.to;
  }
  return sum;
}

/**
 * The highest count scale-up may reach now. Undefined when the rules set no limit (an empty
 * policy list). `Disabled` forbids scaling up at all.
 */
export function scaleUpLimit(rules: ReturnType<typeof rulesFor>, events: History['events'], now: number, current: number): number | undefined {
  if (rules.selectPolicy === 'Disabled') return current;
  if (rules.policies.length === 0) return undefined;
  const limits = rules.policies.map((p) => {
    const start = current - changedInPeriod(events, now, p.periodSeconds, 'up');
    return p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
  });
  const limit = rules.selectPolicy === 'Min' ? Math.min(...limits) : Math.max(...limits);
  return Math.max(limit, current);
}

/** The lowest count scale-down may reach now; undefined when the rules set no limit. */
export function scaleDownLimit(rules: ReturnType<typeof rulesFor>, events: History['events'], now: number, current: number): number | undefined {
  if (rules.selectPolicy === 'Disabled') return current;
  if (rules.policies.length === 0) return undefined;
  const limits = rules.policies.map((p) => {
    const start = current + changedInPeriod(events, now, p.periodSeconds, 'down');
    return p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
  });
  // `Max` selects the policy allowing the most change: the lowest floor.
  const limit = rules.selectPolicy === 'Min' ? Math.max(...limits) : Math.min(...limits);
  return Math.min(limit, current);
}

/** Seconds left in the cooldown of a direction, 0 when none is running. */
export function cooldownLeft(events: History['events'], now: number, cooldownSeconds: number, direction: 'up' | 'down'): number {
  if (cooldownSeconds <= 0) return 0;
  let last: number | undefined;
  for (const e of events) {
    if ((direction === 'up' ? e.to > e.from : e.to < e.from) && (last === undefined || e.at > last)) last = e.at;
  }
  if (last === undefined) return 0;
  return Math.max(0, (last + cooldownSeconds * 1000 - now) / 1000);
}
