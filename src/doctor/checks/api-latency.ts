/**
 * API latency and errors over the runbooks' lines (habitat: "Response time p95 > 500ms",
 * "Error rate > 5%"; open-forge: "> 2s" critical), per replica, over the window.
 */
import type { Facts, Finding } from '../types.js';
import { percent, seconds, serviceOfReplica } from './shared.js';

export function apiLatency(facts: Facts): Finding[] {
  const t = facts.thresholds;
  const findings: Finding[] = [];
  for (const a of facts.apis) {
    // a source's figure has no request count: trust it; a replica's needs requests in the window
    const traffic = a.requests === undefined || a.requests > 0;
    if (a.p95Seconds !== undefined && traffic && a.p95Seconds > t.apiP95Seconds) {
      const critical = a.p95Seconds > t.apiP95CriticalSeconds;
      findings.push({
        severity: critical ? 'critical' : 'warning',
        code: 'api-latency',
        subject: a.id,
        title: `API replica ${a.id}: p95 latency ${seconds(a.p95Seconds)}`,
        evidence: `p95 ${seconds(a.p95Seconds)}${a.requests === undefined ? '' : ` over ${a.requests} requests in ${seconds(facts.windowSeconds)}`}, over ${seconds(critical ? t.apiP95CriticalSeconds : t.apiP95Seconds)}.`,
        fix: `If every replica is slow: more replicas (\`tide scale ${serviceOfReplica(a.id)}=N\`, or a target policy on http_p95_seconds or CPU). If one is: see uneven-load, restart it. If the database is the wait: see db-connections and pool-waiting.`,
      });
    }
    const rate = a.requests && a.errors !== undefined ? a.errors / a.requests : a.requests === undefined ? a.errorRate : undefined;
    if (rate !== undefined && rate > t.apiErrorRate) {
      findings.push({
        severity: 'warning',
        code: 'api-errors',
        subject: a.id,
        title: `API replica ${a.id}: ${percent(rate)} of requests fail (5xx)`,
        evidence: `${a.requests === undefined ? `error rate ${percent(rate)}` : `${a.errors} of ${a.requests} answers were 5xx in ${seconds(facts.windowSeconds)}`}, over ${percent(t.apiErrorRate)}.`,
        fix: `503s with TIDE_DB_UNAVAILABLE: the database; 502/504 from the balancer: replicas crashing or too slow (\`tide logs ${serviceOfReplica(a.id)}\`); otherwise the handler's own errors.`,
      });
    }
  }
  return findings;
}
