/**
 * Connection-level PostgreSQL failures, recognised in one place so the API and the worker
 * answer a database outage the same way (503 / TIDE_DB_UNAVAILABLE, retry later) instead of
 * reporting it as a bug.
 */
import { TideError } from '../errors.js';

/** Node socket errors that mean "the server is not there (right now)". */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * SQLSTATEs for a server that is shutting down, starting up, or dropped the connection:
 * class 08 (connection exception), 57P01 admin_shutdown, 57P02 crash_shutdown,
 * 57P03 cannot_connect_now, 53300 too_many_connections.
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** Messages pg uses for a connection that died under it (these carry no code). */
const MESSAGES = [/connection terminated/i, /connection (?:ended|closed)/i, /client has encountered a connection error/i, /not queryable/i, /timeout exceeded when trying to connect/i, /terminating connection/i];

/**
 * What a pooler in front of PostgreSQL says when it, not the server, fails the statement:
 * PgBouncer's own errors (SQLSTATE 08P01 with these words: its pool stayed full past
 * query_wait_timeout, max_client_conn reached, no server connection could be made), and a
 * named prepared statement the pooler did not keep on the server connection it lent
 * (26000 / 42P05 on a `tide_` statement: a client that prepares behind a transaction pooler).
 */
const POOLER_MESSAGES = /query_wait_timeout|max_client_conn|no more connections allowed|pgbouncer|server_login_retry|client_login_timeout|server conn crashed|pooler/i;

/** True when `err` comes from a connection pooler in front of PostgreSQL (worth a retry). */
export function isPoolerError(err: unknown): boolean {
  if (err instanceof TideError) return err.code === 'TIDE_DB_POOLER';
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if ((code === '26000' || code === '42P05') && /prepared statement "tide_/.test(err.message)) return true;
  return code === '08P01' && POOLER_MESSAGES.test(err.message);
}

/** True when `err` says the database is unreachable, not that the query was wrong. */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof TideError) return err.code === 'TIDE_DB_UNAVAILABLE';
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code) || SQLSTATES.has(code) || code.startsWith('08')) return true;
  }
  if (MESSAGES.some((m) => m.test(err.message))) return true;
  // AggregateError from a multi-address connect (localhost -> ::1 and 127.0.0.1)
  if (err instanceof AggregateError) return err.errors.some(isConnectionError);
  return err.cause !== undefined && err.cause !== err && isConnectionError(err.cause);
}

/**
 * A connection error as `TideError('TIDE_DB_UNAVAILABLE')`, a pooler's as `TIDE_DB_POOLER`;
 * any other error unchanged, so
 * callers can write `catch (err) { throw toDbError(err) }`.
 */
export function toDbError(err: unknown): unknown {
  if (err instanceof TideError) return err;
  if (isPoolerError(err)) {
    return new TideError('TIDE_DB_POOLER', `The connection pooler in front of PostgreSQL failed the statement: ${(err as Error).message}.`, {
      cause: err,
      where: { field: 'database.pooler' },
    });
  }
  if (!isConnectionError(err)) return err;
  const detail = err instanceof Error ? err.message || (err as { code?: string }).code || err.name : String(err);
  return new TideError('TIDE_DB_UNAVAILABLE', `PostgreSQL cannot be reached: ${detail}.`, { cause: err });
}

/** Host, port, database and role a URL names, for messages (the password never). */
function target(url: string): { host: string; port: string; database: string; role: string } {
  try {
    const u = new URL(url);
    const role = decodeURIComponent(u.username) || process.env.PGUSER || 'the current user';
    const database = decodeURIComponent(u.pathname.slice(1)) || (u.username ? role : 'the default database');
    return { host: u.hostname || u.searchParams.get('host') || 'localhost', port: u.port || '5432', database, role };
  } catch {
    return { host: 'the server', port: '5432', database: 'the database', role: 'the role' };
  }
}

/** The SQLSTATE of a pg error, looking through TideError causes. */
function sqlState(err: unknown): string | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    if (e.cause === e) break;
  }
  return undefined;
}

/**
 * An error PostgreSQL gave for a statement's data, not for itself: a data exception (class
 * 22, e.g. a \u0000 in a jsonb string), a constraint (23), a program limit such as a value
 * too large (54). The same data fails again; other data would not.
 */
export function isDataError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && /^(22|23|54)/.test(state);
}

/**
 * A server that answered but refused the connection for what the URL says: no such database
 * (3D000), no such role (28000), a wrong password (28P01), each as its own code with the host,
 * the name and the fix. Any other error unchanged. `source` names where the URL came from.
 */
export function toAccessError(err: unknown, url: string, source = 'DATABASE_URL'): unknown {
  const state = sqlState(err);
  if (!state) return err;
  const { host, port, database, role } = target(url);
  const where = { where: { field: source }, cause: err };
  const admin = `psql -h ${host} -p ${port} -U postgres`;
  if (state === '3D000') {
    return new TideError(
      'TIDE_DB_NOT_FOUND',
      `The database "${database}" does not exist on ${host}:${port}; create it (\`${admin} -c 'CREATE DATABASE "${database}" OWNER "${role}"'\`, or createdb) or name an existing one in ${source}.`,
      where,
    );
  }
  if (state === '28000' && /role .* does not exist/i.test((err as Error).message ?? '')) {
    return new TideError(
      'TIDE_DB_ROLE_NOT_FOUND',
      `The role "${role}" does not exist on ${host}:${port}; create it (\`${admin} -c "CREATE ROLE \\"${role}\\" LOGIN PASSWORD '...'"\`) or name an existing one in ${source}.`,
      where,
    );
  }
  if (state === '28P01' || state === '28000') {
    return new TideError(
      'TIDE_DB_AUTH_FAILED',
      `PostgreSQL on ${host}:${port} refused role "${role}" for database "${database}": ${(err as Error).message}; check the user and password in ${source} (and the server's pg_hba.conf for this host).`,
      where,
    );
  }
  return err;
}
