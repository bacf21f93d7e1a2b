/** The decision core's public API: pure, deterministic, no I/O. */
export { DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP } from './behavior.js';
export { cronMatches, lastFiring, parseCron, wallClock } from './cron.js';
export { decide } from './decide.js';
export { erlangB, erlangC, probWaitExceeds, replicasForWait } from './erlang.js';
export { boundsAt } from './schedule.js';
export { parseServicePolicy, servicePolicySchema } from './schema.js';
export { SLO_DEFAULTS, estimateRate, replicasToDrain, sloServicePolicy, urgentWaitSeconds } from './slo.js';
export * from './types.js';
