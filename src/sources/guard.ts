/**
 * What every source shares: its label (kind and name) in every error, the read guard that
 * turns a caller's signal plus the source's own timeout into one prompt TIDE_SOURCE_ABORTED,
 * the wrapping of anything a client library throws into a TideError, and the rule for when a
 * failed read discards a kept connection.
 */
import { z } from 'zod';

import { type ErrorCode, TideError, isTideError } from '../errors.js';

/** Which source an error or note is about. */
export interface SourceLabel {
  kind: string;
  name: string;
}

/** Fields every source config accepts. */
export const commonFields = {
  /** Names the source in errors and notes; defaults to its kind. */
  name: z.string().min(1).optional(),
  /** The longest a read may take before it is aborted, ms. */
  timeout_ms: z.number().int().positive().max(600_000).default(5_000),
};

export function labelOf(kind: string, config: { name?: string | undefined }): SourceLabel {
  return { kind, name: config.name ?? kind };
}

/** A TideError that says which source it is about, in the message and in `details`. */
export function sourceError(label: SourceLabel, code: ErrorCode, message: string, cause?: unknown): TideError {
  return new TideError(code, `${label.kind} source "${label.name}": ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { kind: label.kind, name: label.name },
  });
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(messageOf).join('; ');
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** Anything thrown while reading, as a TIDE_SOURCE_* error: aborts as ABORTED, the rest as FAILED. */
export function toSourceError(label: SourceLabel, err: unknown, signal?: AbortSignal): TideError {
  if (isTideError(err) && err.code.startsWith('TIDE_SOURCE_')) return err;
  // Another module's error (TIDE_DB_UNAVAILABLE from the queue engine): a source reports its own codes.
  if (isTideError(err) && !signal?.aborted) return sourceError(label, 'TIDE_SOURCE_FAILED', `${err.code}: ${err.message}`, err);
  if (signal?.aborted) return abortedError(label, signal.reason);
  return sourceError(label, 'TIDE_SOURCE_FAILED', messageOf(err), err);
}

/** Why a signal fired, as an error: our own deadline names its duration. */
export class ReadTimeout extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'ReadTimeout';
  }
}

function abortedError(label: SourceLabel, reason: unknown): TideError {
  const why = reason instanceof ReadTimeout ? reason.message : 'aborted by the caller';
  return sourceError(label, 'TIDE_SOURCE_ABORTED', `read ${why}`, reason);
}

/**
 * Runs one read under the caller's signal and the source's timeout. The returned promise
 * rejects with TIDE_SOURCE_ABORTED as soon as either fires, even when the client library
 * ignores signals; `onAbort` lets the source tear down what the library left running (a
 * socket, a pooled client). Any other failure becomes a TideError.
 */
export async function guardedRead<T>(
  label: SourceLabel,
  outer: AbortSignal,
  timeoutMs: number,
  work: (signal: AbortSignal) => Promise<T>,
  onAbort?: () => void,
): Promise<T> {
  if (outer.aborted) throw abortedError(label, outer.reason);
  const controller = new AbortController();
  const signal = controller.signal;
  const forward = (): void => controller.abort(outer.reason);
  outer.addEventListener('abort', forward, { once: true });
  // Our own timer (not AbortSignal.timeout) so it is cleared the moment the read settles.
  const timer = setTimeout(() => controller.abort(new ReadTimeout(timeoutMs)), timeoutMs);
  let rejectAborted: (err: TideError) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAborted = reject;
  });
  const onSignal = (): void => {
    try {
      onAbort?.();
    } finally {
      rejectAborted(abortedError(label, signal.reason));
    }
  };
  signal.addEventListener('abort', onSignal, { once: true });
  try {
    const pending = work(signal);
    // After an abort the library may still fail later; that failure is already reported.
    pending.catch(() => {});
    return await Promise.race([pending, aborted]);
  } catch (err) {
    throw toSourceError(label, err, signal);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', forward);
    signal.removeEventListener('abort', onSignal);
  }
}

/**
 * Whether a failed read may have left the source's connection broken: an abort, a failure the
 * source did not classify, or anything not yet a TideError. A query error, a missing queue or a
 * bad value is an answer the server gave over a healthy connection, so the connection stays.
 */
export function connectionMayBeBroken(err: unknown): boolean {
  return !isTideError(err) || err.code === 'TIDE_SOURCE_FAILED' || err.code === 'TIDE_SOURCE_ABORTED';
}

/**
 * `guardedRead` for a source that keeps one connection between reads: `drop` discards it when
 * the read is aborted and after any failure that may have broken it (`connectionMayBeBroken`),
 * so the next read opens a fresh one instead of reusing a dead socket.
 */
export async function guardedConnectionRead<T>(
  label: SourceLabel,
  outer: AbortSignal,
  timeoutMs: number,
  work: (signal: AbortSignal) => Promise<T>,
  drop: () => void,
): Promise<T> {
  try {
    return await guardedRead(label, outer, timeoutMs, work, drop);
  } catch (err) {
    if (connectionMayBeBroken(err)) drop();
    throw err;
  }
}

/** The one connection (client, pool, engine) a source keeps between reads; see `keptConnection`. */
export interface KeptConnection<T> {
  /** The open connection, opened now when there is none. */
  get(): T;
  /** Forgets the connection and releases it in the background; the next `get` opens a fresh one. */
  drop(polite?: boolean): void;
  /** Drops the connection and waits until every release still under way has finished. */
  close(polite?: boolean): Promise<void>;
}

/**
 * Keeps one connection, opened on first use by `open`. A dropped connection is released by
 * `release` (`polite`: nothing is pending on it, so it may say goodbye) while reads go on
 * with a new one; close() waits for those releases too, so nothing is left open after it.
 */
export function keptConnection<T>(open: () => T, release: (conn: T, polite: boolean) => Promise<void>): KeptConnection<T> {
  let conn: T | undefined;
  const releasing = new Set<Promise<void>>();
  const drop = (polite = false): void => {
    const c = conn;
    conn = undefined;
    if (c === undefined) return;
    const done = release(c, polite).finally(() => releasing.delete(done));
    releasing.add(done);
  };
  return {
    get: () => (conn ??= open()),
    drop,
    async close(polite = false) {
      drop(polite);
      await Promise.all(releasing);
    },
  };
}

/**
 * A backend's answer as a finite number, or a TIDE_SOURCE_BAD_VALUE naming what it was.
 * Accepts numbers, numeric strings (PostgreSQL numeric and bigint arrive as strings) and bigints.
 */
export function finiteNumber(label: SourceLabel, what: string, value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) {
    throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `${what} is not a finite number (got ${describe(value)})`);
  }
  return n;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value !== 'object' || value === null) return String(value);
  try {
    return JSON.stringify(value).slice(0, 80);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The error a read after close() gets. */
export function closedError(label: SourceLabel): TideError {
  return sourceError(label, 'TIDE_SOURCE_FAILED', 'the source is closed');
}
