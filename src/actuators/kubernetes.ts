/**
 * Kubernetes: scales a Deployment or StatefulSet through its `scale` subresource with
 * @kubernetes/client-node, as `kubectl scale` and the HPA do.
 *
 * Design note. scale() reads the scale subresource; when `spec.replicas` is already the
 * count, it writes nothing (so repeating a scale is free). Otherwise it sends a JSON merge
 * patch `{ spec: { replicas: N } }` with Content-Type application/merge-patch+json: the
 * generated client would pick application/json-patch+json, the first type the API lists, so
 * the header is set with the client's `setHeaderOptions` middleware. A 409 Conflict (the
 * object changed under us) is answered by reading again and retrying, `conflictRetries`
 * times at most.
 *
 * Every request carries an AbortSignal with `timeoutSeconds` (set by a middleware), so a
 * hung API server stalls one control-loop round, not the loop.
 *
 * The decision's reasons go to the actuator log, not to an annotation on the workload:
 * annotating needs `patch` on the Deployment itself, more RBAC than scaling needs.
 *
 * observe() reads the workload itself: `desired` is its `spec.replicas` and `ready` its
 * `status.readyReplicas`. The scale subresource's `status.replicas` is not used for ready:
 * it counts every pod the controller created, including those still starting or failing
 * their readiness probe, and the decision core needs the replicas that take work.
 */
import {
  ApiException,
  AppsV1Api,
  type ConfigurationOptions,
  KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { z } from 'zod';

import type { Decision } from '../core/types.js';
import { TideError } from '../errors.js';
import { assertReplicas, assertServiceName, scaleLogEntry } from './replicas.js';
import type { Actuator, ActuatorContext, ActuatorDefinition, ActuatorLog, Observed } from './types.js';

const dnsName = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'a Kubernetes object name (lowercase letters, digits, "-", ".")');

export const kubernetesSchema = z.strictObject({
  namespace: dnsName.default('default'),
  /** What the services are: Deployments (default) or StatefulSets. */
  workload: z.enum(['Deployment', 'StatefulSet']).default('Deployment'),
  /** A kubeconfig file. Absent: KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  kubeconfig: z.string().min(1).optional(),
  /** Force the in-cluster service account (when `tide autoscale` runs as a Deployment). */
  inCluster: z.boolean().default(false),
  /** A kubeconfig context other than the current one. */
  context: z.string().min(1).optional(),
  /** Tidescale service name -> workload name, where they differ. */
  names: z.record(z.string(), dnsName).default({}),
  /** Re-reads and retries after a 409 Conflict, at most this many times. */
  conflictRetries: z.number().int().min(0).max(10).default(3),
  /** Time allowed for one API request; the client has no limit of its own. */
  timeoutSeconds: z.number().positive().max(600).default(30),
});

export type KubernetesConfig = z.output<typeof kubernetesSchema>;

/** Test and embedding hook: a ready KubeConfig instead of loading one. */
export interface KubernetesDeps {
  kubeConfig?: KubeConfig;
}

