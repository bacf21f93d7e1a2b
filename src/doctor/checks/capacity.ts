/**
 * A service pinned at its max while it is still short (a capacity ceiling: the autoscaler
 * cannot help), or sitting at its min while its SLO is missed (the autoscaler is not acting:
 * a failing source, a manual pause, dry run).
 */
import type { Facts, Finding, ServiceFacts } from '../types.js';
import { ageLimit, consumersOf, seconds } from './shared.js';

/** Why the service is short now, or undefined when it is not. */
function shortfall(facts: Facts, service: ServiceFacts): string | undefined {
  const t = facts.thresholds;
  if (service.kind === 'worker' || service.kind === 'command') {
    for (const q of facts.queues) {
      if (!consumersOf(facts, q).some((s) => s.name === service.name)) continue;
      const limit = ageLimit(facts, q);
      if (q.oldestAgeSeconds !== undefined && q.oldestAgeSeconds > limit) return `queue ${q.name}'s oldest job has waited ${seconds(q.oldestAgeSeconds)} (over ${seconds(limit)})`;
      if (q.depth > t.queueDepthWarning) return `queue ${q.name} holds ${q.depth} jobs`;
    }
  }
  if (service.kind === 'api') {
    const busy = facts.apis.filter((a) => a.p95Seconds !== undefined && (a.requests === undefined || a.requests > 0));
    const slow = busy.filter((a) => a.p95Seconds !== undefined && a.p95Seconds > t.apiP95Seconds);
    if (slow.length > 0 && slow.length === busy.length) {
      return `every API replica answers with p95 over ${seconds(t.apiP95Seconds)}`;
    }
  }
  return undefined;
}

export function capacity(facts: Facts): Finding[] {
  const findings: Finding[] = [];
  for (const s of facts.services) {
    // counts are known only from a running system; bounds alone say nothing
    if (s.max <= s.min || s.desired === undefined) continue;
    const why = shortfall(facts, s);
    if (!why) continue;
    if (s.desired >= s.max) {
      findings.push({
        severity: 'critical',
        code: 'at-max',
        subject: s.name,
        title: `${s.name} is pinned at its max (${s.max}) and still short`,
        evidence: `${s.desired} of max ${s.max} replicas; ${why}.`,
        fix: `A capacity ceiling: raise services.${s.name}.max (check db-connections first: each replica holds connections), or make each replica do more (concurrency, faster handlers); \`tide plan\` measures what one replica sustains.`,
      });
    } else if (s.desired <= s.min) {
      findings.push({
        severity: 'warning',
        code: 'at-min',
        subject: s.name,
        title: `${s.name} stays at its min (${s.min}) while it misses its target`,
        evidence: `${s.desired} replicas (min ${s.min}); ${why}.`,
        fix: `The autoscaler is not scaling it up: \`tide decisions --service ${s.name}\` shows why (a failing source, a manual scale pausing it, dry_run, a schedule window capping max).`,
      });
    }
  }
  return findings;
}
