/**
 * `tide doctor` on real conditions, made for real: jobs enqueued with no worker running
 * (workers not consuming: critical, exit 1), every connection of an API replica's pool held
 * (clients waiting), and a slow replica behind the load balancer (uneven distribution and p95).
 * The traffic of the gathering window is sent inside the window (the `wait` seam), so nothing
 * sleeps and the counts are the test's own.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setImmediate as yieldOnce } from 'node:timers/promises';

import type { FastifyInstance } from 'fastify';
import pg from 'pg';

import { openJournal } from '../../src/controller/journal.js';
import { diagnose } from '../../src/doctor/diagnose.js';
import { gatherFacts } from '../../src/doctor/gather.js';
import { buildApi } from '../../src/runtime/api/server.js';
import { startApi } from '../../src/runtime/api/start.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type Balancer, createBalancer } from '../../src/balancer/balancer.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';
import { runTide } from '../helpers/tide.js';

let schema: TestSchema;
let dir: string;

before(async () => {
  schema = await freshSchema('doc');
  dir = await mkdtemp(path.join(tmpdir(), 'tide-doctor-'));
});

after(async () => {
  await schema.drop();
  await rm(dir, { recursive: true, force: true });
});

const tide = (args: string[]) => runTide(args, { cwd: dir, env: { ...process.env, DATABASE_URL: schema.url }, timeout: 60_000 });

test('jobs enqueued with no worker running: "workers not consuming" is critical and tide doctor exits 1', { timeout: 90_000 }, async () => {
  const api = await startApi({ databaseUrl: schema.url, schema: schema.schema, port: 0, version: 'test', rateLimit: false, defaultMetrics: false });
  try {
    const jobs = Array.from({ length: 30 }, () => ({ handler: 'sleep', payload: { ms: 10 } }));
    const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs }) });
    assert.equal(res.status, 202);

    const run = await tide(['doctor', '--api', api.url, '--window', '0.3', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { critical: boolean; findings: Array<{ severity: string; code: string; subject?: string; evidence: string }> };
    assert.equal(report.critical, true);
    const first = report.findings[0]!;
    assert.deepEqual([first.severity, first.code, first.subject], ['critical', 'workers-not-consuming', 'default']);
    assert.match(first.evidence, /30 waiting \(was 30/);

    // the terminal report says the same, most severe first
    const text = await tide(['doctor', '--api', api.url, '--window', '0.1']);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^CRITICAL workers-not-consuming: Queue default/m);
    assert.match(text.stdout, /fix: /);
  } finally {
    await api.close();
  }
});

test('tide doctor with nothing to examine says so (TIDE_DOCTOR_NO_TARGET, exit 2)', async () => {
  const run = await tide(['doctor', '-c', path.join(dir, 'absent.yaml')]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /TIDE_DOCTOR_NO_TARGET/);
});

test('without tide up, the config\'s metric sources: a queue with no consumer is critical, an unreachable source a warning', { timeout: 60_000 }, async () => {
  const config = path.join(dir, 'sources.yaml');
  await writeFile(
    config,
    [
      'project: elsewhere',
      `database: { url: "${schema.url}", schema: ${schema.schema} }`,
      'services:',
      '  worker:',
      '    kind: command',
      '    command: node worker.js',
      '    min: 1',
      '    max: 5',
      '    sources:',
      // a real SQL source answering as a broker would about its queue: 2500 ready, no consumer
      '      events:',
      '        kind: postgres',
      `        connection_string: "${schema.url}"`,
      "        query: SELECT * FROM (VALUES ('queue_depth', 2500), ('consumers', 0)) AS t(metric, value)",
      '      cache:',
      '        kind: redis',
      '        url: redis://127.0.0.1:1',
      '        key: jobs',
      '        timeout_ms: 1000',
      '',
    ].join('\n'),
  );
  const run = await tide(['doctor', '-c', config, '--window', '0.1', '--json']);
  assert.equal(run.code, 1, run.stderr);
  const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { findings: Array<{ severity: string; code: string; subject?: string }>; notes: string[] };
  assert.deepEqual(
    report.findings.map((f) => [f.severity, f.code, f.subject]),
    [
      ['critical', 'workers-not-consuming', 'events'],
      ['warning', 'queue-backlog', 'events'],
      ['warning', 'source-failing', 'source cache'],
    ],
  );
  assert.ok(report.notes.some((n) => /no load balancer/.test(n)));
});

test('Tidescale workers outside tide up: the worker queue read from the database (builtin source); jobs nobody takes are critical', { timeout: 60_000 }, async () => {
  const engine = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, poolSize: 1 });
  try {
    await engine.enqueueMany(Array.from({ length: 12 }, () => ({ handler: 'sleep', queue: 'imports', payload: { ms: 1 } })));
  } finally {
    await engine.close();
  }
  const config = path.join(dir, 'workers.yaml');
  await writeFile(
    config,
    ['project: k8s', `database: { url: "${schema.url}", schema: ${schema.schema} }`, 'services:', '  importer: { kind: worker, queues: [imports], min: 1, max: 4 }', ''].join('\n'),
  );
  const run = await tide(['doctor', '-c', config, '--window', '0.2', '--json']);
  assert.equal(run.code, 1, run.stderr);
  const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { findings: Array<{ severity: string; code: string; title: string; subject?: string; evidence: string }> };
  const [first] = report.findings;
  assert.deepEqual([first?.severity, first?.code, first?.subject], ['critical', 'workers-not-consuming', 'queue-imports']);
  assert.match(first!.title, /nothing consumes them/);
  assert.match(first!.evidence, /12 waiting \(was 12 .*importer: \? healthy of \?/);
});

/** A jobs API on a pool the test owns (so it can hold the pool's connections). */
async function apiOn(pool: pg.Pool, engine: PostgresQueue, delayMs = 0): Promise<{ app: FastifyInstance; url: string }> {
  const app = buildApi({ engine, pool, version: 'test', rateLimit: false, defaultMetrics: false, dbCheck: async () => undefined });
  // a slow replica: every request waits first (the balancer's health checks too, well within their timeout)
  if (delayMs > 0) app.addHook('onRequest', async () => new Promise((resolve) => setTimeout(resolve, delayMs)));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return { app, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

test('every connection of a replica pool held: clients wait (pool-waiting, critical); pg_stat_activity is counted', { timeout: 60_000 }, async () => {
  const pool = new pg.Pool({ connectionString: schema.url, max: 2, connectionTimeoutMillis: 30_000 });
  pool.on('error', () => undefined);
  const engine = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, pool });
  const { app, url } = await apiOn(pool, engine);
  const held = [await pool.connect(), await pool.connect()];
  let waiting: Promise<Response> | undefined;
  try {
    // a request that needs the database now queues for a connection
    waiting = fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handler: 'sleep', payload: { ms: 1 } }) });
    while (pool.waitingCount === 0) await yieldOnce();

    const facts = await gatherFacts({ apis: [{ id: 'api-1', url }], databaseUrl: schema.url, schema: schema.schema, windowMs: 0, timeoutMs: 500 });
    // its /metrics and /v1/queues wait for the pool too (and time out): the pool is still read
    const stats = facts.apis[0]?.pool;
    assert.deepEqual([stats?.total, stats?.idle], [2, 0]);
    assert.ok(stats!.waiting >= 1);
    const findings = diagnose(facts);
    const pooled = findings.find((f) => f.code === 'pool-waiting');
    assert.equal(pooled?.severity, 'critical');
    assert.equal(pooled?.subject, 'api-1');
    // the database side: our connections are among pg_stat_activity's, against max_connections
    assert.ok(facts.database && facts.database.connections >= held.length && facts.database.maxConnections > facts.database.connections);
  } finally {
    for (const c of held) c.release();
    assert.equal((await waiting)?.status, 202, 'the queued request completes once connections are free');
    await app.close();
    await engine.close();
    await pool.end();
  }
});

