/**
 * Numbered schema migrations (`migrations/NNNN_name.sql`), applied in order, each in its own
 * transaction, under a transaction-level advisory lock keyed by the schema so concurrent
 * starters (several workers booting at once) apply each migration exactly once. The lock
 * is per transaction, not per session, so migrations also run through a transaction-mode
 * pooler (PgBouncer), where a session lock would stay on a server connection lent to others. Every statement is
 * written against `:schema`, replaced by the configured schema, so several installations
 * (and the tests, one random schema per file) share a database without touching each other.
 *
 * A database that has a migration newer than the newest we know was upgraded by a newer
 * Tidescale: we refuse to run against it (TIDE_DB_MIGRATION) rather than guess.
 */
import { readFileSync, readdirSync } from 'node:fs';

import pg from 'pg';

import { TideError } from '../errors.js';
import { toDbError } from './errors.js';

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

const DIR = new URL('./migrations/', import.meta.url);

/** The migrations this version knows, in order. */
export function knownMigrations(): Migration[] {
  return readdirSync(DIR)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((file) => ({ id: Number(file.slice(0, 4)), name: file.slice(5, -4), sql: readFileSync(new URL(file, DIR), 'utf8') }));
}

/** A schema name as a quoted identifier; only plain identifiers are accepted. */
export function quoteSchema(schema: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new TideError('TIDE_USAGE', `The schema name "${schema}" must be letters, digits and underscores (not starting with a digit).`, {
      where: { field: 'schema' },
    });
  }
  return `"${schema}"`;
}

/** Runs `fn` in one transaction holding the schema's transaction-level migration lock. */
async function locked<T>(client: pg.ClientBase, schema: string, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('tidescale.migrate.' || $1::text))`, [schema]);
    const out = await fn();
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Applies pending migrations to `schema`; returns the ids applied now. Idempotent. */
export async function migrate(client: pg.ClientBase, schema = 'tide'): Promise<number[]> {
  const q = quoteSchema(schema);
  const known = knownMigrations();
  const newest = Math.max(0, ...known.map((m) => m.id));
  const applied: number[] = [];
  try {
    const done = await locked(client, schema, async () => {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${q}.migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ id: number }>(`SELECT id FROM ${q}.migrations ORDER BY id`);
      return rows.map((r) => r.id);
    });
    const unknown = done.find((id) => id > newest);
    if (unknown !== undefined) {
      throw new TideError(
        'TIDE_DB_MIGRATION',
        `The database schema "${schema}" has migration ${unknown}, newer than this Tidescale knows (${newest}); upgrade Tidescale or use another schema.`,
        { where: { field: 'schema' } },
      );
    }
    for (const m of known) {
      if (done.includes(m.id)) continue;
      try {
        // each migration in its own transaction under the lock; another starter may have
        // applied it while we waited, so look again once the lock is ours
        const ran = await locked(client, schema, async () => {
          const { rowCount } = await client.query(`SELECT 1 FROM ${q}.migrations WHERE id = $1`, [m.id]);
          if (rowCount) return false;
          await client.query(m.sql.replaceAll(':schema', q));
          await client.query(`INSERT INTO ${q}.migrations (id, name) VALUES ($1, $2)`, [m.id, m.name]);
          return true;
        });
        if (ran) applied.push(m.id);
      } catch (err) {
        const mapped = toDbError(err);
        if (mapped instanceof TideError) throw mapped;
        throw new TideError('TIDE_DB_MIGRATION', `Migration ${m.id} (${m.name}) failed in schema "${schema}": ${(err as Error).message}`, { cause: err });
      }
    }
  } catch (err) {
    throw toDbError(err);
  }
  return applied;
}

/**
 * Drops `schema` and everything in it, over a connection of its own that it ends: what a
 * throwaway schema (`tide plan`'s measurement, a test file's) leaves behind is nothing.
 */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
