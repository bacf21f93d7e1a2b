/**
 * The `schedule` policy: cron windows that change min/max. A window starts when its cron fires
 * and lasts `durationSeconds`, or, without a duration, until another open-ended entry fires.
 * Active windows apply in the order they started (the latest wins for each bound it sets).
 */
import { type Cron, lastFiring, parseCron } from './cron.js';
import type { Reason, ScheduleEntry, ServicePolicy } from './types.js';

const parsed = new Map<string, Cron>();

/** Parsed crons are cached by text: parsing is pure, so the cache changes no result. */
function cronOf(expr: string): Cron {
  let c = parsed.get(expr);
  if (!c) {
    c = parseCron(expr);
    parsed.set(expr, c);
  }
  return c;
}

export interface Bounds {
  min: number;
  max: number;
  /** One ScheduleWindow reason per active window. */
  reasons: Reason[];
}

/** The longest an open-ended window is looked back for: a weekly cron plus a day. */
const OPEN_LOOKBACK_DAYS = 8;

/** min/max in force at `now`, after the schedule's active windows. */
export function boundsAt(policy: ServicePolicy, now: number): Bounds {
  const entries = policy.schedule ?? [];
  if (entries.length === 0) return { min: policy.min, max: policy.max, reasons: [] };
  const starts = entries.map((e: ScheduleEntry) => {
    const days = e.durationSeconds === undefined ? OPEN_LOOKBACK_DAYS : Math.ceil(e.durationSeconds / 86_400) + 1;
    return lastFiring(cronOf(e.cron), now, e.timezone ?? 'UTC', days);
  });
  // The open-ended entry that fired last is the one in force; earlier ones were ended by it.
  let openIndex = -1;
  entries.forEach((e, i) => {
    const s = starts[i];
    if (e.durationSeconds === undefined && s !== undefined && (openIndex < 0 || s >= starts[openIndex]!)) openIndex = i;
  });
  const active = entries
    .map((e, i) => ({ e, i, start: starts[i] }))
    .filter(
      ({ e, i, start }) =>
        start !== undefined && (e.durationSeconds === undefined ? i === openIndex : now < start + e.durationSeconds * 1000),
    )
    .sort((a, b) => a.start! - b.start! || a.i - b.i);
  let { min, max } = policy;
  const reasons: Reason[] = [];
  for (const { e, i, start } of active) {
    if (e.min !== undefined) min = e.min;
    if (e.max !== undefined) max = e.max;
    const sets = [e.min === undefined ? '' : `min ${e.min}`, e.max === undefined ? '' : `max ${e.max}`].filter(Boolean).join(', ');
    reasons.push({
      code: 'ScheduleWindow',
      policy: `schedule[${i}]`,
      message: `The schedule window "${e.cron}"${e.timezone ? ` (${e.timezone})` : ''} started at ${new Date(start!).toISOString()} and sets ${sets || 'nothing'}.`,
    });
  }
  // A window that raises the floor above the ceiling wins: the operator asked for that floor.
  if (min > max) max = min;
  return { min, max, reasons };
}
