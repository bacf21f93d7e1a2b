/**
 * AWS ECS: scales a service with UpdateService `desiredCount` and observes it with
 * DescribeServices (`desiredCount`, `runningCount`) through @aws-sdk/client-ecs.
 *
 * Design note. One ECSClient per actuator, closed by close(). Credentials come from the
 * SDK's default chain (environment, profile, task role) and never from this config, so no
 * secret is in it or in any log line. `ready` is `runningCount`: the tasks in the RUNNING
 * state (ECS does not report a health-checked count in DescribeServices). ECS has no place
 * for the decision's reasons on the service, so they go to the actuator log only.
 * The SDK retries throttling and 5xx errors itself (`maxAttempts`); what still fails is
 * mapped to a TideError carrying the AWS error name.
 */
import {
  DescribeServicesCommand,
  ECSClient,
  type ECSClientConfig,
  ECSServiceException,
  UpdateServiceCommand,
} from '@aws-sdk/client-ecs';
import { z } from 'zod';

import type { Decision } from '../core/types.js';
import { TideError } from '../errors.js';
import { assertReplicas, assertServiceName, scaleLogEntry } from './replicas.js';
import type { Actuator, ActuatorContext, ActuatorDefinition, ActuatorLog, Observed } from './types.js';

export const ecsSchema = z.strictObject({
  /** Cluster name or ARN. */
  cluster: z.string().min(1),
  /** AWS region, e.g. eu-west-1. Absent: the SDK's default (AWS_REGION, the profile). */
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as eu-west-1').optional(),
  /** Tidescale service name -> ECS service name, where they differ. */
  services: z.record(z.string(), z.string().min(1)).default({}),
  /** Another endpoint (a VPC endpoint, LocalStack). */
  endpoint: z.url().optional(),
  /** Attempts per call, the SDK's retries included. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /** Time allowed for one attempt; the SDK has no limit by default. */
  timeoutSeconds: z.number().positive().max(600).default(30),
});

export type EcsConfig = z.output<typeof ecsSchema>;

/** Test and embedding hook: credentials instead of the SDK's default chain. */
export interface EcsDeps {
  credentials?: ECSClientConfig['credentials'];
}

/** AWS errors that mean the service or cluster is not there (or no longer active). */
const NOT_FOUND = new Set(['ServiceNotFoundException', 'ClusterNotFoundException', 'ServiceNotActiveException']);

export class EcsActuator implements Actuator {
  readonly #config: EcsConfig;
  readonly #log: ActuatorLog;
  readonly #client: ECSClient;

  constructor(config: EcsConfig, context: ActuatorContext = {}, deps: EcsDeps = {}) {
    this.#config = config;
    this.#log = context.log ?? (() => {});
    this.#client = new ECSClient({
      maxAttempts: config.maxAttempts,
      // Without throwOnRequestTimeout the SDK only warns when requestTimeout passes.
      requestHandler: { connectionTimeout: config.timeoutSeconds * 1000, requestTimeout: config.timeoutSeconds * 1000, throwOnRequestTimeout: true },
      ...(config.region ? { region: config.region } : {}),
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(deps.credentials ? { credentials: deps.credentials } : {}),
    });
  }

  async observe(service: string): Promise<Observed> {
    const name = this.#name(service);
    const out = await this.#send('DescribeServices', name, () =>
      this.#client.send(new DescribeServicesCommand({ cluster: this.#config.cluster, services: [name] })),
    );
    const found = out.services?.find((s) => s.serviceName === name || s.serviceArn === name) ?? out.services?.[0];
    if (!found || found.status === 'INACTIVE') {
      const reason = out.failures?.[0]?.reason ?? (found ? 'INACTIVE' : 'MISSING');
      throw new TideError('TIDE_ACTUATOR_NOT_FOUND', `ECS: cluster ${this.#config.cluster} has no active service ${name} (${reason}).`, {
        details: { cluster: this.#config.cluster, service: name, reason },
      });
    }
    return { desired: found.desiredCount ?? 0, ready: found.runningCount ?? 0 };
  }

  async scale(service: string, replicas: number, why: Decision): Promise<void> {
    assertReplicas(service, replicas);
    const name = this.#name(service);
    // UpdateService with the same desiredCount changes nothing, so no read first.
    await this.#send('UpdateService', name, () =>
      this.#client.send(new UpdateServiceCommand({ cluster: this.#config.cluster, service: name, desiredCount: replicas })),
    );
    this.#log(scaleLogEntry('ecs', service, replicas, why));
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  #name(service: string): string {
    assertServiceName(service);
    return this.#config.services[service] ?? service;
  }

  async #send<T>(operation: string, name: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const where = `${this.#config.cluster}/${name}`;
      if (err instanceof ECSServiceException) {
        const code = NOT_FOUND.has(err.name) ? 'TIDE_ACTUATOR_NOT_FOUND' : 'TIDE_ACTUATOR_FAILED';
        throw new TideError(code, `ECS ${operation} ${where}: ${err.name}: ${err.message}`, {
          cause: err,
          details: { awsError: err.name, status: err.$metadata.httpStatusCode },
        });
      }
      const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      throw new TideError('TIDE_ACTUATOR_FAILED', `ECS ${operation} ${where}: ${message}`, { cause: err });
    }
  }
}

export const ecsActuator: ActuatorDefinition<typeof ecsSchema> = {
  kind: 'ecs',
  summary: 'AWS ECS services: UpdateService desiredCount.',
  schema: ecsSchema,
  create(config, context) {
    return new EcsActuator(config, context);
  },
};
