// The decision core across rounds (core/decider.ts): the history is carried from round to
// round, and a held round (dry run, pause) charges no scale event to the rate limits.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Decider } from '../../src/core/decider.js';
import { decide } from '../../src/core/decide.js';
import { METRIC, type ServicePolicy, emptyHistory } from '../../src/core/types.js';

const policy: ServicePolicy = {
  min: 1,
  max: 20,
  policies: [{ kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 10 }],
  // at most one more replica per minute: the rate limit shows whether a scale event was charged
  behavior: { scaleUp: { policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
};
const depth = (value: number, at: number) => [{ metric: METRIC.queueDepth, value, at }];

test('rounds carry the history: the same as decide() with the returned history passed back', () => {
  const decider = new Decider(policy);
  let history = emptyHistory();
  for (let i = 0; i < 6; i++) {
    const input = { now: i * 5000, current: 1 + i, ready: 1 + i, samples: depth(100 + 40 * i, i * 5000) };
    const direct = decide({ ...input, policy, history });
    history = direct.history;
    assert.deepEqual(decider.round(input), direct);
  }
});

test('a held round charges no scale event: the next round may still scale', () => {
  const held = new Decider(policy);
  const first = held.round({ now: 0, current: 1, ready: 1, samples: depth(100, 0) }, { held: true });
  assert.equal(first.desired, 2, 'it would scale out by one');
  assert.equal(held.round({ now: 5000, current: 1, ready: 1, samples: depth(100, 5000) }).desired, 2, 'the held scale used none of the minute');

  const applied = new Decider(policy);
  applied.round({ now: 0, current: 1, ready: 1, samples: depth(100, 0) });
  assert.equal(applied.round({ now: 5000, current: 2, ready: 2, samples: depth(100, 5000) }).desired, 2, 'the applied one did: no more this minute');
});

test('memory(): only what outlives a restart (the SLO policy\'s arrivals per minute), and a Decider given it goes on from it', () => {
  const slo: ServicePolicy = { min: 1, max: 10, policies: [{ kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 4, startupSeconds: 5 }] };
  const samples = (at: number, arrivals: number) => [
    { metric: METRIC.arrivalsTotal, value: arrivals, at },
    { metric: METRIC.queueDepth, value: 0, at },
    { metric: METRIC.serviceTimeMean, value: 1, at },
    { metric: METRIC.completionsTotal, value: arrivals, at },
  ];
  const first = new Decider(slo);
  for (let m = 0; m <= 3; m++) first.round({ now: m * 60_000, current: 1, ready: 1, samples: samples(m * 60_000, 100 * m) });
  const memory = first.memory();
  const kept = Object.values(memory);
  assert.equal(kept.length, 1);
  assert.deepEqual(Object.keys(kept[0]!), ['season'], 'no smoothed estimates or hold timers: those are about the last minutes');
  assert.deepEqual((kept[0]!.season as { counts: number[] }).counts, [100, 100, 100]);
  const elsewhere = new Decider({ ...slo, policies: [{ ...slo.policies[0]!, name: 'renamed' } as ServicePolicy['policies'][number]] }, memory);
  elsewhere.round({ now: 4 * 60_000, current: 1, ready: 1, samples: samples(4 * 60_000, 400) });
  assert.deepEqual(Object.keys(elsewhere.memory()), ['policy:renamed'], 'memory of a policy no longer there is neither restored nor kept');
  assert.deepEqual((Object.values(elsewhere.memory())[0]!.season as { counts: number[] }).counts, []);
  const second = new Decider(slo, JSON.parse(JSON.stringify(memory)));
  second.round({ now: 4 * 60_000, current: 1, ready: 1, samples: samples(4 * 60_000, 400) });
  assert.deepEqual((Object.values(second.memory())[0]!.season as { counts: number[] }).counts, [100, 100, 100, 100]);
});
