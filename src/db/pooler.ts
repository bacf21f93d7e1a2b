/**
 * Connection poolers in front of PostgreSQL (PgBouncer, pgpool, Odyssey, Supavisor in
 * transaction mode): how the queue learns that one is there, and what changes when it is.
 *
 * Behind a transaction-mode pooler every transaction may run on a different server
 * connection, so nothing may live in the session: no named prepared statements (pg's
 * `name:` prepares once per client connection and the pooler hands that statement's server
 * connection to someone else: "prepared statement ... does not exist" / "already exists"),
 * no session advisory locks, no LISTEN (notifications go to whichever server connection
 * ran it), no SET outside a transaction.
 *
 * Declared: `database.pooler` in tide.yaml or TIDE_DB_POOLER (`pgbouncer`, or `none` for a
 * direct connection). Detected (`auto`, the default): a pooler answers the startup with its
 * own BackendKeyData, so the process id the client was given is not the process id of the
 * backend that runs its query; a direct connection, or a plain TCP proxy (a Docker port
 * mapping), gives the real one.
 */
import type pg from 'pg';

import { TideError } from '../errors.js';

export type PoolerSetting = 'auto' | 'none' | 'pgbouncer';
export const POOLER_SETTINGS: readonly PoolerSetting[] = ['auto', 'none', 'pgbouncer'];

/** TIDE_DB_POOLER, validated; `auto` when unset. */
export function poolerFromEnv(env: NodeJS.ProcessEnv = process.env): PoolerSetting {
  const raw = env.TIDE_DB_POOLER?.trim().toLowerCase();
  if (!raw) return 'auto';
  if ((POOLER_SETTINGS as readonly string[]).includes(raw)) return raw as PoolerSetting;
  throw new TideError('TIDE_USAGE', `TIDE_DB_POOLER must be one of ${POOLER_SETTINGS.join(', ')}, not "${env.TIDE_DB_POOLER}".`, {
    where: { field: 'TIDE_DB_POOLER' },
  });
}

/** DATABASE_DIRECT_URL: a connection that bypasses the pooler, used for LISTEN only. */
export function directUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.DATABASE_DIRECT_URL?.trim() || undefined;
}

/** True when `client` (connected) talks to PostgreSQL through a pooler. */
export async function detectPooler(client: pg.PoolClient | pg.Client): Promise<boolean> {
  const given = (client as unknown as { processID?: number | null }).processID;
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return typeof given !== 'number' || given !== rows[0]?.pid;
}
