/**
 * `redis`: the length of a Redis list (LLEN), or the sum over several lists, as one sample:
 * KEDA's redis list scaler. A missing key is an empty list (0), as Redis itself says.
 *
 * Design: one ioredis client per source, connected on the first read. A read that is aborted
 * or fails on the connection drops the client (a wedged socket must not stall the next read);
 * the next read opens a new one. close() ends the client and waits for its socket to close.
 * The connection helpers here are shared with the bullmq source.
 */
import { Redis } from 'ioredis';
import { z } from 'zod';

import { closedError, commonFields, guardedConnectionRead, keptConnection, labelOf, sourceError } from './guard.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

export const redisConfig = z.strictObject({
  ...commonFields,
  /** redis://[user:pass@]host:port[/db] */
  url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
  /** One list key, or several whose lengths are summed. */
  key: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  metric: z.string().min(1).default('queue_depth'),
});
export type RedisConfig = z.infer<typeof redisConfig>;

/**
 * A client that connects on its first command and fails that command at once when the server
 * refuses (instead of queueing it through endless reconnects).
 */
export function openRedis(url: string, timeoutMs: number): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    // Reconnecting in the background is pointless for a source: the next read reconnects.
    retryStrategy: () => null,
    // disconnect() half-closes and waits this long for the server to close too; a server that
    // never answers never will, so do not hold close() for ioredis's default 2 s.
    disconnectTimeout: 100,
  });
  // Connection errors reach the pending command; without a listener ioredis would log them.
  client.on('error', () => {});
  return client;
}

/** Ends a client whatever its state and resolves once its socket is closed. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'wait') {
    // Never connected (lazyConnect): there is no socket to wait for.
    client.disconnect();
    return;
  }
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  if (client.status === 'ready') {
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  } else {
    client.disconnect();
  }
  await ended;
}

/** True for an error the server replied with (WRONGTYPE, NOSCRIPT, ...), not a broken connection. */
export function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

export function createRedisSource(config: RedisConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('redis', config);
  const keys = typeof config.key === 'string' ? [config.key] : config.key;
  const client = keptConnection(() => openRedis(config.url, config.timeout_ms), closeRedis);
  let closed = false;

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      return guardedConnectionRead(
        label,
        signal,
        config.timeout_ms,
        async () => {
          const pipeline = client.get().pipeline();
          for (const key of keys) pipeline.llen(key);
          const replies = (await pipeline.exec()) ?? [];
          let total = 0;
          for (const [i, [err, length]] of replies.entries()) {
            if (err) {
              if (isReplyError(err)) throw sourceError(label, 'TIDE_SOURCE_QUERY', `LLEN ${keys[i]}: ${err.message}`, err);
              throw err;
            }
            total += Number(length);
          }
          return [{ metric: config.metric, value: total, at: ctx.now() }];
        },
        () => client.drop(),
      );
    },
    async close() {
      closed = true;
      await client.close();
    },
  };
}

export const redisSource: SourceDefinition<RedisConfig> = {
  kind: 'redis',
  summary: 'The length of a Redis list (LLEN), or the sum over several lists.',
  schema: redisConfig,
  create: createRedisSource,
};
