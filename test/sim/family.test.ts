// The generated scenario family and the judge over it: determinism, the drawn ranges, the files
// it writes, and how a policy's runs are judged against the baselines.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FAMILY_SHAPES, MAX_JOBS, familyMember, generateFamily, scenarioYaml, traceCsv } from '../../src/sim/family.js';
import { runMember } from '../../src/sim/family-run.js';
import { parseScenario, parseTrace } from '../../src/sim/scenario.js';
import { type ScenarioRuns, judge, summarize } from '../../src/sim/score.js';

test('one seed names one family: the same scenarios, traces and parameters every time', () => {
  const a = generateFamily(12, 4);
  const b = generateFamily(12, 4);
  assert.deepEqual(a.map((m) => m.params), b.map((m) => m.params));
  assert.deepEqual(a.map((m) => Array.from(m.trace.count)), b.map((m) => Array.from(m.trace.count)));
  // a member does not depend on how many are generated
  assert.deepEqual(familyMember(4, 7).params, a[7]!.params);
  // another seed is another family
  assert.notDeepEqual(generateFamily(12, 5).map((m) => m.params), a.map((m) => m.params));
});

test('every shape is drawn, and every parameter stays in its range', () => {
  const family = generateFamily(120, 11);
  assert.deepEqual(new Set(family.map((m) => m.params.shape)), new Set(FAMILY_SHAPES));
  for (const { scenario: s, trace, params } of family) {
    const service = s.serviceTime.meanSeconds;
    assert.ok(service >= 0.05 - 1e-3 && service <= 180 + 1e-3, `${s.name} service ${service}`);
    assert.ok(s.serviceTime.dist === 'lognormal' && s.serviceTime.cv >= 0.2 - 1e-3 && s.serviceTime.cv <= 2 + 1e-3);
    assert.ok([1, 2, 4, 8, 16, 32].includes(s.concurrency));
    assert.ok(s.startupSeconds >= 3 - 1e-3 && s.startupSeconds <= 120 + 1e-3);
    const scale = Math.max(s.startupSeconds, service);
    assert.ok(s.slo.waitSeconds >= 0.2 * scale - 1e-2 && s.slo.waitSeconds <= 5 * scale + 1e-2, `${s.name} wait ${s.slo.waitSeconds}`);
    assert.ok([0.95, 0.99].includes(s.slo.attainment));
    assert.ok([0, 1, 2].includes(s.minReplicas) && s.maxReplicas > s.minReplicas);
    assert.ok(s.initialReplicas >= s.minReplicas && s.initialReplicas <= s.maxReplicas);
    assert.equal(params.max, s.maxReplicas);
    const jobs = trace.count.reduce((x, y) => x + y, 0);
    assert.ok(jobs <= MAX_JOBS * 1.1, `${s.name}: ${jobs} jobs`);
    assert.ok(trace.count.every((c) => Number.isInteger(c) && c >= 0));
  }
});

test('a written scenario reads back as the same scenario and trace', () => {
  for (const m of generateFamily(10, 2)) {
    const back = parseScenario(scenarioYaml(m), `/x/${m.scenario.name}.yaml`);
    assert.equal(back.name, m.scenario.name);
    assert.deepEqual(back.serviceTime, m.scenario.serviceTime);
    assert.deepEqual(back.slo, m.scenario.slo);
    for (const k of ['stepSeconds', 'concurrency', 'startupSeconds', 'initialReplicas', 'minReplicas', 'maxReplicas'] as const) assert.equal(back[k], m.scenario[k]);
    const trace = parseTrace(traceCsv(m.trace), 't.csv');
    assert.deepEqual(Array.from(trace.count), Array.from(m.trace.count));
  }
});

