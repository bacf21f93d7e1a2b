/**
 * Policies benchmark: `npm run bench:policies -- [--json] [--policy a,b] [--chart spike] <scenario dir>`
 *
 * Runs every scenario (*.yaml) of the directory through tide and the baselines, prints the table
 * per scenario and one ratio line per scenario (tide's replica-seconds over the cheapest
 * baseline meeting the SLO; tide's attainment next to hpa's and keda's), then the simulator's
 * speed: seconds per policy, and as a ratio to an anchor run in the same process (the same jobs
 * through a constant fleet of max_replicas: the engine with no decisions to make).
 * Writes the chart of one scenario to bench/charts/<name>.svg. With --json the last stdout line
 * is one JSON object: { rows, ratios, speed }.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { fixedPolicy } from '../src/sim/baselines/fixed-peak.js';
import { chartBucketSeconds, renderChart } from '../src/sim/chart.js';
import { simulate } from '../src/sim/engine.js';
import { formatTable, ratioLine, scenarioHeading } from '../src/sim/report.js';
import { type JsonRow, type PolicyRun, jsonRow, parsePolicies, prepareScenario, runPolicy } from '../src/sim/run.js';

const { values, positionals } = parseArgs({
  options: { json: { type: 'boolean' }, policy: { type: 'string' }, chart: { type: 'string' }, seed: { type: 'string' } },
  allowPositionals: true,
});
const dir = positionals[0];
if (!dir) {
  console.error('usage: npm run bench:policies -- [--json] [--policy a,b] [--chart <scenario>] <scenario dir>');
  process.exit(2);
}
const policies = parsePolicies(values.policy);
const chartName = values.chart ?? 'spike';
const seed = Number(values.seed ?? 1);
const chartsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'charts');

const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort()
  .map((f) => path.join(dir, f));

const rows: JsonRow[] = [];
const ratios: string[] = [];
const speed: Array<{ scenario: string; jobs: number; policy: string; seconds: number; runs: number; per_run: number; vs_anchor: number }> = [];
const started = performance.now();

for (const file of files) {
  const t0 = performance.now();
  const loaded = prepareScenario(file, seed);
  const { scenario, jobs } = loaded;
  const drawSeconds = (performance.now() - t0) / 1000;
  const a0 = performance.now();
  simulate(scenario, jobs, fixedPolicy(scenario.maxReplicas, 'anchor'), { initialReplicas: scenario.maxReplicas });
  const anchor = (performance.now() - a0) / 1000;
  const bucket = scenario.name === chartName ? chartBucketSeconds(jobs.traceSeconds, scenario.stepSeconds) : undefined;
  const runs: PolicyRun[] = [];
  for (const name of policies) {
    const run = await runPolicy(name, loaded, bucket === undefined ? {} : { seriesBucketSeconds: bucket });
    runs.push(run);
    rows.push(jsonRow(scenario, run));
    const perRun = run.seconds / run.runs;
    speed.push({ scenario: scenario.name, jobs: jobs.arrivals.length, policy: name, seconds: round(run.seconds), runs: run.runs, per_run: round(perRun), vs_anchor: round(perRun / anchor) });
    console.error(`  ${scenario.name} ${name}: ${run.seconds.toFixed(2)} s, ${run.runs} run(s); ${((performance.now() - started) / 1000).toFixed(0)} s elapsed`);
  }
  console.log(`\n${scenarioHeading(scenario, jobs.arrivals.length, jobs.traceSeconds)}`);
  console.log(formatTable(scenario, runs));
  const ratio = ratioLine(scenario, runs);
  ratios.push(ratio);
  console.log(ratio);
  console.log(`speed: draw ${drawSeconds.toFixed(2)} s, anchor run (constant ${scenario.maxReplicas} replicas) ${anchor.toFixed(2)} s`);
  if (bucket !== undefined) {
    mkdirSync(chartsDir, { recursive: true });
    const out = path.join(chartsDir, `${scenario.name}.svg`);
    writeFileSync(out, renderChart(scenario, runs));
    console.log(`chart: ${path.relative(process.cwd(), out)}`);
  }
}

console.log('\nspeed per policy (seconds per simulation; ratio to the anchor run of the same scenario)');
for (const s of speed.filter((x) => x.jobs >= 1e6)) {
  console.log(`  ${s.scenario} (${s.jobs.toLocaleString('en-US')} jobs) ${s.policy}: ${s.per_run.toFixed(2)} s/run x${s.vs_anchor.toFixed(2)} of anchor; ${s.runs} run(s), ${s.seconds.toFixed(1)} s`);
}
console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
if (values.json) console.log(JSON.stringify({ rows, ratios, speed }));

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
