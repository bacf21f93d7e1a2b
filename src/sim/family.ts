/**
 * A family of generated scenarios, so that a policy is judged on a distribution of workloads and
 * not on a handful of names. One seed names a family exactly: every draw goes through one Rng in
 * a fixed order.
 *
 * Each scenario draws, independently: a traffic shape (on/off, sparse bursts, diurnal, noisy
 * plateau, staircase, flash crowd, ramp-hold-drop, a retry storm after an outage, sawtooth, or a
 * mixture of two), the job size (lognormal, mean 50 ms to 3 min, cv 0.2 to 2), the concurrency
 * (1 to 32 slots), the start-up time (3 to 120 s), the SLO (wait from a fifth of to five times
 * max(start-up, service time); attainment 0.95 or 0.99), min replicas (0, 1 or 2) and the peak
 * demand (1 to 25 replicas' worth, fewer when the job count would pass `MAX_JOBS`). Arrival
 * counts per step are Poisson draws around the shape's rate, so the noise is the real kind.
 */
import { Rng } from './rng.js';
import type { Scenario, Trace } from './scenario.js';

export const FAMILY_SHAPES = [
  'on-off',
  'sparse-bursts',
  'diurnal',
  'noisy-plateau',
  'staircase',
  'flash-crowd',
  'ramp-hold-drop',
  'retry-storm',
  'sawtooth',
  'mixture',
] as const;
export type FamilyShape = (typeof FAMILY_SHAPES)[number];

/** Expected jobs per generated scenario at most (keeps a family of hundreds to minutes). */
export const MAX_JOBS = 150_000;
const STEP_SECONDS = 5;

/** What was drawn for one scenario, for reports ("the worst five scenarios with their parameters"). */
export interface FamilyParams {
  shape: string;
  hours: number;
  serviceMs: number;
  cv: number;
  concurrency: number;
  startupSeconds: number;
  waitSeconds: number;
  attainment: number;
  min: number;
  max: number;
  peakReplicas: number;
}

export interface FamilyMember {
  scenario: Scenario;
  trace: Trace;
  params: FamilyParams;
}

type ShapeFn = (t: number) => number;

function logUniform(rng: Rng, lo: number, hi: number): number {
  return Math.exp(Math.log(lo) + rng.float() * (Math.log(hi) - Math.log(lo)));
}

function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + rng.float() * (hi - lo);
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng.float() * xs.length)]!;
}

/** One shape: the rate relative to the peak (0..1) at second t of a trace `d` seconds long. */
function drawShape(rng: Rng, shape: FamilyShape, d: number): ShapeFn {
  const base = logUniform(rng, 0.02, 0.3);
  switch (shape) {
    case 'on-off': {
      const period = logUniform(rng, 120, 3600);
      const duty = uniform(rng, 0.1, 0.6);
      const phase = rng.float() * period;
      return (t) => (((t + phase) % period) / period < duty ? 1 : base);
    }
    case 'sparse-bursts': {
      const quiet = rng.float() < 0.5 ? 0 : base / 10;
      const gap = logUniform(rng, 600, 3600);
      const bursts: Array<[number, number]> = [];
      for (let t = gap * rng.float(); t < d; t += gap * -Math.log(1 - rng.float()) + 60) bursts.push([t, t + logUniform(rng, 30, 300)]);
      return (t) => (bursts.some(([a, b]) => t >= a && t < b) ? 1 : quiet);
    }
    case 'diurnal': {
      const days = pick(rng, [1, 2]);
      const phase = rng.float() * 2 * Math.PI;
      return (t) => base + (1 - base) * (0.5 - 0.5 * Math.cos((2 * Math.PI * days * t) / d + phase));
    }
    case 'noisy-plateau': {
      const sigma = uniform(rng, 0.15, 0.5);
      const hold = pick(rng, [STEP_SECONDS, 30, 60]);
      let at = -Infinity;
      let v = 1;
      return (t) => {
        if (t - at >= hold) {
          at = t;
          v = Math.exp(sigma * rng.normal() - sigma * sigma);
        }
        return Math.min(1, 0.6 * v);
      };
    }
    case 'staircase': {
      const k = 3 + Math.floor(rng.float() * 4);
      const levels = Array.from({ length: k }, () => uniform(rng, base, 1));
      levels[Math.floor(rng.float() * k)] = 1;
      if (rng.float() < 0.5) levels.sort((a, b) => a - b);
      return (t) => levels[Math.min(k - 1, Math.floor((t / d) * k))]!;
    }
    case 'flash-crowd': {
      const at = uniform(rng, 0.2, 0.7) * d;
      const hold = logUniform(rng, 120, 900);
      const decay = logUniform(rng, 60, 900);
      return (t) => (t < at ? base : t < at + hold ? 1 : base + (1 - base) * Math.exp(-(t - at - hold) / decay));
    }
    case 'ramp-hold-drop': {
      const r0 = uniform(rng, 0.05, 0.3) * d;
      const r1 = r0 + uniform(rng, 0.1, 0.3) * d;
      const h1 = r1 + uniform(rng, 0.1, 0.3) * d;
      return (t) => (t < r0 ? base : t < r1 ? base + ((1 - base) * (t - r0)) / (r1 - r0) : t < h1 ? 1 : base);
    }
    case 'retry-storm': {
      const level = uniform(rng, 0.2, 0.4);
      const at = uniform(rng, 0.2, 0.6) * d;
      const outage = logUniform(rng, 60, 600);
      const tau = logUniform(rng, 30, 180);
      // the jobs the outage held back come back as retries, decaying exponentially
      const surge = Math.min((level * outage * uniform(rng, 1, 3)) / tau, 1 - level);
      return (t) => (t < at ? level : t < at + outage ? level * 0.05 : level + surge * Math.exp(-(t - at - outage) / tau));
    }
    case 'sawtooth': {
      const period = logUniform(rng, 300, 1800);
      return (t) => base + (1 - base) * ((t % period) / period);
    }
    case 'mixture': {
      const parts = FAMILY_SHAPES.filter((s) => s !== 'mixture');
      const a = drawShape(rng, pick(rng, parts), d);
      const b = drawShape(rng, pick(rng, parts), d);
      const w = uniform(rng, 0.3, 0.7);
      return (t) => w * a(t) + (1 - w) * b(t);
    }
  }
}

