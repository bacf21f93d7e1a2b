/**
 * Requests the balancer itself refused during the window (hash-api: "Rate limiting triggering
 * frequently" is a load balancer bottleneck): 429s from `balancer.rate_limit`, and 503s for
 * want of a healthy replica, which is an outage.
 */
import type { Facts, Finding } from '../types.js';
import { seconds } from './shared.js';

export function balancerRefusals(facts: Facts): Finding[] {
  const b = facts.balancer;
  if (!b) return [];
  const findings: Finding[] = [];
  if (b.noUpstream > 0) {
    findings.push({
      severity: 'critical',
      code: 'no-upstream',
      subject: 'balancer',
      title: `The balancer had no healthy API replica for ${b.noUpstream} requests`,
      evidence: `${b.noUpstream} answered 503 TIDE_LB_NO_UPSTREAM in ${seconds(facts.windowSeconds)}.`,
      fix: 'Every API replica is down, draining or failing its health check: `tide ps` and `tide logs` for the api service; check the database (/health is 503 while it is down).',
    });
  }
  if (b.rateLimited > 0) {
    findings.push({
      severity: 'warning',
      code: 'rate-limited',
      subject: 'balancer',
      title: `The balancer's rate limit refused ${b.rateLimited} requests`,
      evidence: `${b.rateLimited} answered 429 TIDE_LB_RATE_LIMITED in ${seconds(facts.windowSeconds)}.`,
      fix: 'A client is over `balancer.rate_limit` (per client address): if it is a real client, raise requests_per_second or burst; if it is a proxy in front (every client behind it counts as one), list it in `balancer.trusted_proxies`; if it is abuse, the limit is doing its job.',
    });
  }
  return findings;
}
