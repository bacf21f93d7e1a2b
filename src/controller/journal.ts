/**
 * The decision journal: every decision of the control loop (holds and dry runs included) as a
 * row in PostgreSQL (`<schema>.decisions`, migration 0003), read back by `tide decisions` and
 * the dashboard.
 *
 * Design note: the journal owns a small pool (2 connections) so a slow listing never delays
 * the loop's inserts. Each insert is one statement; a failed insert is the caller's to report
 * (the controller logs it and keeps deciding: losing a journal row must not stop scaling).
 * Retention is a single DELETE by time, run by the controller at most once a minute.
 *
 * It also keeps each service's policy memory (`<schema>.policy_memory`, migration 0005): what
 * the decision core learned over hours (core/decider.ts `memory()`), one upserted row per
 * service, read when the controller starts.
 */
import pg from 'pg';

import type { Memory } from '../core/decider.js';
import type { Reason } from '../core/types.js';
import { toDbError } from '../db/errors.js';
import { migrate, quoteSchema } from '../db/migrate.js';
import { TideError } from '../errors.js';

/** One journal row. */
export interface JournalEntry {
  id?: string;
  /** ms epoch */
  at: number;
  service: string;
  /** The count asked of the platform before this decision. */
  current: number;
  desired: number;
  ready: number;
  /** True when the actuator was called with `desired` (and did not fail). */
  applied: boolean;
  dryRun: boolean;
  /** True when a manual scale paused autoscaling of the service. */
  paused: boolean;
  limitedBy: string | null;
  reasons: Reason[];
  /** The latest value per metric the decision saw. */
  metrics: Record<string, number>;
  /** Source and actuator failures of this round, one sentence each with its code. */
  errors: Array<{ code: string; message: string; source?: string }>;
}

export interface ListOptions {
  service?: string;
  /** Newest first; default 50. */
  limit?: number;
  /** Only rows at or after this ms epoch. */
  since?: number;
}

export interface Journal {
  insert(entry: JournalEntry): Promise<void>;
  /** Newest first. */
  list(options?: ListOptions): Promise<JournalEntry[]>;
  /** Deletes rows older than `before` (ms epoch); returns how many. */
  prune(before: number): Promise<number>;
  /** Every service's policy memory, by service. */
  loadMemory(): Promise<Record<string, Memory>>;
  /** Replaces one service's policy memory. */
  saveMemory(service: string, at: number, memory: Memory): Promise<void>;
  close(): Promise<void>;
}

interface Row {
  id: string;
  at: Date;
  service: string;
  current: number;
  desired: number;
  ready: number;
  applied: boolean;
  dry_run: boolean;
  paused: boolean;
  limited_by: string | null;
  reasons: Reason[];
  metrics: Record<string, number>;
  errors: JournalEntry['errors'];
}

function fromRow(r: Row): JournalEntry {
  return {
    id: r.id,
    at: r.at.getTime(),
    service: r.service,
    current: r.current,
    desired: r.desired,
    ready: r.ready,
    applied: r.applied,
    dryRun: r.dry_run,
    paused: r.paused,
    limitedBy: r.limited_by,
    reasons: r.reasons,
    metrics: r.metrics,
    errors: r.errors,
  };
}

/**
 * Opens the journal on `schema` (default `tide`), applying pending migrations first (they are
 * idempotent and locked, so `tide up` and `tide autoscale` may both do it).
 * @throws TideError TIDE_DB_UNAVAILABLE, TIDE_DB_MIGRATION
 */
export async function openJournal(options: { connectionString: string; schema?: string; migrate?: boolean }): Promise<Journal> {
  const schema = options.schema ?? 'tide';
  const q = quoteSchema(schema);
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2, application_name: 'tide journal' });
  // An idle client's error (the server restarted) must not crash the process; the next query reports it.
  pool.on('error', () => {});
  if (options.migrate !== false) {
    try {
      const client = await pool.connect();
      try {
        await migrate(client, schema);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => {});
      throw toDbError(err);
    }
  }
  let closed = false;
  const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> => {
    if (closed) throw new TideError('TIDE_INTERNAL', 'The decision journal is closed.');
    try {
      return await pool.query<R>(text, values);
    } catch (err) {
      throw toDbError(err);
    }
  };
  return {
    async insert(e) {
      await query(
        `INSERT INTO ${q}.decisions (at, service, current, desired, ready, applied, dry_run, paused, limited_by, reasons, metrics, errors)
         VALUES (to_timestamp($1::double precision / 1000), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [e.at, e.service, e.current, e.desired, e.ready, e.applied, e.dryRun, e.paused, e.limitedBy, JSON.stringify(e.reasons), JSON.stringify(e.metrics), JSON.stringify(e.errors)],
      );
    },
    async list(o = {}) {
      const limit = Math.max(1, Math.min(10_000, Math.floor(o.limit ?? 50)));
      const { rows } = await query<Row>(
        `SELECT id::text, at, service, current, desired, ready, applied, dry_run, paused, limited_by, reasons, metrics, errors
           FROM ${q}.decisions
          WHERE ($1::text IS NULL OR service = $1)
            AND ($2::double precision IS NULL OR at >= to_timestamp($2::double precision / 1000))
          ORDER BY at DESC, id DESC
          LIMIT $3`,
        [o.service ?? null, o.since ?? null, limit],
      );
      return rows.map(fromRow);
    },
    async prune(before) {
      const { rowCount } = await query(`DELETE FROM ${q}.decisions WHERE at < to_timestamp($1::double precision / 1000)`, [before]);
      return rowCount ?? 0;
    },
    async loadMemory() {
      const { rows } = await query<{ service: string; memory: Memory }>(`SELECT service, memory FROM ${q}.policy_memory`, []);
      return Object.fromEntries(rows.map((r) => [r.service, r.memory]));
    },
    async saveMemory(service, at, memory) {
      await query(
        `INSERT INTO ${q}.policy_memory (service, memory, updated_at) VALUES ($1, $2, to_timestamp($3::double precision / 1000))
         ON CONFLICT (service) DO UPDATE SET memory = EXCLUDED.memory, updated_at = EXCLUDED.updated_at`,
        [service, JSON.stringify(memory), at],
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
