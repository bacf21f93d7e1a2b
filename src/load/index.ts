/** The load generator's public API. */
export { Histogram, type LatencyStats } from './histogram.js';
export { type LoadHooks, type LoadOptions, type Progress, RATE_PER_THREAD, parseTarget, planLoad, runLoad } from './run.js';
export { arrivals, type ScheduleSpec } from './schedule.js';
export { durationArg, parseDuration, parseStages, type Stage, valueAt } from './stages.js';
export { formatSummary, type Summary, summaryJson } from './summary.js';
export { checkThresholds, parseThreshold, type Threshold, type ThresholdResult } from './thresholds.js';
export { loadTraceFile, parseLoadTrace } from './trace.js';
export { DEMO_JOB, parseHeaders, type RequestTemplate } from './template.js';
