/**
 * The chaos scenarios in short versions (about 20 s each) against real systems: real
 * replicas under the supervisor, the balancer, PostgreSQL. The assertions are the scenarios'
 * invariants (nothing accepted is lost, failures only where the fault explains them), never
 * timings. `npm run test:chaos` runs the longer versions and writes docs/reliability.md.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { renderReport } from '../../chaos/report.js';
import { autoscalerFaults } from '../../chaos/scenarios/autoscaler-faults.js';
import { dbKill } from '../../chaos/scenarios/db-kill.js';
import { dbRestart } from '../../chaos/scenarios/db-restart.js';
import { killAndScale } from '../../chaos/scenarios/kill-and-scale.js';
import { SCENARIOS } from '../../chaos/scenarios/index.js';
import { replicaKill } from '../../chaos/scenarios/replica-kill.js';
import type { Scenario } from '../../chaos/types.js';
import { databaseUrl } from '../helpers/db.js';

const quiet = process.env.CHAOS_VERBOSE ? (line: string) => console.log(line) : () => undefined;

async function runShort(scenario: Scenario, durationMs: number) {
  const result = await scenario.run({ databaseUrl: databaseUrl(), full: false, durationMs, seed: 7, log: quiet });
  assert.deepEqual(result.violations, [], `${scenario.name}: ${JSON.stringify(result.counts)}`);
  return result;
}

test('kill and scale under load: every 202 completes or is dead by its own failures, duplicates only after kills, no HTTP failure', { timeout: 120_000 }, async () => {
  const { counts } = await runShort(killAndScale, 20_000);
  assert.ok(counts.kills! >= 2, 'workers were killed');
  assert.ok(counts.accepted! > 100, 'jobs were accepted');
  assert.equal(counts.completed! + counts.deadOwnFailures!, counts.accepted);
});

test('database restart under load: only 503 + Retry-After while it is down, recovery by itself, nothing lost', { timeout: 120_000 }, async () => {
  const { counts } = await runShort(dbRestart, 18_000);
  assert.ok(counts.acceptedAfterRestart! > 0);
  assert.equal(counts.completed, counts.accepted);
});

test('an api replica killed under load: failures no more than its requests in flight', { timeout: 120_000 }, async () => {
  const { counts } = await runShort(replicaKill, 15_000);
  assert.ok(counts.httpFailures! <= counts.inFlightAtKills! + counts.sentAfterKill!);
  assert.equal(counts.completed, counts.accepted);
});

test('autoscaler faults: bad metrics hold or fall back within bounds; a failing actuator is retried and shown (manual clock, then a live system)', { timeout: 120_000 }, async () => {
  const { counts } = await runShort(autoscalerFaults, 10_000);
  assert.ok(counts.fallbacks! > 0, 'the fallback was reached');
  assert.ok(counts.heldOnBadMetric! > 0, 'bad metrics were held on');
  assert.ok(counts.actuatorRetries! > 0, 'failing scale calls were retried');
  assert.ok(counts.liveFallbacks! > 0 && counts.liveOutOfBounds === 0, 'the live autoscaler fell back and stayed within bounds');
});

test('the report: one row per scenario with its verdict, and the details of what failed', () => {
  const names = SCENARIOS.map((s) => s.name);
  assert.equal(new Set(names).size, names.length, 'scenario names are unique (--only picks by name)');
  const text = renderReport(
    [
      { name: 'a', did: 'did | things', durationMs: 1500, counts: { accepted: 3, ratio: 0.5 }, violations: [], notes: [] },
      { name: 'b', did: 'other', durationMs: 100, counts: {}, violations: ['2 jobs lost'], notes: ['a note'] },
    ],
    { full: false, seed: 7, at: new Date(Date.UTC(2026, 0, 2, 3, 4)) },
  );
  assert.match(text, /^\| a \| did \\\| things \| 2 s \| accepted 3, ratio 0\.50 \| pass \|$/m);
  assert.match(text, /^\| b \| other \| 0 s \|  \| \*\*FAIL\*\* \(1\) \|$/m);
  assert.match(text, /- violation: 2 jobs lost/);
  assert.match(text, /2026-01-02 03:04 UTC/);
});

test('the embedded PostgreSQL SIGKILLed twice under load: tide up restarts it, nothing accepted is lost, no replica left failed', { timeout: 180_000 }, async () => {
  const { counts } = await runShort(dbKill, 20_000);
  assert.equal(counts.kills, 2);
  assert.equal(counts.lost, 0);
  assert.equal(counts.completed, counts.accepted);
  assert.equal(counts.replicasFailed, 0);
  assert.ok(counts.secondsToAcceptingAfterKill2! > 0, 'the time from the kill to accepting again is reported');
});
