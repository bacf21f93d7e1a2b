/**
 * `tide export kubernetes`: the project as Kubernetes objects. Per service a Deployment (and a
 * Service for an API, and a PodDisruptionBudget when it may run more than one replica), and
 * per autoscaled service the one autoscaler that can carry its `scale:` block over:
 *
 * - an `autoscaling/v2` HorizontalPodAutoscaler when every policy is a target on CPU or
 *   memory (the HPA's own Resource metrics) and nothing needs more than the HPA has;
 * - a KEDA ScaledObject when a target is on a queue or another metric, or the block has
 *   `fallback`, `activation` or a min of 0 (KEDA's fallback, activation thresholds, scale to
 *   zero; the HPA has none of them);
 * - `tide autoscale` running in the cluster (a Deployment with a ServiceAccount, and a Role
 *   allowed only get/patch on those Deployments' scale) when the block has `steps`, `slo`,
 *   `schedule` or `panic`, which neither the HPA nor KEDA can express.
 *
 * Sizing, so drains finish: `terminationGracePeriodSeconds` = the preStop pause (API only:
 * endpoints take a moment to drop a terminating pod) + `stop_grace_seconds` (the drain) + a
 * margin for the exit itself. CPU is requested at one core by default, so the HPA's CPU
 * utilisation (usage / request) means what the core's `cpu_utilization` means (a fraction of
 * a core); memory is requested at its limit for the same reason.
 *
 * In front of the first API: an ingress-nginx Ingress. The per-client limit lands there
 * (`limit-rpm` counts per client address, per controller pod), from `balancer.rate_limit` or
 * the API's default, and the API's own limit is off: behind the ingress every request comes
 * from a controller pod. The API trusts exactly `balancer.trusted_proxies` (the controller
 * pods' CIDR) for the client's address in X-Forwarded-For, which ingress-nginx sets.
 */
import { isNode, type Node, parseDocument, visit } from 'yaml';

import type { ServiceConfig, TideConfig } from '../config/schema.js';
import type { Behavior, ScalingRules, ServicePolicy, TargetPolicy } from '../core/types.js';
import { METRIC } from '../core/types.js';
import { TideError } from '../errors.js';
import { kedaTriggerFor, sourceMetrics } from './keda-sources.js';
import { podMonitors } from './scrape.js';
import { type AutoscalerChoice, type ExportDocument, type ExportOptions, type ExportResult, imageOf, replicaResources } from './types.js';
import {
  API_DEFAULT_PER_MINUTE,
  API_DEREGISTER_SECONDS,
  containerPort,
  isResourceMetric,
  perClientPerMinute,
  policyLabel,
  promQuery,
  queueSql,
  queuesOf,
  serviceCommand,
  serviceEnv,
  terminationSeconds,
} from './workload.js';

type Obj = Record<string, unknown>;

/** The autoscaler chosen for one service, and why (the why becomes a YAML comment). */
export interface AutoscalerPlan {
  kind: 'hpa' | 'keda' | 'tide';
  why: string;
}

const AUTOSCALER_NAME = 'tide-autoscaler';
const CONFIG_PATH = '/etc/tide/tide.yaml';

function labels(config: TideConfig, name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': config.project, 'app.kubernetes.io/managed-by': 'tidescale' };
}

function meta(config: TideConfig, options: ExportOptions, name: string): Obj {
  return { name, namespace: options.namespace, labels: labels(config, name) };
}

