// The decision core, one rule at a time: each test asserts the reason code the rule gives.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { decide } from '../../src/core/decide.js';
import { normalTailLog, poissonTailLog } from '../../src/core/arrival-rate.js';
import { absorbedRate, burstRate, estimateRate, recurring, replicasToDrain, startingReplicas } from '../../src/core/slo.js';
import { type DecideInput, type Decision, type History, METRIC, type Sample, type ServicePolicy, emptyHistory } from '../../src/core/types.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0); // a Monday, noon UTC

function samples(values: Record<string, number>, at = T0): Sample[] {
  return Object.entries(values).map(([metric, value]) => ({ metric, value, at }));
}

function run(policy: ServicePolicy, current: number, values: Record<string, number>, extra: Partial<DecideInput> = {}): Decision {
  return decide({ now: T0, current, ready: current, samples: samples(values, extra.now ?? T0), policy, history: emptyHistory(), ...extra });
}

const codes = (d: Decision) => d.reasons.map((r) => r.code);
/** No stabilization, no rate limits: to test a policy's proposal on its own. */
const free = {
  scaleUp: { stabilizationWindowSeconds: 0, policies: [] },
  scaleDown: { stabilizationWindowSeconds: 0, policies: [] },
} satisfies ServicePolicy['behavior'];

describe('target policy', () => {
  test('utilisation form scales by the ratio to the target', () => {
    const policy: ServicePolicy = { min: 1, max: 20, behavior: free, policies: [{ kind: 'target', metric: METRIC.cpu, type: 'utilization', target: 0.6 }] };
    const d = run(policy, 4, { [METRIC.cpu]: 0.9 });
    assert.equal(d.desired, 6);
    assert.ok(codes(d).includes('PolicyProposal'));
  });

  test('within the 0.1 tolerance the count stays', () => {
    const policy: ServicePolicy = { min: 1, max: 20, behavior: free, policies: [{ kind: 'target', metric: METRIC.cpu, type: 'utilization', target: 0.6 }] };
    const d = run(policy, 4, { [METRIC.cpu]: 0.64 });
    assert.equal(d.desired, 4);
    assert.ok(codes(d).includes('WithinTolerance'));
  });

  test('per-replica (AverageValue) form divides the total by the target', () => {
    const policy: ServicePolicy = { min: 1, max: 20, behavior: free, policies: [{ kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 }] };
    assert.equal(run(policy, 5, { [METRIC.queueDepth]: 1000 }).desired, 10);
    assert.equal(run(policy, 5, { [METRIC.queueDepth]: 120 }).desired, 2);
  });
});

describe('steps policy', () => {
  const policy: ServicePolicy = {
    min: 1,
    max: 50,
    behavior: free,
    policies: [{ kind: 'steps', metric: METRIC.queueDepth, up: [{ above: 1000, add: 5 }, { above: 5000, set: 40 }], down: [{ below: 100, remove: 2 }] }],
  };

  test('the highest threshold passed applies', () => {
    assert.equal(run(policy, 4, { [METRIC.queueDepth]: 1500 }).desired, 9);
    assert.equal(run(policy, 4, { [METRIC.queueDepth]: 6000 }).desired, 40);
  });

  test('below the low threshold it removes replicas', () => {
    const d = run(policy, 6, { [METRIC.queueDepth]: 50 });
    assert.equal(d.desired, 4);
    assert.ok(codes(d).includes('PolicyProposal'));
  });

  test('between thresholds it keeps the count', () => {
    const d = run(policy, 6, { [METRIC.queueDepth]: 500 });
    assert.equal(d.desired, 6);
    assert.ok(codes(d).includes('WithinTolerance'));
  });
});

describe('several policies and missing data', () => {
  test('the largest proposal wins', () => {
    const policy: ServicePolicy = {
      min: 1,
      max: 50,
      behavior: free,
      policies: [
        { kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 },
        { kind: 'target', metric: METRIC.cpu, type: 'utilization', target: 0.5 },
      ],
    };
    assert.equal(run(policy, 4, { [METRIC.queueDepth]: 300, [METRIC.cpu]: 1 }).desired, 8);
  });

  test('a missing metric blocks scale-down (MissingMetrics)', () => {
    const policy: ServicePolicy = {
      min: 1,
      max: 50,
      behavior: free,
      policies: [
        { kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 },
        { kind: 'target', metric: METRIC.cpu, type: 'utilization', target: 0.5 },
      ],
    };
    const d = run(policy, 8, { [METRIC.queueDepth]: 100 });
    assert.equal(d.desired, 8);
    assert.equal(d.limitedBy, 'MissingMetrics');
  });

  test('a missing metric still lets the others scale up', () => {
    const policy: ServicePolicy = {
      min: 1,
      max: 50,
      behavior: free,
      policies: [
        { kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 },
        { kind: 'target', metric: METRIC.cpu, type: 'utilization', target: 0.5 },
      ],
    };
    const d = run(policy, 2, { [METRIC.queueDepth]: 900 });
    assert.equal(d.desired, 9);
    assert.ok(codes(d).includes('MissingMetrics'));
  });

  test('NaN, infinite and negative values are invalid and count as missing', () => {
    const policy: ServicePolicy = { min: 1, max: 50, behavior: free, policies: [{ kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 }] };
    for (const bad of [Number.NaN, Infinity, -5]) {
      const d = run(policy, 6, { [METRIC.queueDepth]: bad });
      assert.equal(d.desired, 6);
      assert.ok(codes(d).includes('InvalidMetric'));
      assert.ok(codes(d).includes('MissingMetrics'));
    }
  });

  test('a failed source blocks scale-down even when the policy has its metric', () => {
    const policy: ServicePolicy = { min: 1, max: 50, behavior: free, policies: [{ kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 }] };
    const d = run(policy, 6, { [METRIC.queueDepth]: 100 }, { sourceFailed: true });
    assert.equal(d.desired, 6);
    assert.equal(d.limitedBy, 'MissingMetrics');
  });
});

describe('activation and scale to zero', () => {
  const base: ServicePolicy = { min: 0, max: 10, behavior: free, policies: [{ kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 }] };

  test('without an activation threshold the service never goes to zero', () => {
    const d = run(base, 2, { [METRIC.queueDepth]: 0 });
    assert.equal(d.desired, 1);
    assert.equal(d.limitedBy, 'ActivationThreshold');
  });

  test('at zero it stays there until the metric passes the threshold', () => {
    const policy: ServicePolicy = { ...base, activation: { metric: METRIC.queueDepth, threshold: 5 } };
    const stay = run(policy, 0, { [METRIC.queueDepth]: 3 });
    assert.equal(stay.desired, 0);
    assert.equal(stay.limitedBy, 'ActivationThreshold');
    const wake = run(policy, 0, { [METRIC.queueDepth]: 6 });
    assert.equal(wake.desired, 1);
    assert.ok(codes(wake).includes('ActivationThreshold'));
  });

  test('to zero only after the metric stayed below the threshold for the cooldown', () => {
    const policy: ServicePolicy = { ...base, activation: { metric: METRIC.queueDepth, threshold: 5, cooldownSeconds: 60 } };
    const busy = run(policy, 1, { [METRIC.queueDepth]: 50 });
    const early = decide({ now: T0 + 30_000, current: 1, ready: 1, samples: samples({ [METRIC.queueDepth]: 0 }, T0 + 30_000), policy, history: busy.history });
    assert.equal(early.desired, 1);
    assert.equal(early.limitedBy, 'ActivationThreshold');
    const late = decide({ now: T0 + 61_000, current: 1, ready: 1, samples: samples({ [METRIC.queueDepth]: 0 }, T0 + 61_000), policy, history: early.history });
    assert.equal(late.desired, 0);
    assert.ok(codes(late).includes('ActivationThreshold'));
  });
});

