/**
 * `tide doctor`'s checks on constructed facts: each runbook symptom gives its finding with the
 * right severity, a healthy system gives none, and findings come most severe first.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';

import { apiLatency } from '../../src/doctor/checks/api-latency.js';
import { balancerRefusals } from '../../src/doctor/checks/balancer-refusals.js';
import { capacity } from '../../src/doctor/checks/capacity.js';
import { dbConnections } from '../../src/doctor/checks/db-connections.js';
import { failingSources } from '../../src/doctor/checks/failing-sources.js';
import { flapping } from '../../src/doctor/checks/flapping.js';
import { poolWaiting } from '../../src/doctor/checks/pool-waiting.js';
import { queueBacklog } from '../../src/doctor/checks/queue-backlog.js';
import { unevenLoad } from '../../src/doctor/checks/uneven-load.js';
import { workersNotConsuming } from '../../src/doctor/checks/workers-not-consuming.js';
import { diagnose, hasCritical } from '../../src/doctor/diagnose.js';
import { parseRequestCounters, quantileUpperBound, windowCounters } from '../../src/doctor/metrics-text.js';
import { DEFAULT_THRESHOLDS, type Facts } from '../../src/doctor/types.js';

/** A healthy system: an api of 2 behind the balancer, a worker of 3 keeping up, a quiet database. */
function healthy(): Facts {
  return {
    at: 1_000_000,
    windowSeconds: 5,
    thresholds: { ...DEFAULT_THRESHOLDS },
    services: [
      { name: 'api', kind: 'api', desired: 2, healthy: 2, min: 1, max: 4 },
      { name: 'worker', kind: 'worker', desired: 3, healthy: 3, min: 1, max: 10, sloWaitSeconds: 30 },
    ],
    upstreams: [
      { id: 'api-1', healthy: true, draining: false, requests: 50, inFlight: 1, failures: 0 },
      { id: 'api-2', healthy: true, draining: false, requests: 48, inFlight: 1, failures: 0 },
    ],
    apis: [
      { id: 'api-1', requests: 50, errors: 0, p95Seconds: 0.05, pool: { total: 3, idle: 3, waiting: 0 } },
      { id: 'api-2', requests: 48, errors: 0, p95Seconds: 0.05, pool: { total: 2, idle: 2, waiting: 0 } },
    ],
    queues: [{ name: 'default', source: 'api-1 /v1/queues', depth: 12, depthBefore: 15, oldestAgeSeconds: 1, active: 20, completed: 400 }],
    database: { connections: 20, maxConnections: 100 },
    scaleEvents: [],
    sourceFailures: [],
    notes: [],
  };
}

const codes = (findings: Array<{ code: string }>) => findings.map((f) => f.code);

test('a healthy system: no finding', () => {
  assert.deepEqual(diagnose(healthy()), []);
});

