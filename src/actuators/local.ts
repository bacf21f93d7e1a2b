/**
 * Local processes: the supervisor that `tide up` runs (src/supervisor). The actuator calls it
 * in-process; it has no config of its own.
 *
 * `desired` and `ready` are the supervisor's per-service `desired` and `healthy` counts. A
 * scale is made `by: 'autoscaler'`, so the supervisor can tell it from a scale by hand. The
 * supervisor's scale resolves only when new replicas are healthy (or failed), so a scale-out
 * takes as long as replicas take to start. Supervisor errors become actuator errors with the
 * supervisor's code kept in `details` and as the cause.
 */
import { z } from 'zod';

import type { Decision } from '../core/types.js';
import { TideError, isTideError } from '../errors.js';
import { assertReplicas, assertServiceName, scaleLogEntry } from './replicas.js';
import type { Actuator, ActuatorContext, ActuatorDefinition, ActuatorLog, LocalSupervisor, Observed } from './types.js';

export const localSchema = z.strictObject({});

export class LocalActuator implements Actuator {
  readonly #supervisor: LocalSupervisor;
  readonly #log: ActuatorLog;

  constructor(supervisor: LocalSupervisor, context: ActuatorContext = {}) {
    this.#supervisor = supervisor;
    this.#log = context.log ?? (() => {});
  }

  async observe(service: string): Promise<Observed> {
    assertServiceName(service);
    const found = this.#supervisor.ps().services.find((s) => s.name === service);
    if (!found) throw new TideError('TIDE_ACTUATOR_NOT_FOUND', `The local supervisor runs no service "${service}".`, { details: { service } });
    return { desired: found.desired, ready: found.healthy };
  }

  async scale(service: string, replicas: number, why: Decision): Promise<void> {
    assertReplicas(service, replicas);
    assertServiceName(service);
    const from = this.#supervisor.ps().services.find((s) => s.name === service)?.desired;
    try {
      await this.#supervisor.scale(service, replicas, { by: 'autoscaler' });
    } catch (err) {
      const supervisorCode = isTideError(err) ? err.code : undefined;
      const code = supervisorCode === 'TIDE_SUPERVISOR_UNKNOWN_SERVICE' ? 'TIDE_ACTUATOR_NOT_FOUND' : 'TIDE_ACTUATOR_FAILED';
      const message = err instanceof Error ? err.message : String(err);
      throw new TideError(code, `Local supervisor: cannot scale ${service} to ${replicas}: ${message}`, { cause: err, details: { service, supervisorCode } });
    }
    this.#log(scaleLogEntry('local', service, replicas, why, from));
  }

  async close(): Promise<void> {}
}

export const localActuator: ActuatorDefinition<typeof localSchema> = {
  kind: 'local',
  summary: 'Local processes run by `tide up` (its supervisor), the default on one machine.',
  schema: localSchema,
  create(_config, context) {
    if (!context.supervisor) {
      throw new TideError('TIDE_ACTUATOR_CONFIG', 'The local actuator works inside `tide up`, which runs the supervisor; elsewhere choose compose, kubernetes or ecs.', {
        where: { field: 'kind' },
      });
    }
    return new LocalActuator(context.supervisor, context);
  },
};
