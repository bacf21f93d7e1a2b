/**
 * The SLO policy: "a fraction A of jobs start within W seconds". See docs/slo-policy.md for the
 * model and its assumptions.
 *
 * Each round it estimates the arrival rate from the counter (sub-window rates: a fast estimate
 * that wins on a step up, a median, and a clipped least-squares line whose trend, when clear of
 * the noise, is projected over the start-up delay; and a burst envelope that scale-in must
 * still serve), and proposes the larger of (a) the smallest
 * count whose predicted share of waits over W (Erlang C with an Allen-Cunneen variability
 * correction) is under half of 1 - A, on the sustained rate, and (b) the count that serves the
 * backlog in time (FIFO deadlines), counting starting and new replicas only from when they
 * will be ready.
 *
 * State (per policy, in History.state):
 * - `belowSince`: when a smaller count first qualified for scale-in with margin. undefined ->
 *   now when one qualifies; back to undefined when it stops qualifying, the policy proposes up,
 *   or a recent scale-up blocks scale-in; after the hold the smaller count is proposed.
 * - `service`: the smoothed service-time mean and scv, and the completions counter at the last
 *   update (the weight of a new reading grows with the jobs completed since).
 * - `damping`: the flap-damping penalty, its last update time, and the scale-down event last
 *   counted (each scale-up within 300 s of a scale-down adds one; it halves every half-life).
 */
import { estimateRate } from './arrival-rate.js';
import { replicasForWait } from './erlang.js';
import { rateOver } from './metrics.js';
import { type PolicyContext, type Proposal, round } from './policies.js';
import { SEASON_BUCKET_MS, type Season, minuteDispersion, minuteTrend, readSeason, recordArrivals, recursByMinute, seasonalPeak, withPeriod } from './season.js';
import { SLO_DEFAULTS, reversalOf } from './slo-defaults.js';
import { METRIC, type ServicePolicy, type SloPolicy } from './types.js';

export { SLO_DEFAULTS, reversalOf } from './slo-defaults.js';
export { type RateEstimate, absorbedRate, burstRate, estimateRate, recurring } from './arrival-rate.js';

interface SloState {
  belowSince?: number;
  /** Smoothed service-time mean and scv, the completions counter they were last updated at, and the jobs behind them. */
  service?: { mean: number; scv: number; completions: number; weight?: number };
  /** Flap damping: a penalty that grows by one per reversal and halves every `dampingHalfLifeSeconds`. */
  damping?: { level: number; at: number; counted: number };
  /** Little's-law service time (jobs in flight over throughput), smoothed over time, and when it was last updated. */
  little?: { mean: number; at: number };
  /** Jobs in flight at each round of the slow window, [at, count]: Little's law takes their mean. */
  flight?: Array<[number, number]>;
  /** Arrivals per minute and the period they repeat with (season.ts). */
  season?: Season;
}

