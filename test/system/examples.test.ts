/**
 * The five runbook examples (examples/<system>/tide.yaml): each validates (config, scale
 * blocks, sources and actuators), each autoscaled service runs in the simulator with its own
 * `scale:` block on a public scenario, and the runbooks' own numbers come out where they
 * should (the habitat cron rule exactly, open-forge's HPA and KEDA objects field by field,
 * the load thresholds).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';

import { loadConfig } from '../../src/config/load.js';
import type { ServiceConfig, TideConfig } from '../../src/config/schema.js';
import { buildServices } from '../../src/controller/start.js';
import { decide } from '../../src/core/decide.js';
import { METRIC, type Sample, type ServicePolicy, emptyHistory } from '../../src/core/types.js';
import { type Observation, type SimPolicy, simulate } from '../../src/sim/engine.js';
import { startApi } from '../../src/runtime/api/start.js';
import { drawJobs } from '../../src/sim/jobs.js';
import { type Scenario, loadScenario, loadTrace } from '../../src/sim/scenario.js';
import { samplesOf } from '../../src/sim/tide.js';
import { freshSchema } from '../helpers/db.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLES = ['habitat', 'hash-api', 'monitor-service', 'recete', 'open-forge'] as const;
const exampleFile = (name: string) => path.join(root, 'examples', name, 'tide.yaml');
// the examples fall back to their own defaults for every ${VAR}: load them with no environment
const load = (name: string) => loadConfig(exampleFile(name), {});

test('every example config validates: services, scale blocks, sources and actuators', async () => {
  for (const name of EXAMPLES) {
    const config = await load(name);
    assert.equal(config.project, name);
    // builds every source and actuator from its config (nothing connects until a read)
    const services = await buildServices({
      config,
      databaseUrl: 'postgres://tide@127.0.0.1:1/tide',
      // inside `tide up` a local actuator needs a supervisor; the examples name their own
      supervisor: { ps: () => ({ services: [], replicas: [] }) } as never,
    });
    try {
      const autoscaled = Object.values(config.services).filter((s) => s.scale).map((s) => s.name);
      assert.deepEqual(services.map((s) => s.name).sort(), autoscaled.sort(), name);
      assert.ok(autoscaled.length > 0, `${name} autoscales something`);
    } finally {
      for (const s of services) await Promise.all([...s.sources.map((x) => x.source.close()), s.urgentSource?.close(), s.actuator.close()]);
    }
    const readme = readFileSync(path.join(root, 'examples', name, 'README.md'), 'utf8');
    assert.match(readme, /tide\.yaml/, `${name}/README.md explains the config`);
  }
});

test('each example carries its runbook numbers', async () => {
  const habitat = await load('habitat');
  assert.deepEqual([habitat.services.api!.min, habitat.services.api!.max], [1, 3]);
  assert.equal(habitat.services.worker!.env.WORKER_CONCURRENCY, '10');
  assert.equal(habitat.services.worker!.sources?.events?.queue, 'habitat-events');
  assert.deepEqual(habitat.services.worker!.scale!.schedule, [
    { cron: '0 22 * * *', min: 2 },
    { cron: '0 6 * * *', min: 5 },
  ]);
  assert.deepEqual(habitat.services.api!.scale!.schedule, [
    { cron: '0 22 * * *', min: 1 },
    { cron: '0 6 * * *', min: 3 },
  ]);
  assert.equal(habitat.services.worker!.actuator?.kind, 'compose');

  const hash = await load('hash-api');
  assert.deepEqual(hash.balancer.rateLimit, { ratePerSecond: 100, burst: 200 });
  assert.equal(hash.balancer.port, 8000);
  assert.equal(hash.services.worker!.kind, 'worker');
  assert.equal(hash.services.worker!.max, 50);

  const monitor = await load('monitor-service');
  const bounds = Object.fromEntries(Object.values(monitor.services).map((s) => [s.name, [s.min, s.max]]));
  assert.deepEqual(bounds, { api: [2, 10], worker: [2, 20], scheduler: [1, 1], notifier: [2, 5] });
  const worker = monitor.services.worker!;
  assert.equal(worker.sources?.queue?.kind, 'bullmq');
  const depth = worker.scale!.policies.find((p) => p.name === 'queue-depth');
  assert.deepEqual(depth, { kind: 'steps', name: 'queue-depth', metric: 'queue_depth', up: [{ above: 1000, add: 5 }], down: [{ below: 100, remove: 2 }] });
  assert.ok(Object.values(monitor.services).every((s) => s.actuator?.kind === 'ecs'));

  const recete = await load('recete');
  assert.deepEqual(recete.services.api!.scale!.policies, [{ kind: 'target', metric: 'cpu_utilization', type: 'utilization', target: 0.7 }]);
  assert.deepEqual([recete.services.api!.min, recete.services.api!.max], [2, 10]);
  assert.equal(recete.services.workers!.sources?.queue?.kind, 'bullmq');
});

/** Steps the decision core once, with only `queue_depth`, from `current`. */
function proposeAt(policy: ServicePolicy, depth: number, current: number): number {
  const samples: Sample[] = [{ metric: METRIC.queueDepth, value: depth, at: 0 }];
  return decide({ now: 0, current, ready: current, samples, policy, history: emptyHistory() }).desired;
}

