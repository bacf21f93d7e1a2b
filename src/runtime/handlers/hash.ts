/**
 * `hash`: the CPU-bound demo job (like a hash API). Payload `{ data, algorithm = 'sha256',
 * rounds = 1000 }`: hashes `data`, then the digest again, `rounds` times. It yields to the
 * event loop every few thousand rounds so heartbeats keep the lease of a long job alive.
 */
import { createHash, getHashes } from 'node:crypto';

import { TideError } from '../../errors.js';
import type { JobContext } from './types.js';

const MAX_ROUNDS = 10_000_000;
const YIELD_EVERY = 5_000;

export interface HashResult {
  digest: string;
  algorithm: string;
  rounds: number;
}

function payloadError(message: string, field: string): TideError {
  return new TideError('TIDE_HANDLER_PAYLOAD', `hash: ${message}`, { where: { field: `payload.${field}` } });
}

export async function hash(payload: unknown, ctx?: Pick<JobContext, 'signal'>): Promise<HashResult> {
  const p = (payload ?? {}) as { data?: unknown; algorithm?: unknown; rounds?: unknown };
  if (typeof p !== 'object') throw payloadError('the payload must be an object { data, algorithm?, rounds? }.', 'data');
  const data = p.data === undefined ? '' : p.data;
  if (typeof data !== 'string') throw payloadError('data must be a string.', 'data');
  const algorithm = p.algorithm ?? 'sha256';
  if (typeof algorithm !== 'string' || !getHashes().includes(algorithm)) throw payloadError(`unknown algorithm ${JSON.stringify(algorithm)}.`, 'algorithm');
  const rounds = p.rounds ?? 1000;
  if (typeof rounds !== 'number' || !Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) {
    throw payloadError(`rounds must be an integer from 1 to ${MAX_ROUNDS}.`, 'rounds');
  }
  let digest: Buffer = createHash(algorithm).update(data).digest();
  for (let i = 1; i < rounds; i++) {
    digest = createHash(algorithm).update(digest).digest();
    if (i % YIELD_EVERY === 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      ctx?.signal.throwIfAborted();
    }
  }
  return { digest: digest.toString('hex'), algorithm, rounds };
}
