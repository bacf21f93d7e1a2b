/**
 * Queueing math for the SLO policy: Erlang B and C (M/M/N), the tail of the waiting time, and
 * the smallest server count that keeps a share of late jobs under a bound. Everything runs on
 * the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)), which never overflows (no factorials
 * or powers), so it works for thousands of servers.
 */

/** Erlang B: blocking probability with `servers` servers and offered load `offered` (erlangs). */
export function erlangB(servers: number, offered: number): number {
  if (offered <= 0) return 0;
  let b = 1;
  for (let k = 1; k <= servers; k++) b = (offered * b) / (k + offered * b);
  return b;
}

/** From Erlang B at N servers to Erlang C (probability an arrival waits); 1 when N <= a. */
function cFromB(servers: number, offered: number, b: number): number {
  if (servers <= offered) return 1;
  return (servers * b) / (servers - offered * (1 - b));
}

/** Erlang C: probability that an arrival has to wait, M/M/N. 1 when the system is unstable (N <= a). */
export function erlangC(servers: number, offered: number): number {
  if (offered <= 0) return 0;
  return cFromB(servers, offered, erlangB(servers, offered));
}

export interface WaitModel {
  /** Arrival rate, jobs/s. */
  lambda: number;
  /** Mean service time, s. */
  serviceTime: number;
  /** Squared coefficient of variation of service time (1 for exponential). */
  scv: number;
  /** The wait bound, s. */
  wait: number;
}

/**
 * Allen-Cunneen factor: M/G/N waits are about (ca^2 + cs^2) / 2 times M/M/N's, with Poisson
 * arrivals (ca^2 = 1). Applied to the rate of the exponential tail, not to P(wait > 0).
 */
function variabilityFactor(scv: number): number {
  return Math.max(0.05, (1 + Math.max(0, scv)) / 2);
}

/** Predicted share of jobs waiting longer than `wait`, with N = `servers` slots: C(N,a) exp(-(N - a) W / (S k)). */
export function probWaitExceeds(servers: number, m: WaitModel): number {
  const a = m.lambda * m.serviceTime;
  if (a <= 0) return 0;
  if (servers <= a) return 1;
  const c = erlangC(servers, a);
  return c * Math.exp(-((servers - a) * m.wait) / (m.serviceTime * variabilityFactor(m.scv)));
}

/**
 * The smallest multiple of `slotsPerReplica` servers (returned as replicas) whose predicted share
 * of waits over `m.wait` is at most `maxLate`, or `cap` if even that many do not suffice.
 * One pass of the B recursion, checked at each replica boundary.
 */
export function replicasForWait(m: WaitModel, maxLate: number, slotsPerReplica: number, cap: number): number {
  const a = m.lambda * m.serviceTime;
  if (a <= 0 || !Number.isFinite(a)) return a > 0 ? cap : 0;
  const k = variabilityFactor(m.scv);
  const maxServers = cap * slotsPerReplica;
  let b = 1;
  for (let n = 1; n <= maxServers; n++) {
    b = (a * b) / (n + a * b);
    if (n % slotsPerReplica !== 0 || n <= a) continue;
    const late = cFromB(n, a, b) * Math.exp(-((n - a) * m.wait) / (m.serviceTime * k));
    if (late <= maxLate) return n / slotsPerReplica;
  }
  return cap;
}