describe('behaviour', () => {
  const depth: ServicePolicy['policies'] = [{ kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 100 }];

  test('the HPA default scale-up limit: max(4 pods, 100%) per 15 s', () => {
    const policy: ServicePolicy = { min: 1, max: 100, policies: depth };
    const first = run(policy, 2, { [METRIC.queueDepth]: 5000 });
    assert.equal(first.desired, 6);
    assert.equal(first.limitedBy, 'ScaleUpLimit');
    // 10 s later the period still starts at 2: no more room.
    const second = decide({ now: T0 + 10_000, current: 6, ready: 6, samples: samples({ [METRIC.queueDepth]: 5000 }, T0 + 10_000), policy, history: first.history });
    assert.equal(second.desired, 6);
    assert.equal(second.limitedBy, 'ScaleUpLimit');
    const third = decide({ now: T0 + 16_000, current: 6, ready: 6, samples: samples({ [METRIC.queueDepth]: 5000 }, T0 + 16_000), policy, history: second.history });
    assert.equal(third.desired, 12);
  });

  test('select Min takes the policy allowing the least change', () => {
    const policy: ServicePolicy = {
      min: 1,
      max: 100,
      policies: depth,
      behavior: { scaleUp: { selectPolicy: 'Min', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 50, periodSeconds: 15 }] } },
    };
    assert.equal(run(policy, 10, { [METRIC.queueDepth]: 5000 }).desired, 14);
    const max: ServicePolicy = { ...policy, behavior: { scaleUp: { ...policy.behavior!.scaleUp, selectPolicy: 'Max' } } };
    assert.equal(run(max, 10, { [METRIC.queueDepth]: 5000 }).desired, 15);
  });

  test('scale-down rate limit per period (ScaleDownLimit)', () => {
    const policy: ServicePolicy = {
      min: 1,
      max: 100,
      policies: depth,
      behavior: { scaleDown: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 2, periodSeconds: 60 }] } },
    };
    const d = run(policy, 10, { [METRIC.queueDepth]: 100 });
    assert.equal(d.desired, 8);
    assert.equal(d.limitedBy, 'ScaleDownLimit');
    const again = decide({ now: T0 + 30_000, current: 8, ready: 8, samples: samples({ [METRIC.queueDepth]: 100 }, T0 + 30_000), policy, history: d.history });
    assert.equal(again.desired, 8);
  });

  test('scale-down stabilization keeps the highest recommendation of the window', () => {
    const policy: ServicePolicy = { min: 1, max: 100, policies: depth };
    const high = run(policy, 10, { [METRIC.queueDepth]: 1000 });
    assert.equal(high.desired, 10);
    const low = decide({ now: T0 + 60_000, current: 10, ready: 10, samples: samples({ [METRIC.queueDepth]: 200 }, T0 + 60_000), policy, history: high.history });
    assert.equal(low.desired, 10);
    assert.equal(low.limitedBy, 'ScaleDownStabilized');
    const later = decide({ now: T0 + 301_000, current: 10, ready: 10, samples: samples({ [METRIC.queueDepth]: 200 }, T0 + 301_000), policy, history: low.history });
    assert.equal(later.desired, 2);
  });

  test('scale-up stabilization keeps the lowest recommendation of the window', () => {
    const policy: ServicePolicy = { min: 1, max: 100, policies: depth, behavior: { scaleUp: { stabilizationWindowSeconds: 60, policies: [] } } };
    const low = run(policy, 2, { [METRIC.queueDepth]: 200 });
    const high = decide({ now: T0 + 30_000, current: 2, ready: 2, samples: samples({ [METRIC.queueDepth]: 900 }, T0 + 30_000), policy, history: low.history });
    assert.equal(high.desired, 2);
    assert.equal(high.limitedBy, 'ScaleUpStabilized');
  });

  test('cooldowns hold a second change in the same direction', () => {
    const policy: ServicePolicy = { min: 1, max: 100, policies: depth, behavior: { scaleUp: { policies: [], cooldownSeconds: 60 } } };
    const first = run(policy, 2, { [METRIC.queueDepth]: 400 });
    assert.equal(first.desired, 4);
    const second = decide({ now: T0 + 30_000, current: 4, ready: 4, samples: samples({ [METRIC.queueDepth]: 900 }, T0 + 30_000), policy, history: first.history });
    assert.equal(second.desired, 4);
    assert.equal(second.limitedBy, 'Cooldown');
  });

  test('min and max bound the result (TooFewReplicas, TooManyReplicas)', () => {
    const policy: ServicePolicy = { min: 3, max: 8, behavior: free, policies: depth };
    assert.equal(run(policy, 4, { [METRIC.queueDepth]: 100 }).limitedBy, 'TooFewReplicas');
    const d = run(policy, 4, { [METRIC.queueDepth]: 5000 });
    assert.equal(d.desired, 8);
    assert.equal(d.limitedBy, 'TooManyReplicas');
  });

  test('a schedule window raises the minimum (ScheduleWindow)', () => {
    const policy: ServicePolicy = { min: 1, max: 20, behavior: free, policies: depth, schedule: [{ cron: '0 11 * * 1-5', durationSeconds: 7200, min: 6 }] };
    const d = run(policy, 2, { [METRIC.queueDepth]: 100 });
    assert.equal(d.desired, 6);
    assert.equal(d.limitedBy, 'TooFewReplicas');
    assert.ok(codes(d).includes('ScheduleWindow'));
    const after = run(policy, 2, { [METRIC.queueDepth]: 100 }, { now: T0 + 2 * 3_600_000 });
    assert.equal(after.desired, 1);
  });

  test('fallback replicas after repeated source failures (FallbackReplicas)', () => {
    const policy: ServicePolicy = { min: 1, max: 20, policies: depth, fallback: { failureThreshold: 3, replicas: 7 } };
    let history: History = emptyHistory();
    let d: Decision | undefined;
    for (let i = 0; i < 3; i++) {
      d = decide({ now: T0 + i * 15_000, current: 2, ready: 2, samples: [], policy, history, sourceFailed: true });
      history = d.history;
      if (i < 2) assert.equal(d.desired, 2);
    }
    assert.equal(d!.desired, 7);
    assert.equal(d!.limitedBy, 'FallbackReplicas');
    const ok = decide({ now: T0 + 60_000, current: 7, ready: 7, samples: samples({ [METRIC.queueDepth]: 700 }, T0 + 60_000), policy, history });
    assert.equal(ok.history.failures, 0);
  });

  test('panic scales up at once past the rate limit and blocks scale-down', () => {
    const policy: ServicePolicy = { min: 1, max: 100, policies: depth, panic: { threshold: 2, windowSeconds: 6, stableWindowSeconds: 60 } };
    const surge = run(policy, 2, { [METRIC.queueDepth]: 3000 });
    assert.equal(surge.desired, 30);
    assert.ok(codes(surge).includes('Panic'));
    assert.ok(surge.history.panicSince !== undefined);
    const calm = decide({
      now: T0 + 20_000,
      current: 30,
      ready: 30,
      samples: samples({ [METRIC.queueDepth]: 100 }, T0 + 20_000),
      policy: { ...policy, behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } },
      history: surge.history,
    });
    assert.equal(calm.desired, 30);
    assert.ok(codes(calm).includes('Panic'));
    const over = decide({
      now: T0 + 61_000,
      current: 30,
      ready: 30,
      samples: samples({ [METRIC.queueDepth]: 100 }, T0 + 61_000),
      policy: { ...policy, behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } },
      history: calm.history,
    });
    assert.equal(over.history.panicSince, undefined);
    assert.equal(over.desired, 1);
  });

  test('an unconstrained change says ScalingActive; no change says DesiredWithinRange', () => {
    const policy: ServicePolicy = { min: 1, max: 20, behavior: free, policies: depth };
    assert.ok(codes(run(policy, 2, { [METRIC.queueDepth]: 400 })).includes('ScalingActive'));
    assert.ok(codes(run(policy, 4, { [METRIC.queueDepth]: 400 })).includes('DesiredWithinRange'));
  });
});

