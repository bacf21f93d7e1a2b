import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { parseConfig } from '../../src/config/load.js';
import { connectionBudget } from '../../src/db/budget.js';
import { checkConnectionBudget, readConnectionLimit } from '../../src/db/budget-live.js';
import { TideError } from '../../src/errors.js';
import { databaseUrl } from '../helpers/db.js';
import { type PgBouncer, pgbouncerSkipReason, startPgBouncer } from '../helpers/pgbouncer.js';

const api = { name: 'api', kind: 'api' as const, max: 4, poolSize: 10 };
const worker = { name: 'worker', kind: 'worker' as const, max: 8, poolSize: 4 };

describe('connectionBudget (pure)', () => {
  test('counts pool_size at max replicas, plus one LISTEN per worker, and names the numbers', () => {
    const b = connectionBudget([api, worker, { name: 'cron', kind: 'command', max: 3 }], { limit: 100, source: 'test limit' });
    assert.deepEqual(b.lines, [
      { service: 'api', maxReplicas: 4, perReplica: 10, total: 40 },
      { service: 'worker', maxReplicas: 8, perReplica: 5, total: 40 },
    ]);
    assert.equal(b.total, 80);
    assert.equal(b.verdict, 'ok');
    assert.match(b.message, /80 database connections \(api 4 x 10 \+ worker 8 x 5\), within the 100 allowed \(test limit\)/);
  });

  test('warns above 80% of the limit, is over above it, unknown without one', () => {
    assert.equal(connectionBudget([api, worker], { limit: 99, source: 's' }).verdict, 'warn');
    const over = connectionBudget([api, worker], { limit: 79, source: 's' });
    assert.equal(over.verdict, 'over');
    assert.match(over.message, /80 database connections .* more than the 79 allowed/);
    assert.equal(connectionBudget([api, worker], undefined).verdict, 'unknown');
    // behind a pooler without a direct URL the workers hold no LISTEN connection
    assert.equal(connectionBudget([api, worker], { limit: 72, source: 's' }, { listens: false }).total, 72);
  });
});

test('tide.yaml: pool_size per service or database-wide, pooler, max_connections', () => {
  const config = parseConfig(
    [
      'project: p',
      'database: { url: "postgres://h/db", pooler: pgbouncer, pool_size: 6, max_connections: 500 }',
      'services:',
      '  api: { kind: api, max: 3 }',
      '  worker: { kind: worker, max: 5, pool_size: 2 }',
    ].join('\n'),
    'tide.yaml',
  );
  assert.equal(config.database.pooler, 'pgbouncer');
  assert.equal(config.database.maxConnections, 500);
  assert.equal(config.services.api!.poolSize, 6);
  assert.equal(config.services.worker!.poolSize, 2);
  const defaults = parseConfig('project: p\nservices:\n  api: { kind: api }\n  worker: { kind: worker }\n', 'tide.yaml');
  assert.equal(defaults.database.pooler, 'auto');
  assert.deepEqual([defaults.services.api!.poolSize, defaults.services.worker!.poolSize], [10, 4]);
  assert.throws(
    () => parseConfig('project: p\ndatabase: { pooler: pgbouncr }\nservices:\n  api: { kind: api }\n', 'tide.yaml'),
    (e: TideError) => e.code === 'TIDE_CONFIG_INVALID' && /database\.pooler/.test(e.message),
  );
});

describe('against a real server', { timeout: 60_000 }, () => {
  test("reads max_connections less the reserve, and refuses a budget over it with TIDE_DB_BUDGET naming the numbers", async () => {
    const live = await readConnectionLimit(databaseUrl());
    assert.ok(live && live.limit > 0 && live.inUse! >= 1, JSON.stringify(live));
    assert.match(live.source, /max_connections \d+ less \d+ reserved/);
    const lines: string[] = [];
    const huge = { name: 'api', kind: 'api' as const, max: live.limit, poolSize: 10 };
    await assert.rejects(checkConnectionBudget([huge], { url: databaseUrl(), pooler: 'auto', log: (l) => lines.push(l) }), (e: TideError) => {
      assert.equal(e.code, 'TIDE_DB_BUDGET');
      assert.match(e.message, new RegExp(`${live.limit * 10} database connections \\(api ${live.limit} x 10\\), more than the ${live.limit} allowed`));
      return true;
    });
    // a declared limit wins over the live one
    const ok = await checkConnectionBudget([huge], { url: databaseUrl(), pooler: 'auto', maxConnections: live.limit * 20, log: (l) => lines.push(l) });
    assert.equal(ok.verdict, 'ok');
    assert.deepEqual(lines, []);
  });
});

const skip = pgbouncerSkipReason();
describe('behind PgBouncer', { skip, timeout: 60_000 }, () => {
  let bouncer: PgBouncer;
  before(async () => {
    bouncer = await startPgBouncer({ upstreamUrl: process.env.DATABASE_UPSTREAM_URL ?? databaseUrl(), poolSize: 5, maxClientConn: 60 });
  });
  after(async () => {
    await bouncer?.stop();
  });

  test("the limit is the pooler's max_client_conn, from SHOW CONFIG on its admin console", async () => {
    const live = await readConnectionLimit(bouncer.url);
    assert.equal(live?.pooled, true);
    assert.equal(live?.limit, 60);
    assert.match(live!.source, /max_client_conn 60, default_pool_size 5/);
    const lines: string[] = [];
    // 4 x 10 + 8 x 4 (no LISTEN behind the pooler without a direct URL) = 72 > 60
    await assert.rejects(
      checkConnectionBudget([api, worker], { url: bouncer.url, pooler: 'auto', log: (l) => lines.push(l) }),
      (e: TideError) => e.code === 'TIDE_DB_BUDGET' && /72 database connections .* more than the 60 allowed \(PgBouncer's max_client_conn 60/.test(e.message),
    );
  });
});
