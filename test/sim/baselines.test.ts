// Each baseline's rules on constructed cases: the HPA's tolerance, scale-up limit and 300 s
// scale-down stabilization, KEDA's 30 s polling, step-table cooldowns, cron-script every 300 s,
// target-cpu on the one-minute average, and the fixed-peak / tuned searches.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { cronScriptPolicy } from '../../src/sim/baselines/cron-script.js';
import { fixedPeak } from '../../src/sim/baselines/fixed-peak.js';
import { HpaModel, hpaPolicy } from '../../src/sim/baselines/hpa.js';
import { kedaPolicy } from '../../src/sim/baselines/keda.js';
import { stepTablePolicy } from '../../src/sim/baselines/step-table.js';
import { backlogPerReplica } from '../../src/sim/baselines/target.js';
import { targetCpuPolicy } from '../../src/sim/baselines/target-cpu.js';
import { tunedSearch } from '../../src/sim/baselines/tuned.js';
import { type Observation, simulate } from '../../src/sim/engine.js';
import { drawJobs } from '../../src/sim/jobs.js';
import type { Scenario, Trace } from '../../src/sim/scenario.js';

function scenario(over: Partial<Scenario> = {}): Scenario {
  return {
    name: 'case',
    file: 'case.yaml',
    traceFile: 'case.csv',
    stepSeconds: 1,
    scale: 1,
    serviceTime: { dist: 'lognormal', meanSeconds: 1, cv: 1 },
    concurrency: 10,
    startupSeconds: 30,
    initialReplicas: 2,
    minReplicas: 1,
    maxReplicas: 50,
    slo: { waitSeconds: 10, attainment: 0.99 },
    ...over,
  };
}

function obs(over: Partial<Observation>): Observation {
  return {
    now: 0,
    desired: 1,
    ready: 1,
    starting: 0,
    draining: 0,
    queueDepth: 0,
    oldestAgeSeconds: 0,
    arrivalsTotal: 0,
    completionsTotal: 0,
    inFlight: 0,
    utilization: 0,
    busySlotSecondsTotal: 0,
    slotSecondsTotal: 0,
    serviceTimeMeanSeconds: 1,
    serviceTimeScv: 1,
    concurrency: 10,
    ...over,
  };
}

test('the SLO-derived per-replica target: concurrency * wait / mean service time', () => {
  assert.equal(backlogPerReplica(scenario()), 100);
  assert.equal(backlogPerReplica(scenario({ concurrency: 8, slo: { waitSeconds: 5, attainment: 0.99 }, serviceTime: { dist: 'constant', meanSeconds: 0.5 } })), 80);
});

test('HPA: AverageValue with a 0.1 tolerance band around the target', () => {
  const hpa = new HpaModel(10, 1, 50, 10);
  assert.equal(hpa.sync(15, 10, 105), 10); // ratio 1.05: within tolerance
  const hpa2 = new HpaModel(10, 1, 50, 10);
  assert.equal(hpa2.sync(15, 10, 115), 12); // ceil(115 / 10)
});

test('HPA: scale-up limited to max(4 pods, 100%) per 15 s', () => {
  const hpa = new HpaModel(1, 1, 50, 1);
  assert.equal(hpa.sync(15, 1, 1000), 5); // 1 + 4 beats 2 x 1
  assert.equal(hpa.sync(30, 5, 1000), 10); // the event at 15 is not inside (15, 30]: 2 x 5
  assert.equal(hpa.sync(45, 10, 1000), 20);
  assert.equal(hpa.sync(60, 20, 1000), 40);
  assert.equal(hpa.sync(75, 40, 1000), 50); // max replicas
  // two syncs inside one period share its budget
  const fast = new HpaModel(1, 1, 50, 1);
  assert.equal(fast.sync(15, 1, 1000), 5);
  assert.equal(fast.sync(20, 5, 1000), 5); // 5 added within the last 15 s: start 1, limit max(5, 2)
});

