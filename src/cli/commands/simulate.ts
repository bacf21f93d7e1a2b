/**
 * `tide simulate <scenario.yaml...>`: replays each scenario's arrival trace through the chosen
 * policies (tide and the baselines) and prints a table per scenario; `--json` adds the rows as
 * a JSON array on the last stdout line; `--chart` writes an SVG. Progress goes to stderr.
 */
import { accessSync, constants, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { TideError } from '../../errors.js';
import { chartBucketSeconds, renderChart } from '../../sim/chart.js';
import { generateFamily, scenarioYaml, traceCsv } from '../../sim/family.js';
import { renderFamilyChart } from '../../sim/family-chart.js';
import { runMember } from '../../sim/family-run.js';
import { type ScenarioRuns, judge, summarize } from '../../sim/score.js';
import { formatTable, scenarioHeading } from '../../sim/report.js';
import { type JsonRow, type PolicyRun, jsonRow, parsePolicies, prepareScenario, runPolicy } from '../../sim/run.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide simulate <scenario.yaml...> [--policy tide,hpa,...|all] [--json] [--chart out.svg] [--seed N] [--quiet]
       tide simulate --family <count> [--seed N] [--out DIR] [--chart out.svg] [--json] [--quiet]

Replays each scenario's arrival trace (jobs drawn once per scenario from the seed) through the
policies and prints, per scenario, one row per policy: SLO attainment (* = meets the SLO), wait
p50/p95/p99/max in seconds, replica-seconds paid, the lower bound, efficiency, scale events and
flaps. The setting column shows what a search settled on (fixed-peak, hpa-tuned, keda-tuned).

  --policy   comma-separated: tide, hpa, keda, step-table, cron-script, target-cpu, fixed-peak,
             hpa-tuned, keda-tuned; or all (the default)
  --json     also print the rows as a JSON array on the last line of stdout
  --chart    write an SVG chart (arrivals, replicas per policy, p95 wait); with several
             scenarios, one file each: out-<scenario>.svg
  --seed     the seed of the job draw (default 1)
  --quiet    no progress on stderr
  --family   generate <count> scenarios (on/off, sparse bursts, diurnal, noisy plateau, staircase,
             flash crowd, ramp-hold-drop, retry storm, sawtooth, mixtures; job sizes, concurrency,
             start-up and SLOs drawn at random from the seed), write them to --out (default: a
             new temporary directory) and judge tide against the baselines over all of them:
             SLO met where a baseline meets it, cost against the cheapest baseline that meets it,
             flaps an hour, and the worst five; with --chart, one SVG of every scenario's cost
             against the cheapest baseline and attainment against its SLO`;

/** Writes a file the user named, or says which flag named a place that cannot be written. */
function writeOutput(file: string, text: string, arg: string): void {
  try {
    writeFileSync(file, text);
  } catch (cause) {
    throw unwritable(file, arg, cause);
  }
}

function unwritable(file: string, arg: string, cause: unknown): TideError {
  const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
  return new TideError('TIDE_SIM_WRITE', `Cannot write ${file}: ${code}. Name a file in a directory that exists and can be written.`, { where: { arg }, cause });
}

/** Before the runs (which can take minutes): the directory a --chart file goes in must be writable. */
function checkWritable(file: string | undefined, arg: string): void {
  if (file === undefined) return;
  try {
    accessSync(path.dirname(path.resolve(file)), constants.W_OK);
  } catch (cause) {
    throw unwritable(file, arg, cause);
  }
}

/** The chart path for one scenario of several: `out.svg` -> `out-<name>.svg`. */
export function chartPath(base: string, scenario: string, several: boolean): string {
  if (!several) return base;
  const dot = base.toLowerCase().endsWith('.svg') ? base.length - 4 : base.length;
  return `${base.slice(0, dot)}-${scenario}${base.slice(dot) || '.svg'}`;
}

export const command: Command = {
  summary: 'replay scenarios through tide and the baseline autoscalers (HPA, KEDA, ...) and compare',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      policy: { type: 'string' },
      json: { type: 'boolean' },
      chart: { type: 'string' },
      seed: { type: 'string' },
      quiet: { type: 'boolean' },
      family: { type: 'string' },
      out: { type: 'string' },
    });
    checkWritable(values.chart, '--chart');
    if (values.family !== undefined) {
      const count = numberArg(values.family, '--family', 1, 1);
      return simulateFamily(Math.floor(count), numberArg(values.seed, '--seed', 1, 0), { out: values.out, chart: values.chart, json: values.json === true, quiet: values.quiet === true });
    }
    if (positionals.length === 0) throw new TideError('TIDE_USAGE', 'Name at least one scenario file (`tide simulate --help`).', { where: { arg: '<scenario.yaml>' } });
    const policies = parsePolicies(values.policy);
    const seed = numberArg(values.seed, '--seed', 1, 0);
    const progress = (line: string): void => {
      if (!values.quiet) process.stderr.write(`${line}\n`);
    };
    const rows: JsonRow[] = [];
    const started = performance.now();
    for (const file of positionals) {
      const loaded = prepareScenario(file, seed);
      const { scenario, jobs } = loaded;
      const bucket = values.chart ? chartBucketSeconds(jobs.traceSeconds, scenario.stepSeconds) : undefined;
      const runs: PolicyRun[] = [];
      for (const name of policies) {
        const run = await runPolicy(name, loaded, bucket === undefined ? {} : { seriesBucketSeconds: bucket });
        runs.push(run);
        rows.push(jsonRow(scenario, run));
        progress(`  ${scenario.name} ${name}: ${run.seconds.toFixed(2)} s (${run.runs} run${run.runs === 1 ? '' : 's'}), ${((performance.now() - started) / 1000).toFixed(1)} s elapsed`);
      }
      process.stdout.write(`\n${scenarioHeading(scenario, jobs.arrivals.length, jobs.traceSeconds)}\n${formatTable(scenario, runs)}\n`);
      if (values.chart) {
        const out = chartPath(values.chart, scenario.name, positionals.length > 1);
        writeOutput(out, renderChart(scenario, runs), '--chart');
        process.stdout.write(`chart: ${out}\n`);
      }
    }
    if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    return 0;
  },
};

/** `--family`: generated scenarios written out (so any one can be re-run by name), then judged. */
async function simulateFamily(count: number, seed: number, options: { out?: string | undefined; chart?: string | undefined; json: boolean; quiet: boolean }): Promise<number> {
  const { out, chart, json, quiet } = options;
  const dir = out ?? mkdtempSync(path.join(tmpdir(), `tide-family-${seed}-`));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (cause) {
    throw unwritable(dir, '--out', cause);
  }
  const members = generateFamily(count, seed);
  for (const m of members) {
    writeOutput(path.join(dir, `${m.scenario.name}.yaml`), scenarioYaml(m), '--out');
    writeOutput(path.join(dir, m.scenario.traceFile), traceCsv(m.trace), '--out');
  }
  process.stdout.write(`${count} scenarios (seed ${seed}) written to ${dir}\n`);
  const runs: ScenarioRuns[] = [];
  for (const [i, m] of members.entries()) {
    const r = await runMember(m, seed);
    runs.push(r);
    const v = judge(r);
    if (!quiet) {
      process.stderr.write(
        `  [${i + 1}/${count}] ${r.name}: tide ${(v.attainment * 100).toFixed(2)}% (SLO ${(r.attainment * 100).toFixed(0)}%${v.attainmentFail ? ', missed' : ''}), cost ${v.costRatio === undefined ? '-' : `${v.costRatio.toFixed(2)}x ${v.cheapest}`}, ${v.flapsPerHour.toFixed(1)} flaps/h\n`,
      );
    }
  }
  const s = summarize(runs, new Map(members.map((m) => [m.scenario.name, m.scenario.slo.attainment])));
  process.stdout.write(
    [
      `SLO met on ${s.slo_met_where_baseline_meets} of the ${s.baseline_meets} scenarios where a baseline meets it; below the best adaptive baseline on ${s.below_best_adaptive} of the rest`,
      `cost at or below the cheapest SLO-meeting baseline on ${(s.cost_share_le_1 * 100).toFixed(0)}% (median ratio ${s.median_cost_ratio}x)`,
      `at most 2 flaps an hour on ${(s.flap_share_le_2 * 100).toFixed(0)}% (max ${s.max_flaps_per_hour})`,
      'worst five:',
      ...s.worst.map((w) => `  ${w.name}: attainment ${(w.attainment * 100).toFixed(2)}% (SLO ${(w.slo * 100).toFixed(0)}%), cost ${w.cost_ratio ?? '-'}x ${w.cheapest ?? ''}, ${w.flaps_per_hour} flaps/h`),
      '',
    ].join('\n'),
  );
  if (chart) {
    writeOutput(chart, renderFamilyChart(`tide on ${count} generated scenarios (seed ${seed})`, runs, s), '--chart');
    process.stdout.write(`chart: ${chart}\n`);
  }
  if (json) process.stdout.write(`${JSON.stringify({ dir, seed, summary: s })}\n`);
  return 0;
}
