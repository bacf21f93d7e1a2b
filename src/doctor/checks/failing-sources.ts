/**
 * Metric sources (and endpoints) that failed to read. A failing source matters twice: the
 * doctor could not look there, and the autoscaler decides without it (never scaling down on
 * what is left, then falling back), so a failing one silently freezes a service.
 */
import type { Facts, Finding } from '../types.js';

export function failingSources(facts: Facts): Finding[] {
  return facts.sourceFailures.map((f) => {
    const isSource = f.source.startsWith('source ');
    return {
      severity: 'warning' as const,
      code: 'source-failing',
      subject: f.source,
      title: `${isSource ? 'Metric ' : ''}${f.source}${f.service ? ` (${f.service})` : ''} cannot be read`,
      evidence: `${f.code}: ${f.message}`,
      fix: isSource
        ? 'Check the address and credentials in its config (docs/sources.md) and that the backend answers from here; while it fails the autoscaler never scales this service down, and after fallback.failureThreshold rounds runs fallback.replicas.'
        : 'Check that it answers from where tide doctor runs (address, port, credentials); what it would have shown was not checked.',
    };
  });
}
