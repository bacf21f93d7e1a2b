/**
 * The decision core across rounds, as the live controller and the simulator both run it:
 * `decide()` each round with the history the last round returned. A round whose scale will not
 * happen (a dry run, a pause) is `held`: its scale event is dropped from the history, so rate
 * limits and cooldowns are not charged for a scale that never happened.
 */
import { decide } from './decide.js';
import { type DecideInput, type Decision, type History, type ServicePolicy, emptyHistory } from './types.js';

/** One round's input: what was measured now (the policy and history are the decider's). */
export type RoundInput = Omit<DecideInput, 'policy' | 'history'>;

export class Decider {
  #history: History = emptyHistory();

  constructor(readonly policy: ServicePolicy) {}

  round(input: RoundInput, options: { held?: boolean } = {}): Decision {
    const decision = decide({ ...input, policy: this.policy, history: this.#history });
    const h = decision.history;
    this.#history = options.held ? { ...h, events: h.events.filter((e) => e.at !== input.now) } : h;
    return decision;
  }
}
