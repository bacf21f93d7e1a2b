/**
 * One service's actuator calls. Applying is not awaited by the round: a local scale-out resolves
 * only when the new replica is healthy, and a scale-in when the old one has drained, which may
 * take longer than an interval. At most one call is in flight; a newer target waits and replaces
 * any older waiting one (latest wins). A failed call is retried with exponential backoff (0.5 s,
 * 1 s, 2 s ... up to 30 s, at most `attempts` calls); the error stays in `error` until a call
 * succeeds.
 */
import type { Actuator } from '../actuators/types.js';
import type { Clock } from '../clock.js';
import type { Decision } from '../core/types.js';
import { errorFacts } from '../errors.js';
import type { ActuatorErrorStatus, RetryOptions } from './types.js';

export const DEFAULT_RETRY: RetryOptions = { baseMs: 500, maxMs: 30_000, attempts: 6 };

export interface ApplyQueueOptions {
  service: string;
  actuator: Actuator;
  retry: RetryOptions;
  clock: Clock;
  log: (line: string) => void;
  /** Whether a waiting target may still be applied when its turn comes (false: a manual scale paused the service since). */
  mayApply: () => boolean;
  onApplied: (replicas: number) => void;
  onError: (error: ActuatorErrorStatus) => void;
}

export class ApplyQueue {
  /** The target of the call in flight. */
  applying: number | null = null;
  /** The last failed call's error, until a call succeeds. */
  error: ActuatorErrorStatus | null = null;
  /** The next target waiting for the call in flight. */
  private waiting: { target: number; why: Decision } | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private cancelRetry: (() => void) | null = null;
  private retryWake: (() => void) | null = null;

  constructor(private readonly o: ApplyQueueOptions) {}

  /** The count being reached: the waiting target, else the one in flight, else null. */
  get target(): number | null {
    return this.waiting?.target ?? this.applying;
  }

  apply(target: number, why: Decision): void {
    if (this.stopped) return;
    if (this.applying !== null) {
      // latest wins: the call in flight finishes, then this one runs (if still different)
      this.waiting = { target, why };
      return;
    }
    // `applying` is set until the loop's last call is over, so a new loop never misses a target
    const run: Promise<void> = this.loop(target, why).finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
  }

  /** Resolves once no call is in flight. */
  async settled(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  /** Drops the waiting target, cuts a retry wait short and resolves when the call in flight ends. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.waiting = null;
    this.cancelRetry?.();
    this.retryWake?.();
    await this.settled();
  }

  private async loop(first: number, firstWhy: Decision): Promise<void> {
    const { service, actuator, retry, clock, log } = this.o;
    let next: { target: number; why: Decision } | null = { target: first, why: firstWhy };
    while (next && !this.stopped) {
      const { target, why } = next;
      this.applying = target;
      for (let attempt = 1; !this.stopped; attempt++) {
        try {
          await actuator.scale(service, target, why);
          this.error = null;
          log(`${service}: scaled to ${target}`);
          this.o.onApplied(target);
          break;
        } catch (err) {
          const facts = errorFacts(err);
          this.error = { ...facts, at: clock.now(), attempts: (this.error?.target === target ? this.error.attempts : 0) + 1, target };
          this.o.onError(this.error);
          if (this.waiting || attempt >= retry.attempts || this.stopped) {
            log(`${service}: scaling to ${target} failed (${facts.code}: ${facts.message}); ${this.waiting ? 'a newer decision replaces it' : 'the next round tries again'}`);
            break;
          }
          const delay = Math.min(retry.maxMs, retry.baseMs * 2 ** (attempt - 1));
          log(`${service}: scaling to ${target} failed (${facts.code}: ${facts.message}); retry ${attempt} in ${delay} ms`);
          await new Promise<void>((resolve) => {
            this.retryWake = resolve;
            this.cancelRetry = clock.setTimer(resolve, delay);
          });
          this.retryWake = null;
          this.cancelRetry = null;
        }
      }
      this.applying = null;
      next = this.waiting;
      this.waiting = null;
      if (next && next.target === target && this.error === null) next = null;
      if (next && !this.o.mayApply()) {
        log(`${service}: a manual scale came while scaling to ${target}; the waiting target ${next.target} is dropped`);
        next = null;
      }
    }
    this.applying = null;
  }
}
