// Learned periodicity (core/season.ts): the per-minute buckets, the period found in them, and
// the rate that period forecasts. Seeded Poisson counts, no clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  SEASON_BUCKETS,
  SEASON_BUCKET_MS,
  type Season,
  detectPeriod,
  minuteDispersion,
  minuteTrend,
  readSeason,
  recordArrivals,
  recursByMinute,
  seasonalPeak,
  withPeriod,
} from '../../src/core/season.js';
import { Rng } from '../../src/sim/rng.js';

/** Per-minute Poisson counts around `rate(minute)` jobs a minute. */
function minutes(n: number, rate: (m: number) => number, seed = 7): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, m) => rng.poisson(rate(m)));
}

/** 12-minute cycle: 4 minutes at 120 jobs a minute, 8 at 6. */
const onOff = (m: number) => (m % 12 < 4 ? 120 : 6);

/**
 * Feeds per-minute counts as a counter read every 5 s (the controller's rounds); with `learn`,
 * the period is looked for after every round, as the policy does.
 */
function feed(counts: readonly number[], learn = false): Season {
  let season: Season | undefined;
  let total = 0;
  const read = (now: number) => {
    season = recordArrivals(season, now, total);
    if (learn) season = withPeriod(season, 1);
  };
  for (let m = 0; m < counts.length; m++) {
    for (let k = 0; k < 12; k++) {
      read(m * SEASON_BUCKET_MS + k * 5000);
      total += counts[m]! / 12;
    }
  }
  read(counts.length * SEASON_BUCKET_MS);
  return season!;
}

describe('buckets', () => {
  test('every job counted once, in the minute it arrived; memory bounded', () => {
    const counts = minutes(90, onOff);
    const season = feed(counts);
    assert.equal(season.counts.length, 90);
    season.counts.forEach((x, i) => assert.ok(Math.abs(x! - counts[i]!) < 1e-9, `minute ${i}`));
    const long = feed(minutes(SEASON_BUCKETS + 30, () => 5));
    assert.equal(long.counts.length, SEASON_BUCKETS);
    assert.equal(long.start, 30 * SEASON_BUCKET_MS, 'the oldest minutes are dropped first');
  });

  test('a reading spanning a minute edge is split by time; a minute not counted whole is unknown, not low', () => {
    let s = recordArrivals(undefined, 50_000, 0);
    s = recordArrivals(s, 70_000, 20); // 10 s of it before the edge, 10 s after
    assert.deepEqual(s.counts, [null], 'counting began 50 s into the first minute: its 10 jobs are not its count');
    assert.equal(s.open, 10);
    s = recordArrivals(s, 125_000, 75);
    assert.deepEqual(s.counts, [null, 60], 'the next minute was counted whole: its jobs by time');
    const gap = recordArrivals(s, 125_000 + 3 * SEASON_BUCKET_MS, 500);
    assert.deepEqual(gap.counts, [null, 60, null, null, null], 'the controller was down: those minutes are not zero, they are unknown');
    assert.deepEqual(recordArrivals(gap, 125_000 + 4 * SEASON_BUCKET_MS, 560).counts.at(-1), null, 'nor the minute it came back in');
    const reset = recordArrivals(recordArrivals(s, 170_000, 120), 185_000, 3);
    assert.deepEqual(reset.counts, [null, 60, null], 'a counter that went down: the minute is unknown');
  });

  test('a clock that steps back keeps the history and leaves the minute unknown; one before the first minute starts afresh', () => {
    const season = feed(minutes(30, onOff));
    const back = recordArrivals(season, season.last.at - 5_000, season.last.total + 3);
    assert.deepEqual(back.counts, season.counts);
    const on = recordArrivals(back, season.last.at + SEASON_BUCKET_MS, season.last.total + 50);
    assert.equal(on.counts.at(-1), null);
    assert.deepEqual(on.counts.slice(0, 30), season.counts);
    assert.deepEqual(recordArrivals(season, season.start - 1, 0).counts, []);
  });

  test('JSON round trip (what the controller keeps in PostgreSQL) reads back the same; garbage reads as nothing', () => {
    const season = withPeriod(feed(minutes(60, onOff)), 1);
    assert.deepEqual(readSeason(JSON.parse(JSON.stringify(season))), season);
    assert.equal(readSeason({ counts: 'x' }), undefined);
    assert.equal(readSeason(null), undefined);
  });
});