/** Which autoscaler can carry this policy over; `choice` forces one (with notes on what is lost). */
export function planAutoscaler(policy: ServicePolicy, choice: AutoscalerChoice = 'auto'): AutoscalerPlan {
  const kinds = new Set(policy.policies.map((p) => p.kind));
  const needsTide: string[] = [];
  if (kinds.has('steps')) needsTide.push('a steps policy (the HPA and KEDA have no threshold tables)');
  if (kinds.has('slo')) needsTide.push("the SLO policy (Tidescale's own queueing model)");
  if (policy.schedule?.length) needsTide.push('a schedule (the HPA has no time windows; KEDA cron triggers cannot lower max)');
  if (policy.panic) needsTide.push('panic mode (the HPA cannot hold scale-down while panicking)');
  const targets = policy.policies.filter((p): p is TargetPolicy => p.kind === 'target');
  const needsKeda: string[] = [];
  const external = targets.filter((t) => !isResourceMetric(t.metric)).map((t) => t.metric);
  if (external.length) needsKeda.push(`a target on ${[...new Set(external)].join(', ')} (not a CPU or memory metric)`);
  if (policy.fallback) needsKeda.push('fallback replicas');
  if (policy.activation) needsKeda.push('an activation threshold');
  if (policy.min === 0) needsKeda.push('min 0 (scale to zero)');

  if (choice === 'tide' || (choice === 'auto' && needsTide.length)) {
    return { kind: 'tide', why: needsTide.length ? `needs ${needsTide.join(', ')}` : 'chosen with --autoscaler tide' };
  }
  if (choice === 'keda' || (choice === 'auto' && needsKeda.length)) {
    return { kind: 'keda', why: needsKeda.length ? `needs ${needsKeda.join(', ')}` : 'chosen with --autoscaler keda' };
  }
  return { kind: 'hpa', why: choice === 'hpa' ? 'chosen with --autoscaler hpa' : 'every policy is a CPU or memory target' };
}

function quantityMiB(mib: number): string {
  return `${mib}Mi`;
}

function deployment(config: TideConfig, service: ServiceConfig, options: ExportOptions, autoscaled: boolean): Obj {
  const port = containerPort(service);
  // the limit is the ingress's (below); the API trusts the controller pods for the client's address
  const command = serviceCommand(service, ['--rate-limit', '0']);
  const trusted = service.kind === 'api' && config.balancer.trustedProxies.length > 0 ? { TRUSTED_PROXIES: config.balancer.trustedProxies.join(',') } : {};
  const env: Obj[] = [
    { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: `${options.namespace}-database`, key: 'url' } } },
    ...Object.entries({ ...serviceEnv(config, service), ...trusted }).map(([name, value]) => ({ name, value })),
  ];
  const container: Obj = {
    name: service.name,
    image: imageOf(options, service.name),
    ...('args' in command ? { args: command.args } : { command: ['sh', '-c', command.shell] }),
    env,
    resources: {
      requests: { cpu: options.cpuRequest, memory: quantityMiB(options.memoryMiB) },
      limits: { memory: quantityMiB(options.memoryMiB) },
    },
  };
  if (port !== undefined) {
    container.ports = [{ name: service.kind === 'api' ? 'http' : 'metrics', containerPort: port }];
    container.readinessProbe = { httpGet: { path: service.healthPath, port }, periodSeconds: 5, failureThreshold: 2 };
    // liveness is looser than readiness: /health is 503 while the database is down, and
    // restarting every replica for that would not bring the database back
    container.livenessProbe = { httpGet: { path: service.healthPath, port }, periodSeconds: 10, failureThreshold: 6 };
  }
  if (service.kind === 'api') {
    // keep serving while the endpoint is removed, then SIGTERM starts the drain
    container.lifecycle = { preStop: { exec: { command: ['sleep', String(API_DEREGISTER_SECONDS)] } } };
  }
  const podLabels = labels(config, service.name);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(config, options, service.name),
    spec: {
      // an autoscaled Deployment leaves replicas to its autoscaler, so re-applying the file
      // does not reset the count
      ...(autoscaled ? {} : { replicas: service.replicas }),
      selector: { matchLabels: { 'app.kubernetes.io/name': service.name, 'app.kubernetes.io/part-of': config.project } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: podLabels,
          ...(port !== undefined ? { annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' } } : {}),
        },
        spec: { terminationGracePeriodSeconds: terminationSeconds(service), containers: [container] },
      },
    },
  };
}

function apiService(config: TideConfig, service: ServiceConfig, options: ExportOptions): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(config, options, service.name),
    spec: {
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': service.name, 'app.kubernetes.io/part-of': config.project },
      ports: [{ name: 'http', port: 80, targetPort: 'http' }],
    },
  };
}

