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
 *
 * `--family <count> [--seeds 1,2,3] [--cache file] [--chart file.svg] [<scenario dir>]`: the
 * generated family instead (see familyBench); `--chart` there draws every scenario's cost and
 * attainment (src/sim/family-chart.ts).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { fixedPolicy } from '../src/sim/baselines/fixed-peak.js';
import { chartBucketSeconds, renderChart } from '../src/sim/chart.js';
import { simulate } from '../src/sim/engine.js';
import { familyMember } from '../src/sim/family.js';
import { renderFamilyChart } from '../src/sim/family-chart.js';
import { type BaselineCache, runMember } from '../src/sim/family-run.js';
import { formatTable, ratioLine, scenarioHeading } from '../src/sim/report.js';
import { type JsonRow, POLICY_NAMES, type PolicyRun, jsonRow, parsePolicies, prepareScenario, runPolicy } from '../src/sim/run.js';
import { type ScenarioRuns, type Summary, judge, summarize } from '../src/sim/score.js';

const { values, positionals } = parseArgs({
  options: {
    json: { type: 'boolean' },
    policy: { type: 'string' },
    chart: { type: 'string' },
    seed: { type: 'string' },
    family: { type: 'string' },
    seeds: { type: 'string' },
    cache: { type: 'string' },
  },
  allowPositionals: true,
});
const dir = positionals[0];
if (values.family !== undefined) {
  await familyBench(Number(values.family), (values.seeds ?? '1,2,3').split(',').map(Number), dir, values.chart);
  process.exit(0);
}
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

/**
 * The family benchmark: `count` generated scenarios per seed through tide and the untuned
 * baselines plus fixed-peak, judged per seed and overall (src/sim/score.ts); then, with a
 * directory, its public scenarios through every baseline, tuned ones included. `--cache` keeps
 * the baselines' figures between runs (they do not depend on tide).
 */
async function familyBench(count: number, seeds: number[], publicDir: string | undefined, chartFile: string | undefined): Promise<void> {
  const cache: BaselineCache = values.cache && existsSync(values.cache) ? (JSON.parse(readFileSync(values.cache, 'utf8')) as BaselineCache) : {};
  const all: ScenarioRuns[] = [];
  const slos = new Map<string, number>();
  const perSeed: Record<string, Summary> = {};
  const t0 = performance.now();
  for (const seed of seeds) {
    const runs: ScenarioRuns[] = [];
    for (let i = 0; i < count; i++) {
      const m = familyMember(seed, i);
      slos.set(m.scenario.name, m.scenario.slo.attainment);
      const r = await runMember(m, seed, cache);
      runs.push(r);
      const v = judge(r);
      console.error(
        `  ${r.name}: tide ${(v.attainment * 100).toFixed(2)}% (slo ${m.scenario.slo.attainment * 100}%${v.attainmentFail ? (v.adaptiveMeets ? ', FAIL' : ', FAIL (only fixed-peak meets it)') : ''}), cost ${v.costRatio?.toFixed(2) ?? '-'}x ${v.cheapest ?? ''}, ${v.flapsPerHour.toFixed(1)} flaps/h; ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
    }
    all.push(...runs);
    perSeed[String(seed)] = summarize(runs, slos);
    if (values.cache) writeFileSync(values.cache, JSON.stringify(cache));
  }
  const overall = summarize(all, slos);
  console.log('\nfamily (tide against hpa, keda, step-table, cron-script, target-cpu and fixed-peak)');
  for (const [seed, s] of Object.entries(perSeed)) console.log(`  seed ${seed}: ${summaryLine(s)}`);
  console.log(`  overall: ${summaryLine(overall)}`);
  for (const w of overall.worst) console.log(`  worst: ${JSON.stringify(w)}`);
  if (chartFile) {
    writeFileSync(chartFile, renderFamilyChart(`tide on ${all.length} generated scenarios (seeds ${seeds.join(', ')})`, all, overall));
    console.log(`  chart: ${chartFile}`);
  }
  let publicOut: unknown;
  if (publicDir) {
    const files = readdirSync(publicDir).filter((f) => f.endsWith('.yaml')).sort();
    const rowsOut: Array<{ scenario: string; attainment: number; slo: number; cost_ratio: number | null; cheapest: string | null }> = [];
    for (const f of files) {
      const loaded = prepareScenario(path.join(publicDir, f), 1);
      const byPolicy: PolicyRun[] = [];
      for (const name of POLICY_NAMES) byPolicy.push(await runPolicy(name, loaded, { skipPercentiles: true }));
      const figures = Object.fromEntries(byPolicy.map((r) => [r.result.policy, { attainment: r.result.attainment, replicaSeconds: r.result.replicaSeconds, flaps: r.result.flaps }]));
      // every baseline, tuned ones included, for the public scenarios
      const tide = figures.tide!;
      let cheapest: string | undefined;
      for (const [name, fig] of Object.entries(figures)) {
        if (name === 'tide' || fig.attainment < loaded.scenario.slo.attainment) continue;
        if (cheapest === undefined || fig.replicaSeconds < figures[cheapest]!.replicaSeconds) cheapest = name;
      }
      const ratio = cheapest === undefined ? null : round(tide.replicaSeconds / figures[cheapest]!.replicaSeconds);
      rowsOut.push({ scenario: loaded.scenario.name, attainment: round(tide.attainment), slo: loaded.scenario.slo.attainment, cost_ratio: ratio, cheapest: cheapest ?? null });
      console.log(`  public ${loaded.scenario.name}: tide ${(tide.attainment * 100).toFixed(2)}% (slo ${loaded.scenario.slo.attainment * 100}%), cost ${ratio ?? '-'}x ${cheapest ?? ''}`);
    }
    const meeting = rowsOut.filter((r) => r.attainment >= r.slo && r.cost_ratio !== null);
    publicOut = {
      scenarios: rowsOut,
      meeting: meeting.length,
      le_1: meeting.filter((r) => r.cost_ratio! <= 1).length,
      le_0_8: meeting.filter((r) => r.cost_ratio! <= 0.8).length,
    };
  }
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const seedsMet = Object.values(perSeed).every((s) => s.targets_met);
  const line = { family: { per_seed: perSeed, overall }, public: publicOut ?? null, targets_met: seedsMet && overall.targets_met };
  if (values.json) console.log(JSON.stringify(line));
}

function summaryLine(s: Summary): string {
  return `${s.scenarios} scenarios; SLO met ${s.slo_met_where_baseline_meets}/${s.baseline_meets} where a baseline meets it (${s.slo_met_where_adaptive_meets}/${s.adaptive_meets} an adaptive one), below the best adaptive ${s.below_best_adaptive}; cost <= 1.0x on ${(s.cost_share_le_1 * 100).toFixed(0)}%, median ${s.median_cost_ratio}x; <= 2 flaps/h on ${(s.flap_share_le_2 * 100).toFixed(0)}% (max ${s.max_flaps_per_hour})${s.targets_met ? '; targets met' : ''}`;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
