/**
 * Clients waiting in an API replica's database pool (hash-api: "Connection pool exhaustion",
 * `/db/pool/stats`): every connection of the pool is busy and requests queue for one.
 */
import type { Facts, Finding } from '../types.js';

export function poolWaiting(facts: Facts): Finding[] {
  const findings: Finding[] = [];
  for (const a of facts.apis) {
    if (!a.pool || a.pool.waiting <= 0) continue;
    findings.push({
      severity: 'critical',
      code: 'pool-waiting',
      subject: a.id,
      title: `API replica ${a.id}: requests wait for a database connection`,
      evidence: `/db/pool/stats: total ${a.pool.total}, idle ${a.pool.idle}, waiting ${a.pool.waiting}.`,
      fix: 'Every connection of the pool is busy: look for long queries or transactions holding them (pg_stat_activity, state "active" or "idle in transaction"); add API replicas (each has its own pool) if the database has connections to spare (see db-connections).',
    });
  }
  return findings;
}
