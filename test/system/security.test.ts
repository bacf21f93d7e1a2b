/**
 * Security: the control token and API keys are enforced, the SQL source only reads, no
 * secret reaches a log line, /metrics, /health, the control API or `tide ps --json` of a real
 * running system, and hostile clients (random keys, forged forwarded headers, slow heads,
 * floods, idle connections) neither escape the limits nor take the API down.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkBehindCaddy, checkFloods, checkIdleConnections, checkRandomKeys, checkSlowHeaders, checkSpoofedForwarded } from '../../chaos/scenarios/hostile.js';
import { checkApiKeys, checkControlToken, checkSecretsHidden, checkSqlReadOnly, withPassword } from '../../chaos/scenarios/security.js';
import { databaseUrl } from '../helpers/db.js';

test('the control API beyond loopback refuses calls without the right bearer token, and will not start without one', async () => {
  assert.deepEqual(await checkControlToken(), []);
});

test('API keys are enforced on every route but /health and /metrics', async () => {
  assert.deepEqual(await checkApiKeys(databaseUrl()), []);
});

test('the SQL source refuses writes in every disguise and leaves the database unchanged', async () => {
  const { problems, refused } = await checkSqlReadOnly(databaseUrl());
  assert.deepEqual(problems, []);
  assert.ok(refused >= 10);
});

test('withPassword keeps a password that is there and adds one that is not', () => {
  assert.equal(withPassword('postgres://u:p%40ss@h:5432/d').password, 'p@ss');
  const added = withPassword('postgres://u@h:5432/d');
  assert.ok(added.url.includes(`:${added.password}@`));
});

test('no secret in replica and supervisor logs, /metrics, /health, the control API, the dashboard events, tide decisions --json or tide ps --json', { timeout: 120_000 }, async () => {
  const { problems, outputs, bytes } = await checkSecretsHidden(databaseUrl());
  assert.deepEqual(problems, []);
  assert.ok(outputs > 20 && bytes > 10_000, `enough was captured to mean something (${outputs} outputs, ${bytes} bytes)`);
});

// Hostile clients (chaos/scenarios/hostile.ts): each check bounded, loopback only.

test('random API keys do not escape the per-client limit; a verified key is a client of its own', { timeout: 60_000 }, async () => {
  const { problems, figures } = await checkRandomKeys(databaseUrl());
  assert.deepEqual(problems, []);
  assert.equal(figures.randomKeysAccepted, 5);
});

test('forged X-Forwarded-For and Forwarded headers from outside the trusted set change nobody\'s bucket, at the API and at the balancer', { timeout: 60_000 }, async () => {
  const { problems } = await checkSpoofedForwarded(databaseUrl());
  assert.deepEqual(problems, []);
});

test('behind a real Caddy, per-client limits apply per client, not per proxy, and forged headers change nothing', { timeout: 90_000 }, async (t) => {
  const { problems, skipped, figures } = await checkBehindCaddy(databaseUrl());
  if (skipped) {
    t.skip(skipped);
    return;
  }
  assert.deepEqual(problems, []);
  assert.equal(figures.caddyClientBAccepted, 5);
});

test('slow headers are cut at the header timeout with 408 while normal requests are served', { timeout: 60_000 }, async () => {
  const { problems, figures } = await checkSlowHeaders(databaseUrl(), 100);
  assert.deepEqual(problems, []);
  assert.equal(figures.slowHeadsCut408, 100);
});

test('header and body floods are refused with 431 and 413, and the API goes on', { timeout: 60_000 }, async () => {
  const { problems } = await checkFloods(databaseUrl(), 20);
  assert.deepEqual(problems, []);
});

test('thousands of idle connections are refused before the file descriptors run out, and the API serves once they go', { timeout: 90_000 }, async () => {
  const { problems, figures } = await checkIdleConnections(databaseUrl(), 2_000);
  assert.deepEqual(problems, []);
  assert.ok(figures.idleConnectionsClosedAtOnce! > 0, `some connections were refused (${JSON.stringify(figures)})`);
});
