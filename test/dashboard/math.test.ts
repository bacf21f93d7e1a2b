import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ManualClock } from '../../src/clock.js';
import type { JournalEntry } from '../../src/controller/journal.js';
import { timelineFromDecision } from '../../src/dashboard/collect.js';
import { Sampler } from '../../src/dashboard/sampler.js';
import { type Reading, redactUrl, snapshotOf } from '../../src/dashboard/snapshot.js';
import { addBuckets, bucketIncrease, histogramBuckets, histogramQuantile, parsePrometheusText, sumSeries } from '../../src/metrics/prometheus-text.js';

const INF = Number.POSITIVE_INFINITY;

const EXPOSITION = `# HELP http_request_duration_seconds HTTP request duration in seconds.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.01",method="POST",route="/v1/jobs",status_code="202"} 10
http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/jobs",status_code="202"} 18
http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/jobs",status_code="202"} 20
http_request_duration_seconds_sum{method="POST",route="/v1/jobs",status_code="202"} 0.9
http_request_duration_seconds_count{method="POST",route="/v1/jobs",status_code="202"} 20
http_request_duration_seconds_bucket{le="0.01",method="GET",route="/health",status_code="200"} 500
http_request_duration_seconds_bucket{le="0.1",method="GET",route="/health",status_code="200"} 500
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/health",status_code="200"} 500
http_request_duration_seconds_count{method="GET",route="/health",status_code="200"} 500
http_request_duration_seconds_bucket{le="0.01",method="POST",route="/v1/jobs",status_code="503"} 0
http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/jobs",status_code="503"} 4
http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/jobs",status_code="503"} 5
http_request_duration_seconds_count{method="POST",route="/v1/jobs",status_code="503"} 5
weird_label{path="a \\"quoted\\" \\\\ back\\nslash"} 1.5e3 1700000000000
nan_metric NaN
this line { is broken
`;

test('parsePrometheusText: names, labels with escapes, values, timestamps; broken lines are skipped and counted', () => {
  const { samples, skipped } = parsePrometheusText(EXPOSITION);
  assert.equal(skipped, 1);
  const weird = samples.find((s) => s.name === 'weird_label');
  assert.deepEqual(weird, { name: 'weird_label', labels: { path: 'a "quoted" \\ back\nslash' }, value: 1500 });
  assert.ok(Number.isNaN(samples.find((s) => s.name === 'nan_metric')!.value));
  const inf = samples.find((s) => s.labels.le === '+Inf');
  assert.equal(inf?.value, 20);
});

test('histogramBuckets sums the series that pass the filter; sumSeries adds counts', () => {
  const { samples } = parsePrometheusText(EXPOSITION);
  const traffic = (l: Record<string, string>) => l.route !== '/health';
  assert.deepEqual(histogramBuckets(samples, 'http_request_duration_seconds', traffic), [
    { le: 0.01, count: 10 },
    { le: 0.1, count: 22 },
    { le: INF, count: 25 },
  ]);
  assert.equal(sumSeries(samples, 'http_request_duration_seconds_count', traffic), 25);
  assert.equal(sumSeries(samples, 'http_request_duration_seconds_count', (l) => traffic(l) && l.status_code!.startsWith('5')), 5);
  assert.equal(sumSeries(samples, 'no_such_metric'), 0);
});

test("histogramQuantile matches PromQL's histogram_quantile: interpolation, first bucket from 0, +Inf bucket, no data", () => {
  const b = [
    { le: 0.1, count: 50 },
    { le: 0.5, count: 90 },
    { le: 1, count: 100 },
    { le: INF, count: 100 },
  ];
  // rank 50 is the top of the first bucket; interpolated from 0
  assert.equal(histogramQuantile(0.5, b), 0.1);
  assert.equal(histogramQuantile(0.25, b), 0.05);
  // rank 95: 5 of the 10 in (0.5, 1]
  assert.ok(Math.abs(histogramQuantile(0.95, b)! - 0.75) < 1e-12);
  // a rank in the +Inf bucket answers the highest finite bound
  assert.equal(histogramQuantile(0.99, [{ le: 0.1, count: 1 }, { le: 0.2, count: 2 }, { le: INF, count: 100 }]), 0.2);
  assert.equal(histogramQuantile(0.95, [{ le: 0.1, count: 0 }, { le: INF, count: 0 }]), null);
  assert.equal(histogramQuantile(0.95, [{ le: 0.1, count: 3 }]), null, 'no +Inf bucket: no total to rank by');
  assert.throws(() => histogramQuantile(1.5, b), RangeError);
});

