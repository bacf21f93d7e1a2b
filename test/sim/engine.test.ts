// The simulator's engine: metric definitions on hand-computable runs, start-up delay, graceful
// drain, conservation under random scaling, determinism. No database: pure computation.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { type Observation, type SimPolicy, countFlaps, percentiles, queueDepthSeries, simulate } from '../../src/sim/engine.js';
import { type Jobs, drawJobs } from '../../src/sim/jobs.js';
import { Rng } from '../../src/sim/rng.js';
import type { Scenario, Trace } from '../../src/sim/scenario.js';

function scenario(over: Partial<Scenario> = {}): Scenario {
  return {
    name: 'tiny',
    file: 'tiny.yaml',
    traceFile: 'tiny.csv',
    stepSeconds: 1,
    scale: 1,
    serviceTime: { dist: 'constant', meanSeconds: 1 },
    concurrency: 1,
    startupSeconds: 0,
    initialReplicas: 1,
    minReplicas: 0,
    maxReplicas: 10,
    slo: { waitSeconds: 1, attainment: 0.9 },
    ...over,
  };
}

function jobs(arrivals: number[], service: number[], traceSeconds: number, concurrency = 1): Jobs {
  const s = Float64Array.from(service);
  return {
    arrivals: Float64Array.from(arrivals),
    service: s,
    traceSeconds,
    lowerBoundSeconds: s.reduce((a, b) => a + b, 0) / concurrency,
    seed: 0,
  };
}

/** A policy that follows a script of (time, replicas) and otherwise holds. */
function scripted(steps: Array<[number, number]>, interval = 1): SimPolicy & { seen: Observation[] } {
  const seen: Observation[] = [];
  return {
    name: 'scripted',
    intervalSeconds: interval,
    seen,
    decide(obs) {
      seen.push({ ...obs });
      let want = obs.desired;
      for (const [t, r] of steps) if (Math.abs(obs.now - t) < 1e-9) want = r;
      return want;
    },
  };
}

const hold: SimPolicy = { name: 'hold', intervalSeconds: 0, decide: () => 1 };

test('metric definitions on a hand-computable run: one replica, one slot, constant 1 s jobs', () => {
  // arrivals 0.5, 0.6, 0.7, 3.0 -> starts 0.5, 1.5, 2.5, 3.5 -> waits 0, 0.9, 1.8, 0.5
  const r = simulate(scenario(), jobs([0.5, 0.6, 0.7, 3.0], [1, 1, 1, 1], 5), hold);
  assert.equal(r.jobs, 4);
  assert.equal(r.attainment, 0.75); // 1.8 s > the 1 s SLO
  assert.equal(r.waitP50, 0.5); // nearest rank: 2nd of [0, 0.5, 0.9, 1.8]
  assert.ok(Math.abs(r.waitP95 - 1.8) < 1e-12);
  assert.ok(Math.abs(r.waitMax - 1.8) < 1e-12);
  assert.equal(r.replicaSeconds, 5); // one replica paid for the whole trace
  assert.equal(r.lowerBoundSeconds, 4);
  assert.equal(r.efficiency, 0.8);
  assert.equal(r.scaleEvents, 0);
  assert.equal(r.flaps, 0);
  assert.equal(r.traceSeconds, 5);
});

test('past the trace end the run goes on until no job waits: a job within W then is judged by its wait', () => {
  // the second job waits behind a 10 s job past the end at 5 s; it starts at 10.1 after 9.9 s, under
  // the 10 s SLO: on time, as the live system would start it; the replica is paid until then
  const r = simulate(scenario({ slo: { waitSeconds: 10, attainment: 0.9 } }), jobs([0.1, 0.2], [10, 1], 5), hold);
  assert.equal(r.attainment, 1);
  assert.ok(Math.abs(r.waitMax - 9.9) < 1e-12);
  assert.ok(Math.abs(r.replicaSeconds - 10.1) < 1e-12, `paid ${r.replicaSeconds}`);
  assert.equal(r.traceSeconds, 5);
});

test('past the trace end the run stops W later: a job still waiting then has waited past W, a miss', () => {
  const r = simulate(scenario({ slo: { waitSeconds: 3, attainment: 0.9 } }), jobs([0.1, 0.2], [10, 1], 5), hold);
  assert.equal(r.attainment, 0.5);
  assert.ok(Math.abs(r.waitMax - 7.8) < 1e-12); // stopped at 5 + 3
  assert.ok(Math.abs(r.replicaSeconds - 8) < 1e-12, `paid ${r.replicaSeconds}`);
});

