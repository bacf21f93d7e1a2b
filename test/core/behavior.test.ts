// The behaviour rules on their own (core/behavior.ts): the HPA's defaults, stabilization
// windows, rate limits per period and cooldowns, as properties over generated histories
// (fast-check, fixed seed) and the HPA's documented examples.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, cooldownLeft, rulesFor, scaleDownLimit, scaleUpLimit, stabilize } from '../../src/core/behavior.js';
import type { History } from '../../src/core/types.js';

const RUNS = { seed: 7, numRuns: 300 };
const now = 1_000_000;

const event = fc.record({ ago: fc.integer({ min: 0, max: 600 }), from: fc.integer({ min: 0, max: 50 }), to: fc.integer({ min: 0, max: 50 }) });
const events = fc.array(event, { maxLength: 8 }).map((es) => es.map((e) => ({ at: now - e.ago * 1000, from: e.from, to: e.to })) as History['events']);

test('rulesFor: the HPA defaults where nothing is given; an SLO policy lifts the scale-up rate limit and shortens the scale-down window', () => {
  const up = rulesFor(undefined, 'up');
  assert.deepEqual(up.policies, DEFAULT_SCALE_UP.policies);
  assert.equal(up.stabilizationWindowSeconds, 0);
  assert.equal(up.cooldownSeconds, 0);
  assert.equal(rulesFor(undefined, 'down').stabilizationWindowSeconds, DEFAULT_SCALE_DOWN.stabilizationWindowSeconds);
  assert.deepEqual(rulesFor(undefined, 'up', 60).policies, []);
  assert.equal(rulesFor(undefined, 'down', 60).stabilizationWindowSeconds, 60);
  // what the user writes always wins
  const given = rulesFor({ scaleDown: { stabilizationWindowSeconds: 10, cooldownSeconds: 30 } }, 'down', 60);
  assert.equal(given.stabilizationWindowSeconds, 10);
  assert.equal(given.cooldownSeconds, 30);
});

test('stabilize: the result lies between current and the last recommendation, and windows of 0 take the last one', () => {
  const recs = fc.array(fc.record({ ago: fc.integer({ min: 0, max: 900 }), replicas: fc.integer({ min: 0, max: 40 }) }), { minLength: 1, maxLength: 10 });
  fc.assert(
    fc.property(recs, fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 600 }), (rs, current, upW, downW) => {
      const list = rs.map((r) => ({ at: now - r.ago * 1000, replicas: r.replicas })).sort((a, b) => a.at - b.at);
      list.push({ at: now, replicas: rs[0]!.replicas });
      const last = list[list.length - 1]!.replicas;
      const out = stabilize(list, now, current, upW, downW);
      assert.ok(out >= Math.min(current, last) && out <= Math.max(current, last), `${out} outside ${current}..${last}`);
      assert.equal(stabilize(list, now, current, 0, 0), last);
    }),
    RUNS,
  );
  assert.equal(stabilize([], now, 5, 300, 300), 5, 'no recommendation keeps the count');
});

test('stabilize: a scale-down waits for the whole down window to agree (the HPA rule)', () => {
  const recs = [
    { at: now - 200_000, replicas: 8 },
    { at: now - 100_000, replicas: 4 },
    { at: now, replicas: 2 },
  ];
  assert.equal(stabilize(recs, now, 8, 0, 300), 8, 'the 8 of 200 s ago is still in the 300 s window');
  assert.equal(stabilize(recs, now, 8, 0, 150), 4);
});

test('scale-up limit: never below current; with no events the HPA default allows max(+4, x2) per 15 s', () => {
  const rules = rulesFor(undefined, 'up');
  assert.equal(scaleUpLimit(rules, [], now, 1), 5);
  assert.equal(scaleUpLimit(rules, [], now, 10), 20);
  assert.equal(scaleUpLimit(rulesFor({ scaleUp: { selectPolicy: 'Disabled' } }, 'up'), [], now, 3), 3);
  assert.equal(scaleUpLimit(rulesFor(undefined, 'up', 60), [], now, 3), undefined, 'the SLO default sets no limit');
  fc.assert(
    fc.property(events, fc.integer({ min: 0, max: 50 }), (es, current) => {
      const limit = scaleUpLimit(rules, es, now, current)!;
      assert.ok(limit >= current);
      // recent scale-ups only ever lower the limit
      assert.ok(limit <= scaleUpLimit(rules, [], now, current)!);
    }),
    RUNS,
  );
});

test('scale-down limit: never above current, never below 0; scale-downs inside the period count against it', () => {
  const onePodPerMinute = rulesFor({ scaleDown: { policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } }, 'down');
  assert.equal(scaleDownLimit(onePodPerMinute, [], now, 5), 4);
  assert.equal(scaleDownLimit(onePodPerMinute, [{ at: now - 30_000, from: 6, to: 5 }], now, 5), 5, 'one pod already went this minute');
  assert.equal(scaleDownLimit(onePodPerMinute, [{ at: now - 90_000, from: 6, to: 5 }], now, 5), 4, 'that was last minute');
  const rules = rulesFor(undefined, 'down');
  fc.assert(
    fc.property(events, fc.integer({ min: 0, max: 50 }), (es, current) => {
      const limit = scaleDownLimit(rules, es, now, current)!;
      assert.ok(limit <= current && limit >= 0, `limit ${limit} for current ${current}`);
    }),
    RUNS,
  );
});

test('cooldownLeft: counts from the last event in that direction only, and is never negative', () => {
  const es: History['events'] = [
    { at: now - 10_000, from: 2, to: 4 },
    { at: now - 50_000, from: 6, to: 2 },
  ];
  assert.equal(cooldownLeft(es, now, 30, 'up'), 20);
  assert.equal(cooldownLeft(es, now, 30, 'down'), 0);
  assert.equal(cooldownLeft(es, now, 0, 'up'), 0);
  fc.assert(
    fc.property(events, fc.integer({ min: 0, max: 900 }), (list, cooldown) => {
      const left = cooldownLeft(list, now, cooldown, 'up');
      assert.ok(left >= 0 && left <= cooldown);
    }),
    RUNS,
  );
});
