/**
 * Uneven load distribution across API replicas (habitat: "One API instance gets all
 * traffic"), from the balancer's per-replica request counts over the window, and replicas the
 * balancer took out as unhealthy. The balancer sends each request to the replica with the
 * fewest in flight, so a replica that gets far fewer than the others is usually slow.
 */
import type { Facts, Finding } from '../types.js';
import { percent, seconds, serviceOfReplica } from './shared.js';

export function unevenLoad(facts: Facts): Finding[] {
  const findings: Finding[] = [];
  const upstreams = facts.upstreams ?? [];
  for (const u of upstreams) {
    if (u.healthy || u.draining) continue;
    findings.push({
      severity: 'warning',
      code: 'replica-unhealthy',
      subject: u.id,
      title: `API replica ${u.id} is out of the balancer (failing its health check)`,
      evidence: `${u.id}: healthy false, ${u.failures} failed connections in ${seconds(facts.windowSeconds)}.`,
      fix: `\`tide logs ${serviceOfReplica(u.id)}\` for why; \`tide restart ${serviceOfReplica(u.id)}\` replaces replicas one at a time.`,
    });
  }
  const serving = upstreams.filter((u) => u.healthy && !u.draining);
  const total = serving.reduce((n, u) => n + u.requests, 0);
  if (serving.length < 2 || total < facts.thresholds.unevenMinRequests) return findings;
  const sorted = [...serving].sort((a, b) => b.requests - a.requests);
  const busiest = sorted[0]!;
  const quietest = sorted.at(-1)!;
  const ratio = quietest.requests === 0 ? Infinity : busiest.requests / quietest.requests;
  if (ratio < facts.thresholds.unevenRatio) return findings;
  const p95 = facts.apis.find((a) => a.id === quietest.id)?.p95Seconds;
  const fair = total / serving.length;
  findings.push({
    severity: 'warning',
    code: 'uneven-load',
    subject: quietest.id,
    title: `Uneven load across API replicas: ${busiest.id} took ${percent(busiest.requests / total)} of requests, ${quietest.id} ${percent(quietest.requests / total)}`,
    evidence: `${serving.map((u) => `${u.id} ${u.requests}`).join(', ')} requests in ${seconds(facts.windowSeconds)} (a fair share is ${Math.round(fair)} each)${p95 !== undefined ? `; ${quietest.id} answers with p95 ${seconds(p95)}` : ''}.`,
    fix: `The balancer sends less to a replica with requests piling up in flight: ${quietest.id} is slow or stuck (its CPU, a blocking handler, a slow dependency). \`tide logs ${serviceOfReplica(quietest.id)}\` for it, then \`tide restart ${serviceOfReplica(quietest.id)}\`. Behind another proxy (Caddy, nginx), check it balances over every replica.`,
  });
  return findings;
}
