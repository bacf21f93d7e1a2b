/**
 * The shared conformance suite every actuator passes (each platform's test file calls it
 * with a factory). The platform behind it may be a fake, and then the label says so.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Actuator } from '../../src/actuators/types.js';
import { type Decision, emptyHistory } from '../../src/core/types.js';
import { isTideError } from '../../src/errors.js';

/** One fresh actuator over one fresh platform (or fake), with hooks the suite needs. */
export interface ConformanceHarness {
  actuator: Actuator;
  /** A service the platform has. */
  service: string;
  /** A service the platform does not have. */
  missingService: string;
  /** Calls (commands, requests) the platform has received so far. */
  platformCalls(): Promise<number>;
  /** Makes the platform fail its next call (a non-zero exit, a 5xx). */
  failNextCall(): Promise<void>;
  /** Closes the actuator and stops the platform. */
  close(): Promise<void>;
}

export function why(desired: number): Decision {
  return { desired, reasons: [{ code: 'ScalingActive', message: `conformance: scale to ${desired}.` }], history: emptyHistory() };
}

function hasCode(code: string) {
  return (err: unknown) => {
    assert.ok(isTideError(err), `expected a TideError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

/** Registers the suite's tests; every name starts with `label`, e.g. "compose (fake docker)". */
export function actuatorConformance(label: string, setup: () => Promise<ConformanceHarness>): void {
  const withHarness = (name: string, body: (h: ConformanceHarness) => Promise<void>) =>
    test(`${label}: ${name}`, async () => {
      const h = await setup();
      try {
        await body(h);
      } finally {
        await h.close();
      }
    });

  withHarness('scale(n) then observe() reports desired n', async (h) => {
    await h.actuator.scale(h.service, 3, why(3));
    const seen = await h.actuator.observe(h.service);
    assert.equal(seen.desired, 3);
    assert.ok(Number.isSafeInteger(seen.ready) && seen.ready >= 0 && seen.ready <= 3, `ready ${seen.ready}`);
    await h.actuator.scale(h.service, 1, why(1));
    assert.equal((await h.actuator.observe(h.service)).desired, 1);
  });

  withHarness('scale(0) is allowed and observe() reports 0', async (h) => {
    await h.actuator.scale(h.service, 2, why(2));
    await h.actuator.scale(h.service, 0, why(0));
    assert.deepEqual(await h.actuator.observe(h.service), { desired: 0, ready: 0 });
  });

  withHarness('a negative, fractional or non-finite count is refused before any platform call', async (h) => {
    const before = await h.platformCalls();
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
      await assert.rejects(h.actuator.scale(h.service, bad, why(0)), hasCode('TIDE_ACTUATOR_REPLICAS'));
    }
    assert.equal(await h.platformCalls(), before, 'the platform received no call');
  });

  withHarness('a platform error surfaces as TIDE_ACTUATOR_FAILED, and the next call works', async (h) => {
    await h.failNextCall();
    await assert.rejects(h.actuator.scale(h.service, 2, why(2)), hasCode('TIDE_ACTUATOR_FAILED'));
    await h.actuator.scale(h.service, 2, why(2));
    assert.equal((await h.actuator.observe(h.service)).desired, 2);
  });

  withHarness('scaling to the same count again is idempotent', async (h) => {
    await h.actuator.scale(h.service, 2, why(2));
    const first = await h.actuator.observe(h.service);
    await h.actuator.scale(h.service, 2, why(2));
    await h.actuator.scale(h.service, 2, why(2));
    assert.deepEqual(await h.actuator.observe(h.service), first);
    assert.equal(first.desired, 2);
  });

  withHarness('a service the platform does not have is TIDE_ACTUATOR_NOT_FOUND', async (h) => {
    await assert.rejects(h.actuator.observe(h.missingService), hasCode('TIDE_ACTUATOR_NOT_FOUND'));
    await assert.rejects(h.actuator.scale(h.missingService, 1, why(1)), hasCode('TIDE_ACTUATOR_NOT_FOUND'));
  });
}
