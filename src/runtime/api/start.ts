/**
 * Running the API on PostgreSQL in this process: the pool, the engine, the server, and an
 * orderly close. `tide api` is a thin shell over this; tests and the supervisor call it
 * directly.
 *
 * Design: this module owns the pg pool (not the engine), so it can set a connect timeout
 * (a request must not hang forever on a database that accepts no connections) and attach
 * the pool's 'error' listener (an idle client killed by a database restart emits it, and an
 * unhandled 'error' event would crash the process). close() runs once: the server stops
 * accepting and finishes the requests in flight, then the engine and the pool close.
 */
import type { AddressInfo } from 'node:net';

import type { FastifyInstance } from 'fastify';
import pg from 'pg';

import { TideError } from '../../errors.js';
import { type PostgresQueue, createPostgresQueue } from '../queue/postgres.js';
import { type ApiOptions, buildApi } from './server.js';

export interface StartApiOptions extends Omit<ApiOptions, 'engine' | 'dbCheck' | 'pool'> {
  databaseUrl: string;
  /** PostgreSQL schema of the queue. Default `tide`. */
  schema?: string;
  /** Default 3000; 0 picks a free port (see `url`). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** How long a request waits for a new database connection before a 503. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Called with a line when the pool loses a client (a database restart, say). */
  log?: (line: string) => void;
}

export interface RunningApi {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  app: FastifyInstance;
  engine: PostgresQueue;
  /** Stops accepting, finishes in-flight requests, closes the engine and the pool. Idempotent. */
  close(): Promise<void>;
}

/** Starts the API listening. Rejects with TIDE_API_LISTEN when the port cannot be bound. */
export async function startApi(options: StartApiOptions): Promise<RunningApi> {
  const { databaseUrl, schema, port = 3000, host = '127.0.0.1', poolSize, connectTimeoutMs, log, ...apiOptions } = options;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize ?? 10, connectionTimeoutMillis: connectTimeoutMs ?? 5000 });
  pool.on('error', (err) => log?.(`database connection lost (the pool reconnects on the next request): ${err.message}`));

  let engine: PostgresQueue;
  try {
    engine = await createPostgresQueue({ connectionString: databaseUrl, pool, ...(schema ? { schema } : {}) });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }

  const app = buildApi({
    ...apiOptions,
    engine,
    pool,
    dbCheck: async () => {
      await pool.query('SELECT 1');
    },
  });

  const closeAll = async () => {
    await app.close();
    await engine.close();
    await pool.end();
  };

  try {
    await app.listen({ port, host });
  } catch (cause) {
    await closeAll().catch(() => undefined);
    if (cause instanceof TideError) throw cause;
    const code = (cause as { code?: unknown }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new TideError('TIDE_API_LISTEN', `Cannot listen on ${host}:${port} (${String(code)}).`, { cause, where: { arg: '--port' } });
    }
    throw cause;
  }

  const address = app.server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    app,
    engine,
    close: () => (closing ??= closeAll()),
  };
}
