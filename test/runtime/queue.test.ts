import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { resolveDatabase, validateDatabaseUrl } from '../../src/db/connect.js';
import { isConnectionError, toDbError } from '../../src/db/errors.js';
import { migrate } from '../../src/db/migrate.js';
import { TideError } from '../../src/errors.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

let schema: TestSchema;
let queue: PostgresQueue;

before(async () => {
  schema = await freshSchema('tq');
  // backoff 0 so failed jobs are runnable again at once; jitter fixed for determinism
  // through a pooler (`npm test -- --pgbouncer`), LISTEN goes to the server itself, as DATABASE_DIRECT_URL would say
  const direct = process.env.DATABASE_UPSTREAM_URL;
  queue = await createPostgresQueue({
    connectionString: schema.url,
    schema: schema.schema,
    backoffBaseMs: 0,
    random: () => 0,
    poolSize: 4,
    ...(direct ? { directUrl: direct } : {}),
  });
});

after(async () => {
  await queue.close();
  await schema.drop();
});

/** Each test uses its own queue name so tests do not see each other's jobs. */
let n = 0;
const qname = (label: string) => `${label}-${++n}`;

describe('migrations', () => {
  test('are idempotent and refuse a newer schema', async () => {
    assert.deepEqual(await queue.migrate(), []);
    const client = new pg.Client({ connectionString: schema.url });
    await client.connect();
    try {
      await client.query(`INSERT INTO "${schema.schema}".migrations (id, name) VALUES (9999, 'future')`);
      await assert.rejects(migrate(client, schema.schema), (err: TideError) => err.code === 'TIDE_DB_MIGRATION');
      await client.query(`DELETE FROM "${schema.schema}".migrations WHERE id = 9999`);
    } finally {
      await client.end();
    }
  });
});

describe('enqueue and claim', () => {
  test('enqueue, claim, complete stores the result and counts it', async () => {
    const q = qname('basic');
    const { id, created } = await queue.enqueue({ queue: q, handler: 'echo', payload: { a: 1 } });
    assert.equal(created, true);
    const claimed = await queue.claim('w1', [q], 10);
    assert.equal(claimed.length, 1);
    assert.deepEqual(claimed[0]!.payload, { a: 1 });
    assert.equal(claimed[0]!.attempts, 1);
    assert.equal((await queue.getJob(id))!.state, 'active');
    assert.equal(await queue.complete(id, 'w1', { ok: true }, 12), true);
    const job = (await queue.getJob(id))!;
    assert.equal(job.state, 'completed');
    assert.deepEqual(job.result, { ok: true });
    assert.equal(job.lockedBy, null);
    const [s] = await queue.stats(q);
    assert.equal(s!.arrivalsTotal, 1);
    assert.equal(s!.completionsTotal, 1);
    assert.equal(s!.completed, 1);
    assert.equal(s!.serviceTime.count, 1);
    assert.ok(Math.abs(s!.serviceTime.sum - 0.012) < 1e-9);
    assert.equal(s!.serviceTime.buckets.find((b) => b.le === 0.025)!.count, 1);
    assert.equal(s!.serviceTime.buckets.find((b) => b.le === 0.01)!.count, 0);
    assert.ok((await queue.queues()).includes(q));
  });

  test('claims in priority order, then oldest first, in batches', async () => {
    const q = qname('prio');
    const low = await queue.enqueue({ queue: q, handler: 'h', priority: 0 });
    const high = await queue.enqueue({ queue: q, handler: 'h', priority: 5 });
    const low2 = await queue.enqueue({ queue: q, handler: 'h', priority: 0 });
    const first = await queue.claim('w', [q], 1);
    assert.equal(first[0]!.id, high.id);
    const rest = await queue.claim('w', [q], 5);
    assert.deepEqual(rest.map((j) => j.id).sort(), [low.id, low2.id].sort());
    const second = await queue.claim('w', [q], 1);
    assert.equal(second.length, 0);
  });

  test('claims from several queues and from all (*)', async () => {
    const a = qname('multi-a');
    const b = qname('multi-b');
    await queue.enqueueMany([{ queue: a, handler: 'h' }, { queue: b, handler: 'h' }]);
    const got = await queue.claim('w', [a, b], 10);
    assert.equal(got.length, 2);
    const c = qname('multi-c');
    await queue.enqueue({ queue: c, handler: 'h' });
    const star = await queue.claim('w', ['*'], 100);
    assert.ok(star.some((j) => j.queue === c));
  });

  test('delayed jobs wait for their run time', async () => {
    const q = qname('delay');
    const { id } = await queue.enqueue({ queue: q, handler: 'h', delayMs: 60_000 });
    assert.equal((await queue.getJob(id))!.state, 'delayed');
    assert.equal((await queue.claim('w', [q], 10)).length, 0);
    const [s] = await queue.stats(q);
    assert.equal(s!.delayed, 1);
    assert.equal(s!.ready, 0);
    const past = await queue.enqueue({ queue: q, handler: 'h', runAt: Date.now() - 1000 });
    const got = await queue.claim('w', [q], 10);
    assert.deepEqual(got.map((j) => j.id), [past.id]);
  });

  test('bulk enqueue returns ids in input order and counts arrivals', async () => {
    const q = qname('bulk');
    const inputs = Array.from({ length: 500 }, (_, i) => ({ queue: q, handler: 'h', payload: { i } }));
    const results = await queue.enqueueMany(inputs);
    assert.equal(results.length, 500);
    for (const [i, r] of results.entries()) {
      assert.equal(r.created, true);
      const job = await (i % 100 === 0 ? queue.getJob(r.id) : Promise.resolve(undefined));
      if (job) assert.deepEqual(job.payload, { i });
    }
    const [s] = await queue.stats(q);
    assert.equal(s!.arrivalsTotal, 500);
    assert.equal(s!.ready, 500);
    assert.ok(s!.oldestReadyAgeSeconds >= 0);
  });

  test('rejects malformed input with a coded error naming the field', async () => {
    await assert.rejects(queue.enqueue({ queue: '', handler: 'h' }), (e: TideError) => e.code === 'TIDE_QUEUE_INPUT' && e.where?.field === 'queue');
    await assert.rejects(
      queue.enqueueMany([{ queue: 'a', handler: 'h' }, { queue: 'a', handler: 'h', priority: 1.5 }]),
      (e: TideError) => e.code === 'TIDE_QUEUE_INPUT' && e.where?.field === 'jobs[1].priority',
    );
    await assert.rejects(queue.enqueue({ queue: 'a', handler: 'h', maxAttempts: 0 }), (e: TideError) => e.code === 'TIDE_QUEUE_INPUT');
    assert.equal(await queue.getJob('not-an-id'), undefined);
    assert.equal(await queue.getJob('999999999'), undefined);
  });
});