describe('SLO policy', () => {
  const slo: ServicePolicy = {
    min: 1,
    max: 100,
    behavior: free,
    policies: [{ kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10, startupSeconds: 30, scaleInHoldSeconds: 30 }],
  };

  /**
   * A decision every 5 s up to `seconds`, from `start` replicas, each round measuring `at(t)`; the
   * replicas follow each decision at once unless `fixed`, and `each` sees every round's count.
   */
  function rounds(
    policy: ServicePolicy,
    seconds: number,
    start: number,
    at: (t: number) => Record<string, number>,
    options: { fixed?: boolean; each?: (t: number, current: number) => void } = {},
  ): { d: Decision; current: number } {
    let history = emptyHistory();
    let current = start;
    let d: Decision | undefined;
    for (let t = 5; t <= seconds; t += 5) {
      const now = T0 + t * 1000;
      d = decide({ now, current, ready: current, samples: samples(at(t), now), policy, history });
      history = d.history;
      if (!options.fixed) current = d.desired;
      options.each?.(t, current);
    }
    return { d: d!, current };
  }

  /** Steady arrivals at `rate` for `seconds`, a decision every 5 s, replicas applied at once. */
  function steady(policy: ServicePolicy, rate: number, seconds: number, start: number, backlog = 0): { d: Decision; current: number } {
    return rounds(policy, seconds, start, (t) => ({ [METRIC.arrivalsTotal]: rate * t, [METRIC.serviceTimeMean]: 1, [METRIC.serviceTimeScv]: 1, [METRIC.queueDepth]: backlog }));
  }

  test('scales to zero after a silence only when a cold start fits in W', () => {
    // a job of 60 s every 20 s for ten minutes, then twenty minutes of silence
    const idle = (startupSeconds: number): number => {
      const policy: ServicePolicy = {
        min: 0,
        max: 20,
        behavior: free,
        activation: { metric: METRIC.queueDepth, threshold: 0 },
        policies: [{ kind: 'slo', waitSeconds: 60, attainment: 0.99, concurrency: 1, startupSeconds }],
      };
      let history = emptyHistory();
      let current = 5;
      for (let t = 5; t <= 1800; t += 5) {
        const now = T0 + t * 1000;
        const arrivals = Math.floor(Math.min(t, 600) / 20);
        const d = decide({
          now,
          current,
          ready: current,
          samples: samples({ [METRIC.arrivalsTotal]: arrivals, [METRIC.serviceTimeMean]: 60, [METRIC.serviceTimeScv]: 1, [METRIC.completionsTotal]: 2000 + arrivals, [METRIC.queueDepth]: 0 }, now),
          policy,
          history,
        });
        history = d.history;
        current = d.desired;
      }
      return current;
    };
    assert.equal(idle(10), 0);
    // a start-up longer than W: a job arriving at zero would be late, so replicas stay
    assert.ok(idle(90) >= 1);
  });

  test('sizes for the wait target from the arrival rate (SloWaitTarget)', () => {
    const { d } = steady(slo, 100, 60, 12);
    // 100 jobs/s of 1 s on 10-slot replicas: a = 100 erlangs; Erlang C needs a little over 10 replicas.
    assert.ok(d.desired >= 11 && d.desired <= 13, `desired ${d.desired}`);
    assert.ok(codes(d).includes('SloWaitTarget') || codes(d).includes('SloHysteresis'));
  });

  test('too few replicas for the arrival rate: plans for the backlog that builds during start-up', () => {
    // 5 replicas serve 50 jobs/s against 100/s: 1,500 jobs queue during the 30 s start-up, and
    // the new replicas must clear them within W = 10 s of being ready: 5 + 100 / 10 = 15.
    const { d } = steady(slo, 100, 10, 5);
    assert.equal(d.desired, 15);
    assert.equal(d.reasons.find((r) => r.policy === 'slo[0]')?.code, 'SloBacklog');
  });

  test('a lump in the first sub-windows is a backlog to drain, not a level: the wait target waits for three', () => {
    // 20,000 jobs dumped in the first five seconds of 0.6 s jobs, 10 slots, W = 120 s, a 30 s
    // start-up: read as 4,000 jobs/s for good, the wait target would ask for 240 replicas; the
    // backlog drains within the horizon on 1 + (1,200 - 120) / 90 = 13
    const lump: ServicePolicy = { ...slo, max: 300, policies: [{ kind: 'slo', waitSeconds: 120, attainment: 0.99, concurrency: 10, startupSeconds: 30 }] };
    let history = emptyHistory();
    let d: Decision | undefined;
    for (const [t, total] of [[5, 0], [10, 20_000], [15, 20_000]] as const) {
      const now = T0 + t * 1000;
      d = decide({ now, current: 1, ready: 1, samples: samples({ [METRIC.arrivalsTotal]: total, [METRIC.serviceTimeMean]: 0.6, [METRIC.serviceTimeScv]: 0.2, [METRIC.queueDepth]: total }, now), policy: lump, history });
      history = d.history;
      assert.equal(d.desired, t === 5 ? 1 : 13, `at ${t} s`);
      if (t > 5) assert.equal(d.reasons.find((r) => r.policy === 'slo[0]')?.code, 'SloBacklog');
      // the counter is there: the reason says its history is short, not that it is missing
      if (t > 5) assert.match(d.reasons.find((r) => r.policy === 'slo[0]')!.message, /covers under three sub-windows/);
      assert.ok(!codes(d).includes('MissingMetrics'), `at ${t} s: ${codes(d).join(', ')}`);
    }
  });

  test('a backlog asks for the replicas that drain it in time (SloBacklog)', () => {
    const { d } = steady(slo, 10, 5, 2, 5000);
    assert.equal(d.reasons.find((r) => r.policy === 'slo[0]')?.code, 'SloBacklog');
    assert.ok(d.desired > 20, `desired ${d.desired}`);
  });

  test('scale-in waits for the margin and the hold time (SloHysteresis)', () => {
    const policy: ServicePolicy = { ...slo, policies: [{ ...(slo.policies[0] as object), kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10, scaleInHoldSeconds: 30 }] };
    let history = emptyHistory();
    const at = (t: number, total: number) =>
      samples({ [METRIC.arrivalsTotal]: total, [METRIC.serviceTimeMean]: 1, [METRIC.serviceTimeScv]: 1, [METRIC.queueDepth]: 0 }, T0 + t * 1000);
    let d = decide({ now: T0 + 5000, current: 20, ready: 20, samples: at(5, 50), policy, history });
    // a rate that scale-in may follow needs three sub-windows of the counter (20 s)
    for (let t = 10; t <= 20; t += 5) {
      history = d.history;
      d = decide({ now: T0 + t * 1000, current: 20, ready: 20, samples: at(t, t * 10), policy, history });
    }
    assert.equal(d.desired, 20);
    assert.equal(d.reasons.find((r) => r.policy === 'slo[0]')?.code, 'SloHysteresis');
    history = d.history;
    let total = 200;
    for (let t = 25; t <= 55; t += 5) {
      total += 50;
      d = decide({ now: T0 + t * 1000, current: 20, ready: 20, samples: at(t, total), policy, history });
      history = d.history;
    }
    assert.ok(d.desired < 20, `desired ${d.desired}`);
    assert.equal(d.reasons.find((r) => r.policy === 'slo[0]')?.code, 'SloWaitTarget');
  });

  test('a scale-up is not undone within the reversal window (reversalSeconds), and a shorter one gives the replicas back sooner', () => {
    // 1 job/s of 1 s; a backlog of 400 at t = 60 s, gone at 65 s: the count goes up, then back down
    const backDown = (reversalSeconds?: number): { peak: number; at: number } => {
      const policy: ServicePolicy = {
        ...slo,
        behavior: free,
        policies: [{ kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10, scaleInHoldSeconds: 10, ...(reversalSeconds === undefined ? {} : { reversalSeconds }) }],
      };
      let history = emptyHistory();
      let current = 2;
      let peak = 0;
      for (let t = 5; t <= 900; t += 5) {
        const now = T0 + t * 1000;
        const d = decide({
          now,
          current,
          ready: current,
          samples: samples({ [METRIC.arrivalsTotal]: t + (t >= 60 ? 400 : 0), [METRIC.serviceTimeMean]: 1, [METRIC.serviceTimeScv]: 1, [METRIC.queueDepth]: t === 60 ? 400 : 0 }, now),
          policy,
          history,
        });
        history = d.history;
        if (d.desired < current && peak > 0 && t > 60) return { peak, at: t };
        current = d.desired;
        peak = Math.max(peak, current);
      }
      return { peak, at: Infinity };
    };
    const standard = backDown();
    const short = backDown(60);
    assert.ok(standard.peak > 2 && short.peak === standard.peak, `peaks ${standard.peak} ${short.peak}`);
    assert.ok(standard.at >= 60 + 300, `back down at ${standard.at} s, within the default 300 s`);
    assert.ok(short.at >= 60 + 60 && short.at < standard.at, `back down at ${short.at} s with a 60 s window (default: ${standard.at} s)`);
  });

  test('without service-time data it never scales in', () => {
    const d = decide({ now: T0, current: 9, ready: 9, samples: samples({ [METRIC.arrivalsTotal]: 0, [METRIC.queueDepth]: 0 }), policy: slo, history: emptyHistory() });
    assert.equal(d.desired, 9);
    assert.ok(codes(d).includes('MissingMetrics'));
  });

  test('a batch that lands in one interval counts as backlog, not as a lasting rate', () => {
    // 2 jobs/s sampled every 5 s for two minutes, then 20,000 at once.
    const series = Array.from({ length: 25 }, (_, i) => ({ at: i * 5000, value: i * 10 }));
    series.push({ at: 125_000, value: 240 + 20_010 });
    const r = estimateRate(series, 125_000, { kind: 'slo', waitSeconds: 120, attainment: 0.99, concurrency: 10 })!;
    assert.ok(r.fast <= 2.5, `fast ${r.fast}`);
    assert.ok(r.slow <= 2.5, `slow ${r.slow}`);
  });

  test('at zero replicas with jobs waiting and no service time yet, it starts one', () => {
    const policy: ServicePolicy = { ...slo, min: 0 };
    const d = decide({ now: T0, current: 0, ready: 0, samples: samples({ [METRIC.arrivalsTotal]: 40, [METRIC.queueDepth]: 40 }), policy, history: emptyHistory() });
    assert.equal(d.desired, 1);
    assert.equal(d.reasons.find((r) => r.policy === 'slo[0]')?.code, 'SloBacklog');
  });

  test('replicas still starting count from when their scale-up event says they will be ready', () => {
    const events = [
      { at: 0, from: 2, to: 4 },
      { at: 20_000, from: 4, to: 5 },
    ];
    assert.deepEqual(startingReplicas(events, 25_000, 3, 30), [25, 5, 5]);
    assert.deepEqual(startingReplicas(events, 25_000, 4, 30), [25, 5, 5, 30]);
    // 2 ready for 60 s do 120 replica-s; 3 starting, ready in 5, 5 and 25 s, add 55 + 55 + 35.
    assert.equal(replicasToDrain({ backlog: 2000, lambda: 0, serviceTime: 1, concurrency: 10, waitSeconds: 60, startupSeconds: 30, ready: 2, starting: [25, 5, 5] }), 4);
  });

  test('after a drop, the stale median does not scale up; scale-in waits for the burst memory', () => {
    // 150 jobs/s for two minutes, then 5/s.
    const series = Array.from({ length: 25 }, (_, i) => ({ at: i * 5000, value: i * 750 }));
    for (let i = 1; i <= 4; i++) series.push({ at: 120_000 + i * 5000, value: 18_000 + i * 25 });
    const r = estimateRate(series, 140_000, { kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10 })!;
    assert.ok(r.planned <= 6, `planned ${r.planned}`);
    assert.ok(r.cautious >= 140, `cautious ${r.cautious}`);
  });

  test('sparse traffic: a few jobs after a quiet spell are no trend to project over the start-up, unless a start-up does not fit in W', () => {
    // a job every minute and a half, then a few jobs in the last half minute (a generated retry
    // storm's steady level, 0.075 jobs/s, as the controller's counter saw it)
    const counts = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 5, 6, 7, 8];
    const series = counts.map((value, i) => ({ at: i * 5000, value }));
    const fits = estimateRate(series, 130_000, { kind: 'slo', waitSeconds: 60, attainment: 0.99, concurrency: 4, startupSeconds: 20 })!;
    assert.ok(fits.sustained < 0.15, `sustained ${fits.sustained}: no slope projected over the start-up`);
    const late = estimateRate(series, 130_000, { kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 4, startupSeconds: 20 })!;
    assert.ok(late.sustained > fits.sustained, `sustained ${late.sustained}: when a start-up does not fit, the first jobs are the warning`);
  });

  test('an onset in the newest sub-windows is projected over the start-up only when W holds no second start-up; a ramp always', () => {
    // counter points every 5 s for 130 s at a rate given over time
    const counted = (rate: (t: number) => number) => {
      const series = [{ at: 0, value: 0 }];
      for (let t = 5, v = 0; t <= 130; t += 5) series.push({ at: t * 1000, value: Math.round((v += rate(t - 2.5) * 5)) });
      return series;
    };
    const onset = counted((t) => (t < 100 ? 20 : 20 + ((t - 100) * 40) / 30));
    const ramp = counted((t) => 10 + (t * 50) / 130);
    const at = (series: Array<{ at: number; value: number }>, waitSeconds: number) =>
      estimateRate(series, 130_000, { kind: 'slo', waitSeconds, attainment: 0.99, concurrency: 4, startupSeconds: 20 })!;
    // W 60 s holds two 20 s start-ups: a step misread is corrected in time, so none is projected
    assert.ok(at(onset, 60).sustained < 25, `sustained ${at(onset, 60).sustained}`);
    assert.ok(at(onset, 30).sustained > 25, `sustained ${at(onset, 30).sustained}`);
    // a ramp climbs in both halves of the window: projected either way
    for (const w of [60, 30]) assert.ok(at(ramp, w).sustained > at(ramp, w).fast, `W ${w}: sustained ${at(ramp, w).sustained}`);
  });

  test('a step up in both newest sub-windows wins at once (the fast rate)', () => {
    const series = Array.from({ length: 25 }, (_, i) => ({ at: i * 5000, value: i * 100 }));
    series.push({ at: 125_000, value: 2400 + 1000 }, { at: 130_000, value: 3400 + 1000 });
    const r = estimateRate(series, 130_000, { kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10 })!;
    assert.ok(r.rising);
    assert.equal(r.planned, 200);
  });

  test('a jump in the newest sub-window alone is planned at once; ordinary noise is not', () => {
    // 20 jobs/s for two minutes, then one 5-s sub-window at 200/s (a flash crowd's first round).
    const series = Array.from({ length: 25 }, (_, i) => ({ at: i * 5000, value: i * 100 }));
    series.push({ at: 125_000, value: 2400 + 1000 });
    const policy = { kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10, startupSeconds: 30 } as const;
    const r = estimateRate(series, 125_000, policy)!;
    assert.ok(!r.rising && r.jumped);
    assert.equal(r.planned, 200);
    // a sub-window at 1.5x the level (30/s, 4.7 deviations) is noise or a trend, not a jump
    const calm = Array.from({ length: 25 }, (_, i) => ({ at: i * 5000, value: i * 100 }));
    calm.push({ at: 125_000, value: 2400 + 150 });
    const c = estimateRate(calm, 125_000, policy)!;
    assert.ok(!c.jumped);
    assert.ok(c.planned <= 21, `planned ${c.planned}`);
  });

  test('at a job or two per sub-window, a jump is judged by the Poisson tail, not six normal deviations', () => {
    // one job every 5 s for two minutes, then one sub-window with k jobs
    const policy = { kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10, startupSeconds: 30 } as const;
    const withNewest = (k: number) => {
      const series = Array.from({ length: 25 }, (_, i) => ({ at: i * 5000, value: i }));
      series.push({ at: 125_000, value: 24 + k });
      return estimateRate(series, 125_000, policy)!;
    };
    // 7 jobs where 1 is usual: past six normal deviations (1 + 6 x 1), but P = 8e-5 for Poisson(1),
    // which a peak of a few jobs a sub-window reaches several times an hour
    assert.equal(withNewest(7).jumped, false);
    // 11: P = 1e-8, not yet as rare as six deviations' 1e-9; 12: P = 8e-10, a jump
    assert.equal(withNewest(11).jumped, false);
    assert.equal(withNewest(12).jumped, true);
    // monotone in the count
    let seen = false;
    for (let k = 2; k <= 40; k++) {
      const j = withNewest(k).jumped;
      assert.ok(!seen || j, `${k} jobs: a jump below it but not here`);
      seen ||= j;
    }
  });

  test('the Poisson tail against exact sums, and the normal tail at six deviations', () => {
    const exact = (k: number, mu: number) => {
      let term = Math.exp(-mu);
      let cdf = 0;
      for (let i = 0; i < k; i++) {
        cdf += term;
        term *= mu / (i + 1);
      }
      return 1 - cdf;
    };
    for (const [k, mu] of [[7, 1], [10, 2.5], [20, 8]] as const) {
      const bound = Math.exp(poissonTailLog(k, mu));
      assert.ok(bound >= exact(k, mu) * 0.999 && bound <= exact(k, mu) * 1.3, `${k}, ${mu}: ${bound} against ${exact(k, mu)}`);
    }
    assert.equal(poissonTailLog(3, 5), 0);
    assert.ok(Math.abs(Math.exp(normalTailLog(6)) / 9.8659e-10 - 1) < 0.01);
  });

  test('on a jump with start-up longer than W, the backlog part asks for the flash crowd at once', () => {
    // 3 replicas at 20 jobs/s, then 200/s for one round: 30 s of 200/s arrive before new replicas help.
    let history = emptyHistory();
    let d: Decision | undefined;
    for (let t = 5; t <= 125; t += 5) {
      const now = T0 + t * 1000;
      const arrivals = t <= 120 ? 20 * t : 2400 + 200 * (t - 120);
      const backlog = t <= 120 ? 0 : 850;
      d = decide({
        now,
        current: 3,
        ready: 3,
        samples: samples({ [METRIC.arrivalsTotal]: arrivals, [METRIC.serviceTimeMean]: 1, [METRIC.serviceTimeScv]: 1, [METRIC.queueDepth]: backlog, [METRIC.oldestAge]: t <= 120 ? 0 : 4.5 }, now),
        policy: slo,
        history,
      });
      history = d.history;
    }
    assert.ok(d!.desired >= 50, `desired ${d!.desired}`);
    assert.equal(d!.reasons.find((r) => r.policy === 'slo[0]')?.code, 'SloBacklog');
  });

  /** A counter sampled every 5 s over `seconds`, from per-second rates. */
  function counter(rateAt: (t: number) => number, seconds: number): Array<{ at: number; value: number }> {
    const out = [{ at: 0, value: 0 }];
    let total = 0;
    for (let t = 0; t < seconds; t++) {
      total += rateAt(t);
      if ((t + 1) % 5 === 0) out.push({ at: (t + 1) * 1000, value: total });
    }
    return out;
  }
  /** On/off: `on` seconds at 150 jobs/s, then `off` seconds at 10. */
  const onOff = (on: number, off: number) => (t: number) => (t % (on + off) < on ? 150 : 10);
  /** What a round at `t` of on/off traffic measures: every job done, 0.5 s jobs of scv 4, none waiting. */
  const onOffRound = (rateAt: (t: number) => number, t: number) => {
    const arrivals = counter(rateAt, t).at(-1)!.value;
    return { [METRIC.arrivalsTotal]: arrivals, [METRIC.completionsTotal]: arrivals, [METRIC.serviceTimeMean]: 0.5, [METRIC.serviceTimeScv]: 4, [METRIC.queueDepth]: 0 };
  };

  test('burst envelope: the service rate under which every burst drains within its share of W', () => {
    // 20 s at 150/s then 20 s at 10/s: one burst of 3,000 jobs needs 3000 / (20 + w) jobs/s.
    const series = counter(onOff(20, 20), 240);
    assert.ok(Math.abs(burstRate(series, 240_000, 5000, 120, 2.5)! - 3000 / 22.5) < 1e-9);
    assert.ok(Math.abs(burstRate(series, 240_000, 5000, 120, 5)! - 3000 / 25) < 1e-9);
    // a lump in one sub-window is backlog, not a burst: it is clipped to its neighbours
    const lump = counter((t) => (t >= 100 && t < 101 ? 20_000 : 2), 240);
    assert.ok(burstRate(lump, 240_000, 5000, 120, 5)! <= 2, `${burstRate(lump, 240_000, 5000, 120, 5)}`);
  });

  test('a swing back to a level seen within the reversal window is absorbed; a new level is not', () => {
    // 60 jobs/s with 20-s swings to 120/s every 80 s, for five minutes: the swings are noise
    const swings = (t: number) => (t % 80 < 20 ? 120 : 60);
    const series = counter(swings, 300);
    const now = 300_000;
    const absorbed = absorbedRate(series, now, 5000, 120, 10)!;
    assert.ok(absorbed !== undefined && absorbed < 120, `absorbed ${absorbed}`);
    // the envelope: at least the mean, and a longer budget absorbs more (never less)
    assert.ok(absorbed >= 60);
    assert.ok(absorbedRate(series, now, 5000, 120, 40)! <= absorbed);
    // a level above anything in the window is planned as it is
    assert.equal(absorbedRate(series, now, 5000, 200, 10), undefined);
    // from quiet to a burst: nothing of the kind was seen, nothing is absorbed
    const fromQuiet = counter((t) => (t < 290 ? 0 : 120), 300);
    assert.equal(absorbedRate(fromQuiet, now, 5000, 120, 10), undefined);
    // the policy only absorbs when a start-up fits in W (else it could not correct in time)
    const policy = { kind: 'slo', waitSeconds: 40, attainment: 0.99, concurrency: 10 } as const;
    assert.ok(estimateRate(series, now, { ...policy, startupSeconds: 10 })!.absorbed !== undefined);
    assert.equal(estimateRate(series, now, { ...policy, startupSeconds: 60 })!.absorbed, undefined);
  });

  test('steady traffic read over ten minutes keeps the noise margin of a ten-minute mean when a start-up fits in W', () => {
    // 0.05 jobs/s (a job every 20 s) for fifteen minutes: sparse, steady
    const series = counter((t) => (t % 20 === 0 ? 1 : 0), 900);
    const policy = { kind: 'slo', waitSeconds: 60, attainment: 0.99, concurrency: 1 } as const;
    const quick = estimateRate(series, 900_000, { ...policy, startupSeconds: 10 })!;
    const slow = estimateRate(series, 900_000, { ...policy, startupSeconds: 90 })!;
    assert.ok(Math.abs(quick.planned - 0.05) < 0.01, `planned ${quick.planned}`);
    assert.ok(quick.cautious < slow.cautious, `${quick.cautious} vs ${slow.cautious}`);
    // two deviations of a rate read over 600 + 60 s, twice (the plan's factor): about 0.035 above
    assert.ok(quick.cautious - quick.planned < 0.04, `margin ${quick.cautious - quick.planned}`);
    assert.ok(slow.cautious - slow.planned > 0.05, `margin ${slow.cautious - slow.planned}`);
  });

  test('bursts recur when the rates swing far and climb across their middle again and again', () => {
    const rates = (f: (t: number) => number, seconds: number) => Array.from({ length: seconds / 5 }, (_, i) => f(seconds - 5 * (i + 1)));
    assert.ok(recurring(rates(onOff(20, 20), 300), 5));
    assert.ok(!recurring(rates((t) => (t < 150 ? 20 : 200), 300), 5), 'a step up');
    assert.ok(!recurring(rates((t) => (t < 150 ? 200 : 20), 300), 5), 'a step down');
    assert.ok(!recurring(rates((t) => 100 + (t % 10 === 0 ? 6 : -6), 300), 5), 'noise around a level');
    // recurring bursts are remembered for the reversal window, a single one for the burst memory
    const old = counter((t) => (t >= 10 && t < 130 ? onOff(20, 20)(t - 10) : 10), 300);
    assert.ok(burstRate(old, 300_000, 5000, 120, 2.5, 300)! > 130);
    const single = counter((t) => (t < 60 ? 150 : 10), 300);
    assert.ok(burstRate(single, 300_000, 5000, 120, 2.5, 300)! < 20);
  });

  test('on/off traffic: no trend is read from it, and the fleet the bursts need is held, not the on rate\'s', () => {
    const series = counter(onOff(25, 15), 400);
    const policy = { kind: 'slo', waitSeconds: 5, attainment: 0.99, concurrency: 8, startupSeconds: 2 } as const;
    const r = estimateRate(series, 400_000, policy)!;
    // the median is the on rate (25 s of every 40); the plan is the mean, the bursts the envelope's
    assert.ok(r.slow >= 140, `slow ${r.slow}`);
    assert.ok(r.sustained <= 110, `sustained ${r.sustained}`);
    assert.ok(r.burstDown > 130 && r.burstDown < 140, `burst ${r.burstDown}`);
    // through decide(): 9 replicas of 8 slots at 0.5 s serve 144 jobs/s, enough for 25 s bursts
    // of 150/s; once it has seen a few bursts (the first 10 s look like a steady 150/s, and a
    // scale-up holds 300 s) it neither sizes for the on rate (10) nor goes below what bursts need
    const bursty: ServicePolicy = { min: 1, max: 40, behavior: free, policies: [{ ...policy }] };
    for (const start of [9, 12]) {
      const seen = new Set<number>();
      rounds(bursty, 900, start, (t) => onOffRound(onOff(25, 15), t), { each: (t, current) => t > 400 && seen.add(current) });
      assert.deepEqual([...seen], [9], `from ${start}`);
    }
  });

  test('recurring bursts: the onset of each burst (a step up) does not block scale-in', () => {
    // 10 s at 150/s every 30 s: some burst starts in every 30 s scale-down window; the envelope
    // (1,500 jobs in 10 + 2.5 s: 120/s, 7.5 replicas of 8 slots at 0.5 s) is what must be held
    const policy: ServicePolicy = {
      min: 1,
      max: 40,
      policies: [{ kind: 'slo', waitSeconds: 5, attainment: 0.99, concurrency: 8, startupSeconds: 2 }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 30, policies: [] } },
    };
    assert.equal(rounds(policy, 900, 12, (t) => onOffRound(onOff(10, 20), t)).current, 8);
  });

  test('the envelope of recurring bursts is planned for only while jobs wait within its share of W', () => {
    // swings between 10 and 40 jobs/s for five minutes, then 40/s that lasts: the swings recur,
    // so the wait target plans for the envelope (what drains each burst within W/2), which is
    // below 40/s; once a job has waited past W/2 the level is not such a burst, and 40/s is planned
    const policy: ServicePolicy = {
      min: 1,
      max: 100,
      behavior: free,
      policies: [{ kind: 'slo', waitSeconds: 100, attainment: 0.99, concurrency: 1, startupSeconds: 30 }],
    };
    const rateAt = (t: number) => (t >= 300 || t % 40 < 20 ? 40 : 10);
    const last = (oldest: number) =>
      rounds(
        policy,
        420,
        30,
        (t) => {
          const arrivals = counter(rateAt, t).at(-1)!.value;
          const waiting = t === 420 ? { [METRIC.queueDepth]: 40, [METRIC.oldestAge]: oldest } : { [METRIC.queueDepth]: 0, [METRIC.oldestAge]: 0 };
          return { [METRIC.arrivalsTotal]: arrivals, [METRIC.completionsTotal]: arrivals, [METRIC.serviceTimeMean]: 1, [METRIC.serviceTimeScv]: 1, ...waiting };
        },
        { fixed: true },
      ).d.desired;
    // 40 jobs/s of 1 s jobs on one slot each: more than 40 replicas for the wait target
    assert.ok(last(0) < 40, `within the share: ${last(0)}`);
    assert.ok(last(35) < 40, `past W/4 (the absorbed swing's share) but within W/2: ${last(35)}`);
    assert.ok(last(60) > 40, `past W/2: ${last(60)}`);
  });

  test('flap damping: a scale-up soon after a scale-down makes the next scale-in wait longer', () => {
    const policy: ServicePolicy = {
      min: 1,
      max: 100,
      behavior: free,
      policies: [{ kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10, scaleInHoldSeconds: 20 }],
    };
    const at = (t: number, total: number, depth = 0) =>
      samples({ [METRIC.arrivalsTotal]: total, [METRIC.serviceTimeMean]: 1, [METRIC.queueDepth]: depth, [METRIC.completionsTotal]: total }, T0 + t * 1000);
    // A history where the service scaled down 100 s ago.
    const history: History = { ...emptyHistory(), events: [{ at: T0 - 100_000, from: 12, to: 10 }] };
    const up = decide({ now: T0, current: 10, ready: 10, samples: at(0, 0, 3000), policy, history });
    assert.ok(up.desired > 10);
    const state = up.history.state['policy:slo[0]'] as { damping: { level: number } };
    assert.equal(state.damping.level, 1);
  });

  test('drain: new replicas count only from when they are ready', () => {
    // 20,000 jobs of 0.6 s on 10-slot replicas within 120 s, start-up 30 s, 1 ready replica.
    const n = replicasToDrain({ backlog: 20_000, lambda: 0, serviceTime: 0.6, concurrency: 10, waitSeconds: 120, startupSeconds: 30, ready: 1 });
    // 1 replica serves 120 s; each new one 90 s: 1200 replica-s of work -> 1 + ceil(1080 / 90) = 13.
    assert.equal(n, 13);
  });
});

