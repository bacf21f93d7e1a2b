/**
 * The `tide` and `config` policies: the decision core's `decide()` driven by the simulator's
 * virtual clock, exactly as the live controller drives it (every 5 s by default, the history
 * passed back each time, the same metric names).
 *
 * The core module is loaded on first use (`loadCore`), so the simulator, its baselines and the
 * CLI work without it and the core can evolve separately.
 */
import { TideError } from '../errors.js';
import { type DecideInput, type Decision, METRIC, type Sample, type ServicePolicy, emptyHistory, queueSamples } from '../core/types.js';
import type { Observation, SimPolicy } from './engine.js';
import type { Scenario } from './scenario.js';

export type DecideFn = (input: DecideInput) => Decision;

/** The live controller's default decision interval. */
export const CONTROLLER_INTERVAL_SECONDS = 5;

let core: DecideFn | undefined;

/** Loads core `decide()` once; TIDE_SIM_CORE_UNAVAILABLE when it cannot be loaded. */
export async function loadCore(): Promise<DecideFn> {
  if (core) return core;
  // loaded lazily: the baselines and the CLI keep working even if the core fails to load
  let mod: { decide?: unknown };
  try {
    mod = await import('../core/decide.js');
  } catch (cause) {
    throw new TideError('TIDE_SIM_CORE_UNAVAILABLE', `The decision core (src/core/decide) cannot be loaded: ${(cause as Error).message}`, { cause });
  }
  if (typeof mod.decide !== 'function') {
    throw new TideError('TIDE_SIM_CORE_UNAVAILABLE', 'The decision core module does not export a decide() function.');
  }
  core = mod.decide as DecideFn;
  return core;
}

/** The samples a live metric source would publish for the observation, at virtual ms. */
export function samplesOf(obs: Observation): Sample[] {
  const at = obs.now * 1000;
  // no completion yet: the live source has no service-time figure either
  const served = Number.isFinite(obs.serviceTimeMeanSeconds);
  return [
    ...queueSamples(
      {
        depth: obs.queueDepth,
        oldestAgeSeconds: obs.oldestAgeSeconds,
        arrivalsTotal: obs.arrivalsTotal,
        completionsTotal: obs.completionsTotal,
        inFlight: obs.inFlight,
        serviceTimeMeanSeconds: served ? obs.serviceTimeMeanSeconds : undefined,
        serviceTimeScv: served ? obs.serviceTimeScv : undefined,
      },
      at,
    ),
    { metric: METRIC.utilization, value: obs.utilization, at },
  ];
}

/** A SimPolicy around a loaded decide(): keeps the core's history between calls. */
export function corePolicy(name: string, policy: ServicePolicy, decide: DecideFn, intervalSeconds = CONTROLLER_INTERVAL_SECONDS): SimPolicy {
  let history = emptyHistory();
  return {
    name,
    intervalSeconds,
    decide(obs: Observation): number {
      const decision = decide({ now: obs.now * 1000, current: obs.desired, ready: obs.ready, samples: samplesOf(obs), policy, history });
      history = decision.history;
      return decision.desired;
    },
  };
}

/**
 * The SLO policy a scenario asks for: its bounds and its promise, nothing tuned. A scenario that
 * allows zero replicas gets the activation every queue scaler uses (any waiting job wakes the
 * service; KEDA's default threshold 0), since the core only scales to and from zero with one.
 */
export function tideServicePolicy(scenario: Scenario): ServicePolicy {
  return {
    ...(scenario.minReplicas === 0 ? { activation: { metric: METRIC.queueDepth, threshold: 0 } } : {}),
    min: scenario.minReplicas,
    max: scenario.maxReplicas,
    policies: [
      {
        kind: 'slo',
        waitSeconds: scenario.slo.waitSeconds,
        attainment: scenario.slo.attainment,
        concurrency: scenario.concurrency,
        startupSeconds: scenario.startupSeconds,
      },
    ],
  };
}

/** The `tide` policy for a scenario (loads the core on first use). */
export async function tidePolicy(scenario: Scenario): Promise<SimPolicy> {
  return corePolicy('tide', tideServicePolicy(scenario), await loadCore());
}

/** A service's own `scale:` block run through the core, as `tide autoscale` would run it. */
export async function configPolicy(servicePolicy: ServicePolicy, options: { name?: string; intervalSeconds?: number } = {}): Promise<SimPolicy> {
  return corePolicy(options.name ?? 'config', servicePolicy, await loadCore(), options.intervalSeconds);
}
