/**
 * The local supervisor: runs each service's replicas as child processes on this machine,
 * restarts the ones that crash, scales them in and out, and rolls restarts one at a time.
 *
 * Design note. A replica moves through these states:
 *
 *   starting -> healthy -> draining -> stopped
 *       |          |
 *       +----------+--> crashed -> backoff -> starting      (exited on its own)
 *                              \-> failed                   (too many crashes in the window)
 *
 * - starting: spawned; a replica with a health path is polled until it answers 200 (then it
 *   joins its service's upstream pool, the load balancer); one without is healthy once spawned.
 * - draining: we asked it to stop. It leaves the pool first (the balancer stops sending new
 *   requests and waits for those in flight), then gets SIGTERM (workers finish or release
 *   their jobs), then SIGKILL after the service's stop grace.
 * - crashed: it exited without being asked. It leaves the pool at once (before any retry
 *   could reach it) and is restarted after a backoff (backoff.ts); too many crashes in the
 *   window mark it failed, and only that replica stays down: the rest keep running.
 *
 * Operations that change a service's replica set (scale, restart) run one at a time per
 * service (a promise chain), so a rolling restart and a scale never interleave. Shutdown
 * cancels backoff timers, drains every replica in parallel and is bounded by the stop grace;
 * every wait in it ends as soon as what it waits for has happened (a timer left pending would
 * hold the process for the whole grace after the last replica is gone). `shutdown({ now: true })`,
 * also while a drain is under way, cuts the waits short: replicas leave the balancer without
 * waiting for requests in flight, get SIGTERM then SIGINT (a worker takes a second signal as
 * "release your jobs to the queue now") and SIGKILL a moment later.
 *
 * Processes are spawned without `detached`, so a terminal's Ctrl-C reaches them as it
 * reaches us, and they are killed by pid. The exception is a `command` that needs a shell:
 * dash does not exec the last command of `sh -c`, so such a replica gets its own process
 * group and the whole group is signalled, or the real program would outlive the shell.
 * A process 'exit' hook SIGKILLs whatever is left if the supervisor exits abruptly, and node
 * replicas load orphan-guard.mjs, which stops them if the supervisor is SIGKILLed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter, setMaxListeners } from 'node:events';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

import { TideError } from '../errors.js';
import { readProcStat, USER_HZ } from '../os/proc.js';
import { type BackoffTimings, type CrashHistory, DEFAULT_BACKOFF, NO_CRASHES, afterCrash } from './backoff.js';

export type ReplicaState = 'starting' | 'healthy' | 'draining' | 'stopped' | 'crashed' | 'backoff' | 'failed';

/** Where an api service's healthy replicas are registered: the load balancer's side. */
export interface UpstreamPool {
  /** `healthy: true`: the supervisor has checked it, so it may take traffic at once. */
  addUpstream(id: string, url: string, options?: { healthy?: boolean }): unknown;
  /** Stops new requests to the upstream; resolves when the ones in flight are done. */
  removeUpstream(id: string): Promise<unknown>;
  /** The balancer's own view of an upstream (its health checks), for `tide ps`. */
  upstreamState?(id: string): BalancerView | null;
}

/**
 * An api replica as the balancer sees it: taking requests, out after failed health checks
 * (or a refused connection), or draining (no new requests, those in flight finishing).
 */
export type BalancerView = 'in-rotation' | 'out' | 'draining';

/** How to start one service's replicas: plain data, built from the config by `tide up`. */
export interface ServiceSpec {
  name: string;
  kind: 'api' | 'worker' | 'command';
  /** Program and arguments. `{port}` in an argument is replaced by the replica's port. */
  command: { file: string; args: string[] } | { shell: string };
  /** Extra environment (DATABASE_URL, TIDE_SCHEMA, WORKER_CONCURRENCY, ...). */
  env?: Record<string, string>;
  /** Give each replica a free loopback port (PORT env, `{port}`). True for api services. */
  listens?: boolean;
  /** Replica n listens on basePort + n - 1 instead of a free port the OS picks. */
  basePort?: number;
  /** Poll this path on the replica's port until 200 before calling it healthy. */
  healthPath?: string;
  replicas: number;
  min?: number;
  max?: number;
  /** SIGTERM to SIGKILL. Default 30 s. */
  stopGraceMs?: number;
  /** The balancer healthy replicas join. */
  pool?: UpstreamPool;
}

