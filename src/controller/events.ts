/**
 * Waiting on the controller's 'decision' events (emitted after each round's journal row): for
 * the end-to-end tests and the reaction benchmark, which wait on a round rather than sleep.
 */
import type { EventEmitter } from 'node:events';

import type { DecisionRecord } from './controller.js';

/**
 * Resolves with the first 'decision' `emitter` emits that satisfies `ok`, then stops
 * listening. It has no timeout of its own: the caller's test or deadline bounds the wait.
 */
export function decisionWhere(emitter: EventEmitter, ok: (r: DecisionRecord) => boolean): Promise<DecisionRecord> {
  return new Promise((resolve) => {
    const on = (r: DecisionRecord) => {
      if (!ok(r)) return;
      emitter.off('decision', on);
      resolve(r);
    };
    emitter.on('decision', on);
  });
}
