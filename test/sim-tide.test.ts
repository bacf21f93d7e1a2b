// The `tide` and `config` policies: core decide() driven by the simulator's virtual clock.
// Checks the wiring (samples, units, history, bounds), not the core's tuning.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { METRIC } from '../src/core/types.js';
import { type Observation, simulate } from '../src/sim/engine.js';
import { drawJobs } from '../src/sim/jobs.js';
import type { Scenario, Trace } from '../src/sim/scenario.js';
import { configPolicy, samplesOf, tidePolicy, tideServicePolicy } from '../src/sim/tide.js';

const scenario: Scenario = {
  name: 'surge',
  file: 'surge.yaml',
  traceFile: 'surge.csv',
  stepSeconds: 1,
  scale: 1,
  serviceTime: { dist: 'lognormal', meanSeconds: 1, cv: 1 },
  concurrency: 10,
  startupSeconds: 10,
  initialReplicas: 1,
  minReplicas: 1,
  maxReplicas: 20,
  slo: { waitSeconds: 10, attainment: 0.99 },
};
// 10 jobs/s, then 60 jobs/s for five minutes, then 10 again
const counts = Array.from({ length: 1200 }, (_, i) => (i >= 300 && i < 600 ? 60 : 10));
const trace: Trace = { file: 't', t: Float64Array.from(counts.map((_, i) => i)), count: Float64Array.from(counts) };
const jobs = drawJobs(scenario, trace, 5);

test('samples carry the core METRIC names at virtual ms; no service time before a completion', () => {
  const obs: Observation = {
    now: 12.5, desired: 2, ready: 2, starting: 0, draining: 0, queueDepth: 7, oldestAgeSeconds: 3, arrivalsTotal: 40,
    completionsTotal: 0, inFlight: 20, utilization: 1, busySlotSecondsTotal: 0, slotSecondsTotal: 0,
    serviceTimeMeanSeconds: Number.NaN, serviceTimeScv: Number.NaN, concurrency: 10,
  };
  const before = samplesOf(obs);
  assert.ok(before.every((s) => s.at === 12_500));
  assert.deepEqual(new Map(before.map((s) => [s.metric, s.value])), new Map([
    [METRIC.queueDepth, 7], [METRIC.oldestAge, 3], [METRIC.arrivalsTotal, 40], [METRIC.completionsTotal, 0], [METRIC.inFlight, 20], [METRIC.utilization, 1],
  ]));
  const after = samplesOf({ ...obs, serviceTimeMeanSeconds: 0.9, serviceTimeScv: 1.2 });
  assert.equal(after.find((s) => s.metric === METRIC.serviceTimeMean)?.value, 0.9);
  assert.equal(after.find((s) => s.metric === METRIC.serviceTimeScv)?.value, 1.2);
});

test('the tide policy is the scenario SLO, untuned; zero-capable scenarios get a queue activation', () => {
  assert.deepEqual(tideServicePolicy(scenario), {
    min: 1, max: 20,
    policies: [{ kind: 'slo', waitSeconds: 10, attainment: 0.99, concurrency: 10, startupSeconds: 10 }],
  });
  assert.deepEqual(tideServicePolicy({ ...scenario, minReplicas: 0 }).activation, { metric: METRIC.queueDepth, threshold: 0 });
});

test('tide runs every 5 s, scales out for a surge and back in, within bounds, deterministically', async () => {
  const policy = await tidePolicy(scenario);
  assert.equal(policy.intervalSeconds, 5);
  const a = simulate(scenario, jobs, policy);
  const b = simulate(scenario, jobs, await tidePolicy(scenario));
  assert.deepEqual(a, b);
  const peak = Math.max(...a.desiredAt.replicas);
  assert.ok(peak >= 6 && peak <= 20, `peak ${peak}`); // 60 jobs/s of 1 s jobs need 6+ replicas of 10 slots
  assert.ok(a.desiredAt.replicas.at(-1)! < peak, 'scaled back in after the surge');
  assert.ok(a.desiredAt.t.slice(1).every((t) => t % 5 === 0), 'decisions only on the 5 s ticks');
});

test('configPolicy runs a scale: block through the core (a target on queue depth per replica)', async () => {
  const policy = await configPolicy({ min: 1, max: 20, policies: [{ kind: 'target', metric: METRIC.queueDepth, type: 'average', target: 50 }] }, { name: 'depth-target', intervalSeconds: 15 });
  assert.equal(policy.name, 'depth-target');
  assert.equal(policy.intervalSeconds, 15);
  const r = simulate(scenario, jobs, policy);
  assert.equal(r.policy, 'depth-target');
  assert.ok(r.scaleEvents > 0);
  assert.ok(Math.max(...r.desiredAt.replicas) > 1);
});