export interface SupervisorOptions {
  services: ServiceSpec[];
  /** Injectable for tests; defaults to Date.now. */
  now?: () => number;
  backoff?: Partial<BackoffTimings>;
  /** Time a replica has to pass its health check. Default 30 s. */
  startTimeoutMs?: number;
  /** Health poll period. Default 100 ms. */
  healthIntervalMs?: number;
  /** Lines kept per service for `tide logs`. Default 2000. */
  logLines?: number;
}

/** One line a replica printed. */
export interface LogLine {
  service: string;
  index: number;
  stream: 'stdout' | 'stderr' | 'tide';
  line: string;
  /** ms epoch */
  at: number;
}

/** One row of `tide ps`. */
export interface ReplicaStatus {
  id: string;
  service: string;
  index: number;
  pid: number | null;
  port: number | null;
  state: ReplicaState;
  restarts: number;
  uptimeSeconds: number | null;
  /** CPU time used (user + system) and resident memory, from /proc when there is one. */
  cpuSeconds: number | null;
  rssBytes: number | null;
  lastExit: { code: number | null; signal: string | null; at: number } | null;
  /** The balancer's view of an api replica in the pool; null when it is not in one. */
  balancer: BalancerView | null;
  /**
   * The last lines its previous process wrote to stderr before it exited on its own (why it
   * crashed or could not start); null while it has not crashed.
   */
  lastError: string[] | null;
}

export interface ServiceStatus {
  name: string;
  kind: ServiceSpec['kind'];
  desired: number;
  healthy: number;
  /**
   * An api service's replicas the balancer sends requests to; null without a balancer. A
   * replica can be healthy as a process and out of rotation (its health answers 503 while the
   * database is away, say): `unavailable` says none is taking requests, `degraded` that some are out.
   */
  inRotation: number | null;
  state: 'running' | 'starting' | 'degraded' | 'unavailable' | 'failed' | 'stopped';
  min: number;
  max: number;
  /** When a scale last changed this service (ms epoch), and whether by hand. */
  scaledAt: number | null;
  scaledBy: string | null;
  /** The last scale by hand (`tide scale`), which the autoscaler respects for a while. */
  manualScaledAt: number | null;
  /** ms epoch until which the autoscaler leaves this service alone after a manual scale; null when not paused. */
  pausedUntil: number | null;
}

export interface PsResult {
  services: ServiceStatus[];
  replicas: ReplicaStatus[];
}

interface Replica {
  service: Service;
  index: number;
  state: ReplicaState;
  child: ChildProcess | null;
  /** Signal the process group rather than the pid (shell commands). */
  group: boolean;
  /** The process group id of the last shell started (its pid). */
  groupId: number | null;
  port: number | null;
  startedAt: number;
  restarts: number;
  history: CrashHistory;
  inPool: boolean;
  /** The drain out of the balancer, once asked. */
  leaving?: Promise<unknown>;
  timer: NodeJS.Timeout | null;
  lastExit: ReplicaStatus['lastExit'];
  /** Resolves when the current process has exited. */
  exited: Promise<void>;
  /** The current process's last stderr lines (ERROR_TAIL of them); lines still arriving after its exit join it. */
  stderrTail: string[];
  /** The tail of the last process that exited on its own, and how it exited. */
  crash: { tail: string[]; exit: ReplicaStatus['lastExit'] } | null;
}

interface Service {
  spec: ServiceSpec;
  replicas: Replica[];
  desired: number;
  queue: Promise<unknown>;
  scaledAt: number | null;
  scaledBy: string | null;
  manualScaledAt: number | null;
  logs: LogLine[];
}