test('connections exhausted for real (a role limited to 2, both held): the database refuses the doctor, db-connections is critical', { timeout: 60_000 }, async () => {
  // a role's CONNECTION LIMIT fails the same way as max_connections (SQLSTATE 53300) without
  // taking the slots of everything else on the shared server
  const role = `doctor_${schema.schema}`;
  const admin = new pg.Client({ connectionString: schema.url });
  await admin.connect();
  const held: pg.Client[] = [];
  try {
    // a password, so it logs in under password auth (the embedded server) as under trust
    const password = `pw${schema.schema}`;
    await admin.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}' CONNECTION LIMIT 2`);
    const url = new URL(schema.url);
    url.username = role;
    url.password = password;
    for (let i = 0; i < 2; i++) {
      const c = new pg.Client({ connectionString: url.toString() });
      await c.connect();
      held.push(c);
    }
    const facts = await gatherFacts({ databaseUrl: url.toString(), windowMs: 0 });
    assert.match(facts.database?.refused ?? '', /too many connections/);
    const [first] = diagnose(facts);
    assert.deepEqual([first?.severity, first?.code], ['critical', 'db-connections']);
  } finally {
    for (const c of held) await c.end();
    await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    await admin.end();
  }
});

test('a slow replica behind the balancer: uneven distribution names it, and its p95 is over 500 ms', { timeout: 60_000 }, async () => {
  const pool = new pg.Pool({ connectionString: schema.url, max: 4 });
  pool.on('error', () => undefined);
  const engine = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, pool });
  const fast = await apiOn(pool, engine);
  const slow = await apiOn(pool, engine, 600);
  let balancer: Balancer | undefined;
  try {
    balancer = await createBalancer({ host: '127.0.0.1', port: 0, healthCheck: { intervalMs: 60_000, timeoutMs: 2000 } });
    balancer.addUpstream('api-1', fast.url, { healthy: true });
    balancer.addUpstream('api-2', slow.url, { healthy: true });
    const lb = balancer.url;

    // the window's traffic: 100 lookups, 4 at a time, through the balancer
    const traffic = async () => {
      let next = 0;
      const client = async () => {
        while (next < 100) {
          next++;
          // an id no job has: a cheap lookup, answered 404
          const res = await fetch(`${lb}/v1/jobs/${9_000_000_000 + next}`);
          assert.equal(res.status, 404);
          await res.arrayBuffer();
        }
      };
      await Promise.all([client(), client(), client(), client()]);
    };
    const facts = await gatherFacts({
      balancerUrl: lb,
      apis: [
        { id: 'api-1', url: fast.url },
        { id: 'api-2', url: slow.url },
      ],
      windowMs: 0,
      wait: traffic,
      timeoutMs: 5000,
    });
    const sent = Object.fromEntries((facts.upstreams ?? []).map((u) => [u.id, u.requests]));
    assert.equal(sent['api-1']! + sent['api-2']!, 100);
    const findings = diagnose(facts);
    const uneven = findings.find((f) => f.code === 'uneven-load');
    assert.ok(uneven, `uneven-load expected: ${JSON.stringify(sent)}`);
    assert.equal(uneven.subject, 'api-2');
    const latency = findings.find((f) => f.code === 'api-latency');
    assert.equal(latency?.subject, 'api-2');
    assert.ok(!findings.some((f) => f.code === 'api-latency' && f.subject === 'api-1'), 'the fast replica is not reported');
  } finally {
    await balancer?.close();
    await fast.app.close();
    await slow.app.close();
    await engine.close();
    await pool.end();
  }
});

