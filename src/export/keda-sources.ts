/**
 * A service's metric sources (`sources:` in tide.yaml, docs/sources.md) as KEDA triggers, one
 * source kind to one KEDA scaler, as the mapping has it: a redis list -> `redis`,
 * RabbitMQ -> `rabbitmq`, SQL -> `postgresql`, PromQL -> `prometheus`; BullMQ's wait list is a
 * Redis list too. Credentials never go into the object: the triggers read them from the
 * target container's environment (`*FromEnv`), which the Deployment takes from a Secret.
 */
import { METRIC } from '../core/types.js';
import type { TargetPolicy } from '../core/types.js';

type SourceConfig = Record<string, unknown> & { kind: string };

/** The metrics a configured source provides (the ones a target policy can name). */
export function sourceMetrics(source: SourceConfig): string[] {
  const metric = typeof source.metric === 'string' ? source.metric : undefined;
  switch (source.kind) {
    case 'redis':
      return [metric ?? METRIC.queueDepth];
    case 'postgres':
    case 'prometheus':
      return metric ? [metric] : [];
    case 'rabbitmq':
      return [METRIC.queueDepth];
    case 'bullmq':
      return [METRIC.queueDepth, METRIC.oldestAge];
    case 'builtin':
      return [METRIC.queueDepth, METRIC.oldestAge];
    default:
      return [];
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** host:port and database index of a redis:// URL, without its credentials. */
function redisAddress(url: string): { address: string; db: string; tls: boolean } {
  const u = new URL(url);
  return { address: `${u.hostname}:${u.port || '6379'}`, db: u.pathname.replace('/', '') || '0', tls: u.protocol === 'rediss:' };
}

/**
 * The KEDA trigger for a target policy read from this source, or undefined when KEDA has no
 * scaler for it (the caller falls back and says so). `metricType` follows the policy type:
 * `average` is AverageValue (total / target), `utilization` is Value (as the HPA's).
 */
export function kedaTriggerFor(source: SourceConfig, policy: TargetPolicy, notes: string[], service: string): Record<string, unknown> | undefined {
  const metricType = policy.type === 'average' ? 'AverageValue' : 'Value';
  const target = String(policy.target);
  switch (source.kind) {
    case 'redis': {
      const keys = Array.isArray(source.key) ? source.key.filter((k): k is string => typeof k === 'string') : [str(source.key) ?? ''];
      if (keys.length !== 1) {
        notes.push(`${service}: KEDA's redis scaler reads one list; ${keys.length} keys are summed by Tidescale only`);
        return undefined;
      }
      const { address, db, tls } = redisAddress(str(source.url) ?? 'redis://localhost:6379');
      return { type: 'redis', metricType, metadata: { address, listName: keys[0], listLength: target, databaseIndex: db, ...(tls ? { enableTLS: 'true' } : {}) } };
    }
    case 'bullmq': {
      if (policy.metric !== METRIC.queueDepth) return undefined;
      const { address, db, tls } = redisAddress(str(source.url) ?? 'redis://localhost:6379');
      const listName = `${str(source.prefix) ?? 'bull'}:${str(source.queue) ?? ''}:wait`;
      return { type: 'redis', metricType, metadata: { address, listName, listLength: target, databaseIndex: db, ...(tls ? { enableTLS: 'true' } : {}) } };
    }
    case 'rabbitmq':
      // hostFromEnv: the AMQP URL with its credentials stays in the container's environment
      notes.push(`${service}: the KEDA rabbitmq trigger reads the broker URL from AMQP_URL in the ${service} container's environment; add it from a Secret`);
      return { type: 'rabbitmq', metricType, metadata: { protocol: 'amqp', queueName: str(source.queue) ?? '', mode: 'QueueLength', value: target, hostFromEnv: 'AMQP_URL' } };
    case 'postgres':
      return { type: 'postgresql', metricType, metadata: { query: str(source.query) ?? '', targetQueryValue: target, connectionFromEnv: 'DATABASE_URL' } };
    case 'prometheus':
      return { type: 'prometheus', metricType, metadata: { serverAddress: str(source.url) ?? '', query: str(source.query) ?? '', threshold: target } };
    default:
      return undefined;
  }
}
