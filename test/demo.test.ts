import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { arrivalRate, percentile, scriptedWorkers, seeded } from '../src/supervisor/demo.js';
import { freshSchema } from './helpers/db.js';

const bin = new URL('../bin/tide.js', import.meta.url).pathname;

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

test('the demo pieces: scenario rates, the scripted worker rule, seeded arrivals, percentiles', () => {
  assert.deepEqual([0, 0.5, 0.9].map((f) => arrivalRate('calm-spike', f)), [15, 100, 15]);
  assert.equal(arrivalRate('ramp', 1), 100);
  assert.equal(scriptedWorkers(15, 0, 8), 1);
  assert.equal(scriptedWorkers(100, 0, 8), 3, '100 jobs/s of 200 ms at concurrency 10 and 75% utilisation');
  assert.equal(scriptedWorkers(100, 1000, 8), 7, 'a backlog of 1000 adds capacity to clear it in 5 s');
  assert.equal(scriptedWorkers(1000, 0, 8), 8);
  const a = seeded(7);
  const b = seeded(7);
  assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
  assert.equal(percentile([5, 1, 4, 2, 3], 95), 5);
  assert.equal(percentile([], 95), null);
});

test('tide demo --minutes 0.25 (DATABASE_URL, fresh schema) completes with lost = 0 and leaves no replica behind', { timeout: 240_000 }, async () => {
  const db = await freshSchema('demo');
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-demo-'));
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, 'demo', '--minutes', '0.25', '--json', '--interval', '2', '--schema', db.schema, '--state-dir', stateDir],
        { env: { ...process.env, DATABASE_URL: db.url }, timeout: 200_000 },
        (err, out, errOut) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: out, stderr: errOut }),
      );
    });
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { accepted: number; completed: number; lost: number; rejected: number; replicas: Record<string, { max: number }> };
    assert.equal(summary.lost, 0);
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
