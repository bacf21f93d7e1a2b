/**
 * The live control loop: sources -> decide() -> actuator, for every autoscaled service.
 *
 * Design note. Per service the controller keeps { policy, sources, actuator, history,
 * pausedUntil, lastDecision, failing sources, actuator error, apply state }. One round
 * (`tick(now)`, the unit tests drive) for one service:
 *
 *   read every source at once (each under its own AbortSignal timeout) -> observe the actuator
 *   -> decide() with `sourceFailed` when any source failed -> clamp to min..max once more (a
 *   guard: the core already does) -> journal row -> apply, unless dry-run or paused.
 *
 * A failing source only removes its samples: the core then holds (never scales down on partial
 * data) and after `fallback.failureThreshold` failures in a row goes to the fallback count.
 *
 * Applying is not awaited by the round: a local scale-out resolves only when the new replica
 * is healthy, and a scale-in when the old one has drained, which may take longer than an
 * interval. Each service has at most one actuator call in flight; a newer target waits and
 * replaces any older waiting one (latest wins). A failed call is retried with exponential
 * backoff (0.5 s, 1 s, 2 s ... up to 30 s, at most `retry.attempts` times); the error stays
 * in status() and in the next journal rows until a call succeeds. While a call is in flight,
 * its target counts as the current replica count for decide(), so the core's rate limits and
 * cooldowns see the scale that is under way.
 *
 * Rounds for one service never overlap: a round asked for while one runs (the timer and the
 * urgent trigger at once) joins the running one. Scheduling: a timer per `intervalMs`, plus an
 * urgent poll every `urgentPollMs` of the oldest job's age (a cheap source, for services with
 * an SLO policy) that runs a round at once when the age crosses the policy's wait, once per
 * crossing. Both use the injected Clock, so tests advance time by hand.
 *
 * Not applied (dry run, pause): the round's scale event is dropped from the core's history, so
 * rate limits and cooldowns are not charged for a scale that never happened.
 */
import { EventEmitter } from 'node:events';

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import { decide } from '../core/decide.js';
import { combineSamples } from '../core/metrics.js';
import { type Decision, type History, METRIC, type Reason, type Sample, type ServicePolicy, emptyHistory } from '../core/types.js';
import type { Actuator } from '../actuators/types.js';
import { TideError, isTideError } from '../errors.js';
import type { MetricSource } from '../sources/types.js';
import { type Clock, systemClock } from '../clock.js';
import type { Journal, JournalEntry } from './journal.js';

/** How far apart a pause from the control API and the same manual scale seen by a round may end. */
const MANUAL_PAUSE_SLACK_MS = 2_000;

/** One autoscaled service as the controller drives it. */
export interface ControlledService {
  name: string;
  policy: ServicePolicy;
  /** Named sources; their samples are combined (see combineSamples). */
  sources: Array<{ name: string; source: MetricSource }>;
  actuator: Actuator;
  /**
   * A cheap source whose `queue_oldest_age_seconds` the urgent poll reads (its own
   * connection, so a poll never waits behind a round's reads). Only used with an SLO policy.
   */
  urgentSource?: MetricSource;
  /** When the service was last scaled by hand (ms epoch), for the pause after a manual scale. */
  manualScaledAt?: () => number | null;
}

export interface RetryOptions {
  /** First retry after this many ms; doubles each time. Default 500. */
  baseMs: number;
  /** Longest wait between retries. Default 30 000. */
  maxMs: number;
  /** Calls in all (the first and its retries) before giving up until the next round. Default 6. */
  attempts: number;
}

