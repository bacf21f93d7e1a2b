/**
 * `tide export prometheus-rules`: the runbooks' alerts (no healthy replica, workers at max with
 * a backlog, high CPU, high memory, queue depth, oldest job age, API p99 latency, error rate)
 * as a Prometheus rule file over the metric names the runtime exports (tide_queue_*,
 * http_request_duration_seconds, prom-client's process_* metrics, and `up`).
 *
 * Thresholds come from the config where it has them (a CPU or memory target, the SLO's
 * wait for the oldest job's age) and otherwise from the runbooks' own tables: CPU 70%/85%,
 * memory 80%/90%, queue depth 1,000/5,000, p99 500 ms/2 s, errors 5%, processing lag 5 min.
 * Replicas are selected by the job `<project>-<service>`, which every scrape set-up of
 * scrape.ts gives them (docs/platforms/alerts.md). Where a
 * service's `sources:` say how a metric is measured (a PromQL query, a Redis list, a RabbitMQ
 * queue), the alert reads the same thing.
 */
import type { ServiceConfig, TideConfig } from '../config/schema.js';
import { METRIC } from '../core/types.js';
import { type ExportOptions, type ExportResult, type ReplicaResources, replicaResources } from './types.js';
import { scrapedServices } from './scrape.js';
import { labelMatch, promJob, promQuery, queuesOf } from './workload.js';

type Rule = { alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> };

/** The runbooks' numbers, used where the config says nothing. */
export const DEFAULT_THRESHOLDS = {
  cpu: { warning: 0.7, critical: 0.85 },
  memory: { warning: 0.8, critical: 0.9 },
  queueDepth: { warning: 1000, critical: 5000 },
  p99Seconds: { warning: 0.5, critical: 2 },
  errorRate: 0.05,
  oldestAgeSeconds: 300,
} as const;

function targetOn(service: ServiceConfig, metric: string): number | undefined {
  for (const p of service.scale?.policies ?? []) {
    if (p.kind === 'target' && p.metric === metric && p.type === 'utilization') return p.target;
  }
  return undefined;
}