test("the autoscaler's journal: reversals within 300 s are flapping; its last round's failing source is reported", { timeout: 60_000 }, async () => {
  const journal = await openJournal({ connectionString: schema.url, schema: schema.schema });
  const now = Date.now();
  try {
    const entry = { service: 'worker', ready: 0, applied: true, dryRun: false, paused: false, limitedBy: null, reasons: [], metrics: {}, errors: [] };
    const moves: Array<[number, number]> = [[2, 6], [6, 3], [3, 7], [7, 2]];
    for (const [i, [from, to]] of moves.entries()) await journal.insert({ ...entry, at: now - 600_000 + i * 60_000, current: from, desired: to });
    await journal.insert({
      ...entry,
      at: now - 1000,
      current: 2,
      desired: 2,
      applied: false,
      errors: [{ code: 'TIDE_SOURCE_FAILED', source: 'events', message: 'rabbitmq source "events": connection refused' }],
    });
  } finally {
    await journal.close();
  }
  const facts = await gatherFacts({ databaseUrl: schema.url, schema: schema.schema, windowMs: 0, now: () => now });
  assert.deepEqual(facts.scaleEvents?.map((e) => [e.from, e.to]), [[2, 6], [6, 3], [3, 7], [7, 2]]);
  const findings = diagnose(facts);
  const flap = findings.find((f) => f.code === 'flapping');
  assert.equal(flap?.subject, 'worker');
  assert.match(flap!.title, /3 reversals/);
  const source = findings.find((f) => f.code === 'source-failing');
  assert.equal(source?.subject, 'source events');
  assert.match(source!.evidence, /^TIDE_SOURCE_FAILED: rabbitmq source "events": connection refused/);
});
