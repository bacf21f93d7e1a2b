/**
 * The `step-table` baseline: the runbook's threshold table, run as AWS step scaling runs it.
 * Rules (the shared scenarios README; cooldown semantics from the Application Auto Scaling
 * docs, "Step scaling policies" and "Cooldown period"):
 *  - queue depth > 1000: +5 replicas; depth < 100: -2 replicas; evaluated every 60 s (a CloudWatch
 *    alarm on a one-minute metric);
 *  - after a scale-out no other scale-out for 60 s; after a scale-in no other scale-in for 120 s;
 *    each cooldown holds only its own direction;
 *  - clamped to the scenario's bounds.
 */
import type { Observation, SimPolicy } from '../engine.js';
import type { Scenario } from '../scenario.js';

export const STEP_TABLE = { above: 1000, add: 5, below: 100, remove: 2, outCooldown: 60, inCooldown: 120, interval: 60 } as const;

export function stepTablePolicy(scenario: Scenario): SimPolicy {
  let lastOut = Number.NEGATIVE_INFINITY;
  let lastIn = Number.NEGATIVE_INFINITY;
  return {
    name: 'step-table',
    intervalSeconds: STEP_TABLE.interval,
    decide(obs: Observation): number {
      const current = obs.desired;
      if (obs.queueDepth > STEP_TABLE.above && obs.now - lastOut >= STEP_TABLE.outCooldown) {
        const next = Math.min(scenario.maxReplicas, current + STEP_TABLE.add);
        if (next !== current) lastOut = obs.now;
        return next;
      }
      if (obs.queueDepth < STEP_TABLE.below && obs.now - lastIn >= STEP_TABLE.inCooldown) {
        const next = Math.max(scenario.minReplicas, current - STEP_TABLE.remove);
        if (next !== current) lastIn = obs.now;
        return next;
      }
      return current;
    },
  };
}
