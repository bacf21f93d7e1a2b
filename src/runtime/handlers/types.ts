/**
 * What a job handler is: an async function of the job's payload and a context, returning
 * the result stored with the job. Users export an object of these from their handlers module.
 */
import type { ClaimedJob } from '../queue/types.js';

export interface JobContext {
  job: ClaimedJob;
  workerId: string;
  /** Aborted when the worker's drain grace runs out (the job is being released). */
  signal: AbortSignal;
  log(line: string): void;
}

/**
 * Declared through a method so a handler may type its payload (`(p: { ms: number }) => ...`):
 * method parameters are checked bivariantly, and payloads are validated by the handler anyway.
 */
export type JobHandler = { handle(payload: unknown, ctx: JobContext): unknown }['handle'];

export type Handlers = Record<string, JobHandler>;