/** ingress-nginx in front of the API: routes everything to its Service, limits per client address. */
function apiIngress(config: TideConfig, service: ServiceConfig, options: ExportOptions): Obj {
  const perMinute = perClientPerMinute(config) ?? API_DEFAULT_PER_MINUTE;
  const limit = config.balancer.rateLimit;
  // ingress-nginx's burst is a multiple of the per-second rate (its default is 5)
  const burst = limit ? Math.min(10, Math.max(1, Math.ceil(limit.burst / limit.ratePerSecond))) : 5;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      ...meta(config, options, service.name),
      annotations: {
        // per client address (ingress-nginx keys limits by $binary_remote_addr), per controller pod
        'nginx.ingress.kubernetes.io/limit-rpm': String(perMinute),
        'nginx.ingress.kubernetes.io/limit-burst-multiplier': String(burst),
        // the API's own body limit, refused at the edge already
        'nginx.ingress.kubernetes.io/proxy-body-size': '1m',
      },
    },
    spec: {
      ingressClassName: 'nginx',
      rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service.name, port: { name: 'http' } } } }] } }],
    },
  };
}

function disruptionBudget(config: TideConfig, service: ServiceConfig, options: ExportOptions): Obj {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(config, options, service.name),
    spec: {
      // maxUnavailable, not minAvailable: a node drain may always take one replica at a
      // time, even when the autoscaler has scaled the service down to one
      maxUnavailable: 1,
      selector: { matchLabels: { 'app.kubernetes.io/name': service.name, 'app.kubernetes.io/part-of': config.project } },
    },
  };
}

function hpaRules(rules: ScalingRules | undefined): Obj | undefined {
  if (!rules) return undefined;
  const out: Obj = {};
  if (rules.stabilizationWindowSeconds !== undefined) out.stabilizationWindowSeconds = rules.stabilizationWindowSeconds;
  if (rules.selectPolicy !== undefined) out.selectPolicy = rules.selectPolicy;
  if (rules.policies?.length) out.policies = rules.policies.map((p) => ({ type: p.type, value: p.value, periodSeconds: p.periodSeconds }));
  return Object.keys(out).length ? out : undefined;
}

/** The core's `behavior` as the HPA's (the same fields, 1:1; cooldowns have no equivalent). */
export function hpaBehavior(behavior: Behavior | undefined, notes: string[], service: string): Obj | undefined {
  if (!behavior) return undefined;
  const out: Obj = {};
  const up = hpaRules(behavior.scaleUp);
  const down = hpaRules(behavior.scaleDown);
  if (up) out.scaleUp = up;
  if (down) out.scaleDown = down;
  if (behavior.scaleUp?.cooldownSeconds !== undefined || behavior.scaleDown?.cooldownSeconds !== undefined) {
    notes.push(`${service}: behavior cooldownSeconds has no HPA field; use stabilizationWindowSeconds or the in-cluster tide autoscale`);
  }
  return Object.keys(out).length ? out : undefined;
}

function resourceTarget(t: TargetPolicy, options: ExportOptions): Obj {
  if (t.type === 'utilization') return { type: 'Utilization', averageUtilization: Math.round(t.target * 100) };
  // per-replica style on a resource: an average quantity per pod
  return t.metric === METRIC.cpu
    ? { type: 'AverageValue', averageValue: `${Math.round(t.target * 1000)}m` }
    : { type: 'AverageValue', averageValue: quantityMiB(Math.round(t.target * options.memoryMiB)) };
}

/** Prometheus-adapter style metric names for queue metrics in an HPA External metric. */
function externalMetricName(metric: string): string {
  if (metric === METRIC.queueDepth) return 'tide_queue_ready';
  if (metric === METRIC.oldestAge) return 'tide_queue_oldest_ready_age_seconds';
  return metric;
}

