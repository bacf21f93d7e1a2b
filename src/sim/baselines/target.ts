import type { Scenario } from '../scenario.js';

/**
 * The per-replica backlog target every queue baseline is given, the way its users are told to
 * set it: acceptable latency over processing time (AWS's queue-worker guidance), times the
 * slots per replica: `concurrency * slo.wait_seconds / mean service time`.
 */
export function backlogPerReplica(scenario: Scenario): number {
  return (scenario.concurrency * scenario.slo.waitSeconds) / scenario.serviceTime.meanSeconds;
}
