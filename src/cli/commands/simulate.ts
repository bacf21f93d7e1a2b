/**
 * `tide simulate <scenario.yaml...>`: replays each scenario's arrival trace through the chosen
 * policies (tide and the baselines) and prints a table per scenario; `--json` adds the rows as
 * a JSON array on the last stdout line; `--chart` writes an SVG. Progress goes to stderr.
 */
import { writeFileSync } from 'node:fs';

import { TideError } from '../../errors.js';
import { chartBucketSeconds, renderChart } from '../../sim/chart.js';
import { formatTable, scenarioHeading } from '../../sim/report.js';
import { type JsonRow, type PolicyRun, jsonRow, parsePolicies, prepareScenario, runPolicy } from '../../sim/run.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide simulate <scenario.yaml...> [--policy tide,hpa,...|all] [--json] [--chart out.svg] [--seed N] [--quiet]

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
  --quiet    no progress on stderr`;

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
    });
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
        writeFileSync(out, renderChart(scenario, runs));
        process.stdout.write(`chart: ${out}\n`);
      }
    }
    if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    return 0;
  },
};