/** The `index`-th scenario of the family of `seed` (independent of how many are generated). */
export function familyMember(seed: number, index: number): FamilyMember {
  const rng = new Rng(((seed >>> 0) * 1_000_003 + index) >>> 0);
  const shape = FAMILY_SHAPES[index % FAMILY_SHAPES.length]!;
  const hours = pick(rng, [1, 1.5, 2, 3]);
  const d = hours * 3600;
  const serviceSeconds = logUniform(rng, 0.05, 180);
  const cv = uniform(rng, 0.2, 2);
  const concurrency = pick(rng, [1, 2, 4, 8, 16, 32]);
  const startup = logUniform(rng, 3, 120);
  const wait = logUniform(rng, 0.2, 5) * Math.max(startup, serviceSeconds);
  const attainment = pick(rng, [0.95, 0.99]);
  const min = pick(rng, [0, 1, 2]);
  const fn = drawShape(rng, shape, d);
  const steps = Math.round(d / STEP_SECONDS);
  const rel = new Float64Array(steps);
  let sum = 0;
  let peak = 0;
  for (let i = 0; i < steps; i++) {
    rel[i] = Math.max(0, fn(i * STEP_SECONDS + STEP_SECONDS / 2));
    sum += rel[i]!;
    peak = Math.max(peak, rel[i]!);
  }
  peak = Math.max(peak, 1e-9);
  let peakReplicas = logUniform(rng, 1, 25);
  let peakRate = (peakReplicas * concurrency) / serviceSeconds;
  const expected = (sum / peak) * peakRate * STEP_SECONDS;
  if (expected > MAX_JOBS) {
    peakRate *= MAX_JOBS / expected;
    peakReplicas = (peakRate * serviceSeconds) / concurrency;
  }
  const t = new Float64Array(steps);
  const count = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    t[i] = i * STEP_SECONDS;
    count[i] = rng.poisson((rel[i]! / peak) * peakRate * STEP_SECONDS);
  }
  const max = Math.max(min + 1, Math.ceil(peakReplicas * 2) + 2);
  const initial = Math.min(max, Math.max(min, Math.ceil((rel[0]! / peak) * peakReplicas)));
  const name = `f${seed}-${String(index).padStart(3, '0')}-${shape}`;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const scenario: Scenario = {
    name,
    file: `${name}.yaml`,
    traceFile: `${name}.csv`,
    stepSeconds: STEP_SECONDS,
    scale: 1,
    serviceTime: { dist: 'lognormal', meanSeconds: r3(serviceSeconds), cv: r3(cv) },
    concurrency,
    startupSeconds: r3(startup),
    initialReplicas: initial,
    minReplicas: min,
    maxReplicas: max,
    slo: { waitSeconds: r3(wait), attainment },
  };
  return {
    scenario,
    trace: { file: scenario.traceFile, t, count },
    params: {
      shape,
      hours,
      serviceMs: Math.round(serviceSeconds * 1000),
      cv: r3(cv),
      concurrency,
      startupSeconds: r3(startup),
      waitSeconds: r3(wait),
      attainment,
      min,
      max,
      peakReplicas: r3(peakReplicas),
    },
  };
}

/** `count` scenarios of the family of `seed`. */
export function generateFamily(count: number, seed: number): FamilyMember[] {
  return Array.from({ length: count }, (_, i) => familyMember(seed, i));
}

/** The scenario as a YAML file beside its trace (for `tide simulate --family --out`). */
export function scenarioYaml(m: FamilyMember): string {
  const s = m.scenario;
  const st = s.serviceTime as { meanSeconds: number; cv: number };
  return [
    `# generated: ${JSON.stringify(m.params)}`,
    `name: ${s.name}`,
    `trace: ${s.traceFile}`,
    `step_seconds: ${s.stepSeconds}`,
    `service_time: { dist: lognormal, mean_ms: ${Math.round(st.meanSeconds * 1e6) / 1000}, cv: ${st.cv} }`,
    `concurrency: ${s.concurrency}`,
    `startup_seconds: ${s.startupSeconds}`,
    `initial_replicas: ${s.initialReplicas}`,
    `min_replicas: ${s.minReplicas}`,
    `max_replicas: ${s.maxReplicas}`,
    `slo: { wait_seconds: ${s.slo.waitSeconds}, attainment: ${s.slo.attainment} }`,
    '',
  ].join('\n');
}

export function traceCsv(trace: Trace): string {
  const rows = ['t,count'];
  for (let i = 0; i < trace.t.length; i++) rows.push(`${trace.t[i]},${trace.count[i]}`);
  return `${rows.join('\n')}\n`;
}

/** The policies a family scenario is run with: tide and what it is judged against. */
export const FAMILY_POLICIES = ['tide', 'hpa', 'keda', 'step-table', 'cron-script', 'target-cpu', 'fixed-peak'] as const;