test('workers not consuming: depth held, nothing active or completed -> critical; no healthy worker -> "none"', () => {
  const facts = healthy();
  facts.queues = [{ name: 'default', source: 'api', depth: 50, depthBefore: 50, active: 0, completed: 0, oldestAgeSeconds: 4 }];
  facts.services[1] = { ...facts.services[1]!, desired: 0, healthy: 0, min: 0 };
  const [f] = workersNotConsuming(facts);
  assert.equal(f?.severity, 'critical');
  assert.match(f!.title, /no worker consumes/);
  assert.match(f!.evidence, /50 waiting \(was 50/);
  assert.match(f!.fix, /tide scale worker=N/);

  // workers run but none of them takes it
  facts.services[1] = { ...facts.services[1]!, desired: 3, healthy: 3 };
  assert.match(workersNotConsuming(facts)[0]!.title, /while its workers are idle/);
  // RabbitMQ says no consumer, whatever the rest
  assert.equal(workersNotConsuming({ ...facts, queues: [{ name: 'habitat-events', source: 'source events', depth: 5, consumers: 0 }] }).length, 1);
  // draining (depth falls, jobs complete): fine
  assert.deepEqual(workersNotConsuming({ ...facts, queues: [{ name: 'default', source: 'api', depth: 40, depthBefore: 50, active: 10, completed: 10 }] }), []);
  // a single reading (no window) says nothing about "idle"
  assert.deepEqual(workersNotConsuming({ ...facts, queues: [{ name: 'default', source: 'source q', depth: 40 }] }), []);
});

test('queue backlog: depth over 1000 warns, over 5000 is critical; the oldest job past the SLO wait warns', () => {
  const facts = healthy();
  facts.queues = [{ name: 'default', source: 'api', depth: 1500, depthBefore: 1200, oldestAgeSeconds: 10, active: 30, completed: 100 }];
  assert.deepEqual(queueBacklog(facts).map((f) => [f.code, f.severity]), [['queue-backlog', 'warning']]);
  facts.queues[0]!.depth = 6000;
  assert.deepEqual(queueBacklog(facts).map((f) => [f.code, f.severity]), [['queue-backlog', 'critical']]);
  // the worker's SLO says 30 s: 45 s is late (without an SLO the line is 5 minutes)
  facts.queues = [{ name: 'default', source: 'api', depth: 10, oldestAgeSeconds: 45 }];
  assert.deepEqual(codes(queueBacklog(facts)), ['queue-age']);
  facts.services[1] = { ...facts.services[1]! };
  delete facts.services[1].sloWaitSeconds;
  assert.deepEqual(codes(queueBacklog(facts)), []);
  facts.queues[0]!.oldestAgeSeconds = 301;
  assert.deepEqual(codes(queueBacklog(facts)), ['queue-age']);
});

test('API latency and errors: p95 over 500 ms warns (over 2 s critical), 5xx over 5% warns', () => {
  const facts = healthy();
  facts.apis[0]!.p95Seconds = 1;
  assert.deepEqual(apiLatency(facts).map((f) => [f.code, f.severity, f.subject]), [['api-latency', 'warning', 'api-1']]);
  facts.apis[0]!.p95Seconds = 2.5;
  assert.equal(apiLatency(facts)[0]!.severity, 'critical');
  facts.apis[0]!.p95Seconds = 0.05;
  facts.apis[1]!.errors = 5; // 5 of 48: 10.4%
  assert.deepEqual(codes(apiLatency(facts)), ['api-errors']);
  // from a source: no request count, an error rate
  assert.deepEqual(codes(apiLatency({ ...healthy(), apis: [{ id: 'api (source latency)', p95Seconds: 0.7, errorRate: 0.2 }] })), ['api-latency', 'api-errors']);
});

test('uneven load: one replica taking 3x another warns and names the quiet one; an unhealthy one is reported', () => {
  const facts = healthy();
  facts.upstreams = [
    { id: 'api-1', healthy: true, draining: false, requests: 90, inFlight: 0, failures: 0 },
    { id: 'api-2', healthy: true, draining: false, requests: 10, inFlight: 6, failures: 0 },
  ];
  facts.apis[1]!.p95Seconds = 0.25;
  const [f] = unevenLoad(facts);
  assert.equal(f?.code, 'uneven-load');
  assert.equal(f.subject, 'api-2');
  assert.match(f.evidence, /api-1 90, api-2 10 .* fair share is 50 .* p95 250 ms/);
  // too few requests to say anything
  facts.upstreams = facts.upstreams.map((u) => ({ ...u, requests: u.requests / 10 }));
  assert.deepEqual(unevenLoad(facts), []);
  facts.upstreams = [{ id: 'api-1', healthy: true, draining: false, requests: 100, inFlight: 0, failures: 0 }, { id: 'api-2', healthy: false, draining: false, requests: 0, inFlight: 0, failures: 3 }];
  assert.deepEqual(codes(unevenLoad(facts)), ['replica-unhealthy']);
});

test('database: connections over 80% of max_connections warn, over 95% critical; clients waiting in a pool are critical', () => {
  const facts = healthy();
  facts.database = { connections: 85, maxConnections: 100 };
  assert.deepEqual(dbConnections(facts).map((f) => f.severity), ['warning']);
  facts.database = { connections: 97, maxConnections: 100 };
  assert.deepEqual(dbConnections(facts).map((f) => f.severity), ['critical']);
  // the doctor's own connection refused: the symptom itself
  facts.database = { connections: 0, maxConnections: 0, refused: 'sorry, too many clients already' };
  const [refused] = dbConnections(facts);
  assert.equal(refused?.severity, 'critical');
  assert.match(refused!.evidence, /too many clients/);
  facts.apis[0]!.pool = { total: 10, idle: 0, waiting: 4 };
  const [p] = poolWaiting(facts);
  assert.equal(p?.severity, 'critical');
  assert.match(p!.evidence, /total 10, idle 0, waiting 4/);
});

test('capacity: pinned at max while short is critical; at min while its SLO is missed warns; not short: nothing', () => {
  const facts = healthy();
  facts.queues = [{ name: 'default', source: 'api', depth: 300, oldestAgeSeconds: 90, active: 100, completed: 50 }];
  facts.services[1] = { ...facts.services[1]!, desired: 10, healthy: 10 };
  assert.deepEqual(capacity(facts).map((f) => [f.code, f.severity, f.subject]), [['at-max', 'critical', 'worker']]);
  facts.services[1] = { ...facts.services[1]!, desired: 1, healthy: 1 };
  assert.deepEqual(capacity(facts).map((f) => [f.code, f.severity]), [['at-min', 'warning']]);
  facts.queues[0]!.oldestAgeSeconds = 5;
  assert.deepEqual(capacity(facts), []);
  // the api: every replica over 500 ms at its max
  const api = healthy();
  api.services[0] = { ...api.services[0]!, desired: 4 };
  for (const a of api.apis) a.p95Seconds = 0.8;
  assert.deepEqual(codes(capacity(api)), ['at-max']);
  // counts unknown (config only): no capacity finding
  delete api.services[0].desired;
  assert.deepEqual(capacity(api), []);
});

test('flapping: reversals within 300 s in the journal warn; spaced-out changes do not', () => {
  const facts = healthy();
  const t0 = facts.at - 3000_000;
  facts.scaleEvents = [
    { service: 'worker', at: t0, from: 2, to: 5 },
    { service: 'worker', at: t0 + 60_000, from: 5, to: 3 },
    { service: 'worker', at: t0 + 120_000, from: 3, to: 6 },
    { service: 'worker', at: t0 + 180_000, from: 6, to: 2 },
  ];
  const [f] = flapping(facts);
  assert.equal(f?.code, 'flapping');
  assert.match(f!.title, /3 reversals/);
  facts.scaleEvents = facts.scaleEvents.map((e, i) => ({ ...e, at: t0 + i * 600_000 }));
  assert.deepEqual(flapping(facts), []);
});

test('balancer refusals: 429s from its rate limit warn, 503s for want of a replica are critical', () => {
  const facts = healthy();
  facts.balancer = { rateLimited: 0, noUpstream: 0 };
  assert.deepEqual(balancerRefusals(facts), []);
  facts.balancer = { rateLimited: 476, noUpstream: 3 };
  assert.deepEqual(balancerRefusals(facts).map((f) => [f.code, f.severity]), [['no-upstream', 'critical'], ['rate-limited', 'warning']]);
});

test('fixes name the service of a replica (tide up ids are service.n)', () => {
  const facts = healthy();
  facts.apis = [{ id: 'app.2', requests: 40, errors: 0, p95Seconds: 0.9 }];
  assert.match(apiLatency(facts)[0]!.fix, /`tide scale app=N`/);
  facts.apis = [{ id: 'app (source latency)', p95Seconds: 0.9 }];
  assert.match(apiLatency(facts)[0]!.fix, /`tide scale app=N`/);
});

test('failing sources: one warning each, with the code', () => {
  const facts = healthy();
  facts.sourceFailures = [{ source: 'source events', service: 'worker', code: 'TIDE_SOURCE_FAILED', message: 'rabbitmq source "events": connection refused' }];
  const [f] = failingSources(facts);
  assert.equal(f?.severity, 'warning');
  assert.match(f!.evidence, /^TIDE_SOURCE_FAILED: /);
});

test('diagnose: most severe first, and critical sets the exit', () => {
  const facts = healthy();
  facts.sourceFailures = [{ source: 'x', code: 'TIDE_SOURCE_FAILED', message: 'down' }];
  facts.queues = [{ name: 'default', source: 'api', depth: 50, depthBefore: 50, active: 0, completed: 0 }];
  facts.database = { connections: 85, maxConnections: 100 };
  const findings = diagnose(facts);
  assert.deepEqual(
    findings.map((f) => f.severity),
    [...findings.map((f) => f.severity)].sort((a, b) => ['critical', 'warning', 'info'].indexOf(a) - ['critical', 'warning', 'info'].indexOf(b)),
  );
  assert.equal(findings[0]!.code, 'workers-not-consuming');
  assert.ok(hasCritical(findings));
  assert.ok(!hasCritical(diagnose(healthy())));
});

test('metrics text: the request histogram summed over routes, without health checks; window p95 and 5xx', () => {
  const text = (fast: number, slow: number, errors: number) =>
    [
      '# TYPE http_request_duration_seconds histogram',
      `http_request_duration_seconds_bucket{le="0.1",method="GET",route="/health",status_code="200"} 1000`,
      `http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/health",status_code="200"} 1000`,
      `http_request_duration_seconds_count{method="GET",route="/health",status_code="200"} 1000`,
      `http_request_duration_seconds_bucket{le="0.1",method="GET",route="/v1/jobs/:id",status_code="200"} ${fast}`,
      `http_request_duration_seconds_bucket{le="1",method="GET",route="/v1/jobs/:id",status_code="200"} ${fast + slow}`,
      `http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/jobs/:id",status_code="200"} ${fast + slow}`,
      `http_request_duration_seconds_count{method="GET",route="/v1/jobs/:id",status_code="200"} ${fast + slow}`,
      `http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/jobs",status_code="503"} ${errors}`,
      `http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/jobs",status_code="503"} ${errors}`,
      `http_request_duration_seconds_count{method="POST",route="/v1/jobs",status_code="503"} ${errors}`,
    ].join('\n');
  const before = parseRequestCounters(text(100, 0, 0));
  assert.equal(before.count, 100);
  assert.equal(quantileUpperBound(before, 0.95), 0.1);
  // in the window: 10 fast, 10 slow, 5 errors -> p95 in the 1 s bucket, 5 of 25 failed
  const w = windowCounters(before, parseRequestCounters(text(110, 10, 5)));
  assert.deepEqual([w.count, w.errors, quantileUpperBound(w, 0.95)], [25, 5, 1]);
  // a restarted replica (counters went down) counts from zero
  assert.equal(windowCounters(before, parseRequestCounters(text(3, 0, 0))).count, 3);
  assert.equal(quantileUpperBound(parseRequestCounters(''), 0.95), undefined);
});

test('every finding code a check can give is documented in docs/doctor.md', () => {
  const dir = new URL('../../src/doctor/checks/', import.meta.url);
  const codes = new Set(
    readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(new URL(f, dir), 'utf8').matchAll(/code: '([a-z-]+)'/g)].map((m) => m[1]!)),
  );
  assert.ok(codes.size >= 15, `found ${codes.size} codes`);
  const doc = readFileSync(new URL('../../docs/doctor.md', import.meta.url), 'utf8');
  for (const code of codes) assert.match(doc, new RegExp(`^\\| \`${code}\` \\|`, 'm'), `docs/doctor.md documents ${code}`);
});
