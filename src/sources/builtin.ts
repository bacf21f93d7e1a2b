/**
 * `builtin`: Tidescale's own queue (the PostgreSQL engine in runtime/queue) as the decision
 * core's well-known metrics: queue_depth (ready jobs), queue_oldest_age_seconds,
 * arrivals_total and completions_total (counters), in_flight (active jobs),
 * service_time_mean_seconds and service_time_scv: the mean and the squared coefficient of
 * variation of the jobs completed in the last minute (SERVICE_WINDOW_SECONDS, the simulator's
 * window too), from the difference of the service-time histogram's lifetime sum, sum of squares
 * and count between this read and the one a minute before; when no job completed within the
 * minute, the last figures stand, as a gauge would.
 *
 * Design: the engine (`createPostgresQueue`, without migrations: a source never changes the
 * schema) runs on a pool this source owns (max 1 connection), made on the first read. The
 * pool's sockets are made here (pg's `stream` option), because pg.Pool cannot cancel a
 * connect in progress and pool.end() waits for it: an aborted read, or close() after one,
 * destroys them, so close() never waits out a connect timeout. An aborted or failed read
 * drops engine and pool; the next read makes new ones.
 */
import net from 'node:net';

import pg from 'pg';
import { z } from 'zod';

import { SERVICE_WINDOW_SECONDS } from '../core/metrics.js';
import { type Sample, queueSamples } from '../core/types.js';
import { createPostgresQueue } from '../runtime/queue/postgres.js';
import type { QueueEngine, QueueStats } from '../runtime/queue/types.js';
import { closedError, commonFields, guardedConnectionRead, keptConnection, labelOf, sourceError } from './guard.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

export const builtinConfig = z.strictObject({
  ...commonFields,
  /** The PostgreSQL the queue lives in. */
  connection_string: z.string().min(1),
  /** The schema of the queue tables. */
  schema: z.string().min(1).default('tide'),
  queue: z.string().min(1),
});
export type BuiltinConfig = z.infer<typeof builtinConfig>;

