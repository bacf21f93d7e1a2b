/**
 * The queue, the worker and the API through a real PgBouncer 1.18+ in transaction mode,
 * with defaults (the pooler detected, not declared): what the runbooks deploy. Skips with a
 * message when PgBouncer is not installed.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { parseConfig } from '../../src/config/load.js';
import { detectPooler } from '../../src/db/pooler.js';
import { TideError } from '../../src/errors.js';
import { type RunningApi, startApi } from '../../src/runtime/api/start.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type RunningWorker, sleepFor, startWorker } from '../../src/runtime/worker/worker.js';
import { startSystem } from '../../src/app/system.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';
import { type PgBouncer, pgbouncerSkipReason, startPgBouncer } from '../helpers/pgbouncer.js';

const skip = pgbouncerSkipReason();
if (skip) console.log(`# skip: ${skip}`);

/** The server itself (`npm test -- --pgbouncer` points DATABASE_URL at a pooler already). */
const upstream = () => process.env.DATABASE_UPSTREAM_URL ?? process.env.DATABASE_URL!;

let schema: TestSchema;
let bouncer: PgBouncer;

before(async () => {
  if (skip) return;
  schema = await freshSchema('tpgb');
  bouncer = await startPgBouncer({ upstreamUrl: upstream(), poolSize: 4 });
});

