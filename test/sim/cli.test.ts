// `tide simulate` as a user runs it: a child process on a shipped example scenario.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { runTide } from '../helpers/tide.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const scenario = path.join(root, 'examples', 'scenarios', 'flash-sale.yaml');
const dir = mkdtempSync(path.join(tmpdir(), 'tide-sim-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tide = (args: string[]) => runTide(args, { cwd: root, maxBuffer: 1 << 24 });

const KEYS = ['scenario', 'policy', 'attainment', 'slo_attainment', 'wait_p95', 'wait_p99', 'replica_seconds', 'lower_bound_seconds', 'efficiency', 'scale_events', 'flaps', 'trace_seconds'];

test('tide simulate --json: a table per scenario, and the last stdout line is the JSON array with the exact keys', async () => {
  const chart = path.join(dir, 'flash.svg');
  const { code, stdout, stderr } = await tide(['simulate', scenario, '--policy', 'hpa,fixed-peak', '--json', '--chart', chart]);
  assert.equal(code, 0, stderr);
  const lines = stdout.trimEnd().split('\n');
  const rows = JSON.parse(lines.at(-1)!) as Array<Record<string, unknown>>;
  assert.equal(rows.length, 2);
  for (const row of rows) assert.deepEqual(Object.keys(row), KEYS);
  assert.deepEqual(
    rows.map((r) => [r.scenario, r.policy, r.slo_attainment, r.trace_seconds]),
    [
      ['flash-sale', 'hpa', 0.99, 3600],
      ['flash-sale', 'fixed-peak', 0.99, 3600],
    ],
  );
  assert.ok((rows[1]!.attainment as number) >= 0.99);
  assert.match(stdout, /^policy\s+attain\s+p50\s+p95\s+p99\s+max\s+replica_s\s+lower_bound_s\s+effic\s+events\s+flaps/m);
  assert.match(stderr, /flash-sale fixed-peak: .* elapsed/); // progress goes to stderr
  const svg = readFileSync(chart, 'utf8');
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /arrivals per minute/);
  assert.match(svg, /fixed-peak<\/text>/);
});

test('an unknown policy and a bad scenario exit 2 with a coded error naming where', async () => {
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, readFileSync(scenario, 'utf8').replace('concurrency: 8', 'concurrency: -8'));
  const [unknown, invalid] = await Promise.all([tide(['simulate', scenario, '--policy', 'hpa,vpa']), tide(['simulate', bad, '--json'])]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /error TIDE_SIM_UNKNOWN_POLICY: .*"vpa".*argument --policy/);
  assert.equal(invalid.code, 2);
  const error = JSON.parse(invalid.stderr.trim().split('\n').at(-1)!) as { error: { code: string; where: { file: string; line: number; field: string } } };
  assert.deepEqual(error.error.where, { file: bad, line: 6, field: 'concurrency' });
  assert.equal(error.error.code, 'TIDE_SCENARIO_INVALID');
});

test('a --chart or --out where nothing can be written is a coded error naming the flag, before any run', async () => {
  const nowhere = path.join(dir, 'no-such-dir', 'chart.svg');
  const blocker = path.join(dir, 'a-file');
  writeFileSync(blocker, '');
  const [chart, familyChart, out] = await Promise.all([
    tide(['simulate', scenario, '--policy', 'hpa', '--chart', nowhere]),
    tide(['simulate', '--family', '1', '--chart', nowhere]),
    tide(['simulate', '--family', '1', '--out', path.join(blocker, 'family')]),
  ]);
  for (const r of [chart, familyChart]) {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error TIDE_SIM_WRITE: Cannot write .*chart\.svg: ENOENT\. Name a file in a directory that exists and can be written\. \(at argument --chart\)/m);
    assert.doesNotMatch(r.stdout, /attain|scenarios \(seed/); // nothing ran
  }
  assert.equal(out.code, 2, out.stderr);
  assert.match(out.stderr, /error TIDE_SIM_WRITE: Cannot write .*family: ENOTDIR\..*\(at argument --out\)/);
});

test('tide simulate --family: the scenarios written out, the summary as JSON, and the chart of every scenario', { timeout: 120_000 }, async () => {
  const out = path.join(dir, 'family');
  const chart = path.join(dir, 'family.svg');
  const { code, stdout, stderr } = await tide(['simulate', '--family', '2', '--seed', '9', '--out', out, '--chart', chart, '--json', '--quiet']);
  assert.equal(code, 0, stderr);
  const last = JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as { dir: string; seed: number; summary: { scenarios: number } };
  assert.deepEqual([last.dir, last.seed, last.summary.scenarios], [out, 9, 2]);
  assert.equal(readdirSync(out).filter((f) => f.endsWith('.yaml')).length, 2);
  assert.match(stdout, new RegExp(`chart: ${chart.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const svg = readFileSync(chart, 'utf8');
  assert.equal(svg.match(/<title>f9-\d{3}-[a-z-]+<\/title>/g)?.length, 2);
  assert.match(svg, /tide on 2 generated scenarios \(seed 9\)/);
});
