/**
 * A worker's tiny HTTP side door: `/health` (503 while the database is unreachable) and
 * `/metrics` (prom-client's default process metrics plus jobs processed and their run time),
 * so the supervisor and Prometheus can watch workers. Off unless a port is given.
 */
import { type Server, createServer } from 'node:http';
import { hostname } from 'node:os';

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { version } from '../../version.js';

export interface MetricsServer {
  port: number;
  registry: Registry;
  jobDone(queue: string, outcome: 'completed' | 'failed', durationMs: number): void;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  port: number;
  host?: string;
  health: () => { ok: boolean } & Record<string, unknown>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const processed = new Counter({
    name: 'tide_worker_jobs_processed_total',
    help: 'Jobs this worker process finished, by queue and outcome.',
    labelNames: ['queue', 'outcome'] as const,
    registers: [registry],
  });
  const runTime = new Histogram({
    name: 'tide_worker_job_run_seconds',
    help: 'Handler run time in this worker process.',
    labelNames: ['queue'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const started = Date.now();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      const h = options.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ status: h.ok ? 'ok' : 'database unavailable', hostname: hostname(), pid: process.pid, version, uptime: (Date.now() - started) / 1000, ...h }),
      );
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(err.message);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /health or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    registry,
    jobDone(queue, outcome, durationMs) {
      processed.inc({ queue, outcome });
      runTime.observe({ queue }, durationMs / 1000);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