describe('the SLO policy during warm-up (fewer than 1,000 completions)', () => {
  // A steady fleet (4 slots a replica), 2 jobs/s of 5 s jobs: 10 jobs in flight. One round
  // reads every slot busy (a burst of long jobs just started), then the figures go back to normal.
  const policy: ServicePolicy = { min: 1, max: 40, policies: [{ kind: 'slo', waitSeconds: 10, attainment: 0.95, concurrency: 4 }] };
  const round = (history: History, now: number, inFlight: number, current: number): Decision => {
    const t = now * 1000;
    const samples: Sample[] = [
      { metric: METRIC.queueDepth, value: 0, at: t },
      { metric: METRIC.oldestAge, value: 0, at: t },
      { metric: METRIC.arrivalsTotal, value: 2 * now, at: t },
      { metric: METRIC.completionsTotal, value: 2 * now, at: t },
      { metric: METRIC.inFlight, value: inFlight, at: t },
      { metric: METRIC.serviceTimeMean, value: 5, at: t },
      { metric: METRIC.serviceTimeScv, value: 1, at: t },
    ];
    return decide({ now: t, current, ready: current, samples, policy, history });
  };
  const little = (d: Decision): number => ((d.history.state['policy:slo[0]'] as { little?: { mean: number } }).little?.mean ?? Number.NaN);

  test("one noisy in-flight reading moves Little's-law estimate by its share of the window's mean, at the one-minute smoothing weight", () => {
    let history = emptyHistory();
    let d: Decision | undefined;
    for (let now = 5; now <= 600; now += 5) {
      d = round(history, now, 10, d?.desired ?? 10);
      history = d.history;
    }
    assert.ok(Math.abs(little(d!) - 5) < 0.01, `steady: ${little(d!)}`);
    // every slot of the fleet busy at once (and jobs claimed ahead beyond the slots, which do
    // not count: they are waiting)
    const slots = d!.desired * 4;
    const spike = round(history, 605, slots + 30, d!.desired);
    const weight = 1 - Math.exp(-5 / 60);
    // Little's law on the slow window's mean in flight: the 23 rounds before (490..600 s) and this one
    const mean = (23 * 10 + slots) / 24;
    assert.ok(Math.abs(little(spike) - (5 + weight * (mean / 2 - 5))) < 0.01, `after the spike: ${little(spike)}`);
    // and the count it asks for stays where the steady figures put it
    assert.ok(spike.desired <= d!.desired + 1, `${d!.desired} -> ${spike.desired}`);
  });

  test("a first Little's-law reading weighs the completions in the span it covers, not the window's length", () => {
    // the first two rounds: 2 jobs done in 5 s with 8 in flight reads 20 s, off two completions
    // (a tenth of full weight), not as if 0.4 a second had run for the whole 120 s window
    let history = emptyHistory();
    const at = (now: number, done: number, inFlight: number): Decision => {
      const t = now * 1000;
      const samples: Sample[] = [
        { metric: METRIC.queueDepth, value: 0, at: t },
        { metric: METRIC.oldestAge, value: 0, at: t },
        { metric: METRIC.arrivalsTotal, value: done + inFlight, at: t },
        { metric: METRIC.completionsTotal, value: done, at: t },
        { metric: METRIC.inFlight, value: inFlight, at: t },
        { metric: METRIC.serviceTimeMean, value: 1, at: t },
        { metric: METRIC.serviceTimeScv, value: 1, at: t },
      ];
      const d = decide({ now: t, current: 2, ready: 2, samples, policy, history });
      history = d.history;
      return d;
    };
    at(5, 0, 8);
    const d = at(10, 2, 8);
    assert.ok(Math.abs(little(d) - 2) < 1e-9, `little ${little(d)}`);
  });

  test('jobs longer than the window: the window cannot show them, so Little reads the count now', () => {
    // 300 s jobs at 0.02/s: 6 in flight, a reading of 300 s, which a 120 s window cannot hold
    const long: ServicePolicy = { min: 1, max: 40, policies: [{ kind: 'slo', waitSeconds: 400, attainment: 0.95, concurrency: 4 }] };
    const at = (history: History, now: number, inFlight: number): Decision => {
      const t = now * 1000;
      const samples: Sample[] = [
        { metric: METRIC.queueDepth, value: 0, at: t },
        { metric: METRIC.oldestAge, value: 0, at: t },
        { metric: METRIC.arrivalsTotal, value: 0.02 * now, at: t },
        { metric: METRIC.completionsTotal, value: 0.02 * now, at: t },
        { metric: METRIC.inFlight, value: inFlight, at: t },
        { metric: METRIC.serviceTimeMean, value: 300, at: t },
        { metric: METRIC.serviceTimeScv, value: 1, at: t },
      ];
      return decide({ now: t, current: 3, ready: 3, samples, policy: long, history });
    };
    let history = emptyHistory();
    for (let now = 5; now <= 600; now += 5) history = at(history, now, 6).history;
    const d = at(history, 605, 12);
    // the count now (12 / 0.02 = 600 s) weighs in, at the smoothing weight times the reliability
    // of 2.4 completions in the window (of 20 for full weight); the window's mean would read 312.5 s
    const weight = (1 - Math.exp(-5 / 60)) * (0.02 * 120) / 20;
    assert.ok(Math.abs(little(d) - (300 + weight * (600 - 300))) < 0.01, `little ${little(d)}`);
  });
});

