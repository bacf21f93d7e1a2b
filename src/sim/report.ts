/**
 * The text table `tide simulate` and the benchmark print: one row per policy of a scenario.
 */
import type { PolicyRun } from './run.js';
import type { Scenario } from './scenario.js';

const HEADERS = ['policy', 'attain', 'p50', 'p95', 'p99', 'max', 'replica_s', 'lower_bound_s', 'effic', 'events', 'flaps', 'setting'];

function fmtSeconds(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function fmtInt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

/** The scenario's heading line: what it asks for. */
export function scenarioHeading(s: Scenario, jobs: number, traceSeconds: number): string {
  return `${s.name}: ${jobs.toLocaleString('en-US')} jobs over ${fmtInt(traceSeconds)} s; SLO ${(s.slo.attainment * 100).toFixed(1)}% start within ${s.slo.waitSeconds} s; ${s.concurrency} slots/replica, start-up ${s.startupSeconds} s, replicas ${s.minReplicas}..${s.maxReplicas}`;
}

/** One aligned table; a row is marked `*` when it meets the SLO. */
export function formatTable(scenario: Scenario, runs: PolicyRun[]): string {
  const rows = runs.map((run) => {
    const r = run.result;
    const meets = r.attainment >= scenario.slo.attainment;
    return [
      r.policy,
      `${(r.attainment * 100).toFixed(2)}%${meets ? '*' : ' '}`,
      fmtSeconds(r.waitP50),
      fmtSeconds(r.waitP95),
      fmtSeconds(r.waitP99),
      fmtSeconds(r.waitMax),
      fmtInt(r.replicaSeconds),
      fmtInt(r.lowerBoundSeconds),
      r.efficiency.toFixed(3),
      String(r.scaleEvents),
      String(r.flaps),
      run.parameter ?? '',
    ];
  });
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(HEADERS), ...rows.map(line)].join('\n');
}

/**
 * The benchmark's summary line: tide's replica-seconds over the cheapest baseline that meets the
 * SLO, and tide's attainment next to hpa's and keda's.
 */
export function ratioLine(scenario: Scenario, runs: PolicyRun[]): string {
  const byName = new Map(runs.map((r) => [r.result.policy, r.result]));
  const tide = byName.get('tide');
  if (!tide) return `${scenario.name}: no tide run`;
  const meeting = runs.filter((r) => r.result.policy !== 'tide' && r.result.attainment >= scenario.slo.attainment);
  const cheapest = meeting.sort((a, b) => a.result.replicaSeconds - b.result.replicaSeconds)[0];
  const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
  const cost = cheapest
    ? `tide/${cheapest.result.policy} replica_seconds = ${(tide.replicaSeconds / cheapest.result.replicaSeconds).toFixed(3)}`
    : 'no baseline meets the SLO';
  return `${scenario.name}: ${cost}; attainment tide ${pct(tide.attainment)}${tide.attainment >= scenario.slo.attainment ? ' (meets)' : ' (misses)'} vs hpa ${pct(byName.get('hpa')?.attainment)}, keda ${pct(byName.get('keda')?.attainment)}`;
}
