/**
 * Queue depth and the oldest job's age over the runbooks' lines: depth > 1000 (habitat,
 * monitor-service, open-forge; > 5000 critical in open-forge), and the oldest waiting job older
 * than its consumer's SLO wait (or habitat's "processing lag > 5 minutes").
 */
import type { Facts, Finding } from '../types.js';
import { ageLimit, consumersOf, seconds } from './shared.js';

export function queueBacklog(facts: Facts): Finding[] {
  const t = facts.thresholds;
  const findings: Finding[] = [];
  for (const q of facts.queues) {
    const workers = consumersOf(facts, q).map((s) => s.name);
    const scaleHint = workers.length ? `\`tide scale ${workers[0]}=N\`, or let the autoscaler (check \`tide decisions --service ${workers[0]}\`)` : 'add consumers';
    if (q.depth > t.queueDepthWarning) {
      const critical = q.depth > t.queueDepthCritical;
      findings.push({
        severity: critical ? 'critical' : 'warning',
        code: 'queue-backlog',
        subject: q.name,
        title: `Queue ${q.name}: ${q.depth} jobs waiting`,
        evidence: `${q.depth} waiting, over ${critical ? t.queueDepthCritical : t.queueDepthWarning}${q.depthBefore !== undefined ? ` (${q.depth >= q.depthBefore ? '+' : ''}${q.depth - q.depthBefore} in ${seconds(facts.windowSeconds)})` : ''} (from ${q.source}).`,
        fix: `More consumers: ${scaleHint}. If they are at their max, see at-max.`,
      });
    }
    const limit = ageLimit(facts, q);
    if (q.oldestAgeSeconds !== undefined && q.oldestAgeSeconds > limit) {
      findings.push({
        severity: 'warning',
        code: 'queue-age',
        subject: q.name,
        title: `Queue ${q.name}: the oldest job has waited ${seconds(q.oldestAgeSeconds)}`,
        evidence: `oldest waiting job ${seconds(q.oldestAgeSeconds)}, over ${seconds(limit)}${limit !== t.oldestAgeSeconds ? ' (the SLO wait)' : ''}; ${q.depth} waiting (from ${q.source}).`,
        fix: `Jobs start late: ${scaleHint}; an SLO policy (\`kind: slo, waitSeconds: ${Math.round(limit)}\`) scales on this age directly.`,
      });
    }
  }
  return findings;
}
