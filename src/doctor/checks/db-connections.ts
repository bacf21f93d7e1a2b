/**
 * Database connection exhaustion (habitat: "Too many connections"; open-forge: "DB
 * connections > 80% pool" warning, "> 95%" critical): pg_stat_activity against
 * max_connections. Every replica opens its own pool, so scaling out spends connections.
 */
import type { Facts, Finding } from '../types.js';
import { percent } from './shared.js';

const FIX =
  "Each replica holds its own pool (a Tidescale API 10 connections, a worker about 5), so more replicas need more connections: put PgBouncer (transaction mode) in front, or raise max_connections (`ALTER SYSTEM SET max_connections = ...` and a restart), and lower the services' max so a scale-out cannot exhaust it.";

export function dbConnections(facts: Facts): Finding[] {
  const db = facts.database;
  if (db?.refused !== undefined) {
    return [
      {
        severity: 'critical',
        code: 'db-connections',
        subject: 'database',
        title: 'The database refuses new connections: every connection slot is taken',
        evidence: `connecting to it: "${db.refused}" (SQLSTATE 53300).`,
        fix: FIX,
      },
    ];
  }
  if (!db || db.maxConnections <= 0) return [];
  const share = db.connections / db.maxConnections;
  const t = facts.thresholds;
  if (share < t.connectionsWarning) return [];
  return [
    {
      severity: share >= t.connectionsCritical ? 'critical' : 'warning',
      code: 'db-connections',
      subject: 'database',
      title: `Database connections at ${percent(share)} of max_connections`,
      evidence: `${db.connections} connections in pg_stat_activity, max_connections ${db.maxConnections}.`,
      fix: FIX,
    },
  ];
}
