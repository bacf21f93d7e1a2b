/**
 * tide export: every target from sample tide.yaml files, validated against the platforms'
 * schemas: Kubernetes objects with the validators `kubernetes-models` generates from the
 * Kubernetes OpenAPI spec, the KEDA ScaledObject with `@kubernetes-models/keda` (from the KEDA
 * CRD's openAPIV3Schema), Compose with the vendored compose-spec JSON Schema, the alert rules
 * with `promtool check rules`. No cluster, Docker or AWS runs here, so those are the checks.
 * The Kubernetes OpenAPI schemas allow unknown fields (the API server prunes or, with strict
 * validation, refuses them), so a second check walks each object through the field maps of
 * @kubernetes/client-node's models (generated from the same OpenAPI spec) and refuses any
 * field the spec does not have, as `kubectl apply --validate=strict` would.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as k8s from '@kubernetes/client-node';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { Ajv2019 } from 'ajv/dist/2019.js';
import formats from 'ajv-formats';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseAllDocuments } from 'yaml';

import { main } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/controller/start.js';
import { isTideError } from '../../src/errors.js';
import { awsCron } from '../../src/export/ecs.js';
import { exportConfig, renderExport } from '../../src/export/index.js';
import { proxyTrust } from '../../src/net/client-identity.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Open Forge's runbook, as a tide.yaml: its HPA on the API, KEDA on the worker queue, plus an SLO worker. */
const OPEN_FORGE = `
project: open-forge
services:
  api:
    kind: api
    min: 3
    max: 20
    port: 8000
    stop_grace_seconds: 20
    scale:
      policies:
        - { kind: target, metric: cpu_utilization, type: utilization, target: 0.7 }
        - { kind: target, metric: memory_utilization, type: utilization, target: 0.8 }
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 300
          policies: [{ type: Percent, value: 10, periodSeconds: 60 }]
        scaleUp:
          stabilizationWindowSeconds: 0
          policies: [{ type: Percent, value: 100, periodSeconds: 15 }]
  agent-worker:
    kind: worker
    min: 1
    max: 100
    concurrency: 4
    queues: [agent_tasks]
    scale:
      policies:
        - { kind: target, metric: queue_depth, type: average, target: 10 }
      fallback: { failureThreshold: 3, replicas: 5 }
  batch:
    kind: worker
    min: 1
    max: 10
    queues: [batch]
    stop_grace_seconds: 120
    scale:
      policies:
        - { kind: slo, waitSeconds: 30, attainment: 0.95 }
`;

/** The monitor service's runbook: step tables, a schedule, scale to zero on a Redis list. */
const MONITOR = `
project: monitor
services:
  api:
    kind: api
    replicas: 2
    max: 6
    scale:
      policies:
        - { kind: target, metric: cpu_utilization, type: utilization, target: 0.7 }
  worker:
    kind: worker
    min: 1
    max: 30
    queues: [checks]
    scale:
      policies:
        - kind: steps
          metric: queue_depth
          up: [{ above: 1000, add: 5 }, { above: 5000, add: 10 }]
          down: [{ below: 100, remove: 2 }]
      schedule:
        - { cron: "0 22 * * *", durationSeconds: 28800, min: 2 }
        - { cron: "0 8 * * 1-5", max: 30, min: 4, timezone: Europe/Berlin }
  notifier:
    kind: worker
    min: 0
    max: 5
    sources:
      pending: { kind: redis, url: "redis://redis.monitor.svc:6379/2", key: "monitor:notify" }
    scale:
      policies:
        - { kind: target, metric: queue_depth, type: average, target: 50 }
      activation: { metric: queue_depth, threshold: 1, cooldownSeconds: 120 }
`;

const VALIDATORS: Record<string, (body: Record<string, unknown>) => void> = {
  Deployment: (b) => new Deployment(b as never).validate(),
  Service: (b) => new Service(b as never).validate(),
  Ingress: (b) => new Ingress(b as never).validate(),
  PodDisruptionBudget: (b) => new PodDisruptionBudget(b as never).validate(),
  HorizontalPodAutoscaler: (b) => new HorizontalPodAutoscaler(b as never).validate(),
  ScaledObject: (b) => new ScaledObject(b as never).validate(),
  ServiceAccount: (b) => new ServiceAccount(b as never).validate(),
  Role: (b) => new Role(b as never).validate(),
  RoleBinding: (b) => new RoleBinding(b as never).validate(),
  ConfigMap: (b) => new ConfigMap(b as never).validate(),
};

type Obj = Record<string, any>;

type FieldMap = Array<{ baseName: string; type: string }>;
const MODELS = k8s as unknown as Record<string, { getAttributeTypeMap?: () => FieldMap } | undefined>;