test('a member runs through tide and every baseline; cached baselines are not run again', { timeout: 60_000 }, async () => {
  const m = familyMember(1, 2);
  const cache = {};
  const first = await runMember(m, 1, cache);
  assert.deepEqual(Object.keys(first.runs).sort(), ['cron-script', 'fixed-peak', 'hpa', 'keda', 'step-table', 'target-cpu', 'tide']);
  for (const r of Object.values(first.runs)) assert.ok(r.attainment >= 0 && r.attainment <= 1 && r.replicaSeconds > 0);
  // a poisoned cache entry is what comes back: proof that the baseline was not simulated again
  const poisoned = { [m.scenario.name]: { ...(cache as Record<string, object>)[m.scenario.name], hpa: { attainment: 0.5, replicaSeconds: 1, flaps: 0 } } };
  const second = await runMember(m, 1, poisoned as never);
  assert.deepEqual(second.runs.hpa, { attainment: 0.5, replicaSeconds: 1, flaps: 0 });
  assert.deepEqual(second.runs.tide, first.runs.tide);
});

const runs = (name: string, tide: [number, number, number], others: Record<string, [number, number]>): ScenarioRuns => ({
  name,
  attainment: 0.95,
  traceSeconds: 7200,
  runs: {
    tide: { attainment: tide[0], replicaSeconds: tide[1], flaps: tide[2] },
    ...Object.fromEntries(Object.entries(others).map(([k, [a, rs]]) => [k, { attainment: a, replicaSeconds: rs, flaps: 0 }])),
  },
});

test('the judge: cost against the cheapest baseline that meets the SLO, misses where one meets it, flaps an hour', () => {
  const v = judge(runs('a', [0.97, 800, 3], { hpa: [0.96, 1200], 'fixed-peak': [0.951, 1000], keda: [0.9, 500] }));
  assert.equal(v.cheapest, 'fixed-peak'); // keda is cheaper but misses
  assert.equal(v.costRatio, 0.8);
  assert.equal(v.flapsPerHour, 1.5);
  assert.equal(v.attainmentFail, false);
  // a miss where a baseline meets is a failure, whatever it costs
  assert.equal(judge(runs('b', [0.94, 100, 0], { hpa: [0.96, 1200] })).attainmentFail, true);
  // where no baseline meets, the bar is the best adaptive baseline (fixed-peak is not one)
  const none = judge(runs('c', [0.9, 100, 0], { hpa: [0.92, 100], 'fixed-peak': [0.94, 100] }));
  assert.equal(none.baselineMeets, false);
  assert.equal(none.costRatio, undefined);
  assert.equal(none.attainmentFail, true);
  assert.equal(judge(runs('d', [0.93, 100, 0], { hpa: [0.92, 100], 'fixed-peak': [0.94, 100] })).attainmentFail, false);
});

test('the summary: shares, median, worst first, and the targets', () => {
  const family = [
    runs('cheap', [0.99, 70, 0], { hpa: [0.99, 100] }),
    runs('equal', [0.99, 100, 0], { hpa: [0.99, 100] }),
    runs('costly', [0.99, 150, 6], { hpa: [0.99, 100] }),
    runs('missed', [0.9, 50, 0], { hpa: [0.99, 100] }),
  ];
  const s = summarize(family, new Map(family.map((f) => [f.name, f.attainment])));
  assert.equal(s.scenarios, 4);
  assert.equal(s.baseline_meets, 4);
  assert.equal(s.slo_met_where_baseline_meets, 3);
  assert.equal(s.cost_share_le_1, 0.667); // the miss is not costed
  assert.equal(s.median_cost_ratio, 1);
  assert.equal(s.flap_share_le_2, 0.75);
  assert.equal(s.max_flaps_per_hour, 3);
  assert.equal(s.targets_met, false);
  assert.deepEqual(s.worst.map((w) => w.name), ['missed', 'costly', 'equal', 'cheap']);
  const good = summarize(family.slice(0, 1), new Map([['cheap', 0.95]]));
  assert.equal(good.targets_met, true);
});