describe('the SLO policy on steady traffic and on a saturated fleet', () => {
  const slo = { kind: 'slo' as const, waitSeconds: 10, attainment: 0.99, concurrency: 10 };
  // a counter sampled every 5 s whose increments are a seeded noisy draw around `mean` a second
  const noisy = (mean: number, seconds: number, seed: number, step?: { at: number; mean: number }) => {
    let x = seed;
    let total = 0;
    const out = [{ at: 0, value: 0 }];
    for (let t = 5; t <= seconds; t += 5) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const m = step && t > step.at ? step.mean : mean;
      total += Math.round(5 * m * (0.7 + 0.6 * (x / 2147483648)));
      out.push({ at: t * 1000, value: total });
    }
    return out;
  };

  test('on steady traffic the level is read over ten minutes: steadier than the two-minute mean', () => {
    const levels: number[] = [];
    const shortMeans: number[] = [];
    for (let seed = 1; seed <= 30; seed++) {
      const series = noisy(20, 900, seed);
      levels.push(estimateRate(series, 900_000, slo)!.sustained);
      shortMeans.push((series.at(-1)!.value - series.find((p) => p.at === 780_000)!.value) / 120);
    }
    const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - 20) ** 2, 0) / xs.length);
    assert.ok(sd(levels) < sd(shortMeans) / 1.3, `level deviation ${sd(levels)} against the two-minute mean's ${sd(shortMeans)}`);
  });

  test('when a start-up takes W, the long window may raise the level but never lower it', () => {
    // 20 jobs/s for eight minutes, then 21/s: the ten-minute mean (20.2/s) is within the noise of
    // the two-minute one (21/s), so it is the level when a late level can still be corrected
    const series = [{ at: 0, value: 0 }];
    for (let t = 5; t <= 600; t += 5) series.push({ at: t * 1000, value: series.at(-1)!.value + 5 * (t > 480 ? 21 : 20) });
    const loose = estimateRate(series, 600_000, { ...slo, startupSeconds: 5 })!;
    const tight = estimateRate(series, 600_000, { ...slo, startupSeconds: 30 })!;
    assert.ok(Math.abs(loose.sustained - 20.2) < 0.01, `a start-up within W: ${loose.sustained}`);
    assert.ok(tight.sustained >= 21 - 1e-9, `a start-up past W: ${tight.sustained}`);
  });

  test('a step up is not averaged away by the long window', () => {
    const r = estimateRate(noisy(20, 900, 7, { at: 860, mean: 60 }), 900_000, slo)!;
    assert.ok(r.rising && r.planned > 45, JSON.stringify(r));
  });

  const saturatedRound = (oldest: number) => {
    // 3 replicas x 10 slots all busy, 3 completions/s over a steady fleet: S is 10 s by Little's
    // law, while the completed jobs' mean reads 2 s; past the warm-up (2,000 jobs done before)
    let history = emptyHistory();
    let d: Decision | undefined;
    const policy: ServicePolicy = { min: 1, max: 40, policies: [{ ...slo, waitSeconds: 30 }] };
    for (let now = 5; now <= 300; now += 5) {
      const t = now * 1000;
      const samples: Sample[] = [
        { metric: METRIC.queueDepth, value: 50, at: t },
        { metric: METRIC.oldestAge, value: now === 300 ? oldest : 5, at: t },
        { metric: METRIC.arrivalsTotal, value: 3 * now, at: t },
        { metric: METRIC.completionsTotal, value: 2000 + 3 * now, at: t },
        { metric: METRIC.inFlight, value: 30, at: t },
        { metric: METRIC.serviceTimeMean, value: 2, at: t },
        { metric: METRIC.serviceTimeScv, value: 1, at: t },
      ];
      d = decide({ now: t, current: 3, ready: 3, samples, policy, history });
      history = { ...d.history, events: [], recommendations: [] };
    }
    return d!;
  };

  test('the saturated fleet is read since the oldest job started waiting, not over quieter times before', () => {
    // 1 completion a second until 260 s, then 3 a second with every one of the 30 slots busy and
    // the oldest job waiting 40 s: 30 / 3 = 10 s; over the whole 120 s window (1.67 a second) 18 s
    let history = emptyHistory();
    let d: Decision | undefined;
    const policy: ServicePolicy = { min: 1, max: 40, policies: [{ ...slo, waitSeconds: 30 }] };
    for (let now = 5; now <= 300; now += 5) {
      const t = now * 1000;
      const done = now <= 260 ? now : 260 + 3 * (now - 260);
      const samples: Sample[] = [
        { metric: METRIC.queueDepth, value: now > 260 ? 50 : 0, at: t },
        { metric: METRIC.oldestAge, value: now > 260 ? now - 260 : 0, at: t },
        { metric: METRIC.arrivalsTotal, value: done + (now > 260 ? 50 : 0), at: t },
        { metric: METRIC.completionsTotal, value: 2000 + done, at: t },
        { metric: METRIC.inFlight, value: now > 260 ? 30 : 1, at: t },
        { metric: METRIC.serviceTimeMean, value: 1, at: t },
        { metric: METRIC.serviceTimeScv, value: 1, at: t },
      ];
      d = decide({ now: t, current: 3, ready: 3, samples, policy, history });
      history = { ...d.history, events: [], recommendations: [] };
    }
    assert.match(d!.reasons.map((r) => r.message).join(' '), /service 10 s/);
  });

  test('with jobs already past W, the service time is at least what the saturated fleet shows', () => {
    const late = saturatedRound(40);
    const onTime = saturatedRound(20);
    assert.match(late.reasons.map((r) => r.message).join(' '), /service 10 s/);
    assert.match(onTime.reasons.map((r) => r.message).join(' '), /service 2 s/);
    assert.ok(late.desired > onTime.desired, `${onTime.desired} on time, ${late.desired} late`);
  });
});