test('bucketIncrease: per-bound growth; a counter that went down reads as a restart from zero', () => {
  const t0 = [{ le: 0.1, count: 10 }, { le: INF, count: 12 }];
  const t1 = [{ le: 0.1, count: 15 }, { le: INF, count: 20 }];
  assert.deepEqual(bucketIncrease(t0, t1), [{ le: 0.1, count: 5 }, { le: INF, count: 8 }]);
  const restarted = [{ le: 0.1, count: 2 }, { le: INF, count: 3 }];
  assert.deepEqual(bucketIncrease(t1, restarted), restarted);
  assert.deepEqual(bucketIncrease([], t0), t0);
  assert.deepEqual(addBuckets([t0, t1]), [{ le: 0.1, count: 25 }, { le: INF, count: 32 }]);
});

function reading(at: number, over: Partial<Reading> = {}): Reading {
  return { at, services: [], queues: [], api: null, balancerFailures: null, timeline: [], problems: [], ...over };
}

const queue = (completionsTotal: number, ready = 0) => ({ queue: 'default', ready, delayed: 0, active: 0, dead: 0, oldestAgeSeconds: 0, completionsTotal, failuresTotal: 0 });

test('snapshotOf: jobs/s is completions over the window; none on the first reading or after a reset', () => {
  const a = reading(1_000_000, { queues: [queue(100, 7)] });
  const b = reading(1_002_000, { queues: [queue(150, 3)] });
  assert.equal(snapshotOf(undefined, a).queues[0]!.jobsPerSecond, null);
  const s = snapshotOf(a, b);
  assert.equal(s.queues[0]!.jobsPerSecond, 25);
  assert.equal(s.queues[0]!.depth, 3);
  assert.equal(snapshotOf(b, reading(1_003_000, { queues: [queue(10)] })).queues[0]!.jobsPerSecond, null);
});

test('snapshotOf: API p95 and error rate from the bucket increases of the replicas seen twice, balancer failures counted as errors', () => {
  const buckets = (fast: number, slow: number) => [
    { le: 0.01, count: fast },
    { le: 0.1, count: fast + slow },
    { le: INF, count: fast + slow },
  ];
  const a = reading(0, {
    api: [{ key: 'api.1:100', buckets: buckets(1000, 0), requests: 1000, errors: 0 }],
    balancerFailures: 4,
  });
  const b = reading(2_000, {
    api: [
      // 80 fast and 20 slow since the last reading; 2 of them 5xx
      { key: 'api.1:100', buckets: buckets(1080, 20), requests: 1100, errors: 2 },
      // new this round: its counts are not in the window yet
      { key: 'api.2:200', buckets: buckets(5000, 5000), requests: 10_000, errors: 10_000 },
    ],
    balancerFailures: 6,
  });
  const s = snapshotOf(a, b).api!;
  // rank 95 of 100: 15 of the 20 in (0.01, 0.1]
  assert.ok(Math.abs(s.p95Seconds! - (0.01 + 0.09 * 0.75)) < 1e-12);
  assert.equal(s.errorRate, (2 + 2) / (100 + 2));
  assert.equal(s.requestsPerSecond, 51);

  // a restarted replica (same key, counters lower) counts from zero
  const c = reading(3_000, { api: [{ key: 'api.1:100', buckets: buckets(10, 0), requests: 10, errors: 0 }], balancerFailures: 6 });
  assert.equal(snapshotOf(b, c).api!.requestsPerSecond, 10);
  // no traffic in the window: no p95, no error rate (a gap on the chart, not a zero)
  const quiet = snapshotOf(c, reading(4_000, { api: c.api, balancerFailures: 6 })).api!;
  assert.deepEqual(quiet, { p95Seconds: null, errorRate: null, requestsPerSecond: 0 });
  assert.equal(snapshotOf(undefined, reading(0)).api, null, 'no api service, no api view');
});