function loadKubeConfig(config: KubernetesConfig): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (config.inCluster) kc.loadFromCluster();
    else if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
    else kc.loadFromDefault();
    if (config.context) kc.setCurrentContext(config.context);
  } catch (cause) {
    const field = config.inCluster ? 'inCluster' : config.kubeconfig ? 'kubeconfig' : 'context';
    throw new TideError('TIDE_ACTUATOR_CONFIG', `Cannot load the Kubernetes config: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, where: { field } });
  }
  return kc;
}

/** The `message` of a Kubernetes `Status` body, when the error carries one. */
function statusMessage(body: unknown): string | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return body.slice(0, 300) || undefined;
    }
  }
  if (typeof value === 'object' && value !== null && 'message' in value && typeof value.message === 'string') return value.message;
  return undefined;
}

/** Gives each request an abort signal that fires after `ms` (its timer does not hold the process open). */
function timeoutMiddleware(ms: number): ObservableMiddleware {
  return {
    pre(context) {
      context.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(context));
    },
    post(response) {
      return new Observable(Promise.resolve(response));
    },
  };
}

export class KubernetesActuator implements Actuator {
  readonly #config: KubernetesConfig;
  readonly #log: ActuatorLog;
  readonly #api: AppsV1Api;
  readonly #options: ConfigurationOptions;
  readonly #patchOptions: ConfigurationOptions;

  constructor(config: KubernetesConfig, context: ActuatorContext = {}, deps: KubernetesDeps = {}) {
    this.#config = config;
    this.#log = context.log ?? (() => {});
    this.#api = (deps.kubeConfig ?? loadKubeConfig(config)).makeApiClient(AppsV1Api);
    this.#options = { middleware: [timeoutMiddleware(config.timeoutSeconds * 1000)], middlewareMergeStrategy: 'append' };
    this.#patchOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch, this.#options);
  }

  async observe(service: string): Promise<Observed> {
    const target = this.#target(service);
    const workload = await this.#call(target, 'read', () =>
      this.#config.workload === 'Deployment' ? this.#api.readNamespacedDeployment(target, this.#options) : this.#api.readNamespacedStatefulSet(target, this.#options),
    );
    return { desired: workload.spec?.replicas ?? 0, ready: workload.status?.readyReplicas ?? 0 };
  }

  async scale(service: string, replicas: number, why: Decision): Promise<void> {
    assertReplicas(service, replicas);
    const target = this.#target(service);
    const patch = { ...target, body: { spec: { replicas } } };
    for (let attempt = 0; ; attempt++) {
      const current = await this.#call(target, 'read the scale of', () =>
        this.#config.workload === 'Deployment' ? this.#api.readNamespacedDeploymentScale(target, this.#options) : this.#api.readNamespacedStatefulSetScale(target, this.#options),
      );
      const from = current.spec?.replicas;
      if (from === replicas) return;
      try {
        await (this.#config.workload === 'Deployment'
          ? this.#api.patchNamespacedDeploymentScale(patch, this.#patchOptions)
          : this.#api.patchNamespacedStatefulSetScale(patch, this.#patchOptions));
      } catch (err) {
        // The object changed between our read and our write: read it again, a bounded number of times.
        if (err instanceof ApiException && err.code === 409 && attempt < this.#config.conflictRetries) continue;
        throw this.#error(target, 'scale', err);
      }
      this.#log(scaleLogEntry('kubernetes', service, replicas, why, from));
      return;
    }
  }

  async close(): Promise<void> {}

  #target(service: string): { name: string; namespace: string } {
    assertServiceName(service);
    return { name: this.#config.names[service] ?? service, namespace: this.#config.namespace };
  }

  /** Runs one API call; a failure becomes a TideError that names the object. */
  async #call<T>(target: { name: string; namespace: string }, verb: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.#error(target, verb, err);
    }
  }

  #error(target: { name: string; namespace: string }, verb: string, err: unknown): TideError {
    const what = `${this.#config.workload} ${target.namespace}/${target.name}`;
    if (err instanceof ApiException) {
      const status = typeof err.code === 'number' ? err.code : 0;
      const message = statusMessage(err.body) ?? `HTTP ${status}`;
      const code = status === 404 ? 'TIDE_ACTUATOR_NOT_FOUND' : 'TIDE_ACTUATOR_FAILED';
      return new TideError(code, `Kubernetes: cannot ${verb} ${what}: ${message}`, { cause: err, details: { status, workload: what } });
    }
    const timedOut = err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
    const message = timedOut ? `no answer within ${this.#config.timeoutSeconds} s` : err instanceof Error ? err.message : String(err);
    return new TideError('TIDE_ACTUATOR_FAILED', `Kubernetes: cannot ${verb} ${what}: ${message}`, { cause: err, details: { workload: what } });
  }
}

export const kubernetesActuator: ActuatorDefinition<typeof kubernetesSchema> = {
  kind: 'kubernetes',
  summary: 'Kubernetes Deployments or StatefulSets, through the scale subresource.',
  schema: kubernetesSchema,
  create(config, context) {
    return new KubernetesActuator(config, context);
  },
};