test("habitat's cron-script table is auto-scale-workers.sh exactly: depth / 100 + 1, clamped to 1..10", async () => {
  const config = await load('habitat');
  const full = config.services.worker!.scale!;
  // the table alone, without the schedule and the SLO policy next to it, and no rate limits
  const table: ServicePolicy = {
    min: full.min,
    max: full.max,
    policies: full.policies.filter((p) => p.name === 'cron-script'),
    behavior: { scaleUp: { policies: [] }, scaleDown: { stabilizationWindowSeconds: 0, policies: [] } },
  };
  for (const depth of [0, 1, 99, 100, 101, 199, 200, 450, 899, 900, 999, 1000, 5000]) {
    const script = Math.min(10, Math.max(1, Math.floor(depth / 100) + 1));
    for (const current of [1, 5, 10]) assert.equal(proposeAt(table, depth, current), script, `depth ${depth} from ${current}`);
  }
});

/**
 * A service's own `scale:` block in the simulator, as `tide autoscale` runs it: the simulator's
 * queue metrics, plus what its CPU would read (busy slots over slots: a CPU-bound job holds a
 * core), a steady memory figure (0.5: the runbooks scale up above 0.8 and never scale down
 * on memory), and hash-api's `lb_in_flight` (requests at the balancer: in flight plus
 * waiting). Metrics the simulator cannot produce (API latency) stay missing, which the core
 * treats as missing (no scale-down on them), as it would live.
 */
function servicePolicy(service: ServiceConfig, intervalSeconds: number): SimPolicy {
  const policy = service.scale!;
  let history = emptyHistory();
  return {
    name: `config:${service.name}`,
    intervalSeconds,
    decide(obs: Observation): number {
      const at = obs.now * 1000;
      const samples = [
        ...samplesOf(obs),
        { metric: METRIC.cpu, value: obs.utilization, at },
        { metric: METRIC.memory, value: 0.5, at },
        { metric: 'lb_in_flight', value: obs.inFlight + obs.queueDepth, at },
      ];
      const d = decide({ now: at, current: obs.desired, ready: obs.ready, samples, policy, history });
      history = d.history;
      return d.desired;
    },
  };
}

/** The public scenario's traffic, on this service's own bounds and slots (and SLO, if it has one). */
function asService(scenario: Scenario, service: ServiceConfig): Scenario {
  const slo = service.scale!.policies.find((p) => p.kind === 'slo');
  return {
    ...scenario,
    concurrency: slo?.kind === 'slo' ? slo.concurrency : (service.concurrency ?? Number(service.env.WORKER_CONCURRENCY ?? scenario.concurrency)),
    minReplicas: service.min,
    maxReplicas: service.max,
    initialReplicas: service.replicas,
    // a service with an SLO policy is judged on its own promise
    ...(slo?.kind === 'slo' ? { slo: { waitSeconds: slo.waitSeconds, attainment: slo.attainment } } : {}),
  };
}

function runExample(config: TideConfig, serviceName: string, scenarioName: string) {
  const service = config.services[serviceName]!;
  const scenario = asService(loadScenario(path.join(root, 'examples', 'scenarios', `${scenarioName}.yaml`)), service);
  const jobs = drawJobs(scenario, loadTrace(scenario), 1);
  return simulate(scenario, jobs, servicePolicy(service, config.autoscale.intervalMs / 1000));
}

const peak = (r: { desiredAt: { replicas: number[] } }) => Math.max(...r.desiredAt.replicas);