test('timelineFromDecision: only changes make the timeline, with their reasons', () => {
  const d: JournalEntry = {
    id: '7', at: 5, service: 'worker', current: 2, desired: 5, ready: 2, applied: true, dryRun: false, paused: false,
    limitedBy: 'ScaleUpLimit', reasons: [{ code: 'ScaleUpLimit', message: 'At most +3 per 15 s.' }], metrics: {}, errors: [],
  };
  assert.deepEqual(timelineFromDecision(d), {
    id: 'j7', at: 5, service: 'worker', from: 2, to: 5, by: 'autoscaler', applied: true, limitedBy: 'ScaleUpLimit',
    reasons: [{ code: 'ScaleUpLimit', message: 'At most +3 per 15 s.' }],
  });
  assert.equal(timelineFromDecision({ ...d, desired: 2 }), undefined);
});

test('redactUrl hides passwords and token-like parameters', () => {
  assert.equal(redactUrl('postgres://app:s3cret@db:5432/main?sslmode=require&password=x'), 'postgres://app:***@db:5432/main?sslmode=require&password=***');
  assert.equal(redactUrl('postgres://postgres@127.0.0.1:5432/test'), 'postgres://postgres@127.0.0.1:5432/test');
  assert.equal(redactUrl('not a url'), '(unparseable URL)');
});

test('Sampler: one round per interval on the injected clock, a bounded ring, rates between rounds, no overlap, stop leaves no timer', async () => {
  const clock = new ManualClock(1_000_000);
  let completions = 0;
  let reads = 0;
  const sampler = new Sampler({
    clock,
    intervalMs: 1_000,
    historySize: 3,
    read: async (now) => {
      reads++;
      completions += 10;
      return reading(now, {
        queues: [queue(completions)],
        timeline: reads === 2 ? [{ id: 'x', at: now, service: 'worker', from: 1, to: 2, by: 'manual', applied: true, limitedBy: null, reasons: [] }] : [],
      });
    },
  });
  const seen: number[] = [];
  sampler.on('snapshot', (s: { at: number }) => seen.push(s.at));
  const next = () => new Promise<void>((resolve) => sampler.once('snapshot', () => resolve()));

  sampler.start();
  let round = next();
  clock.advance(0);
  await round;
  for (let i = 0; i < 4; i++) {
    // the next round is scheduled once the previous one has finished
    await new Promise<void>((resolve) => setImmediate(resolve));
    round = next();
    clock.advance(1_000);
    await round;
  }
  assert.equal(reads, 5);
  assert.deepEqual(seen, [1_000_000, 1_001_000, 1_002_000, 1_003_000, 1_004_000]);
  const history = sampler.history();
  assert.equal(history.length, 3, 'the ring keeps the last 3');
  assert.deepEqual(history.map((s) => s.queues[0]!.jobsPerSecond), [10, 10, 10]);
  assert.deepEqual(sampler.timeline().map((e) => e.id), ['x']);
  await sampler.stop();
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(clock.pending, 0, 'no timer left');
});

test('Sampler: a failing read is logged once per run of failures and emits nothing', async () => {
  const lines: string[] = [];
  let fail = true;
  const sampler = new Sampler({ clock: new ManualClock(), log: (l) => lines.push(l), read: async (now) => {
    if (fail) throw new Error('database restarting');
    return reading(now);
  } });
  assert.equal(await sampler.tick(), undefined);
  assert.equal(await sampler.tick(), undefined);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /database restarting/);
  fail = false;
  assert.ok(await sampler.tick());
  await sampler.stop();
});
