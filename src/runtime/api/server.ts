/**
 * The jobs API: a stateless Fastify server in front of a QueueEngine.
 *
 * Design: the server holds no job state of its own. A 202 is sent only after the engine's
 * enqueue has resolved, and the engine resolves only after its transaction committed, so an
 * accepted job survives a crash of this process. Everything that goes wrong in a request
 * (bad JSON, a wrong field, a body too large, a missing key, a rate limit, the database
 * being away) ends in one error handler that sends `{ error: { code, message, where } }` with
 * a stable code from src/errors.ts; a database outage is a 503 with Retry-After, and the pg
 * pool reconnects on its own when the database returns.
 *
 * Hooks run in this order on every request: auth (onRequest, global: verifies the key) ->
 * rate limit (onRequest, per route, keyed by who the client is: a verified key, else its
 * address, by src/net/client-identity.ts) -> body parse and schema validation -> handler ->
 * metrics (onResponse).
 *
 * Against hostile clients: a request head must arrive within `headersTimeoutMs` (408, the
 * slow-loris defence) and fit in 16 KiB (431), a body is cut at `bodyLimit` (413), and the
 * server holds at most `maxConnections` connections, never more than its file descriptors
 * allow (src/net/file-limit.ts): the excess is closed at once instead of failing with EMFILE.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { hostname } from 'node:os';

import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyRequest, type FastifyServerOptions } from 'fastify';

import { type ErrorCode, TideError } from '../../errors.js';
import { type ClientIdentity, type TrustOptions, identifyClient, proxyTrust } from '../../net/client-identity.js';
import { connectionCap, openFileLimit } from '../../net/file-limit.js';
import type { EnqueueInput, Job, QueueEngine, QueueStats } from '../queue/types.js';
import { importUserModule } from '../user-module.js';
import { DB_RETRY_AFTER_S, errorBody, toTideError } from './errors.js';
import { instrumentApi } from './metrics.js';
import { type EnqueueBody, type JobRequest, MAX_TIME_MS, enqueueBodySchema, isBatch, jobIdParamsSchema } from './schemas.js';

/** The three numbers of a pg Pool the runbook asks for (a `pg.Pool` fits as it is). */
export interface PoolCounts {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

export interface ApiOptions {
  engine: QueueEngine;
  /** When set and non-empty, every route but /health and /metrics needs `X-API-Key` to be one of them. */
  apiKeys?: string[];
  /**
   * Requests per client per window (a client is its verified API key, else its address).
   * Default 1000 per minute. Each replica counts on its own.
   */
  rateLimit?: { max: number; windowMs: number } | false;
  /** Proxies whose forwarded header names the client (see src/net/client-identity.ts). Default: none. */
  trust?: TrustOptions;
  /** A request head must arrive within this long, or 408 and the connection closes. Default 10000 ms. */
  headersTimeoutMs?: number;
  /** Connections held at most (fewer when the file descriptor limit is lower). Default: what the descriptors allow. */
  maxConnections?: number;
  /** Largest request body in bytes. Default 1 MiB. */
  bodyLimit?: number;
  /** Reported by /health. */
  version: string;
  /** When set, a job naming another handler is refused with TIDE_API_UNKNOWN_HANDLER. */
  knownHandlers?: string[];
  /** Queues a job may name; 'any' (the default) accepts every well-formed name. */
  knownQueues?: string[] | 'any';
  /** Resolves when the database answers, rejects when not; /health calls it. */
  dbCheck: () => Promise<void>;
  /** The pg pool behind the engine, for GET /db/pool/stats (the route exists only with it). */
  pool?: PoolCounts;
  /** User Fastify plugins, by module path (default export, or a named export `routes`). */
  plugins?: string[];
  /** Collect prom-client's process metrics (default true). */
  defaultMetrics?: boolean;
  /** Fastify's logger option (default off). */
  logger?: FastifyServerOptions['logger'];
  /** The clock for uptime; injectable for tests. */
  now?: () => number;
  /** How long /health waits for the database before saying it is down. Default 2000 ms. */
  healthTimeoutMs?: number;
}

const DEFAULT_QUEUE = 'default';
const OPEN_PATHS = new Set(['/health', '/metrics']);

/**
 * The PostgreSQL engine's ids are `bigint` identities; checking the shape here makes a garbage
 * id a 400 instead of a cast error inside SQL.
 */
export function isJobId(id: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(id) && BigInt(id) <= 9223372036854775807n;
}

/** Node's HTTP parser errors, answered with the API's own coded body. */
const CLIENT_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'TIDE_API_REQUEST_TIMEOUT', message: 'The request head did not arrive within the header timeout.' },
  HPE_HEADER_OVERFLOW: { code: 'TIDE_API_HEADERS_TOO_LARGE', message: 'The request head is larger than 16 KiB.' },
};

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Compares digests in constant time, so response timing does not leak a key's prefix. */
function keyMatcher(keys: string[]): (candidate: string) => boolean {
  const digests = keys.map(digest);
  return (candidate) => {
    const d = digest(candidate);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(k, d) || ok;
    return ok;
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** A job on the wire: snake_case, times as ISO 8601. */
export function jobView(job: Job) {
  return {
    id: job.id,
    queue: job.queue,
    handler: job.handler,
    state: job.state,
    payload: job.payload,
    priority: job.priority,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    idempotency_key: job.idempotencyKey,
    result: job.result,
    last_error: job.lastError,
    created_at: iso(job.createdAt),
    run_at: iso(job.runAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    locked_by: job.lockedBy,
    lease_until: iso(job.leaseUntil),
  };
}

function statsView(s: QueueStats) {
  return {
    queue: s.queue,
    ready: s.ready,
    delayed: s.delayed,
    active: s.active,
    completed: s.completed,
    failed: s.failed,
    dead: s.dead,
    oldest_ready_age_s: s.oldestReadyAgeSeconds,
    arrivals_total: s.arrivalsTotal,
    completions_total: s.completionsTotal,
    failures_total: s.failuresTotal,
    service_time_s: { sum: s.serviceTime.sum, count: s.serviceTime.count },
  };
}

/** NUL, and a UTF-16 surrogate without its pair: valid JSON, but PostgreSQL cannot store them. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Refuses strings PostgreSQL would reject (jsonb and text), with the field, instead of a
 * database error. Walks with an explicit stack: a deeply nested payload must not overflow ours.
 */
function checkStorable(value: unknown, field: string): void {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) {
        throw new TideError('TIDE_API_VALIDATION', `${field} holds a NUL character or an unpaired UTF-16 surrogate, which cannot be stored.`, {
          where: { field },
        });
      }
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push(item);
    } else if (typeof v === 'object' && v !== null) {
      for (const [key, item] of Object.entries(v)) stack.push(key, item);
    }
  }
}

