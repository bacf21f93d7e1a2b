/**
 * The Kubernetes HorizontalPodAutoscaler on an external queue-depth metric of type AverageValue,
 * with its defaults. A model of the upstream controller, written from its rules (no code copied):
 *  - kubernetes pkg/controller/podautoscaler/replica_calculator.go, GetExternalPerPodMetricReplicas:
 *    usageRatio = total / (target * currentReplicas); within tolerance 0.1 keep currentReplicas,
 *    else desired = ceil(total / target). currentReplicas is the scale's spec.replicas.
 *  - pkg/controller/podautoscaler/horizontal.go, stabilizeRecommendationWithBehaviors: every
 *    raw recommendation is recorded; the result is held between the min of recommendations in
 *    the scale-up window (default 0 s) and the max in the scale-down window (default 300 s); the
 *    history starts with the current count when the controller first sees the object.
 *  - horizontal.go, convertDesiredReplicasWithBehaviorRate and calculateScaleUpLimitWithScalingRules /
 *    calculateScaleDownLimitWithBehaviors: default scale-up policies Pods 4 and Percent 100 per
 *    15 s (selectPolicy Max), scale-down Percent 100 per 15 s; events inside a period (strictly
 *    after now - period) count against it; then min/max replicas.
 *  - sync period 15 s (kube-controller-manager --horizontal-pod-autoscaler-sync-period).
 * The HPA cannot scale to zero (minReplicas >= 1), so a scenario's min of 0 acts as 1 here; and
 * at 0 replicas it does nothing (upstream disables scaling then): waking from zero is KEDA's job.
 */
import type { Observation, SimPolicy } from '../engine.js';
import type { Scenario } from '../scenario.js';
import { backlogPerReplica } from './target.js';

export const HPA_SYNC_SECONDS = 15;
export const HPA_TOLERANCE = 0.1;
export const HPA_DOWN_STABILIZATION_SECONDS = 300;
interface RatePolicy {
  type: 'Pods' | 'Percent';
  value: number;
  periodSeconds: number;
}
const UP_POLICIES: RatePolicy[] = [
  { type: 'Pods', value: 4, periodSeconds: 15 },
  { type: 'Percent', value: 100, periodSeconds: 15 },
];
const DOWN_POLICIES: RatePolicy[] = [{ type: 'Percent', value: 100, periodSeconds: 15 }];

export interface HpaOptions {
  name?: string;
  /** Per-replica queue depth target (AverageValue); default: the SLO-derived backlog per replica. */
  target?: number;
  /**
   * Seconds between refreshes of the metric value the HPA reads (0: read at every sync). KEDA
   * polls its trigger every 30 s and the HPA reads the last value.
   */
  metricPollSeconds?: number;
}

/** The HPA's state machine, with `metricValue` supplied by the caller (for KEDA's reuse). */
export class HpaModel {
  private readonly recommendations: Array<{ at: number; replicas: number }>;
  private readonly events: Array<{ at: number; change: number }> = [];

  constructor(
    readonly target: number,
    readonly minReplicas: number,
    readonly maxReplicas: number,
    initialReplicas: number,
  ) {
    this.recommendations = [{ at: 0, replicas: initialReplicas }];
  }

  /** One sync: the metric's total value and the current spec.replicas in, the new spec.replicas out. */
  sync(now: number, current: number, metricTotal: number): number {
    if (current === 0) return 0; // the HPA does nothing while a workload is scaled to zero
    // replica_calculator: AverageValue on an external metric
    const usageRatio = metricTotal / (this.target * current);
    const raw = Math.abs(1 - usageRatio) <= HPA_TOLERANCE ? current : Math.ceil(metricTotal / this.target - 1e-9);

    // stabilization: min over the up window (0 s: just this one), max over the down window
    let up = raw;
    let down = raw;
    const downCutoff = now - HPA_DOWN_STABILIZATION_SECONDS;
    let oldIndex = -1;
    for (let i = 0; i < this.recommendations.length; i++) {
      const rec = this.recommendations[i]!;
      if (rec.at > now) up = Math.min(up, rec.replicas); // up window is 0 s: no past sample is inside it
      if (rec.at > downCutoff) down = Math.max(down, rec.replicas);
      else if (oldIndex < 0) oldIndex = i;
    }
    let stabilized = current;
    if (stabilized < up) stabilized = up;
    if (stabilized > down) stabilized = down;
    // record the raw recommendation, reusing a slot that fell out of every window
    if (oldIndex >= 0) this.recommendations[oldIndex] = { at: now, replicas: raw };
    else this.recommendations.push({ at: now, replicas: raw });

    // rate limits, then min/max
    let desired = stabilized;
    if (stabilized > current) {
      let limit = Number.NEGATIVE_INFINITY;
      for (const p of UP_POLICIES) {
        const start = current - this.changeIn(now, p.periodSeconds, 1) + this.changeIn(now, p.periodSeconds, -1);
        const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
        limit = Math.max(limit, proposed);
      }
      if (limit < current) limit = current;
      const allowed = Math.min(this.maxReplicas, limit);
      if (desired > allowed) desired = allowed;
    } else if (stabilized < current) {
      let limit = Number.POSITIVE_INFINITY;
      for (const p of DOWN_POLICIES) {
        const start = current + this.changeIn(now, p.periodSeconds, -1) - this.changeIn(now, p.periodSeconds, 1);
        const proposed = p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
        limit = Math.min(limit, proposed);
      }
      if (limit > current) limit = current;
      const allowed = Math.max(this.minReplicas, limit);
      if (desired < allowed) desired = allowed;
    }
    if (desired !== current) {
      this.events.push({ at: now, change: desired - current });
      // forget events older than the longest period
      while (this.events.length > 0 && this.events[0]!.at <= now - 15) this.events.shift();
    }
    return desired;
  }

  /** Replicas added (direction 1) or removed (-1) by events strictly inside the last `period` seconds. */
  private changeIn(now: number, period: number, direction: 1 | -1): number {
    let sum = 0;
    for (const e of this.events) if (e.at > now - period && Math.sign(e.change) === direction) sum += Math.abs(e.change);
    return sum;
  }
}

/** The `hpa` baseline: queue depth read at every 15 s sync (or from a poller, see metricPollSeconds). */
export function hpaPolicy(scenario: Scenario, options: HpaOptions = {}): SimPolicy {
  const target = options.target ?? backlogPerReplica(scenario);
  const model = new HpaModel(target, Math.max(1, scenario.minReplicas), scenario.maxReplicas, scenario.initialReplicas);
  const poll = options.metricPollSeconds ?? 0;
  let polledAt = 0;
  let polled = 0; // the queue is empty at t = 0
  return {
    name: options.name ?? 'hpa',
    intervalSeconds: HPA_SYNC_SECONDS,
    decide(obs: Observation): number {
      let metric = obs.queueDepth;
      if (poll > 0) {
        if (obs.now - polledAt >= poll - 1e-9) {
          polled = obs.queueDepth;
          polledAt = obs.now;
        }
        metric = polled;
      }
      return model.sync(obs.now, obs.desired, metric);
    },
  };
}
