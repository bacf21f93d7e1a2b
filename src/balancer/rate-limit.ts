/**
 * The balancer's rate limit: a token bucket per client (who a client is: src/net/client-identity.ts).
 * At most MAX_BUCKETS are kept; past that, buckets that have refilled are forgotten, since a full
 * bucket is the same as a new one.
 */
import type { RateLimitOptions } from './types.js';

const MAX_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  /** Requests refused so far. */
  limited = 0;
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly limit: RateLimitOptions,
    private readonly now: () => number,
  ) {}

  /** Seconds to wait before this client may send again, or 0 when it may now (and a token is taken). */
  wait(clientId: string): number {
    const { limit } = this;
    const t = this.now();
    let bucket = this.buckets.get(clientId);
    if (!bucket) {
      if (this.buckets.size >= MAX_BUCKETS) this.sweep(t);
      bucket = { tokens: limit.burst, at: t };
      this.buckets.set(clientId, bucket);
    } else {
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((t - bucket.at) / 1000) * limit.ratePerSecond);
      bucket.at = t;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    this.limited++;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.ratePerSecond));
  }

  /** Forget buckets that have refilled. */
  private sweep(t: number): void {
    const { limit } = this;
    for (const [id, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * limit.ratePerSecond >= limit.burst) this.buckets.delete(id);
    }
  }
}
