// The schedule's windows on their own (core/schedule.ts): when a cron window is in force, what
// it sets, and how windows stack; times are fixed UTC instants, no clock is read.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { boundsAt } from '../../src/core/schedule.js';
import type { ServicePolicy } from '../../src/core/types.js';

const at = (iso: string) => Date.parse(iso);
const base = { min: 1, max: 10, policies: [] } satisfies ServicePolicy;

test('no schedule: the service bounds, no reason', () => {
  assert.deepEqual(boundsAt(base, at('2026-03-02T09:00:00Z')), { min: 1, max: 10, reasons: [] });
});

test('a window with a duration: in force from its cron for that long, then gone', () => {
  // weekdays 08:00 UTC for two hours: at least 5 replicas
  const policy: ServicePolicy = { ...base, schedule: [{ cron: '0 8 * * 1-5', durationSeconds: 7200, min: 5 }] };
  const monday = boundsAt(policy, at('2026-03-02T09:30:00Z'));
  assert.equal(monday.min, 5);
  assert.equal(monday.reasons[0]!.code, 'ScheduleWindow');
  assert.equal(boundsAt(policy, at('2026-03-02T10:00:01Z')).min, 1, 'after the two hours');
  assert.equal(boundsAt(policy, at('2026-03-02T07:59:59Z')).min, 1, 'before it starts');
  assert.equal(boundsAt(policy, at('2026-03-07T09:00:00Z')).min, 1, 'not on a Saturday');
});

test('open-ended windows: each lasts until the next open-ended one fires', () => {
  const policy: ServicePolicy = {
    ...base,
    schedule: [
      { cron: '0 8 * * *', min: 4, max: 20 },
      { cron: '0 20 * * *', min: 1, max: 3 },
    ],
  };
  assert.deepEqual(
    [boundsAt(policy, at('2026-03-02T12:00:00Z')), boundsAt(policy, at('2026-03-02T23:00:00Z')), boundsAt(policy, at('2026-03-03T07:00:00Z'))].map((b) => [b.min, b.max]),
    [
      [4, 20],
      [1, 3],
      [1, 3],
    ],
  );
});

test('stacked windows apply in the order they started, and a floor above the ceiling lifts the ceiling', () => {
  const policy: ServicePolicy = {
    ...base,
    schedule: [
      { cron: '0 8 * * *', durationSeconds: 36_000, max: 4 },
      { cron: '0 9 * * *', durationSeconds: 3600, min: 6 },
    ],
  };
  const b = boundsAt(policy, at('2026-03-02T09:30:00Z'));
  assert.equal(b.min, 6);
  assert.equal(b.max, 6, 'the later floor wins over the earlier ceiling');
  assert.equal(b.reasons.length, 2);
  assert.deepEqual([boundsAt(policy, at('2026-03-02T11:00:00Z')).min, boundsAt(policy, at('2026-03-02T11:00:00Z')).max], [1, 4]);
});

test('a time zone moves the window', () => {
  const policy: ServicePolicy = { ...base, schedule: [{ cron: '0 9 * * *', durationSeconds: 3600, min: 3, timezone: 'America/New_York' }] };
  // 09:30 in New York in March (EST, UTC-5 until the 8th) is 14:30 UTC
  assert.equal(boundsAt(policy, at('2026-03-02T14:30:00Z')).min, 3);
  assert.equal(boundsAt(policy, at('2026-03-02T09:30:00Z')).min, 1);
});
