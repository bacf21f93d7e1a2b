/**
 * The shared conformance suite every metric source passes (in the style of Hono's
 * router/common.case.test.ts and BullMQ's adapter conformance tests). Each source's test file
 * calls `sourceConformance` with factories for a source against the real backend, against a
 * backend that never answers, and against one that refuses connections.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { isTideError } from '../../src/errors.js';
import type { MetricSource, SourceContext } from '../../src/sources/types.js';
import { blackhole, freePort, handleCounts, leakedHandles } from './helpers.js';

/** The fixed clock the suite injects: every sample must carry exactly this `at`. */
export const FIXED_NOW = 1_767_225_600_000;

export interface ConformanceSubject {
  /** Why the whole suite skips (a backend's URL is not set), or false. */
  skip?: string | false;
  /** A source against the real backend, with data that yields at least one sample. */
  create(ctx: SourceContext): MetricSource | Promise<MetricSource>;
  /**
   * A source whose backend accepts connections at host:port and never answers, with
   * `timeoutMs` as its read timeout. Omit for sources with no remote backend.
   */
  hanging?(host: string, port: number, timeoutMs: number, ctx: SourceContext): MetricSource;
  /** A source whose backend refuses connections (nothing listens on `port`). */
  unreachable(port: number, ctx: SourceContext): MetricSource;
}

const ctx: SourceContext = { now: () => FIXED_NOW };

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isTideError(err), `expected a TideError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

export function sourceConformance(kind: string, subject: ConformanceSubject): void {
  const skip = subject.skip ?? false;
  describe(`${kind} source: conformance`, { skip }, () => {
    test('read returns finite samples with metric names, stamped with the injected clock', async () => {
      const source = await subject.create(ctx);
      try {
        const samples = await source.read(new AbortController().signal);
        assert.ok(samples.length > 0, 'at least one sample');
        for (const s of samples) {
          assert.equal(typeof s.metric, 'string');
          assert.ok(s.metric.length > 0);
          assert.ok(Number.isFinite(s.value), `${s.metric} = ${s.value}`);
          assert.equal(s.at, FIXED_NOW);
        }
      } finally {
        await source.close();
      }
    });

    test('an already aborted signal rejects with TIDE_SOURCE_ABORTED, and the source still reads after', async () => {
      const source = await subject.create(ctx);
      try {
        await rejectsWith(source.read(AbortSignal.abort()), 'TIDE_SOURCE_ABORTED');
        assert.ok((await source.read(new AbortController().signal)).length > 0);
      } finally {
        await source.close();
      }
    });

    test('aborting a read the backend never answers rejects promptly with TIDE_SOURCE_ABORTED', { skip: !subject.hanging && 'no remote backend', timeout: 15_000 }, async () => {
      const hole = await blackhole();
      const before = handleCounts();
      // A long own timeout: only the caller's abort can end this read in time.
      const source = subject.hanging!(hole.host, hole.port, 60_000, ctx);
      try {
        const controller = new AbortController();
        const reading = source.read(controller.signal);
        reading.catch(() => {});
        await hole.connected;
        controller.abort();
        const err = await rejectsWith(reading, 'TIDE_SOURCE_ABORTED');
        assert.match(err.message, /aborted by the caller/);
      } finally {
        await source.close();
        await hole.close();
      }
      assert.deepEqual(await leakedHandles(before), {});
    });

    test("the source's own timeout aborts a read the backend never answers", { skip: !subject.hanging && 'no remote backend', timeout: 15_000 }, async () => {
      const hole = await blackhole();
      const source = subject.hanging!(hole.host, hole.port, 300, ctx);
      try {
        const err = await rejectsWith(source.read(new AbortController().signal), 'TIDE_SOURCE_ABORTED');
        assert.match(err.message, /timed out after 300 ms/);
      } finally {
        await source.close();
        await hole.close();
      }
    });

    test('close() is idempotent, later reads fail with a code, and no handle stays open', async () => {
      const before = handleCounts();
      const source = await subject.create(ctx);
      await source.read(new AbortController().signal);
      await source.close();
      await source.close();
      await rejectsWith(source.read(new AbortController().signal), 'TIDE_SOURCE_FAILED');
      assert.deepEqual(await leakedHandles(before), {});
    });

    test('a read against an unreachable backend rejects with TIDE_SOURCE_FAILED', { timeout: 15_000 }, async () => {
      const port = await freePort();
      const before = handleCounts();
      const source = subject.unreachable(port, ctx);
      try {
        const err = await rejectsWith(source.read(new AbortController().signal), 'TIDE_SOURCE_FAILED');
        assert.match(err.message, new RegExp(`^${kind} source "`));
      } finally {
        await source.close();
      }
      assert.deepEqual(await leakedHandles(before), {});
    });
  });
}
