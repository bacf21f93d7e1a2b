/**
 * A database URL the server refuses gets a code of its own, the host and the name, and the
 * fix: no such database, no such role, a wrong password. On real servers: the embedded one
 * (password authentication, so a wrong password and an unknown role are refused as such) and
 * the run's DATABASE_URL server (an unknown database). Plus the load balancer's port in use.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import pg from 'pg';

import { fallbackDataDir, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { toAccessError } from '../../src/db/errors.js';
import { TideError } from '../../src/errors.js';
import { createQueue } from '../../src/index.js';
import { createBalancer } from '../../src/balancer/balancer.js';
import { databaseUrl } from '../helpers/db.js';

function refusedWith(code: string, ...mentions: RegExp[]) {
  return (err: unknown) => {
    assert.ok(err instanceof TideError, `not a TideError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const m of mentions) assert.match(err.message, m);
    return true;
  };
}

test('the embedded server (password auth): a wrong password and an unknown role are TIDE_DB_AUTH_FAILED; an unknown database TIDE_DB_NOT_FOUND', { timeout: 120_000 }, async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-dberr-'));
  const db = await startEmbeddedPostgres({ stateDir });
  try {
    const url = new URL(db.url);
    const wrongPassword = new URL(url);
    wrongPassword.password = 'not-the-password';
    await assert.rejects(createQueue({ databaseUrl: wrongPassword.href }), refusedWith('TIDE_DB_AUTH_FAILED', /127\.0\.0\.1:\d+/, /role "tide"/, /password/));
    const unknownRole = new URL(wrongPassword);
    unknownRole.username = 'nobody_here';
    await assert.rejects(createQueue({ databaseUrl: unknownRole.href }), refusedWith('TIDE_DB_AUTH_FAILED', /role "nobody_here"/));
    const unknownDb = new URL(url);
    unknownDb.pathname = '/nodb';
    await assert.rejects(createQueue({ databaseUrl: unknownDb.href }), refusedWith('TIDE_DB_NOT_FOUND', /"nodb" does not exist on 127\.0\.0\.1:\d+/, /CREATE DATABASE "nodb"/));
  } finally {
    await db.stop();
    await rm(stateDir, { recursive: true, force: true });
    await rm(fallbackDataDir(stateDir), { recursive: true, force: true });
  }
});

test("the run's server: an unknown database is TIDE_DB_NOT_FOUND, an unknown role TIDE_DB_ROLE_NOT_FOUND (or AUTH_FAILED under password auth)", { timeout: 60_000 }, async () => {
  const url = new URL(databaseUrl());
  url.pathname = '/tide_no_such_db';
  await assert.rejects(
    createQueue({ databaseUrl: url.href }),
    refusedWith('TIDE_DB_NOT_FOUND', new RegExp(`"tide_no_such_db" does not exist on ${url.hostname}:${url.port || 5432}`)),
  );
  const role = new URL(databaseUrl());
  role.username = 'tide_no_such_role';
  // under trust or peer authentication the server says the role does not exist (28000);
  // under password authentication it says only that the password failed (28P01)
  const raw = new pg.Client({ connectionString: role.href });
  const state = await raw.connect().then(
    () => 'connected',
    (err: { code?: string }) => err.code,
  );
  await raw.end().catch(() => undefined);
  assert.ok(state === '28000' || state === '28P01', `unexpected answer ${state}`);
  await assert.rejects(
    createQueue({ databaseUrl: role.href }),
    refusedWith(state === '28000' ? 'TIDE_DB_ROLE_NOT_FOUND' : 'TIDE_DB_AUTH_FAILED', /"tide_no_such_role"/, new RegExp(`${role.hostname}:${role.port || 5432}`)),
  );
});

test('a server without password auth says the role does not exist: TIDE_DB_ROLE_NOT_FOUND with the CREATE ROLE to run', () => {
  // what PostgreSQL sends under trust or peer authentication (SQLSTATE 28000)
  const refused = Object.assign(new Error('role "app" does not exist'), { code: '28000' });
  const err = toAccessError(refused, 'postgres://app@db.internal:6432/shop');
  assert.ok(err instanceof TideError);
  assert.equal(err.code, 'TIDE_DB_ROLE_NOT_FOUND');
  assert.match(err.message, /"app" does not exist on db\.internal:6432/);
  assert.match(err.message, /CREATE ROLE/);
  // anything else passes through unchanged
  const other = Object.assign(new Error('syntax error'), { code: '42601' });
  assert.equal(toAccessError(other, 'postgres://x@h/db'), other);
});

test("the load balancer's port in use is TIDE_LB_PORT_IN_USE naming host, port and the field to change", { timeout: 30_000 }, async () => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as { port: number }).port;
  try {
    await assert.rejects(createBalancer({ host: '127.0.0.1', port }), (err: unknown) => {
      assert.ok(err instanceof TideError);
      assert.equal(err.code, 'TIDE_LB_PORT_IN_USE');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port} is in use`));
      assert.deepEqual(err.where, { field: 'balancer.port' });
      return true;
    });
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
});
