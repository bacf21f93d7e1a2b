// Properties of decide() over generated inputs (fast-check, fixed seed): bounds, rate limits,
// no scale-down on missing data, determinism.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { decide } from '../../src/core/decide.js';
import { type DecideInput, type History, METRIC, type Policy, type Sample, type ServicePolicy, type StepsPolicy, emptyHistory } from '../../src/core/types.js';

const SEED = 20260105;
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

const metricValue = fc.oneof(
  { weight: 8, arbitrary: fc.double({ min: 0, max: 5000, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity, -1) },
);

const policyArb: fc.Arbitrary<Policy> = fc.oneof(
  fc.record({
    kind: fc.constant('target' as const),
    metric: fc.constantFrom(METRIC.queueDepth, METRIC.cpu),
    type: fc.constantFrom('utilization' as const, 'average' as const),
    target: fc.double({ min: 0.1, max: 500, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('steps' as const),
    metric: fc.constant(METRIC.queueDepth),
    up: fc.constant<StepsPolicy['up']>([{ above: 1000, add: 5 }]),
    down: fc.constant<StepsPolicy['down']>([{ below: 100, remove: 2 }]),
  }),
  fc.record({
    kind: fc.constant('slo' as const),
    waitSeconds: fc.integer({ min: 1, max: 120 }),
    attainment: fc.constantFrom(0.9, 0.95, 0.99),
    concurrency: fc.integer({ min: 1, max: 16 }),
    startupSeconds: fc.integer({ min: 0, max: 90 }),
  }),
);

const boundsArb = fc.tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 60 })).map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) }));

const serviceArb: fc.Arbitrary<ServicePolicy> = fc
  .record({
    bounds: boundsArb,
    policies: fc.array(policyArb, { minLength: 1, maxLength: 3 }),
    panic: fc.option(fc.constant({ threshold: 2, windowSeconds: 6 }), { nil: undefined }),
    activation: fc.option(fc.constant({ metric: METRIC.queueDepth, threshold: 10 }), { nil: undefined }),
    fallback: fc.option(fc.record({ failureThreshold: fc.integer({ min: 1, max: 3 }), replicas: fc.integer({ min: 0, max: 80 }) }), { nil: undefined }),
  })
  .map(({ bounds, policies, panic, activation, fallback }) => ({
    ...bounds,
    policies,
    ...(panic ? { panic } : {}),
    ...(activation ? { activation } : {}),
    ...(fallback ? { fallback } : {}),
  }));

/** One round's observations; arrivals are cumulative and made to grow by the caller. */
const roundArb = fc.record({
  dt: fc.integer({ min: 1, max: 30 }),
  arrivals: fc.integer({ min: 0, max: 5000 }),
  depth: metricValue,
  cpu: fc.double({ min: 0, max: 1, noNaN: true }),
  service: metricValue,
  drop: fc.subarray([METRIC.queueDepth, METRIC.serviceTimeMean, METRIC.cpu, METRIC.arrivalsTotal]),
  failed: fc.boolean(),
});

type Round = { dt: number; arrivals: number; depth: number; cpu: number; service: number; drop: string[]; failed: boolean };

function samplesOf(r: Round, now: number, total: number): Sample[] {
  const all: Sample[] = [
    { metric: METRIC.queueDepth, value: r.depth, at: now },
    { metric: METRIC.cpu, value: r.cpu, at: now },
    { metric: METRIC.serviceTimeMean, value: r.service / 1000, at: now },
    { metric: METRIC.arrivalsTotal, value: total, at: now },
    { metric: METRIC.oldestAge, value: 3, at: now },
  ];
  return all.filter((s) => !r.drop.includes(s.metric));
}

/** Runs a sequence of rounds, the desired count applied at once; calls `check` on every decision. */
function simulate(policy: ServicePolicy, start: number, rounds: Round[], check: (input: DecideInput, desired: number) => void): void {
  let history: History = emptyHistory();
  let current = start;
  let now = T0;
  let total = 0;
  for (const r of rounds) {
    now += r.dt * 1000;
    total += r.arrivals;
    const input: DecideInput = { now, current, ready: current, samples: samplesOf(r, now, total), policy, history, sourceFailed: r.failed };
    const d = decide(input);
    check(input, d.desired);
    history = d.history;
    current = d.desired;
  }
}

test('the result always lies within min and max', () => {
  fc.assert(
    fc.property(serviceArb, fc.integer({ min: 0, max: 80 }), fc.array(roundArb, { minLength: 1, maxLength: 15 }), (policy, start, rounds) => {
      simulate(policy, start, rounds, (_input, desired) => {
        assert.ok(Number.isInteger(desired));
        assert.ok(desired >= policy.min && desired <= policy.max, `${desired} outside [${policy.min}, ${policy.max}]`);
      });
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test('rate limits hold over every period', () => {
  const upPods = 3;
  const downPods = 2;
  const period = 60;
  fc.assert(
    fc.property(fc.array(policyArb, { minLength: 1, maxLength: 2 }), fc.array(roundArb, { minLength: 2, maxLength: 25 }), (policies, rounds) => {
      const policy: ServicePolicy = {
        min: 0,
        max: 200,
        policies,
        behavior: {
          scaleUp: { policies: [{ type: 'Pods', value: upPods, periodSeconds: period }] },
          scaleDown: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: downPods, periodSeconds: period }] },
        },
      };
      const changes: Array<{ at: number; delta: number }> = [];
      simulate(policy, 10, rounds, (input, desired) => {
        changes.push({ at: input.now, delta: desired - input.current });
        const inPeriod = changes.filter((c) => c.at > input.now - period * 1000);
        const up = inPeriod.reduce((s, c) => s + Math.max(0, c.delta), 0);
        const down = inPeriod.reduce((s, c) => s + Math.max(0, -c.delta), 0);
        assert.ok(up <= upPods, `scaled up ${up} within ${period} s`);
        assert.ok(down <= downPods, `scaled down ${down} within ${period} s`);
      });
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test('missing or invalid metrics, or a failed source, never scale down', () => {
  fc.assert(
    fc.property(
      fc.array(policyArb, { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 40 }),
      fc.array(roundArb, { minLength: 1, maxLength: 10 }),
      (policies, start, rounds) => {
        const policy: ServicePolicy = { min: 1, max: 50, policies, behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } };
        simulate(policy, start, rounds, (input, desired) => {
          const values = new Map(input.samples.map((s) => [s.metric, s.value]));
          const bad = (m: string) => {
            const v = values.get(m);
            return v === undefined || !Number.isFinite(v) || v < 0;
          };
          const needs = policies.flatMap((p) =>
            p.kind === 'slo' ? [METRIC.arrivalsTotal, METRIC.serviceTimeMean, METRIC.queueDepth] : [p.metric],
          );
          if (input.sourceFailed || needs.some(bad)) {
            assert.ok(desired >= Math.min(input.current, policy.max), `scaled down from ${input.current} to ${desired} on partial data`);
          }
        });
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

test('the same input gives the same output, and the input is not changed', () => {
  fc.assert(
    fc.property(serviceArb, fc.integer({ min: 0, max: 60 }), fc.array(roundArb, { minLength: 1, maxLength: 10 }), (policy, start, rounds) => {
      simulate(policy, start, rounds, (input) => {
        const copy = structuredClone(input);
        const a = decide(input);
        const b = decide(structuredClone(input));
        assert.deepEqual(a, b);
        // (cloned again: fast-check builds null-prototype records, which a clone turns plain)
        assert.deepEqual(structuredClone(input), copy);
      });
    }),
    { seed: SEED, numRuns: 150 },
  );
});
