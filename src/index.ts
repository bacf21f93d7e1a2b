/**
 * The public library: what `import { ... } from 'tidescale'` gives. docs/library.md lists it;
 * anything not exported here is internal and may change in any release.
 */

// --- the queue, from application code
export { DEFAULT_QUEUE, createQueue } from './library/queue.js';
export type { JobOptions, JobSpec, QueueClient, QueueClientOptions } from './library/queue.js';
export type { EnqueueResult, Job, JobState, QueueStats } from './runtime/queue/types.js';

// --- handlers
export { defineHandlers } from './runtime/handlers/types.js';
export type { HandlerMap, JobContext, JobHandler, PayloadOf, Payloads } from './runtime/handlers/types.js';
export { builtinHandlers, loadHandlers } from './runtime/handlers/index.js';

// --- a worker and the jobs API in this process
export { startWorker } from './runtime/worker/worker.js';
export type { RunningWorker, WorkerOptions } from './runtime/worker/worker.js';
export { startApi } from './runtime/api/start.js';
export type { RunningApi, StartApiOptions } from './runtime/api/start.js';

// --- the decision core (pure: `now` is an argument)
export { METRIC, decide, emptyHistory, erlangC, parseServicePolicy, queueSamples, replicasForWait, servicePolicySchema } from './core/index.js';
export type { Decision, DecideInput, History, Reason, ReasonCode, Sample, ServicePolicy } from './core/index.js';

// --- the simulator
export { simulate } from './sim/engine.js';
export type { RunOptions, RunResult, SimPolicy } from './sim/engine.js';
export { drawJobs } from './sim/jobs.js';
export { POLICY_NAMES, prepareScenario, runPolicy } from './sim/run.js';
export type { LoadedScenario, PolicyName, PolicyRun } from './sim/run.js';
export { loadScenario, parseScenario, parseTrace } from './sim/scenario.js';
export type { Scenario, Trace } from './sim/scenario.js';
export { configPolicy } from './sim/tide.js';

// --- errors
export { ERRORS, TideError } from './errors.js';
export type { ErrorCode } from './errors.js';
