/** The SLO policy's defaults, read by the policy, its rate estimates, the docs and the tests. */
import type { SloPolicy } from './types.js';

/** Defaults of the SLO policy (docs/slo-policy.md explains each); exported so docs and tests name one source. */
export const SLO_DEFAULTS: Readonly<{
  upShare: number;
  margin: number;
  scaleInHoldSeconds: number;
  fastWindowSeconds: number;
  slowWindowSeconds: number;
  maxProjection: number;
  longWindowSeconds: number;
  scaleDownWindowSeconds: number;
  reversalSeconds: number;
  drainShare: number;
  trendDeviations: number;
  burstMemorySeconds: number;
  burstWaitShare: number;
  absorbWaitShare: number;
  burstRecurrences: number;
  onOffDispersion: number;
  jumpFactor: number;
  jumpDeviations: number;
  dampingHalfLifeSeconds: number;
  noiseDeviations: number;
  warmupCompletions: number;
  saturatedMinCompletions: number;
  littleFullWeightCompletions: number;
}> = {
  /** Share of the allowed late fraction the policy plans for on the way up (a safety factor). */
  upShare: 0.5,
  margin: 0.25,
  scaleInHoldSeconds: 15,
  fastWindowSeconds: 10,
  slowWindowSeconds: 120,
  /** The start-up projection may add at most this multiple of the current rate. */
  maxProjection: 1,
  /** Steady traffic is read over this long (see estimateRate). */
  longWindowSeconds: 600,
  /** Default scale-down stabilization window for a service with an SLO policy, seconds. */
  scaleDownWindowSeconds: 30,
  /** No scale-in proposal within this many seconds after a scale-up (a reversal is a flap). */
  reversalSeconds: 300,
  /** When start-up is longer than the wait bound, new replicas must drain within this share of W once ready. */
  drainShare: 1,
  /** A trend is projected over the start-up delay only when its slope is this many deviations above zero. */
  trendDeviations: 4,
  /** Scale-in keeps the burst envelope of this many seconds (times the damping factor). */
  burstMemorySeconds: 120,
  /** In the burst envelope a burst's own backlog may use this share of W (the rest is for the randomness the Erlang part sizes for). */
  burstWaitShare: 0.5,
  /**
   * A swing to a level already seen within the reversal window is absorbed by the queue when its
   * backlog drains within this share of W: half of what scale-in leaves for bursts
   * (`burstWaitShare`), so scale-up always sizes above the scale-in floor.
   */
  absorbWaitShare: 0.25,
  /**
   * Bursts recur when the rates climb across the middle of their range at least this many
   * times, and then the burst envelope remembers them for the reversal window (a scale-in the
   * next burst undoes within it is a flap).
   */
  burstRecurrences: 3,
  /** Sub-window rates whose scatter around the line exceeds this many times the Poisson variance are on/off traffic: no trend is read from them. */
  onOffDispersion: 16,
  /** The newest sub-window alone counts as a step when its rate is over this multiple of the slow level... */
  jumpFactor: 2,
  /** ...and this many Poisson deviations above it. */
  jumpDeviations: 6,
  /** Half-life of the flap-damping penalty, seconds. */
  dampingHalfLifeSeconds: 1800,
  /** Until this many jobs have completed, the service time is at least Little's-law estimate. */
  warmupCompletions: 1000,
  /** Little's law on a saturated fleet is read only over a window with this many completions. */
  saturatedMinCompletions: 5,
  /** A Little's-law reading off this many completions or more gets its full smoothing weight; fewer, proportionally less. */
  littleFullWeightCompletions: 20,
  /** Scale-in plans for this many Poisson deviations of arrival-rate noise above the plan. */
  noiseDeviations: 2,
};

/** The policy's reversal window: how long a scale-up is not undone (`reversalSeconds`, default 300 s). */
export function reversalOf(p: SloPolicy): number {
  return p.reversalSeconds ?? SLO_DEFAULTS.reversalSeconds;
}
