// What every source's reads go through (sources/guard.ts), on its own: the timeout and the
// caller's abort win even over a library that ignores signals, errors become TIDE_SOURCE_*
// codes, a connection that may be broken is dropped, and a kept connection is released once.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TideError } from '../../src/errors.js';
import { closedError, finiteNumber, guardedConnectionRead, guardedRead, keptConnection, labelOf, toSourceError } from '../../src/sources/guard.js';

const label = labelOf('test', { name: 'probe' });
/** Work that never settles and ignores its signal, as a stuck client library does. */
const stuck = () => new Promise<never>(() => {});

test('a read that answers in time returns its value, and its timer is cleared', async () => {
  assert.equal(await guardedRead(label, new AbortController().signal, 60_000, async () => 42), 42);
});

test('a stuck read ends at the timeout as TIDE_SOURCE_ABORTED naming the time, and onAbort runs once', async () => {
  let aborts = 0;
  await assert.rejects(
    guardedRead(label, new AbortController().signal, 20, stuck, () => aborts++),
    (err: TideError) => err.code === 'TIDE_SOURCE_ABORTED' && /timed out after 20 ms/.test(err.message),
  );
  assert.equal(aborts, 1);
});

test("the caller's abort ends a stuck read at once, and an already aborted signal reads nothing", async () => {
  const caller = new AbortController();
  const read = guardedRead(label, caller.signal, 60_000, stuck);
  caller.abort();
  await assert.rejects(read, (err: TideError) => err.code === 'TIDE_SOURCE_ABORTED' && /aborted by the caller/.test(err.message));
  let ran = false;
  await assert.rejects(
    guardedRead(label, caller.signal, 60_000, async () => {
      ran = true;
    }),
    { code: 'TIDE_SOURCE_ABORTED' },
  );
  assert.equal(ran, false);
});

test("failures become the source's codes: another module's TideError and plain errors as FAILED, its own codes kept", () => {
  const other = toSourceError(label, new TideError('TIDE_DB_UNAVAILABLE', 'down'));
  assert.equal(other.code, 'TIDE_SOURCE_FAILED');
  assert.match(other.message, /TIDE_DB_UNAVAILABLE: down/);
  assert.equal(toSourceError(label, new Error('boom')).code, 'TIDE_SOURCE_FAILED');
  const own = new TideError('TIDE_SOURCE_BAD_VALUE', 'x');
  assert.equal(toSourceError(label, own), own);
});

test('guardedConnectionRead drops the connection after a failure that may have broken it, not after an answer', async () => {
  let drops = 0;
  const drop = () => drops++;
  await assert.rejects(guardedConnectionRead(label, new AbortController().signal, 60_000, () => Promise.reject(new Error('ECONNRESET')), drop));
  assert.equal(drops, 1);
  await assert.rejects(guardedConnectionRead(label, new AbortController().signal, 60_000, () => Promise.reject(closedError(label)), drop));
  assert.equal(drops, 2, 'a FAILED read may have broken it');
  await assert.rejects(
    guardedConnectionRead(label, new AbortController().signal, 60_000, () => Promise.reject(new TideError('TIDE_SOURCE_BAD_VALUE', 'not a number')), drop),
  );
  assert.equal(drops, 2, 'a bad value came over a healthy connection');
});

test('keptConnection: opened once, a dropped one released in the background, close waits for every release', async () => {
  let opened = 0;
  const released: Array<[number, boolean]> = [];
  const finish: Array<() => void> = [];
  const kept = keptConnection(
    () => ++opened,
    (conn, polite) => {
      released.push([conn, polite]);
      return new Promise<void>((resolve) => finish.push(resolve));
    },
  );
  assert.equal(kept.get(), 1);
  assert.equal(kept.get(), 1);
  kept.drop();
  assert.equal(kept.get(), 2, 'the next read opens a fresh one');
  let closed = false;
  const closing = kept.close(true).then(() => (closed = true));
  await Promise.resolve();
  assert.deepEqual(released, [
    [1, false],
    [2, true],
  ]);
  assert.equal(closed, false, 'close waits for the releases under way');
  for (const f of finish) f();
  await closing;
});

test('finiteNumber takes numbers, numeric strings and bigints; anything else is TIDE_SOURCE_BAD_VALUE naming it', () => {
  assert.equal(finiteNumber(label, 'depth', 3), 3);
  assert.equal(finiteNumber(label, 'depth', '12.5'), 12.5);
  assert.equal(finiteNumber(label, 'depth', 7n), 7);
  for (const bad of ['', 'abc', null, undefined, Number.NaN, Infinity, { a: 1 }]) {
    assert.throws(() => finiteNumber(label, 'depth', bad), (err: TideError) => err.code === 'TIDE_SOURCE_BAD_VALUE' && /depth is not a finite number/.test(err.message));
  }
});