test('every autoscaled service runs in the simulator with its own scale block (flash-sale surge)', async (t) => {
  for (const name of EXAMPLES) {
    const config = await load(name);
    for (const service of Object.values(config.services)) {
      if (!service.scale || service.scale.policies.length === 0) continue;
      // habitat's api scales on p95 (the simulator has none) and by the clock: tested below
      if (name === 'habitat' && service.name === 'api') continue;
      const result = runExample(config, service.name, 'flash-sale');
      const label = `${name}/${service.name}`;
      assert.ok(result.jobs > 0, label);
      assert.ok(Math.min(...result.desiredAt.replicas) >= service.min && peak(result) <= service.max, `${label} stays within ${service.min}..${service.max}`);
      // the x8 surge moves every queue- or CPU-driven service off its starting count, unless
      // what it started with already kept the scenario's SLO (recete's 5 x 50 slots do)
      const slo = service.scale.policies.find((p) => p.kind === 'slo');
      const kept = result.attainment >= (slo?.kind === 'slo' ? slo.attainment : 0.99);
      assert.ok(peak(result) > service.replicas || kept, `${label} scaled out under the surge (peak ${peak(result)}, attainment ${result.attainment})`);
      t.diagnostic(`${label}: attainment ${(result.attainment * 100).toFixed(2)}%, peak ${peak(result)}, replica-seconds ${Math.round(result.replicaSeconds)}, scale events ${result.scaleEvents}`);
    }
  }
});

test("habitat's off-hours schedule: api 1 before 06:00 and 3 after, workers at least 5 by day (office-hours day)", async () => {
  const config = await load('habitat');
  // the simulator's clock starts at 00:00 UTC, so 06:00 is t = 21600 s
  const api = runExample(config, 'api', 'office-hours');
  const at = (r: typeof api, t: number) => {
    let value = r.desiredAt.replicas[0]!;
    r.desiredAt.t.forEach((x, i) => {
      if (x <= t) value = r.desiredAt.replicas[i]!;
    });
    return value;
  };
  assert.equal(at(api, 6 * 3600 - 60), 1);
  assert.equal(at(api, 6 * 3600 + 60), 3);
  const worker = runExample(config, 'worker', 'office-hours');
  assert.ok(at(worker, 6 * 3600 - 60) >= 2);
  for (const t of [6 * 3600 + 60, 9 * 3600, 11 * 3600]) assert.ok(at(worker, t) >= 5, `worker at ${t}s`);
});

// --- open-forge: the runbook's Kubernetes objects, from the tide.yaml

/** The runbook's api-hpa spec, as written. */
const RUNBOOK_HPA_SPEC = {
  scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' },
  minReplicas: 3,
  maxReplicas: 20,
  metrics: [
    { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
    { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } },
  ],
  behavior: {
    scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] },
    scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
  },
};

/** The runbook's agent-worker-scaler spec, as written. */
const RUNBOOK_KEDA_SPEC = {
  scaleTargetRef: { name: 'agent-worker' },
  minReplicaCount: 1,
  maxReplicaCount: 100,
  triggers: [
    {
      type: 'redis',
      metadata: { address: 'redis.open-forge.svc:6379', listName: 'agent:tasks:pending', listLength: '10', databaseIndex: '0' },
    },
  ],
};

async function openForgeObjects(): Promise<Array<Record<string, unknown>>> {
  const { exportKubernetes } = await import('../../src/export/kubernetes.js');
  const { defaultOptions } = await import('../../src/export/types.js');
  const config = await load('open-forge');
  return exportKubernetes(config, defaultOptions(config, { namespace: 'open-forge' })).documents.map((d) => d.body);
}

test('open-forge: tide export kubernetes gives the runbook api-hpa field by field', async () => {
  const objects = await openForgeObjects();
  const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler') as { apiVersion: string; metadata: { name: string; namespace: string }; spec: unknown } | undefined;
  assert.ok(hpa, 'an HPA for the api');
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  assert.equal(hpa.metadata.namespace, 'open-forge');
  assert.deepEqual(hpa.spec, RUNBOOK_HPA_SPEC);
});

test('open-forge: tide export kubernetes gives the runbook KEDA ScaledObject on the Redis list', async () => {
  const objects = await openForgeObjects();
  const scaled = objects.find((o) => o.kind === 'ScaledObject') as { apiVersion: string; spec: Record<string, unknown> } | undefined;
  assert.ok(scaled, 'a ScaledObject for agent-worker');
  assert.equal(scaled.apiVersion, 'keda.sh/v1alpha1');
  const { triggers, ...rest } = scaled.spec as { triggers: Array<{ type: string; metadata: Record<string, string> }> };
  const { triggers: wanted, ...wantedRest } = RUNBOOK_KEDA_SPEC;
  assert.deepEqual(rest, wantedRest);
  assert.equal(triggers.length, 1);
  assert.equal(triggers[0]!.type, 'redis');
  // listLength is per replica in KEDA, an AverageValue: the runbook leaves metricType out
  for (const [k, v] of Object.entries(wanted[0]!.metadata)) assert.equal(triggers[0]!.metadata[k], v, `metadata.${k}`);
});