/** Paths of fields the OpenAPI spec does not have, walking the client-node model of `type`. */
function unknownFields(value: unknown, type: string, at = ''): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${at}[${i}]`)) : [`${at} (not a list)`];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return Object.entries(value as Obj).flatMap(([k, v]) => unknownFields(v, map[1]!, `${at}.${k}`));
  const fields = MODELS[type]?.getAttributeTypeMap?.();
  if (!fields) return []; // a primitive, IntOrString, Quantity
  const known = new Map(fields.map((f) => [f.baseName, f.type]));
  return Object.entries(value as Obj).flatMap(([k, v]) => (known.has(k) ? unknownFields(v, known.get(k)!, `${at}.${k}`) : [`${at}.${k}`]));
}

const MODEL_OF: Record<string, string> = {
  Deployment: 'V1Deployment',
  Service: 'V1Service',
  Ingress: 'V1Ingress',
  PodDisruptionBudget: 'V1PodDisruptionBudget',
  HorizontalPodAutoscaler: 'V2HorizontalPodAutoscaler',
  ServiceAccount: 'V1ServiceAccount',
  Role: 'V1Role',
  RoleBinding: 'V1RoleBinding',
  ConfigMap: 'V1ConfigMap',
};

/**
 * The ScaledObject fields KEDA documents (keda.sh/docs/2.x/reference/scaledobject-spec), for
 * the same unknown-field check (its CRD schema, like Kubernetes', does not refuse them).
 */
const KEDA_SPEC = ['scaleTargetRef', 'pollingInterval', 'cooldownPeriod', 'initialCooldownPeriod', 'idleReplicaCount', 'minReplicaCount', 'maxReplicaCount', 'fallback', 'advanced', 'triggers'];
const KEDA_TRIGGER = ['type', 'name', 'metadata', 'metricType', 'useCachedMetrics', 'authenticationRef'];

function unknownKedaFields(o: Obj): string[] {
  const spec = Object.keys(o.spec).filter((k) => !KEDA_SPEC.includes(k)).map((k) => `.spec.${k}`);
  const triggers = (o.spec.triggers as Obj[]).flatMap((t, i) => Object.keys(t).filter((k) => !KEDA_TRIGGER.includes(k)).map((k) => `.spec.triggers[${i}].${k}`));
  const behavior = o.spec.advanced?.horizontalPodAutoscalerConfig?.behavior;
  return [...spec, ...triggers, ...(behavior ? unknownFields(behavior, 'V2HorizontalPodAutoscalerBehavior', '.spec.advanced.horizontalPodAutoscalerConfig.behavior') : [])];
}

/** Every object against its schema, and no field the schema lacks. */
function checkKubernetes(objects: Obj[], label = ''): void {
  for (const o of objects) {
    const validate = VALIDATORS[o.kind];
    assert.ok(validate, `no validator for ${o.kind}`);
    assert.doesNotThrow(() => validate(o), `${label} ${o.kind} ${o.metadata?.name}`);
    const unknown = o.kind === 'ScaledObject' ? unknownKedaFields(o) : unknownFields(o, MODEL_OF[o.kind]!);
    assert.deepEqual(unknown, [], `${label} ${o.kind} ${o.metadata?.name}: fields the schema does not have`);
  }
}

function kubernetes(text: string, options = {}): Obj[] {
  const config = parseConfig(text, 'tide.yaml');
  const result = exportConfig('kubernetes', config, { configText: text, ...options });
  // through the YAML text, as kubectl would read it
  return parseAllDocuments(renderExport(result, 'yaml')).map((d) => d.toJS() as Obj);
}

function find(objects: Obj[], kind: string, name: string): Obj {
  const hit = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(hit, `no ${kind} ${name}`);
  return hit;
}

const validateCompose = (() => {
  // draft-04 style `id: "#/properties/..."` labels are only labels here; ajv refuses the
  // keyword, so string-valued `id`s are dropped (a property named id is an object, and stays)
  const schema = JSON.parse(readFileSync(path.join(here, '../fixtures/schemas/compose-spec.json'), 'utf8'), (key, value: unknown) =>
    key === 'id' && typeof value === 'string' ? undefined : value,
  ) as Obj;
  // the file says `$schema: http://json-schema.org/draft/2019-09/schema#`, a spelling of the
  // draft's URI ajv does not register, and uses draft-04 `id`s: not strict, no meta-check
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateSchema: false });
  // CommonJS default export: the plugin is the module itself or its .default
  const addFormats = ((formats as unknown as { default?: typeof formats }).default ?? formats) as unknown as (a: Ajv2019) => void;
  addFormats(ajv);
  // Compose durations are Go's (`30s`, `1m30s`), not the ISO 8601 `duration` of ajv-formats
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  return ajv.compile(schema);
})();

