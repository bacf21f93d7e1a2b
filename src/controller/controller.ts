/**
 * The live control loop: sources -> decide() -> actuator, for every autoscaled service.
 *
 * Its parts: one service's round (read, decide, record, hand to the apply queue) in
 * service-round.ts; its actuator calls, one at a time with retries, in apply-queue.ts; the
 * decision core across rounds in core/decider.ts, which the simulator runs too. Here: the
 * timers and the urgent trigger.
 *
 * Scheduling: a timer per `intervalMs` runs a round of every service (`tick(now)`, which the
 * unit tests drive), the first `intervalMs` after start (as the simulator does: a round at start
 * has one counter point and so no rate; a backlog already late at start gets the urgent round at
 * the first poll), the next starting `intervalMs` after the last started; plus an urgent poll
 * every `urgentPollMs` of the oldest job's age (a cheap source, for services with an SLO policy)
 * that runs a round at once when the age crosses the policy's wait, once per crossing. Both use
 * the injected Clock, so tests advance time by hand.
 */
import { EventEmitter } from 'node:events';

import { Registry } from 'prom-client';

import { type Clock, systemClock } from '../clock.js';
import { ROUND_SCHEDULE } from '../core/decider.js';
import { urgentWaitSeconds } from '../core/slo.js';
import { METRIC } from '../core/types.js';
import { TideError, errorFacts } from '../errors.js';
import { DEFAULT_RETRY } from './apply-queue.js';
import type { Memory } from '../core/decider.js';
import type { Journal } from './journal.js';
import { type ControllerMetrics, controllerMetrics } from './metrics.js';
import { type RoundEnv, ServiceRound } from './service-round.js';
import type { ControllerOptions, DecisionRecord, ServiceControlStatus } from './types.js';

export type * from './types.js';

/**
 * The control loop. Construct, then `start()` for the timers, or call `tick()` directly.
 * Emits 'decision' (DecisionRecord) after each round's journal row, 'tick' after a full round, 'applied'
 * ({service, replicas}) and 'actuator-error' ({service, error: ActuatorErrorStatus}).
 */
export class Controller extends EventEmitter {
  readonly registry: Registry;
  readonly dryRun: boolean;
  readonly #services = new Map<string, ServiceRound>();
  readonly #journal: Journal | undefined;
  readonly #clock: Clock;
  readonly #log: (line: string) => void;
  readonly #intervalMs: number;
  readonly #urgentPollMs: number;
  readonly #readTimeoutMs: number;
  readonly #retentionMs: number;
  readonly #metrics: ControllerMetrics;
  #timers: Array<() => void> = [];
  #running = false;
  #stopped = false;
  #lastPrune = Number.NEGATIVE_INFINITY;
  #rounds = 0;
  /** The scheduled tick in flight, which stop() waits for. */
  #ticking: Promise<unknown> | null = null;