test('works without prepared statements (for PgBouncer in transaction mode)', async () => {
  const plain = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, preparedStatements: false, migrate: false, poolSize: 1 });
  try {
    const q = qname('unprepared');
    const { id } = await plain.enqueue({ queue: q, handler: 'h' });
    const [job] = await plain.claim('w', [q], 5);
    assert.equal(job!.id, id);
    assert.equal(await plain.complete(id, 'w', 1), true);
    assert.equal((await plain.stats(q))[0]!.completionsTotal, 1);
  } finally {
    await plain.close();
  }
});

describe('idempotency', () => {
  test('a used key returns the first job', async () => {
    const q = qname('idem');
    const first = await queue.enqueue({ queue: q, handler: 'h', idempotencyKey: `k-${q}` });
    const again = await queue.enqueue({ queue: q, handler: 'h', idempotencyKey: `k-${q}` });
    assert.deepEqual(again, { id: first.id, created: false });
    const batch = await queue.enqueueMany([
      { queue: q, handler: 'h', idempotencyKey: `k2-${q}` },
      { queue: q, handler: 'h', idempotencyKey: `k2-${q}` },
      { queue: q, handler: 'h', idempotencyKey: `k-${q}` },
    ]);
    assert.equal(batch[0]!.created, true);
    assert.deepEqual(batch[1], { id: batch[0]!.id, created: false });
    assert.deepEqual(batch[2], { id: first.id, created: false });
    const [s] = await queue.stats(q);
    assert.equal(s!.arrivalsTotal, 2);
  });

  test('concurrent enqueues with one key create exactly one job', async () => {
    const q = qname('idem-conc');
    const key = `race-${q}`;
    const results = await Promise.all(Array.from({ length: 12 }, () => queue.enqueue({ queue: q, handler: 'h', idempotencyKey: key })));
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.id)).size, 1);
  });
});