function num(o: object, key: string): number | undefined {
  const v = (o as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function readState(state: unknown): SloState {
  if (!state || typeof state !== 'object') return {};
  const out: SloState = {};
  const belowSince = num(state, 'belowSince');
  if (belowSince !== undefined) out.belowSince = belowSince;
  const service = (state as Record<string, unknown>).service;
  if (service && typeof service === 'object') {
    const mean = num(service, 'mean');
    const scv = num(service, 'scv');
    const completions = num(service, 'completions');
    const weight = num(service, 'weight');
    if (mean !== undefined && scv !== undefined && completions !== undefined) out.service = { mean, scv, completions, ...(weight === undefined ? {} : { weight }) };
  }
  const little = (state as Record<string, unknown>).little;
  if (little && typeof little === 'object') {
    const mean = num(little, 'mean');
    const at = num(little, 'at');
    if (mean !== undefined && at !== undefined) out.little = { mean, at };
  }
  const flight = (state as Record<string, unknown>).flight;
  if (Array.isArray(flight)) {
    out.flight = flight.filter((x): x is [number, number] => Array.isArray(x) && x.length === 2 && Number.isFinite(x[0]) && Number.isFinite(x[1]));
  }
  const season = readSeason((state as Record<string, unknown>).season);
  if (season) out.season = season;
  const damping = (state as Record<string, unknown>).damping;
  if (damping && typeof damping === 'object') {
    const level = num(damping, 'level');
    const at = num(damping, 'at');
    const counted = num(damping, 'counted');
    if (level !== undefined && at !== undefined && counted !== undefined) out.damping = { level, at, counted };
  }
  return out;
}

/** Time over which a new Little's-law reading gets about two thirds of the weight, ms. */
const LITTLE_SMOOTHING_MS = 60_000;

/** Completions over which a new service-time reading gets about two thirds of the weight. */
const SERVICE_SMOOTHING_JOBS = 200;

/**
 * Smooths the service-time reading by the jobs behind it: a mean over the jobs completed, the
 * older ones forgotten at a rate of e per SERVICE_SMOOTHING_JOBS. The estimate carries its own
 * weight (the jobs behind it), so a first reading taken off two jobs is not held as if two hundred
 * stood behind it: the next readings outweigh it as soon as they hold more jobs.
 *
 * The variability is pooled the same way, through the second moment (mean² (1 + scv)), not by
 * averaging each reading's scv: a reading's scv measures the spread within its own window only,
 * so windows of one or two long jobs each read near 0 whatever the jobs' spread (3-minute jobs of
 * scv 3.5 read 0.4), while their means, which differ from window to window, carry the rest of it.
 */
function smoothService(prev: SloState['service'], mean: number, scv: number, completions: number | undefined): NonNullable<SloState['service']> {
  if (!prev || completions === undefined || completions < prev.completions) {
    const done = completions ?? 0;
    return { mean, scv, completions: done, weight: Math.min(SERVICE_SMOOTHING_JOBS, Math.max(1, done)) };
  }
  const kept = Math.exp(-(completions - prev.completions) / SERVICE_SMOOTHING_JOBS);
  const prior = (prev.weight ?? SERVICE_SMOOTHING_JOBS) * kept;
  const fresh = SERVICE_SMOOTHING_JOBS * (1 - kept);
  const w = prior + fresh > 0 ? fresh / (prior + fresh) : 0;
  const pooled = prev.mean + w * (mean - prev.mean);
  const moment = (m: number, v: number) => m * m * (1 + v);
  const second = moment(prev.mean, prev.scv) + w * (moment(mean, scv) - moment(prev.mean, prev.scv));
  return { mean: pooled, scv: pooled > 0 ? Math.max(0, second / (pooled * pooled) - 1) : scv, completions, weight: prior + fresh };
}

/**
 * Replicas such that `work` replica-seconds are done by `deadline`: ready ones work the whole
 * time, starting ones from when they will be ready, new ones after the full start-up.
 */
function replicasForWork(work: number, deadline: number, startup: number, ready: number, starting: readonly number[]): number {
  if (work <= 0) return 0;
  if (work <= ready * deadline) return Math.ceil(work / deadline - 1e-9);
  let done = ready * deadline;
  let count = ready;
  for (const remaining of [...starting].sort((a, b) => a - b)) {
    if (done >= work) return count;
    done += Math.max(0, deadline - remaining);
    count++;
  }
  if (done >= work) return count;
  return count + Math.ceil((work - done) / (deadline - startup) - 1e-9);
}

/**
 * Seconds until each replica still starting is ready, from the scale-up events of the last
 * start-up period (newest first); replicas no event explains are assumed to have just started.
 */
export function startingReplicas(events: ReadonlyArray<{ at: number; from: number; to: number }>, now: number, count: number, startupSeconds: number): number[] {
  const out: number[] = [];
  for (let i = events.length - 1; i >= 0 && out.length < count; i--) {
    const e = events[i]!;
    const age = (now - e.at) / 1000;
    if (age >= startupSeconds) break;
    for (let k = 0; k < e.to - e.from && out.length < count; k++) out.push(startupSeconds - age);
  }
  while (out.length < count) out.push(startupSeconds);
  return out;
}

/**
 * Replicas to keep the backlog's promise, new ones counted only from when they will be ready:
 * - the jobs waiting now must all start before the oldest of them reaches W (when new replicas
 *   can still help by then);
 * - by the horizon (start-up plus what is left of W, or a share of W when start-up eats it),
 *   the backlog and every job arriving before horizon - W must have started (FIFO: later
 *   arrivals may still be waiting and on time).
 */
export function replicasToDrain(input: {
  backlog: number;
  lambda: number;
  serviceTime: number;
  concurrency: number;
  waitSeconds: number;
  startupSeconds: number;
  ready: number;
  /** Seconds until each replica still starting is ready. */
  starting?: readonly number[];
  /** Seconds the oldest waiting job has waited (0 if unknown). */
  oldestAge?: number;
}): number {
  const { backlog, lambda, serviceTime, concurrency, waitSeconds, startupSeconds } = input;
  const ready = Math.max(0, input.ready);
  const perJob = serviceTime / concurrency; // replica-seconds per job
  const newServe = Math.max(waitSeconds - startupSeconds, Math.min(waitSeconds, startupSeconds) * SLO_DEFAULTS.drainShare);
  const horizon = startupSeconds + newServe;
  const starting = input.starting ?? [];
  const byHorizon = replicasForWork((backlog + lambda * Math.max(0, horizon - waitSeconds)) * perJob, horizon, startupSeconds, ready, starting);
  const deadline = waitSeconds - (input.oldestAge ?? 0);
  // When new replicas would have only a sliver of time left before that deadline, they cannot
  // save those jobs; sizing for it would ask for a crowd that is useless a moment later.
  const byDeadline = deadline - startupSeconds >= waitSeconds / 4 ? replicasForWork(backlog * perJob, deadline, startupSeconds, ready, starting) : 0;
  return Math.max(byHorizon, byDeadline);
}

/** The SLO policy's proposal for one round. */
export function proposeSlo(p: SloPolicy, label: string, ctx: PolicyContext): Proposal {
  const series = ctx.counters[METRIC.arrivalsTotal] ?? [];
  const serviceReading = ctx.view.values.get(METRIC.serviceTimeMean);
  const backlog = ctx.view.values.get(METRIC.queueDepth);
  const missing: string[] = [];
  if (!ctx.view.values.has(METRIC.arrivalsTotal)) missing.push(METRIC.arrivalsTotal);
  if (serviceReading === undefined) missing.push(METRIC.serviceTimeMean);
  if (backlog === undefined) missing.push(METRIC.queueDepth);
  const prevState = readState(ctx.state);
  // The arrivals per minute are counted every round with a counter reading, whatever else is
  // missing: a pattern is learned over hours, and a quiet service (no completions, so no service
  // time) is part of it.
  const total = ctx.view.values.get(METRIC.arrivalsTotal);
  const startup = p.startupSeconds ?? 0;
  const season = total === undefined ? prevState.season : withPeriod(recordArrivals(prevState.season, ctx.now, total), Math.ceil((startup * 1000) / SEASON_BUCKET_MS));
  const counted = season === undefined ? undefined : { ...(ctx.state as object | undefined), season };
  if (serviceReading === undefined && backlog !== undefined && backlog > 0 && ctx.current === 0 && missing.length === 1) {
    // At zero replicas no job completes, so no service time is ever measured: start one.
    return {
      replicas: 1,
      missing,
      reasons: [{ code: 'SloBacklog', policy: label, replicas: 1, message: `${label}: ${backlog} jobs wait and no replica runs; starting one (no service time is known yet).` }],
      ...(counted ? { state: counted } : {}),
    };
  }
  if (missing.length > 0 || serviceReading === undefined || backlog === undefined) return { missing, reasons: [], ...(counted ? { state: counted } : {}) };
  const service = smoothService(
    prevState.service,
    serviceReading,
    ctx.view.values.get(METRIC.serviceTimeScv) ?? 1,
    ctx.view.values.get(METRIC.completionsTotal),
  );
  const scv = service.scv;
  const c = Math.max(1, p.concurrency);
  // Warm-up: the first jobs to complete are the short ones, so early readings run low. Little's
  // law on the slots (jobs in flight / completions per second) counts the long jobs still running.
  // It is read over the slow window and smoothed like the mean: a reading off a few completions
  // swings widely, and taking the larger of two noisy figures every round ratchets the count up.
  const completed = ctx.view.values.get(METRIC.completionsTotal);
  // Jobs in service cannot outnumber the slots of a steady fleet: the queue counts as active also
  // the jobs a worker has claimed ahead of starting them (docs/queue.md), which are waiting.
  const active = ctx.view.values.get(METRIC.inFlight);
  const inFlight = active === undefined ? undefined : Math.min(active, Math.max(ctx.current, ctx.ready) * c);
  const completions = ctx.counters[METRIC.completionsTotal] ?? [];
  const windowMs = (p.slowWindowSeconds ?? SLO_DEFAULTS.slowWindowSeconds) * 1000;
  const throughput = rateOver(completions, ctx.now - windowMs, ctx.now);
  // Only over a window with a steady fleet: new replicas fill slots before completions catch up.
  const steady = !ctx.events.some((e) => e.at > ctx.now - windowMs - (p.startupSeconds ?? 0) * 1000);
  // Little's law relates the mean number in service over the window to the throughput over the
  // same window: the count now, read at the onset of a burst, is above that mean and reads long.
  const flight: Array<[number, number]> = [...(prevState.flight ?? []).filter(([at]) => at > ctx.now - windowMs && at < ctx.now), ...(inFlight === undefined ? [] : [[ctx.now, inFlight] as [number, number]])];
  const meanFlight = flight.length > 0 ? flight.reduce((sum, [, n]) => sum + n, 0) / flight.length : undefined;
  // A window shorter than the time it reads cannot show it (its jobs outlast the window): then the
  // count now, which holds the jobs started before the window, is the better evidence.
  // Seconds of the last `ms` the completions counter covers.
  const covered = (ms: number): number => (completions.length > 0 ? Math.min(ms, ctx.now - completions[0]!.at) / 1000 : 0);
  const span = covered(windowMs);
  const windowReading = meanFlight !== undefined && throughput !== undefined && throughput > 0 ? meanFlight / throughput : undefined;
  const nowReading = inFlight !== undefined && throughput !== undefined && throughput > 0 ? inFlight / throughput : undefined;
  const littleReading = !steady ? undefined : windowReading !== undefined && windowReading <= span ? windowReading : nowReading;
  // A reading off a handful of completions is mostly noise (one job done in the window reads as
  // the window's length times the jobs in flight): its weight grows with the completions behind it.
  const behind = throughput === undefined ? 0 : throughput * span;
  const reliability = Math.min(1, behind / SLO_DEFAULTS.littleFullWeightCompletions);
  const prevLittle = prevState.little;
  const little =
    littleReading === undefined
      ? prevLittle
      : prevLittle === undefined || ctx.now < prevLittle.at
        ? { mean: Math.max(service.mean, littleReading * reliability), at: ctx.now }
        : { mean: prevLittle.mean + (1 - Math.exp(-(ctx.now - prevLittle.at) / LITTLE_SMOOTHING_MS)) * reliability * (littleReading - prevLittle.mean), at: ctx.now };
  const warm = completed !== undefined && completed < SLO_DEFAULTS.warmupCompletions;
  const estimated = warm && little !== undefined ? Math.max(service.mean, little.mean) : service.mean;
  // With jobs already waiting past W every slot is busy, so jobs in flight over completions per
  // second is the service time itself (Little's law on a saturated fleet), with no warm-up bias:
  // the count is sized on it when it reads higher than the estimate, which early readings and
  // heavy tails leave too low, and which is then what makes jobs late.
  const age = ctx.view.values.get(METRIC.oldestAge) ?? 0;
  let busyLittle = 0;
  if (steady && backlog > 0 && age > p.waitSeconds && inFlight !== undefined) {
    // Only since the oldest job started waiting has every slot been busy: over a longer window the
    // throughput counts quieter times, and the reading runs long (a burst's 0.5 s jobs read 1.1 s).
    const busyMs = Math.min(windowMs, age * 1000);
    const busyThroughput = rateOver(completions, ctx.now - busyMs, ctx.now);
    if (busyThroughput !== undefined && busyThroughput * covered(busyMs) >= SLO_DEFAULTS.saturatedMinCompletions) busyLittle = inFlight / busyThroughput;
  }
  const serviceTime = Math.max(estimated, busyLittle);
  // Flap damping (as in BGP route-flap damping): each scale-up soon after a scale-down adds one
  // to a penalty that halves every half-life; scale-in then remembers bursts and holds longer.
  const lastEvent = ctx.events[ctx.events.length - 1];
  let damping = prevState.damping
    ? {
        ...prevState.damping,
        level: prevState.damping.level * 0.5 ** ((ctx.now - prevState.damping.at) / 1000 / SLO_DEFAULTS.dampingHalfLifeSeconds),
        at: ctx.now,
      }
    : { level: 0, at: ctx.now, counted: -1 };
  const recentDown =
    lastEvent !== undefined && lastEvent.to < lastEvent.from && ctx.now - lastEvent.at < reversalOf(p) * 1000 && lastEvent.at > damping.counted;
  const damp = 1 + damping.level;
  // When a start-up alone takes W, a scale-in into a trough is paid in late jobs at the next swing
  // (the replicas asked for then come too late) and in a flap: the scale-in noise margin then takes
  // the arrivals' measured swing from minute to minute, not Poisson noise alone (a noisy plateau
  // went 5 -> 2 in its troughs and back, nine times in two hours).
  const rate = estimateRate(
    series,
    ctx.now,
    p,
    SLO_DEFAULTS.burstMemorySeconds * damp,
    recursByMinute(season, SLO_DEFAULTS.burstRecurrences),
    startup >= p.waitSeconds ? minuteDispersion(season) : 1,
  );
  // One counter point gives no rate yet, and under three sub-windows no level: plan for the
  // backlog (and what arrives at the newest rate while replicas start), and do not scale in.
  const warming = rate === undefined || rate.short;
  const lambda = rate?.planned ?? 0;
  const allowedLate = 1 - p.attainment;
  const cap = Math.max(1, ctx.maxReplicas, ctx.current);
  // The wait target is a steady-state figure: size it on the sustained rate. A step up reaches
  // the count first through the backlog part, which plans with the fast rate.
  // A loose budget is capacity: the queue absorbs any swing of the rate shorter than what is left
  // of W after a start-up (a burst's jobs wait, and start in time, while the backlog part brings
  // replicas for what lasts longer). So the steady-state figure reads the rate averaged over that
  // span when it is longer than the slow window.
  const absorbMs = Math.max(0, p.waitSeconds - startup) * 1000;
  const averaged = absorbMs > (p.slowWindowSeconds ?? SLO_DEFAULTS.slowWindowSeconds) * 1000 ? rateOver(series, ctx.now - absorbMs, ctx.now) : undefined;
  // Recurring bursts are the same: the envelope of the recent ones (what a fleet must serve for
  // each of them to drain within its share of W) is the steady rate, not the on-phase rate.
  // A swing to a level already seen within the reversal window is noise the queue absorbs (a
  // count that followed it would be scaled in and out again): the envelope of the recent bursts.
  // Each of those rates promises that the queue absorbs what lies above it: a swing drains within
  // its share of W. A job already waiting longer than that share shows the promise broken (a ramp
  // whose noisy minutes read as recurring bursts, a level that outlasts the ones before it), and
  // then the sustained rate is planned for: the backlog part alone acts only when the backlog
  // fills the fleet's W, by which time new replicas come too late when a start-up is most of W.
  const keeps = (share: number): boolean => age <= share * p.waitSeconds;
  const reactiveRate = Math.min(
    warming ? 0 : rate.sustained,
    averaged ?? Infinity,
    rate?.absorbed !== undefined && keeps(SLO_DEFAULTS.absorbWaitShare) ? rate.absorbed : Infinity,
    rate?.recurring && (startup < p.waitSeconds || (!rate.rising && !rate.jumped)) && keeps(SLO_DEFAULTS.burstWaitShare) ? rate.burstDown : Infinity,
  );
  // Learned periodicity: when a reaction cannot land within W (a start-up and a sub-window to see
  // the change take longer), the fleet a recurring burst needs must be there before it. The rate
  // the period forecasts over the next start-up and the minute after is then sized for now.
  const reactionLate = startup + (p.fastWindowSeconds ?? SLO_DEFAULTS.fastWindowSeconds) / 2 > p.waitSeconds;
  const seasonal = season && reactionLate ? seasonalPeak(season, ctx.now, ctx.now + startup * 1000 + SEASON_BUCKET_MS) : undefined;
  // A ramp read off the per-minute counts, when a reaction cannot land within W: the two-minute
  // mean lags it by a minute, and the count that lag leaves short makes jobs late on every climb
  // (a 99% diurnal at 98.82%, where target-cpu met it). Its rate a start-up from now is planned for.
  const trend = reactionLate ? minuteTrend(season, ctx.now, SLO_DEFAULTS.trendDeviations) : undefined;
  const ramp = trend === undefined ? undefined : trend.rate + trend.slope * startup;
  const steadyRate = Math.max(reactiveRate, seasonal ?? 0, ramp ?? 0);
  const model = { lambda: steadyRate, serviceTime, scv, wait: p.waitSeconds };
  const forWait = replicasForWait(model, allowedLate * SLO_DEFAULTS.upShare, c, cap);
  const drainInput = {
    backlog,
    lambda,
    serviceTime,
    concurrency: c,
    waitSeconds: p.waitSeconds,
    startupSeconds: startup,
    ready: Math.min(ctx.ready, ctx.current),
    starting: startingReplicas(ctx.events, ctx.now, Math.max(0, ctx.current - ctx.ready), startup),
    oldestAge: age,
  };
  const forDrain = replicasToDrain(drainInput);
  const needed = Math.max(forWait, forDrain);
  const learned = { ...(little === undefined ? {} : { little }), flight, ...(season === undefined ? {} : { season }) };
  const period = seasonal !== undefined && seasonal > reactiveRate ? `, ${round(seasonal)}/s forecast by a ${season!.detected!.period!.buckets}-minute period` : '';
  const facts = `arrivals ${round(rate?.fast ?? 0)}/s fast, ${round(rate?.slow ?? 0)}/s slow, planned ${round(lambda)}/s${period}; service ${round(serviceTime)} s (scv ${round(scv)}); backlog ${round(backlog)}, oldest ${round(age)} s`;
  const state = prevState;

  if (needed >= ctx.current || warming) {
    const replicas = Math.max(needed, warming ? ctx.current : 0);
    if (replicas > ctx.current && recentDown && lastEvent) damping = { level: damping.level + 1, at: ctx.now, counted: lastEvent.at };
    const code = forDrain > forWait ? 'SloBacklog' : 'SloWaitTarget';
    // the counter is there, its history is short: no steady rate yet, and no scale-in
    const young = warming ? `; the arrivals counter covers under three sub-windows yet, so no steady rate is planned and ${ctx.current} replicas are the floor` : '';
    const message =
      code === 'SloBacklog'
        ? `${label}: ${replicas} replicas drain the backlog within the horizon (${facts})${young}.`
        : `${label}: ${replicas} replicas keep the predicted share of waits over ${p.waitSeconds} s under ${round(allowedLate * SLO_DEFAULTS.upShare)} (${facts})${young}.`;
    return { replicas, missing: [], reasons: [{ code, policy: label, replicas, message }], state: { service, damping, ...learned } };
  }

  // Scale-in: the smaller count must serve the cautious rate (two deviations of noise above the
  // plan) at a stricter share (the margin), and keep qualifying for the hold time.
  const margin = p.margin ?? SLO_DEFAULTS.margin;
  const cautious = { ...model, lambda: rate.cautious };
  // A learned period: a scale-in that the next burst it forecasts would undo within the reversal
  // window (pre-scaling for a burst starts a start-up and a minute ahead of it) is a flap booked in
  // advance, so the count that burst's wait target will ask for is kept.
  const nextBurst = season ? seasonalPeak(season, ctx.now, ctx.now + (reversalOf(p) + startup) * 1000 + SEASON_BUCKET_MS) : undefined;
  // Scale to zero when a cold start fits in W: nothing waits, nothing is needed, under one job is
  // expected at the cautious rate during a start-up (a cold start then delays one job, by less
  // than W), and under one at the planned rate within the reversal window (the next job's cold
  // start is then not a flap, more often than not). The core goes to zero only with an activation.
  const coldStartFits =
    needed === 0 && backlog === 0 && startup < p.waitSeconds && rate.cautious * startup < 1 && rate.planned * reversalOf(p) < 1;
  const smaller = Math.max(
    needed,
    replicasToDrain({ ...drainInput, lambda: rate.cautious }),
    coldStartFits ? 0 : replicasForWait(cautious, allowedLate * margin, c, cap),
    // burst memory: a repeat of the bursts remembered must still drain within its share of W
    Math.min(cap, Math.ceil((rate.burstDown * serviceTime) / c - 1e-9)),
    // a learned period: the count the next burst it forecasts will ask for
    nextBurst === undefined ? 0 : replicasForWait({ ...model, lambda: nextBurst }, allowedLate * SLO_DEFAULTS.upShare, c, cap),
  );
  // every scale-in hold keeps the current count and says which guard held it
  const holdAt = (message: string, belowSince?: number) => ({
    replicas: ctx.current,
    missing: [],
    reasons: [{ code: 'SloHysteresis' as const, policy: label, replicas: ctx.current, message: `${label}: ${message} (${facts}).` }],
    state: { ...(belowSince === undefined ? {} : { belowSince }), service, damping, ...learned },
  });
  if (smaller >= ctx.current) {
    return holdAt(
      `${needed} replicas would meet the target, but not with the scale-in margin or for the bursts of the last ${round(SLO_DEFAULTS.burstMemorySeconds * damp)} s (envelope ${round(rate.burstDown)}/s), so it keeps ${ctx.current}`,
    );
  }
  const lastUp = ctx.events.reduce((t, e) => (e.to > e.from && e.at > t ? e.at : t), -Infinity);
  const sinceUp = (ctx.now - lastUp) / 1000;
  if (sinceUp < reversalOf(p)) {
    return holdAt(
      `${smaller} replicas would meet the target with margin, but the last scale-up was ${Math.round(sinceUp)} s ago (under ${reversalOf(p)} s), so it keeps ${ctx.current}`,
    );
  }
  const since = state.belowSince ?? ctx.now;
  const hold = (p.scaleInHoldSeconds ?? SLO_DEFAULTS.scaleInHoldSeconds) * 1000 * damp;
  if (ctx.now - since < hold) {
    return holdAt(`${smaller} replicas would meet the target with margin; holding ${ctx.current} until that has held for ${hold / 1000} s`, since);
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
    state: { belowSince: since, service, damping, ...learned },
  };
}

/**
 * The wait of a service's tightest SLO policy, seconds (undefined without one): the age of the
 * oldest job at which the live controller's urgent trigger runs a round, and the simulator's.
 */
export function urgentWaitSeconds(policy: ServicePolicy): number | undefined {
  const waits = policy.policies.flatMap((p) => (p.kind === 'slo' ? [p.waitSeconds] : []));
  return waits.length > 0 ? Math.min(...waits) : undefined;
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