/** The oldest-job threshold: the SLO's promised wait when the service has one. */
export function oldestAgeThreshold(service: ServiceConfig): number {
  for (const p of service.scale?.policies ?? []) if (p.kind === 'slo') return p.waitSeconds;
  return DEFAULT_THRESHOLDS.oldestAgeSeconds;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

/** The PromQL of a `prometheus` source that provides `metric`, in parentheses. */
function sourceQuery(service: ServiceConfig, metric: string): string | undefined {
  for (const source of Object.values(service.sources ?? {})) {
    if (source.kind === 'prometheus' && source.metric === metric && typeof source.query === 'string') return `(${source.query})`;
  }
  return undefined;
}

/**
 * PromQL for the waiting jobs a service works off, from what its sources read: the builtin
 * queue's own metrics, a Redis list as redis_exporter reports it (`redis_key_size`, with
 * `--check-keys`), a RabbitMQ queue as its Prometheus plugin does, or a `prometheus` source's
 * query. A worker without sources reads the builtin queue, as the autoscaler does.
 */
function queueDepthQuery(config: TideConfig, service: ServiceConfig, resources: ReplicaResources): string | undefined {
  const fromQuery = sourceQuery(service, METRIC.queueDepth);
  if (fromQuery) return fromQuery;
  const sources = Object.values(service.sources ?? {});
  if (sources.length === 0) return service.kind === 'worker' ? promQuery(config, service, METRIC.queueDepth, resources) : undefined;
  const builtin = sources.filter((s) => s.kind === 'builtin' && typeof s.queue === 'string').map((s) => s.queue as string);
  if (builtin.length) return `sum(max by (queue) (tide_queue_ready{${labelMatch('queue', builtin)}}))`;
  for (const source of sources) {
    if (source.kind === 'redis' && (source.metric ?? METRIC.queueDepth) === METRIC.queueDepth) {
      const keys = (Array.isArray(source.key) ? source.key : [source.key]).filter((k): k is string => typeof k === 'string');
      if (keys.length) return `sum(redis_key_size{${labelMatch('key', keys)}})`;
    }
    if (source.kind === 'rabbitmq' && typeof source.queue === 'string') return `sum(rabbitmq_queue_messages_ready{${labelMatch('queue', [source.queue])}})`;
  }
  return undefined;
}

/** PromQL for the oldest waiting job's age: a `prometheus` source's, or the builtin queue's. */
function oldestAgeQuery(config: TideConfig, service: ServiceConfig, resources: ReplicaResources): string | undefined {
  const fromQuery = sourceQuery(service, METRIC.oldestAge);
  if (fromQuery) return fromQuery;
  const sources = Object.values(service.sources ?? {});
  if (sources.length === 0) return service.kind === 'worker' ? promQuery(config, service, METRIC.oldestAge, resources) : undefined;
  const builtin = sources.filter((s) => s.kind === 'builtin' && typeof s.queue === 'string').map((s) => s.queue as string);
  return builtin.length ? `max(tide_queue_oldest_ready_age_seconds{${labelMatch('queue', builtin)}})` : undefined;
}

/** What can be watched of a service, as PromQL (CPU and memory as fractions, 0..1). */
export interface ServiceSignals {
  cpu?: string;
  memory?: string;
  queueDepth?: string;
  oldestAge?: string;
  /** A p95 latency query from a `prometheus` source, seconds. */
  p95?: string;
  /** The label matcher of its http_request_duration_seconds series, when it serves HTTP. */
  http?: string;
}

/**
 * The signals of one service: a `prometheus` source for that metric when the service has one
 * (the user said how it is measured there), else Tidescale's own metrics for `api` and
 * `worker` replicas. A `command` service with a `port` is taken to serve HTTP with a
 * `http_request_duration_seconds` histogram (the name Tidescale's API,
 * prometheus-fastapi-instrumentator and express-prom-bundle use).
 */
export function serviceSignals(config: TideConfig, service: ServiceConfig, options: ExportOptions): ServiceSignals {
  const resources = replicaResources(options);
  const { memoryBytes } = resources;
  const job = labelMatch('job', [promJob(config, service.name)]);
  const ours = service.kind !== 'command';
  const cpu = sourceQuery(service, METRIC.cpu) ?? (ours ? promQuery(config, service, METRIC.cpu, resources, '5m') : undefined);
  const memory = sourceQuery(service, METRIC.memory) ?? (ours ? `max(process_resident_memory_bytes{${job}}) / ${memoryBytes}` : undefined);
  const queueDepth = queueDepthQuery(config, service, resources);
  const oldestAge = oldestAgeQuery(config, service, resources);
  const p95 = sourceQuery(service, METRIC.latencyP95);
  const http = service.kind === 'api' || (service.kind === 'command' && service.port !== undefined) ? job : undefined;
  return { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}), ...(queueDepth ? { queueDepth } : {}), ...(oldestAge ? { oldestAge } : {}), ...(p95 ? { p95 } : {}), ...(http ? { http } : {}) };
}

