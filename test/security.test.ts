/**
 * Security: the control token and API keys are enforced, the SQL source only reads, and no
 * secret reaches a log line, /metrics, /health, the control API or `tide ps --json` of a real
 * running system.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkApiKeys, checkControlToken, checkSecretsHidden, checkSqlReadOnly, withPassword } from '../chaos/scenarios/security.js';
import { databaseUrl } from './helpers/db.js';

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
