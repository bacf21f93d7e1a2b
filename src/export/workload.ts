/**
 * What every platform export says the same way about a service: the `tide` command line each
 * replica runs, the ports, the drain timing, and how the queue the service serves is measured
 * (SQL on the builtin queue, PromQL on the runtime's metric names).
 */
import type { ServiceConfig, TideConfig } from '../config/schema.js';
import type { Policy } from '../core/types.js';
import { METRIC } from '../core/types.js';
import type { ReplicaResources } from './types.js';

/** The API's port in a container when the service does not name one. */
export const API_PORT = 3000;
/** The worker's /health and /metrics port in a container. */
export const WORKER_METRICS_PORT = 9091;
/**
 * Seconds an API replica keeps serving after it is told to stop, before SIGTERM: load
 * balancers (kube-proxy endpoints, a Compose proxy's DNS) take a moment to stop sending it
 * requests, and a request that arrives after the process stopped listening fails.
 */
export const API_DEREGISTER_SECONDS = 5;
/** Extra seconds past the drain before the platform's SIGKILL, for process exit itself. */
export const EXIT_MARGIN_SECONDS = 5;

export function containerPort(service: ServiceConfig): number | undefined {
  if (service.kind === 'api') return service.port ?? API_PORT;
  if (service.kind === 'worker') return WORKER_METRICS_PORT;
  return service.port;
}

/**
 * The arguments after `tide` for one replica of the service, or for a `command` service the
 * whole command line run by a shell. Workers get `--grace` from `stop_grace_seconds`, so the
 * worker's own drain ends before the platform's kill.
 */
export function serviceCommand(service: ServiceConfig, apiArgs: readonly string[] = []): { args: string[] } | { shell: string } {
  if (service.kind === 'api') {
    return { args: ['api', '--host', '0.0.0.0', '--port', String(containerPort(service)), ...apiArgs] };
  }
  if (service.kind === 'worker') {
    const args = ['worker', '--concurrency', String(service.concurrency ?? 10), '--grace', String(service.stopGraceSeconds)];
    if (service.queues) args.push('--queues', service.queues.join(','));
    if (service.handlers) args.push('--handlers', service.handlers);
    args.push('--metrics-port', String(WORKER_METRICS_PORT));
    return { args };
  }
  return { shell: service.command ?? 'true' };
}

/**
 * The per-client limit of `balancer.rate_limit` as requests per minute (the API's window), or
 * undefined when the file sets none. The exports put it where their runbooks put limits: at
 * the proxy when it can limit per client (ingress-nginx), else at the API replicas, which
 * then trust exactly that proxy for the client's address.
 */
export function perClientPerMinute(config: TideConfig): number | undefined {
  const limit = config.balancer.rateLimit;
  return limit === undefined ? undefined : Math.max(1, Math.ceil(limit.ratePerSecond * 60));
}

/** The API's default per-client limit (requests per minute), as `tide api` has it. */
export const API_DEFAULT_PER_MINUTE = 1000;

/** The environment every replica gets: the service's own plus the queue's schema. */
export function serviceEnv(config: TideConfig, service: ServiceConfig): Record<string, string> {
  return {
    TIDE_SCHEMA: config.database.schema,
    // the connection budget's per-replica number, and a declared pooler, travel with the replica
    ...(service.poolSize ? { TIDE_DB_POOL_SIZE: String(service.poolSize) } : {}),
    ...(config.database.pooler === 'auto' ? {} : { TIDE_DB_POOLER: config.database.pooler }),
    ...service.env,
  };
}

/** Seconds the platform waits between the stop signal and the kill: the drain plus margins. */
export function terminationSeconds(service: ServiceConfig): number {
  const deregister = service.kind === 'api' ? API_DEREGISTER_SECONDS : 0;
  return Math.ceil(deregister + service.stopGraceSeconds + EXIT_MARGIN_SECONDS);
}

/**
 * The queues a worker takes from, as `tide worker` and the autoscaler read `queues:` (absent:
 * the `default` queue); undefined means all (`*`, or a service that is not a worker).
 */
