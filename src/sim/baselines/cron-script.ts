/**
 * The `cron-script` baseline: the runbook's cron job. Every 300 s,
 * desired = floor(queue depth / 100) + 1, clamped to the scenario's bounds (shared scenarios README).
 */
import type { Observation, SimPolicy } from '../engine.js';
import type { Scenario } from '../scenario.js';

export const CRON_SCRIPT = { intervalSeconds: 300, perReplica: 100 } as const;

export function cronScriptPolicy(scenario: Scenario): SimPolicy {
  return {
    name: 'cron-script',
    intervalSeconds: CRON_SCRIPT.intervalSeconds,
    decide(obs: Observation): number {
      const want = Math.floor(obs.queueDepth / CRON_SCRIPT.perReplica) + 1;
      return Math.min(scenario.maxReplicas, Math.max(scenario.minReplicas, want));
    },
  };
}