describe('the SLO policy: the service-time estimate carries the jobs behind it', () => {
  // 4 jobs/s; the first reading (mean of a few jobs) says 0.3 s, every later one 0.2 s.
  const policy: ServicePolicy = { min: 1, max: 40, policies: [{ kind: 'slo', waitSeconds: 5, attainment: 0.99, concurrency: 4 }] };
  const serviceAfter = (firstCompletions: number, rounds: number): number => {
    let history = emptyHistory();
    let d: Decision | undefined;
    for (let i = 0; i <= rounds; i++) {
      const now = 5 + 5 * i;
      const t = now * 1000;
      const samples: Sample[] = [
        { metric: METRIC.queueDepth, value: 0, at: t },
        { metric: METRIC.arrivalsTotal, value: 4 * now, at: t },
        { metric: METRIC.completionsTotal, value: firstCompletions + 20 * i, at: t },
        { metric: METRIC.serviceTimeMean, value: i === 0 ? 0.3 : 0.2, at: t },
        { metric: METRIC.serviceTimeScv, value: 1, at: t },
      ];
      d = decide({ now: t, current: 2, ready: 2, samples, policy, history });
      history = d.history;
    }
    return Number(/service ([\d.]+) s/.exec(d!.reasons.map((r) => r.message).join(' '))![1]);
  };

  test('a first reading off two jobs gives way to the next twenty', () => {
    assert.ok(serviceAfter(2, 1) < 0.215, String(serviceAfter(2, 1)));
  });

  test('one backed by thousands of jobs moves by about a tenth per twenty new ones', () => {
    const s = serviceAfter(5000, 1);
    assert.ok(s > 0.285 && s < 0.295, String(s));
  });

  // Rounds each seeing one new job: its own window's scv is 0, however the jobs vary.
  const scvAfter = (readings: ReadonlyArray<{ mean: number; scv: number }>): number => {
    let history = emptyHistory();
    let d: Decision | undefined;
    readings.forEach((r, i) => {
      const t = (5 + 5 * i) * 1000;
      const samples: Sample[] = [
        { metric: METRIC.queueDepth, value: 0, at: t },
        { metric: METRIC.arrivalsTotal, value: i, at: t },
        { metric: METRIC.completionsTotal, value: i, at: t },
        { metric: METRIC.serviceTimeMean, value: r.mean, at: t },
        { metric: METRIC.serviceTimeScv, value: r.scv, at: t },
      ];
      d = decide({ now: t, current: 2, ready: 2, samples, policy, history });
      history = d.history;
    });
    return Number(/\(scv ([\d.]+)\)/.exec(d!.reasons.map((r) => r.message).join(' '))![1]);
  };

  test('the variability pools the readings: jobs of 1 s and 3 s, one per window, have scv 0.25, not 0', () => {
    // mean 2 s, second moment (1 + 9) / 2 = 5, so scv = 5 / 4 - 1
    const scv = scvAfter(Array.from({ length: 600 }, (_, i) => ({ mean: i % 2 === 0 ? 1 : 3, scv: 0 })));
    assert.ok(Math.abs(scv - 0.25) < 0.02, String(scv));
  });

  test('readings that agree keep their scv', () => {
    for (const v of [0, 0.5, 4]) assert.equal(scvAfter(Array.from({ length: 50 }, () => ({ mean: 2, scv: v }))), v);
  });

  test('the estimate moves monotonically towards the new readings', () => {
    let prev = 0.3;
    for (let rounds = 1; rounds <= 6; rounds++) {
      const s = serviceAfter(500, rounds);
      assert.ok(s <= prev && s >= 0.2, `${rounds} rounds: ${s}`);
      prev = s;
    }
  });
});
