/**
 * One autoscaled service's rounds. A round:
 *
 *   read every source at once (each under its own AbortSignal timeout) -> observe the actuator
 *   -> decide (core/decider.ts) with `sourceFailed` when any source failed -> journal row ->
 *   apply (apply-queue.ts), unless dry-run or paused.
 *
 * A failing source only removes its samples: the core then holds (never scales down on partial
 * data) and after `fallback.failureThreshold` failures in a row goes to the fallback count.
 * While an actuator call is in flight (or waiting), its target counts as the current replica
 * count, so the core's rate limits and cooldowns see the scale that is under way. Rounds never
 * overlap: a round asked for while one runs joins it.
 *
 * The pause after a manual scale is owned here: the platform reports when the service was last
 * scaled by hand (`manualScaledAt`), and that pauses autoscaling for `manualPauseMs` from then.
 * It is taken in wherever the service is looked at (a round, a status read, the apply queue
 * before a waiting target), so `tide ps` shows the pause at once and no round or waiting
 * target undoes the manual scale.
 */
import type { Clock } from '../clock.js';
import { combineSamples } from '../core/metrics.js';
import { Decider, type Memory } from '../core/decider.js';
import type { Decision, Sample } from '../core/types.js';
import { errorFacts } from '../errors.js';
import { ApplyQueue } from './apply-queue.js';
import type { JournalEntry } from './journal.js';
import type { ControllerMetrics } from './metrics.js';
import type { ActuatorErrorStatus, ControlledService, DecisionRecord, FailingSource, RetryOptions, ServiceControlStatus } from './types.js';

/** What a service's rounds need of the controller around them. */
export interface RoundEnv {
  dryRun: boolean;
  readTimeoutMs: number;
  manualPauseMs: number;
  retry: RetryOptions;
  clock: Clock;
  log: (line: string) => void;
  metrics: ControllerMetrics;
  /** The journal row and the 'decision' event. */
  record(record: DecisionRecord): Promise<void>;
  /** Keeps what the policies learned (about once a minute); a failure is logged by the callee. */
  remember(service: string, at: number, memory: Memory): Promise<void>;
  applied(service: string, replicas: number): void;
  actuatorError(service: string, error: ActuatorErrorStatus): void;
}

/** The policies' memory is kept this often: it changes when a minute of arrivals closes. */
const MEMORY_EVERY_MS = 60_000;

export class ServiceRound {
  readonly decider: Decider;
  readonly applyQueue: ApplyQueue;
  /** The urgent poll saw the oldest age at or above the wait (so it fires once per crossing). */
  overWait = false;
  #pausedUntil: number | null = null;
  /** The manual scale last taken in (ms epoch); one from before the controller started does not pause. */
  #manualSeen: number | null;
  #last: ServiceControlStatus['lastDecision'] = null;
  #lastReady: number | null = null;
  readonly #failing = new Map<string, FailingSource>();
  /** The last failed observe (cleared by the next one that works). */
  #observeError: ActuatorErrorStatus | null = null;
  #running: Promise<DecisionRecord | undefined> | null = null;
  /** When the policies' memory was last kept (ms epoch). */
  #remembered = Number.NEGATIVE_INFINITY;

  constructor(
    readonly svc: ControlledService,
    private readonly env: RoundEnv,
    memory?: Memory,
  ) {
    this.decider = new Decider(svc.policy, memory);
    this.#manualSeen = svc.manualScaledAt?.() ?? null;
    this.applyQueue = new ApplyQueue({
      service: svc.name,
      actuator: svc.actuator,
      retry: env.retry,
      clock: env.clock,
      log: env.log,
      mayApply: () => !this.#paused(env.clock.now()),
      onApplied: (replicas) => env.applied(svc.name, replicas),
      onError: (error) => {
        env.metrics.actuatorErrors.inc({ service: svc.name });
        env.actuatorError(svc.name, error);
      },
    });
  }