/** Checks what the schema cannot (the configured handler and queue lists) and maps to the engine's input. */
function toEnqueueInput(job: JobRequest, field: string, options: ApiOptions): EnqueueInput {
  const queue = job.queue ?? DEFAULT_QUEUE;
  if (options.knownHandlers && !options.knownHandlers.includes(job.handler)) {
    throw new TideError('TIDE_API_UNKNOWN_HANDLER', `No handler is named "${job.handler}"; known: ${options.knownHandlers.join(', ')}.`, {
      where: { field: `${field}handler` },
    });
  }
  const queues = options.knownQueues ?? 'any';
  if (queues !== 'any' && !queues.includes(queue)) {
    throw new TideError('TIDE_API_UNKNOWN_QUEUE', `No queue is named "${queue}"; known: ${queues.join(', ')}.`, {
      where: { field: `${field}queue` },
    });
  }
  const runAt = job.run_at === undefined ? undefined : typeof job.run_at === 'number' ? job.run_at : Date.parse(job.run_at);
  if (runAt !== undefined && !(runAt >= 0 && runAt <= MAX_TIME_MS)) {
    throw new TideError('TIDE_API_VALIDATION', `run_at must be between 1970 and the year 275760, not ${String(job.run_at)}.`, { where: { field: `${field}run_at` } });
  }
  checkStorable(job.payload, `${field}payload`);
  checkStorable(job.idempotency_key, `${field}idempotency_key`);
  const input: EnqueueInput = { queue, handler: job.handler };
  if (job.payload !== undefined) input.payload = job.payload;
  if (job.priority !== undefined) input.priority = job.priority;
  if (job.delay_ms !== undefined) input.delayMs = job.delay_ms;
  if (runAt !== undefined) input.runAt = runAt;
  if (job.max_attempts !== undefined) input.maxAttempts = job.max_attempts;
  if (job.idempotency_key !== undefined) input.idempotencyKey = job.idempotency_key;
  return input;
}

