/**
 * The `keda` baseline: the HPA of ./hpa.ts fed by a KEDA queue-length trigger.
 * Rules, from KEDA's documentation and pkg/scaling/executor (scale_scaledobjects.go), no code copied:
 *  - the trigger is polled every `pollingInterval` (default 30 s); the HPA (15 s sync) reads the
 *    last polled value as an AverageValue external metric, target = the trigger's queueLength;
 *  - with minReplicaCount 0, KEDA itself scales 0 -> 1 when a poll sees the metric above the
 *    activation threshold (default 0), and back to 0 when no poll has been active for
 *    `cooldownPeriod` (default 300 s); between 1 and max the HPA decides.
 */
import type { Observation, SimPolicy } from '../engine.js';
import type { Scenario } from '../scenario.js';
import { HPA_SYNC_SECONDS, HpaModel } from './hpa.js';
import { backlogPerReplica } from './target.js';

export const KEDA_POLLING_SECONDS = 30;
export const KEDA_COOLDOWN_SECONDS = 300;

export function kedaPolicy(scenario: Scenario, options: { name?: string; target?: number } = {}): SimPolicy {
  const target = options.target ?? backlogPerReplica(scenario);
  const hpa = new HpaModel(target, Math.max(1, scenario.minReplicas), scenario.maxReplicas, Math.max(1, scenario.initialReplicas));
  let polled = 0; // the poll at t = 0 sees an empty queue
  let polledAt = 0;
  let lastActive = 0;
  return {
    name: options.name ?? 'keda',
    intervalSeconds: HPA_SYNC_SECONDS,
    decide(obs: Observation): number {
      if (obs.now - polledAt >= KEDA_POLLING_SECONDS - 1e-9) {
        polled = obs.queueDepth;
        polledAt = obs.now;
        if (polled > 0) lastActive = obs.now;
      }
      if (scenario.minReplicas === 0) {
        if (obs.desired === 0) return polled > 0 ? 1 : 0;
        if (polled === 0 && obs.now - lastActive >= KEDA_COOLDOWN_SECONDS) return 0;
      }
      return hpa.sync(obs.now, obs.desired, polled);
    },
  };
}
