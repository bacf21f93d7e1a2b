/**
 * The request schemas of the jobs API (JSON Schema, compiled by Fastify's ajv), and the
 * shapes of the bodies they admit. Unknown fields are rejected, never stripped: a typo in
 * `max_atempts` must fail loudly rather than enqueue a job with the default.
 */
import { JOB_LIMITS } from '../queue/limits.js';

/** Largest batch one POST /v1/jobs accepts. */
export const MAX_BATCH = 1000;

/** The latest time a JS Date can hold, in ms since the epoch. */
export const MAX_TIME_MS = 8.64e15;

/** One job as a client sends it (snake_case on the wire). */
export interface JobRequest {
  queue?: string;
  handler: string;
  payload?: unknown;
  priority?: number;
  delay_ms?: number;
  run_at?: string | number;
  max_attempts?: number;
  idempotency_key?: string;
}

export type EnqueueBody = JobRequest | { jobs: JobRequest[] };

// the same names the queue engine accepts, so a bad name is caught here with its field
const name = { type: 'string', minLength: 1, maxLength: JOB_LIMITS.nameMaxLength, pattern: JOB_LIMITS.namePattern } as const;

export const jobSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['handler'],
  properties: {
    queue: name,
    handler: name,
    payload: {},
    priority: { type: 'integer', minimum: -32768, maximum: 32767 },
    // a year: anything longer is a mistake in units, not a plan
    delay_ms: { type: 'integer', minimum: 0, maximum: 366 * 24 * 3600 * 1000 },
    // ms since the epoch up to the largest time a JS Date holds (PostgreSQL holds more)
    run_at: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'integer', minimum: 0, maximum: MAX_TIME_MS }] },
    max_attempts: { type: 'integer', minimum: JOB_LIMITS.maxAttempts.min, maximum: JOB_LIMITS.maxAttempts.max },
    idempotency_key: { type: 'string', minLength: 1, maxLength: JOB_LIMITS.idempotencyKeyMaxLength },
  },
} as const;

/** A body with `jobs` is a batch; anything else must be one job. */
export const enqueueBodySchema = {
  type: 'object',
  if: { required: ['jobs'] },
  then: {
    type: 'object',
    additionalProperties: false,
    required: ['jobs'],
    properties: { jobs: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: jobSchema } },
  },
  else: jobSchema,
} as const;

export const jobIdParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string' } },
} as const;

export function isBatch(body: EnqueueBody): body is { jobs: JobRequest[] } {
  return 'jobs' in body;
}