function hpa(config: TideConfig, service: ServiceConfig, policy: ServicePolicy, options: ExportOptions, notes: string[]): Obj {
  const metrics: Obj[] = [];
  for (const p of policy.policies) {
    if (p.kind !== 'target') continue;
    if (isResourceMetric(p.metric)) {
      metrics.push({ type: 'Resource', resource: { name: p.metric === METRIC.cpu ? 'cpu' : 'memory', target: resourceTarget(p, options) } });
      continue;
    }
    const queues = queuesOf(service);
    const selector = queues?.length === 1 && !isResourceMetric(p.metric) ? { selector: { matchLabels: { queue: queues[0] } } } : {};
    metrics.push({
      type: 'External',
      external: {
        metric: { name: externalMetricName(p.metric), ...selector },
        target: p.type === 'average' ? { type: 'AverageValue', averageValue: String(p.target) } : { type: 'Value', value: String(p.target) },
      },
    });
    notes.push(`${service.name}: the HPA reads ${p.metric} as the External metric ${externalMetricName(p.metric)}; it needs a metrics adapter (prometheus-adapter) serving it`);
  }
  for (const [field, present] of [['fallback', policy.fallback], ['activation', policy.activation]] as const) {
    if (present) notes.push(`${service.name}: ${field} has no HPA equivalent and was left out (KEDA has it: --autoscaler keda)`);
  }
  if (policy.min === 0) notes.push(`${service.name}: the HPA cannot scale to zero; minReplicas is 1`);
  const behavior = hpaBehavior(policy.behavior, notes, service.name);
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta(config, options, service.name),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: service.name },
      minReplicas: Math.max(1, policy.min),
      maxReplicas: policy.max,
      metrics,
      ...(behavior ? { behavior } : {}),
    },
  };
}

function kedaTrigger(config: TideConfig, service: ServiceConfig, p: TargetPolicy, options: ExportOptions, notes: string[]): Obj {
  const metricType = p.type === 'average' ? 'AverageValue' : 'Value';
  if (isResourceMetric(p.metric)) {
    const type = p.metric === METRIC.cpu ? 'cpu' : 'memory';
    if (p.type === 'utilization') return { type, metricType: 'Utilization', metadata: { value: String(Math.round(p.target * 100)) } };
    const value = p.metric === METRIC.cpu ? `${Math.round(p.target * 1000)}m` : quantityMiB(Math.round(p.target * options.memoryMiB));
    return { type, metricType: 'AverageValue', metadata: { value } };
  }
  for (const source of Object.values(service.sources ?? {})) {
    if (source.kind === 'builtin' || !sourceMetrics(source).includes(p.metric)) continue;
    const trigger = kedaTriggerFor(source, p, notes, service.name);
    if (trigger) return trigger;
  }
  const builtin = Object.values(service.sources ?? {}).find((s) => s.kind === 'builtin');
  const builtinQueue = builtin && typeof builtin.queue === 'string' ? [builtin.queue] : undefined;
  const builtinSchema = builtin && typeof builtin.schema === 'string' ? builtin.schema : config.database.schema;
  const sql = queueSql(p.metric, builtinSchema, builtinQueue ?? queuesOf(service));
  if (sql) {
    return { type: 'postgresql', metricType, metadata: { query: sql, targetQueryValue: String(p.target), connectionFromEnv: 'DATABASE_URL' } };
  }
  const query = promQuery(config, service, p.metric, replicaResources(options));
  if (!query) notes.push(`${service.name}: ${p.metric} is not a Tidescale runtime metric; the KEDA prometheus trigger queries sum(${p.metric})`);
  return {
    type: 'prometheus',
    metricType,
    metadata: { serverAddress: options.prometheusUrl, query: query ?? `sum(${p.metric})`, threshold: String(p.target) },
  };
}

/** The metadata key KEDA reads the activation threshold from, per trigger type. */
const ACTIVATION_KEY: Record<string, string> = {
  postgresql: 'activationTargetQueryValue',
  prometheus: 'activationThreshold',
  redis: 'activationListLength',
  rabbitmq: 'activationValue',
};