describe('export kubernetes', () => {
  for (const [label, text] of [['open-forge', OPEN_FORGE], ['monitor', MONITOR]] as const) {
    it(`every object of the ${label} sample validates against its Kubernetes (or KEDA CRD) schema`, () => {
      const objects = kubernetes(text);
      assert.ok(objects.length > 5);
      checkKubernetes(objects);
    });
  }

  it('the unknown-field check has teeth', () => {
    const hpa = find(kubernetes(OPEN_FORGE), 'HorizontalPodAutoscaler', 'api');
    hpa.spec.behavior.scaleDown.stabilisationWindowSeconds = 60;
    assert.deepEqual(unknownFields(hpa, 'V2HorizontalPodAutoscaler'), ['.spec.behavior.scaleDown.stabilisationWindowSeconds']);
  });

  it("carries the runbook's HPA over field for field: CPU 70%, memory 80%, 3-20, its behavior block", () => {
    const hpa = find(kubernetes(OPEN_FORGE), 'HorizontalPodAutoscaler', 'api');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual(hpa.spec, {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' },
      minReplicas: 3,
      maxReplicas: 20,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } },
      ],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
        scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] },
      },
    });
  });

  it('a queue target becomes a KEDA ScaledObject with the fallback, on the builtin queue by SQL', () => {
    const so = find(kubernetes(OPEN_FORGE), 'ScaledObject', 'agent-worker');
    assert.equal(so.spec.minReplicaCount, 1);
    assert.equal(so.spec.maxReplicaCount, 100);
    assert.deepEqual(so.spec.fallback, { failureThreshold: 3, replicas: 5 });
    const [trigger] = so.spec.triggers;
    assert.equal(trigger.type, 'postgresql');
    assert.equal(trigger.metricType, 'AverageValue');
    assert.equal(trigger.metadata.targetQueryValue, '10');
    assert.equal(trigger.metadata.connectionFromEnv, 'DATABASE_URL');
    assert.match(trigger.metadata.query, /FROM "tide"\.jobs WHERE state = 'ready' .* queue IN \('agent_tasks'\)/);
  });

  it('a redis source with activation becomes a KEDA redis trigger with activationListLength and min 0', () => {
    const so = find(kubernetes(MONITOR), 'ScaledObject', 'notifier');
    assert.equal(so.spec.minReplicaCount, 0);
    assert.equal(so.spec.cooldownPeriod, 120);
    assert.deepEqual(so.spec.triggers, [
      {
        type: 'redis',
        metricType: 'AverageValue',
        metadata: { address: 'redis.monitor.svc:6379', listName: 'monitor:notify', listLength: '50', databaseIndex: '2', activationListLength: '1' },
      },
    ]);
  });

  it('slo and steps services get the in-cluster tide autoscale with RBAC for the scale subresource only', async () => {
    for (const [text, scaled, other] of [[OPEN_FORGE, ['batch'], 'api'], [MONITOR, ['worker'], 'notifier']] as const) {
      const objects = kubernetes(text);
      assert.equal(objects.filter((o) => o.kind === 'HorizontalPodAutoscaler' || o.kind === 'ScaledObject').some((o) => (scaled as readonly string[]).includes(o.metadata.name)), false);
      const role = find(objects, 'Role', 'tide-autoscaler');
      assert.deepEqual(role.rules, [
        { apiGroups: ['apps'], resources: ['deployments'], resourceNames: scaled, verbs: ['get'] },
        { apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: scaled, verbs: ['get', 'patch'] },
      ]);
      const binding = find(objects, 'RoleBinding', 'tide-autoscaler');
      assert.equal(binding.subjects[0].name, 'tide-autoscaler');
      const deploy = find(objects, 'Deployment', 'tide-autoscaler');
      assert.equal(deploy.spec.template.spec.serviceAccountName, 'tide-autoscaler');
      assert.deepEqual(deploy.spec.template.spec.containers[0].args, ['autoscale', '--config', '/etc/tide/tide.yaml']);
      // the config it runs with is a valid tide.yaml: the Kubernetes actuator on its services,
      // no scale block on the ones an HPA or KEDA owns
      const inCluster = parseConfig(find(objects, 'ConfigMap', 'tide-autoscaler').data['tide.yaml'], 'configmap');
      for (const name of scaled) assert.deepEqual(inCluster.services[name]!.actuator, { kind: 'kubernetes', namespace: text === OPEN_FORGE ? 'open-forge' : 'monitor', inCluster: true });
      assert.equal(inCluster.services[other]!.scale, undefined);
      // and `tide autoscale` can build its control loop from it: sources and actuators are
      // lazy, so nothing connects here
      const built = await buildServices({ config: inCluster, databaseUrl: 'postgres://tide@127.0.0.1:1/none' });
      try {
        assert.deepEqual(built.map((b) => b.name), scaled);
      } finally {
        for (const b of built) await Promise.all([...b.sources.map((x) => x.source.close()), b.urgentSource?.close(), b.actuator.close()]);
      }
    }
  });

  it('sizes the grace period so drains finish: preStop pause + stop_grace_seconds + margin', () => {
    const objects = kubernetes(OPEN_FORGE);
    const api = find(objects, 'Deployment', 'api').spec.template.spec;
    assert.deepEqual(api.containers[0].lifecycle.preStop.exec.command, ['sleep', '5']);
    assert.equal(api.terminationGracePeriodSeconds, 5 + 20 + 5);
    const batch = find(objects, 'Deployment', 'batch').spec.template.spec;
    assert.equal(batch.terminationGracePeriodSeconds, 120 + 5);
    assert.deepEqual(batch.containers[0].args.slice(0, 5), ['worker', '--concurrency', '10', '--grace', '120']);
    assert.equal(find(objects, 'PodDisruptionBudget', 'api').spec.maxUnavailable, 1);
    assert.equal(find(objects, 'Service', 'api').spec.ports[0].targetPort, 'http');
  });

  it('refuses to force an HPA on a policy it cannot run, naming the field', () => {
    assert.throws(
      () => kubernetes(OPEN_FORGE, { autoscaler: 'hpa' }),
      (err: unknown) => isTideError(err) && err.code === 'TIDE_EXPORT_UNSUPPORTED' && err.where?.field === 'services.batch.scale.policies[0]',
    );
  });

  it('--autoscaler forces one kind: KEDA cpu/memory triggers, or an HPA External metric for a queue', () => {
    const text = `
project: forced
services:
  api:
    kind: api
    min: 2
    max: 8
    scale: { policies: [{ kind: target, metric: cpu_utilization, type: utilization, target: 0.6 }] }
  worker:
    kind: worker
    queues: [mail]
    max: 12
    scale: { policies: [{ kind: target, metric: queue_depth, type: average, target: 25 }] }
`;
    const keda = kubernetes(text, { autoscaler: 'keda' });
    checkKubernetes(keda);
    assert.deepEqual(find(keda, 'ScaledObject', 'api').spec.triggers, [{ type: 'cpu', metricType: 'Utilization', metadata: { value: '60' } }]);
    const hpa = kubernetes(text, { autoscaler: 'hpa' });
    checkKubernetes(hpa);
    assert.deepEqual(find(hpa, 'HorizontalPodAutoscaler', 'worker').spec.metrics, [
      { type: 'External', external: { metric: { name: 'tide_queue_ready', selector: { matchLabels: { queue: 'mail' } } }, target: { type: 'AverageValue', averageValue: '25' } } },
    ]);
  });

  it('--json is a v1 List of the same objects', () => {
    const config = parseConfig(OPEN_FORGE, 'tide.yaml');
    const list = JSON.parse(renderExport(exportConfig('kubernetes', config), 'json')) as Obj;
    assert.equal(list.kind, 'List');
    assert.ok(list.items.some((o: Obj) => o.kind === 'HorizontalPodAutoscaler'));
  });
});

