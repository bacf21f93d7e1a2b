/**
 * The `target-cpu` baseline: AWS target tracking on utilisation (busy slots over all slots) at
 * 70%, 60 s scale-out and 120 s scale-in cooldowns. Rules, from the Application Auto Scaling
 * docs ("Target tracking scaling policies", "Cooldown period"), no code copied:
 *  - the metric is the one-minute average (CloudWatch's period), evaluated every 60 s;
 *  - desired = ceil(current capacity * metric / target), current capacity being the desired
 *    count (capacity still starting counts, as the docs say for the scale-out cooldown);
 *  - a scale-out waits 60 s after the last scale-out, a scale-in 120 s after the last scale-in;
 *    each cooldown holds only its own direction.
 * Utilisation cannot see a queue with no replica ready, so from zero replicas a waiting job
 * asks for one (how an operator would wire scale-from-zero next to it).
 */
import type { Observation, SimPolicy } from '../engine.js';
import type { Scenario } from '../scenario.js';

export const TARGET_CPU = { target: 0.7, intervalSeconds: 60, outCooldown: 60, inCooldown: 120 } as const;

export function targetCpuPolicy(scenario: Scenario): SimPolicy {
  let lastOut = Number.NEGATIVE_INFINITY;
  let lastIn = Number.NEGATIVE_INFINITY;
  let prevBusy = 0;
  let prevSlots = 0;
  return {
    name: 'target-cpu',
    intervalSeconds: TARGET_CPU.intervalSeconds,
    decide(obs: Observation): number {
      const current = obs.desired;
      const slots = obs.slotSecondsTotal - prevSlots;
      const busy = obs.busySlotSecondsTotal - prevBusy;
      prevSlots = obs.slotSecondsTotal;
      prevBusy = obs.busySlotSecondsTotal;
      if (slots <= 0) return current === 0 && obs.queueDepth > 0 ? 1 : current;
      const want = Math.min(scenario.maxReplicas, Math.max(scenario.minReplicas, Math.ceil(current * (busy / slots) / TARGET_CPU.target - 1e-9)));
      if (want > current && obs.now - lastOut >= TARGET_CPU.outCooldown) {
        lastOut = obs.now;
        return want;
      }
      if (want < current && obs.now - lastIn >= TARGET_CPU.inCooldown) {
        lastIn = obs.now;
        return want;
      }
      return current;
    },
  };
}
