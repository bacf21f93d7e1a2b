/**
 * The API's Prometheus metrics. Each server gets its own registry, so several servers in one
 * process (tests, an in-process supervisor) never collide on metric names.
 */
import type { FastifyInstance } from 'fastify';
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency buckets (seconds): from a cached health check to a slow batch insert. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The label for requests no route matched, so a scanner cannot blow up label cardinality. */
export const UNMATCHED_ROUTE = '(unmatched)';

export interface ApiMetrics {
  registry: Registry;
}

/**
 * Creates the registry with the process's default metrics and the request-duration histogram,
 * and records every response in it, labelled by the route pattern (`/v1/jobs/:id`), never by
 * the raw URL.
 */
export function instrumentApi(app: FastifyInstance, options: { defaultMetrics?: boolean } = {}): ApiMetrics {
  const registry = new Registry();
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
  return { registry };
}
