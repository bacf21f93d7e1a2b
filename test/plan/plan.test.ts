// The capacity planner: the table's math against hand-computed Erlang C values, and a real
// short measurement of the sleep handler (constant time) on PostgreSQL with an in-process API.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { probWaitExceeds } from '../../src/core/erlang.js';
import { apiInstancesNeeded, capacityTable, plannedLateShare, serviceTimeOf, workerCapacity, workersNeeded } from '../../src/plan/model.js';
import { runPlan } from '../../src/plan/run.js';
import { freshSchema } from '../helpers/db.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('workers needed: Erlang C by hand (M/M/N, a = 2 erlangs, W = 1 s = S)', () => {
  // Hand computation with the B recursion: C(3,2) = 4/9, C(4,2) = 0.173913, C(5,2) = 0.059701;
  // P(wait > 1 s) = C exp(-(N - a)): N=3 0.16350, N=4 0.023536, N=5 0.0029724.
  const service = { mean: 1, scv: 1 };
  const m = { lambda: 2, serviceTime: 1, scv: 1, wait: 1 };
  assert.ok(Math.abs(probWaitExceeds(3, m) - (4 / 9) * Math.exp(-1)) < 1e-9);
  assert.ok(Math.abs(probWaitExceeds(4, m) - 0.023536) < 1e-5);
  assert.ok(Math.abs(probWaitExceeds(5, m) - 0.0029724) < 1e-6);
  // the table plans for the SLO policy's share of late jobs: (1 - attainment) / 2
  assert.ok(Math.abs(plannedLateShare(0.99) - 0.005) < 1e-12);
  assert.equal(workersNeeded(2, service, { concurrency: 1, waitSeconds: 1, attainment: 0.99 }), 5); // 0.00297 <= 0.005 < 0.0235
  assert.equal(workersNeeded(2, service, { concurrency: 1, waitSeconds: 1, attainment: 0.95 }), 4); // 0.0235 <= 0.025 < 0.1635
  assert.equal(workersNeeded(2, service, { concurrency: 2, waitSeconds: 1, attainment: 0.99 }), 3); // 5 servers needed: 3 workers of 2
  assert.equal(workersNeeded(0, service, { concurrency: 2, waitSeconds: 1, attainment: 0.99 }), 0);
});

test('one worker\'s capacity is where the predicted late share meets the planned one; API instances by division', () => {
  const service = { mean: 0.2, scv: 1 };
  const slo = { concurrency: 10, waitSeconds: 10, attainment: 0.99 };
  const cap = workerCapacity(service, slo);
  assert.ok(cap > 0 && cap < 50, `${cap}`); // below concurrency / mean
  assert.ok(Math.abs(probWaitExceeds(10, { lambda: cap, serviceTime: 0.2, scv: 1, wait: 10 }) - 0.005) < 1e-6);
  assert.equal(workersNeeded(cap * 0.999, service, slo), 1);
  assert.equal(workersNeeded(cap * 1.01, service, slo), 2);
  assert.deepEqual([apiInstancesNeeded(0, 300), apiInstancesNeeded(300, 300), apiInstancesNeeded(301, 300), apiInstancesNeeded(1000, 300)], [0, 1, 2, 4]);
  const rows = capacityTable([10, 100], { mean: 0.2, scv: 1 }, slo, 300);
  assert.deepEqual(rows.map((r) => [r.rate, r.workers, r.apiInstances]), [[10, 1, 1], [100, 3, 1]]);
  assert.ok(Math.abs(rows[1]!.workerUtilisation - (100 * 0.2) / 30) < 1e-12);
  const st = serviceTimeOf([100, 300]);
  assert.equal(st.mean, 0.2);
  assert.ok(Math.abs(st.scv - 20_000 / 40_000) < 1e-12); // sample variance 20000 ms^2 / mean^2
});

test('a real short measurement: sleep 40 ms at concurrency 4 gives a sensible capacity; the in-process API is ramped; the schema is dropped', async () => {
  const db = await freshSchema('plan');
  try {
    const result = await runPlan({
      handler: 'sleep',
      payload: { ms: 40 },
      concurrency: 4,
      waitSeconds: 1,
      attainment: 0.99,
      rates: [10, 200],
      databaseUrl: db.url,
      schema: db.schema,
      stepSeconds: 0.4,
      api: { latencyP95Ms: 2000, startRate: 20, stepSeconds: 0.4, maxSteps: 2 },
    });
    const s = result.service;
    assert.ok(s.samples >= 20, `${s.samples} samples`);
    // a 40 ms sleep takes at least 40 ms; a constant time has a small variability
    assert.ok(s.mean >= 0.04 && s.mean < 0.12, `mean ${s.mean}`);
    assert.ok(s.scv < 0.25, `scv ${s.scv}`);
    // one worker cannot take more than concurrency / mean, and with W = 25 S nearly that
    assert.ok(result.workerCapacity < 4 / s.mean, `${result.workerCapacity}`);
    assert.ok(result.workerCapacity > 0.7 * (4 / s.mean), `${result.workerCapacity}`);
    assert.equal(result.rows[0]!.workers, 1);
    assert.ok(result.rows[1]!.workers >= 2);
    assert.equal(result.rows[1]!.workers, workersNeeded(200, s, { concurrency: 4, waitSeconds: 1, attainment: 0.99 }));
    // the API took both rates tried within the (loose) target
    assert.ok(result.api);
    assert.deepEqual(result.api.steps.map((x) => [x.rate, x.ok]), [[20, true], [40, true]]);
    assert.equal(result.api.capacity, 40);
    assert.equal(result.rows[1]!.apiInstances, 5);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [db.schema]);
      assert.equal(rows.length, 0);
    } finally {
      await client.end();
    }
  } finally {
    await db.drop();
  }
});

test('tide plan: bad flags exit 2 naming the flag', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(root, 'bin', 'tide.js'), 'plan', ...args, '--json'], { cwd: root }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
      });
    });
  for (const [args, arg] of [
    [['--rates', '10,x'], '--rates'],
    [['--attainment', '1.5'], '--attainment'],
    [['--payload', '{nope'], '--payload'],
    [['--api', 'localhost:3000'], '--api'],
  ] as const) {
    const r = await run([...args]);
    assert.equal(r.code, 2, r.stderr);
    const { error } = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: { where: { arg: string } } };
    assert.equal(error.where.arg, arg);
  }
});