test('HPA: 300 s scale-down stabilization, starting from the initial count', () => {
  const hpa = new HpaModel(10, 1, 50, 10);
  for (let t = 15; t < 300; t += 15) assert.equal(hpa.sync(t, 10, 0), 10, `at ${t}`);
  assert.equal(hpa.sync(300, 10, 0), 1); // the t = 0 recommendation has left the window
  // a peak inside the window holds the count up
  const held = new HpaModel(10, 1, 50, 1);
  assert.equal(held.sync(15, 1, 80), 5); // wants 8, limited to 1 + 4
  assert.equal(held.sync(30, 5, 80), 8);
  assert.equal(held.sync(45, 8, 0), 8); // max of the window's recommendations (8)
  assert.equal(held.sync(330, 8, 0), 1);
});

test('hpa policy syncs every 15 s on the queue depth it sees', () => {
  const p = hpaPolicy(scenario());
  assert.equal(p.intervalSeconds, 15);
  assert.equal(p.decide(obs({ now: 15, desired: 2, queueDepth: 1000 })), 6); // ceil(1000/100)=10, limit 2+4
});

test('keda: the HPA reads the depth polled every 30 s', () => {
  const p = kedaPolicy(scenario({ initialReplicas: 1 }));
  assert.equal(p.decide(obs({ now: 15, desired: 1, queueDepth: 5000 })), 1); // sees the t=0 poll: empty
  assert.equal(p.decide(obs({ now: 30, desired: 1, queueDepth: 500 })), 5); // polls: 500 -> 5
  assert.equal(p.decide(obs({ now: 45, desired: 5, queueDepth: 5000 })), 5); // still 500
  assert.equal(p.decide(obs({ now: 60, desired: 5, queueDepth: 5000 })), 10); // polls: 50 wanted, limit 2x
});

test('keda with min 0: activates 0 -> 1 on a waiting job, back to 0 after a 300 s cooldown', () => {
  const p = kedaPolicy(scenario({ minReplicas: 0, initialReplicas: 0 }));
  assert.equal(p.decide(obs({ now: 15, desired: 0, queueDepth: 3 })), 0); // the t=0 poll saw nothing
  assert.equal(p.decide(obs({ now: 30, desired: 0, queueDepth: 3 })), 1);
  let desired = 1;
  for (let t = 45; t < 330; t += 15) desired = p.decide(obs({ now: t, desired, queueDepth: 0 }));
  assert.equal(desired, 1); // last active at 30: not yet 300 s
  assert.equal(p.decide(obs({ now: 330, desired: 1, queueDepth: 0 })), 0);
});

test('step-table: +5 above 1000, -2 below 100, with 60 s out and 120 s in cooldowns', () => {
  const p = stepTablePolicy(scenario());
  assert.equal(p.intervalSeconds, 60);
  assert.equal(p.decide(obs({ now: 60, desired: 2, queueDepth: 1001 })), 7);
  assert.equal(p.decide(obs({ now: 90, desired: 7, queueDepth: 5000 })), 7); // scale-out cooldown
  assert.equal(p.decide(obs({ now: 120, desired: 7, queueDepth: 5000 })), 12);
  assert.equal(p.decide(obs({ now: 150, desired: 12, queueDepth: 500 })), 12); // between thresholds
  assert.equal(p.decide(obs({ now: 180, desired: 12, queueDepth: 99 })), 10);
  assert.equal(p.decide(obs({ now: 240, desired: 10, queueDepth: 0 })), 10); // scale-in cooldown
  assert.equal(p.decide(obs({ now: 300, desired: 10, queueDepth: 0 })), 8);
  assert.equal(p.decide(obs({ now: 420, desired: 1, queueDepth: 0 })), 1); // min replicas
});

