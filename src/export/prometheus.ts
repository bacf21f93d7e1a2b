/**
 * `tide export prometheus-rules`: the runbooks' alerts (high CPU, high memory, queue depth,
 * oldest job age, API p99 latency, error rate) as a Prometheus rule file over the metric
 * names the runtime exports (tide_queue_*, http_request_duration_seconds, prom-client's
 * process_* metrics).
 *
 * Thresholds come from the config where it has them (a CPU or memory target, the SLO's
 * wait for the oldest job's age) and otherwise from the runbooks' own tables: CPU 70%/85%,
 * memory 80%/90%, queue depth 1,000/5,000, p99 500 ms/2 s, errors 5%, processing lag 5 min.
 * Replicas are selected by the scrape job `<project>-<service>` (see docs/platforms).
 */
import type { ServiceConfig, TideConfig } from '../config/schema.js';
import { METRIC } from '../core/types.js';
import type { ExportOptions, ExportResult } from './types.js';
import { promJob, promQuery, queuesOf } from './workload.js';

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

/** The alert rules for one service. */
export function serviceRules(config: TideConfig, service: ServiceConfig, options: ExportOptions): Rule[] {
  const rules: Rule[] = [];
  const memoryBytes = options.memoryMiB * 1024 * 1024;
  const base = { service: service.name, project: config.project };
  const add = (alert: string, expr: string, forTime: string, severity: string, summary: string) =>
    rules.push({ alert, expr, for: forTime, labels: { severity, ...base }, annotations: { summary, description: `${summary} (service ${service.name}, value {{ $value | humanize }}).` } });

  if (service.kind !== 'command') {
    const cpu = promQuery(config, service, METRIC.cpu, memoryBytes, '5m')!;
    const cpuWarn = targetOn(service, METRIC.cpu) ?? DEFAULT_THRESHOLDS.cpu.warning;
    add('TideHighCPU', `${cpu} > ${cpuWarn}`, '10m', 'warning', `CPU above ${pct(cpuWarn)} of a core for 10 minutes: the autoscaler is at max or not keeping up`);
    add('TideHighCPU', `${cpu} > ${DEFAULT_THRESHOLDS.cpu.critical}`, '10m', 'critical', `CPU above ${pct(DEFAULT_THRESHOLDS.cpu.critical)} of a core for 10 minutes`);
    const memory = `max(process_resident_memory_bytes{job="${promJob(config, service.name)}"}) / ${memoryBytes}`;
    const memWarn = targetOn(service, METRIC.memory) ?? DEFAULT_THRESHOLDS.memory.warning;
    add('TideHighMemory', `${memory} > ${memWarn}`, '10m', 'warning', `a replica's memory above ${pct(memWarn)} of its ${options.memoryMiB} MiB limit`);
    add('TideHighMemory', `${memory} > ${DEFAULT_THRESHOLDS.memory.critical}`, '5m', 'critical', `a replica's memory above ${pct(DEFAULT_THRESHOLDS.memory.critical)} of its limit: OOM kills are near`);
  }
  if (service.kind === 'api') {
    const job = promJob(config, service.name);
    const p99 = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="${job}"}[5m])))`;
    add('TideApiLatencyP99', `${p99} > ${DEFAULT_THRESHOLDS.p99Seconds.warning}`, '10m', 'warning', `API p99 latency above ${DEFAULT_THRESHOLDS.p99Seconds.warning * 1000} ms`);
    add('TideApiLatencyP99', `${p99} > ${DEFAULT_THRESHOLDS.p99Seconds.critical}`, '10m', 'critical', `API p99 latency above ${DEFAULT_THRESHOLDS.p99Seconds.critical} s`);
    add('TideApiErrorRate', `${promQuery(config, service, METRIC.errorRate, memoryBytes, '5m')!} > ${DEFAULT_THRESHOLDS.errorRate}`, '5m', 'warning', `more than ${pct(DEFAULT_THRESHOLDS.errorRate)} of API requests answer 5xx`);
  }
  if (service.kind === 'worker') {
    const depth = promQuery(config, service, METRIC.queueDepth, memoryBytes)!;
    const queues = queuesOf(service)?.join(', ') ?? 'all queues';
    add('TideQueueDepthHigh', `${depth} > ${DEFAULT_THRESHOLDS.queueDepth.warning}`, '5m', 'warning', `more than ${DEFAULT_THRESHOLDS.queueDepth.warning} jobs waiting (${queues})`);
    add('TideQueueDepthHigh', `${depth} > ${DEFAULT_THRESHOLDS.queueDepth.critical}`, '5m', 'critical', `more than ${DEFAULT_THRESHOLDS.queueDepth.critical} jobs waiting (${queues})`);
    const wait = oldestAgeThreshold(service);
    add('TideOldestJobAge', `${promQuery(config, service, METRIC.oldestAge, memoryBytes)!} > ${wait}`, '5m', 'warning', `the oldest waiting job has waited more than ${wait} s (${queues})`);
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
