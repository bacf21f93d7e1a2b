/**
 * Pass/fail thresholds in k6's expression syntax, on the run's summary:
 * `p(99)<2000`, `avg<200`, `med<100`, `min`, `max` (latency, ms), `failed<0.01` (the share of
 * failed requests, k6's http_req_failed rate), `rate>100` (requests/s completed),
 * `count>1000` (requests), `dropped<1` (dropped iterations). Operators: < <= > >= == !=.
 * A metric prefix as in k6's options (`http_req_duration: p(95)<500`) is accepted and checked.
 */
import { TideError } from '../errors.js';
import type { Summary } from './summary.js';

export type Aggregate = { kind: 'percentile'; p: number } | { kind: 'avg' | 'med' | 'min' | 'max' | 'failed' | 'rate' | 'count' | 'dropped' };
export type Operator = '<' | '<=' | '>' | '>=' | '==' | '!=';

export interface Threshold {
  /** The text as given. */
  source: string;
  aggregate: Aggregate;
  op: Operator;
  value: number;
}

export interface ThresholdResult {
  threshold: string;
  /** The measured value the expression was checked on. */
  actual: number;
  ok: boolean;
}

const LATENCY = new Set(['avg', 'med', 'min', 'max']);
const METRIC_OF: Record<string, string> = {
  percentile: 'http_req_duration',
  avg: 'http_req_duration',
  med: 'http_req_duration',
  min: 'http_req_duration',
  max: 'http_req_duration',
  failed: 'http_req_failed',
  rate: 'http_reqs',
  count: 'http_reqs',
  dropped: 'dropped_iterations',
};

const EXPECTED = 'expected an expression such as p(99)<2000, avg<200, med<100, max<5000 (ms), failed<0.01 (share), rate>100 (requests/s), count>1000 or dropped<1';

/** Parses one threshold; throws TIDE_LOAD_THRESHOLD naming `arg`. */
export function parseThreshold(text: string, arg = '--threshold'): Threshold {
  const bad = (why: string) => new TideError('TIDE_LOAD_THRESHOLD', `Threshold "${text}" ${why}; ${EXPECTED}.`, { where: { arg } });
  let expr = text.trim();
  let metric: string | undefined;
  const colon = /^([a-z_]+)\s*:\s*(.*)$/.exec(expr);
  if (colon) {
    metric = colon[1];
    expr = colon[2]!;
  }
  const m = /^([a-z]+)(?:\(\s*([^)]*)\s*\))?\s*(<=|>=|==|!=|<|>)\s*(\S+)$/.exec(expr);
  if (!m) throw bad('does not parse');
  const [, name, argText, opText, valueText] = m;
  let aggregate: Aggregate;
  if (name === 'p') {
    const p = Number(argText);
    if (argText === undefined || argText === '' || !Number.isFinite(p) || p <= 0 || p > 100) throw bad('has a percentile outside (0, 100]');
    aggregate = { kind: 'percentile', p };
  } else if (argText !== undefined) {
    throw bad(`gives an argument to ${name}, which takes none`);
  } else if (name && (LATENCY.has(name) || ['failed', 'rate', 'count', 'dropped'].includes(name))) {
    aggregate = { kind: name as 'avg' };
  } else {
    throw bad(`uses an unknown aggregate "${name}"`);
  }
  const value = Number(valueText);
  if (!Number.isFinite(value)) throw bad(`compares with "${valueText}", which is not a number`);
  if (aggregate.kind === 'failed' && (value < 0 || value > 1)) throw bad('compares the failed share with a number outside 0..1');
  if (metric !== undefined && metric !== METRIC_OF[aggregate.kind]) {
    throw bad(`applies ${aggregate.kind === 'percentile' ? 'p()' : aggregate.kind} to ${metric}, but it belongs to ${METRIC_OF[aggregate.kind]}`);
  }
  return { source: text.trim(), aggregate, op: opText as Operator, value };
}

function measured(a: Aggregate, s: Summary): number {
  switch (a.kind) {
    case 'percentile':
      return s.histogram.percentile(a.p);
    case 'avg':
      return s.latency.avg;
    case 'med':
      return s.latency.p50;
    case 'min':
      return s.latency.min;
    case 'max':
      return s.latency.max;
    case 'failed':
      return s.requests === 0 ? 0 : s.failed / s.requests;
    case 'rate':
      return s.rate;
    case 'count':
      return s.requests;
    case 'dropped':
      return s.dropped;
  }
}

function compare(actual: number, op: Operator, value: number): boolean {
  switch (op) {
    case '<':
      return actual < value;
    case '<=':
      return actual <= value;
    case '>':
      return actual > value;
    case '>=':
      return actual >= value;
    case '==':
      return actual === value;
    case '!=':
      return actual !== value;
  }
}

/** Checks each threshold against a summary. */
export function checkThresholds(thresholds: readonly Threshold[], summary: Summary): ThresholdResult[] {
  return thresholds.map((t) => {
    const actual = measured(t.aggregate, summary);
    return { threshold: t.source, actual, ok: compare(actual, t.op, t.value) };
  });
}