function parseJobId(id: string): string {
  if (!isJobId(id)) {
    throw new TideError('TIDE_API_BAD_JOB_ID', `"${id.slice(0, 64)}" is not a job id (a positive integer).`, { where: { field: 'id' } });
  }
  return id;
}

function notFound(id: string): TideError {
  return new TideError('TIDE_API_JOB_NOT_FOUND', `No job has the id ${id}.`, { where: { field: 'id' } });
}

/** Loads a user plugin module and finds the plugin in it. */
async function loadPlugin(modulePath: string): Promise<FastifyPluginAsync> {
  let mod: Record<string, unknown>;
  try {
    mod = await importUserModule(modulePath);
  } catch (cause) {
    throw new TideError('TIDE_API_ROUTES_PLUGIN', `The routes module ${modulePath} failed to load: ${cause instanceof Error ? cause.message : String(cause)}`, {
      where: { file: modulePath },
      cause,
    });
  }
  const plugin = mod.default ?? mod.routes;
  if (typeof plugin !== 'function') {
    throw new TideError('TIDE_API_ROUTES_PLUGIN', `The routes module ${modulePath} exports no Fastify plugin (a default export or \`routes\` function).`, {
      where: { file: modulePath },
    });
  }
  return plugin as FastifyPluginAsync;
}