  /** One round; a round asked for while one runs joins it. */
  run(now: number): Promise<DecisionRecord | undefined> {
    if (this.#running) return this.#running;
    const round = this.#round(now).finally(() => {
      this.#running = null;
    });
    this.#running = round;
    return round;
  }

  /** Resolves when no round runs. */
  async idle(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }

  /** Pauses autoscaling until `untilMs` (ms epoch); `null` resumes it. */
  pause(untilMs: number | null): void {
    this.#pausedUntil = untilMs;
    this.env.log(untilMs === null ? `${this.svc.name}: autoscaling resumed` : `${this.svc.name}: autoscaling paused until ${new Date(untilMs).toISOString()}`);
  }

  status(now: number): ServiceControlStatus {
    const paused = this.#paused(now);
    return {
      service: this.svc.name,
      desired: this.#last?.desired ?? null,
      ready: this.#lastReady,
      lastDecision: this.#last,
      pausedUntil: paused ? this.#pausedUntil : null,
      failingSources: [...this.#failing.values()],
      actuatorError: this.applyQueue.error ?? this.#observeError,
      applying: this.applyQueue.applying,
      dryRun: this.env.dryRun,
    };
  }

  /** Stops the apply queue (after the round in flight) and closes the sources and the actuator. */
  async close(): Promise<void> {
    // the queue stops first (waiting targets dropped, retries cut short), so the round in flight applies nothing more
    const stopping = this.applyQueue.stop();
    await this.idle();
    await stopping;
    const { svc } = this;
    await Promise.all([...svc.sources.map(({ source }) => source.close()), svc.urgentSource?.close(), svc.actuator.close()].map((p) => p?.catch(() => undefined)));
  }

  /** Whether autoscaling is paused at `now`, after taking in a manual scale the platform reports. */
  #paused(now: number): boolean {
    const at = this.svc.manualScaledAt?.() ?? null;
    if (at !== null && at !== this.#manualSeen) {
      this.#manualSeen = at;
      const until = at + this.env.manualPauseMs;
      if (this.env.manualPauseMs > 0 && until > now) this.pause(until);
    }
    return this.#pausedUntil !== null && this.#pausedUntil > now;
  }

  async #readSources(): Promise<{ samples: Sample[]; errors: JournalEntry['errors'] }> {
    const { env, svc } = this;
    const now = env.clock.now();
    const results = await Promise.all(
      svc.sources.map(async ({ name, source }) => {
        const controller = new AbortController();
        // a real timer on purpose: a read is real I/O, whatever clock the rounds run on
        const timer = setTimeout(() => controller.abort(new Error(`timed out after ${env.readTimeoutMs} ms`)), env.readTimeoutMs);
        try {
          const samples = await source.read(controller.signal);
          this.#failing.delete(name);
          return { ok: true as const, samples };
        } catch (err) {
          const facts = errorFacts(err);
          const prev = this.#failing.get(name);
          this.#failing.set(name, { source: name, ...facts, count: (prev?.count ?? 0) + 1, since: prev?.since ?? now });
          env.metrics.sourceFailures.inc({ service: svc.name, source: name });
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

  async #round(now: number): Promise<DecisionRecord | undefined> {
    const { env, svc } = this;
    const [{ samples, errors }, observed] = await Promise.all([
      this.#readSources(),
      svc.actuator.observe(svc.name).then(
        (o) => ({ ok: true as const, ...o }),
        (err: unknown) => ({ ok: false as const, error: errorFacts(err) }),
      ),
    ]);
    const record = (r: Pick<DecisionRecord, 'current' | 'desired' | 'ready' | 'applied' | 'paused' | 'limitedBy' | 'reasons'>): DecisionRecord => ({
      at: now, service: svc.name, current: r.current, desired: r.desired, ready: r.ready, applied: r.applied, dryRun: env.dryRun, paused: r.paused,
      limitedBy: r.limitedBy, reasons: r.reasons, metrics: latestValues(samples), errors,
    });
    if (observed.ok) this.#observeError = null;
    else {
      env.metrics.actuatorErrors.inc({ service: svc.name });
      errors.push({ ...observed.error, source: 'actuator' });
      this.#observeError = { ...observed.error, at: now, attempts: (this.#observeError?.attempts ?? 0) + 1, target: this.applyQueue.applying ?? this.#last?.desired ?? 0 };
      if (this.#last === null) {
        // nothing known to decide from: record the failure and try again next round
        const missing = record({
          current: 0, desired: 0, ready: 0, applied: false, paused: false, limitedBy: null,
          reasons: [{ code: 'MissingMetrics', message: `The platform did not report the replica count (${observed.error.code}), so nothing was decided.` }],
        });
        await env.record(missing);
        return missing;
      }
    }
    const paused = this.#paused(now);
    if (!paused && this.#pausedUntil !== null) {
      this.#pausedUntil = null;
      env.log(`${svc.name}: the pause after a manual scale has ended; autoscaling resumes`);
    }

    const platformDesired = observed.ok ? observed.desired : (this.#last?.desired ?? 0);
    const ready = observed.ok ? observed.ready : (this.#lastReady ?? 0);
    this.#lastReady = ready;
    // a call in flight (or waiting) is the count being reached, whatever the platform says yet
    const current = this.applyQueue.target ?? platformDesired;

    const sourceFailed = errors.some((e) => e.source !== 'actuator');
    const decision = this.decider.round({ now, current, ready, samples, sourceFailed }, { held: env.dryRun || paused });
    const { desired } = decision;
    const reasons = [...decision.reasons];
    const change = desired !== current;
    const act = change && !env.dryRun && !paused;
    if (paused && change) reasons.push({ code: 'DesiredWithinRange', replicas: current, message: `Autoscaling of ${svc.name} is paused until ${new Date(this.#pausedUntil!).toISOString()} after a manual scale, so ${current} replicas stay.` });
    if (env.dryRun && change) reasons.push({ code: 'DesiredWithinRange', replicas: current, message: `Dry run: would scale ${svc.name} from ${current} to ${desired}; nothing was changed.` });
    const actuatorError = this.applyQueue.error;
    if (actuatorError) errors.push({ code: actuatorError.code, message: actuatorError.message, source: 'actuator' });

    const limitedBy = decision.limitedBy ?? null;
    this.#last = { at: now, current, desired, limitedBy, reasons, applied: act };
    env.metrics.desired.set({ service: svc.name }, desired);
    env.metrics.decisions.inc({ service: svc.name, direction: desired > current ? 'up' : desired < current ? 'down' : 'none' });
    if (act) this.applyQueue.apply(desired, { ...decision, reasons } satisfies Decision);
    const row = record({ current, desired, ready, applied: act, paused, limitedBy, reasons });
    await env.record(row);
    if (now - this.#remembered >= MEMORY_EVERY_MS) {
      this.#remembered = now;
      await env.remember(svc.name, now, this.decider.memory());
    }
    return row;
  }
}

function latestValues(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[s.metric] = s.value;
  return out;
}
