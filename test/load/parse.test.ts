// The load generator's pure parts: thresholds, stages, schedules, templates, the histogram,
// trace files. No sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TideError } from '../../src/errors.js';
import { Histogram } from '../../src/load/histogram.js';
import { modelFor, parseTarget, templateFor } from '../../src/load/run.js';
import { arrivals, peakRate, scheduleDuration, split } from '../../src/load/schedule.js';
import { parseDuration, parseStages, valueAt } from '../../src/load/stages.js';
import type { Summary } from '../../src/load/summary.js';
import { parseHeaders, renderer, validateTemplate } from '../../src/load/template.js';
import { checkThresholds, parseThreshold } from '../../src/load/thresholds.js';
import { parseLoadTrace } from '../../src/load/trace.js';

function throwsCode(fn: () => unknown, code: string, arg?: string): TideError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof TideError, `expected a TideError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (arg) assert.equal(caught.where?.arg, arg);
  return caught;
}

test('thresholds: k6 expressions parse; bad ones name the argument and what was expected', () => {
  assert.deepEqual(parseThreshold('p(99)<2000'), { source: 'p(99)<2000', aggregate: { kind: 'percentile', p: 99 }, op: '<', value: 2000 });
  assert.deepEqual(parseThreshold('p(99.9) <= 300').aggregate, { kind: 'percentile', p: 99.9 });
  assert.equal(parseThreshold('failed<0.01').aggregate.kind, 'failed');
  assert.equal(parseThreshold('rate>100').op, '>');
  assert.equal(parseThreshold('http_req_duration: avg<200').aggregate.kind, 'avg');
  assert.equal(parseThreshold('med!=0').op, '!=');
  for (const bad of ['p99<2000', 'p(0)<1', 'p(101)<1', 'avg(5)<1', 'mean<3', 'avg<fast', 'avg 200', 'failed<2', 'http_req_failed: avg<3', '']) {
    const err = throwsCode(() => parseThreshold(bad), 'TIDE_LOAD_THRESHOLD', '--threshold');
    assert.match(err.message, /expected an expression such as p\(99\)<2000/);
  }
});

test('thresholds are checked on the summary, each with its measured value', () => {
  const histogram = new Histogram();
  for (let i = 1; i <= 100; i++) histogram.record(i);
  const summary: Summary = {
    model: 'open', url: 'http://x', threads: 1, sent: 100, requests: 100, ok: 98, failed: 2, dropped: 0, durationSeconds: 2, rate: 50,
    latency: histogram.stats(), sendLatency: histogram.stats(), statusCodes: { '200': 98, '500': 2 }, errors: {}, histogram,
  };
  const results = checkThresholds(['p(99)<100', 'p(50)<=50.1', 'failed<0.01', 'rate>=50', 'count==100', 'dropped<1', 'max<100'].map((t) => parseThreshold(t)), summary);
  // percentiles come from the histogram: within its 0.1%
  assert.ok(Math.abs(results[0]!.actual - 99) < 0.1 && Math.abs(results[1]!.actual - 50) < 0.05);
  assert.deepEqual(results.map((r) => [r.threshold, r.ok]), [
    ['p(99)<100', true],
    ['p(50)<=50.1', true],
    ['failed<0.01', false],
    ['rate>=50', true],
    ['count==100', true],
    ['dropped<1', true],
    ['max<100', false],
  ]);
  assert.deepEqual(results.slice(2).map((r) => r.actual), [0.02, 50, 100, 0, 100]);
});

test('durations and stages parse; linear interpolation between targets as k6 does', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('2'), 2000);
  assert.equal(parseDuration('1x'), undefined);
  const stages = parseStages('30s:50,2m:200,30s:0');
  assert.deepEqual(stages, [
    { durationMs: 30_000, target: 50 },
    { durationMs: 120_000, target: 200 },
    { durationMs: 30_000, target: 0 },
  ]);
  assert.equal(valueAt(stages, 0), 0);
  assert.equal(valueAt(stages, 15_000), 25);
  assert.equal(valueAt(stages, 90_000), 125);
  assert.equal(valueAt(stages, 165_000), 100);
  assert.equal(valueAt(stages, 999_000), 0);
  for (const bad of ['30s', '30s:', 'x:5', '30s:-1', '30s:50,,1m:2', '0s:4', '10s:five']) {
    const err = throwsCode(() => parseStages(bad), 'TIDE_LOAD_STAGES', '--stages');
    assert.match(err.message, /expected duration:target/);
  }
});

test('open schedules: exact counts for a constant rate, a ramp (the integral of the rate) and a compressed trace', () => {
  const constant = [...arrivals({ kind: 'constant', rate: 100, durationMs: 1000 })];
  assert.equal(constant.length, 100);
  assert.equal(constant[1], 10);
  // 0 -> 100/s over 2 s, then 100/s for 1 s: 100 + 100 arrivals
  const ramp = [...arrivals({ kind: 'ramping', startRate: 0, stages: [{ durationMs: 2000, target: 100 }, { durationMs: 1000, target: 100 }] })];
  assert.equal(ramp.length, 200);
  assert.ok(ramp.every((t, i) => i === 0 || t >= ramp[i - 1]!), 'increasing');
  // half the arrivals of a linear ramp from 0 come in its last 29% (t^2 law): arrival 50 at sqrt(0.5) * 2000 ms
  assert.ok(Math.abs(ramp[50]! - Math.SQRT1_2 * 2000) < 1e-6);
  assert.equal(peakRate({ kind: 'ramping', startRate: 0, stages: [{ durationMs: 10, target: 300 }] }), 300);
  const trace = { kind: 'trace' as const, t: [0, 1, 2, 3], count: [5, 10, 0, 7], compression: 10 };
  const times = [...arrivals(trace)];
  assert.equal(times.length, 22);
  assert.deepEqual(times.slice(0, 6), [0, 20, 40, 60, 80, 100]);
  assert.equal(scheduleDuration(trace), 400);
  assert.equal(peakRate(trace), 100);
  // fractional counts carry over: 0.5 per row for 4 rows is 2 arrivals
  assert.equal([...arrivals({ kind: 'trace', t: [0, 1, 2, 3], count: [0.5, 0.5, 0.5, 0.5], compression: 1 })].length, 2);
  // threads split any schedule exactly
  const a = [...split(arrivals(trace), 0, 3)];
  const b = [...split(arrivals(trace), 1, 3)];
  const c = [...split(arrivals(trace), 2, 3)];
  assert.deepEqual([a.length, b.length, c.length], [8, 7, 7]);
});

test('histogram: percentiles within 0.1%, exact below 1 ms, merging adds', () => {
  const h = new Histogram();
  for (let i = 1; i <= 10_000; i++) h.record(i / 10); // 0.1 .. 1000 ms
  const s = h.stats();
  assert.equal(s.count, 10_000);
  assert.equal(s.min, 0.1);
  assert.equal(s.max, 1000);
  for (const [p, v] of [[50, 500], [90, 900], [99, 990]] as const) assert.ok(Math.abs(h.percentile(p) - v) / v < 0.001, `p${p} ${h.percentile(p)}`);
  assert.ok(Math.abs(s.avg - 500.05) < 1e-9);
  const small = new Histogram();
  small.record(0.25);
  assert.equal(small.percentile(50), 0.25);
  const merged = Histogram.from(h.snapshot());
  merged.merge(small);
  assert.equal(merged.count, 10_001);
  assert.equal(merged.stats().min, 0.1);
});

test('templates: the demo job for a bare origin, variables rendered, counters unique across threads, bad input named', () => {
  assert.deepEqual(templateFor({ url: 'http://127.0.0.1:3000' }, parseTarget('http://127.0.0.1:3000')), {
    method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' }, body: '{"handler":"sleep","payload":{"mean_ms":20,"cv":1}}',
  });
  assert.equal(templateFor({ url: 'http://h/health' }, parseTarget('http://h/health')).method, 'GET');
  const t = templateFor({ url: 'http://h/x', body: '{"n":{{counter}},"t":{{thread}}}' }, parseTarget('http://h/x'));
  assert.equal(t.method, 'POST');
  assert.equal(t.headers['content-type'], 'application/json');
  const r0 = renderer(t, 0, 2, 1);
  const r1 = renderer(t, 1, 2, 1);
  const seen = [];
  for (let i = 0; i < 3; i++) {
    r0.path();
    seen.push(JSON.parse(r0.body()!) as { n: number; t: number });
    r1.path();
    seen.push(JSON.parse(r1.body()!) as { n: number; t: number });
  }
  assert.deepEqual(seen.map((x) => x.n), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(seen.map((x) => x.t), [0, 1, 0, 1, 0, 1]);
  throwsCode(() => validateTemplate({ method: 'GET', path: '/{{nope}}', headers: {} }), 'TIDE_LOAD_TEMPLATE', '--path');
  assert.deepEqual(parseHeaders(['X-Key: a:b']), { 'x-key': 'a:b' });
  throwsCode(() => parseHeaders(['no colon']), 'TIDE_LOAD_TEMPLATE', '--header');
  for (const bad of ['localhost:3000', 'ftp://h/x', 'http://']) throwsCode(() => parseTarget(bad), 'TIDE_LOAD_URL', 'URL');
});

test('models: options resolve to one model, contradictions are usage errors', () => {
  assert.deepEqual(modelFor({ url: 'http://h', rate: 5, durationMs: 1000 }), {
    kind: 'open', schedule: { kind: 'constant', rate: 5, durationMs: 1000 }, maxInFlight: 10_000, maxLagMs: 1000,
  });
  assert.deepEqual(modelFor({ url: 'http://h', vus: 3, durationMs: 1000 }), { kind: 'closed', startVus: 3, stages: [{ durationMs: 1000, target: 3 }] });
  throwsCode(() => modelFor({ url: 'http://h', rate: 5 }), 'TIDE_USAGE', '--rate');
  throwsCode(() => modelFor({ url: 'http://h', model: 'closed', rate: 5, durationMs: 1 }), 'TIDE_USAGE', '--rate');
  throwsCode(() => modelFor({ url: 'http://h', vus: 2, rate: 5, durationMs: 1, model: 'open' }), 'TIDE_USAGE', '--vus');
});

test('trace files: the simulator parser, errors as TIDE_LOAD_TRACE with the file and line', () => {
  assert.deepEqual(parseLoadTrace('t,count\n0,3\n10,4\n', 'a.csv'), { file: 'a.csv', t: [0, 10], count: [3, 4] });
  const err = throwsCode(() => parseLoadTrace('t,count\n0,3\n5,x\n', 'b.csv'), 'TIDE_LOAD_TRACE', '--trace');
  assert.equal(err.where?.file, 'b.csv');
  assert.equal(err.where?.line, 3);
  assert.match(err.message, /Expected rows "t,count"/);
  throwsCode(() => parseLoadTrace('t,count\n5,1\n2,1\n', 'c.csv'), 'TIDE_LOAD_TRACE', '--trace');
});
