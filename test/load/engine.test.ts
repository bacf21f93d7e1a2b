// One thread of the load generator (load/engine.ts) on its own, against a loopback server: the
// open model sends exactly its thread's share of the schedule, counts statuses and failures
// k6's way, drops what it cannot send at once; the closed model keeps its VUs busy; an abort
// ends a run. Counts are asserted, never times.
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';

import { type EnginePlan, emptyCounters, runEngine } from '../../src/load/engine.js';
import { freePort } from '../../src/net/ports.js';

let server: Server;
let origin: string;
let requests = 0;
/** Requests the server holds without answering (for the in-flight cap). */
const held: Array<() => void> = [];

before(async () => {
  server = createServer((req, res) => {
    requests++;
    req.resume();
    const answer = () => res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain' }).end('ok');
    if (req.url === '/hold') held.push(answer);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function plan(model: EnginePlan['model'], path = '/', thread = { index: 0, count: 1 }, at = origin): EnginePlan {
  return { origin: at, template: { method: 'GET', path, headers: {} }, model, connections: 4, timeoutMs: 10_000, seed: 1, thread };
}

const constant = (rate: number, durationMs: number, maxInFlight = 100) => ({ kind: 'open' as const, schedule: { kind: 'constant' as const, rate, durationMs }, maxInFlight, maxLagMs: 60_000 });

test('open model: every arrival of the schedule is sent once and answered, each timed', async () => {
  const before = requests;
  const result = await runEngine(plan(constant(100, 200)), emptyCounters());
  assert.equal(result.sent, 20, '100/s for 200 ms');
  assert.equal(result.completed, 20);
  assert.equal(requests - before, 20);
  assert.deepEqual(result.statusCodes, { 200: 20 });
  assert.equal(result.failed, 0);
  assert.equal(result.inFlight, 0);
  assert.equal(result.histogram.count, 20);
});

test("open model: a thread sends its share of the schedule (every Nth arrival), and the shares add up", async () => {
  const shares = await Promise.all([0, 1, 2].map((index) => runEngine(plan(constant(100, 200), '/', { index, count: 3 }), emptyCounters())));
  assert.deepEqual(shares.map((r) => r.sent), [7, 7, 6]);
});

test('4xx answers count as failed (k6: outside 200..399); a refused connection is an error, not a status', async () => {
  const missing = await runEngine(plan(constant(100, 50), '/missing'), emptyCounters());
  assert.deepEqual(missing.statusCodes, { 404: 5 });
  assert.equal(missing.failed, 5);
  const refused = await runEngine(plan(constant(100, 50), '/', { index: 0, count: 1 }, `http://127.0.0.1:${await freePort()}`), emptyCounters());
  assert.equal(refused.failed, 5);
  assert.deepEqual(refused.statusCodes, {});
  assert.equal(Object.values(refused.errors).reduce((a, b) => a + b, 0), 5);
});

test('open model: arrivals past the in-flight cap are dropped and counted, not queued', { timeout: 20_000 }, async () => {
  const counters = emptyCounters();
  const run = runEngine(plan(constant(200, 100, 2), '/hold'), counters);
  // the server holds both requests the cap lets out until the schedule is over
  while (counters.sent + counters.dropped < 20 || held.length < 2) await new Promise((resolve) => setImmediate(resolve));
  for (const answer of held.splice(0)) answer();
  const result = await run;
  assert.equal(result.sent, 2);
  assert.equal(result.dropped, 18);
  assert.equal(result.completed, 2);
});

test('closed model: VUs loop request -> response for the stages, then stop with nothing in flight', async () => {
  const result = await runEngine(plan({ kind: 'closed', startVus: 2, stages: [{ durationMs: 150, target: 2 }] }), emptyCounters());
  assert.ok(result.sent >= 2, `sent ${result.sent}`);
  assert.equal(result.completed, result.sent);
  assert.equal(result.inFlight, 0);
  assert.equal(result.failed, 0);
});

test('an abort ends an open run before its schedule does', { timeout: 20_000 }, async () => {
  const controller = new AbortController();
  const counters = emptyCounters();
  const run = runEngine(plan(constant(100, 600_000)), counters, controller.signal);
  while (counters.completed < 3) await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  const result = await run;
  assert.ok(result.sent < 60_000, 'far fewer than the schedule');
});
