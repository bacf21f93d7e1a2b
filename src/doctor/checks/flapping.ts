/**
 * Flapping (the users' top complaint): the autoscaler's applied scales in the journal that
 * reverse direction within flapWindowSeconds of the previous change, counted as the
 * simulator counts them.
 */
import type { Facts, Finding, ScaleEvent } from '../types.js';

export function flapping(facts: Facts): Finding[] {
  const events = facts.scaleEvents;
  if (!events?.length) return [];
  const byService = new Map<string, ScaleEvent[]>();
  for (const e of events) byService.set(e.service, [...(byService.get(e.service) ?? []), e]);
  const findings: Finding[] = [];
  const window = facts.thresholds.flapWindowSeconds * 1000;
  for (const [service, list] of byService) {
    const sorted = [...list].sort((a, b) => a.at - b.at);
    let flaps = 0;
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      const reversed = Math.sign(cur.to - cur.from) !== 0 && Math.sign(cur.to - cur.from) === -Math.sign(prev.to - prev.from);
      if (reversed && cur.at - prev.at < window) flaps++;
    }
    if (flaps < facts.thresholds.flapCount) continue;
    findings.push({
      severity: 'warning',
      code: 'flapping',
      subject: service,
      title: `${service} flaps: ${flaps} reversals within ${facts.thresholds.flapWindowSeconds} s in the last hour`,
      evidence: `${sorted.length} scales: ${sorted.slice(-6).map((e) => `${e.from}->${e.to}`).join(', ')}.`,
      fix: `Hold scale-down longer: \`behavior.scaleDown.stabilizationWindowSeconds\` (300 is the HPA's) or a cooldown; for a target policy widen its tolerance; \`tide decisions --service ${service}\` shows which policy moves it.`,
    });
  }
  return findings;
}
