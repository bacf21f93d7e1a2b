/**
 * The embedded PostgreSQL as a supervised component of `tide up`: its death (an OOM kill, a
 * SIGKILL) is noticed within a second and it is started again on the same port and data
 * directory, where PostgreSQL's own crash recovery replays its WAL, so every job accepted
 * before the crash is still there. The replicas reconnect by themselves (their pools retry;
 * the API answers 503 + Retry-After meanwhile, and the balancer takes it out of rotation
 * until its health answers again).
 *
 * Design note. States:
 *
 *   running --postmaster gone--> down --backoff--> restarting --started--> running
 *                                  ^                     |
 *                                  +-----start failed----+
 *                                  \--> failed            (too many crashes in the window, as a replica)
 *   any --stop()--> stopped
 *
 * The server is detached (`pg_ctl start`), so it is no child of ours and sends no 'exit':
 * the watch polls its postmaster pid (signal 0; EPERM means alive, another user's). The
 * restart rules are the replicas' (backoff.ts: doubling delays, failed after too many crashes
 * within the window). A server this process did not start (reused from another `tide`, or a
 * DATABASE_URL) is not watched: its owner supervises it.
 */
import { EventEmitter } from 'node:events';

import type { EmbeddedDatabase } from '../db/embedded.js';
import { processAlive } from '../os/proc.js';
import { type BackoffTimings, type CrashHistory, NO_CRASHES, afterCrash } from './backoff.js';

export type DatabaseState = 'running' | 'down' | 'restarting' | 'failed' | 'stopped';

/** The database in `tide ps`, the dashboard and `tide doctor`. */
export interface DatabaseStatus {
  /** `embedded`: started by this `tide up` and supervised; `external`: a URL (or another process's server), not supervised. */
  kind: 'embedded' | 'external';
  supervised: boolean;
  /** null when not supervised (its state is not ours to know). */
  state: DatabaseState | null;
  pid: number | null;
  port: number | null;
  /** Restarts after a crash since `tide up` started. */
  restarts: number;
  /** When the state last changed (ms epoch). */
  since: number;
  /** The last crash: when it was noticed, and the downtime until it accepted connections again (null while down). */
  lastCrash: { at: number; downMs: number | null } | null;
  /** Why the last restart attempt failed, when it did. */
  lastError: string | null;
}

export interface DatabaseWatchOptions {
  /** The server as started. */
  server: EmbeddedDatabase;
  /** Starts it again on the same port and data directory (startEmbeddedPostgres with that port). */
  restart: () => Promise<EmbeddedDatabase>;
  log: (line: string) => void;
  backoff?: Partial<BackoffTimings>;
  /** How often the postmaster is looked for. Default 500 ms. */
  checkMs?: number;
  now?: () => number;
}

/** The database restart rules: like a replica's, a little slower to start (crash recovery). */
export const DATABASE_BACKOFF: BackoffTimings = {
  initialMs: 250,
  maxMs: 10_000,
  resetAfterMs: 30_000,
  failAfter: 5,
  failWindowMs: 60_000,
};

/** Emits 'state' (DatabaseStatus) on every change. */
export class DatabaseWatch extends EventEmitter {
  private server: EmbeddedDatabase;
  private readonly options: DatabaseWatchOptions;
  private readonly timings: BackoffTimings;
  private readonly now: () => number;
  private state: DatabaseState = 'running';
  private since: number;
  private startedAt: number;
  private history: CrashHistory = NO_CRASHES;
  private restarts = 0;
  private lastCrash: DatabaseStatus['lastCrash'] = null;
  private lastError: string | null = null;
  private poll: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null = null;
  private restarting: Promise<void> | null = null;

  constructor(options: DatabaseWatchOptions) {
    super();
    this.options = options;
    this.server = options.server;
    this.timings = { ...DATABASE_BACKOFF, ...options.backoff };
    this.now = options.now ?? Date.now;
    this.since = this.startedAt = this.now();
    // kept referenced: watching is work of `tide up` until stop()
    this.poll = setInterval(() => this.check(), options.checkMs ?? 500);
  }

  /** The server's data directory. */
  get dataDir(): string {
    return this.server.dataDir;
  }

  status(): DatabaseStatus {
    return {
      kind: 'embedded',
      supervised: true,
      state: this.state,
      pid: this.state === 'running' ? this.server.pid : null,
      port: this.server.port,
      restarts: this.restarts,
      since: this.since,
      lastCrash: this.lastCrash,
      lastError: this.lastError,
    };
  }

  /** Stops watching, waits for a restart under way, and stops the server. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.setState('stopped');
    if (this.poll) clearInterval(this.poll), (this.poll = null);
    if (this.timer) clearTimeout(this.timer), (this.timer = null);
    await this.restarting?.catch(() => undefined);
    await this.server.stop();
  }

  private check(): void {
    if (this.state !== 'running') return;
    if (this.server.pid === null || processAlive(this.server.pid)) return;
    this.crashed(`the embedded PostgreSQL (pid ${this.server.pid}) is gone`);
  }

  private crashed(what: string): void {
    const at = this.now();
    if (this.lastCrash === null || this.lastCrash.downMs !== null) this.lastCrash = { at, downMs: null };
    const verdict = afterCrash(this.history, this.startedAt, at, this.timings);
    this.history = verdict.history;
    if (verdict.action === 'fail') {
      this.options.log(`${what}: it went down ${verdict.history.recent.length} times within ${this.timings.failWindowMs / 1000} s; marked failed, not restarting (\`tide down\` then \`tide up\` tries again)`);
      this.setState('failed');
      return;
    }
    this.options.log(`${what}; restarting it on port ${this.server.port} in ${verdict.delayMs} ms (crash recovery keeps every committed job)`);
    this.setState('down');
    this.timer = setTimeout(() => {
      this.timer = null;
      this.restarting = this.restartNow().finally(() => (this.restarting = null));
    }, verdict.delayMs);
  }

  private async restartNow(): Promise<void> {
    if (this.state !== 'down') return;
    this.setState('restarting');
    this.startedAt = this.now();
    try {
      const server = await this.options.restart();
      this.server = server;
      this.restarts++;
      this.lastError = null;
      if (this.lastCrash) this.lastCrash = { at: this.lastCrash.at, downMs: this.now() - this.lastCrash.at };
      // a stop() while it was starting: the new server must not outlive us
      if ((this.state as DatabaseState) === 'stopped') return void (await server.stop());
      this.options.log(`the embedded PostgreSQL is back on port ${server.port} (pid ${server.pid ?? '?'}), ${((this.lastCrash?.downMs ?? 0) / 1000).toFixed(1)} s after it went down; the replicas reconnect by themselves`);
      this.setState('running');
    } catch (err) {
      if ((this.state as DatabaseState) === 'stopped') return;
      this.lastError = err instanceof Error ? err.message : String(err);
      this.crashed(`the embedded PostgreSQL did not start again (${this.lastError})`);
    }
  }

  private setState(state: DatabaseState): void {
    if (this.state === state) return;
    this.state = state;
    this.since = this.now();
    this.emit('state', this.status());
  }
}

/** The status of a database this process does not supervise. */
export function externalDatabase(now: number): DatabaseStatus {
  return { kind: 'external', supervised: false, state: null, pid: null, port: null, restarts: 0, since: now, lastCrash: null, lastError: null };
}
