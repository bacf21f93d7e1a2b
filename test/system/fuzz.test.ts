/**
 * Fuzzing (fast-check, fixed seeds): the API's JSON inputs through inject() on a real queue,
 * and tide.yaml texts through parseConfig. A failure prints the shrunk input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RECURSIVE_ALIAS, fuzzApi, fuzzConfig, fuzzControl } from '../../chaos/scenarios/fuzz.js';
import { parseConfig } from '../../src/config/load.js';
import { isTideError } from '../../src/errors.js';
import { databaseUrl } from '../helpers/db.js';

test('API JSON inputs: never a 5xx, every error a documented code (2,000 cases)', { timeout: 120_000 }, async () => {
  const outcome = await fuzzApi({ databaseUrl: databaseUrl(), runs: 2_000, seed: 7 });
  assert.deepEqual(outcome.problems, []);
  assert.equal(outcome.cases, 2_000);
});

test('tide.yaml texts: a config or a TIDE_CONFIG_* error naming the file, never another exception (2,000 cases)', { timeout: 120_000 }, async () => {
  const outcome = await fuzzConfig({ runs: 2_000, seed: 7 });
  assert.deepEqual(outcome.problems, []);
  assert.equal(outcome.cases, 2_000);
});

test('control API JSON inputs (scale, restart, logs): never a 5xx, every error a documented code (500 cases)', { timeout: 60_000 }, async () => {
  const outcome = await fuzzControl({ runs: 500, seed: 7 });
  assert.deepEqual(outcome.problems, []);
  assert.equal(outcome.cases, 500);
});

test(
  'tide.yaml with a recursive alias is a TIDE_CONFIG_YAML error, not a stack overflow',
  () => {
    assert.throws(
      () => parseConfig(RECURSIVE_ALIAS, 'tide.yaml', {}),
      (err: unknown) => isTideError(err) && err.code.startsWith('TIDE_CONFIG_'),
    );
  },
);