function scaledObject(config: TideConfig, service: ServiceConfig, policy: ServicePolicy, options: ExportOptions, notes: string[]): Obj {
  const targets = policy.policies.filter((p): p is TargetPolicy => p.kind === 'target');
  const triggers = targets.map((t) => ({ policy: t, trigger: kedaTrigger(config, service, t, options, notes) }));
  if (policy.activation) {
    const { metric, threshold } = policy.activation;
    const hit = triggers.find((t) => t.policy.metric === metric && ACTIVATION_KEY[String(t.trigger.type)]);
    if (hit) {
      (hit.trigger.metadata as Record<string, string>)[ACTIVATION_KEY[String(hit.trigger.type)]!] = String(threshold);
    } else {
      notes.push(`${service.name}: activation on ${metric} has no KEDA trigger of its own (KEDA activates on any trigger; CPU and memory cannot activate)`);
    }
  }
  if (triggers.length === 0) notes.push(`${service.name}: no target policy, so the ScaledObject has no trigger`);
  if (policy.min === 0 && triggers.every((t) => isResourceMetric(t.policy.metric))) {
    notes.push(`${service.name}: KEDA scales to zero only on a non-CPU/memory trigger`);
  }
  const behavior = hpaBehavior(policy.behavior, notes, service.name);
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: meta(config, options, service.name),
    spec: {
      scaleTargetRef: { name: service.name },
      minReplicaCount: policy.min,
      maxReplicaCount: policy.max,
      ...(policy.activation?.cooldownSeconds !== undefined ? { cooldownPeriod: policy.activation.cooldownSeconds } : {}),
      ...(policy.fallback ? { fallback: { failureThreshold: policy.fallback.failureThreshold, replicas: policy.fallback.replicas } } : {}),
      ...(behavior ? { advanced: { horizontalPodAutoscalerConfig: { behavior } } } : {}),
      triggers: triggers.map((t) => t.trigger),
    },
  };
}

/** The in-cluster `tide autoscale`: its config, identity, rights (the scale subresource of these Deployments only) and Deployment. */
function tideAutoscaler(config: TideConfig, services: Array<{ service: ServiceConfig; why: string }>, options: ExportOptions): ExportDocument[] {
  const names = services.map((s) => s.service.name);
  const m = meta(config, options, AUTOSCALER_NAME);
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: m,
    data: { 'tide.yaml': inClusterConfig(config, names, options) },
  };
  const account = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: m };
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: m,
    rules: [
      { apiGroups: ['apps'], resources: ['deployments'], resourceNames: names, verbs: ['get'] },
      { apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: names, verbs: ['get', 'patch'] },
    ],
  };
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: m,
    subjects: [{ kind: 'ServiceAccount', name: AUTOSCALER_NAME, namespace: options.namespace }],
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: AUTOSCALER_NAME },
  };
  const deploy = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: m,
    spec: {
      replicas: 1,
      // never two deciders at once, even during a rollout
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { 'app.kubernetes.io/name': AUTOSCALER_NAME, 'app.kubernetes.io/part-of': config.project } },
      template: {
        metadata: { labels: labels(config, AUTOSCALER_NAME) },
        spec: {
          serviceAccountName: AUTOSCALER_NAME,
          containers: [
            {
              name: 'autoscale',
              image: options.image,
              args: ['autoscale', '--config', CONFIG_PATH],
              env: [{ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: `${options.namespace}-database`, key: 'url' } } }],
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
              volumeMounts: [{ name: 'config', mountPath: '/etc/tide', readOnly: true }],
            },
          ],
          volumes: [{ name: 'config', configMap: { name: AUTOSCALER_NAME } }],
        },
      },
    },
  };
  const why = ['tide autoscale, in the cluster, for the policies the HPA and KEDA cannot run:', ...services.map((s) => `  ${s.service.name}: ${s.why}`)].join('\n');
  return [
    { body: configMap, comment: `${why}\nIts config: the project's tide.yaml.` },
    { body: account },
    { body: role, comment: 'Only what scaling needs: read the Deployments, get and patch their scale subresource.' },
    { body: binding },
    { body: deploy },
  ];
}

/**
 * The tide.yaml the in-cluster autoscaler runs with: the project's own file (comments kept),
 * with the Kubernetes actuator on the services it scales and no `scale:` on the others, whose
 * HPA or ScaledObject owns their replica count (two autoscalers on one Deployment fight).
 */
