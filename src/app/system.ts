/**
 * The whole local system behind `tide up` and `tide demo`: the database, its migrations, the
 * load balancer, the replicas under the supervisor, and the control API.
 *
 * Design note: the order matters both ways. Start: database -> migrations (once, here, so
 * replicas never race to migrate) -> balancer -> control API (so `tide ps` answers while
 * replicas start) -> replicas. Stop: replicas drain (api replicas leave the balancer first,
 * workers finish or release their jobs) -> balancer -> control API -> the embedded database,
 * and only if this process started it. Stop is idempotent and bounded: past the longest stop
 * grace plus a margin, what is left is killed. `stop(reason, { now: true })`, also during a
 * stop under way, skips the drains (workers release their jobs in flight to the queue). A stop
 * asked while starting (a `tide down` right after `tide up -d`, replicas still crash-looping)
 * ends the start too: nothing more is started after it, the autoscaler included.
 *
 * The embedded database, when this process started it, is supervised (database.ts): restarted
 * on its port after a crash, its state in `GET /v1/ps` and the dashboard.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { TideConfig } from '../config/schema.js';
import type { RunningController } from '../controller/start.js';
import type { Dashboard } from '../dashboard/server.js';
import { TideError } from '../errors.js';
import type { Balancer } from '../balancer/balancer.js';
import type { BackoffTimings } from '../supervisor/backoff.js';
import { connectControl, readControlState, removeControlState, writeControlState } from './client.js';
import { type ControlServer, startControl } from './control.js';
import { type DatabaseStatus, DatabaseWatch, externalDatabase } from '../supervisor/database.js';
import { type LogLine, type ServiceSpec, Supervisor } from '../supervisor/supervisor.js';

const TIDE_BIN = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));

export interface SystemOptions {
  /** Relative paths in the config (state_dir, handlers) resolve from here. */
  configDir: string;
  /** Progress lines (database, balancer, control). */
  log: (line: string) => void;
  /** Every replica's output line, from the first one on. */
  onLog?: (line: LogLine) => void;
  /** Extra environment for every replica (the demo's settings). */
  env?: Record<string, string>;
  backoff?: Partial<BackoffTimings>;
  /** Write `<state_dir>/control.json` (not for the demo's private runs). Default true. */
  writeState?: boolean;
  /** Extra arguments for `tide api` / `tide worker` replicas. */
  apiArgs?: string[];
  workerArgs?: string[];
  /** Sample for the dashboard from the start (`tide up`), not only once a page is open. */
  dashboardEager?: boolean;
  /** Start the embedded PostgreSQL even when DATABASE_URL is set (a chaos scenario that kills it). */
  embeddedDatabase?: boolean;
  /** Run the autoscaler for services with a `scale:` block. Default true; a test driving its own controller turns it off. */
  autoscaler?: boolean;
}

export interface RunningSystem {
  supervisor: Supervisor;
  balancer: Balancer | undefined;
  control: ControlServer;
  /** Served by the control API at `${control.url}/dashboard/`; attach the autoscaler to it. */
  dashboard: Dashboard;
  databaseUrl: string;
  embedded: boolean;
  schema: string;
  stateDir: string;
  /** The autoscaler (every service with a `scale:` block); absent with `autoscaler: false`. */
  autoscaler: RunningController | undefined;
  /** The database's state (supervised when embedded and started here). */
  database(): DatabaseStatus;
  /** The watch over the embedded database this process started; absent otherwise. */
  databaseWatch: DatabaseWatch | undefined;
  /** Stops everything (idempotent); resolves when it has. `now`: no drains, also for a stop under way. */
  stop(reason?: string, options?: { now?: boolean }): Promise<void>;
  /** Resolves once stop() has finished (after `tide down`, say). */
  stopped: Promise<void>;
}