export interface ControllerOptions {
  services: ControlledService[];
  /** Where decisions are recorded; absent: nowhere (status() still has the last one). */
  journal?: Journal;
  /** Decide and record, never scale. */
  dryRun?: boolean;
  /** Between rounds; default 5 000. */
  intervalMs?: number;
  /** Between urgent polls of the oldest age; 0 turns them off. Default 500. */
  urgentPollMs?: number;
  /** A source read longer than this is aborted and counts as failed. Default 2 000. */
  readTimeoutMs?: number;
  /** How long a manual scale pauses autoscaling of its service. Default 300 000. */
  manualPauseMs?: number;
  /** Journal rows older than this are pruned (at most once an hour). Default 7 days. */
  journalRetentionMs?: number;
  retry?: Partial<RetryOptions>;
  clock?: Clock;
  log?: (line: string) => void;
  /** Where the controller's own metrics go; default a registry of its own (`controller.registry`). */
  registry?: Registry;
}

/** A source that failed in the last round. */
export interface FailingSource {
  source: string;
  code: string;
  message: string;
  /** Failures in a row. */
  count: number;
  /** ms epoch of the first failure of this run. */
  since: number;
}

export interface ActuatorErrorStatus {
  code: string;
  message: string;
  /** ms epoch */
  at: number;
  /** Calls that failed in a row. */
  attempts: number;
  /** The count the controller was trying to apply. */
  target: number;
}

/** One service's state for `tide ps` and the dashboard. */
export interface ServiceControlStatus {
  service: string;
  /** The count of the last decision (what the controller wants). */
  desired: number | null;
  /** What the platform reported ready in the last round. */
  ready: number | null;
  lastDecision: { at: number; current: number; desired: number; limitedBy: string | null; reasons: Reason[]; applied: boolean } | null;
  /** ms epoch until which a manual scale pauses autoscaling; null when not paused. */
  pausedUntil: number | null;
  failingSources: FailingSource[];
  actuatorError: ActuatorErrorStatus | null;
  /** The count an actuator call is applying now, if one is in flight. */
  applying: number | null;
  dryRun: boolean;
}

/** What each round reports (the 'decision' event, and `tide autoscale`'s lines). */
export type DecisionRecord = JournalEntry;

interface ServiceState {
  svc: ControlledService;
  history: History;
  pausedUntil: number | null;
  lastManual: number | null;
  last: ServiceControlStatus['lastDecision'];
  lastReady: number | null;
  failing: Map<string, FailingSource>;
  actuatorError: ActuatorErrorStatus | null;
  /** The last failed observe (cleared by the next one that works). */
  observeError: ActuatorErrorStatus | null;
  /** The target of the actuator call in flight. */
  applying: number | null;
  /** The next target waiting for the call in flight. */
  waiting: { target: number; why: Decision } | null;
  round: Promise<DecisionRecord | undefined> | null;
  /** The urgent poll saw the age at or above the wait (so it fires once per crossing). */
  overWait: boolean;
  cancelRetry: (() => void) | null;
  retryWake: (() => void) | null;
}

const DEFAULT_RETRY: RetryOptions = { baseMs: 500, maxMs: 30_000, attempts: 6 };