describe('failure, backoff, dead, retry', () => {
  test('a failed job retries until max attempts, then is dead; retry revives it', async () => {
    const q = qname('fail');
    const { id } = await queue.enqueue({ queue: q, handler: 'h', maxAttempts: 2 });
    await queue.claim('w', [q], 1);
    const first = await queue.fail(id, 'w', new Error('boom 1'));
    assert.equal(first!.state, 'ready');
    const again = await queue.claim('w', [q], 1);
    assert.equal(again[0]!.attempts, 2);
    const second = await queue.fail(id, 'w', new TideError('TIDE_HANDLER_UNKNOWN', 'no such handler'));
    assert.equal(second!.state, 'dead');
    let job = (await queue.getJob(id))!;
    assert.equal(job.state, 'dead');
    assert.equal(job.lastError, 'TIDE_HANDLER_UNKNOWN: no such handler');
    let [s] = await queue.stats(q);
    assert.equal(s!.dead, 1);
    assert.equal(s!.failuresTotal, 2);
    job = (await queue.retry(id))!;
    assert.equal(job.state, 'ready');
    assert.equal(job.attempts, 0);
    [s] = await queue.stats(q);
    assert.equal(s!.dead, 0);
    assert.equal(s!.ready, 1);
    assert.equal(await queue.retry(id), undefined, 'a ready job cannot be retried');
  });

  test('backoff grows exponentially with jitter within bounds', async () => {
    const jittered = await createPostgresQueue({
      connectionString: schema.url,
      schema: schema.schema,
      backoffBaseMs: 10_000,
      random: () => 0.5,
      migrate: false,
      poolSize: 1,
    });
    try {
      const q = qname('backoff');
      const { id } = await jittered.enqueue({ queue: q, handler: 'h', maxAttempts: 5 });
      await jittered.claim('w', [q], 1);
      const before = Date.now();
      const out = (await jittered.fail(id, 'w', 'x'))!;
      // attempt 1: 10 s * 2^0 * (0.5 + 0.5 * 0.5) = 7.5 s from the database's now()
      const delay = out.runAt - before;
      assert.ok(delay > 7000 && delay < 8000, `delay ${delay}`);
      assert.equal((await jittered.getJob(id))!.state, 'failed');
      const [s] = await jittered.stats(q);
      assert.equal(s!.failed, 1);
      // retry() runs a job waiting out its backoff now
      assert.equal((await jittered.retry(id))!.state, 'ready');
      await jittered.claim('w', [q], 1);
      const out2 = (await jittered.fail(id, 'w', 'x'))!;
      assert.ok(out2.runAt - Date.now() > 6000, 'attempts were reset by retry: the first backoff again');
    } finally {
      await jittered.close();
    }
  });
});

describe('leases', () => {
  test('a stale worker cannot complete, fail or heartbeat a reclaimed job', async () => {
    const short = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, leaseMs: 50, migrate: false, poolSize: 2 });
    try {
      const q = qname('stale');
      const { id } = await short.enqueue({ queue: q, handler: 'h' });
      assert.equal((await short.claim('old', [q], 1)).length, 1);
      // wait (bounded) until the lease has expired and the sweep recovers it
      const deadline = Date.now() + 5000;
      while ((await short.recoverExpired()) === 0) {
        assert.ok(Date.now() < deadline, 'lease never expired');
        await new Promise((r) => setTimeout(r, 20));
      }
      const job = (await short.getJob(id))!;
      assert.equal(job.state, 'ready');
      assert.match(job.lastError!, /lease expired/);
      assert.equal((await short.claim('new', [q], 1))[0]!.attempts, 2);
      assert.equal(await short.complete(id, 'old', 'stale'), false);
      assert.equal(await short.fail(id, 'old', 'stale'), undefined);
      assert.deepEqual(await short.heartbeat('old', [id]), []);
      assert.deepEqual(await short.heartbeat('new', [id]), [id]);
      assert.equal(await short.complete(id, 'new', 'fresh'), true);
      assert.equal((await short.getJob(id))!.result, 'fresh');
      const [s] = await short.stats(q);
      assert.equal(s!.failuresTotal, 1, 'the expired lease counts as a failure');
    } finally {
      await short.close();
    }
  });

  test('an expired lease on the last attempt makes the job dead', async () => {
    const short = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, leaseMs: 1, migrate: false, poolSize: 1 });
    try {
      const q = qname('expire-dead');
      const { id } = await short.enqueue({ queue: q, handler: 'h', maxAttempts: 1 });
      await short.claim('w', [q], 1);
      const deadline = Date.now() + 5000;
      while ((await short.recoverExpired()) === 0) {
        assert.ok(Date.now() < deadline);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal((await short.getJob(id))!.state, 'dead');
    } finally {
      await short.close();
    }
  });

  test('release hands jobs back at once without counting the attempt', async () => {
    const q = qname('release');
    const { id } = await queue.enqueue({ queue: q, handler: 'h' });
    await queue.claim('w', [q], 1);
    assert.deepEqual(await queue.release('other', [id]), []);
    assert.deepEqual(await queue.release('w', [id]), [id]);
    const job = (await queue.getJob(id))!;
    assert.equal(job.state, 'ready');
    assert.equal(job.attempts, 0);
    assert.equal(job.lockedBy, null);
  });
});