describe('export compose', () => {
  it('the schema check has teeth: an unknown key or a wrong type fails', () => {
    assert.equal(validateCompose({ services: { api: { image: 'x', replicaz: 2 } } }), false);
    assert.equal(validateCompose({ services: { api: { image: 'x', deploy: { replicas: 'three' } } } }), false);
  });

  for (const [label, text] of [['open-forge', OPEN_FORGE], ['monitor', MONITOR]] as const) {
    it(`the ${label} compose file validates against the compose-spec schema`, () => {
      const [doc] = parseAllDocuments(renderExport(exportConfig('compose', parseConfig(text, 'tide.yaml')), 'yaml'));
      const body = doc!.toJS() as Obj;
      assert.ok(validateCompose(body), JSON.stringify(validateCompose.errors, null, 2));
    });
  }

  it('puts a proxy in front of the API, with replicas and stop grace periods from the config', () => {
    const body = exportConfig('compose', parseConfig(OPEN_FORGE, 'tide.yaml')).documents[0]!.body as Obj;
    assert.deepEqual(body.services.proxy.command, ['caddy', 'reverse-proxy', '--from', ':8080', '--to', 'api:8000']);
    assert.equal(body.services.api.deploy.replicas, 3);
    assert.equal(body.services.api.stop_grace_period, '30s');
    assert.equal(body.services.batch.stop_grace_period, '125s');
    assert.equal(body.services.api.ports, undefined, 'only the proxy publishes a port');
    assert.ok(body.services.postgres, 'no database url: a PostgreSQL service');
    assert.ok(body.services.autoscaler.volumes.includes('/var/run/docker.sock:/var/run/docker.sock'));
  });
});

describe('export: the client address behind each export\'s proxy', () => {
  const LIMITED = `${OPEN_FORGE.replace(/^services:/m, 'balancer:\n  rate_limit: { requests_per_second: 2, burst: 10 }\n  trusted_proxies: [10.244.0.0/16]\nservices:')}`;

  it('compose: Caddy has a fixed address outside Docker\'s range, the API trusts exactly it and limits per client', () => {
    const body = exportConfig('compose', parseConfig(OPEN_FORGE, 'tide.yaml')).documents[0]!.body as Obj;
    const proxy = body.services.proxy.networks.default.ipv4_address as string;
    const [ipam] = body.networks.default.ipam.config as Obj[];
    assert.equal(proxyTrust({ trustedProxies: [ipam!.subnet] }).trusts(proxy), true, 'the proxy is on the subnet');
    assert.equal(proxyTrust({ trustedProxies: [ipam!.ip_range] }).trusts(proxy), false, 'Docker never hands its address to another container');
    assert.equal(body.services.api.environment.TRUSTED_PROXIES, proxy);
    assert.equal(body.services.batch.environment.TRUSTED_PROXIES, undefined);
    assert.deepEqual(body.services.api.command.slice(-2), ['--rate-limit', '1000']);
    const limited = exportConfig('compose', parseConfig(LIMITED, 'tide.yaml')).documents[0]!.body as Obj;
    assert.deepEqual(limited.services.api.command.slice(-2), ['--rate-limit', '120']);
    assert.equal(limited.services.api.environment.TRUSTED_PROXIES, `${proxy},10.244.0.0/16`);
  });

  it('kubernetes: an ingress-nginx Ingress limits per client; the API\'s own limit is off and it trusts the controller pods', () => {
    const objects = kubernetes(LIMITED);
    const ingress = find(objects, 'Ingress', 'api');
    assert.equal(ingress.metadata.annotations['nginx.ingress.kubernetes.io/limit-rpm'], '120');
    assert.equal(ingress.metadata.annotations['nginx.ingress.kubernetes.io/limit-burst-multiplier'], '5');
    assert.equal(ingress.spec.rules[0].http.paths[0].backend.service.name, 'api');
    const api = find(objects, 'Deployment', 'api').spec.template.spec.containers[0];
    assert.deepEqual(api.args.slice(-2), ['--rate-limit', '0']);
    assert.deepEqual(api.env.find((e: Obj) => e.name === 'TRUSTED_PROXIES'), { name: 'TRUSTED_PROXIES', value: '10.244.0.0/16' });
    const plain = exportConfig('kubernetes', parseConfig(OPEN_FORGE, 'tide.yaml'));
    assert.ok(plain.notes.some((n) => n.includes('balancer.trusted_proxies')), plain.notes.join('\n'));
  });
});