const KILL_WAIT_MS = 5_000;
/** After a replica's exit: how long its stdout and stderr have to be read to the end. */
const STDIO_CLOSE_WAIT_MS = 200;
/** After `shutdown({ now: true })`: how long SIGTERM + SIGINT have before SIGKILL. */
const NOW_WAIT_MS = 1_500;
/** stderr lines kept per process, shown as a crashed replica's `lastError`. */
const ERROR_TAIL = 8;
const ORPHAN_GUARD = new URL('./orphan-guard.mjs', import.meta.url).href;

/** Supervises replicas as child processes. Emits 'log' (LogLine) and 'state' (ReplicaStatus). */
export class Supervisor extends EventEmitter {
  private readonly services = new Map<string, Service>();
  private readonly now: () => number;
  private readonly timings: BackoffTimings;
  private readonly startTimeoutMs: number;
  private readonly healthIntervalMs: number;
  private readonly logLines: number;
  private stopping = false;
  /** Aborted by `shutdown({ now: true })`: every wait of a stop ends at once. */
  private readonly hurry = new AbortController();
  /**
   * Set by `tide up` with a supervised database: true while it is away (or just back). A
   * replica that keeps exiting then is restarted but not marked failed: the cause is the
   * database, and the replica must be there when it returns.
   */
  dependencyDown: (() => boolean) | undefined;
  /** Set by `tide up` when the autoscaler runs: until when a manual scale pauses it, per service (ms epoch). */
  pausedUntilOf: ((service: string) => number | null) | undefined;
  private readonly killAll = () => this.killEverything();

  constructor(options: SupervisorOptions) {
    super();
    // every replica stopping at once waits on it: one listener each, not a leak
    setMaxListeners(0, this.hurry.signal);
    this.now = options.now ?? Date.now;
    this.timings = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.healthIntervalMs = options.healthIntervalMs ?? 100;
    this.logLines = options.logLines ?? 2000;
    for (const spec of options.services) {
      this.services.set(spec.name, {
        spec,
        replicas: [],
        desired: 0,
        queue: Promise.resolve(),
        scaledAt: null,
        scaledBy: null,
        manualScaledAt: null,
        logs: [],
      });
    }
    process.on('exit', this.killAll);
  }