test('cron-script: every 300 s, floor(depth / 100) + 1 within the bounds', () => {
  const sc = scenario({ maxReplicas: 20 });
  const p = cronScriptPolicy(sc);
  assert.equal(p.intervalSeconds, 300);
  assert.equal(p.decide(obs({ now: 300, queueDepth: 0 })), 1);
  assert.equal(p.decide(obs({ now: 600, queueDepth: 999 })), 10);
  assert.equal(p.decide(obs({ now: 900, queueDepth: 1e6 })), 20);
  // in the engine: scale events only at multiples of 300 s
  const trace: Trace = { file: 't', t: Float64Array.from({ length: 1200 }, (_, i) => i), count: new Float64Array(1200).fill(30) };
  const r = simulate(sc, drawJobs(sc, trace, 1), cronScriptPolicy(sc));
  assert.ok(r.desiredAt.t.length > 1);
  for (const t of r.desiredAt.t) assert.equal(t % 300, 0);
});

test('target-cpu: ceil(current x one-minute utilisation / 0.7), 60 s out and 120 s in cooldowns', () => {
  const p = targetCpuPolicy(scenario());
  assert.equal(p.intervalSeconds, 60);
  // 90% busy over the last minute on 10 replicas -> ceil(12.86) = 13
  assert.equal(p.decide(obs({ now: 60, desired: 10, busySlotSecondsTotal: 5400, slotSecondsTotal: 6000 })), 13);
  // 35% busy -> 7: a scale-in, allowed (no scale-in yet)
  assert.equal(p.decide(obs({ now: 120, desired: 13, busySlotSecondsTotal: 5400 + 2730, slotSecondsTotal: 6000 + 7800 })), 7);
  // still 35% a minute later: held by the 120 s scale-in cooldown
  assert.equal(p.decide(obs({ now: 180, desired: 7, busySlotSecondsTotal: 8130 + 1470, slotSecondsTotal: 13800 + 4200 })), 7);
});

test('fixed-peak: the smallest constant count meeting the SLO', () => {
  const sc = scenario({ startupSeconds: 0, initialReplicas: 1, serviceTime: { dist: 'constant', meanSeconds: 1 }, slo: { waitSeconds: 0.5, attainment: 0.99 } });
  const trace: Trace = { file: 't', t: Float64Array.from({ length: 300 }, (_, i) => i), count: new Float64Array(300).fill(40) };
  const jobs = drawJobs(sc, trace, 1);
  const found = fixedPeak(sc, jobs);
  const n = Number(found.parameter.replace('replicas=', ''));
  assert.ok(found.result.attainment >= 0.99);
  assert.equal(found.result.scaleEvents, 0);
  const fewer = simulate(sc, jobs, { name: 'f', intervalSeconds: 0, decide: () => n - 1 }, { initialReplicas: n - 1 });
  assert.ok(fewer.attainment < 0.99, `n-1 = ${n - 1} also meets`);
});

test('tuned search: the reported target meets the SLO, and a target 9% larger does not', () => {
  const sc = scenario({ startupSeconds: 5, initialReplicas: 1 });
  const counts = Array.from({ length: 900 }, (_, i) => (i >= 300 && i < 600 ? 60 : 15));
  const trace: Trace = { file: 't', t: Float64Array.from(counts.map((_, i) => i)), count: Float64Array.from(counts) };
  const jobs = drawJobs(sc, trace, 1);
  const out = tunedSearch(sc, jobs, 'hpa-tuned', (target) => hpaPolicy(sc, { name: 'hpa-tuned', target }));
  const target = Number(out.parameter.replace('target=', ''));
  assert.equal(out.result.policy, 'hpa-tuned');
  assert.ok(out.result.attainment >= 0.99, `attainment ${out.result.attainment}`);
  const larger = simulate(sc, jobs, hpaPolicy(sc, { target: target * 1.09 }));
  assert.ok(larger.attainment < 0.99, `target ${target * 1.09} also meets`);
});
