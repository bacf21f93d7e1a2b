import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import pg from 'pg';

import { isTideError } from '../../src/errors.js';
import { createPostgresSource, postgresConfig } from '../../src/sources/postgres.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';
import { sourceConformance } from './conformance.js';
import { handleCounts, leakedHandles, withPort } from './helpers.js';

const url = process.env.DATABASE_URL ?? '';
const ctx = { now: () => 1_000 };
const signal = () => new AbortController().signal;

function source(fields: Record<string, unknown>) {
  return createPostgresSource(postgresConfig.parse({ connection_string: url, ...fields }), ctx);
}

sourceConformance('postgres', {
  create: (c) => createPostgresSource(postgresConfig.parse({ connection_string: url, query: 'SELECT 42 AS n', metric: 'queue_depth' }), c),
  hanging: (_host, port, timeoutMs, c) => createPostgresSource(postgresConfig.parse({ connection_string: withPort(url, port), query: 'SELECT 1', metric: 'm', timeout_ms: timeoutMs }), c),
  unreachable: (port, c) => createPostgresSource(postgresConfig.parse({ connection_string: withPort(url, port), query: 'SELECT 1', metric: 'm' }), c),
});

let schema: TestSchema;
let admin: pg.Client;

before(async () => {
  schema = await freshSchema('src');
  admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema.schema}"; CREATE TABLE "${schema.schema}".jobs (id int)`);
});

after(async () => {
  await admin.end();
  await schema.drop();
});

async function rowCount(): Promise<number> {
  const r = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema.schema}".jobs`);
  return Number(r.rows[0]!.n);
}

test('one number becomes one sample under the configured metric name (numeric and bigint too)', async () => {
  const s = source({ query: `SELECT count(*) + 2.5 AS depth FROM "${schema.schema}".jobs`, metric: 'queue_depth' });
  try {
    assert.deepEqual(await s.read(signal()), [{ metric: 'queue_depth', value: 2.5, at: 1_000 }]);
  } finally {
    await s.close();
  }
});

test('rows of metric, value become one sample each', async () => {
  const s = source({ query: `SELECT 'queue_depth' AS metric, 7::bigint AS value UNION ALL SELECT 'queue_oldest_age_seconds', 1.25::numeric` });
  try {
    assert.deepEqual(await s.read(signal()), [
      { metric: 'queue_depth', value: 7, at: 1_000 },
      { metric: 'queue_oldest_age_seconds', value: 1.25, at: 1_000 },
    ]);
  } finally {
    await s.close();
  }
});

test('the query runs in a read-only transaction with the statement timeout set', async () => {
  const s = source({
    query: `SELECT 'read_only' AS metric, (current_setting('transaction_read_only') = 'on')::int AS value
            UNION ALL SELECT 'statement_timeout_ms', setting::numeric FROM pg_settings WHERE name = 'statement_timeout'`,
    timeout_ms: 1_234,
  });
  try {
    assert.deepEqual(await s.read(signal()), [
      { metric: 'read_only', value: 1, at: 1_000 },
      { metric: 'statement_timeout_ms', value: 1_234, at: 1_000 },
    ]);
  } finally {
    await s.close();
  }
});

test('an INSERT in the query fails with TIDE_SOURCE_QUERY and the table stays empty', async () => {
  const attempts = [
    `INSERT INTO "${schema.schema}".jobs VALUES (1) RETURNING id`,
    // Two statements cannot smuggle a COMMIT past the read-only transaction.
    `COMMIT; INSERT INTO "${schema.schema}".jobs VALUES (2) RETURNING id`,
    `WITH w AS (INSERT INTO "${schema.schema}".jobs VALUES (3) RETURNING id) SELECT count(*) FROM w`,
  ];
  for (const query of attempts) {
    const s = source({ query, metric: 'm' });
    try {
      await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_QUERY' && /SQLSTATE/.test(err.message));
      // The source is still usable after a failed query (its client was replaced).
      await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_QUERY');
    } finally {
      await s.close();
    }
  }
  assert.equal(await rowCount(), 0);
});

test('NULL and no rows give no sample and a note saying why', async () => {
  const s = source({ query: `SELECT max(id) FROM "${schema.schema}".jobs`, metric: 'queue_oldest_age_seconds' });
  const empty = source({ query: `SELECT id FROM "${schema.schema}".jobs`, metric: 'queue_depth' });
  try {
    assert.deepEqual(await s.read(signal()), []);
    assert.match(s.notes!().join(' '), /NULL/);
    assert.deepEqual(await empty.read(signal()), []);
    assert.match(empty.notes!().join(' '), /no rows/);
  } finally {
    await s.close();
    await empty.close();
  }
});

test('a non-numeric answer, several rows, or several columns is TIDE_SOURCE_BAD_VALUE', async () => {
  for (const query of [`SELECT 'abc' AS n`, 'SELECT 1 AS a, 2 AS b', 'SELECT generate_series(1, 3)']) {
    const s = source({ query, metric: 'm' });
    try {
      await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_BAD_VALUE');
    } finally {
      await s.close();
    }
  }
});

test('a SQL error carries PostgreSQL\'s words', async () => {
  const s = source({ query: 'SELECT * FROM no_such_table_here', metric: 'm' });
  try {
    await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_QUERY' && /no_such_table_here/.test(err.message) && /42P01/.test(err.message));
  } finally {
    await s.close();
  }
});

test('aborting a running query rejects at once, ends its connection, and the server stops the query', async () => {
  const s = source({ name: 'sleeper', query: 'SELECT pg_sleep(30)', metric: 'm', timeout_ms: 60_000 });
  const before = handleCounts();
  const running = async () =>
    Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'tide source sleeper' AND query LIKE '%pg_sleep%' AND state = 'active'`)).rows[0]!.n);
  const controller = new AbortController();
  const reading = s.read(controller.signal);
  reading.catch(() => {});
  // Wait (a condition, bounded by the test timeout) until the server is running it.
  while ((await running()) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  controller.abort();
  await assert.rejects(reading, (err) => isTideError(err) && err.code === 'TIDE_SOURCE_ABORTED');
  await s.close();
  assert.deepEqual(await leakedHandles(before), {});
  // The server notices the vanished client and ends the query (client_connection_check_interval).
  const [major] = (await admin.query<{ v: string }>('SHOW server_version_num')).rows.map((r) => Number(r.v) / 10_000);
  if (major! >= 14) while ((await running()) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
});