async function withTimeout(check: () => Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Builds the API (not listening yet: call `listen`, or `inject` in tests). Plugins load
 * during `ready()`; a broken one rejects it with TIDE_API_ROUTES_PLUGIN.
 */
export function buildApi(options: ApiOptions): FastifyInstance {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const trust = proxyTrust(options.trust);
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // the header timeout is checked on this interval, so it is a fraction of the timeout
    http: { headersTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))) },
    // a parse error, a head too large or too slow: a coded answer, then the connection closes
    clientErrorHandler: (err, socket) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'ECONNRESET' || socket.destroyed) return;
      const known = CLIENT_ERRORS[code] ?? { code: 'TIDE_API_BAD_REQUEST' as const, message: 'The request is not well-formed HTTP/1.1.' };
      const typed = new TideError(known.code, known.message);
      const body = JSON.stringify(errorBody(typed));
      if (socket.writable) socket.write(`HTTP/1.1 ${typed.status} ${STATUS_CODES[typed.status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
    // we answer requests that arrive during close ourselves, with a coded body (below)
    return503OnClosing: false,
    // reject unknown fields instead of stripping them, and never coerce "5" into 5
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });

  app.setErrorHandler((err, request, reply) => {
    const typed = toTideError(err);
    if (typed.code === 'TIDE_INTERNAL') request.log.error({ err }, 'unexpected error in the API');
    if (typed.code === 'TIDE_DB_UNAVAILABLE' || typed.code === 'TIDE_DB_POOLER' || typed.code === 'TIDE_API_SHUTTING_DOWN') void reply.header('retry-after', String(DB_RETRY_AFTER_S));
    void reply.status(typed.status).send(errorBody(typed));
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new TideError('TIDE_API_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}.`);
    void reply.status(err.status).send(errorBody(err));
  });

  const metrics = instrumentApi(app, options.engine, { defaultMetrics: options.defaultMetrics ?? true });

  // Once close() starts, a response still in flight goes out with `Connection: close`: the
  // server closes idle keep-alive sockets only when close begins, so without this a socket
  // that turns idle afterwards would hold the shutdown for the whole keep-alive timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });
  // a request that arrives on a kept-alive connection during close: shed it, coded
  app.addHook('onRequest', async () => {
    if (closing) throw new TideError('TIDE_API_SHUTTING_DOWN', 'This replica is shutting down; retry the request.');
  });

  const cap = connectionCap(options.maxConnections, openFileLimit());
  if (cap !== undefined) app.server.maxConnections = cap;

  // Who each request's client is, decided once: its verified key (set by the auth hook), else
  // its address (the socket's, or the forwarded one from a trusted proxy).
  const verifiedKeys = new WeakMap<object, string>();
  const clients = new WeakMap<object, ClientIdentity>();
  const clientOf = (request: FastifyRequest): ClientIdentity => {
    let client = clients.get(request);
    if (client === undefined) {
      client = identifyClient({ peer: request.raw.socket.remoteAddress ?? '', headers: request.headers, verifiedKey: verifiedKeys.get(request) }, trust);
      clients.set(request, client);
    }
    return client;
  };

  const keys = (options.apiKeys ?? []).filter((k) => k.length > 0);
  const isKey = keys.length > 0 ? keyMatcher(keys) : undefined;
  if (isKey) {
    app.addHook('onRequest', async (request) => {
      if (OPEN_PATHS.has(request.routeOptions.url ?? '')) return;
      const given = request.headers['x-api-key'];
      if (typeof given !== 'string' || !isKey(given)) {
        throw new TideError('TIDE_API_UNAUTHORIZED', given === undefined ? 'Send an API key in the X-API-Key header.' : 'The X-API-Key is not a valid key.', {
          where: { field: 'x-api-key' },
        });
      }
      verifiedKeys.set(request, given);
    });
  }

  if (options.rateLimit !== false) {
    const limit = options.rateLimit ?? { max: 1000, windowMs: 60_000 };
    void app.register(rateLimit, {
      max: limit.max,
      timeWindow: limit.windowMs,
      // a verified key, else the address: an unverified key names nobody, so random keys share
      // their sender's bucket, and clients behind a trusted proxy each have their own
      keyGenerator: (request) => clientOf(request).id,
      // load balancer probes and scrapers must never be throttled
      allowList: (request) => OPEN_PATHS.has(request.routeOptions.url ?? ''),
      errorResponseBuilder: (_request, context) =>
        new TideError('TIDE_API_RATE_LIMITED', `More than ${context.max} requests in the window; retry in ${context.after}.`, {
          details: { retry_after_s: Math.ceil(context.ttl / 1000) },
        }),
    });
  }

  // routes go in a plugin so that they are added after the rate limiter's onRoute hook exists
  void app.register(async (api) => {
    api.post<{ Body: EnqueueBody }>('/v1/jobs', { schema: { body: enqueueBodySchema } }, async (request, reply) => {
      const body = request.body;
      if (isBatch(body)) {
        const inputs = body.jobs.map((job, i) => toEnqueueInput(job, `jobs[${i}].`, options));
        const results = await options.engine.enqueueMany(inputs);
        return reply.status(202).send({ ids: results.map((r) => r.id), created: results.map((r) => r.created) });
      }
      const result = await options.engine.enqueue(toEnqueueInput(body, '', options));
      return reply.status(202).send({ id: result.id, created: result.created });
    });

    api.get<{ Params: { id: string } }>('/v1/jobs/:id', { schema: { params: jobIdParamsSchema } }, async (request) => {
      const id = parseJobId(request.params.id);
      const job = await options.engine.getJob(id);
      if (!job) throw notFound(id);
      return jobView(job);
    });

    api.post<{ Params: { id: string } }>('/v1/jobs/:id/retry', { schema: { params: jobIdParamsSchema } }, async (request) => {
      const id = parseJobId(request.params.id);
      const job = await options.engine.retry(id);
      if (job) return jobView(job);
      const existing = await options.engine.getJob(id);
      if (!existing) throw notFound(id);
      throw new TideError('TIDE_API_NOT_RETRYABLE', `Job ${id} is ${existing.state}; only dead or failed jobs can be retried.`, {
        where: { field: 'id' },
      });
    });

    api.get('/v1/queues', async () => {
      const stats = await options.engine.stats();
      return { queues: stats.map(statsView) };
    });

    api.get('/health', async (_request, reply) => {
      let database: 'up' | 'down' = 'up';
      try {
        await withTimeout(options.dbCheck, options.healthTimeoutMs ?? 2000);
      } catch {
        database = 'down';
      }
      const body = {
        status: database === 'up' ? 'ok' : 'unavailable',
        hostname: hostname(),
        pid: process.pid,
        version: options.version,
        uptime_s: Math.max(0, Math.round((now() - startedAt) / 1000)),
        database,
      };
      if (database === 'down') void reply.header('retry-after', String(DB_RETRY_AFTER_S));
      return reply.status(database === 'up' ? 200 : 503).send(body);
    });

    api.get('/metrics', async (_request, reply) => {
      const text = await metrics.render();
      return reply.header('content-type', metrics.contentType).send(text);
    });

    const pool = options.pool;
    if (pool) {
      api.get('/db/pool/stats', async () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }));
    }

    for (const modulePath of options.plugins ?? []) {
      await api.register(await loadPlugin(modulePath));
    }
  });

  return app;
}
