/**
 * The connection budget, live: the limit read from the database (max_connections less the
 * superuser reserve directly; behind PgBouncer its max_client_conn from `SHOW CONFIG` on
 * its admin console, when our user may read it), and the check `tide up` and `tide
 * autoscale` run before they scale anything.
 */
import pg from 'pg';

import { TideError } from '../errors.js';
import { type BudgetService, type ConnectionBudget, type ConnectionLimit, connectionBudget } from './budget.js';
import { detectPooler } from './pooler.js';

/**
 * What the database accepts, read live: behind a pooler, PgBouncer's max_client_conn
 * (`SHOW CONFIG` on its `pgbouncer` admin database; undefined when not allowed), else
 * max_connections less superuser_reserved_connections, with the client backends open now.
 */
export async function readConnectionLimit(url: string, timeoutMs = 3000): Promise<ConnectionLimit & { pooled: boolean } | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: 'tide budget' });
  client.on('error', () => undefined);
  await client.connect();
  let pooled: boolean;
  try {
    pooled = await detectPooler(client);
    if (!pooled) {
      const { rows } = await client.query<{ max: number; reserved: number; used: number }>(
        `SELECT current_setting('max_connections')::int AS max, current_setting('superuser_reserved_connections')::int AS reserved,
                (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS used`,
      );
      const r = rows[0]!;
      return { limit: r.max - r.reserved, source: `the server's max_connections ${r.max} less ${r.reserved} reserved`, inUse: r.used, pooled };
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  const admin = new URL(url);
  admin.pathname = '/pgbouncer';
  const adminClient = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: timeoutMs });
  adminClient.on('error', () => undefined);
  try {
    await adminClient.connect();
    const { rows } = await adminClient.query<{ key: string; value: string }>('SHOW CONFIG');
    const max = Number(rows.find((r) => r.key === 'max_client_conn')?.value);
    const pool = rows.find((r) => r.key === 'default_pool_size')?.value;
    if (!(max > 0)) return undefined;
    return { limit: max, source: `PgBouncer's max_client_conn ${max}, default_pool_size ${pool ?? '?'}`, pooled };
  } catch {
    return undefined;
  } finally {
    await adminClient.end().catch(() => undefined);
  }
}

export interface BudgetCheckOptions {
  url: string;
  pooler: 'auto' | 'none' | 'pgbouncer';
  directUrl?: string | undefined;
  /** database.max_connections: wins over the live reading. */
  maxConnections?: number | undefined;
  log: (line: string) => void;
}

/**
 * `tide up` and `tide autoscale` before they scale anything: the budget at max replicas
 * against the declared limit, else the live one. Over it: TIDE_DB_BUDGET (nothing started).
 * Near it, or when the limit is unknown: a warning line. Returns the budget.
 */
export async function checkConnectionBudget(services: readonly BudgetService[], options: BudgetCheckOptions): Promise<ConnectionBudget> {
  let limit: ConnectionLimit | undefined = options.maxConnections ? { limit: options.maxConnections, source: 'database.max_connections' } : undefined;
  let pooled = options.pooler === 'pgbouncer';
  if (!limit) {
    try {
      const live = await readConnectionLimit(options.url);
      if (live) ({ pooled, ...limit } = live);
      else pooled = true;
    } catch {
      // the database not answering yet is for the services' own retries to report
    }
  }
  const budget = connectionBudget(services, limit, { listens: !pooled || options.directUrl !== undefined });
  if (budget.verdict === 'over') {
    throw new TideError('TIDE_DB_BUDGET', budget.message, { where: { field: limit?.source === 'database.max_connections' ? 'database.max_connections' : 'services.*.max' } });
  }
  if (budget.verdict !== 'ok') options.log(`connection budget: ${budget.message}`);
  return budget;
}