function errorFacts(err: unknown): { code: string; message: string } {
  if (isTideError(err)) return { code: err.code, message: err.message };
  return { code: 'TIDE_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/**
 * The control loop. Construct, then `start()` for the timers, or call `tick()` directly.
 * Emits 'decision' (DecisionRecord) after each round's journal row, 'tick' after a full round, 'applied'
 * ({service, replicas}) and 'actuator-error' ({service, error: ActuatorErrorStatus}).
 */
export class Controller extends EventEmitter {
  readonly registry: Registry;
  readonly dryRun: boolean;
  readonly #states = new Map<string, ServiceState>();
  readonly #journal: Journal | undefined;
  readonly #clock: Clock;
  readonly #log: (line: string) => void;
  readonly #intervalMs: number;
  readonly #urgentPollMs: number;
  readonly #readTimeoutMs: number;
  readonly #manualPauseMs: number;
  readonly #retentionMs: number;
  readonly #retry: RetryOptions;
  readonly #metrics: {
    desired: Gauge;
    decisions: Counter;
    sourceFailures: Counter;
    actuatorErrors: Counter;
    tick: Histogram;
    urgent: Counter;
  };
  #timers: Array<() => void> = [];
  #running = false;
  #stopped = false;
  #lastPrune = Number.NEGATIVE_INFINITY;
  readonly #applies = new Set<Promise<void>>();
  #rounds = 0;
  /** The scheduled tick in flight, which stop() waits for. */
  #ticking: Promise<unknown> | null = null;

  constructor(options: ControllerOptions) {
    super();
    this.dryRun = options.dryRun ?? false;
    this.#journal = options.journal;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? (() => {});
    this.#intervalMs = options.intervalMs ?? 5_000;
    this.#urgentPollMs = options.urgentPollMs ?? 500;
    this.#readTimeoutMs = options.readTimeoutMs ?? 2_000;
    this.#manualPauseMs = options.manualPauseMs ?? 300_000;
    this.#retentionMs = options.journalRetentionMs ?? 7 * 86_400_000;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    for (const svc of options.services) {
      if (this.#states.has(svc.name)) throw new TideError('TIDE_CONTROLLER_CONFIG', `The service "${svc.name}" is listed twice.`, { where: { field: `services.${svc.name}` } });
      this.#states.set(svc.name, {
        svc,
        history: emptyHistory(),
        pausedUntil: null,
        lastManual: svc.manualScaledAt?.() ?? null,
        last: null,
        lastReady: null,
        failing: new Map(),
        actuatorError: null,
        observeError: null,
        applying: null,
        waiting: null,
        round: null,
        overWait: false,
        cancelRetry: null,
        retryWake: null,
      });
    }
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    this.#metrics = {
      desired: new Gauge({ name: 'tide_controller_desired_replicas', help: 'Replicas the last decision asked for, per service.', labelNames: ['service'], registers }),
      decisions: new Counter({ name: 'tide_controller_decisions_total', help: 'Decisions, by direction (up, down, none).', labelNames: ['service', 'direction'], registers }),
      sourceFailures: new Counter({ name: 'tide_controller_source_failures_total', help: 'Metric source reads that failed or timed out.', labelNames: ['service', 'source'], registers }),
      actuatorErrors: new Counter({ name: 'tide_controller_actuator_errors_total', help: 'Actuator calls (observe or scale) that failed.', labelNames: ['service'], registers }),
      tick: new Histogram({ name: 'tide_controller_tick_seconds', help: 'Duration of one control round over all services.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
      urgent: new Counter({ name: 'tide_controller_urgent_rounds_total', help: 'Rounds run at once because the oldest job age crossed the SLO wait.', labelNames: ['service'], registers }),
    };
  }

  /** The services under control, in order. */
  serviceNames(): string[] {
    return [...this.#states.keys()];
  }

  /** Rounds completed (all services), for tests and benchmarks that count them. */
  get rounds(): number {
    return this.#rounds;
  }

  /** One round for every service, concurrently. Resolves with each service's record. */
  async tick(now: number = this.#clock.now()): Promise<DecisionRecord[]> {
    const started = performance.now();
    const results = await Promise.all([...this.#states.values()].map((st) => this.#round(st, now)));
    this.#metrics.tick.observe((performance.now() - started) / 1000);
    this.#rounds++;
    await this.#prune(now);
    this.emit('tick', results);
    return results.filter((r): r is DecisionRecord => r !== undefined);
  }

  /** One round for one service (the urgent trigger's path). */
  tickService(service: string, now: number = this.#clock.now()): Promise<DecisionRecord | undefined> {
    return this.#round(this.#state(service), now);
  }

  /** Pauses autoscaling of `service` until `untilMs` (ms epoch); `null` resumes it. */
  pause(service: string, untilMs: number | null): void {
    const st = this.#state(service);
    st.pausedUntil = untilMs;
    this.#log(untilMs === null ? `${service}: autoscaling resumed` : `${service}: autoscaling paused until ${new Date(untilMs).toISOString()}`);
  }

  status(): ServiceControlStatus[] {
    const now = this.#clock.now();
    return [...this.#states.values()].map((st) => ({
      service: st.svc.name,
      desired: st.last?.desired ?? null,
      ready: st.lastReady,
      lastDecision: st.last,
      pausedUntil: st.pausedUntil !== null && st.pausedUntil > now ? st.pausedUntil : null,
      failingSources: [...st.failing.values()],
      actuatorError: st.actuatorError ?? st.observeError,
      applying: st.applying,
      dryRun: this.dryRun,
    }));
  }

  /** Starts the interval timer and the urgent poll. */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    this.#schedule(() => this.#intervalRound(), 0);
    if (this.#urgentPollMs > 0 && [...this.#states.values()].some((st) => this.#urgentWait(st) !== undefined)) {
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
    for (const st of this.#states.values()) {
      st.waiting = null;
      st.cancelRetry?.();
      st.retryWake?.();
    }
    await this.#ticking;
    await Promise.all([...this.#states.values()].map((st) => st.round?.catch(() => undefined)));
    await Promise.all([...this.#applies]);
    const closing: Array<Promise<void>> = [];
    for (const st of this.#states.values()) {
      for (const { source } of st.svc.sources) closing.push(source.close().catch(() => undefined));
      if (st.svc.urgentSource) closing.push(st.svc.urgentSource.close().catch(() => undefined));
      closing.push(st.svc.actuator.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  /** Resolves once no actuator call is in flight (tests wait on it). */
  async settled(): Promise<void> {
    while (this.#applies.size > 0) await Promise.all([...this.#applies]);
  }

  // --- rounds

  #state(service: string): ServiceState {
    const st = this.#states.get(service);
    if (!st) throw new TideError('TIDE_CONTROLLER_UNKNOWN_SERVICE', `The autoscaler controls no service "${service}"; it controls ${this.serviceNames().join(', ') || 'none'}.`, { where: { arg: service } });
    return st;
  }

  #round(st: ServiceState, now: number): Promise<DecisionRecord | undefined> {
    if (st.round) return st.round;
    const round = this.#decideAndApply(st, now).finally(() => {
      st.round = null;
    });
    st.round = round;
    return round;
  }

  async #readSources(st: ServiceState): Promise<{ samples: Sample[]; errors: JournalEntry['errors'] }> {
    const now = this.#clock.now();
    const results = await Promise.all(
      st.svc.sources.map(async ({ name, source }) => {
        const controller = new AbortController();
        // a real timer on purpose: a read is real I/O, whatever clock the rounds run on
        const timer = setTimeout(() => controller.abort(new Error(`timed out after ${this.#readTimeoutMs} ms`)), this.#readTimeoutMs);
        try {
          const samples = await source.read(controller.signal);
          st.failing.delete(name);
          return { ok: true as const, samples };
        } catch (err) {
          const facts = errorFacts(err);
          const prev = st.failing.get(name);
          st.failing.set(name, { source: name, ...facts, count: (prev?.count ?? 0) + 1, since: prev?.since ?? now });
          this.#metrics.sourceFailures.inc({ service: st.svc.name, source: name });
          return { ok: false as const, error: { ...facts, source: name } };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const samples = combineSamples(results.flatMap((r) => (r.ok ? [r.samples] : [])));
    const errors = results.flatMap((r) => (r.ok ? [] : [r.error]));
    return { samples, errors };
  }

  async #decideAndApply(st: ServiceState, now: number): Promise<DecisionRecord | undefined> {
    const { svc } = st;
    const policy = svc.policy;
    const [{ samples, errors }, observed] = await Promise.all([
      this.#readSources(st),
      svc.actuator.observe(svc.name).then(
        (o) => ({ ok: true as const, ...o }),
        (err: unknown) => ({ ok: false as const, error: errorFacts(err) }),
      ),
    ]);
    if (observed.ok) st.observeError = null;
    else {
      this.#metrics.actuatorErrors.inc({ service: svc.name });
      errors.push({ ...observed.error, source: 'actuator' });
      st.observeError = { ...observed.error, at: now, attempts: (st.observeError?.attempts ?? 0) + 1, target: st.applying ?? st.last?.desired ?? 0 };
      if (st.last === null) {
        // nothing known to decide from: record the failure and try again next round
        const record: DecisionRecord = {
          at: now, service: svc.name, current: 0, desired: 0, ready: 0, applied: false, dryRun: this.dryRun, paused: false,
          limitedBy: null, reasons: [{ code: 'MissingMetrics', message: `The platform did not report the replica count (${observed.error.code}), so nothing was decided.` }],
          metrics: latestValues(samples), errors,
        };
        await this.#record(record);
        return record;
      }
    }
    this.#noticeManualScale(st, now);

    const platformDesired = observed.ok ? observed.desired : (st.last?.desired ?? 0);
    const ready = observed.ok ? observed.ready : (st.lastReady ?? 0);
    st.lastReady = ready;
    // a call in flight (or waiting) is the count being reached, whatever the platform says yet
    const current = st.waiting?.target ?? st.applying ?? platformDesired;

    const decision = decide({ now, current, ready, samples, policy, history: st.history, sourceFailed: errors.some((e) => e.source !== 'actuator') });
    let desired = decision.desired;
    const reasons = [...decision.reasons];
    // The core clamps already; this guard keeps a bug there from reaching the platform.
    if (desired > policy.max || desired < policy.min) {
      const bound = desired > policy.max ? policy.max : policy.min;
      reasons.push({ code: desired > policy.max ? 'TooManyReplicas' : 'TooFewReplicas', replicas: bound, message: `The controller held the count to the service's bounds ${policy.min}..${policy.max}.` });
      desired = bound;
    }
    const paused = st.pausedUntil !== null && st.pausedUntil > now;
    if (!paused && st.pausedUntil !== null) {
      st.pausedUntil = null;
      this.#log(`${svc.name}: the pause after a manual scale has ended; autoscaling resumes`);
    }
    const change = desired !== current;
    const act = change && !this.dryRun && !paused;
    if (paused && change) reasons.push({ code: 'DesiredWithinRange', replicas: current, message: `Autoscaling of ${svc.name} is paused until ${new Date(st.pausedUntil!).toISOString()} after a manual scale, so ${current} replicas stay.` });
    if (this.dryRun && change) reasons.push({ code: 'DesiredWithinRange', replicas: current, message: `Dry run: would scale ${svc.name} from ${current} to ${desired}; nothing was changed.` });

    // a scale that will not happen must not count against rate limits and cooldowns
    st.history = act ? decision.history : { ...decision.history, events: decision.history.events.filter((e) => e.at !== now) };
    if (st.actuatorError) errors.push({ code: st.actuatorError.code, message: st.actuatorError.message, source: 'actuator' });

    st.last = { at: now, current, desired, limitedBy: decision.limitedBy ?? null, reasons, applied: act };
    this.#metrics.desired.set({ service: svc.name }, desired);
    this.#metrics.decisions.inc({ service: svc.name, direction: desired > current ? 'up' : desired < current ? 'down' : 'none' });
    const record: DecisionRecord = {
      at: now,
      service: svc.name,
      current,
      desired,
      ready,
      applied: act,
      dryRun: this.dryRun,
      paused,
      limitedBy: decision.limitedBy ?? null,
      reasons,
      metrics: latestValues(samples),
      errors,
    };
    if (act) this.#apply(st, desired, { ...decision, desired, reasons });
    await this.#record(record);
    return record;
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

  #noticeManualScale(st: ServiceState, now: number): void {
    const at = st.svc.manualScaledAt?.() ?? null;
    if (at === null || at === st.lastManual) return;
    st.lastManual = at;
    if (this.#manualPauseMs <= 0) return;
    const until = at + this.#manualPauseMs;
    // `tide up` pauses from the control API just before it scales: that pause already covers
    // this manual scale (it ends at most a moment earlier), so it is not announced twice
    const coveredByHook = st.pausedUntil !== null && until - st.pausedUntil < MANUAL_PAUSE_SLACK_MS;
    if (until > now && !coveredByHook) this.pause(st.svc.name, until);
  }

  // --- applying

  #apply(st: ServiceState, target: number, why: Decision): void {
    if (st.applying !== null) {
      // latest wins: the call in flight finishes, then this one runs (if still different)
      st.waiting = { target, why };
      return;
    }
    const run = this.#applyLoop(st, target, why).finally(() => this.#applies.delete(run));
    this.#applies.add(run);
  }

  async #applyLoop(st: ServiceState, first: number, firstWhy: Decision): Promise<void> {
    let next: { target: number; why: Decision } | null = { target: first, why: firstWhy };
    while (next && !this.#stopped) {
      const { target, why } = next;
      st.applying = target;
      for (let attempt = 1; !this.#stopped; attempt++) {
        try {
          await st.svc.actuator.scale(st.svc.name, target, why);
          st.actuatorError = null;
          this.#log(`${st.svc.name}: scaled to ${target}`);
          this.emit('applied', { service: st.svc.name, replicas: target });
          break;
        } catch (err) {
          const facts = errorFacts(err);
          st.actuatorError = { ...facts, at: this.#clock.now(), attempts: (st.actuatorError?.target === target ? st.actuatorError.attempts : 0) + 1, target };
          this.#metrics.actuatorErrors.inc({ service: st.svc.name });
          this.emit('actuator-error', { service: st.svc.name, error: st.actuatorError });
          if (st.waiting || attempt >= this.#retry.attempts || this.#stopped) {
            this.#log(`${st.svc.name}: scaling to ${target} failed (${facts.code}: ${facts.message}); ${st.waiting ? 'a newer decision replaces it' : 'the next round tries again'}`);
            break;
          }
          const delay = Math.min(this.#retry.maxMs, this.#retry.baseMs * 2 ** (attempt - 1));
          this.#log(`${st.svc.name}: scaling to ${target} failed (${facts.code}: ${facts.message}); retry ${attempt} in ${delay} ms`);
          await new Promise<void>((resolve) => {
            st.retryWake = resolve;
            st.cancelRetry = this.#clock.setTimer(resolve, delay);
          });
          st.retryWake = null;
          st.cancelRetry = null;
        }
      }
      st.applying = null;
      next = st.waiting;
      st.waiting = null;
      if (next && next.target === target && st.actuatorError === null) next = null;
    }
    st.applying = null;
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

  /** The wait of the tightest SLO policy, seconds, when the service has one and an urgent source. */
  #urgentWait(st: ServiceState): number | undefined {
    if (!st.svc.urgentSource) return undefined;
    const waits = st.svc.policy.policies.flatMap((p) => (p.kind === 'slo' ? [p.waitSeconds] : []));
    return waits.length > 0 ? Math.min(...waits) : undefined;
  }

  /** One urgent poll of every SLO service; exposed for tests. Resolves with the services it ran a round for. */
  async urgentPoll(): Promise<string[]> {
    const fired: string[] = [];
    await Promise.all(
      [...this.#states.values()].map(async (st) => {
        const wait = this.#urgentWait(st);
        if (wait === undefined || !st.svc.urgentSource) return;
        let age: number | undefined;
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(new Error('urgent poll timed out')), this.#readTimeoutMs);
        try {
          const samples = await st.svc.urgentSource.read(controller.signal);
          age = samples.find((s) => s.metric === METRIC.oldestAge)?.value;
        } catch {
          // the round's own reads report source failures; a poll stays quiet
          return;
        } finally {
          clearTimeout(timer);
        }
        if (age === undefined) return;
        const over = age >= wait;
        const crossed = over && !st.overWait;
        st.overWait = over;
        if (crossed && !this.#stopped) {
          this.#metrics.urgent.inc({ service: st.svc.name });
          this.#log(`${st.svc.name}: the oldest job has waited ${age.toFixed(1)} s, past the SLO wait of ${wait} s: deciding now`);
          fired.push(st.svc.name);
          await this.#round(st, this.#clock.now()).catch((err: unknown) => this.#log(`${st.svc.name}: an urgent round failed: ${errorFacts(err).message}`));
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

function latestValues(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[s.metric] = s.value;
  return out;
}
