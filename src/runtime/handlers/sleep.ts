/**
 * `sleep`: the I/O-bound demo job. Payload `{ ms }` sleeps that long; `{ mean_ms, cv }` draws
 * the time from a lognormal distribution with that mean and coefficient of variation (the
 * usual shape of real service times: most fast, a long tail). Stops early when aborted.
 */
import { TideError } from '../../errors.js';
import type { JobContext } from './types.js';

const MAX_MS = 3_600_000;

function payloadError(message: string, field: string): TideError {
  return new TideError('TIDE_HANDLER_PAYLOAD', `sleep: ${message}`, { where: { field: `payload.${field}` } });
}

/** A lognormal draw with the given mean and coefficient of variation (Box-Muller on `random`). */
export function lognormalMs(meanMs: number, cv: number, random: () => number = Math.random): number {
  if (cv === 0) return meanMs;
  const sigma2 = Math.log(1 + cv * cv);
  const mu = Math.log(meanMs) - sigma2 / 2;
  const u1 = 1 - random(); // (0, 1]: log() stays finite
  const u2 = random();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return Math.exp(mu + Math.sqrt(sigma2) * z);
}

/** How long a payload asks to sleep, validated. */
export function sleepMs(payload: unknown, random: () => number = Math.random): number {
  const p = (payload ?? {}) as { ms?: unknown; mean_ms?: unknown; cv?: unknown };
  if (typeof p !== 'object') throw payloadError('the payload must be an object { ms } or { mean_ms, cv }.', 'ms');
  if (p.ms !== undefined) {
    if (typeof p.ms !== 'number' || !(p.ms >= 0 && p.ms <= MAX_MS)) throw payloadError(`ms must be a number from 0 to ${MAX_MS}.`, 'ms');
    return p.ms;
  }
  if (p.mean_ms === undefined) throw payloadError('give ms, or mean_ms (and cv).', 'ms');
  if (typeof p.mean_ms !== 'number' || !(p.mean_ms > 0 && p.mean_ms <= MAX_MS)) throw payloadError(`mean_ms must be a number from 0 to ${MAX_MS}.`, 'mean_ms');
  const cv = p.cv ?? 1;
  if (typeof cv !== 'number' || !(cv >= 0 && cv <= 10)) throw payloadError('cv must be a number from 0 to 10.', 'cv');
  return Math.min(MAX_MS, lognormalMs(p.mean_ms, cv, random));
}

export async function sleep(payload: unknown, ctx?: Pick<JobContext, 'signal'>): Promise<{ slept_ms: number }> {
  const ms = sleepMs(payload);
  await new Promise<void>((resolve, reject) => {
    const signal = ctx?.signal;
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  return { slept_ms: Math.round(ms * 1000) / 1000 };
}
