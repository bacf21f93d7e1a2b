/**
 * Metric sources (and endpoints) that failed to read: the autoscaler decides without them
 * (never scaling down on what is left, then falling back), so a failing one silently freezes
 * a service.
 */
import type { Facts, Finding } from '../types.js';

export function failingSources(facts: Facts): Finding[] {
  return facts.sourceFailures.map((f) => ({
    severity: 'warning' as const,
    code: 'source-failing',
    subject: f.source,
    title: `Metric source ${f.source}${f.service ? ` (${f.service})` : ''} cannot be read`,
    evidence: `${f.code}: ${f.message}`,
    fix: 'Check the address and credentials in its config (docs/sources.md) and that the backend answers from here; while it fails the autoscaler never scales this service down, and after fallback.failureThreshold rounds runs fallback.replicas.',
  }));
}
