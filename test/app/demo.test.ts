import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { parseConfig } from '../../src/config/load.js';
import { type DemoSummary, arrivalRate, demoConfig, headline, seeded, splitFigures } from '../../src/app/demo.js';
import { freshSchema } from '../helpers/db.js';

const bin = new URL('../../bin/tide.js', import.meta.url).pathname;

/** Pids of processes whose environment names this schema (the demo's replicas). */
function processesWithSchema(schema: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`TIDE_SCHEMA=${schema}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('the demo pieces: scenario rates, the autoscaled project, reason headlines, seeded arrivals', () => {
  assert.deepEqual([0, 0.5, 0.9].map((f) => arrivalRate('calm-spike', f)), [15, 120, 15]);
  assert.equal(arrivalRate('ramp', 1), 100);
  const config = parseConfig(demoConfig({ stateDir: '/tmp/x', schema: 'tide_demo' }), '<tide demo>');
  assert.deepEqual(config.services.worker?.scale?.policies.map((p) => p.kind), ['slo'], 'the workers keep an SLO');
  assert.deepEqual(config.services.api?.scale?.policies.map((p) => p.kind), ['target'], 'the api aims at a CPU target');
  assert.equal(config.services.api?.sources?.cpu?.kind, 'process');
  assert.equal(config.autoscale.intervalMs, 2000);
  const reasons = [
    { code: 'SloWaitTarget' as const, message: 'wait', policy: 'slo[0]', replicas: 3 },
    { code: 'SloBacklog' as const, message: 'backlog', policy: 'slo[0]', replicas: 5 },
    { code: 'TooManyReplicas' as const, message: 'max', replicas: 4 },
  ];
  assert.deepEqual(headline(reasons, 'TooManyReplicas'), { codes: ['SloBacklog', 'TooManyReplicas'], why: 'backlog' });
  assert.deepEqual(headline([{ code: 'DesiredWithinRange', message: 'hold' }], null), { codes: ['DesiredWithinRange'], why: 'hold' });
  assert.deepEqual(splitFigures('slo[0]: 4 replicas drain the backlog within the horizon (arrivals 16/s fast (x); backlog 72).'), [
    'slo[0]: 4 replicas drain the backlog within the horizon',
    '(arrivals 16/s fast (x); backlog 72)',
  ]);
  assert.deepEqual(splitFigures('No change.'), ['No change.', undefined]);
  const a = seeded(7);
  const b = seeded(7);
  assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
});

test('tide demo --minutes 0.5 (DATABASE_URL, fresh schema) completes with lost = 0 and leaves no replica behind', { timeout: 240_000 }, async () => {
  const db = await freshSchema('demo');
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-demo-'));
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, 'demo', '--minutes', '0.5', '--json', '--interval', '2', '--schema', db.schema, '--state-dir', stateDir],
        { env: { ...process.env, DATABASE_URL: db.url }, timeout: 200_000 },
        (err, out, errOut) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut }),
      );
    });
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as DemoSummary;
    assert.equal(summary.lost, 0);
    // the autoscaler, not a script, scaled the workers out once the spike began
    const outs = summary.autoscaler.decisions.filter((d) => d.service === 'worker' && d.direction === 'up' && d.applied);
    assert.ok(outs.length >= 1, `worker scale-outs by the autoscaler: ${JSON.stringify(summary.autoscaler)}`);
    assert.ok(outs.some((d) => d.atSeconds >= summary.spike!.fromSeconds), `a scale-out during the spike: ${JSON.stringify(outs)} vs ${JSON.stringify(summary.spike)}`);
    assert.ok(summary.replicas.worker!.max > 1, JSON.stringify(summary.replicas));
    assert.match(stderr, /autoscaler: worker 1 -> \d+ \[Slo/, 'each decision is narrated with its reason codes');
    assert.ok(summary.accepted > 50, `accepted ${summary.accepted}`);
    assert.equal(summary.completed, summary.accepted);
    assert.equal(summary.rejected, 0, stderr);
    assert.match(stderr, /depth\s+\d+\s+oldest [\d.]+s\s+in \d+\/s\s+done \d+\/s\s+api p95/, 'progress lines on stderr with --json');
    assert.match(stderr, /lost 0/);
    assert.deepEqual(processesWithSchema(db.schema), [], 'no replica outlives the demo');
  } finally {
    for (const pid of processesWithSchema(db.schema)) process.kill(pid, 'SIGKILL');
    await rm(stateDir, { recursive: true, force: true });
    await db.drop();
  }
});
