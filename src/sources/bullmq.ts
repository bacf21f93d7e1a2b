/**
 * `bullmq`: a BullMQ queue's waiting and active counts and the age of its oldest waiting job,
 * read through BullMQ's own Queue API on Redis.
 *
 * Which job is oldest: BullMQ adds jobs at the head of the `wait` list (LPUSH) and workers
 * take them from the tail, so the oldest is at the tail: `getJobs(['wait'], 0, 0, true)`
 * (ascending; `getWaiting` uses that order too), while the descending order returns the
 * newest. Taking the wrong end is the wrong-job trap the design notes; the test pins the
 * order down with jobs enqueued at known times.
 * LIFO jobs go to the tail, and prioritized jobs live in their own set, so the age is taken
 * over both ends of the list and the next prioritized job.
 *
 * Design: one ioredis client per source (shared with BullMQ's Queue, which then leaves its
 * lifetime to us), made on the first read; an aborted or failed read drops both, and the next
 * read makes new ones. close() closes the Queue and ends the client.
 */
import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';

import { METRIC } from '../core/types.js';
import { closedError, commonFields, guardedConnectionRead, keptConnection, labelOf } from './guard.js';
import { closeRedis, openRedis } from './redis.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

export const bullmqConfig = z.strictObject({
  ...commonFields,
  /** redis://[user:pass@]host:port[/db] of the Redis BullMQ uses. */
  url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
  queue: z.string().min(1),
  /** BullMQ's key prefix (its `prefix` option). */
  prefix: z.string().min(1).default('bull'),
});
export type BullmqConfig = z.infer<typeof bullmqConfig>;

/** When a job became runnable: its creation time, or later if it was delayed. */
function runnableSince(job: Job): number {
  return job.timestamp + (job.delay > 0 ? job.delay : 0);
}

export function createBullmqSource(config: BullmqConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('bullmq', config);
  const conn = keptConnection(
    (): { client: Redis; queue: Queue } => {
      const client = openRedis(config.url, config.timeout_ms);
      const queue = new Queue(config.queue, { connection: client, prefix: config.prefix });
      // BullMQ re-emits connection errors; the pending call already carries them.
      queue.on('error', () => {});
      return { client, queue };
    },
    // End the socket first: a Queue still initialising would otherwise wait on it.
    (c) =>
      closeRedis(c.client)
        .then(() => c.queue.close())
        .catch(() => {}),
  );
  let closed = false;

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      return guardedConnectionRead(
        label,
        signal,
        config.timeout_ms,
        async () => {
          const { queue } = conn.get();
          const [waiting, prioritized, active, tail, head, nextPrioritized] = await Promise.all([
            queue.getWaitingCount(),
            queue.getPrioritizedCount(),
            queue.getActiveCount(),
            queue.getJobs(['wait'], 0, 0, true),
            queue.getJobs(['wait'], 0, 0, false),
            queue.getJobs(['prioritized'], 0, 0, true),
          ]);
          const at = ctx.now();
          const candidates = [...tail, ...head, ...nextPrioritized].filter((j): j is Job => Boolean(j)).map(runnableSince);
          const oldest = candidates.length > 0 ? Math.min(...candidates) : undefined;
          return [
            { metric: METRIC.queueDepth, value: waiting + prioritized, at },
            { metric: METRIC.inFlight, value: active, at },
            // No job waits: the oldest waiting job has waited 0 s (as the builtin queue says).
            { metric: METRIC.oldestAge, value: oldest === undefined ? 0 : Math.max(0, (at - oldest) / 1000), at },
          ];
        },
        () => conn.drop(),
      );
    },
    async close() {
      closed = true;
      await conn.close();
    },
  };
}

export const bullmqSource: SourceDefinition<BullmqConfig> = {
  kind: 'bullmq',
  summary: "A BullMQ queue's waiting and active counts and the age of its oldest waiting job (Redis).",
  schema: bullmqConfig,
  create: createBullmqSource,
};