describe('the period', () => {
  test('on/off traffic: the period is found, not a multiple of it, once two whole cycles of changes are seen', () => {
    assert.equal(detectPeriod(minutes(25, onOff))?.buckets, 12);
    assert.equal(detectPeriod(minutes(90, onOff, 3))?.buckets, 12);
    assert.equal(detectPeriod(minutes(20, onOff)), null, 'under two cycles: nothing yet');
  });

  test('no period in steady, sparse, ramping or stepped traffic', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      assert.equal(detectPeriod(minutes(120, () => 50, seed)), null, 'steady');
      assert.equal(detectPeriod(minutes(120, (m) => (m % 12 < 4 ? 2 : 0), seed)), null, 'a couple of jobs a minute: noise, whatever its rhythm');
      assert.equal(detectPeriod(minutes(120, (m) => 10 + 2 * m, seed)), null, 'a ramp');
      assert.equal(detectPeriod(minutes(120, (m) => [40, 200, 90, 150, 20][Math.floor(m / 24)]!, seed)), null, 'a staircase');
    }
  });

  test('a daily period is found from two days of minutes', () => {
    const day = (m: number) => (m % 1440 < 480 ? 5 : 60); // quiet nights, busy days
    assert.equal(detectPeriod(minutes(SEASON_BUCKETS, day))?.buckets, 1440);
  });

  test('re-run only every few closed minutes; a season read back from JSON gives the same forecasts', () => {
    const a = feed(minutes(60, onOff), true);
    assert.equal(withPeriod(a, 1), a, 'no new minute: the same object back');
    const b = readSeason(JSON.parse(JSON.stringify(a)))!;
    for (let m = 55; m < 70; m++) assert.equal(seasonalPeak(b, m * SEASON_BUCKET_MS, (m + 1) * SEASON_BUCKET_MS), seasonalPeak(a, m * SEASON_BUCKET_MS, (m + 1) * SEASON_BUCKET_MS));
  });
});

describe('the forecast', () => {
  test('ahead of an on-phase it forecasts the on rate; in an off-phase beyond the horizon, the off rate', () => {
    const season = feed(minutes(60, onOff), true);
    // minute 60 starts a new cycle (60 % 12 == 0): from minute 59, the next minute is on
    const at = (m: number) => m * SEASON_BUCKET_MS;
    const ahead = seasonalPeak(season, at(59), at(60));
    assert.ok(ahead !== undefined && Math.abs(ahead - 2) < 0.3, `about 120 a minute ahead of the burst, got ${ahead}`);
    const quiet = seasonalPeak(season, at(54), at(55));
    assert.ok(quiet !== undefined && quiet < 0.2, `the off rate (6 a minute), got ${quiet}`);
  });

  test('a period is believed once two looks in a row agree: found once, it forecasts nothing yet', () => {
    const once = withPeriod(feed(minutes(60, onOff)), 1);
    assert.equal(once.detected?.period?.buckets, 12);
    assert.equal(seasonalPeak(once, 59 * SEASON_BUCKET_MS, 60 * SEASON_BUCKET_MS), undefined);
    assert.equal(feed(minutes(60, onOff), true).detected?.confirmed, true);
  });

  test('no period, no forecast', () => {
    assert.equal(seasonalPeak(feed(minutes(60, () => 50), true), 0, SEASON_BUCKET_MS * 61), undefined);
  });

  test('the forecast never exceeds the highest minute seen (a mean over cycles)', () => {
    for (const seed of [1, 2, 3]) {
      const counts = minutes(72, onOff, seed);
      const season = feed(counts, true);
      const peak = seasonalPeak(season, 0, 80 * SEASON_BUCKET_MS) ?? 0;
      assert.ok(peak <= Math.max(...counts) / 60 + 1e-9);
    }
  });
});

