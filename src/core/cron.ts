/**
 * A small, pure five-field cron matcher (minute hour day-of-month month day-of-week) for the
 * `schedule` policy. Supports `*`, lists, ranges, steps and three-letter month/day names; day 7
 * is Sunday as in Vixie cron, and when both day fields are restricted a day matches if either
 * does (Vixie cron's rule). Time zones go through Intl: no clock is read here, `at` is given.
 */
import { TideError } from '../errors.js';

export interface Cron {
  source: string;
  minute: ReadonlySet<number>;
  hour: ReadonlySet<number>;
  dayOfMonth: ReadonlySet<number>;
  month: ReadonlySet<number>;
  dayOfWeek: ReadonlySet<number>;
  /** True when the field was `*` (or `*\/1`); matters for the day-of-month/day-of-week OR rule. */
  dayOfMonthAny: boolean;
  dayOfWeekAny: boolean;
}

/** Wall-clock fields in one time zone. `dayOfWeek` 0 = Sunday. */
export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  dayOfWeek: number;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  namesFrom?: number;
}

const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, namesFrom: 0 },
];

function invalid(expr: string, why: string, field?: string): TideError {
  return new TideError('TIDE_POLICY_INVALID', `The cron expression "${expr}" is not valid: ${why}.`, field ? { where: { field } } : {});
}

function parseValue(token: string, spec: FieldSpec, expr: string): number {
  const lower = token.toLowerCase();
  const named = spec.names?.indexOf(lower) ?? -1;
  if (named >= 0) return named + (spec.namesFrom ?? 0);
  if (!/^\d+$/.test(token)) throw invalid(expr, `"${token}" is not a number in the ${spec.name} field`);
  const n = Number(token);
  if (n < spec.min || n > spec.max) throw invalid(expr, `${n} is outside ${spec.min}-${spec.max} in the ${spec.name} field`);
  return n;
}

function parseField(text: string, spec: FieldSpec, expr: string): { values: Set<number>; any: boolean } {
  const values = new Set<number>();
  let any = false;
  for (const part of text.split(',')) {
    if (part === '') throw invalid(expr, `an empty list item in the ${spec.name} field`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined || range === undefined || range === '') throw invalid(expr, `"${part}" in the ${spec.name} field`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) throw invalid(expr, `the step "${stepText}" in the ${spec.name} field`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = spec.min;
      hi = spec.max;
      if (step === 1) any = true;
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (a === undefined || b === undefined || more !== undefined) throw invalid(expr, `the range "${range}" in the ${spec.name} field`);
      lo = parseValue(a, spec, expr);
      hi = parseValue(b, spec, expr);
      if (lo > hi) throw invalid(expr, `the range "${range}" runs backwards in the ${spec.name} field`);
    } else {
      lo = parseValue(range, spec, expr);
      // "a/n" means from a to the end, stepping n (as Vixie cron reads it).
      hi = stepText === undefined ? lo : spec.max;
    }
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return { values, any };
}

/** Parses a five-field cron expression; a bad one throws TIDE_POLICY_INVALID (with `field` as where, when given). */
export function parseCron(expr: string, field?: string): Cron {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) {
    const err = invalid(expr, `it has ${parts.length} fields, and cron takes five (minute hour day-of-month month day-of-week)`, field);
    throw err;
  }
  try {
    const [minute, hour, dom, month, dow] = parts.map((p, i) => parseField(p, FIELDS[i]!, expr)) as [
      ReturnType<typeof parseField>,
      ReturnType<typeof parseField>,
      ReturnType<typeof parseField>,
      ReturnType<typeof parseField>,
      ReturnType<typeof parseField>,
    ];
    // Day 7 is Sunday too.
    if (dow.values.delete(7)) dow.values.add(0);
    return {
      source: expr,
      minute: minute.values,
      hour: hour.values,
      dayOfMonth: dom.values,
      month: month.values,
      dayOfWeek: dow.values,
      dayOfMonthAny: dom.any,
      dayOfWeekAny: dow.any,
    };
  } catch (err) {
    if (err instanceof TideError && field && !err.where) throw new TideError(err.code, err.message, { where: { field } });
    throw err;
  }
}

/** Whether the cron's day fields accept this calendar day. */
export function cronMatchesDay(cron: Cron, wall: Pick<WallClock, 'month' | 'day' | 'dayOfWeek'>): boolean {
  if (!cron.month.has(wall.month)) return false;
  const dom = cron.dayOfMonth.has(wall.day);
  const dow = cron.dayOfWeek.has(wall.dayOfWeek);
  if (cron.dayOfMonthAny || cron.dayOfWeekAny) return dom && dow;
  return dom || dow;
}

/** Whether the cron fires at this wall-clock minute. */
export function cronMatches(cron: Cron, wall: WallClock): boolean {
  return cron.minute.has(wall.minute) && cron.hour.has(wall.hour) && cronMatchesDay(cron, wall);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch (cause) {
      throw new TideError('TIDE_POLICY_INVALID', `The time zone "${timeZone}" is not a known IANA time zone.`, { cause });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws TIDE_POLICY_INVALID unless `timeZone` is a time zone Intl knows. */
export function checkTimeZone(timeZone: string): void {
  formatter(timeZone);
}

/** The offset of `timeZone` from UTC at instant `at`, ms (local = utc + offset). */
export function zoneOffsetMs(at: number, timeZone: string): number {
  if (timeZone === 'UTC') return 0;
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(at))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return asUtc - Math.floor(at / 1000) * 1000;
}

/** Wall-clock fields of a "local as UTC" ms value. */
function wallOf(localMs: number): WallClock {
  const d = new Date(localMs);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    dayOfWeek: d.getUTCDay(),
  };
}

/** Wall-clock fields of instant `at` in `timeZone`. */
export function wallClock(at: number, timeZone = 'UTC'): WallClock {
  return wallOf(at + zoneOffsetMs(at, timeZone));
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * The latest instant at or before `at` when the cron fired, looking back at most `lookbackDays`
 * days; undefined if it did not fire in that span. Walks days backwards and, on a matching day,
 * the hours and minutes backwards, so a look-back costs a few hundred steps, not one per minute.
 * Across a daylight-saving change the local-to-UTC conversion uses the offset at the candidate.
 */
export function lastFiring(cron: Cron, at: number, timeZone = 'UTC', lookbackDays = 8): number | undefined {
  const localNow = at + zoneOffsetMs(at, timeZone);
  const nowMinute = Math.floor(localNow / MINUTE) * MINUTE;
  const todayStart = Math.floor(localNow / DAY) * DAY;
  const hours = [...cron.hour].sort((a, b) => b - a);
  const minutes = [...cron.minute].sort((a, b) => b - a);
  for (let d = 0; d <= lookbackDays; d++) {
    const dayStart = todayStart - d * DAY;
    if (!cronMatchesDay(cron, wallOf(dayStart))) continue;
    for (const h of hours) {
      for (const m of minutes) {
        const local = dayStart + h * 3_600_000 + m * MINUTE;
        if (local > nowMinute) continue;
        // Convert back with the offset in force around the candidate, not at `at`.
        const guess = local - zoneOffsetMs(local - zoneOffsetMs(at, timeZone), timeZone);
        if (guess <= at) return guess;
      }
    }
  }
  return undefined;
}