  /** Starts every service at its configured replica count; resolves when all are healthy. */
  async start(): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => this.scale(s.spec.name, s.spec.replicas, { by: null })));
  }

  /** The service names, in config order. */
  serviceNames(): string[] {
    return [...this.services.keys()];
  }

  /**
   * Sets a service's replica count. Scale-out resolves when the new replicas are healthy (or
   * failed); scale-in drains the highest-numbered replicas (out of the balancer, SIGTERM,
   * SIGKILL after the grace) and resolves when they have exited.
   */
  scale(name: string, replicas: number, options: { by?: string | null } = {}): Promise<ServiceStatus> {
    this.checkScale(name, replicas);
    const service = this.service(name);
    if (options.by !== null) {
      service.scaledAt = this.now();
      service.scaledBy = options.by ?? 'manual';
      if (service.scaledBy === 'manual') service.manualScaledAt = service.scaledAt;
    }
    return this.serially(service, async () => {
      service.desired = replicas;
      // failed replicas count as nothing: asking for a count asks for that many working ones
      for (const r of service.replicas.filter((x) => x.state === 'failed')) this.forget(r);
      const live = () => service.replicas.filter((r) => r.state !== 'draining' && r.state !== 'stopped');
      const add: Replica[] = [];
      while (live().length < replicas) add.push(await this.launch(service));
      const remove = live()
        .sort((a, b) => b.index - a.index)
        .slice(0, Math.max(0, live().length - replicas));
      await Promise.all([...add.map((r) => this.settled(r)), ...remove.map((r) => this.stopReplica(r))]);
      return this.serviceStatus(service);
    });
  }

  /** @throws TIDE_SUPERVISOR_UNKNOWN_SERVICE, or TIDE_SUPERVISOR_SCALE_INVALID outside min..max. */
  checkScale(name: string, replicas: number): void {
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = this.service(name).spec;
    if (!Number.isInteger(replicas) || replicas < min || replicas > max) {
      throw new TideError(
        'TIDE_SUPERVISOR_SCALE_INVALID',
        `${name} takes a whole number of replicas from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'any' : max}, not ${replicas}.`,
        { where: { field: `services.${name}.replicas` } },
      );
    }
  }

  /**
   * Rolling restart: for each current replica, start a new one, wait until it is healthy
   * (and in the balancer), then drain and stop the old one. One at a time, so capacity
   * never drops below the desired count. A new replica that does not come up stops it.
   */
  restart(name: string): Promise<ServiceStatus> {
    const service = this.service(name);
    return this.serially(service, async () => {
      for (const r of service.replicas.filter((x) => x.state === 'failed')) this.forget(r);
      const old = service.replicas.filter((r) => r.state !== 'draining' && r.state !== 'stopped');
      for (const previous of old) {
        if (this.stopping) throw stoppingError();
        const fresh = await this.launch(service);
        await this.settled(fresh);
        if (fresh.state !== 'healthy') {
          await this.stopReplica(fresh);
          throw new TideError(
            'TIDE_SUPERVISOR_REPLICA_UNHEALTHY',
            `A new ${name} replica did not become healthy; the rolling restart stopped with the old replicas still serving (see \`tide logs ${name}\`).`,
          );
        }
        await this.stopReplica(previous);
      }
      // replicas that had failed were dropped above: start their replacements too
      const live = () => service.replicas.filter((r) => r.state !== 'draining' && r.state !== 'stopped').length;
      const added: Replica[] = [];
      while (live() < service.desired) added.push(await this.launch(service));
      await Promise.all(added.map((r) => this.settled(r)));
      return this.serviceStatus(service);
    });
  }

  /** The current state of every service and replica. */
  ps(): PsResult {
    const services = [...this.services.values()];
    return {
      services: services.map((s) => this.serviceStatus(s)),
      replicas: services.flatMap((s) => s.replicas.map((r) => this.replicaStatus(r))),
    };
  }

  /** The last `tail` lines of a service (or of all services), oldest first. */
  logs(service?: string, tail = 200): LogLine[] {
    const lines = service
      ? this.service(service).logs
      : [...this.services.values()].flatMap((s) => s.logs).sort((a, b) => a.at - b.at);
    return lines.slice(Math.max(0, lines.length - tail));
  }

  /**
   * Drains and stops every replica; bounded by the services' stop grace. Idempotent.
   * `now`: no drain (also for a shutdown already under way): stop at once, workers releasing
   * their jobs in flight to the queue; SIGKILL for what has not exited after a moment.
   */
  async shutdown(options: { now?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (options.now && !this.hurry.signal.aborted) this.hurry.abort();
    this.shuttingDown ??= (async () => {
      const all = [...this.services.values()].flatMap((s) => s.replicas);
      await Promise.all(all.map((r) => this.stopReplica(r)));
      process.off('exit', this.killAll);
    })();
    await this.shuttingDown;
  }
  private shuttingDown: Promise<void> | undefined;

  // --- internals

  private service(name: string): Service {
    const service = this.services.get(name);
    if (!service) {
      throw new TideError('TIDE_SUPERVISOR_UNKNOWN_SERVICE', `There is no service "${name}"; the services are ${this.serviceNames().join(', ') || '(none)'}.`, {
        where: { field: `services.${name}` },
      });
    }
    return service;
  }

  private serially<T>(service: Service, op: () => Promise<T>): Promise<T> {
    if (this.stopping) return Promise.reject(stoppingError());
    const result = service.queue.then(op);
    service.queue = result.catch(() => undefined);
    return result;
  }

  private forget(replica: Replica): void {
    const list = replica.service.replicas;
    const at = list.indexOf(replica);
    if (at >= 0) list.splice(at, 1);
  }

  private async launch(service: Service): Promise<Replica> {
    const used = new Set(service.replicas.map((r) => r.index));
    let index = 1;
    while (used.has(index)) index++;
    const replica: Replica = {
      service,
      index,
      state: 'starting',
      child: null,
      group: false,
      groupId: null,
      port: null,
      startedAt: this.now(),
      restarts: 0,
      history: NO_CRASHES,
      inPool: false,
      timer: null,
      lastExit: null,
      exited: Promise.resolve(),
      stderrTail: [],
      crash: null,
    };
    service.replicas.push(replica);
    await this.spawnReplica(replica);
    return replica;
  }

  private async spawnReplica(replica: Replica): Promise<void> {
    const { spec } = replica.service;
    replica.port = !spec.listens ? null : spec.basePort ? spec.basePort + replica.index - 1 : await freePort();
    if (this.stopping || replica.state === 'stopped') return;
    const port = replica.port === null ? '' : String(replica.port);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...spec.env,
      TIDE_SERVICE: spec.name,
      TIDE_REPLICA: String(replica.index),
      ...(port ? { PORT: port } : {}),
    };
    let child: ChildProcess;
    if ('shell' in spec.command) {
      const argv = simpleArgv(spec.command.shell.replaceAll('{port}', port));
      replica.group = argv === undefined;
      child = argv
        ? spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('/bin/sh', ['-c', spec.command.shell.replaceAll('{port}', port)], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } else {
      const args = spec.command.args.map((a) => a.replaceAll('{port}', port));
      // node replicas watch for their parent's death (orphan-guard.mjs): a SIGKILLed supervisor leaves no replica behind
      if (spec.command.file === process.execPath) args.unshift('--import', ORPHAN_GUARD);
      child = spawn(spec.command.file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    }
    replica.child = child;
    const tail: string[] = [];
    replica.stderrTail = tail;
    if (replica.group) replica.groupId = child.pid ?? null;
    replica.startedAt = this.now();
    this.setState(replica, 'starting');
    replica.exited = new Promise<void>((resolve) => {
      let done = false;
      const finish = (code: number | null, sig: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        replica.lastExit = { code, signal: sig, at: this.now() };
        if (replica.child === child) replica.child = null;
        resolve();
        this.onExit(replica);
      };
      // its last stderr lines may still sit in the pipe when 'exit' comes: the crash report waits
      // for the pipes to close ('close'), bounded, since a grandchild may hold them open
      const closed = new Promise<void>((r) => child.once('close', () => r()));
      child.once('exit', (code, sig) => void settleWithin(closed, STDIO_CLOSE_WAIT_MS).then(() => finish(code, sig)));
      child.once('error', (err) => {
        this.record(replica, 'tide', `cannot start: ${err.message}`);
        replica.stderrTail.push(`cannot start: ${err.message}`);
        // a spawn failure (ENOENT) has no process and may never emit 'exit'
        if (child.pid === undefined) finish(null, null);
      });
    });
    for (const [stream, readable] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      if (!readable) continue;
      createInterface({ input: readable, crlfDelay: Infinity }).on('line', (line) => {
        if (stream === 'stderr') {
          tail.push(line);
          if (tail.length > ERROR_TAIL) tail.shift();
        }
        this.record(replica, stream, line);
      });
    }
    if (spec.healthPath && replica.port !== null) void this.awaitHealthy(replica, child);
    else child.once('spawn', () => replica.child === child && replica.state === 'starting' && this.becameHealthy(replica));
  }

  private async awaitHealthy(replica: Replica, child: ChildProcess): Promise<void> {
    const url = `http://127.0.0.1:${replica.port}${replica.service.spec.healthPath}`;
    const deadline = this.now() + this.startTimeoutMs;
    // A program spawned as itself (not a shell command, which may be a wrapper) must be the one
    // answering: between freePort() and the replica's listen, another process can take the port.
    const pid = 'file' in replica.service.spec.command ? child.pid : undefined;
    while (replica.child === child && replica.state === 'starting') {
      if (await probe(url, pid)) {
        if (replica.child === child && replica.state === 'starting') this.becameHealthy(replica);
        return;
      }
      if (this.now() > deadline) {
        this.record(replica, 'tide', `no healthy answer from ${url} within ${this.startTimeoutMs} ms; killing it`);
        signal(replica, 'SIGKILL');
        return;
      }
      await delay(this.healthIntervalMs);
    }
  }

  private becameHealthy(replica: Replica): void {
    const { pool } = replica.service.spec;
    if (pool && replica.port !== null) {
      pool.addUpstream(replicaId(replica), `http://127.0.0.1:${replica.port}`, { healthy: true });
      replica.inPool = true;
    }
    this.setState(replica, 'healthy');
  }

  private onExit(replica: Replica): void {
    this.leavePool(replica);
    if (replica.state === 'draining' || replica.state === 'stopped' || this.stopping) {
      this.record(replica, 'tide', `stopped (${describeExit(replica.lastExit)})`);
      this.setState(replica, 'stopped');
      return;
    }
    const exit = replica.lastExit;
    // the reason it gave, for `tide ps` and `tide up -d` (read to the end unless a grandchild
    // holds the pipe: the tail is kept by reference, so any later lines join it)
    replica.crash = { tail: replica.stderrTail, exit };
    this.setState(replica, 'crashed');
    this.record(replica, 'tide', `exited (${describeExit(exit)})`);
    let verdict = afterCrash(replica.history, replica.startedAt, this.now(), this.timings);
    replica.history = verdict.history;
    if (verdict.action === 'fail' && this.dependencyDown?.()) {
      this.record(replica, 'tide', `crashed ${verdict.history.recent.length} times within ${this.timings.failWindowMs} ms, while the database was away: not marked failed`);
      verdict = { action: 'restart', delayMs: this.timings.maxMs, history: verdict.history };
    }
    if (verdict.action === 'fail') {
      this.record(replica, 'tide', `crashed ${verdict.history.recent.length} times within ${this.timings.failWindowMs} ms: marked failed, not restarting`);
      this.setState(replica, 'failed');
      return;
    }
    this.record(replica, 'tide', `restarting in ${verdict.delayMs} ms`);
    this.setState(replica, 'backoff');
    replica.timer = setTimeout(() => {
      replica.timer = null;
      if (this.stopping || replica.state !== 'backoff') return;
      replica.restarts++;
      void this.spawnReplica(replica);
    }, verdict.delayMs);
  }

  private leavePool(replica: Replica): Promise<unknown> {
    const { pool } = replica.service.spec;
    if (!pool || !replica.inPool) return Promise.resolve();
    replica.inPool = false;
    const leaving = Promise.resolve(pool.removeUpstream(replicaId(replica))).catch(() => undefined);
    replica.leaving = leaving;
    return leaving;
  }

  /** Resolves when a starting replica is healthy, failed, or gone. */
  private settled(replica: Replica): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (replica.state === 'healthy' || replica.state === 'failed' || replica.state === 'stopped' || this.stopping) {
          this.off('state', onState);
          resolve();
        }
      };
      const onState = (s: ReplicaStatus) => s.id === replicaId(replica) && check();
      this.on('state', onState);
      check();
    });
  }

  /** Drain, SIGTERM, SIGKILL after the grace; resolves when the process is gone. */
  private async stopReplica(replica: Replica): Promise<void> {
    if (replica.timer) clearTimeout(replica.timer), (replica.timer = null);
    if (replica.state === 'stopped') return void this.forget(replica);
    if (!replica.child) {
      this.setState(replica, 'stopped');
      this.forget(replica);
      return;
    }
    const wasDraining = replica.state === 'draining';
    this.setState(replica, 'draining');
    const hurry = this.hurry.signal;
    if (!wasDraining) {
      const grace = replica.service.spec.stopGraceMs ?? 30_000;
      // out of the balancer first: with `now`, without waiting for the requests in flight
      void this.leavePool(replica);
      await settleWithin(this.poolLeft(replica), grace, hurry);
      signal(replica, 'SIGTERM');
      let exited = await settleWithin(replica.exited, grace, hurry);
      if (!exited && hurry.aborted) {
        // a worker's second signal releases its jobs in flight to the queue at once
        signal(replica, 'SIGINT');
        exited = await settleWithin(replica.exited, NOW_WAIT_MS);
      }
      if (!exited) {
        this.record(replica, 'tide', hurry.aborted ? 'still running after a stop now; sending SIGKILL' : `still running ${grace} ms after SIGTERM; sending SIGKILL`);
        signal(replica, 'SIGKILL');
      }
    }
    await settleWithin(replica.exited, KILL_WAIT_MS);
    if (replica.group) await this.reapGroup(replica);
    this.setState(replica, 'stopped');
    this.forget(replica);
  }

  /** Resolves when the replica's drain out of the balancer has finished (at once when not in one). */
  private poolLeft(replica: Replica): Promise<unknown> {
    return replica.leaving ?? Promise.resolve();
  }

  /** The shell is gone; wait for the rest of its process group, then kill what is left. */
  private async reapGroup(replica: Replica): Promise<void> {
    const pid = replica.lastExit ? replica.groupId : null;
    if (!pid) return;
    const deadline = this.now() + (replica.service.spec.stopGraceMs ?? 30_000);
    while (groupAlive(pid) && this.now() < deadline && !this.hurry.signal.aborted) await delay(50);
    if (groupAlive(pid)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }

  private setState(replica: Replica, state: ReplicaState): void {
    if (replica.state === state && state !== 'starting') return;
    replica.state = state;
    this.emit('state', this.replicaStatus(replica));
  }

  private record(replica: Replica, stream: LogLine['stream'], line: string): void {
    const entry: LogLine = { service: replica.service.spec.name, index: replica.index, stream, line, at: this.now() };
    const { logs } = replica.service;
    logs.push(entry);
    if (logs.length > this.logLines) logs.splice(0, logs.length - this.logLines);
    this.emit('log', entry);
  }

  private serviceStatus(service: Service): ServiceStatus {
    const live = service.replicas.filter((r) => r.state !== 'stopped' && r.state !== 'draining');
    const healthy = live.filter((r) => r.state === 'healthy').length;
    const failed = live.filter((r) => r.state === 'failed').length;
    const pool = service.spec.pool;
    const views = pool?.upstreamState ? live.filter((r) => r.inPool).map((r) => pool.upstreamState!(replicaId(r))) : null;
    const inRotation = views ? views.filter((v) => v === 'in-rotation').length : null;
    const outOfRotation = views ? views.length - (inRotation ?? 0) : 0;
    const state: ServiceStatus['state'] =
      service.desired === 0 && live.length === 0
        ? 'stopped'
        : failed > 0 && failed === live.length
          ? 'failed'
          : healthy > 0 && inRotation === 0
            ? 'unavailable'
            : healthy >= service.desired && outOfRotation === 0
              ? 'running'
              : failed > 0 || outOfRotation > 0 || live.some((r) => r.state === 'backoff' || r.state === 'crashed')
                ? 'degraded'
                : 'starting';
    return {
      name: service.spec.name,
      kind: service.spec.kind,
      desired: service.desired,
      healthy,
      inRotation,
      state,
      min: service.spec.min ?? 0,
      max: service.spec.max ?? service.spec.replicas,
      scaledAt: service.scaledAt,
      scaledBy: service.scaledBy,
      manualScaledAt: service.manualScaledAt,
      pausedUntil: this.pausedUntilOf?.(service.spec.name) ?? null,
    };
  }

  private replicaStatus(replica: Replica): ReplicaStatus {
    const pid = replica.child?.pid ?? null;
    const usage = pid === null ? undefined : procUsage(pid);
    return {
      id: replicaId(replica),
      service: replica.service.spec.name,
      index: replica.index,
      pid,
      port: replica.port,
      state: replica.state,
      restarts: replica.restarts,
      uptimeSeconds: pid === null ? null : Math.max(0, Math.round((this.now() - replica.startedAt) / 100) / 10),
      cpuSeconds: usage?.cpuSeconds ?? null,
      rssBytes: usage?.rssBytes ?? null,
      lastExit: replica.lastExit,
      balancer: replica.inPool ? (replica.service.spec.pool?.upstreamState?.(replicaId(replica)) ?? null) : null,
      lastError: !replica.crash ? null : replica.crash.tail.length > 0 ? [...replica.crash.tail] : [`exited (${describeExit(replica.crash.exit)}) without a word on stderr`],
    };
  }

  private killEverything(): void {
    for (const service of this.services.values()) for (const r of service.replicas) signal(r, 'SIGKILL');
  }
}

