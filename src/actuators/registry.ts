/**
 * The actuator registry: ONE explicit map from `kind` to definition. Adding a platform means
 * one file in this folder and one line here (docs/actuators.md walks through it).
 */

import { TideError } from '../errors.js';
import { fieldIssues, fieldPath } from '../fields.js';
import { composeActuator } from './compose.js';
import { ecsActuator } from './ecs.js';
import { kubernetesActuator } from './kubernetes.js';
import { localActuator } from './local.js';
import type { Actuator, ActuatorContext, ActuatorDefinition } from './types.js';

/** Every actuator kind, by the `kind` a config names. */
export const ACTUATORS = {
  local: localActuator,
  compose: composeActuator,
  kubernetes: kubernetesActuator,
  ecs: ecsActuator,
} as const satisfies Record<string, ActuatorDefinition>;

export type ActuatorKind = keyof typeof ACTUATORS;

/** True when `kind` names a registered actuator. */
export function isActuatorKind(kind: unknown): kind is ActuatorKind {
  return typeof kind === 'string' && Object.hasOwn(ACTUATORS, kind);
}

/**
 * Validates an actuator config (`{ kind, ...fields }`) and creates the actuator. A bad config
 * is a TIDE_ACTUATOR_CONFIG naming the field, under `options.field` (default "actuator"),
 * with `options.file` when the config came from one.
 */
export function createActuator(raw: unknown, context: ActuatorContext = {}, options: { field?: string; file?: string } = {}): Actuator {
  const prefix = options.field ?? 'actuator';
  const where = (field: string) => ({ ...(options.file ? { file: options.file } : {}), field });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TideError('TIDE_ACTUATOR_CONFIG', `An actuator config is an object with a "kind" (${Object.keys(ACTUATORS).join(', ')}).`, { where: where(prefix) });
  }
  const { kind, ...fields } = raw as Record<string, unknown>;
  if (!isActuatorKind(kind)) {
    throw new TideError('TIDE_ACTUATOR_CONFIG', `Unknown actuator kind ${JSON.stringify(kind)}; the kinds are ${Object.keys(ACTUATORS).join(', ')}.`, {
      where: where(fieldPath(['kind'], prefix)),
    });
  }
  const definition: ActuatorDefinition = ACTUATORS[kind];
  const parsed = definition.schema.safeParse(fields);
  if (!parsed.success) {
    const issues = fieldIssues(parsed.error.issues, prefix);
    const first = issues[0]!;
    throw new TideError('TIDE_ACTUATOR_CONFIG', `Actuator ${definition.kind}: ${first.field}: ${first.message}.`, {
      where: where(first.field),
      details: { issues: issues.map(({ field, message }) => ({ field, message })) },
    });
  }
  try {
    return definition.create(parsed.data, context);
  } catch (err) {
    // A factory names its own field ("kubeconfig"); place it under the caller's prefix.
    if (err instanceof TideError && err.code === 'TIDE_ACTUATOR_CONFIG' && err.where?.field) {
      throw new TideError(err.code, err.message, { cause: err.cause, where: where(fieldPath([err.where.field], prefix)), details: err.details });
    }
    throw err;
  }
}
