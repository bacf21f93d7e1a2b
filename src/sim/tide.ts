/**
 * The `tide` and `config` policies: the decision core driven by the simulator's virtual clock
 * through the same Decider as the live controller's rounds (core/decider.ts: every 5 s by
 * default from one interval after start, the history carried from round to round, the same metric
 * names), plus a round when the oldest job's age crosses the SLO's wait, as the live urgent trigger.
 */
import { Decider, ROUND_SCHEDULE } from '../core/decider.js';
import { urgentWaitSeconds } from '../core/slo.js';
import { type Decision, METRIC, type Sample, type ServicePolicy, queueSamples } from '../core/types.js';
import type { Observation, SimPolicy } from './engine.js';
import type { Scenario } from './scenario.js';

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

/** A SimPolicy around the decision core: one Decider round per tick, and the urgent trigger's (polled every `urgentPollSeconds`). */
export function corePolicy(
  name: string,
  policy: ServicePolicy,
  intervalSeconds: number = ROUND_SCHEDULE.intervalSeconds,
  onDecision?: (obs: Observation, decision: Decision) => void,
  urgentPollSeconds?: number,
): SimPolicy {
  const decider = new Decider(policy);
  const urgent = urgentWaitSeconds(policy);
  return {
    name,
    intervalSeconds,
    ...(urgent === undefined ? {} : { urgentWaitSeconds: urgent }),
    ...(urgentPollSeconds === undefined ? {} : { urgentPollSeconds }),
    decide: (obs: Observation): number => {
      const decision = decider.round({ now: obs.now * 1000, current: obs.desired, ready: obs.ready, samples: samplesOf(obs) });
      onDecision?.(obs, decision);
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

/** The `tide` policy for a scenario. */
export function tidePolicy(scenario: Scenario): SimPolicy {
  return corePolicy('tide', tideServicePolicy(scenario));
}

/** A service's own `scale:` block run through the core, as `tide autoscale` would run it. */
export function configPolicy(
  servicePolicy: ServicePolicy,
  options: { name?: string; intervalSeconds?: number; urgentPollSeconds?: number; onDecision?: (obs: Observation, decision: Decision) => void } = {},
): SimPolicy {
  return corePolicy(options.name ?? 'config', servicePolicy, options.intervalSeconds, options.onDecision, options.urgentPollSeconds);
}