export function inClusterConfig(config: TideConfig, tideServices: string[], options: ExportOptions): string {
  const doc = parseDocument(options.configText ?? `project: ${config.project}\nservices: {}\n`);
  // aliases first become copies of what they point at: replacing an anchored node (a shared
  // `actuator: &ecs {...}`) would leave them pointing at nothing
  visit(doc, {
    Alias(_, alias) {
      const target = alias.resolve(doc);
      return target ? (target.clone() as Node) : undefined;
    },
  });
  visit(doc, {
    Node(_, node) {
      if (isNode(node)) node.anchor = undefined;
    },
  });
  for (const service of Object.values(config.services)) {
    if (tideServices.includes(service.name)) {
      if (!doc.hasIn(['services', service.name])) doc.setIn(['services', service.name], doc.createNode({ kind: service.kind }));
      doc.setIn(['services', service.name, 'actuator'], doc.createNode({ kind: 'kubernetes', namespace: options.namespace, inCluster: true }));
    } else if (doc.hasIn(['services', service.name, 'scale'])) {
      doc.deleteIn(['services', service.name, 'scale']);
    }
  }
  return doc.toString({ lineWidth: 0 });
}

/** Every Kubernetes object of the project, in apply order. */
export function exportKubernetes(config: TideConfig, options: ExportOptions): ExportResult {
  assertExpressible(config, options.autoscaler);
  const documents: ExportDocument[] = [];
  const notes: string[] = [];
  const byTide: Array<{ service: ServiceConfig; why: string }> = [];
  let fronted = false;
  for (const service of Object.values(config.services)) {
    const policy = service.scale;
    let plan = policy ? planAutoscaler(policy, options.autoscaler) : undefined;
    if (policy && plan && plan.kind !== 'tide') {
      if (policy.policies.length === 0) {
        notes.push(`${service.name}: the scale block has no policy; no autoscaler exported`);
        plan = undefined;
      }
      for (const [field, present] of [['schedule', policy.schedule?.length], ['panic', policy.panic]] as const) {
        if (present) notes.push(`${service.name}: ${field} cannot run in ${plan?.kind === 'hpa' ? 'an HPA' : 'KEDA'} and was left out (--autoscaler tide runs it)`);
      }
    }
    documents.push({ body: deployment(config, service, options, plan !== undefined), comment: `service ${service.name} (${service.kind})` });
    if (service.kind === 'api') documents.push({ body: apiService(config, service, options) });
    if (service.kind === 'api' && !fronted) {
      fronted = true;
      documents.push({ body: apiIngress(config, service, options), comment: `ingress-nginx in front of ${service.name}: the per-client limit` });
      notes.push(`ingress: ${perClientPerMinute(config) ?? API_DEFAULT_PER_MINUTE} requests a minute per client address at ingress-nginx (its controller Service needs externalTrafficPolicy: Local, or the PROXY protocol, to see client addresses)`);
      if (config.balancer.trustedProxies.length === 0) notes.push(`${service.name}: trusts no proxy, so it sees the ingress controller's address; set balancer.trusted_proxies to the controller pods' CIDR`);
    }
    if (service.max > 1 || service.replicas > 1) documents.push({ body: disruptionBudget(config, service, options) });
    if (!policy || !plan) continue;
    if (plan.kind === 'tide') {
      byTide.push({ service, why: plan.why });
      continue;
    }
    const body = plan.kind === 'hpa' ? hpa(config, service, policy, options, notes) : scaledObject(config, service, policy, options, notes);
    documents.push({ body, comment: `${plan.kind === 'hpa' ? 'HPA' : 'KEDA'} for ${service.name}: ${plan.why}` });
  }
  if (byTide.length) documents.push(...tideAutoscaler(config, byTide, options));
  if (options.podMonitors) {
    for (const body of podMonitors(config, options, (name) => labels(config, name))) documents.push({ body, comment: `Prometheus Operator: scrape ${(body.metadata as { name: string }).name} with the labels the alert rules select` });
  }
  return { documents, notes };
}

/** Refuse `--autoscaler hpa|keda` for a service whose policies they cannot run at all. */
export function assertExpressible(config: TideConfig, choice: AutoscalerChoice): void {
  if (choice !== 'hpa' && choice !== 'keda') return;
  for (const service of Object.values(config.services)) {
    service.scale?.policies.forEach((p, i) => {
      if (p.kind === 'target') return;
      throw new TideError('TIDE_EXPORT_UNSUPPORTED', `services.${service.name}: ${policyLabel(p, i)} cannot run in ${choice === 'hpa' ? 'an HPA' : 'KEDA'}; use --autoscaler auto or tide.`, {
        where: { file: config.file, field: `services.${service.name}.scale.policies[${i}]` },
      });
    });
  }
}
