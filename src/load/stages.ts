/**
 * Durations (`30s`, `2m`, `1h30m`, `500ms`) and stage lists in k6's form
 * (`30s:50,2m:200,30s:0`: ramp linearly to each target over each duration), and the value a
 * stage list gives at a moment, interpolated linearly from the previous target as k6 does.
 */
import { TideError } from '../errors.js';

export interface Stage {
  /** Length of the stage, ms. */
  durationMs: number;
  /** Value reached at the end of the stage (VUs, or requests/s for the open model). */
  target: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `1h2m3s`, `90s`, `250ms` or a bare number of seconds into ms; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== s.length) return undefined;
  return total;
}

/** A duration flag's value in ms, or a TIDE_USAGE naming the flag. */
export function durationArg(value: string | undefined, flag: string, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const ms = parseDuration(value);
  if (ms === undefined || !(ms > 0)) {
    throw new TideError('TIDE_USAGE', `${flag} takes a duration such as 30s, 2m, 1m30s or 500ms, not "${value}".`, { where: { arg: flag } });
  }
  return ms;
}

/**
 * Parses `30s:50,2m:200,30s:0`. Throws TIDE_LOAD_STAGES naming `arg` and the stage at fault.
 */
export function parseStages(text: string, arg = '--stages'): Stage[] {
  const parts = text.split(',').map((p) => p.trim());
  const stages: Stage[] = [];
  for (const [i, part] of parts.entries()) {
    const bad = (why: string) =>
      new TideError('TIDE_LOAD_STAGES', `Stage ${i + 1} "${part}" ${why}; expected duration:target stages separated by commas, such as 30s:50,2m:200,30s:0.`, {
        where: { arg },
      });
    const colon = part.indexOf(':');
    if (colon < 0) throw bad('has no ":"');
    const durationMs = parseDuration(part.slice(0, colon));
    if (durationMs === undefined || !(durationMs > 0)) throw bad('does not start with a duration (30s, 2m, 500ms)');
    const targetText = part.slice(colon + 1).trim();
    const target = Number(targetText);
    if (targetText === '' || !Number.isFinite(target) || target < 0) throw bad('does not end with a target number >= 0');
    stages.push({ durationMs, target });
  }
  return stages;
}

/** Total length of the stages, ms. */
export function stagesDuration(stages: readonly Stage[]): number {
  return stages.reduce((sum, s) => sum + s.durationMs, 0);
}

/** The interpolated value at `tMs` after the start; `start` is the value before stage 1. */
export function valueAt(stages: readonly Stage[], tMs: number, start = 0): number {
  let from = start;
  let t0 = 0;
  for (const s of stages) {
    if (tMs < t0 + s.durationMs) return from + ((s.target - from) * (tMs - t0)) / s.durationMs;
    from = s.target;
    t0 += s.durationMs;
  }
  return from;
}