function stoppingError(): TideError {
  return new TideError('TIDE_SUPERVISOR_STOPPING', 'The supervisor is shutting down.');
}

function describeExit(exit: ReplicaStatus['lastExit']): string {
  if (!exit) return 'no exit status';
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code ?? '?'}`;
}

function replicaId(replica: Replica): string {
  return `${replica.service.spec.name}.${replica.index}`;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(replica: Replica, sig: NodeJS.Signals): void {
  const pid = replica.group ? replica.groupId : replica.child?.pid;
  if (pid === undefined || pid === null) return;
  try {
    process.kill(replica.group ? -pid : pid, sig);
  } catch {
    // already gone
  }
}

/** argv for a command with no shell syntax (so it runs without a shell); undefined otherwise. */
export function simpleArgv(command: string): string[] | undefined {
  if (/[^\w\s./=:@%+,-]/.test(command)) return undefined;
  const argv = command.trim().split(/\s+/);
  // `FOO=1 node x` sets a variable: leave that to the shell
  if (argv.length === 0 || argv[0] === '' || argv[0]!.includes('=')) return undefined;
  return argv;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True once `promise` settles within `ms`, false when the time runs out or `cut` aborts first.
 * The timer is cleared either way: a stop must not leave a grace timer holding the process.
 */
export function settleWithin(promise: Promise<unknown>, ms: number, cut?: AbortSignal): Promise<boolean> {
  if (cut?.aborted) return Promise.race([promise.then(() => true, () => true), Promise.resolve(false)]);
  return new Promise((resolve) => {
    const done = (settled: boolean) => {
      clearTimeout(timer);
      cut?.removeEventListener('abort', onCut);
      resolve(settled);
    };
    const onCut = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    cut?.addEventListener('abort', onCut, { once: true });
    promise.then(() => done(true), () => done(true));
  });
}

/**
 * Whether `url` answers 200, and, given `pid`, that the answer is that process's: a health body
 * naming another pid (as the API's does) comes from whatever else holds the port.
 */
async function probe(url: string, pid?: number): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    const text = await res.text().catch(() => '');
    if (res.status !== 200) return false;
    if (pid === undefined) return true;
    const named = answeredPid(text);
    return named === undefined || named === pid;
  } catch {
    return false;
  }
}

/** The `pid` a JSON health body names, if any. */
function answeredPid(text: string): number | undefined {
  try {
    const pid = (JSON.parse(text) as { pid?: unknown } | null)?.pid;
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined; // not JSON: nothing to check
  }
}

/** A free loopback port (the OS picks; a race with another process is possible but rare). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const PAGE_SIZE = 4096;

/** CPU seconds and RSS from /proc (Linux); undefined where there is no /proc. */
function procUsage(pid: number): { cpuSeconds: number; rssBytes: number } | undefined {
  const stat = readProcStat(pid);
  return stat && { cpuSeconds: Math.round((stat.ticks / USER_HZ) * 100) / 100, rssBytes: stat.rssPages * PAGE_SIZE };
}
