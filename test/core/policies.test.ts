// The `target` and `steps` policies on their own (core/policies.ts): the HPA's target
// arithmetic with its tolerance, runbook step tables, missing metrics; properties over
// generated values (fast-check, fixed seed).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { readSamples } from '../../src/core/metrics.js';
import { type PolicyContext, policyLabel, proposeSteps, proposeTarget } from '../../src/core/policies.js';
import type { StepsPolicy, TargetPolicy } from '../../src/core/types.js';

const RUNS = { seed: 11, numRuns: 300 };

function ctx(current: number, values: Record<string, number>): PolicyContext {
  const view = readSamples(Object.entries(values).map(([metric, value]) => ({ metric, value, at: 0 })));
  return { now: 0, current, ready: current, view, counters: {}, events: [], state: undefined, maxReplicas: 1000 };
}

test('target, average: ceil(total / target per replica), the HPA rule', () => {
  const p: TargetPolicy = { kind: 'target', metric: 'queue_depth', type: 'average', target: 100 };
  assert.equal(proposeTarget(p, 't', ctx(2, { queue_depth: 950 })).replicas, 10);
  // 1 +- 0.1 of the target per replica: keep the count
  const kept = proposeTarget(p, 't', ctx(5, { queue_depth: 540 }));
  assert.equal(kept.replicas, 5);
  assert.equal(kept.reasons[0]!.code, 'WithinTolerance');
});

test('target, utilization: ceil(current x value / target)', () => {
  const p: TargetPolicy = { kind: 'target', metric: 'cpu_utilization', type: 'utilization', target: 0.5 };
  assert.equal(proposeTarget(p, 't', ctx(4, { cpu_utilization: 0.9 })).replicas, 8);
  assert.equal(proposeTarget(p, 't', ctx(4, { cpu_utilization: 0.1 })).replicas, 1);
});

test('target: a missing metric proposes nothing and names it', () => {
  const p: TargetPolicy = { kind: 'target', metric: 'queue_depth', type: 'average', target: 10 };
  const out = proposeTarget(p, 't', ctx(3, {}));
  assert.equal(out.replicas, undefined);
  assert.deepEqual(out.missing, ['queue_depth']);
});

test('target, average: the proposal serves the total at the target, and grows with it', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 50 }), fc.double({ min: 0, max: 10_000, noNaN: true }), fc.double({ min: 0, max: 10_000, noNaN: true }), fc.integer({ min: 1, max: 500 }), (current, a, b, target) => {
      const p: TargetPolicy = { kind: 'target', metric: 'm', type: 'average', target, tolerance: 0 };
      const lo = proposeTarget(p, 't', ctx(current, { m: Math.min(a, b) })).replicas!;
      const hi = proposeTarget(p, 't', ctx(current, { m: Math.max(a, b) })).replicas!;
      assert.ok(lo <= hi, `monotone: ${lo} > ${hi}`);
      assert.ok(hi * target >= Math.max(a, b) - 1e-9, 'enough replicas for the total');
    }),
    RUNS,
  );
});

test('steps: the highest step up the value exceeds wins, else the lowest step down it is under, else keep', () => {
  const p: StepsPolicy = {
    kind: 'steps',
    metric: 'queue_depth',
    up: [
      { above: 100, add: 1 },
      { above: 1000, set: 10 },
      { above: 500, percent: 50 },
    ],
    down: [
      { below: 10, remove: 1 },
      { below: 1, set: 1 },
    ],
  };
  assert.equal(proposeSteps(p, 's', ctx(4, { queue_depth: 2000 })).replicas, 10);
  assert.equal(proposeSteps(p, 's', ctx(4, { queue_depth: 600 })).replicas, 6);
  assert.equal(proposeSteps(p, 's', ctx(4, { queue_depth: 200 })).replicas, 5);
  assert.equal(proposeSteps(p, 's', ctx(4, { queue_depth: 50 })).replicas, 4);
  assert.equal(proposeSteps(p, 's', ctx(4, { queue_depth: 5 })).replicas, 3);
  assert.equal(proposeSteps(p, 's', ctx(4, { queue_depth: 0 })).replicas, 1);
  assert.deepEqual(proposeSteps(p, 's', ctx(4, {})).missing, ['queue_depth']);
});

test('steps: a step down never proposes fewer than zero', () => {
  const p: StepsPolicy = { kind: 'steps', metric: 'm', down: [{ below: 5, remove: 100 }, { below: 1, percent: 300 }] };
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 4.9, noNaN: true }), (current, value) => {
      assert.ok(proposeSteps(p, 's', ctx(current, { m: value })).replicas! >= 0);
    }),
    RUNS,
  );
});

test('policyLabel: the name when given, else kind[index]', () => {
  assert.equal(policyLabel({ kind: 'steps', metric: 'm', name: 'depth table' }, 0), 'depth table');
  assert.equal(policyLabel({ kind: 'target', metric: 'm', type: 'average', target: 1 }, 2), 'target[2]');
});