test('start-up delay: a replica requested at t takes its first job at t + startup and is paid from t', () => {
  const sc = scenario({ startupSeconds: 30, initialReplicas: 0 });
  const policy = scripted([[1, 1]]);
  const r = simulate(sc, jobs([0.5], [1], 60), policy);
  assert.ok(Math.abs(r.waitMax - 30.5) < 1e-12, `wait ${r.waitMax}`); // requested at 1, ready at 31
  assert.equal(r.replicaSeconds, 59);
  const at20 = policy.seen.find((o) => o.now === 20)!;
  assert.deepEqual([at20.starting, at20.ready, at20.queueDepth, at20.oldestAgeSeconds], [1, 0, 1, 19.5]);
});

test('scale-in cancels starting replicas first, then drains gracefully: no new job, exit when idle', () => {
  // two ready replicas, each running one long job; at t=5 ask for 3 (one starts), at t=6 for 1
  const sc = scenario({ startupSeconds: 10, initialReplicas: 2, slo: { waitSeconds: 100, attainment: 0.9 } });
  const policy = scripted([
    [5, 3],
    [6, 1],
  ]);
  const r = simulate(sc, jobs([0.1, 0.2, 7], [10, 20, 1], 30), policy);
  // the starting replica is cancelled (paid 5..6); replica A (fewest in flight, tie -> first)
  // drains and exits at 10.1 when its job ends; the job arriving at 7 waits for B (free at 20.2)
  assert.ok(Math.abs(r.waitMax - 13.2) < 1e-9, `wait ${r.waitMax}`);
  assert.ok(Math.abs(r.replicaSeconds - (10.1 + 30 + 1)) < 1e-9, `paid ${r.replicaSeconds}`);
  assert.equal(r.attainment, 1);
  const at8 = policy.seen.find((o) => o.now === 8)!;
  assert.deepEqual([at8.desired, at8.ready, at8.draining, at8.starting, at8.inFlight, at8.queueDepth], [1, 1, 1, 0, 2, 1]);
  assert.equal(r.scaleEvents, 2);
  assert.equal(r.flaps, 1); // up at 5, down at 6: a reversal within 300 s
});

test('conservation under random scaling: every job starts once, none is dropped, counters agree', () => {
  const sc = scenario({ concurrency: 3, startupSeconds: 2, initialReplicas: 2, minReplicas: 0, maxReplicas: 6, serviceTime: { dist: 'exponential', meanSeconds: 2 } });
  const counts = Array.from({ length: 200 }, (_, i) => (i < 150 ? 1 + (i % 4) : 0)); // a quiet tail to finish
  const trace: Trace = { file: 't', t: Float64Array.from(counts.map((_, i) => i)), count: Float64Array.from(counts) };
  const j = drawJobs(sc, trace, 7);
  const rng = new Rng(3);
  const seen: Observation[] = [];
  const chaos: SimPolicy = {
    name: 'chaos',
    intervalSeconds: 3,
    decide(obs) {
      seen.push({ ...obs });
      return obs.now > 160 ? 2 : Math.floor(rng.float() * 7);
    },
  };
  const r = simulate(sc, j, chaos);
  for (const o of seen) {
    assert.equal(o.arrivalsTotal, o.completionsTotal + o.inFlight + o.queueDepth, `at ${o.now}`);
    assert.ok(o.inFlight <= (o.ready + o.draining) * sc.concurrency);
  }
  const last = seen.at(-1)!;
  assert.equal(last.completionsTotal, j.arrivals.length); // every job ran to completion
  assert.ok(r.scaleEvents > 10);
  assert.ok(r.waitMax >= 0 && r.waitP50 >= 0);
});

test('the same seed gives the same jobs and the same report; another seed does not', () => {
  const sc = scenario({ serviceTime: { dist: 'lognormal', meanSeconds: 1, cv: 1 }, concurrency: 4, initialReplicas: 2 });
  const trace: Trace = { file: 't', t: Float64Array.from([0, 1, 2, 3]), count: Float64Array.from([20, 5, 30, 2]) };
  const a = drawJobs(sc, trace, 42);
  const b = drawJobs(sc, trace, 42);
  const c = drawJobs(sc, trace, 43);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.service, c.service);
  const run = (x: Jobs) => simulate(sc, x, scripted([[1, 5]]), { seriesBucketSeconds: 1 });
  assert.deepEqual(run(a), run(b));
  // arrivals sorted and inside their step
  for (let i = 1; i < a.arrivals.length; i++) assert.ok(a.arrivals[i]! >= a.arrivals[i - 1]!);
  assert.equal(a.arrivals.filter((t) => t >= 2 && t < 3).length, 30);
});

