/** `tide doctor`'s output: findings most severe first, for a terminal or as JSON. */
import type { Facts, Finding } from './types.js';

const MARK = { critical: 'CRITICAL', warning: 'WARNING ', info: 'INFO    ' } as const;

/** The report for a terminal: one block per finding, then what was not checked. */
export function formatFindings(findings: readonly Finding[], facts: Facts): string {
  const lines: string[] = [];
  const looked = [
    `${facts.services.length} services`,
    facts.upstreams ? `${facts.upstreams.length} balancer upstreams` : undefined,
    `${facts.apis.length} API replicas`,
    `${facts.queues.length} queues`,
    facts.database ? 'the database' : undefined,
    facts.scaleEvents ? 'the journal' : undefined,
  ].filter(Boolean);
  lines.push(`tide doctor: looked at ${looked.join(', ')} over ${facts.windowSeconds} s`);
  const db = facts.database;
  if (db?.budget) {
    const now = db.maxConnections > 0 ? `; now ${db.connections} of max_connections ${db.maxConnections} in use` : '';
    lines.push(`connection budget: ${db.budget.message}${now}`);
  }
  if (findings.length === 0) lines.push('', 'no problems found');
  for (const f of findings) {
    lines.push('', `${MARK[f.severity]} ${f.code}: ${f.title}`, `  evidence: ${f.evidence}`, `  fix:      ${f.fix}`);
  }
  if (facts.notes.length) lines.push('', 'not checked:', ...facts.notes.map((n) => `  - ${n}`));
  const critical = findings.filter((f) => f.severity === 'critical').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  lines.push('', `${critical} critical, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  return `${lines.join('\n')}\n`;
}

/** The JSON document of `tide doctor --json`. */
export function findingsJson(findings: readonly Finding[], facts: Facts): { findings: readonly Finding[]; critical: boolean; notes: string[]; facts: Facts } {
  return { findings, critical: findings.some((f) => f.severity === 'critical'), notes: facts.notes, facts };
}
