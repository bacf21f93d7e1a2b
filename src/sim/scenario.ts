/**
 * Scenario files (YAML) and their arrival traces (`t,count` CSV), loaded and validated.
 * The format is the one in the shared scenarios README: a trace plus the workload (service
 * time distribution, slots per replica, start-up delay), the bounds and the SLO.
 *
 * Every problem becomes a TideError naming the file, the line and the field, found from the
 * YAML node ranges (zod checks the shapes, `yaml`'s parseDocument knows where each value is).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { type Document, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

import { TideError } from '../errors.js';
import { fieldPath } from '../fields.js';

const positive = z.number().finite().positive();
const nonNegative = z.number().finite().nonnegative();
const count = z.number().int().nonnegative();

const serviceTimeSchema = z.discriminatedUnion('dist', [
  z.strictObject({ dist: z.literal('lognormal'), mean_ms: positive, cv: positive }),
  z.strictObject({ dist: z.literal('exponential'), mean_ms: positive }),
  z.strictObject({ dist: z.literal('constant'), mean_ms: positive }),
]);

const scenarioSchema = z.strictObject({
  name: z.string().min(1).optional(),
  trace: z.string().min(1),
  step_seconds: positive,
  scale: positive.optional(),
  service_time: serviceTimeSchema,
  concurrency: z.number().int().positive(),
  startup_seconds: nonNegative,
  initial_replicas: count,
  min_replicas: count,
  max_replicas: z.number().int().positive(),
  slo: z.strictObject({ wait_seconds: nonNegative, attainment: z.number().gt(0).lte(1) }),
});

export type ServiceTime =
  | { dist: 'lognormal'; meanSeconds: number; cv: number }
  | { dist: 'exponential'; meanSeconds: number }
  | { dist: 'constant'; meanSeconds: number };

/** A scenario after validation, in the library's units (seconds). */
export interface Scenario {
  name: string;
  /** The scenario file, as given (for messages). */
  file: string;
  /** The trace file, resolved against the scenario's directory. */
  traceFile: string;
  stepSeconds: number;
  scale: number;
  serviceTime: ServiceTime;
  concurrency: number;
  startupSeconds: number;
  initialReplicas: number;
  minReplicas: number;
  maxReplicas: number;
  slo: { waitSeconds: number; attainment: number };
}

/** Arrival counts per step: `t[i]` is the start of step i (seconds), `count[i]` its arrivals. */
export interface Trace {
  file: string;
  t: Float64Array;
  count: Float64Array;
}

