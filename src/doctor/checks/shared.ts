/** Small helpers the checks share: which service consumes a queue, and how late a queue is. */
import type { Facts, QueueFacts, ServiceFacts } from '../types.js';

/** The worker services that take jobs from this queue (all queues when a worker names none). */
export function consumersOf(facts: Facts, queue: QueueFacts): ServiceFacts[] {
  if (queue.service) return facts.services.filter((s) => s.name === queue.service);
  return facts.services.filter((s) => s.kind === 'worker' && (!s.queues || s.queues.includes(queue.name)));
}

/** The age past which a queue's oldest job is late: its consumer's SLO wait, else the runbooks' 5 minutes. */
export function ageLimit(facts: Facts, queue: QueueFacts): number {
  const waits = consumersOf(facts, queue)
    .map((s) => s.sloWaitSeconds)
    .filter((w): w is number => w !== undefined);
  return waits.length ? Math.min(...waits) : facts.thresholds.oldestAgeSeconds;
}

export function seconds(x: number): string {
  if (x >= 120) return `${(x / 60).toFixed(1)} min`;
  if (x >= 1) return `${x.toFixed(1)} s`;
  return `${Math.round(x * 1000)} ms`;
}

export function percent(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
}

/** The service of a `tide up` replica id (`api.2` -> `api`) or of a source's figure (`api (source x)`). */
export function serviceOfReplica(id: string): string {
  return id.replace(/ \(source [^)]*\)$/, '').replace(/[.-]\d+$/, '');
}
