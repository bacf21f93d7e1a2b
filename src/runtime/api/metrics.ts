/**
 * The API's Prometheus metrics. Each server gets its own registries, so several servers in
 * one process (tests, an in-process supervisor) never collide on metric names.
 *
 * The queue metrics live in a second registry because they read the database on each
 * scrape: while it is down, /metrics still serves the request latencies and process metrics
 * (the moment an operator most wants them) and leaves the queue series out.
 */
import type { FastifyInstance } from 'fastify';
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { registerQueueMetrics } from '../queue/metrics.js';
import type { QueueEngine } from '../queue/types.js';

/** Latency buckets (seconds): from a cached health check to a slow batch insert. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The label for requests no route matched, so a scanner cannot blow up label cardinality. */
export const UNMATCHED_ROUTE = '(unmatched)';

export interface ApiMetrics {
  /** Process and HTTP metrics. */
  registry: Registry;
  /** The queue's metrics (read from the engine on scrape). */
  queueRegistry: Registry;
  contentType: string;
  /** The exposition text of both registries; the queue part is left out when it cannot be read. */
  render(): Promise<string>;
}

/**
 * Creates the registry with the process's default metrics and the request-duration histogram,
 * and records every response in it, labelled by the route pattern (`/v1/jobs/:id`), never by
 * the raw URL.
 */
export function instrumentApi(app: FastifyInstance, engine: QueueEngine, options: { defaultMetrics?: boolean } = {}): ApiMetrics {
  const registry = new Registry();
  const queueRegistry = new Registry();
  registerQueueMetrics(queueRegistry, engine);
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: BUCKETS,
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      { method: request.method, route: request.routeOptions.url ?? UNMATCHED_ROUTE, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  return {
    registry,
    queueRegistry,
    contentType: registry.contentType,
    async render() {
      const [own, queue] = await Promise.all([
        registry.metrics(),
        queueRegistry.metrics().catch((err: unknown) => `# queue metrics unavailable: ${err instanceof Error ? err.message.replace(/\n/g, ' ') : String(err)}\n`),
      ]);
      return `${own.endsWith('\n') ? own : `${own}\n`}${queue}`;
    },
  };
}
