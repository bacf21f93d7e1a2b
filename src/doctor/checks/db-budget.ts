/**
 * The connection budget (the runbooks' "connection pool exhaustion / too many connections"
 * before it happens): the connections the config's services open at their max replicas
 * against max_connections, or behind PgBouncer its max_client_conn.
 */
import type { Facts, Finding } from '../types.js';

const FIX =
  "Lower the services' max or pool_size (tide.yaml), raise the limit (max_connections, or PgBouncer's max_client_conn), or put PgBouncer in transaction mode in front and point DATABASE_URL at it; see docs/queue.md, \"Connection budget\".";

export function dbBudget(facts: Facts): Finding[] {
  const budget = facts.database?.budget;
  if (!budget || budget.verdict === 'ok' || budget.verdict === 'unknown') return [];
  return [
    {
      severity: budget.verdict === 'over' ? 'critical' : 'warning',
      code: 'db-budget',
      subject: 'database',
      title: budget.verdict === 'over' ? 'At max replicas the services would exceed the database connections' : 'At max replicas the services would use most database connections',
      evidence: budget.message,
      fix: FIX,
    },
  ];
}
