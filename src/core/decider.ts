/**
 * The decision core across rounds, as the live controller and the simulator both run it:
 * `decide()` each round with the history the last round returned. A round whose scale will not
 * happen (a dry run, a pause) is `held`: its scale event is dropped from the history, so rate
 * limits and cooldowns are not charged for a scale that never happened.
 *
 * What the policies learn over hours (the SLO policy's arrivals per minute and their period,
 * core/season.ts) is its `memory()`: the live controller keeps it in PostgreSQL and hands it
 * back to a new Decider after a restart, so a restart does not forget a day's pattern. The rest
 * of the history (events, counters, smoothed estimates) is about the last minutes and is
 * rebuilt by the rounds. Memory is keyed by the policy's label (its name, or its kind and
 * position): a policy renamed or moved starts afresh, and memory of a policy no longer in the
 * service is neither restored nor kept.
 */
import { decide } from './decide.js';
import { policyLabel } from './policies.js';
import { type DecideInput, type Decision, type History, type ServicePolicy, emptyHistory } from './types.js';

/**
 * The live controller's schedule by default, which the simulator runs too: a round every
 * `intervalSeconds` (from one interval after start), and a poll of the oldest job's age every
 * `urgentPollSeconds` that runs a round when it crosses an SLO's wait (`autoscale.interval_seconds`,
 * `autoscale.urgent_poll_seconds`).
 */
export const ROUND_SCHEDULE = { intervalSeconds: 5, urgentPollSeconds: 0.5 } as const;

/** One round's input: what was measured now (the policy and history are the decider's). */
export type RoundInput = Omit<DecideInput, 'policy' | 'history'>;

/** The parts of a policy's state that outlive the process, by the policy's state key. */
export type Memory = Record<string, Record<string, unknown>>;

/** Keys of a policy's state that are memory (the SLO policy's learned periodicity). */
const DURABLE = ['season'] as const;

export class Decider {
  #history: History = emptyHistory();

  /** The state keys of this service's policies: memory under any other key is not theirs. */
  readonly #keys: ReadonlySet<string>;

  constructor(
    readonly policy: ServicePolicy,
    memory?: Memory,
  ) {
    this.#keys = new Set(policy.policies.map((p, i) => `policy:${policyLabel(p, i)}`));
    if (memory) this.#history = { ...this.#history, state: structuredClone(this.#own(memory)) };
  }

  #own(memory: Memory): Memory {
    return Object.fromEntries(Object.entries(memory).filter(([key]) => this.#keys.has(key)));
  }

  round(input: RoundInput, options: { held?: boolean } = {}): Decision {
    const decision = decide({ ...input, policy: this.policy, history: this.#history });
    const h = decision.history;
    this.#history = options.held ? { ...h, events: h.events.filter((e) => e.at !== input.now) } : h;
    return decision;
  }

  /** What the policies learned that a restart should not lose (a JSON-friendly copy). */
  memory(): Memory {
    const out: Memory = {};
    for (const [key, state] of Object.entries(this.#history.state)) {
      if (!this.#keys.has(key) || !state || typeof state !== 'object') continue;
      const s = state as Record<string, unknown>;
      const kept = Object.fromEntries(DURABLE.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]));
      if (Object.keys(kept).length > 0) out[key] = kept;
    }
    return structuredClone(out);
  }
}
