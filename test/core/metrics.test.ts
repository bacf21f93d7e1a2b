// The core's metric plumbing on its own (core/metrics.ts): the latest valid sample per metric,
// counter series kept across rounds (resets, bounds), interpolated rates, and samples of several
// sources combined; properties over generated series (fast-check, fixed seed).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { COUNTER_KEEP_MS, type Series, combineSamples, rateOver, readSamples, recordCounters, samplingPeriod, valueAt } from '../../src/core/metrics.js';
import { METRIC } from '../../src/core/types.js';

const RUNS = { seed: 5, numRuns: 200 };

test('readSamples: the latest sample wins; an invalid latest value makes the metric missing', () => {
  const view = readSamples([
    { metric: 'a', value: 1, at: 10 },
    { metric: 'a', value: 2, at: 20 },
    { metric: 'b', value: 5, at: 20 },
    { metric: 'b', value: Number.NaN, at: 30 },
    { metric: 'c', value: -1, at: 1 },
  ]);
  assert.deepEqual([...view.values], [['a', 2]]);
  assert.deepEqual([...view.invalid.keys()].sort(), ['b', 'c']);
});

test('recordCounters: appends each round, starts over on a reset, forgets what is older than the keep window, and never mutates its input', () => {
  const view = (v: number) => readSamples([{ metric: METRIC.arrivalsTotal, value: v, at: 0 }]);
  const first = recordCounters({}, view(10), 1000);
  const second = recordCounters(first, view(15), 2000);
  assert.deepEqual(first[METRIC.arrivalsTotal], [{ at: 1000, value: 10 }], 'the input is left alone');
  assert.deepEqual(second[METRIC.arrivalsTotal], [
    { at: 1000, value: 10 },
    { at: 2000, value: 15 },
  ]);
  assert.deepEqual(recordCounters(second, view(3), 3000)[METRIC.arrivalsTotal], [{ at: 3000, value: 3 }], 'a counter that went down restarted');
  assert.deepEqual(recordCounters(second, view(20), 2000)[METRIC.arrivalsTotal]!.length, 2, 'a round at the same time adds nothing');
  const later = recordCounters(second, view(30), 2000 + COUNTER_KEEP_MS + 1);
  assert.deepEqual(later[METRIC.arrivalsTotal]!.map((p) => p.value), [30]);
  assert.equal(recordCounters({}, readSamples([{ metric: 'queue_depth', value: 4, at: 0 }]), 1000).queue_depth, undefined, 'only counters are kept');
});

const series = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 2, maxLength: 30 })
  .map((steps) => {
    const out: Series = [];
    let at = 0;
    let value = 0;
    for (const [dt, dv] of steps) {
      at += dt;
      value += dv;
      out.push({ at, value });
    }
    return out;
  });

test('valueAt and rateOver on a counter: clamped to the ends, monotone, and the rate over the whole span is its slope', () => {
  fc.assert(
    fc.property(series, (s) => {
      const first = s[0]!;
      const last = s[s.length - 1]!;
      assert.equal(valueAt(s, first.at - 1), first.value);
      assert.equal(valueAt(s, last.at + 1), last.value);
      const mid = (first.at + last.at) / 2;
      const v = valueAt(s, mid)!;
      assert.ok(v >= first.value && v <= last.value);
      const whole = rateOver(s, first.at, last.at)!;
      assert.ok(Math.abs(whole - ((last.value - first.value) * 1000) / (last.at - first.at)) < 1e-6);
      assert.ok(rateOver(s, first.at, mid)! >= 0);
      assert.equal(samplingPeriod(s), last.at - s[s.length - 2]!.at);
    }),
    RUNS,
  );
  assert.equal(rateOver([{ at: 0, value: 1 }], 0, 10), undefined, 'one point has no rate');
  assert.equal(valueAt([], 5), undefined);
});

test('combineSamples: depth and counters summed, the oldest age maxed, the rest averaged; each source counted once', () => {
  const out = combineSamples([
    [
      { metric: METRIC.queueDepth, value: 3, at: 1 },
      { metric: METRIC.queueDepth, value: 4, at: 2 },
      { metric: METRIC.oldestAge, value: 1, at: 2 },
      { metric: METRIC.utilization, value: 0.2, at: 2 },
    ],
    [
      { metric: METRIC.queueDepth, value: 6, at: 2 },
      { metric: METRIC.oldestAge, value: 9, at: 2 },
      { metric: METRIC.utilization, value: 0.6, at: 2 },
    ],
  ]);
  const by = new Map(out.map((s) => [s.metric, s.value]));
  assert.equal(by.get(METRIC.queueDepth), 10);
  assert.equal(by.get(METRIC.oldestAge), 9);
  assert.ok(Math.abs(by.get(METRIC.utilization)! - 0.4) < 1e-12);
  assert.deepEqual(combineSamples([]), []);
});