export function queuesOf(service: ServiceConfig): string[] | undefined {
  if (service.kind !== 'worker') return undefined;
  const queues = service.queues ?? ['default'];
  return queues.includes('*') ? undefined : queues;
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * A read-only SQL query on the builtin queue's table for a queue metric (queue depth or the
 * oldest ready job's age), for KEDA's `postgresql` trigger. Ready means state `ready` and
 * `run_at` passed, as the queue's own stats count it.
 */
export function queueSql(metric: string, schema: string, queues: string[] | undefined): string | undefined {
  const table = `${sqlIdent(schema)}.jobs`;
  const where = `state = 'ready' AND run_at <= now()${queues ? ` AND queue IN (${queues.map(sqlString).join(', ')})` : ''}`;
  if (metric === METRIC.queueDepth) return `SELECT count(*) FROM ${table} WHERE ${where}`;
  if (metric === METRIC.oldestAge) return `SELECT coalesce(extract(epoch FROM now() - min(run_at)), 0) FROM ${table} WHERE ${where}`;
  return undefined;
}

/** A PromQL string literal's contents: backslashes and double quotes escaped. */
export function promString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/**
 * A PromQL label matcher: `label="v"` for one value, `label=~"a|b"` for several (each value's
 * regex metacharacters escaped, then the whole made a PromQL string).
 */
export function labelMatch(label: string, values: string[]): string {
  if (values.length === 1) return `${label}="${promString(values[0]!)}"`;
  const alternatives = values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return `${label}=~"${promString(alternatives)}"`;
}

/** A PromQL label matcher on the queue label, or '' for all queues. */
function queueMatcher(queues: string[] | undefined): string {
  return queues ? labelMatch('queue', queues) : '';
}

/**
 * The Prometheus job label of a service's replicas. The exports' scrape config (and the
 * docs) name jobs `<project>-<service>`; rules and dashboards select on it.
 */
export function promJob(config: TideConfig, service: string): string {
  return `${config.project}-${service}`;
}

/**
 * PromQL for a core metric over the runtime's metric names (rates over `window`), or undefined
 * when there is no runtime metric for it. Every API replica reports the whole queue's figures (they are read
 * from the database), so queue series are combined with `max`, never `sum`.
 */
export function promQuery(config: TideConfig, service: ServiceConfig, metric: string, resources: ReplicaResources, window = '2m'): string | undefined {
  const q = queueMatcher(queuesOf(service));
  const job = labelMatch('job', [promJob(config, service.name)]);
  switch (metric) {
    case METRIC.queueDepth:
      return `sum(max by (queue) (tide_queue_ready{${q}}))`;
    case METRIC.oldestAge:
      return `max(tide_queue_oldest_ready_age_seconds{${q}})`;
    case METRIC.inFlight:
      return `sum(max by (queue) (tide_queue_active{${q}}))`;
    case METRIC.cpu:
      // a fraction of the CPU request, as the HPA's utilisation is
      return `avg(rate(process_cpu_seconds_total{${job}}[${window}]))${resources.cpuCores === 1 ? '' : ` / ${resources.cpuCores}`}`;
    case METRIC.memory:
      return `avg(process_resident_memory_bytes{${job}}) / ${resources.memoryBytes}`;
    case METRIC.latencyP95:
      return `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{${job}}[${window}])))`;
    case METRIC.errorRate:
      return `sum(rate(http_request_duration_seconds_count{${job},status_code=~"5.."}[${window}])) / sum(rate(http_request_duration_seconds_count{${job}}[${window}]))`;
    default:
      return undefined;
  }
}

/** True for the metrics a platform measures itself per container (CPU and memory). */
export function isResourceMetric(metric: string): metric is 'cpu_utilization' | 'memory_utilization' {
  return metric === METRIC.cpu || metric === METRIC.memory;
}

/** A policy's label in messages: its name, or kind and metric. */
export function policyLabel(policy: Policy, index: number): string {
  if (policy.name) return policy.name;
  return policy.kind === 'slo' ? `slo[${index}]` : `${policy.kind}[${index}] on ${policy.metric}`;
}

/** Services in file order that have a `scale:` block. */
export function scaledServices(config: TideConfig): ServiceConfig[] {
  return Object.values(config.services).filter((s) => s.scale !== undefined);
}
