/**
 * What a job may be, in one table: the queue engine checks each enqueue against it and the jobs
 * API's request schema is built from it, so the two cannot drift.
 */

/** The characters of queue and handler names. */
const NAME_CHARS = 'A-Za-z0-9_.:/-';

export const JOB_LIMITS = {
  /** Queue and handler names: 1 to this many of NAME_CHARS. */
  nameMaxLength: 200,
  /** As a JSON Schema pattern (the length is checked apart). */
  namePattern: `^[${NAME_CHARS}]+$`,
  maxAttempts: { min: 1, max: 1000 },
  idempotencyKeyMaxLength: 500,
} as const;

/** A valid queue or handler name. */
export const JOB_NAME = new RegExp(`^[${NAME_CHARS}]{1,${JOB_LIMITS.nameMaxLength}}$`);
