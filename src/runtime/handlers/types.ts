/**
 * What a job handler is: an async function of the job's payload and a context, returning
 * the result stored with the job. Users export an object of these from their handlers module;
 * `defineHandlers` keeps each one's payload type, so the queue client can type `enqueue`.
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

/** Any map of handler functions, each with its own payload type (what `defineHandlers` takes). */
// `any`, not `unknown`: a handler declaring `(p: { url: string })` must fit the map
export type HandlerMap = Record<string, (payload: any, ctx: JobContext) => unknown>;

/** The payload type of a handler function. */
export type PayloadOf<F> = F extends (payload: infer P, ...rest: never[]) => unknown ? P : unknown;

/** Handler name -> payload type, for a handler map (`Payloads<typeof handlers>`). */
export type Payloads<H extends HandlerMap> = { [K in keyof H & string]: PayloadOf<H[K]> };

/**
 * Declares a handlers module's handlers with their payload types, unchanged at run time:
 * `export default defineHandlers({ resize: async (p: { url: string }, ctx) => ... })`, then
 * `createQueue<typeof handlers>()` types `enqueue('resize', { url })`.
 */
export function defineHandlers<const H extends HandlerMap>(handlers: H): H {
  return handlers;
}
