/**
 * `tide demo`: no config needed. Starts an api (1-3 replicas) and workers (1-8, concurrency
 * 10, the built-in `sleep` handler) on the embedded database with the autoscaler of `tide up`,
 * drives a built-in load through the balancer, narrates what the autoscaler decides, and
 * prints a summary.
 */
import path from 'node:path';

import { TideError } from '../../errors.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide demo [options]

Runs the whole system on this machine under a built-in load, scaled by the autoscaler (the
workers keep "95% of jobs start within 3 s", the api aims at half a core per replica): a line
every few seconds (replicas per service with the autoscaler's last reason, queue depth,
oldest job age, jobs/s, API p95), a line per scale decision with its reasons, then a summary
(jobs accepted, completed, lost, p95 wait, replicas over time, the scale decisions). Needs no tide.yaml and no
database: PostgreSQL is embedded (or DATABASE_URL when set).

options:
  --minutes <n>         how long the load runs (default 3)
  --scenario <name>     calm-spike (default: calm, a spike, calm again), steady, ramp
  --json                the summary as one JSON line on stdout (progress goes to stderr)
  --state-dir <dir>     where the embedded database and control.json live (default .tide)
  --schema <name>       PostgreSQL schema for the demo's queue (default tide_demo)
  --interval <s>        seconds between status lines (default: 5, less for short runs)
  --seed <n>            seed of the arrival times (default 42)`;

export const command: Command = {
  summary: 'the whole system under a built-in load, scaled by the autoscaler, narrated (no setup)',
  help: HELP,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        minutes: { type: 'string', default: '3' },
        scenario: { type: 'string', default: 'calm-spike' },
        json: { type: 'boolean', default: false },
        'state-dir': { type: 'string', default: '.tide' },
        schema: { type: 'string', default: 'tide_demo' },
        interval: { type: 'string' },
        seed: { type: 'string', default: '42' },
      },
      false,
    );
    const minutes = numberArg(values.minutes, '--minutes', 3, 0.05);
    const seed = numberArg(values.seed, '--seed', 42);
    const intervalMs = values.interval === undefined ? undefined : numberArg(values.interval, '--interval', 5, 0.2) * 1000;
    const [{ SCENARIOS, demoConfig, runDemo, splitFigures }, { parseConfig }, { startSystem }] = await Promise.all([
      import('../../app/demo.js'),
      import('../../config/load.js'),
      import('../../app/system.js'),
    ]);
    const scenario = SCENARIOS.find((s) => s === values.scenario);
    if (!scenario) {
      throw new TideError('TIDE_USAGE', `--scenario is one of ${SCENARIOS.join(', ')}, not "${values.scenario}".`, { where: { arg: '--scenario' } });
    }
    const out = values.json ? process.stderr : process.stdout;
    const print = (line: string) => out.write(`${line}\n`);

    // the demo's project, validated like any tide.yaml
    const config = parseConfig(demoConfig({ stateDir: path.resolve(values['state-dir']), schema: values.schema }), '<tide demo>');
    print('starting: database, migrations, balancer, 1 api and 1 worker replica, the autoscaler');
    let lastLog = '';
    const system = await startSystem(config, {
      configDir: process.cwd(),
      // the demo narrates each decision itself (runDemo); the controller's "scaled to" would
      // repeat it, and a manual scale's pause is announced twice (at once, and by the next round)
      log: (line) => {
        if (/^autoscaler: [a-z0-9-]+: scaled to \d+$/.test(line) || line === lastLog) return;
        lastLog = line;
        print(`  ${line}`);
      },
      dashboardEager: true,
      onLog: (l) => {
        // replica output stays in `tide logs`; crashes are news
        if (l.stream === 'tide' && /exited|failed|SIGKILL/.test(l.line)) print(`  ${l.service}.${l.index}: ${l.line}`);
      },
    });
    print(`dashboard: ${system.control.url}/dashboard/ (live while the demo runs)`);
    const onSignal = () => void system.stop('interrupted');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const slo = config.services.worker?.scale?.policies.find((p) => p.kind === 'slo');
      const summary = await runDemo({ system, minutes, scenario, print, seed, ...(intervalMs ? { intervalMs } : {}), ...(slo ? { sloWaitSeconds: slo.waitSeconds } : {}) });
      print('');
      print(`summary (${summary.scenario}, ${summary.seconds} s):`);
      print(`  jobs: ${summary.offered} offered, ${summary.accepted} accepted, ${summary.completed} completed, ${summary.failed} failed, lost ${summary.lost}` +
        `${summary.rejected ? `, ${summary.rejected} requests rejected` : ''}${summary.shed ? `, ${summary.shed} shed by the generator` : ''}`);
      if (slo && summary.withinSloWait !== null) {
        const kept = summary.withinSloWait >= slo.attainment ? 'kept' : 'missed';
        print(`  the workers' SLO, ${pct(slo.attainment)} of jobs start within ${slo.waitSeconds} s: ${kept} (${pct(summary.withinSloWait)} of a sample of the jobs did)`);
      }
      print(`  p95 wait before a job started: ${fmtMs(summary.waitP95Ms)}; API p95: ${fmtMs(summary.apiP95Ms)}; peak depth ${summary.peakDepth}, oldest ${summary.peakOldestSeconds.toFixed(1)} s`);
      for (const [name, r] of Object.entries(summary.replicas)) print(`  ${name} replicas over time: ${r.timeline}`);
      const { rounds, decisions } = summary.autoscaler;
      print(`  autoscaler: ${rounds} rounds, ${decisions.length} scale decision${decisions.length === 1 ? '' : 's'}${decisions.length ? ':' : ''}`);
      for (const d of decisions) {
        const when = summary.spike && d.atSeconds >= summary.spike.fromSeconds && d.atSeconds < summary.spike.toSeconds + 5 ? ' (spike)' : '';
        print(`    ${d.atSeconds.toFixed(0).padStart(4)}s${when.padEnd(8)} ${d.service} ${d.from} -> ${d.to}  ${d.reasons.join(', ')}${d.applied ? '' : ' (not applied)'}`);
      }
      for (const [service, last] of Object.entries(summary.autoscaler.last)) print(`  ${service} at the end: ${last.desired} [${last.codes.join(', ')}] ${splitFigures(last.why)[0]}`);
      if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      return summary.lost === 0 ? 0 : 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await system.stop('demo over');
    }
  },
};

/** 99%, 98.7%: one decimal, unless whole. */
function pct(share: number): string {
  return `${Number((share * 100).toFixed(1))}%`;
}

function fmtMs(ms: number | null): string {
  return ms === null ? '-' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}
