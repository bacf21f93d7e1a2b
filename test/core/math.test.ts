// The core's math: Erlang B/C against known values and the textbook formula, and the cron matcher.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { cronMatches, lastFiring, parseCron, wallClock } from '../../src/core/cron.js';
import { erlangB, erlangC, probWaitExceeds, replicasForWait } from '../../src/core/erlang.js';
import { TideError } from '../../src/errors.js';

/** The textbook Erlang C with factorials, fine for small N. */
function erlangCDirect(n: number, a: number): number {
  let term = 1;
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += term;
    term = (term * a) / (k + 1);
  }
  const last = (term * n) / (n - a);
  return last / (sum + last);
}

describe('Erlang', () => {
  test('known values: M/M/1 waits with probability rho, M/M/2 at a = 1 with 1/3', () => {
    assert.ok(Math.abs(erlangC(1, 0.7) - 0.7) < 1e-12);
    assert.ok(Math.abs(erlangC(2, 1) - 1 / 3) < 1e-12);
    assert.ok(Math.abs(erlangB(1, 1) - 0.5) < 1e-12);
    assert.ok(Math.abs(erlangB(2, 1) - 0.2) < 1e-12);
  });

  test('matches the factorial formula', () => {
    for (const [n, a] of [
      [10, 8],
      [5, 4.5],
      [20, 12],
      [30, 29.5],
    ] as const) {
      assert.ok(Math.abs(erlangC(n, a) - erlangCDirect(n, a)) < 1e-9, `C(${n}, ${a})`);
    }
  });

  test('is stable for thousands of servers and saturates at N <= a', () => {
    const c = erlangC(3000, 2950);
    assert.ok(c > 0 && c < 1, `C = ${c}`);
    assert.equal(erlangC(100, 100), 1);
    assert.equal(erlangC(100, 0), 0);
  });

  test('the wait tail falls with servers and widens with service-time variance', () => {
    const m = { lambda: 90, serviceTime: 1, scv: 1, wait: 2 };
    assert.ok(probWaitExceeds(100, m) < probWaitExceeds(95, m));
    assert.ok(probWaitExceeds(95, { ...m, scv: 4 }) > probWaitExceeds(95, m));
    assert.equal(probWaitExceeds(90, m), 1);
  });

  test('replicasForWait returns the smallest count that meets the bound', () => {
    const m = { lambda: 100, serviceTime: 1, scv: 1, wait: 10 };
    const n = replicasForWait(m, 0.005, 10, 1000);
    assert.ok(probWaitExceeds(n * 10, m) <= 0.005);
    assert.ok(probWaitExceeds((n - 1) * 10, m) > 0.005);
    assert.equal(replicasForWait({ ...m, lambda: 0 }, 0.005, 10, 1000), 0);
    assert.equal(replicasForWait(m, 0.005, 10, 5), 5);
  });
});

describe('cron', () => {
  const at = (iso: string) => Date.parse(iso);

  test('fields: star, lists, ranges, steps, names, and 7 for Sunday', () => {
    const c = parseCron('*/15 9-17 * jan,JUL mon-fri');
    assert.deepEqual([...c.minute], [0, 15, 30, 45]);
    assert.deepEqual([...c.hour], [9, 10, 11, 12, 13, 14, 15, 16, 17]);
    assert.deepEqual([...c.month].sort((a, b) => a - b), [1, 7]);
    assert.deepEqual([...c.dayOfWeek], [1, 2, 3, 4, 5]);
    assert.deepEqual([...parseCron('0 0 * * 7').dayOfWeek], [0]);
    assert.deepEqual([...parseCron('5/20 * * * *').minute], [5, 25, 45]);
    assert.deepEqual([...parseCron('0 1-10/3 * * *').hour], [1, 4, 7, 10]);
  });

  test('matches a wall-clock minute', () => {
    const c = parseCron('30 9 * * 1-5');
    assert.ok(cronMatches(c, wallClock(at('2026-01-05T09:30:00Z'))));
    assert.ok(!cronMatches(c, wallClock(at('2026-01-04T09:30:00Z')))); // a Sunday
    assert.ok(!cronMatches(c, wallClock(at('2026-01-05T09:31:00Z'))));
  });

  test('day of month and day of week: either matches when both are restricted', () => {
    const c = parseCron('0 0 1 * mon');
    assert.ok(cronMatches(c, wallClock(at('2026-01-05T00:00:00Z')))); // Monday the 5th
    assert.ok(cronMatches(c, wallClock(at('2026-02-01T00:00:00Z')))); // Sunday the 1st
    assert.ok(!cronMatches(c, wallClock(at('2026-01-06T00:00:00Z'))));
  });

  test('the last firing, in a time zone, across a daylight-saving change', () => {
    const c = parseCron('0 9 * * *');
    assert.equal(lastFiring(c, at('2026-01-05T15:30:00Z'), 'America/New_York'), at('2026-01-05T14:00:00Z'));
    assert.equal(lastFiring(c, at('2026-07-06T14:30:00Z'), 'America/New_York'), at('2026-07-06T13:00:00Z'));
    // 08:00 EDT on the day clocks went forward: the last 9:00 was the day before, in EST.
    assert.equal(lastFiring(c, at('2026-03-08T12:00:00Z'), 'America/New_York'), at('2026-03-07T14:00:00Z'));
    assert.equal(lastFiring(c, at('2026-01-05T09:00:00Z')), at('2026-01-05T09:00:00Z'));
    assert.equal(lastFiring(parseCron('0 0 29 2 *'), at('2026-01-05T09:00:00Z'), 'UTC', 8), undefined);
  });

  test('bad expressions are TIDE_POLICY_INVALID naming the field', () => {
    for (const bad of ['* * * *', '60 * * * *', '* 24 * * *', '*/0 * * * *', '5-1 * * * *', '* * * foo *', '1,,2 * * * *']) {
      assert.throws(
        () => parseCron(bad, 'schedule[0].cron'),
        (err: unknown) => err instanceof TideError && err.code === 'TIDE_POLICY_INVALID' && err.where?.field === 'schedule[0].cron',
        bad,
      );
    }
  });
});