after(async () => {
  if (skip) return;
  await bouncer?.stop();
  await schema?.drop();
});

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('through PgBouncer in transaction mode', { skip, timeout: 120_000 }, () => {
  test('the pooler is detected; a direct connection is not taken for one', async () => {
    for (const [url, pooled] of [[bouncer.url, true], [upstream(), false]] as const) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        assert.equal(await detectPooler(client), pooled, url);
      } finally {
        await client.end();
      }
    }
  });

  test('concurrent enqueues and claims with defaults: no prepared-statement errors, every job once', async () => {
    // six engines migrating the same schema at once, through the pooler: one applies each migration
    const engines = await Promise.all(
      Array.from({ length: 6 }, () => createPostgresQueue({ connectionString: bouncer.url, schema: schema.schema, poolSize: 8 })),
    );
    try {
      for (const e of engines) assert.equal(e.pooled, true);
      const [api, ...claimers] = engines as [PostgresQueue, ...PostgresQueue[]];
      const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => api.enqueue({ queue: 'pgb', handler: 'h', payload: { i } }).then((r) => r.id)));
      const seen = new Set<string>();
      await Promise.all(
        claimers.map(async (q, w) => {
          for (;;) {
            const jobs = await q.claim(`w${w}`, ['pgb'], 7);
            if (jobs.length === 0) return;
            const done = await q.completeMany(`w${w}`, jobs.map((j) => ({ id: j.id, result: null })));
            assert.equal(done.length, jobs.length);
            for (const j of jobs) {
              assert.ok(!seen.has(j.id), `job ${j.id} claimed twice`);
              seen.add(j.id);
            }
          }
        }),
      );
      assert.equal(seen.size, ids.length);
      assert.equal((await api.stats('pgb'))[0]!.completionsTotal, 300);
    } finally {
      await Promise.all(engines.map((e) => e.close()));
    }
  });

  test('LISTEN goes to DATABASE_DIRECT_URL: a NOTIFY wakes before the (hour-long) poll', async () => {
    const q = await createPostgresQueue({ connectionString: bouncer.url, schema: schema.schema, directUrl: upstream(), migrate: false, poolSize: 2 });
    try {
      let woke!: () => void;
      const wake = new Promise<void>((resolve) => (woke = resolve));
      let wakes = 0;
      const listener = await q.listen(() => (++wakes > 1 ? woke() : undefined), { pollMs: 3_600_000 });
      try {
        await q.enqueue({ queue: 'pgb-listen', handler: 'h' });
        await wake;
      } finally {
        await listener.close();
      }
    } finally {
      await q.close();
    }
  });

  test('1,000 jobs through the API and two workers all complete, no 5xx', async () => {
    let api: RunningApi | undefined;
    const workers: RunningWorker[] = [];
    const logs: string[] = [];
    try {
      api = await startApi({ databaseUrl: bouncer.url, schema: schema.schema, port: 0, version: 'test', rateLimit: false, defaultMetrics: false, poolSize: 10 });
      for (let i = 0; i < 2; i++) {
        workers.push(await startWorker({ connectionString: bouncer.url, schema: schema.schema, queues: ['e2e'], concurrency: 16, pollMs: 50, log: (l) => logs.push(l) }));
      }
      const statuses = new Map<number, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (next < 1000) {
            const i = next++;
            const res = await fetch(`${api!.url}/v1/jobs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ queue: 'e2e', handler: 'sleep', payload: { ms: 1, i } }),
            });
            await res.arrayBuffer();
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          }
        }),
      );
      assert.deepEqual([...statuses], [[202, 1000]]);
      await until(async () => ((await api!.engine.stats('e2e'))[0]?.completionsTotal ?? 0) >= 1000, 90_000, '1,000 completions');
      const [stats] = await api.engine.stats('e2e');
      assert.equal(stats!.completionsTotal, 1000);
      assert.deepEqual(logs.filter((l) => /prepared statement|failed/.test(l)), []);
    } finally {
      await Promise.all(workers.map((w) => w.stop(0)));
      await api?.close();
    }
  });

  test('tide up through PgBouncer (2 API and 2 worker replicas, defaults): 1,000 jobs through the balancer all complete, no 5xx', { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tide-pgb-up-'));
    const config = parseConfig(
      [
        'project: pgb',
        `database: { url: ${JSON.stringify(bouncer.url)}, schema: ${schema.schema} }`,
        'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 0.5, timeout_seconds: 1 } }',
        'control: { host: 127.0.0.1, port: 0 }',
        'services:',
        '  api: { kind: api, replicas: 2, min: 1, max: 2, stop_grace_seconds: 5 }',
        '  worker: { kind: worker, replicas: 2, min: 1, max: 2, concurrency: 16, queues: [up], stop_grace_seconds: 5 }',
      ].join('\n'),
      path.join(dir, 'tide.yaml'),
    );
    const progress: string[] = [];
    const system = await startSystem(config, { configDir: dir, log: (l) => progress.push(l), writeState: false, autoscaler: false });
    const q = await createPostgresQueue({ connectionString: bouncer.url, schema: schema.schema, migrate: false, poolSize: 1 });
    try {
      const base = system.balancer!.url;
      await until(async () => (await fetch(`${base}/health`).then((r) => (r.body?.cancel(), r.status)).catch(() => 0)) === 200, 60_000, 'an API replica behind the balancer');
      const statuses = new Map<number, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (next < 1000) {
            next++;
            const res = await fetch(`${base}/v1/jobs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ queue: 'up', handler: 'sleep', payload: { ms: 1 } }),
            });
            await res.arrayBuffer();
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          }
        }),
      );
      assert.deepEqual([...statuses], [[202, 1000]]);
      await until(async () => ((await q.stats('up'))[0]?.completionsTotal ?? 0) >= 1000, 120_000, '1,000 completions');
      assert.equal((await q.stats('up'))[0]!.completionsTotal, 1000);
      assert.ok(!progress.some((l) => /connection budget/.test(l)), progress.join('\n'));
    } finally {
      await q.close();
      await system.stop('test over');
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the pooler's own error (query_wait_timeout) is a 503 TIDE_DB_POOLER with Retry-After, not a 500", async () => {
    const tight = await startPgBouncer({ upstreamUrl: upstream(), poolSize: 1, queryWaitTimeoutS: 1 });
    const holder = new pg.Client({ connectionString: tight.url });
    let api: RunningApi | undefined;
    try {
      api = await startApi({ databaseUrl: tight.url, schema: schema.schema, port: 0, version: 'test', rateLimit: false, defaultMetrics: false, poolSize: 2 });
      await holder.connect();
      holder.on('error', () => undefined);
      // the pool's one server connection is busy in this transaction for longer than the wait
      await holder.query('BEGIN');
      await holder.query('SELECT 1');
      const res = await fetch(`${api.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ queue: 'busy', handler: 'sleep' }),
      });
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(res.status, 503);
      assert.equal(body.error.code, 'TIDE_DB_POOLER');
      assert.ok(Number(res.headers.get('retry-after')) > 0);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end().catch(() => undefined);
      await api?.close();
      await tight.stop();
    }
  });

  test('prepared statements forced on behind the pooler fail as TIDE_DB_POOLER (a 503), never TIDE_INTERNAL', async () => {
    const q = await createPostgresQueue({ connectionString: bouncer.url, schema: schema.schema, pooler: 'none', migrate: false, poolSize: 6 });
    try {
      // enqueueMany: one statement per call (single enqueues would share statements by group commit)
      const results = await Promise.allSettled(Array.from({ length: 60 }, () => q.enqueueMany([{ queue: 'forced', handler: 'h' }])));
      const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as TideError);
      assert.ok(errors.length > 0, 'PgBouncer 1.18 in transaction mode should mix up named statements');
      for (const e of errors) assert.equal(e.code, 'TIDE_DB_POOLER', String(e));
    } finally {
      await q.close();
    }
  });
});

test('the worker sleep leaves no abort listener behind on its lifetime signal', async () => {
  const lifetime = new AbortController();
  for (let i = 0; i < 20; i++) await sleepFor(1, lifetime.signal);
  assert.equal(getEventListeners(lifetime.signal, 'abort').length, 0);
  const pending = sleepFor(60_000, lifetime.signal);
  assert.equal(getEventListeners(lifetime.signal, 'abort').length, 1);
  lifetime.abort();
  await pending;
  await sleepFor(60_000, lifetime.signal);
});
