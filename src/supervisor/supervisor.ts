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
import { freePort } from '../net/ports.js';
import { type BackoffTimings, type CrashHistory, DEFAULT_BACKOFF, NO_CRASHES, afterCrash } from './backoff.js';
import { delay, groupAlive, probe, procUsage, settleWithin, simpleArgv } from './processes.js';
import { type Replica, type Service, describeExit, replicaId, signal } from './replica.js';
import type { LogLine, PsResult, ReplicaState, ReplicaStatus, ServiceSpec, ServiceStatus, SupervisorOptions } from './types.js';

export type * from './types.js';
export { settleWithin, simpleArgv } from './processes.js';

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

  /** When `name` was last scaled by hand (ms epoch), or null (an unknown service too). */
  manualScaledAt(name: string): number | null {
    return this.services.get(name)?.manualScaledAt ?? null;
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
