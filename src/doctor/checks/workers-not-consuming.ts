/**
 * Workers not consuming (habitat: "Queue depth grows despite multiple workers"): jobs wait,
 * none is being processed and none finished during the window, and the queue did not shrink.
 * Critical: whatever arrives now waits forever.
 */
import type { Facts, Finding } from '../types.js';
import { consumersOf, seconds } from './shared.js';

export function workersNotConsuming(facts: Facts): Finding[] {
  const findings: Finding[] = [];
  for (const q of facts.queues) {
    if (q.depth <= 0) continue;
    const idle = (q.active ?? 0) === 0 && (q.completed ?? 0) === 0;
    const notShrinking = q.depthBefore === undefined || q.depth >= q.depthBefore;
    const noConsumers = q.consumers === 0;
    // "idle" needs a window: completions counted, or nothing in progress while depth held
    const watched = q.completed !== undefined || (q.active !== undefined && q.depthBefore !== undefined);
    if (!(noConsumers || (idle && notShrinking && watched))) continue;
    const workers = consumersOf(facts, q);
    const known = workers.filter((s) => s.healthy !== undefined);
    const none = noConsumers || (known.length > 0 && known.every((s) => s.healthy === 0));
    const who = workers.length ? workers.map((s) => `${s.name}: ${s.healthy ?? '?'} healthy of ${s.desired ?? '?'}`).join(', ') : 'no worker service of this project takes it';
    const grew = q.depthBefore !== undefined ? ` (was ${q.depthBefore} ${seconds(facts.windowSeconds)} earlier)` : '';
    findings.push({
      severity: 'critical',
      code: 'workers-not-consuming',
      subject: q.name,
      title: none
        ? `Queue ${q.name}: jobs wait and no worker consumes them`
        : known.length > 0
          ? `Queue ${q.name}: jobs wait while its workers are idle`
          : `Queue ${q.name}: jobs wait and nothing consumes them`,
      evidence: `${q.depth} waiting${grew}, ${q.active ?? 0} in progress, ${q.completed ?? 0} completed in ${seconds(facts.windowSeconds)}${q.consumers !== undefined ? `, ${q.consumers} consumers` : ''}${q.oldestAgeSeconds !== undefined ? `, oldest waiting ${seconds(q.oldestAgeSeconds)}` : ''}; ${who} (from ${q.source}).`,
      fix: none
        ? `Start workers for it: \`tide scale ${workers[0]?.name ?? 'worker'}=N\` (a min of 0 lets the autoscaler leave none: give it an activation threshold or min 1); \`tide logs ${workers[0]?.name ?? 'worker'}\` shows why replicas exit.`
        : `Workers run but take nothing: check that their \`queues:\` include ${q.name}, their connection to the database or broker (\`tide logs ${workers[0]?.name ?? 'worker'}\`), and jobs scheduled in the future (run_at).`,
    });
  }
  return findings;
}
