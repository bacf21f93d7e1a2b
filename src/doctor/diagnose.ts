/**
 * Runs every check over the gathered facts and orders the findings, most severe first (the
 * checks' own order within one severity). Pure: the same facts give the same findings.
 */
import { CHECKS } from './checks/index.js';
import type { Facts, Finding, Severity } from './types.js';

const RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

export function diagnose(facts: Facts): Finding[] {
  const all = CHECKS.flatMap(({ check }) => check(facts));
  // Array.prototype.sort is stable: ties keep the checks' order
  return all.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
}

/** True when a finding is critical: `tide doctor` then exits 1. */
export function hasCritical(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'critical');
}
