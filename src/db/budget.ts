/**
 * The connection budget: the connections the services would open at their max replicas,
 * against what the database (or the pooler in front of it) accepts. The runbooks scale out
 * until "too many connections"; this says so before it happens, with the numbers.
 *
 * Pure: services and limit in, verdict out. ./budget-live.ts reads the limit from the
 * database and checks it for `tide up` and `tide autoscale`.
 */
import pg from 'pg';

import { TideError } from '../errors.js';

import { detectPooler } from './pooler.js';

/** Every worker replica also holds one LISTEN connection (not behind a pooler without a direct URL). */
export const LISTEN_CONNECTIONS = 1;
/** Share of the limit above which the budget warns. */
export const BUDGET_WARN_SHARE = 0.8;

export interface BudgetService {
  name: string;
  kind: 'api' | 'worker' | 'command';
  max: number;
  poolSize?: number;
}

export interface BudgetLine {
  service: string;
  maxReplicas: number;
  perReplica: number;
  total: number;
}

export interface ConnectionLimit {
  /** Connections the replicas may open in all. */
  limit: number;
  /** Where the number came from, for the message. */
  source: string;
  /** Connections open now, when read live. */
  inUse?: number;
}

export interface ConnectionBudget {
  lines: BudgetLine[];
  /** Connections at max replicas, all services. */
  total: number;
  limit?: ConnectionLimit;
  /** `over`: more than the limit; `warn`: above 80% of it; `unknown`: no limit known. */
  verdict: 'ok' | 'warn' | 'over' | 'unknown';
  /** One sentence with the numbers. */
  message: string;
}

/** Connections each replica of `service` opens: its pool, plus the worker's LISTEN connection. */
export function perReplica(service: BudgetService, listens: boolean): number {
  if (service.kind === 'command' || service.poolSize === undefined) return 0;
  return service.poolSize + (service.kind === 'worker' && listens ? LISTEN_CONNECTIONS : 0);
}

/** The budget of `services` at max replicas against `limit` (pure). */
export function connectionBudget(services: readonly BudgetService[], limit: ConnectionLimit | undefined, options: { listens?: boolean } = {}): ConnectionBudget {
  const lines = services
    .map((s) => {
      const each = perReplica(s, options.listens ?? true);
      return { service: s.name, maxReplicas: s.max, perReplica: each, total: each * s.max };
    })
    .filter((l) => l.perReplica > 0);
  const total = lines.reduce((sum, l) => sum + l.total, 0);
  const sum = lines.map((l) => `${l.service} ${l.maxReplicas} x ${l.perReplica}`).join(' + ') || 'no API or worker services';
  if (!limit) {
    return { lines, total, verdict: 'unknown', message: `At max replicas the services open ${total} database connections (${sum}); the limit is unknown (set database.max_connections to check it).` };
  }
  const verdict = total > limit.limit ? 'over' : total > BUDGET_WARN_SHARE * limit.limit ? 'warn' : 'ok';
  const head = `At max replicas the services open ${total} database connections (${sum})`;
  const against = `${limit.limit} allowed (${limit.source})`;
  const message =
    verdict === 'over'
      ? `${head}, more than the ${against}: "too many connections" before max is reached. Lower the services' max or pool_size, raise the limit, or put PgBouncer (transaction mode) in front.`
      : verdict === 'warn'
        ? `${head}: ${Math.round((100 * total) / limit.limit)}% of the ${against}, little room for anything else.`
        : `${head}, within the ${against}.`;
  return { lines, total, limit, verdict, message };
}