test('a fractional scale rounds stochastically and keeps the expected total', () => {
  const sc = scenario({ scale: 0.1 });
  const trace: Trace = { file: 't', t: Float64Array.from({ length: 2000 }, (_, i) => i), count: new Float64Array(2000).fill(15) };
  const n = drawJobs(sc, trace, 1).arrivals.length; // expected 3000, each step 1 or 2
  assert.ok(Math.abs(n - 3000) < 150, `drew ${n}`);
});

test('lognormal service times have the asked mean and cv', () => {
  const sc = scenario({ serviceTime: { dist: 'lognormal', meanSeconds: 0.5, cv: 2 } });
  const trace: Trace = { file: 't', t: Float64Array.from([0]), count: Float64Array.from([200000]) };
  const s = drawJobs(sc, trace, 9).service;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const sd = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / s.length);
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(sd / mean - 2) < 0.3, `cv ${sd / mean}`);
});

test('percentiles are nearest-rank, zeros counted', () => {
  assert.deepEqual(percentiles(Float64Array.from([0, 0, 0, 4, 2]), [0.5, 0.8, 1]), [0, 2, 4]);
  assert.deepEqual(percentiles(new Float64Array(0), [0.5]), [0]);
});

test('the series: arrivals per bucket, time-averaged replicas, p95 wait per bucket', () => {
  const sc = scenario({ slo: { waitSeconds: 10, attainment: 0.9 } });
  const r = simulate(sc, jobs([0.5, 0.6, 2.5], [1, 1, 1], 4), scripted([[2, 3]]), { seriesBucketSeconds: 2 });
  const s = r.series!;
  assert.deepEqual(Array.from(s.arrivals), [2, 1]);
  assert.deepEqual(Array.from(s.replicas), [1, 3]);
  assert.ok(Math.abs(s.waitP95[0]! - 0.9) < 1e-12);
  assert.equal(s.waitP95[1], 0);
  // the second job waits from 0.6 to 1.5 s: 0.45 jobs waiting on average over the first bucket
  assert.ok(Math.abs(s.depth[0]! - 0.45) < 1e-12);
  assert.equal(s.depth[1], 0);
  // a wait across buckets is split between them; one past the end stops there
  assert.deepEqual(Array.from(queueDepthSeries([1, 3], [4, 10], 3, 2)), [0.5, 1.5, 1.5]);
});

test('countFlaps: a reversal within 300 s of the change before is a flap, as a run counts them', () => {
  const changes = [
    { at: 0, from: 1, to: 3 },
    { at: 100, from: 3, to: 2 }, // reverses the scale-up 100 s later: a flap
    { at: 150, from: 2, to: 2 }, // no change: not counted, not a direction
    { at: 500, from: 2, to: 4 }, // reverses 400 s later: not a flap
    { at: 700, from: 4, to: 5 }, // the same direction
    { at: 799, from: 5, to: 1 }, // reverses 99 s later: a flap
  ];
  assert.equal(countFlaps(changes), 2);
  assert.equal(countFlaps([]), 0);
});

test("the urgent trigger: a round at the 0.5 s poll that finds the oldest job at or past the wait, once per crossing", () => {
  // one replica, one slot, 2 s jobs: ten arrive at once at t = 1 (the oldest waits from 1 s to
  // 3 s, the last from 1 s to 19 s), then ten more at t = 40, after the queue has emptied
  const arrivals = [...Array.from({ length: 10 }, () => 1), ...Array.from({ length: 10 }, () => 40)];
  const seen: number[] = [];
  const urgent: SimPolicy = {
    name: 'urgent',
    intervalSeconds: 100,
    urgentWaitSeconds: 6,
    decide(obs) {
      seen.push(obs.now);
      assert.ok(obs.oldestAgeSeconds >= 6, `a round at ${obs.now} s with the oldest at ${obs.oldestAgeSeconds} s`);
      return 1;
    },
  };
  simulate(scenario({ maxReplicas: 1 }), jobs(arrivals, arrivals.map(() => 2), 60), urgent);
  // the oldest waiting job reaches 6 s at 7 s (the job that arrived at 1 s and starts at 9 s),
  // and stays past it until the queue empties; again at 46 s after the second lump
  assert.deepEqual(seen, [7, 46]);
  // polled every 2 s, as `urgent_poll_seconds: 2` would: the first poll past the crossing
  seen.length = 0;
  simulate(scenario({ maxReplicas: 1 }), jobs(arrivals, arrivals.map(() => 2), 60), { ...urgent, urgentPollSeconds: 2 });
  assert.deepEqual(seen, [8, 46]);
});
