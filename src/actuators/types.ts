/**
 * The actuator seam: how the control loop applies a decision on a platform. One file per
 * platform implements `Actuator`; registry.ts maps each `kind` to its definition.
 */
import type { z } from 'zod';

import type { Decision } from '../core/types.js';

/** What the platform reports for one service. */
export interface Observed {
  /** Replicas the platform has been asked for (its desired or spec count). */
  desired: number;
  /** Replicas up and taking work (ready, healthy, running). */
  ready: number;
}

/** Applies replica counts on one platform. Every method may throw a TideError (TIDE_ACTUATOR_*). */
export interface Actuator {
  /** The platform's desired and ready replica counts for `service`. */
  observe(service: string): Promise<Observed>;
  /**
   * Asks the platform for `replicas` replicas of `service`. `why` is the decision that led
   * here; an actuator passes its reasons to the platform (annotation) or its log where it can.
   * A count that is not a whole number >= 0 is refused (TIDE_ACTUATOR_REPLICAS) before any
   * platform call. Scaling to the count the platform already has is a no-op, not an error.
   */
  scale(service: string, replicas: number, why: Decision): Promise<void>;
  /** Releases clients and sockets. Idempotent. */
  close(): Promise<void>;
}

/** One scale event, for the actuator's log: no credentials, no config, only the facts. */
export interface ScaleLogEntry {
  actuator: string;
  service: string;
  /** The desired count before the call, when the actuator knew it. */
  from?: number;
  to: number;
  /** The decision's reason codes and sentences. */
  reasons: Array<{ code: string; message: string }>;
}

/** Where an actuator reports what it did. */
export type ActuatorLog = (entry: ScaleLogEntry) => void;

/**
 * The part of the local supervisor (src/supervisor) the `local` actuator uses, stated here
 * so actuators do not depend on the supervisor module. The Supervisor class fits it.
 */
export interface LocalSupervisor {
  /** Resolves when new replicas are healthy (or failed) and removed ones have exited. */
  scale(service: string, replicas: number, options?: { by?: string | null }): Promise<unknown>;
  ps(): { services: ReadonlyArray<{ name: string; desired: number; healthy: number }> };
}

/** What every actuator may be given besides its config. */
export interface ActuatorContext {
  /** Default: logs nothing (the controller's journal records decisions already). */
  log?: ActuatorLog;
  /** The running supervisor, for the `local` actuator (only `tide up` has one). */
  supervisor?: LocalSupervisor;
}

/**
 * A platform's entry in the registry: its config schema (zod) and a factory that receives
 * the validated config.
 */
export interface ActuatorDefinition<S extends z.ZodType = z.ZodType> {
  kind: string;
  /** One line for docs and `tide help`. */
  summary: string;
  schema: S;
  // A method (not a property) so a definition with a narrower config type fits the registry map.
  create(config: z.output<S>, context: ActuatorContext): Actuator;
}