/** The alert rules for one service, on its signals (serviceSignals). */
export function serviceRules(config: TideConfig, service: ServiceConfig, options: ExportOptions): Rule[] {
  const rules: Rule[] = [];
  const signal = serviceSignals(config, service, options);
  const base = { service: service.name, project: config.project };
  const add = (alert: string, expr: string, forTime: string, severity: string, summary: string) =>
    rules.push({ alert, expr, for: forTime, labels: { severity, ...base }, annotations: { summary, description: `${summary} (service ${service.name}, value {{ $value | humanize }}).` } });

  if (signal.cpu) {
    const warn = targetOn(service, METRIC.cpu) ?? DEFAULT_THRESHOLDS.cpu.warning;
    add('TideHighCPU', `${signal.cpu} > ${warn}`, '10m', 'warning', `CPU above ${pct(warn)} for 10 minutes: the autoscaler is at max or not keeping up`);
    add('TideHighCPU', `${signal.cpu} > ${DEFAULT_THRESHOLDS.cpu.critical}`, '10m', 'critical', `CPU above ${pct(DEFAULT_THRESHOLDS.cpu.critical)} for 10 minutes`);
  }
  if (signal.memory) {
    const warn = targetOn(service, METRIC.memory) ?? DEFAULT_THRESHOLDS.memory.warning;
    add('TideHighMemory', `${signal.memory} > ${warn}`, '10m', 'warning', `memory above ${pct(warn)} of the limit`);
    add('TideHighMemory', `${signal.memory} > ${DEFAULT_THRESHOLDS.memory.critical}`, '5m', 'critical', `memory above ${pct(DEFAULT_THRESHOLDS.memory.critical)} of the limit: OOM kills are near`);
  }
  if (signal.http) {
    const p99 = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{${signal.http}}[5m])))`;
    add('TideApiLatencyP99', `${p99} > ${DEFAULT_THRESHOLDS.p99Seconds.warning}`, '10m', 'warning', `API p99 latency above ${DEFAULT_THRESHOLDS.p99Seconds.warning * 1000} ms`);
    add('TideApiLatencyP99', `${p99} > ${DEFAULT_THRESHOLDS.p99Seconds.critical}`, '10m', 'critical', `API p99 latency above ${DEFAULT_THRESHOLDS.p99Seconds.critical} s`);
    const errors = `sum(rate(http_request_duration_seconds_count{${signal.http},status_code=~"5.."}[5m])) / sum(rate(http_request_duration_seconds_count{${signal.http}}[5m]))`;
    add('TideApiErrorRate', `${errors} > ${DEFAULT_THRESHOLDS.errorRate}`, '5m', 'warning', `more than ${pct(DEFAULT_THRESHOLDS.errorRate)} of API requests answer 5xx`);
  }
  if (signal.p95) add('TideApiLatencyP95', `${signal.p95} > ${DEFAULT_THRESHOLDS.p99Seconds.warning}`, '10m', 'warning', `p95 latency above ${DEFAULT_THRESHOLDS.p99Seconds.warning * 1000} ms`);
  const queues = queuesOf(service)?.join(', ') ?? 'its queue';
  const depth = signal.queueDepth;
  if (depth) {
    add('TideQueueDepthHigh', `${depth} > ${DEFAULT_THRESHOLDS.queueDepth.warning}`, '5m', 'warning', `more than ${DEFAULT_THRESHOLDS.queueDepth.warning} jobs waiting (${queues})`);
    add('TideQueueDepthHigh', `${depth} > ${DEFAULT_THRESHOLDS.queueDepth.critical}`, '5m', 'critical', `more than ${DEFAULT_THRESHOLDS.queueDepth.critical} jobs waiting (${queues})`);
  }
  const scraped = scrapedServices(config).includes(service);
  if (scraped) {
    // `or vector(0)`: a service with no target left (scaled to zero, pods gone) has no `up` series at all
    const healthy = `(count(up{${labelMatch('job', [promJob(config, service.name)])}} == 1) or vector(0))`;
    const idleAllowed = service.kind === 'worker' && service.min === 0 && depth;
    add(
      'TideNoHealthyReplica',
      idleAllowed ? `${healthy} == 0 and on() ${depth} > 0` : `${healthy} == 0`,
      '2m',
      'critical',
      idleAllowed ? `no healthy replica while jobs wait (${queues})` : 'no healthy replica answers /metrics',
    );
    if (service.kind === 'worker' && depth) {
      const backlog = service.max * (service.concurrency ?? 10);
      add(
        'TideWorkersAtMax',
        `${depth} > ${backlog} and on() ${healthy} >= ${service.max}`,
        '10m',
        'warning',
        `workers at their max (${service.max}) with more than ${backlog} jobs waiting (a full round of the workers): raise max or speed up the jobs`,
      );
    }
  }
  const age = signal.oldestAge;
  if (age) {
    const wait = oldestAgeThreshold(service);
    add('TideOldestJobAge', `${age} > ${wait}`, '5m', 'warning', `the oldest waiting job has waited more than ${wait} s (${queues})`);
  }
  return rules;
}

/** The rule file: one group per project. */
export function exportPrometheusRules(config: TideConfig, options: ExportOptions): ExportResult {
  const rules = Object.values(config.services).flatMap((s) => serviceRules(config, s, options));
  return {
    documents: [{ body: { groups: [{ name: `tidescale-${config.project}`, rules }] }, comment: `Alert rules for ${config.project}, exported by tide export prometheus-rules.` }],
    notes: [],
  };
}
