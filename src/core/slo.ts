/**
 * The SLO policy: "a fraction A of jobs start within W seconds". See docs/slo-policy.md for the
 * model and its assumptions.
 *
 * Each round it estimates the arrival rate (a fast and a slow window; the fast one wins on the
 * way up), projects it over the start-up delay with the trend between the two, and proposes the
 * larger of (a) the smallest count whose predicted share of waits over W (Erlang C with an
 * Allen-Cunneen variability correction) is under a share of 1 - A, and (b) the count that drains
 * the backlog plus what arrives meanwhile within the horizon, counting new replicas only from
 * when they will be ready.
 *
 * State (per policy, in History.state): `belowSince`, when a smaller count first qualified for
 * scale-in with margin. Transitions: undefined -> now when a smaller count qualifies; back to
 * undefined when it stops qualifying or the policy proposes up; after `scaleInHoldSeconds` of
 * qualifying the smaller count is proposed.
 */
import { replicasForWait } from './erlang.js';
import { rateOver, samplingPeriod, type Series } from './metrics.js';
import { type PolicyContext, type Proposal, round } from './policies.js';
import { METRIC, type ServicePolicy, type SloPolicy } from './types.js';

/** Defaults; exported so docs and tests name one source. */
export const SLO_DEFAULTS = {
  /** Share of the allowed late fraction the policy plans for on the way up (a safety factor). */
  upShare: 0.5,
  margin: 0.25,
  scaleInHoldSeconds: 60,
  fastWindowSeconds: 20,
  slowWindowSeconds: 120,
  /** The start-up projection may add at most this multiple of the current rate. */
  maxProjection: 1,
} as const;

interface SloState {
  belowSince?: number;
}

function readState(state: unknown): SloState {
  if (state && typeof state === 'object' && 'belowSince' in state && typeof state.belowSince === 'number') {
    return { belowSince: state.belowSince };
  }
  return {};
}