/** SQLSTATE of the error or of one of its causes. */
function sqlStateIn(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

interface Engine {
  queue: Promise<QueueEngine>;
  pool: pg.Pool;
  sockets: Set<net.Socket>;
}

/** One read of the queue's lifetime service-time counters. */
type ServiceCounters = Pick<QueueStats['serviceTime'], 'sum' | 'count' | 'sumSquares'>;

/**
 * The mean service time over the last `windowMs` and its squared coefficient of variation, from
 * successive readings of the lifetime counters (`read(at, counters)`): the newest reading at or
 * before the window's start is the base. The scv is the window's own (its jobs' spread around
 * their mean, as the simulator measures it); the decision core pools it across windows. Undefined
 * until a job has completed; a count that went down (the tables made again) starts over.
 */
export function serviceWindow(windowMs: number = SERVICE_WINDOW_SECONDS * 1000): (at: number, counters: ServiceCounters) => { mean: number; scv?: number } | undefined {
  let readings: Array<{ at: number } & ServiceCounters> = [];
  let last: { mean: number; scv?: number } | undefined;
  return (at, { sum, count, sumSquares }) => {
    if (readings.length > 0 && count < readings.at(-1)!.count) {
      readings = [];
      last = undefined;
    }
    readings.push({ at, sum, count, sumSquares });
    let base = 0;
    for (let i = 1; i < readings.length; i++) if (readings[i]!.at <= at - windowMs) base = i;
    readings = readings.slice(base);
    const from = readings[0]!;
    if (count > from.count) {
      const n = count - from.count;
      const mean = (sum - from.sum) / n;
      const squares = (sumSquares - from.sumSquares) / n;
      last = { mean, ...(mean > 0 ? { scv: Math.max(0, squares / (mean * mean) - 1) } : {}) };
    }
    // the first reading, of a queue with a history: its lifetime mean until the window fills (the
    // squares may not cover that history: they are counted since migration 0006)
    else if (last === undefined && count > 0) last = { mean: sum / count };
    return last;
  };
}

export function createBuiltinSource(config: BuiltinConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('builtin', config);
  let closed = false;
  let notes: string[] = [];
  const readService = serviceWindow();

  function openEngine(): Engine {
    const sockets = new Set<net.Socket>();
    const pool = new pg.Pool({
      connectionString: config.connection_string,
      max: 1,
      connectionTimeoutMillis: config.timeout_ms,
      application_name: `tide source ${label.name}`,
      // Our own sockets, so an abort can destroy one still connecting (see the design note).
      stream: () => {
        const socket = new net.Socket();
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        return socket;
      },
    });
    pool.on('error', () => {});
    // No pooler detection on creation: its connect would sit outside the read an abort ends
    // (the source's reads are unnamed statements, which any pooler takes).
    const queue = createPostgresQueue({ connectionString: config.connection_string, schema: config.schema, pool, migrate: false, detectPoolerOnCreate: false });
    queue.catch(() => {});
    return { queue, pool, sockets };
  }

  /**
   * Releases a dropped engine: politely (pool.end() sends Terminate) when nothing is
   * pending, or by destroying its sockets first after an abort or a failure.
   */
  function releaseEngine(e: Engine, polite: boolean): Promise<void> {
    // Destroying the sockets fails whatever is pending on them, so pool.end() can finish.
    if (!polite) for (const socket of e.sockets) socket.destroy();
    return e.queue
      .then((q) => q.close())
      .catch(() => {})
      .then(() => e.pool.end())
      .catch(() => {})
      .then(() => {
        for (const socket of e.sockets) socket.destroy();
      });
  }

  const engine = keptConnection(openEngine, releaseEngine);

  function toSamples(stats: QueueStats[], at: number): Sample[] {
    const s = stats.find((x) => x.queue === config.queue);
    if (!s) {
      // The engine lists a queue once it has had a job; before that everything is zero.
      notes.push(`queue "${config.queue}" has had no job yet`);
      return queueSamples({ depth: 0, oldestAgeSeconds: 0, arrivalsTotal: 0, completionsTotal: 0, inFlight: 0 }, at);
    }
    const service = readService(at, s.serviceTime);
    if (service === undefined) notes.push('no job has completed yet, so service_time_mean_seconds is missing');
    return queueSamples(
      {
        depth: s.ready,
        oldestAgeSeconds: s.oldestReadyAgeSeconds,
        arrivalsTotal: s.arrivalsTotal,
        completionsTotal: s.completionsTotal,
        inFlight: s.active,
        serviceTimeMeanSeconds: service?.mean,
        serviceTimeScv: service?.scv,
      },
      at,
    );
  }

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      notes = [];
      return guardedConnectionRead(
        label,
        signal,
        config.timeout_ms,
        async () => {
          const queue = await engine.get().queue;
          let stats;
          try {
            stats = await queue.stats(config.queue);
          } catch (err) {
            const state = sqlStateIn(err);
            if (state === '42P01' || state === '3F000') {
              throw sourceError(label, 'TIDE_SOURCE_NOT_FOUND', `there are no queue tables in schema "${config.schema}" (has \`tide up\` run against this database?)`, err);
            }
            if (state === '42703') {
              // a column this version reads is missing: the tables predate one of its migrations
              throw sourceError(label, 'TIDE_SOURCE_NOT_FOUND', `the queue tables in schema "${config.schema}" are from an older version of Tidescale (start this version's \`tide api\`, \`tide worker\` or \`tide up\` once: they migrate the schema; a source never does)`, err);
            }
            throw err;
          }
          return toSamples(stats, ctx.now());
        },
        () => engine.drop(),
      );
    },
    async close() {
      closed = true;
      await engine.close(true);
    },
    notes: () => notes,
  };
}

export const builtinSource: SourceDefinition<BuiltinConfig> = {
  kind: 'builtin',
  summary: "Tidescale's own PostgreSQL queue: depth, oldest ready age, arrivals, completions, in flight, mean service time (last minute).",
  schema: builtinConfig,
  create: createBuiltinSource,
};
