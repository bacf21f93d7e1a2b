/** The controller's own Prometheus metrics. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ControllerMetrics {
  desired: Gauge;
  decisions: Counter;
  sourceFailures: Counter;
  actuatorErrors: Counter;
  tick: Histogram;
  urgent: Counter;
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry];
  return {
    desired: new Gauge({ name: 'tide_controller_desired_replicas', help: 'Replicas the last decision asked for, per service.', labelNames: ['service'], registers }),
    decisions: new Counter({ name: 'tide_controller_decisions_total', help: 'Decisions, by direction (up, down, none).', labelNames: ['service', 'direction'], registers }),
    sourceFailures: new Counter({ name: 'tide_controller_source_failures_total', help: 'Metric source reads that failed or timed out.', labelNames: ['service', 'source'], registers }),
    actuatorErrors: new Counter({ name: 'tide_controller_actuator_errors_total', help: 'Actuator calls (observe or scale) that failed.', labelNames: ['service'], registers }),
    tick: new Histogram({ name: 'tide_controller_tick_seconds', help: 'Duration of one control round over all services.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    urgent: new Counter({ name: 'tide_controller_urgent_rounds_total', help: 'Rounds run at once because the oldest job age crossed the SLO wait.', labelNames: ['service'], registers }),
  };
}
