/**
 * The sampler: one reading per interval (1 s by default) turned into a Snapshot, kept in a
 * bounded ring (so a page that connects gets the last minutes at once) and emitted as
 * 'snapshot' for the SSE streams.
 *
 * Design note. States: idle -> running (start) -> stopped (stop; final). Rounds never
 * overlap: the next one is scheduled when the previous one has finished, so a slow read (a
 * replica timing out) stretches the interval instead of piling rounds up. The time and the
 * timers come from an injected Clock, so tests drive rounds by hand with `tick()` or a
 * ManualClock. The timeline (entries from every snapshot) has its own, longer ring.
 */
import { EventEmitter } from 'node:events';

import { type Clock, systemClock } from '../clock.js';
import { type Reading, type Snapshot, type TimelineEntry, snapshotOf } from './snapshot.js';

export interface SamplerOptions {
  read(now: number): Promise<Reading>;
  clock?: Clock;
  /** Between rounds; default 1 000. */
  intervalMs?: number;
  /** Snapshots kept; default 300 (5 minutes at 1 s). */
  historySize?: number;
  /** Timeline entries kept; default 200. */
  timelineSize?: number;
  log?: (line: string) => void;
}

/** Emits 'snapshot' (Snapshot) after every round. */
export class Sampler extends EventEmitter {
  readonly intervalMs: number;
  readonly #read: (now: number) => Promise<Reading>;
  readonly #clock: Clock;
  readonly #historySize: number;
  readonly #timelineSize: number;
  readonly #log: (line: string) => void;
  #history: Snapshot[] = [];
  #timeline: TimelineEntry[] = [];
  #previous: Reading | undefined;
  #state: 'idle' | 'running' | 'stopped' = 'idle';
  #cancel: (() => void) | null = null;
  #round: Promise<Snapshot | undefined> | null = null;
  #failures = 0;

  constructor(options: SamplerOptions) {
    super();
    this.#read = options.read;
    this.#clock = options.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? 1_000;
    this.#historySize = options.historySize ?? 300;
    this.#timelineSize = options.timelineSize ?? 200;
    this.#log = options.log ?? (() => {});
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** The snapshots kept, oldest first. */
  history(): Snapshot[] {
    return [...this.#history];
  }

  /** The timeline entries kept, oldest first. */
  timeline(): TimelineEntry[] {
    return [...this.#timeline];
  }

  /** One round now (joins a round under way). Resolves with its snapshot, or undefined if the read failed. */
  tick(): Promise<Snapshot | undefined> {
    this.#round ??= this.#doRound().finally(() => {
      this.#round = null;
    });
    return this.#round;
  }

  /** Starts the rounds (the first at once). Idempotent; a stopped sampler stays stopped. */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'running';
    this.#schedule(0);
  }

  /** Stops the rounds; resolves once a round under way has finished. Idempotent. */
  async stop(): Promise<void> {
    this.#state = 'stopped';
    this.#cancel?.();
    this.#cancel = null;
    await this.#round;
  }

  #schedule(ms: number): void {
    this.#cancel = this.#clock.setTimer(() => {
      this.#cancel = null;
      void this.tick().finally(() => {
        if (this.#state === 'running') this.#schedule(this.intervalMs);
      });
    }, ms);
  }

  async #doRound(): Promise<Snapshot | undefined> {
    let reading: Reading;
    try {
      reading = await this.#read(this.#clock.now());
      this.#failures = 0;
    } catch (err) {
      // say it once per run of failures, not every second
      if (this.#failures++ === 0) this.#log(`dashboard: a sampling round failed: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
    const snapshot = snapshotOf(this.#previous, reading);
    this.#previous = reading;
    this.#history.push(snapshot);
    if (this.#history.length > this.#historySize) this.#history.splice(0, this.#history.length - this.#historySize);
    if (snapshot.timeline.length > 0) {
      this.#timeline.push(...snapshot.timeline);
      if (this.#timeline.length > this.#timelineSize) this.#timeline.splice(0, this.#timeline.length - this.#timelineSize);
    }
    this.emit('snapshot', snapshot);
    return snapshot;
  }
}
