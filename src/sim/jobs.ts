/**
 * The jobs of a scenario, drawn once from its seed and shared by every policy: arrival times
 * (sorted) and service times, as Float64Arrays indexed by job.
 *
 * Draw order is fixed (per step: the stochastic rounding of a scaled count, then the arrival
 * offsets; then every service time), so one seed gives the same jobs on every machine.
 */
import { Rng } from './rng.js';
import type { Scenario, Trace } from './scenario.js';

export interface Jobs {
  /** Arrival times in seconds, ascending. */
  arrivals: Float64Array;
  /** Service time of each job, seconds (the time it holds one slot). */
  service: Float64Array;
  /** The trace's length: the last step's end. A run ends here. */
  traceSeconds: number;
  /** Sum of all service times over the concurrency: every slot busy all the time. */
  lowerBoundSeconds: number;
  seed: number;
}

/**
 * Draws the jobs. Arrivals are uniform inside their step. A `scale` that makes a count
 * fractional is rounded stochastically (floor, plus one with the fractional part's
 * probability), so the expected total is exactly `scale` times the trace's total.
 */
export function drawJobs(scenario: Scenario, trace: Trace, seed = 1): Jobs {
  const rng = new Rng(seed);
  const steps = trace.t.length;
  const counts = new Uint32Array(steps);
  let total = 0;
  for (let i = 0; i < steps; i++) {
    const x = trace.count[i]! * scenario.scale;
    const whole = Math.floor(x);
    const c = whole + (x - whole > 0 && rng.float() < x - whole ? 1 : 0);
    counts[i] = c;
    total += c;
  }
  const step = scenario.stepSeconds;
  const arrivals = new Float64Array(total);
  let j = 0;
  for (let i = 0; i < steps; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    const t0 = trace.t[i]!;
    const from = j;
    for (let k = 0; k < c; k++) arrivals[j++] = t0 + step * rng.float();
    if (c > 1) arrivals.subarray(from, j).sort();
  }
  const service = new Float64Array(total);
  const st = scenario.serviceTime;
  let sum = 0;
  if (st.dist === 'constant') {
    service.fill(st.meanSeconds);
    sum = st.meanSeconds * total;
  } else if (st.dist === 'exponential') {
    for (let k = 0; k < total; k++) {
      const v = -st.meanSeconds * Math.log(1 - rng.float());
      service[k] = v;
      sum += v;
    }
  } else {
    // lognormal with the given mean and coefficient of variation
    const sigma2 = Math.log(1 + st.cv * st.cv);
    const sigma = Math.sqrt(sigma2);
    const mu = Math.log(st.meanSeconds) - sigma2 / 2;
    for (let k = 0; k < total; k++) {
      const v = Math.exp(mu + sigma * rng.normal());
      service[k] = v;
      sum += v;
    }
  }
  const lastT = trace.t[steps - 1]!;
  return { arrivals, service, traceSeconds: lastT + step, lowerBoundSeconds: sum / scenario.concurrency, seed };
}
