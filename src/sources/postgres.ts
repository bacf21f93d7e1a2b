/**
 * `postgres`: any SQL that returns one number, or rows of (`metric`, `value`), as samples.
 *
 * Design: a pool per source (up to `pool_max` idle clients, default 1), opened on the first
 * read. Each read checks out a client, runs `BEGIN; SET TRANSACTION READ ONLY; SET LOCAL
 * statement_timeout`, runs the user's query with the extended protocol (so it is exactly one
 * statement: no `COMMIT; INSERT ...` can escape the read-only transaction), rolls back and
 * returns the client. A failed or aborted read ends its client instead of returning it, so a
 * pooled connection is never left mid-transaction. close() ends every client, even one still
 * connecting.
 */
import net from 'node:net';

import pg from 'pg';
import { z } from 'zod';

import type { Sample } from '../core/types.js';
import { closedError, commonFields, finiteNumber, guardedRead, labelOf, sourceError } from './guard.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

export const postgresConfig = z.strictObject({
  ...commonFields,
  /** postgres://user:pass@host:port/db */
  connection_string: z.string().min(1),
  query: z.string().min(1),
  /** The metric name when the query returns one number (not needed for metric/value rows). */
  metric: z.string().min(1).optional(),
  pool_max: z.number().int().min(1).max(10).default(1),
});
export type PostgresConfig = z.infer<typeof postgresConfig>;

/** SQLSTATE classes that mean the connection, not the query, failed. */
const CONNECTION_CLASSES = ['08', '57P', '53'];

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function createPostgresSource(config: PostgresConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('postgres', config);
  // The source's own small pool: pg.Pool cannot cancel a connect in progress, and close()
  // must not wait out a connect timeout against a backend that never answers. Each client
  // runs on a socket made here (pg's `stream` option) so an abort can destroy it outright.
  const idle: pg.Client[] = [];
  const open = new Map<pg.Client, net.Socket>();
  let closed = false;
  let notes: string[] = [];

  /** A pooled client, or a new one with its connect under way (so an abort can end it). */
  function checkOut(): { client: pg.Client; connected: Promise<unknown> } {
    const reused = idle.pop();
    if (reused) return { client: reused, connected: Promise.resolve() };
    const socket = new net.Socket();
    const client = new pg.Client({
      connectionString: config.connection_string,
      connectionTimeoutMillis: config.timeout_ms,
      application_name: `tide source ${label.name}`,
      stream: () => socket,
    });
    // A client dying while idle (server restart) must not crash the process; drop it.
    client.on('error', () => void discard(client));
    open.set(client, socket);
    return { client, connected: client.connect() };
  }

  function checkIn(client: pg.Client): void {
    if (closed || idle.length >= config.pool_max) void discard(client, true);
    else idle.push(client);
  }

  /**
   * Ends a client whatever its state; never throws. Politely (Terminate, then close) for an
   * idle client; otherwise (connecting, mid-query, failed) by destroying its socket, which
   * also fails whatever is pending on it. The server stops a query cut off this way within a
   * second (client_connection_check_interval, PostgreSQL >= 14) or at its statement_timeout.
   */
  function discard(client: pg.Client, polite = false): Promise<void> {
    const socket = open.get(client);
    if (!socket) return Promise.resolve();
    open.delete(client);
    const i = idle.indexOf(client);
    if (i >= 0) idle.splice(i, 1);
    if (!polite) {
      socket.destroy();
      return Promise.resolve();
    }
    return client
      .end()
      .catch(() => {})
      .finally(() => socket.destroy());
  }

  function toSamples(result: pg.QueryResult<Record<string, unknown>>, at: number): Sample[] {
    const names = result.fields.map((f) => f.name);
    if (names.includes('metric') && names.includes('value')) {
      const samples: Sample[] = [];
      for (const row of result.rows) {
        const metric = row.metric;
        if (typeof metric !== 'string' || metric === '') {
          throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `a row's metric is not a name (got ${String(metric)})`);
        }
        if (row.value === null) {
          notes.push(`metric ${metric} is NULL`);
          continue;
        }
        samples.push({ metric, value: finiteNumber(label, `metric ${metric}`, row.value), at });
      }
      if (result.rows.length === 0) notes.push('the query returned no rows');
      return samples;
    }
    if (names.length !== 1) {
      throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `the query returns ${names.length} columns (${names.join(', ')}); return one number, or columns metric and value`);
    }
    if (!config.metric) {
      throw sourceError(label, 'TIDE_SOURCE_CONFIG', 'the query returns one number: name it with `metric`');
    }
    if (result.rows.length === 0) {
      notes.push('the query returned no rows');
      return [];
    }
    if (result.rows.length > 1) {
      throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', `the query returns ${result.rows.length} rows; return one number, or rows of metric and value`);
    }
    const value = result.rows[0]![names[0]!];
    if (value === null) {
      notes.push(`the query returned NULL for ${config.metric} (use coalesce() if NULL means 0)`);
      return [];
    }
    return [{ metric: config.metric, value: finiteNumber(label, config.metric, value), at }];
  }

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      notes = [];
      let client: pg.Client | undefined;
      // Set when the read is over one way or another: the client goes back or is ended once.
      let settled = false;
      const finish = (healthy: boolean): void => {
        if (!client || settled) return;
        settled = true;
        if (healthy) checkIn(client);
        else void discard(client);
      };
      try {
        return await guardedRead(
          label,
          signal,
          config.timeout_ms,
          async () => {
            const out = checkOut();
            client = out.client;
            const c = out.client;
            await out.connected;
            // One round trip for the set-up (simple protocol). The last statement asks
            // PostgreSQL >= 14 to notice a vanished client within a second, so a query cut off
            // by an abort stops in the server too; older servers have no such row: a no-op.
            await c.query(
              `BEGIN; SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${config.timeout_ms}; ` +
                `SELECT set_config(name, '1000', true) FROM pg_settings WHERE name = 'client_connection_check_interval'`,
            );
            // queryMode 'extended' (pg >= 8.12; not in @types/pg): one statement, prepared.
            const query: pg.QueryConfig & { queryMode: 'extended' } = { text: config.query, queryMode: 'extended' };
            let result: pg.QueryResult<Record<string, unknown>>;
            try {
              result = await c.query<Record<string, unknown>>(query);
            } catch (err) {
              const state = sqlState(err);
              if (state && !CONNECTION_CLASSES.some((cls) => state.startsWith(cls))) {
                const message = err instanceof Error ? err.message : String(err);
                throw sourceError(label, 'TIDE_SOURCE_QUERY', `${message} (SQLSTATE ${state})`, err);
              }
              throw err;
            }
            await c.query('ROLLBACK');
            finish(true);
            return toSamples(result, ctx.now());
          },
          () => finish(false),
        );
      } catch (err) {
        finish(false);
        throw err;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...open.keys()].map((client) => discard(client, idle.includes(client))));
    },
    notes: () => notes,
  };
}

export const postgresSource: SourceDefinition<PostgresConfig> = {
  kind: 'postgres',
  summary: 'Any SQL returning one number (or rows of metric, value), in a read-only transaction with a statement timeout.',
  schema: postgresConfig,
  create: createPostgresSource,
};
