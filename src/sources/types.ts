/**
 * The metric source seam: how the control loop reads the signals it decides on. One file per
 * backend implements `MetricSource`; registry.ts maps each `kind` to its definition. A source
 * only measures: it never decides anything and never keeps more state than a read needs.
 */
import type { z } from 'zod';

import type { Sample } from '../core/types.js';

/**
 * Reads samples from one backend. Every failure is a TideError (TIDE_SOURCE_*), never an
 * untyped error; an aborted `signal` rejects the read promptly with TIDE_SOURCE_ABORTED.
 */
export interface MetricSource {
  /** The samples of one reading, all stamped with the context clock's `now()`. */
  read(signal: AbortSignal): Promise<Sample[]>;
  /** Releases every connection, pool, socket and timer. Idempotent. */
  close(): Promise<void>;
  /**
   * Sentences explaining why the last read returned fewer samples than configured (an empty
   * PromQL result, a NULL from SQL, the first CPU read with nothing to diff against). Empty
   * when the last read was complete. Optional so simple sources need not implement it.
   */
  notes?(): readonly string[];
}

/** What every source may be given besides its config. */
export interface SourceContext {
  /** The clock that stamps samples and measures ages (ms epoch). Tests inject a fixed one. */
  now(): number;
  /** The local process ids to measure (the `process` source); the supervisor provides them. */
  pids?(): readonly number[] | Promise<readonly number[]>;
  /** Where secrets named in a config (`bearer_token_env`) are looked up. Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * A backend's entry in the registry: the zod schema of its config and a factory that receives
 * the validated config. `create` opens nothing: connections open on the first read, so a
 * control loop can be built while its backends are still starting.
 */
export interface SourceDefinition<TConfig> {
  kind: string;
  /** One line for docs and `tide help`. */
  summary: string;
  schema: z.ZodType<TConfig, unknown>;
  create(config: TConfig, ctx: SourceContext): MetricSource;
}