// --- the runbooks' load targets as `tide load` thresholds

/** The `--threshold` arguments of every `tide load` line in an example's README. */
function thresholdsOf(name: string): string[] {
  const readme = readFileSync(path.join(root, 'examples', name, 'README.md'), 'utf8');
  const lines = readme.split('\n').filter((l) => /^\s*(npx )?tide load /.test(l));
  return lines.flatMap((l) => [...l.matchAll(/--threshold '([^']+)'/g)].map((m) => m[1]!));
}

test('recete and open-forge: their performance targets are valid tide load thresholds', async () => {
  const { parseThreshold } = await import('../../src/load/index.js');
  const recete = thresholdsOf('recete');
  assert.ok(recete.includes('p(95)<200'), 'recete: p95 < 200 ms');
  assert.ok(recete.includes('rate>=1000'), 'recete: 1000 req/s per instance');
  const forge = thresholdsOf('open-forge');
  assert.ok(forge.includes('p(99)<2000'), 'open-forge: p(99)<2000');
  assert.ok(forge.includes('failed<0.01'), 'open-forge: http_req_failed rate<0.01');
  for (const t of [...recete, ...forge]) assert.doesNotThrow(() => parseThreshold(t), t);
});

test('open-forge: tide export prometheus-rules gives the runbook alert rules', async () => {
  const { exportPrometheusRules } = await import('../../src/export/prometheus.js');
  const { defaultOptions } = await import('../../src/export/types.js');
  const config = await load('open-forge');
  const [doc] = exportPrometheusRules(config, defaultOptions(config)).documents;
  type Rule = { alert: string; expr: string; for: string; labels: Record<string, string> };
  const rules = (doc!.body as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
  const has = (service: string, what: RegExp, threshold: string, forTime: string) =>
    rules.some((r) => r.labels.service === service && what.test(r.expr) && r.expr.trimEnd().endsWith(`> ${threshold}`) && r.for === forTime);
  // the runbook's HighCPU, HighMemory, HighQueueDepth and HighAPILatency
  assert.ok(has('api', /cpu/, '0.7', '10m'), 'HighCPU: api CPU > 0.7 for 10m');
  assert.ok(has('api', /memory/, '0.8', '10m'), 'HighMemory: api memory > 0.8 for 10m');
  assert.ok(has('agent-worker', /.*/, '1000', '5m'), 'HighQueueDepth: agent:tasks:pending > 1000 for 5m');
  assert.ok(has('api', /histogram_quantile\(0\.99/, '2', '10m'), 'HighAPILatency: p99 > 2 s for 10m');
});

test("monitor-service: its capacity table in the README is tide plan's model for the measured check time", async () => {
  const { capacityTable } = await import('../../src/plan/model.js');
  const readme = readFileSync(path.join(root, 'examples', 'monitor-service', 'README.md'), 'utf8');
  // the measurement printed in the README: mean 499.0 ms, scv 0.71, 10 at once, 99% within 60 s
  const measured = /service time mean ([\d.]+) ms, .* scv ([\d.]+)/.exec(readme);
  assert.ok(measured, 'the README shows the measurement');
  const rows = [...readme.matchAll(/^\s+([\d.]+)\s+(\d+)\s+\d+%$/gm)].map((m) => ({ rate: Number(m[1]), workers: Number(m[2]) }));
  assert.deepEqual(rows.map((r) => r.rate), [1.67, 16.7, 167, 1667]);
  const table = capacityTable(rows.map((r) => r.rate), { mean: Number(measured[1]) / 1000, scv: Number(measured[2]) }, { concurrency: 10, waitSeconds: 60, attainment: 0.99 });
  assert.deepEqual(table.map((r) => r.workers), rows.map((r) => r.workers));
});

test("habitat: the API's health check answers the hostname (and pid), what the guide's distribution loop reads", { timeout: 30_000 }, async () => {
  const config = await load('habitat');
  const api = config.services.api!;
  assert.equal(api.kind, 'api');
  assert.equal(api.healthPath, '/health');
  const db = await freshSchema('exh');
  const running = await startApi({ databaseUrl: db.url, schema: db.schema, port: 0, version: 'test', rateLimit: false, defaultMetrics: false });
  try {
    const body = (await (await fetch(`${running.url}${api.healthPath}`)).json()) as { hostname: string; pid: number };
    assert.equal(body.hostname, hostname());
    assert.equal(body.pid, process.pid);
  } finally {
    await running.close();
    await db.drop();
  }
});