  constructor(options: ControllerOptions) {
    super();
    this.dryRun = options.dryRun ?? false;
    this.#journal = options.journal;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? (() => {});
    this.#intervalMs = options.intervalMs ?? ROUND_SCHEDULE.intervalSeconds * 1000;
    this.#urgentPollMs = options.urgentPollMs ?? ROUND_SCHEDULE.urgentPollSeconds * 1000;
    this.#readTimeoutMs = options.readTimeoutMs ?? 2_000;
    this.#retentionMs = options.journalRetentionMs ?? 7 * 86_400_000;
    this.registry = options.registry ?? new Registry();
    this.#metrics = controllerMetrics(this.registry);
    const env: RoundEnv = {
      dryRun: this.dryRun,
      readTimeoutMs: this.#readTimeoutMs,
      manualPauseMs: options.manualPauseMs ?? 300_000,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      clock: this.#clock,
      log: this.#log,
      metrics: this.#metrics,
      record: (record) => this.#record(record),
      remember: (service, at, memory) => this.#remember(service, at, memory),
      applied: (service, replicas) => this.emit('applied', { service, replicas }),
      actuatorError: (service, error) => this.emit('actuator-error', { service, error }),
    };
    for (const svc of options.services) {
      if (this.#services.has(svc.name)) throw new TideError('TIDE_CONTROLLER_CONFIG', `The service "${svc.name}" is listed twice.`, { where: { field: `services.${svc.name}` } });
      this.#services.set(svc.name, new ServiceRound(svc, env, options.memory?.[svc.name]));
    }
  }

  /** The services under control, in order. */
  serviceNames(): string[] {
    return [...this.#services.keys()];
  }

  /** Rounds completed (all services), for tests and benchmarks that count them. */
  get rounds(): number {
    return this.#rounds;
  }

  /** One round for every service, concurrently. Resolves with each service's record. */
  async tick(now: number = this.#clock.now()): Promise<DecisionRecord[]> {
    const started = performance.now();
    const results = await Promise.all([...this.#services.values()].map((s) => s.run(now)));
    this.#metrics.tick.observe((performance.now() - started) / 1000);
    this.#rounds++;
    await this.#prune(now);
    this.emit('tick', results);
    return results.filter((r): r is DecisionRecord => r !== undefined);
  }

  /** One round for one service (the urgent trigger's path). */
  tickService(service: string, now: number = this.#clock.now()): Promise<DecisionRecord | undefined> {
    return this.#service(service).run(now);
  }

  /** Pauses autoscaling of `service` until `untilMs` (ms epoch); `null` resumes it. */
  pause(service: string, untilMs: number | null): void {
    this.#service(service).pause(untilMs);
  }

  status(): ServiceControlStatus[] {
    const now = this.#clock.now();
    return [...this.#services.values()].map((s) => s.status(now));
  }

  /** Starts the interval timer and the urgent poll. */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    this.#schedule(() => this.#intervalRound(), this.#intervalMs);
    if (this.#urgentPollMs > 0 && [...this.#services.values()].some((s) => urgentWait(s) !== undefined)) {
      this.#schedule(() => this.#urgentPollLoop(), this.#urgentPollMs);
    }
  }

  /**
   * Stops the timers, waits for the round and actuator calls in flight (retries are cut
   * short), and closes the sources and actuators. The journal is the caller's to close.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    for (const cancel of this.#timers) cancel();
    this.#timers = [];
    await Promise.all([this.#ticking, ...[...this.#services.values()].map((s) => s.close())]);
    // what was learned since the last minute's save, so a restart loses none of it
    const now = this.#clock.now();
    await Promise.all([...this.#services.values()].map((s) => this.#remember(s.svc.name, now, s.decider.memory())));
  }

  /** Resolves once no actuator call is in flight (tests wait on it). */
  async settled(): Promise<void> {
    await Promise.all([...this.#services.values()].map((s) => s.applyQueue.settled()));
  }

  #service(service: string): ServiceRound {
    const s = this.#services.get(service);
    if (!s) throw new TideError('TIDE_CONTROLLER_UNKNOWN_SERVICE', `The autoscaler controls no service "${service}"; it controls ${this.serviceNames().join(', ') || 'none'}.`, { where: { arg: service } });
    return s;
  }

  async #remember(service: string, at: number, memory: Memory): Promise<void> {
    if (!this.#journal || Object.keys(memory).length === 0) return;
    try {
      await this.#journal.saveMemory(service, at, memory);
    } catch (err) {
      this.#log(`${service}: the policy memory was not kept: ${errorFacts(err).message}`);
    }
  }

  async #record(record: DecisionRecord): Promise<void> {
    if (this.#journal) {
      try {
        await this.#journal.insert(record);
      } catch (err) {
        this.#log(`${record.service}: the decision journal did not take a row: ${errorFacts(err).message}`);
      }
    }
    this.emit('decision', record);
  }

  // --- scheduling

  #schedule(fn: () => void, ms: number): void {
    if (!this.#running) return;
    const cancel = this.#clock.setTimer(() => {
      this.#timers = this.#timers.filter((c) => c !== cancel);
      fn();
    }, ms);
    this.#timers.push(cancel);
  }

  #intervalRound(): void {
    const started = this.#clock.now();
    this.#ticking = this.tick(started)
      .catch((err: unknown) => this.#log(`a control round failed: ${errorFacts(err).message}`))
      .finally(() => {
        this.#ticking = null;
        // the next round starts `intervalMs` after this one started, or at once if it ran over
        this.#schedule(() => this.#intervalRound(), Math.max(0, started + this.#intervalMs - this.#clock.now()));
      });
  }

  /** One urgent poll of every SLO service; exposed for tests. Resolves with the services it ran a round for. */
  async urgentPoll(): Promise<string[]> {
    const fired: string[] = [];
    await Promise.all(
      [...this.#services.values()].map(async (s) => {
        const wait = urgentWait(s);
        if (wait === undefined || !s.svc.urgentSource) return;
        let age: number | undefined;
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(new Error('urgent poll timed out')), this.#readTimeoutMs);
        try {
          const samples = await s.svc.urgentSource.read(controller.signal);
          age = samples.find((x) => x.metric === METRIC.oldestAge)?.value;
        } catch {
          // the round's own reads report source failures; a poll stays quiet
          return;
        } finally {
          clearTimeout(timer);
        }
        if (age === undefined) return;
        const over = age >= wait;
        const crossed = over && !s.overWait;
        s.overWait = over;
        if (crossed && !this.#stopped) {
          this.#metrics.urgent.inc({ service: s.svc.name });
          this.#log(`${s.svc.name}: the oldest job has waited ${age.toFixed(1)} s, past the SLO wait of ${wait} s: deciding now`);
          fired.push(s.svc.name);
          await s.run(this.#clock.now()).catch((err: unknown) => this.#log(`${s.svc.name}: an urgent round failed: ${errorFacts(err).message}`));
        }
      }),
    );
    return fired;
  }

  #urgentPollLoop(): void {
    void this.urgentPoll().finally(() => this.#schedule(() => this.#urgentPollLoop(), this.#urgentPollMs));
  }

  async #prune(now: number): Promise<void> {
    if (!this.#journal || now - this.#lastPrune < 3_600_000) return;
    this.#lastPrune = now;
    try {
      await this.#journal.prune(now - this.#retentionMs);
    } catch (err) {
      this.#log(`pruning the decision journal failed: ${errorFacts(err).message}`);
    }
  }
}

/** The wait of the tightest SLO policy, seconds, when the service has one and an urgent source. */
function urgentWait(s: ServiceRound): number | undefined {
  return s.svc.urgentSource ? urgentWaitSeconds(s.svc.policy) : undefined;
}