/** Starts the system for a config. On failure, whatever had started is stopped again. */
export async function startSystem(config: TideConfig, options: SystemOptions): Promise<RunningSystem> {
  const { log } = options;
  const stateDir = path.resolve(options.configDir, config.stateDir);
  const writeState = options.writeState ?? true;
  if (writeState) await refuseSecondUp(stateDir);

  const cleanups: Array<() => Promise<unknown>> = [];
  const unwind = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    const { resolveDatabase } = await import('../db/connect.js');
    const database = await resolveDatabase({
      stateDir,
      ...(config.database.url ? { url: config.database.url, source: 'database.url' } : options.embeddedDatabase ? { url: '' } : {}),
      log,
    });
    const server = database.server;
    const watch = server?.owned
      ? new DatabaseWatch({
          server,
          restart: async () => (await import('../db/embedded.js')).startEmbeddedPostgres({ stateDir, port: server.port, log: (line) => log(`database: ${line}`) }),
          log: (line) => log(`database: ${line}`),
        })
      : undefined;
    const databaseStatus = (): DatabaseStatus => watch?.status() ?? { ...externalDatabase(Date.now()), ...(server ? { pid: server.pid, port: server.port } : {}) };
    cleanups.push(() => (watch ?? database).stop());
    const schema = config.database.schema;
    // connections at max replicas against what the database accepts: refuse before scaling into "too many connections"
    const { checkConnectionBudget } = await import('../db/budget-live.js');
    await checkConnectionBudget(Object.values(config.services), { url: database.url, pooler: config.database.pooler, directUrl: config.database.directUrl, maxConnections: config.database.maxConnections, log });
    const { createPostgresQueue } = await import('../runtime/queue/postgres.js');
    const queue = await createPostgresQueue({ connectionString: database.url, schema, poolSize: 1, pooler: config.database.pooler, ...(config.database.directUrl ? { directUrl: config.database.directUrl } : {}) });
    await queue.close();

    const apis = Object.values(config.services).filter((s) => s.kind === 'api');
    let balancer: Balancer | undefined;
    if (apis.length > 0) {
      const { createBalancer } = await import('../balancer/balancer.js');
      const b = config.balancer;
      balancer = await createBalancer({
        host: b.host,
        port: b.port,
        healthPath: apis[0]!.healthPath,
        healthCheck: b.healthCheck,
        retries: b.retries,
        ...(b.rateLimit ? { rateLimit: { ratePerSecond: b.rateLimit.ratePerSecond, burst: b.rateLimit.burst } } : {}),
        trust: { trustedProxies: b.trustedProxies, forwardedHeader: b.forwardedHeader },
        log: (line) => log(`balancer: ${line}`),
      });
      cleanups.push(() => balancer!.close());
    }

    // request logs of every health check would drown the replicas' output; LOG_LEVEL=info brings them back
    const baseEnv = {
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      DATABASE_URL: database.url,
      TIDE_SCHEMA: schema,
      // `auto` leaves the replicas to detect (or to the environment's TIDE_DB_POOLER)
      ...(config.database.pooler === 'auto' ? {} : { TIDE_DB_POOLER: config.database.pooler }),
      ...(config.database.directUrl ? { DATABASE_DIRECT_URL: config.database.directUrl } : {}),
      ...options.env,
    };
    const specs = Object.values(config.services).map((s): ServiceSpec => {
      const common = {
        name: s.name,
        replicas: s.replicas,
        min: s.min,
        max: s.max,
        stopGraceMs: s.stopGraceSeconds * 1000,
        ...(s.port ? { basePort: s.port } : {}),
      };
      const env = { ...baseEnv, ...(s.poolSize ? { TIDE_DB_POOL_SIZE: String(s.poolSize) } : {}), ...s.env };
      if (s.kind === 'api') {
        return {
          ...common,
          kind: 'api',
          // per-client rate limits belong to the balancer, which sees the clients; behind it
          // every request would come from 127.0.0.1 and share one bucket
          command: { file: process.execPath, args: [TIDE_BIN, 'api', '--port', '{port}', '--host', '127.0.0.1', '--schema', schema, '--rate-limit', '0', ...(options.apiArgs ?? [])] },
          env,
          listens: true,
          healthPath: s.healthPath,
          ...(balancer ? { pool: balancer } : {}),
        };
      }
      if (s.kind === 'worker') {
        // the worker's own grace ends before the supervisor's SIGKILL, so it can release its jobs
        const grace = Math.max(0, s.stopGraceSeconds - Math.min(2, s.stopGraceSeconds * 0.2));
        return {
          ...common,
          kind: 'worker',
          command: {
            file: process.execPath,
            args: [
              TIDE_BIN, 'worker', '--schema', schema, '--concurrency', String(s.concurrency ?? 10), '--grace', String(grace), '--metrics-port', '{port}',
              ...(s.handlers ? ['--handlers', path.resolve(options.configDir, s.handlers)] : []),
              ...(s.queues ? ['--queues', s.queues.join(',')] : []),
              ...(options.workerArgs ?? []),
            ],
          },
          env: { ...env, WORKER_CONCURRENCY: String(s.concurrency ?? 10) },
          listens: true,
          healthPath: '/health',
        };
      }
      return { ...common, kind: 'command', command: { shell: s.command ?? 'false' }, env, listens: true };
    });

    const supervisor = new Supervisor({ services: specs, ...(options.backoff ? { backoff: options.backoff } : {}) });
    if (watch) {
      // replicas that exit while the database is away (or within 10 s of its return, while their pools find it again) are not failed for it
      supervisor.dependencyDown = () => {
        const db = watch.status();
        const backAt = db.lastCrash ? db.lastCrash.at + (db.lastCrash.downMs ?? Number.POSITIVE_INFINITY) : Number.NEGATIVE_INFINITY;
        return db.state !== 'running' || Date.now() - backAt < 10_000;
      };
    }
    if (options.onLog) supervisor.on('log', options.onLog);
    cleanups.push(() => supervisor.shutdown());

    let resolveStopped!: () => void;
    const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
    let stopping: Promise<void> | undefined;
    let autoscaler: RunningController | undefined;
    const maxGraceMs = Math.max(0, ...specs.map((s) => s.stopGraceMs ?? 30_000));
    const stop = (reason?: string, stopOptions: { now?: boolean } = {}): Promise<void> => {
      if (stopping) {
        // a second Ctrl-C, or `tide down --now` during a drain: cut it short
        if (stopOptions.now) log(`stopping now${reason ? ` (${reason})` : ''}: no more draining; workers release their jobs in flight`), void supervisor.shutdown({ now: true });
        return stopping;
      }
      stopping = (async () => {
        log(stopOptions.now ? `stopping now${reason ? ` (${reason})` : ''}: workers release their jobs in flight` : `stopping${reason ? ` (${reason})` : ''}: draining the replicas (again, or \`tide down --now\`, to stop at once)`);
        // first, so the autoscaler cannot scale while everything drains
        await autoscaler?.stop().catch(() => undefined);
        let bound: NodeJS.Timeout | undefined;
        const bounded = new Promise<void>((resolve) => (bound = setTimeout(resolve, maxGraceMs + 10_000)));
        await Promise.race([supervisor.shutdown(stopOptions), bounded]);
        clearTimeout(bound);
        cleanups.length = 0;
        await balancer?.close().catch(() => undefined);
        await dashboard.close().catch(() => undefined);
        await control.close().catch(() => undefined);
        if (writeState) await removeControlState(stateDir).catch(() => undefined);
        if (database.embedded) log('stopping the embedded database');
        await (watch ?? database).stop().catch((err: unknown) => log(`the database did not stop cleanly: ${String(err)}`));
        log('stopped');
        resolveStopped();
      })();
      return stopping;
    };

    const [{ createDashboard }, { redactUrl }] = await Promise.all([import('../dashboard/server.js'), import('../dashboard/snapshot.js')]);
    const dashboard = createDashboard({
      supervisor,
      balancer,
      openQueue: () => createPostgresQueue({ connectionString: database.url, schema, poolSize: 1 }),
      database: databaseStatus,
      info: () => ({ project: config.project, balancer: balancer?.url ?? null, database: redactUrl(database.url) }),
      eager: options.dashboardEager ?? false,
      log,
    });
    cleanups.push(() => dashboard.close());

    const token = config.control.token ?? process.env.TIDE_CONTROL_TOKEN;
    const control = await startControl({
      target: supervisor,
      host: config.control.host,
      port: config.control.port,
      token,
      project: config.project,
      onDown: (down) => void stop(down.now ? 'tide down --now' : 'tide down', down),
      info: () => ({
        project: config.project,
        pid: process.pid,
        balancer: balancer?.url ?? null,
        database: { embedded: database.embedded, schema, ...databaseStatus() },
        autoscaler: autoscaler?.status() ?? [],
      }),
      mount: (req, res, url, access) => dashboard.handle(req, res, url, access),
      metrics: async () => {
        const registry = autoscaler?.controller.registry;
        return registry ? { contentType: registry.contentType, text: await registry.metrics() } : undefined;
      },
    });
    cleanups.push(() => control.close());
    if (writeState) {
      await writeControlState(stateDir, { url: control.url, pid: process.pid, startedAt: Date.now(), project: config.project, ...(balancer ? { balancer: balancer.url } : {}) });
      cleanups.push(() => removeControlState(stateDir));
    }
    log(`control API on ${control.url}${balancer ? `, load balancer on ${balancer.url}` : ''}`);

    await supervisor.start();
    // no journal connection at all for a project without a `scale:` block, nor once a stop
    // was asked while the replicas started (it would hold connections after everything stopped)
    if (!stopping && options.autoscaler !== false && Object.values(config.services).some((s) => s.scale)) {
      const { startController } = await import('../controller/start.js');
      const running = await startController({ config, databaseUrl: database.url, supervisor, log: (line) => log(`autoscaler: ${line}`) });
      autoscaler = running;
      // asked to stop while the controller started: the stop did not see it, so stop it here
      if (stopping) await running.stop().catch(() => undefined);
      dashboard.attachAutoscaler(running);
      cleanups.push(() => running.stop());
      supervisor.pausedUntilOf = (name) => running.status().find((s) => s.service === name)?.pausedUntil ?? null;
    }
    return {
      supervisor,
      balancer,
      control,
      dashboard,
      autoscaler,
      databaseUrl: database.url,
      embedded: database.embedded,
      schema,
      stateDir,
      database: databaseStatus,
      databaseWatch: watch,
      stop,
      stopped,
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** A second `tide up` on the same state directory would fight over ports and the database. */
async function refuseSecondUp(stateDir: string): Promise<void> {
  const state = await readControlState(stateDir);
  if (!state) return;
  try {
    const client = await connectControl({ stateDir });
    await client.request('GET', '/v1/ps');
  } catch (err) {
    // unauthorized still means it answers
    if (!(err instanceof TideError && err.code === 'TIDE_CONTROL_UNAUTHORIZED')) return;
  }
  throw new TideError('TIDE_SUPERVISOR_ALREADY_RUNNING', `\`tide up\` already runs for this project (pid ${state.pid}, control ${state.url}); \`tide down\` stops it.`);
}