function lineOf(doc: Document, lines: LineCounter, at: ReadonlyArray<PropertyKey>): number | undefined {
  // Walk up until a node exists (a missing field is reported at its parent's line).
  for (let n = at.length; n >= 0; n--) {
    const node = doc.getIn(at.slice(0, n) as Array<string | number>, true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

function invalid(file: string, message: string, where: { line?: number | undefined; field?: string | undefined }, cause?: unknown): TideError {
  return new TideError('TIDE_SCENARIO_INVALID', message, {
    where: { file, ...(where.line ? { line: where.line } : {}), ...(where.field ? { field: where.field } : {}) },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Parses and validates a scenario's YAML text. `file` names it in errors and anchors the trace path. */
export function parseScenario(text: string, file: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0]?.line;
    throw invalid(file, `Not valid YAML: ${yamlError.message.split('\n')[0]}`, { line }, yamlError);
  }
  const raw: unknown = doc.toJS();
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    // a typo shows as an unknown key plus a missing one: report the unknown key, suggest the other
    const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const at = [...issue.path, ...keys.slice(0, 1)];
    const field = fieldPath(at) || undefined;
    const sameLevel = (i: (typeof issues)[number]): boolean =>
      i.code === 'invalid_type' && i.path.length === issue.path.length + 1 && issue.path.every((p, k) => i.path[k] === p);
    const missing = issue.code === 'unrecognized_keys' ? issues.find(sameLevel) : undefined;
    const message =
      issue.code === 'unrecognized_keys'
        ? `Unknown field "${field}"${missing ? ` (did you mean "${fieldPath(missing.path)}"?)` : ''}.`
        : `Field ${field ?? '(top level)'}: ${issue.message}.`;
    throw invalid(file, message, { line: lineOf(doc, lines, at), field });
  }
  const s = parsed.data;
  const check = (ok: boolean, field: string, message: string): void => {
    if (!ok) throw invalid(file, message, { line: lineOf(doc, lines, field.split('.')), field });
  };
  check(s.min_replicas <= s.max_replicas, 'max_replicas', `max_replicas (${s.max_replicas}) is below min_replicas (${s.min_replicas}).`);
  check(
    s.initial_replicas >= s.min_replicas && s.initial_replicas <= s.max_replicas,
    'initial_replicas',
    `initial_replicas (${s.initial_replicas}) is outside min_replicas..max_replicas (${s.min_replicas}..${s.max_replicas}).`,
  );
  const st = s.service_time;
  const meanSeconds = st.mean_ms / 1000;
  return {
    name: s.name ?? path.basename(file).replace(/\.ya?ml$/, ''),
    file,
    traceFile: path.resolve(path.dirname(path.resolve(file)), s.trace),
    stepSeconds: s.step_seconds,
    scale: s.scale ?? 1,
    serviceTime: st.dist === 'lognormal' ? { dist: 'lognormal', meanSeconds, cv: st.cv } : { dist: st.dist, meanSeconds },
    concurrency: s.concurrency,
    startupSeconds: s.startup_seconds,
    initialReplicas: s.initial_replicas,
    minReplicas: s.min_replicas,
    maxReplicas: s.max_replicas,
    slo: { waitSeconds: s.slo.wait_seconds, attainment: s.slo.attainment },
  };
}

/** Reads and validates a scenario file (not its trace: see loadTrace). */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TideError('TIDE_SCENARIO_NOT_FOUND', `Cannot read the scenario file ${file}: ${(cause as Error).message}`, { where: { file }, cause });
  }
  return parseScenario(text, file);
}

/**
 * Parses a `t,count` CSV: an optional header, then one row per step with `t` strictly
 * increasing and `count` a non-negative number. Errors name the line.
 */
export function parseTrace(text: string, file: string): Trace {
  const rows = text.split('\n');
  const t = new Float64Array(rows.length);
  const counts = new Float64Array(rows.length);
  let n = 0;
  let first = true;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!.trim();
    if (row === '' || row.startsWith('#')) continue;
    const comma = row.indexOf(',');
    const a = comma < 0 ? row : row.slice(0, comma);
    const b = comma < 0 ? '' : row.slice(comma + 1);
    const header = first && !/^[-+.\d]/.test(a);
    first = false;
    if (header) continue;
    const ti = Number(a);
    const ci = Number(b);
    const where = { file, line: i + 1 };
    if (comma < 0 || b.includes(',') || a.trim() === '' || b.trim() === '' || !Number.isFinite(ti) || !Number.isFinite(ci)) {
      throw new TideError('TIDE_SCENARIO_TRACE_INVALID', `Expected a row "t,count" of two numbers, got "${row.slice(0, 60)}".`, { where });
    }
    if (ci < 0) throw new TideError('TIDE_SCENARIO_TRACE_INVALID', `count ${ci} is negative.`, { where: { ...where, field: 'count' } });
    if (ti < 0 || (n > 0 && ti <= t[n - 1]!)) {
      throw new TideError('TIDE_SCENARIO_TRACE_INVALID', `t ${ti} is negative or not after the previous row's t.`, { where: { ...where, field: 't' } });
    }
    t[n] = ti;
    counts[n] = ci;
    n++;
  }
  if (n === 0) throw new TideError('TIDE_SCENARIO_TRACE_INVALID', 'The trace has no rows.', { where: { file } });
  return { file, t: t.slice(0, n), count: counts.slice(0, n) };
}

/** Reads a scenario's trace. */
export function loadTrace(scenario: Scenario): Trace {
  let text: string;
  try {
    text = readFileSync(scenario.traceFile, 'utf8');
  } catch (cause) {
    throw new TideError(
      'TIDE_SCENARIO_TRACE_MISSING',
      `The trace ${scenario.traceFile} named by ${scenario.file} cannot be read: ${(cause as Error).message}`,
      { where: { file: scenario.file, field: 'trace' }, cause },
    );
  }
  return parseTrace(text, scenario.traceFile);
}