describe('bursts that recur by the minute', () => {
  test('on/off with a few-minute cycle recurs, with or without a period to name; plateaus, steps and sparse traffic do not', () => {
    for (const seed of [1, 2, 3]) {
      const season = (rate: (m: number) => number) => feed(minutes(40, rate, seed));
      assert.ok(recursByMinute(season((m) => (m % 4 < 1 ? 40 : 1)), 3), 'a 4-minute cycle');
      assert.ok(recursByMinute(season((m) => ([3, 9, 14, 22, 26, 31, 37].includes(m) ? 60 : 5)), 3), 'irregular bursts');
      assert.ok(!recursByMinute(season(() => 50), 3), 'steady');
      assert.ok(!recursByMinute(season((m) => (m < 20 ? 20 : 80)), 3), 'one step');
      assert.ok(!recursByMinute(season((m) => (m % 4 < 1 ? 2 : 0)), 3), 'a couple of jobs: noise');
    }
    assert.ok(!recursByMinute(undefined, 3));
  });
});

describe("the arrivals' swing from minute to minute", () => {
  test('1 for Poisson arrivals, steady or on a ramp, and past one step; far above on a noisy plateau; 1 until ten pairs are known', () => {
    for (const seed of [1, 2, 3]) {
      const season = (rate: (m: number) => number, n = 40) => feed(minutes(n, rate, seed));
      assert.equal(minuteDispersion(season(() => 300)), 1, 'steady');
      // a ramp from 100 to 700 jobs a minute over 40 minutes: the neighbours' differences hold
      // the trend's 15 a minute, next to a Poisson deviation of 20
      assert.equal(minuteDispersion(season((m) => 100 + 15 * m)), 1, 'a ramp');
      // one flash crowd: two large differences among 29 leave the median where it was
      assert.equal(minuteDispersion(season((m) => (m === 25 ? 3000 : 300))), 1, 'a flash crowd');
      // a plateau of 900 a minute whose level wanders by a third every few minutes
      const noisy = minuteDispersion(season((m) => 900 * (1 + 0.33 * Math.sin(m * 1.3) * Math.cos(m * 0.7))));
      assert.ok(noisy > 8, `noisy ${noisy}`);
      assert.equal(minuteDispersion(season((m) => (m % 2 ? 900 : 100), 10)), 1, 'nine pairs');
    }
    assert.equal(minuteDispersion(undefined), 1);
  });
});

describe('a ramp read off the minutes', () => {
  test('a climb over ten minutes is a trend, with its rate now; a plateau, a step and a flash crowd are not', () => {
    for (const seed of [1, 2, 3]) {
      const season = (rate: (m: number) => number) => feed(minutes(40, rate, seed));
      // 30 more jobs a minute each minute, from 600: at the end of minute 40, about 1,785 a minute
      const ramp = season((m) => 600 + 30 * m);
      const end = ramp.start + 40 * SEASON_BUCKET_MS;
      const t = minuteTrend(ramp, end, 4)!;
      assert.ok(t !== undefined, 'a ramp');
      assert.ok(Math.abs(t.rate * 60 - 1785) < 60, `rate ${t.rate * 60} a minute`);
      assert.ok(Math.abs(t.slope * 3600 - 30) < 8, `slope ${t.slope * 3600} a minute each minute`);
      assert.equal(minuteTrend(season(() => 900), end, 4), undefined, 'a plateau');
      assert.equal(minuteTrend(season((m) => (m < 36 ? 600 : 1800)), end, 4), undefined, 'a step four minutes ago');
      assert.equal(minuteTrend(season((m) => (m === 38 ? 5000 : 600)), end, 4), undefined, 'a flash crowd');
    }
    assert.equal(minuteTrend(undefined, 0, 4), undefined);
  });
});