/** Arrival-rate estimates, jobs/s. */
export interface RateEstimate {
  fast: number;
  slow: number;
  /** max(fast, slow) plus the start-up projection. */
  planned: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Fast: the lower of the two most recent sub-windows, so a lump that arrived in one interval
 * (a batch) counts as backlog, not as a rate that will last. Slow: the median of sub-window
 * rates over the slow window, for the same reason. Sub-windows are at least one sampling period.
 */
export function estimateRate(series: Series, now: number, p: SloPolicy): RateEstimate | undefined {
  const period = samplingPeriod(series);
  if (period === undefined) return undefined;
  const fastMs = (p.fastWindowSeconds ?? SLO_DEFAULTS.fastWindowSeconds) * 1000;
  const slowMs = Math.max(fastMs, (p.slowWindowSeconds ?? SLO_DEFAULTS.slowWindowSeconds) * 1000);
  const sub = Math.max(fastMs / 2, period);
  const r1 = rateOver(series, now - sub, now);
  if (r1 === undefined) return undefined;
  const r2 = rateOver(series, now - 2 * sub, now - sub) ?? r1;
  const fast = Math.min(r1, r2);
  const rates: number[] = [];
  for (let end = now; end > now - slowMs + 1; end -= sub) {
    const r = rateOver(series, end - sub, end);
    if (r === undefined) break;
    rates.push(r);
  }
  const slow = rates.length > 0 ? median(rates) : fast;
  const base = Math.max(fast, slow);
  // Trend between the centres of the two windows, projected over the start-up delay.
  const startup = p.startupSeconds ?? 0;
  const span = Math.max(1, (slowMs / 2 - sub) / 1000);
  const slope = Math.max(0, (fast - slow) / span);
  const planned = base + Math.min(slope * startup, SLO_DEFAULTS.maxProjection * base);
  return { fast, slow, planned };
}

/** Replicas to serve `backlog` plus arrivals at `lambda` within the horizon, new ones counted once ready. */
export function replicasToDrain(input: {
  backlog: number;
  lambda: number;
  serviceTime: number;
  concurrency: number;
  waitSeconds: number;
  startupSeconds: number;
  ready: number;
}): number {
  const { backlog, lambda, serviceTime, concurrency, waitSeconds, startupSeconds } = input;
  // New replicas serve for at least half the wait bound: when start-up is longer than W the
  // backlog cannot be met in time anyway, and the aim becomes draining it soon after.
  const horizon = Math.max(waitSeconds, startupSeconds + waitSeconds / 2);
  const newServe = horizon - startupSeconds;
  const work = ((backlog + lambda * horizon) * serviceTime) / concurrency; // replica-seconds
  if (work <= 0) return 0;
  const ready = Math.max(0, input.ready);
  if (work <= ready * horizon) return Math.ceil(work / horizon - 1e-9);
  return ready + Math.ceil((work - ready * horizon) / newServe - 1e-9);
}

/** The SLO policy's proposal for one round. */
export function proposeSlo(p: SloPolicy, label: string, ctx: PolicyContext): Proposal {
  const series = ctx.counters[METRIC.arrivalsTotal] ?? [];
  const serviceTime = ctx.view.values.get(METRIC.serviceTimeMean);
  const backlog = ctx.view.values.get(METRIC.queueDepth);
  const missing: string[] = [];
  if (!ctx.view.values.has(METRIC.arrivalsTotal)) missing.push(METRIC.arrivalsTotal);
  if (serviceTime === undefined) missing.push(METRIC.serviceTimeMean);
  if (backlog === undefined) missing.push(METRIC.queueDepth);
  if (missing.length > 0 || serviceTime === undefined || backlog === undefined) return { missing, reasons: [] };
  const rate = estimateRate(series, ctx.now, p);
  // One counter point gives no rate yet: plan for the backlog alone, and do not scale in.
  const warming = rate === undefined;
  const lambda = rate?.planned ?? 0;
  const scv = ctx.view.values.get(METRIC.serviceTimeScv) ?? 1;
  const age = ctx.view.values.get(METRIC.oldestAge) ?? 0;
  const c = Math.max(1, p.concurrency);
  const startup = p.startupSeconds ?? 0;
  const allowedLate = 1 - p.attainment;
  const cap = Math.max(1, ctx.maxReplicas, ctx.current);
  const model = { lambda, serviceTime, scv, wait: p.waitSeconds };
  const forWait = replicasForWait(model, allowedLate * SLO_DEFAULTS.upShare, c, cap);
  const forDrain = replicasToDrain({
    backlog,
    lambda,
    serviceTime,
    concurrency: c,
    waitSeconds: p.waitSeconds,
    startupSeconds: startup,
    ready: Math.min(ctx.ready, ctx.current),
  });
  const needed = Math.max(forWait, forDrain);
  const facts = `arrivals ${round(rate?.fast ?? 0)}/s fast, ${round(rate?.slow ?? 0)}/s slow, planned ${round(lambda)}/s; service ${round(serviceTime)} s (scv ${round(scv)}); backlog ${round(backlog)}, oldest ${round(age)} s`;
  const state = readState(ctx.state);

  if (needed >= ctx.current || warming) {
    const replicas = Math.max(needed, warming ? ctx.current : 0);
    const code = forDrain > forWait ? 'SloBacklog' : 'SloWaitTarget';
    const message =
      code === 'SloBacklog'
        ? `${label}: ${replicas} replicas drain the backlog within the horizon (${facts}).`
        : `${label}: ${replicas} replicas keep the predicted share of waits over ${p.waitSeconds} s under ${round(allowedLate * SLO_DEFAULTS.upShare)} (${facts}).`;
    return { replicas, missing: warming ? [METRIC.arrivalsTotal] : [], reasons: [{ code, policy: label, replicas, message }], state: {} };
  }

  // Scale-in: the smaller count must meet a stricter share (the margin) and keep qualifying.
  const margin = p.margin ?? SLO_DEFAULTS.margin;
  const smaller = Math.max(forDrain, replicasForWait(model, allowedLate * margin, c, cap));
  if (smaller >= ctx.current) {
    return {
      replicas: ctx.current,
      missing: [],
      reasons: [
        {
          code: 'SloHysteresis',
          policy: label,
          replicas: ctx.current,
          message: `${label}: ${needed} replicas would meet the target, but not with the scale-in margin, so it keeps ${ctx.current} (${facts}).`,
        },
      ],
      state: {},
    };
  }
  const since = state.belowSince ?? ctx.now;
  const hold = (p.scaleInHoldSeconds ?? SLO_DEFAULTS.scaleInHoldSeconds) * 1000;
  if (ctx.now - since < hold) {
    return {
      replicas: ctx.current,
      missing: [],
      reasons: [
        {
          code: 'SloHysteresis',
          policy: label,
          replicas: ctx.current,
          message: `${label}: ${smaller} replicas would meet the target with margin; holding ${ctx.current} until that has held for ${hold / 1000} s (${facts}).`,
        },
      ],
      state: { belowSince: since },
    };
  }
  return {
    replicas: smaller,
    missing: [],
    reasons: [
      {
        code: 'SloWaitTarget',
        policy: label,
        replicas: smaller,
        message: `${label}: ${smaller} replicas keep the predicted share of waits over ${p.waitSeconds} s under ${round(allowedLate * margin)} (${facts}).`,
      },
    ],
    state: { belowSince: since },
  };
}

/**
 * The ServicePolicy Tidescale recommends for a queue-worker tier with an SLO: the SLO policy
 * alone, with unlimited scale-up (the policy already plans for start-up delay, and the HPA's
 * doubling per 15 s is what makes spikes miss) and the HPA's scale-down stabilization.
 */
export function sloServicePolicy(input: {
  waitSeconds: number;
  attainment: number;
  concurrency: number;
  startupSeconds?: number;
  min: number;
  max: number;
}): ServicePolicy {
  return {
    min: input.min,
    max: input.max,
    policies: [
      {
        kind: 'slo',
        waitSeconds: input.waitSeconds,
        attainment: input.attainment,
        concurrency: input.concurrency,
        ...(input.startupSeconds === undefined ? {} : { startupSeconds: input.startupSeconds }),
      },
    ],
    behavior: {
      // An empty list sets no rate limit.
      scaleUp: { stabilizationWindowSeconds: 0, policies: [] },
      scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
    },
  };
}