describe('export ecs', () => {
  it('registers a scalable target per service and maps targets to target tracking', () => {
    const body = exportConfig('ecs', parseConfig(OPEN_FORGE, 'tide.yaml'), { cluster: 'prod' }).documents[0]!.body as Obj;
    assert.deepEqual(body.registerScalableTargets[0], {
      ServiceNamespace: 'ecs',
      ResourceId: 'service/prod/api',
      ScalableDimension: 'ecs:service:DesiredCount',
      MinCapacity: 3,
      MaxCapacity: 20,
    });
    const cpu = body.putScalingPolicies.find((p: Obj) => p.PolicyName === 'open-forge-api-target0');
    assert.equal(cpu.PolicyType, 'TargetTrackingScaling');
    assert.deepEqual(cpu.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification, { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' });
    assert.equal(cpu.TargetTrackingScalingPolicyConfiguration.TargetValue, 70);
    const queue = body.putScalingPolicies.find((p: Obj) => p.PolicyName === 'open-forge-agent-worker-target0');
    const metrics = queue.TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Metrics as Obj[];
    assert.equal(metrics.at(-1)!.Expression, '(q0) / tasks');
    assert.equal(queue.TargetTrackingScalingPolicyConfiguration.TargetValue, 10);
  });

  it('maps steps to step scaling with alarms, and schedules to scheduled actions in AWS cron', () => {
    const result = exportConfig('ecs', parseConfig(MONITOR, 'tide.yaml'));
    const body = result.documents[0]!.body as Obj;
    const up = body.putScalingPolicies.find((p: Obj) => p.PolicyName === 'monitor-worker-steps0-up');
    assert.deepEqual(up.StepScalingPolicyConfiguration, {
      AdjustmentType: 'ChangeInCapacity',
      StepAdjustments: [
        { MetricIntervalLowerBound: 0, MetricIntervalUpperBound: 4000, ScalingAdjustment: 5 },
        { MetricIntervalLowerBound: 4000, ScalingAdjustment: 10 },
      ],
      Cooldown: 300,
      MetricAggregationType: 'Average',
    });
    const down = body.putScalingPolicies.find((p: Obj) => p.PolicyName === 'monitor-worker-steps0-down');
    assert.deepEqual(down.StepScalingPolicyConfiguration.StepAdjustments, [{ MetricIntervalUpperBound: 0, ScalingAdjustment: -2 }]);
    const alarms = body.putMetricAlarms as Obj[];
    assert.deepEqual(alarms.map((a) => [a.Threshold, a.ComparisonOperator]), [[1000, 'GreaterThanThreshold'], [100, 'LessThanThreshold']]);
    const schedules = body.putScheduledActions as Obj[];
    assert.deepEqual(schedules.map((s) => s.Schedule), ['cron(0 22 * * ? *)', 'cron(0 6 * * ? *)', 'cron(0 8 ? * 2-6 *)']);
    assert.equal(schedules[2]!.Timezone, 'Europe/Berlin');
    assert.deepEqual(schedules[0]!.ScalableTargetAction, { MinCapacity: 2, MaxCapacity: 30 });
  });

  it('says which services need tide autoscale (the SLO policy) instead of inventing a threshold', () => {
    const result = exportConfig('ecs', parseConfig(OPEN_FORGE, 'tide.yaml'));
    assert.ok(result.notes.some((n) => n.startsWith('batch:') && n.includes('tide autoscale')));
    assert.equal(awsCron('0 0 1 * 1'), undefined);
    assert.equal(awsCron('*/5 * * * 0,6'), 'cron(*/5 * ? * 1,7 *)');
  });
});

describe('export prometheus-rules', () => {
  const config = parseConfig(OPEN_FORGE, 'tide.yaml');
  const text = renderExport(exportConfig('prometheus-rules', config), 'yaml');

  it("has the runbooks' alerts on the runtime's metric names, thresholds from the config", () => {
    const rules = ((parseAllDocuments(text)[0]!.toJS() as Obj).groups[0].rules as Obj[]);
    const names = new Set(rules.map((r) => r.alert));
    for (const a of ['TideHighCPU', 'TideHighMemory', 'TideQueueDepthHigh', 'TideOldestJobAge', 'TideApiLatencyP99', 'TideApiErrorRate']) assert.ok(names.has(a), a);
    const age = rules.find((r) => r.alert === 'TideOldestJobAge' && r.labels.service === 'batch')!;
    assert.equal(age.expr, 'max(tide_queue_oldest_ready_age_seconds{queue="batch"}) > 30');
    const depth = rules.find((r) => r.alert === 'TideQueueDepthHigh' && r.labels.severity === 'critical')!;
    assert.match(depth.expr, /max by \(queue\) \(tide_queue_ready\{queue="agent_tasks"\}\)\) > 5000$/);
    assert.ok(rules.some((r) => r.alert === 'TideApiLatencyP99' && r.expr.includes('http_request_duration_seconds_bucket{job="open-forge-api"}') && r.expr.endsWith('> 2')));
  });

  it('passes promtool check rules', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tide-rules-'));
    try {
      const file = path.join(dir, 'rules.yaml');
      await writeFile(file, text);
      const out = await promtool([file]);
      if (!out) {
        t.skip('promtool is not installed (Debian package prometheus); the rule file was not checked');
        return;
      }
      assert.equal(out.code, 0, out.output);
      assert.match(out.output, /SUCCESS: \d+ rules found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('export prometheus-config and PodMonitors: the labels the rules and the dashboard select', () => {
  const config = parseConfig(OPEN_FORGE, 'tide.yaml');
  const rulesText = renderExport(exportConfig('prometheus-rules', config), 'yaml');
  const dashboard = JSON.stringify(exportConfig('grafana', config).documents[0]!.body);
  /** Every job the rules and the dashboard select on. */
  const selected = new Set([...`${rulesText}\n${dashboard}`.matchAll(/job=(?:\\?")([^"\\]+)/g)].flatMap((m) => m[1]!.split('|')));

  it('the rules and the dashboard select only the jobs <project>-<service> of scraped services', () => {
    assert.deepEqual([...selected].sort(), ['open-forge-agent-worker', 'open-forge-api', 'open-forge-batch']);
  });

  for (const platform of ['local', 'compose', 'kubernetes'] as const) {
    it(`--platform ${platform}: promtool check config passes, and the relabelling gives job="<project>-<service>"`, async (t) => {
      const result = exportConfig('prometheus-config', config, { platform, rulesFile: 'rules.yml', controlUrl: 'http://127.0.0.1:8079' });
      const body = result.documents[0]!.body as Obj;
      const jobs = body.scrape_configs as Obj[];
      for (const job of jobs) {
        const toJob = (job.relabel_configs as Obj[]).find((r) => r.target_label === 'job');
        assert.equal(toJob?.replacement, 'open-forge-$1', `${job.job_name}`);
        const keep = (job.relabel_configs as Obj[]).find((r) => r.action === 'keep' && r.source_labels[0] === toJob!.source_labels[0]);
        assert.deepEqual((keep!.regex as string).split('|').map((n) => `open-forge-${n}`).sort(), [...selected].sort());
      }
      if (platform === 'local') assert.equal(jobs[0]!.http_sd_configs[0].url, 'http://127.0.0.1:8079/v1/targets');
      if (platform === 'compose') assert.deepEqual(jobs.map((j) => j.job_name).sort(), [...selected].sort());
      if (platform === 'kubernetes') {
        assert.deepEqual(jobs[0]!.kubernetes_sd_configs, [{ role: 'pod', namespaces: { names: ['open-forge'] } }]);
        // Debian's Prometheus is built without Kubernetes service discovery: promtool cannot read it
        return;
      }
      const dir = await mkdtemp(path.join(tmpdir(), 'tide-scrape-'));
      try {
        await writeFile(path.join(dir, 'prometheus.yml'), renderExport(result, 'yaml'));
        await writeFile(path.join(dir, 'rules.yml'), rulesText);
        const out = await promtool([path.join(dir, 'prometheus.yml')], 'config');
        if (!out) {
          t.skip('promtool is not installed (Debian package prometheus); the config was not checked');
          return;
        }
        assert.equal(out.code, 0, out.output);
        assert.match(out.output, /SUCCESS/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('--platform local with control.port 0 and no running tide up: TIDE_EXPORT_UNSUPPORTED, naming the fix', () => {
    const free = parseConfig(`${OPEN_FORGE}\ncontrol: { port: 0 }\n`, 'tide.yaml');
    assert.throws(() => exportConfig('prometheus-config', free, { platform: 'local' }), (err: unknown) => isTideError(err) && err.code === 'TIDE_EXPORT_UNSUPPORTED' && /--control-url/.test(err.message));
  });

  it('kubernetes --pod-monitors: one PodMonitor per scraped service, on its pods and named port, setting the job the rules select', () => {
    const objects = kubernetes(OPEN_FORGE, { podMonitors: true });
    const monitors = objects.filter((o) => o.kind === 'PodMonitor');
    assert.equal(kubernetes(OPEN_FORGE).filter((o) => o.kind === 'PodMonitor').length, 0, 'only when asked');
    assert.deepEqual(monitors.map((m) => m.metadata.name).sort(), ['agent-worker', 'api', 'batch']);
    const jobs = new Set<string>();
    for (const m of monitors) {
      assert.equal(m.apiVersion, 'monitoring.coreos.com/v1');
      const deployment = find(objects, 'Deployment', m.metadata.name);
      const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
      for (const [k, v] of Object.entries(m.spec.selector.matchLabels as Record<string, string>)) assert.equal(podLabels[k], v, k);
      const [endpoint] = m.spec.podMetricsEndpoints as Obj[];
      const ports = (deployment.spec.template.spec.containers[0].ports as Obj[]).map((p) => p.name);
      assert.ok(ports.includes(endpoint!.port), `${m.metadata.name}: port ${endpoint!.port} of ${ports.join(', ')}`);
      const job = (endpoint!.relabelings as Obj[]).find((r) => r.targetLabel === 'job');
      jobs.add(job!.replacement);
    }
    assert.deepEqual([...jobs].sort(), [...selected].sort());
  });
});

describe('export prometheus-rules: CPU against the request', () => {
  const config = parseConfig('project: cpu\nservices:\n  worker: { kind: worker }\n', 'tide.yaml');
  const cpuRules = (cpuRequest?: string) =>
    ((exportConfig('prometheus-rules', config, cpuRequest ? { cpuRequest } : {}).documents[0]!.body as Obj).groups[0].rules as Obj[])
      .filter((r) => r.alert === 'TideHighCPU')
      .map((r) => r.expr as string);

  it('is a fraction of the CPU request, as the HPA reads utilisation: 250m makes one busy core 400%', () => {
    assert.deepEqual(cpuRules('250m'), [
      'avg(rate(process_cpu_seconds_total{job="cpu-worker"}[5m])) / 0.25 > 0.7',
      'avg(rate(process_cpu_seconds_total{job="cpu-worker"}[5m])) / 0.25 > 0.85',
    ]);
    assert.deepEqual(cpuRules('2'), cpuRules('2000m'));
    assert.equal(cpuRules()[0], 'avg(rate(process_cpu_seconds_total{job="cpu-worker"}[5m])) > 0.7');
  });

  it('a CPU request that is not a quantity is TIDE_USAGE naming --cpu', () => {
    assert.throws(() => cpuRules('lots'), (err: unknown) => isTideError(err) && err.code === 'TIDE_USAGE' && err.where?.arg === '--cpu');
    assert.throws(() => cpuRules('0'), (err: unknown) => isTideError(err) && err.code === 'TIDE_USAGE');
  });
});

describe('export prometheus-rules: label values PromQL must escape', () => {
  it('queue names with regex metacharacters, quotes and backslashes still pass promtool', async (t) => {
    const config = parseConfig(
      `project: odd
services:
  worker:
    kind: worker
    queues: ['mail.high', 'a"b', 'c\\\\d']
    scale: { policies: [{ kind: target, metric: queue_depth, type: average, target: 5 }] }
`,
      'tide.yaml',
    );
    const rules = (exportConfig('prometheus-rules', config).documents[0]!.body as Obj).groups[0].rules as Obj[];
    const depth = rules.find((r) => r.alert === 'TideQueueDepthHigh')!;
    // promtool below parses the escaping; here only that all three queues are in one matcher
    assert.match(depth.expr, /^sum\(max by \(queue\) \(tide_queue_ready\{queue=~"mail\\\\\.high\|a\\"b\|c.*d"\}\)\) > 1000$/);
    const dir = await mkdtemp(path.join(tmpdir(), 'tide-rules-'));
    try {
      const file = path.join(dir, 'rules.yaml');
      await writeFile(file, renderExport(exportConfig('prometheus-rules', config), 'yaml'));
      const out = await promtool([file]);
      if (!out) {
        t.skip('promtool is not installed (Debian package prometheus); the rule file was not checked');
        return;
      }
      assert.equal(out.code, 0, out.output);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('export grafana', () => {
  it('is a dashboard of timeseries panels with PromQL targets on a datasource variable', () => {
    const body = exportConfig('grafana', parseConfig(OPEN_FORGE, 'tide.yaml')).documents[0]!.body as Obj;
    assert.equal(typeof body.schemaVersion, 'number');
    assert.equal(body.uid, 'tide-open-forge');
    const variable = (body.templating.list as Obj[]).find((v) => v.type === 'datasource');
    assert.equal(variable?.name, 'datasource');
    assert.equal(variable?.query, 'prometheus');
    const panels = body.panels as Obj[];
    assert.ok(panels.length >= 8);
    const ids = new Set<number>();
    for (const p of panels) {
      assert.equal(p.type, 'timeseries');
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' });
      assert.ok(p.targets.length > 0);
      for (const t of p.targets as Obj[]) assert.ok(t.expr && t.refId, p.title);
      assert.ok(!ids.has(p.id));
      ids.add(p.id);
    }
    const exprs = panels.flatMap((p) => (p.targets as Obj[]).map((t) => t.expr as string)).join('\n');
    for (const m of ['tide_queue_ready', 'tide_queue_oldest_ready_age_seconds', 'http_request_duration_seconds_bucket', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
      assert.ok(exprs.includes(m), m);
    }
  });

  it('every panel query is valid PromQL (promtool parses them as recording rules)', async (t) => {
    const configs = [parseConfig(OPEN_FORGE, 'tide.yaml'), parseConfig(MONITOR, 'tide.yaml')];
    const root = path.join(here, '..', '..', 'examples');
    for (const name of ['habitat', 'hash-api', 'monitor-service', 'open-forge', 'recete']) {
      const file = path.join(root, name, 'tide.yaml');
      if (existsSync(file)) configs.push(parseConfig(readFileSync(file, 'utf8'), file, {}));
    }
    const rules = configs.flatMap((config, c) =>
      ((exportConfig('grafana', config).documents[0]!.body as Obj).panels as Obj[]).flatMap((p) =>
        (p.targets as Obj[]).map((target, i) => ({ record: `tide:dashboard${c}:panel${p.id}_${i}`, expr: target.expr as string })),
      ),
    );
    const dir = await mkdtemp(path.join(tmpdir(), 'tide-dashboard-'));
    try {
      const file = path.join(dir, 'panels.yaml');
      await writeFile(file, renderExport({ documents: [{ body: { groups: [{ name: 'panels', rules }] } }], notes: [] }, 'yaml'));
      const out = await promtool([file]);
      if (!out) {
        t.skip('promtool is not installed (Debian package prometheus); the panel queries were not parsed');
        return;
      }
      assert.equal(out.code, 0, out.output);
      assert.match(out.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** promtool's verdict on rule files (or a config), or undefined when it is not installed. */
async function promtool(files: string[], what: 'rules' | 'config' = 'rules'): Promise<{ code: number; output: string } | undefined> {
  if (!existsSync('/usr/bin/promtool')) return undefined;
  return new Promise((resolve) => {
    execFile('/usr/bin/promtool', ['check', what, ...files], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('export: the five runbook examples (examples/*/tide.yaml)', () => {
  const root = path.join(here, '..', '..', 'examples');
  const examples = ['habitat', 'hash-api', 'monitor-service', 'open-forge', 'recete'].filter((e) => existsSync(path.join(root, e, 'tide.yaml')));

  for (const name of examples) {
    it(`${name}: Kubernetes objects, the in-cluster config, the Compose file, ECS requests and the dashboard`, async () => {
      const file = path.join(root, name, 'tide.yaml');
      const text = readFileSync(file, 'utf8');
      // no environment: every ${VAR:-default} takes its default, whatever this machine has set
      const config = parseConfig(text, file, {});
      const objects = parseAllDocuments(renderExport(exportConfig('kubernetes', config, { configText: text }), 'yaml')).map((d) => d.toJS() as Obj);
      checkKubernetes(objects, name);
      const configMap = objects.find((o) => o.kind === 'ConfigMap');
      if (configMap) {
        const inCluster = parseConfig(configMap.data['tide.yaml'], `${name} configmap`, {});
        const built = await buildServices({ config: inCluster, databaseUrl: 'postgres://tide@127.0.0.1:1/none' });
        try {
          assert.deepEqual(built.map((b) => b.name), find(objects, 'Role', 'tide-autoscaler').rules[1].resourceNames);
        } finally {
          for (const b of built) await Promise.all([...b.sources.map((x) => x.source.close()), b.urgentSource?.close(), b.actuator.close()]);
        }
      }
      const compose = parseAllDocuments(renderExport(exportConfig('compose', config), 'yaml'))[0]!.toJS() as Obj;
      assert.ok(validateCompose(compose), JSON.stringify(validateCompose.errors, null, 2));
      const ecs = exportConfig('ecs', config).documents[0]!.body as Obj;
      assert.equal(ecs.registerScalableTargets.length, Object.values(config.services).filter((s) => s.scale).length);
      const dashboard = exportConfig('grafana', config).documents[0]!.body as Obj;
      assert.ok((dashboard.panels as Obj[]).every((p) => p.type === 'timeseries' && p.targets.length > 0));
    });
  }

  it('their alert rules pass promtool check rules', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tide-rules-'));
    try {
      const files: string[] = [];
      for (const name of examples) {
        const config = parseConfig(readFileSync(path.join(root, name, 'tide.yaml'), 'utf8'), name, {});
        const file = path.join(dir, `${name}.yaml`);
        await writeFile(file, renderExport(exportConfig('prometheus-rules', config), 'yaml'));
        files.push(file);
      }
      const out = await promtool(files);
      if (!out) {
        t.skip('promtool is not installed (Debian package prometheus); the rule files were not checked');
        return;
      }
      assert.equal(out.code, 0, out.output);
      assert.equal(out.output.match(/SUCCESS/g)?.length, files.length, out.output);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('tide export (CLI)', () => {
  it('writes -o, and refuses an unknown target with its code', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tide-export-'));
    try {
      await writeFile(path.join(dir, 'tide.yaml'), OPEN_FORGE);
      const out = path.join(dir, 'k8s.yaml');
      const stderr = process.stderr.write;
      let errors = '';
      process.stderr.write = ((chunk: string) => {
        errors += chunk;
        return true;
      }) as typeof process.stderr.write;
      try {
        assert.equal(await main(['export', 'kubernetes', '-c', path.join(dir, 'tide.yaml'), '-o', out, '--namespace', 'forge']), 0);
        assert.equal(await main(['export', 'nomad', '-c', path.join(dir, 'tide.yaml')]), 2);
      } finally {
        process.stderr.write = stderr;
      }
      assert.match(errors, /TIDE_EXPORT_UNKNOWN_TARGET/);
      const objects = parseAllDocuments(await readFile(out, 'utf8')).map((d) => d.toJS() as Obj);
      assert.ok(objects.every((o) => o.metadata.namespace === 'forge'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
