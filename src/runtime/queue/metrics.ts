/**
 * Queue metrics for Prometheus, read from the engine on scrape (collect-on-scrape: no timers).
 * Every metric of one scrape shares a single stats() call, and scrapes within `maxAgeMs` of a
 * read share it too, so however many scrapers ask (a pair of Prometheus servers, dashboards,
 * a curl loop) a process reads the queue's figures at most once per `maxAgeMs`.
 */
import type { Registry } from 'prom-client';

import type { QueueEngine, QueueStats } from './types.js';

type MetricType = 'gauge' | 'counter' | 'histogram';

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** The shape prom-client's Registry reads from a registered metric. */
interface ScrapedMetric {
  name: string;
  help: string;
  type: MetricType;
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: MetricType; aggregator: 'sum'; values: Value[] }>;
  reset(): void;
}

/**
 * Registers on `registry`: tide_queue_ready, tide_queue_delayed, tide_queue_active,
 * tide_queue_dead, tide_queue_oldest_ready_age_seconds (gauges), tide_queue_arrivals_total,
 * tide_queue_completions_total, tide_queue_failures_total (counters) and
 * tide_job_service_time_seconds (histogram), all labelled by queue.
 */
export function registerQueueMetrics(registry: Registry, engine: QueueEngine, options: { maxAgeMs?: number; now?: () => number } = {}): void {
  const maxAgeMs = options.maxAgeMs ?? 1000;
  const now = options.now ?? Date.now;
  // The registry asks every metric at once, so the first caller starts the read and the others
  // share it; a read that succeeded serves the scrapes that come within maxAgeMs of its start
  // (a failed one serves no later scrape).
  let current: { reading: Promise<QueueStats[]>; at: number } | undefined;
  const read = (): Promise<QueueStats[]> => {
    if (!current || now() - current.at >= maxAgeMs) {
      const reading = engine.stats();
      const entry = { reading, at: now() };
      reading.catch(() => {
        if (current === entry) current = undefined;
      });
      current = entry;
    }
    return current.reading;
  };

  const define = (name: string, help: string, type: MetricType, values: (s: QueueStats) => Value[]): void => {
    const metric: ScrapedMetric = {
      name,
      help,
      type,
      aggregator: 'sum',
      async get() {
        const stats = await read();
        return { name, help, type, aggregator: 'sum', values: stats.flatMap(values) };
      },
      reset() {},
    };
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  };
  const simple = (name: string, help: string, type: MetricType, pick: (s: QueueStats) => number) =>
    define(name, help, type, (s) => [{ value: pick(s), labels: { queue: s.queue } }]);

  simple('tide_queue_ready', 'Jobs ready to run now.', 'gauge', (s) => s.ready);
  simple('tide_queue_delayed', 'Jobs waiting for their run time (delayed, or waiting out a retry backoff).', 'gauge', (s) => s.delayed + s.failed);
  simple('tide_queue_active', 'Jobs being run by a worker (leased).', 'gauge', (s) => s.active);
  simple('tide_queue_dead', 'Jobs out of attempts, kept until purged or retried.', 'gauge', (s) => s.dead);
  simple('tide_queue_oldest_ready_age_seconds', 'Seconds since the oldest ready job became runnable (queue latency).', 'gauge', (s) => s.oldestReadyAgeSeconds);
  simple('tide_queue_arrivals_total', 'Jobs enqueued.', 'counter', (s) => s.arrivalsTotal);
  simple('tide_queue_completions_total', 'Jobs completed.', 'counter', (s) => s.completionsTotal);
  simple('tide_queue_failures_total', 'Failed attempts (handler errors and expired leases).', 'counter', (s) => s.failuresTotal);
  define('tide_job_service_time_seconds', 'Handler run time of completed jobs.', 'histogram', (s) => [
    ...s.serviceTime.buckets.map((b) => ({
      metricName: 'tide_job_service_time_seconds_bucket',
      labels: { queue: s.queue, le: b.le === Number.POSITIVE_INFINITY ? '+Inf' : b.le },
      value: b.count,
    })),
    { metricName: 'tide_job_service_time_seconds_sum', labels: { queue: s.queue }, value: s.serviceTime.sum },
    { metricName: 'tide_job_service_time_seconds_count', labels: { queue: s.queue }, value: s.serviceTime.count },
  ]);
}
