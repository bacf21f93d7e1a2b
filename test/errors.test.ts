import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { ERRORS, TideError, formatError } from '../src/errors.js';

test('every error code is documented in docs/errors.md', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const missing = Object.keys(ERRORS).filter((code) => !doc.includes(`\`${code}\``));
  assert.deepEqual(missing, []);
});

test('a TideError carries its code, status, exit code and where it came from', () => {
  const err = new TideError('TIDE_USAGE', 'bad flag', { where: { arg: '--minutes' } });
  assert.equal(err.status, 400);
  assert.equal(err.exitCode, 2);
  assert.equal(formatError(err), 'error TIDE_USAGE: bad flag (at argument --minutes)');
  assert.deepEqual(JSON.parse(JSON.stringify(err)), { code: 'TIDE_USAGE', message: 'bad flag', where: { arg: '--minutes' } });
});