describe('completion batches, purge, stats', () => {
  test('completeMany completes only the jobs the worker holds, and purge deletes finished ones', async () => {
    const q = qname('batch');
    const jobs = await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: q, handler: 'h' })));
    const mine = await queue.claim('w', [q], 15);
    const done = await queue.completeMany('w', [...mine.map((j) => ({ id: j.id, result: j.id, durationMs: 2 })), { id: jobs[19]!.id }]);
    assert.equal(done.length, 15);
    let [s] = await queue.stats(q);
    assert.equal(s!.completed, 15);
    assert.equal(s!.ready, 5);
    assert.equal(s!.serviceTime.buckets.find((b) => b.le === 0.005)!.count, 15);
    assert.equal(s!.serviceTime.buckets.at(-1)!.count, 15);
    assert.equal(await queue.purgeFinished(60_000), 0, 'nothing is old enough');
    const deleted = await queue.purgeFinished(0, 4);
    assert.ok(deleted >= 15);
    [s] = await queue.stats(q);
    assert.equal(s!.completed, 0);
    assert.equal(s!.completionsTotal, 15, 'counters stay monotonic');
    assert.equal(await queue.getJob(mine[0]!.id), undefined);
  });
});

describe('listen', { timeout: 20_000 }, () => {
  test('wakes on NOTIFY from an enqueue', async () => {
    const q = qname('notify');
    let resolveWake!: () => void;
    const woke = new Promise<void>((r) => (resolveWake = r));
    let armed = false;
    const listener = await queue.listen(() => armed && resolveWake(), { pollMs: 3_600_000 });
    try {
      armed = true;
      await queue.enqueue({ queue: q, handler: 'h' });
      await woke;
    } finally {
      await listener.close();
    }
  });

  test('falls back to polling when notifications never arrive', async () => {
    let wakes = 0;
    let resolveWake!: () => void;
    const woke = new Promise<void>((r) => (resolveWake = r));
    const listener = await queue.listen(() => ++wakes >= 2 && resolveWake(), { pollMs: 10, notify: false });
    try {
      await woke;
    } finally {
      await listener.close();
    }
  });
});

describe('database plumbing', () => {
  test('connection errors map to TIDE_DB_UNAVAILABLE, others pass through', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.equal(isConnectionError(refused), true);
    assert.equal(isConnectionError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })), true);
    assert.equal(isConnectionError(Object.assign(new Error('the database system is starting up'), { code: '57P03' })), true);
    assert.equal(isConnectionError(Object.assign(new Error('x'), { code: '08006' })), true);
    assert.equal(isConnectionError(new Error('Connection terminated unexpectedly')), true);
    const syntax = Object.assign(new Error('syntax error'), { code: '42601' });
    assert.equal(isConnectionError(syntax), false);
    assert.equal(toDbError(syntax), syntax);
    assert.equal((toDbError(refused) as TideError).code, 'TIDE_DB_UNAVAILABLE');
    // a real refused connection, through the engine
    const down = await createPostgresQueue({ connectionString: 'postgres://x:y@127.0.0.1:1/db', migrate: false, poolSize: 1 });
    try {
      await assert.rejects(down.stats(), (e: TideError) => e.code === 'TIDE_DB_UNAVAILABLE');
    } finally {
      await down.close();
    }
  });

  test('resolveDatabase validates a given URL', async () => {
    assert.equal(validateDatabaseUrl('postgres://u:p@localhost:5432/db'), 'postgres://u:p@localhost:5432/db');
    for (const url of ['not a url', 'mysql://u@h/db', 'postgres://u@h:99999/db']) {
      await assert.rejects(resolveDatabase({ url }), (e: TideError) => e.code === 'TIDE_DB_URL_INVALID');
    }
    const resolved = await resolveDatabase({ url: schema.url });
    assert.deepEqual([resolved.url, resolved.embedded], [schema.url, false]);
    await resolved.stop();
  });
});
