/**
 * Group commit: concurrent single enqueues share statements, and each caller still gets its
 * own id, its own error, and its answer only once its job is committed. The coalescing rule
 * alone (GroupCommit with a recorded run function), then the real queue on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { TideError } from '../../src/errors.js';
import { GroupCommit } from '../../src/runtime/queue/group-commit.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

describe('the coalescing rule', () => {
  /** A statement takes `turns` turns of the event loop. */
  const recorder = (maxInFlight: number, fail = (_items: string[]) => false, turns = 1) => {
    const batches: string[][] = [];
    let running = 0;
    let most = 0;
    const group = new GroupCommit<string, string>({
      maxInFlight,
      maxBatch: 50,
      isDataError: (err) => err instanceof Error && err.message === 'bad data',
      run: async (items) => {
        batches.push(items);
        most = Math.max(most, ++running);
        for (let t = 0; t < turns; t++) await new Promise((r) => setImmediate(r));
        running--;
        if (items.includes('db down')) throw new Error('connection refused');
        if (fail(items)) throw new Error('bad data');
        return items.map((x) => `id-${x}`);
      },
    });
    return { group, batches, most: () => most };
  };

  test('items added in one turn go as one statement; each caller gets its own result', async () => {
    const { group, batches } = recorder(2);
    const results = await Promise.all(['a', 'b', 'c'].map((x) => group.add(x)));
    assert.deepEqual(results, ['id-a', 'id-b', 'id-c']);
    assert.deepEqual(batches, [['a', 'b', 'c']]);
  });

  test('never more than maxInFlight statements; what arrives meanwhile goes together, at most maxBatch a statement', async () => {
    // statements take 4 turns, items come every turn: arrivals wait for a free slot, then go together
    const { group, batches, most } = recorder(2, undefined, 4);
    const all: Promise<string>[] = [];
    for (let turn = 0; turn < 20; turn++) {
      for (let k = 0; k < 10; k++) all.push(group.add(`${turn}.${k}`));
      await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(all);
    assert.deepEqual(results, all.map((_, i) => `id-${Math.floor(i / 10)}.${i % 10}`));
    assert.ok(most() <= 2, `at most 2 at once, saw ${most()}`);
    assert.ok(batches.every((b) => b.length <= 50));
    assert.equal(batches.flat().length, 200, 'each item sent once');
    assert.ok(batches.length < 20, `coalesced: ${batches.length} statements for 200 items`);
    await group.settled();
  });

  test('a batch refused for its data is sent again one by one, in order, within maxInFlight: the bad item fails alone', async () => {
    const { group, batches, most } = recorder(1, (items) => items.includes('bad'));
    const outcomes = await Promise.allSettled(['a', 'bad', 'c'].map((x) => group.add(x)));
    assert.deepEqual(
      outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
      ['id-a', 'bad data', 'id-c'],
    );
    assert.deepEqual(batches, [['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
    assert.equal(most(), 1, 'never more statements at once than maxInFlight');
  });

  test('a batch that fails for the database fails every caller, without one retry per item', async () => {
    const { group, batches } = recorder(1);
    const outcomes = await Promise.allSettled(['a', 'db down', 'c'].map((x) => group.add(x)));
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected']);
    assert.equal(batches.length, 1);
  });

  test('settled() waits for what is pending and running', async () => {
    const { group } = recorder(1);
    let done = 0;
    for (let i = 0; i < 5; i++) void group.add(String(i)).then(() => done++);
    await group.settled();
    assert.equal(done, 5);
  });
});

describe('group commit on PostgreSQL', () => {
  let schema: TestSchema;
  let queue: PostgresQueue;
  let pool: pg.Pool;
  let enqueueStatements = 0;

  before(async () => {
    schema = await freshSchema('tgc');
    pool = new pg.Pool({ connectionString: schema.url, max: 4 });
    // the real pool, counting the enqueue statements that go through it
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const config = args[0] as { text?: string };
      if (typeof config === 'object' && config.text?.includes('jsonb_to_recordset')) enqueueStatements++;
      return query(...args);
    };
    queue = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, pool });
  });

  after(async () => {
    await queue.close();
    await pool.end();
    await schema.drop();
  });

  test('200 concurrent enqueues: fewer statements than jobs, 200 distinct ids, every job committed when its caller hears', async () => {
    enqueueStatements = 0;
    const check = new pg.Client({ connectionString: schema.url });
    await check.connect();
    try {
      const ids = await Promise.all(
        Array.from({ length: 200 }, async (_, n) => {
          const { id, created } = await queue.enqueue({ queue: 'gc', handler: 'h', payload: { n } });
          assert.equal(created, true);
          // committed before the answer: another connection sees it at once, with its own payload
          const { rows } = await check.query(`SELECT payload FROM ${schema.schema}.jobs WHERE id = $1`, [id]);
          assert.deepEqual(rows[0]?.payload, { n });
          return id;
        }),
      );
      assert.equal(new Set(ids).size, 200);
      assert.ok(enqueueStatements < 200 && enqueueStatements >= 1, `${enqueueStatements} statements for 200 jobs`);
    } finally {
      await check.end();
    }
  });

  test('one idempotency key twice in one batch: both callers get the first job', async () => {
    const [a, b, c] = await Promise.all([
      queue.enqueue({ queue: 'gc', handler: 'h', idempotencyKey: 'twice', payload: 1 }),
      queue.enqueue({ queue: 'gc', handler: 'h', idempotencyKey: 'twice', payload: 2 }),
      queue.enqueue({ queue: 'gc', handler: 'h', payload: 3 }),
    ]);
    assert.equal(a!.created, true);
    assert.deepEqual(b, { id: a!.id, created: false });
    assert.equal(c!.created, true);
    assert.deepEqual((await queue.getJob(a!.id))?.payload, 1);
  });

  test('a job PostgreSQL refuses fails alone, with TIDE_QUEUE_INPUT; its batch-mates are committed', async () => {
    const outcomes = await Promise.allSettled([
      queue.enqueue({ queue: 'gc', handler: 'h', payload: 'fine 1' }),
      // a lone surrogate: valid in a JavaScript string, refused by jsonb
      queue.enqueue({ queue: 'gc', handler: 'h', payload: { s: '\ud800' } }),
      queue.enqueue({ queue: 'gc', handler: 'h', payload: 'fine 2' }),
    ]);
    assert.equal(outcomes[0]!.status, 'fulfilled');
    assert.equal(outcomes[2]!.status, 'fulfilled');
    assert.equal(outcomes[1]!.status, 'rejected');
    const err = (outcomes[1] as PromiseRejectedResult).reason as TideError;
    assert.ok(err instanceof TideError);
    assert.equal(err.code, 'TIDE_QUEUE_INPUT');
    for (const o of [outcomes[0], outcomes[2]]) {
      const { id } = (o as PromiseFulfilledResult<{ id: string }>).value;
      assert.ok(await queue.getJob(id));
    }
  });

  test('a payload with NUL is refused before any statement, naming the field', async () => {
    await assert.rejects(queue.enqueue({ queue: 'gc', handler: 'h', payload: { note: 'a\u0000b' } }), { code: 'TIDE_QUEUE_INPUT', where: { field: 'payload' } });
    // an escaped backslash before "u0000" is plain text, stored as it is
    const { id } = await queue.enqueue({ queue: 'gc', handler: 'h', payload: { note: 'a\\u0000b' } });
    assert.deepEqual((await queue.getJob(id))?.payload, { note: 'a\\u0000b' });
  });
});
