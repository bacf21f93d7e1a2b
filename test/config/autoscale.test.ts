/**
 * The control loop's config (`autoscale:`, a service's `sources:` and `actuator:`), how the
 * controller is built from it, and the `tide autoscale` / `tide decisions` commands end to end
 * over real PostgreSQL. The platform is the FAKE Kubernetes API server of the actuator tests
 * (no real one runs here; it follows the documented shapes).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { parseConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/controller/start.js';
import { TideError } from '../../src/errors.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { FakeKubernetes } from '../actuators/fake-kubernetes.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';
import { runTide } from '../helpers/tide.js';

test('autoscale: defaults, and seconds become ms', () => {
  const plain = parseConfig('project: p\nservices:\n  worker: { kind: worker }\n');
  assert.deepEqual(plain.autoscale, { intervalMs: 5_000, dryRun: false, manualPauseMs: 300_000, urgentPollMs: 500, readTimeoutMs: 2_000, journalRetentionMs: 168 * 3_600_000 });
  const set = parseConfig('project: p\nautoscale: { interval_seconds: 1, dry_run: true, manual_pause_seconds: 30, urgent_poll_seconds: 0.25 }\nservices:\n  worker: { kind: worker }\n');
  assert.equal(set.autoscale.intervalMs, 1_000);
  assert.equal(set.autoscale.dryRun, true);
  assert.equal(set.autoscale.manualPauseMs, 30_000);
  assert.equal(set.autoscale.urgentPollMs, 250);
});

test('autoscale: an unknown or bad key names its field and line', () => {
  assert.throws(
    () => parseConfig('project: p\nautoscale:\n  interval_secs: 1\nservices:\n  worker: { kind: worker }\n', 'tide.yaml'),
    (err: TideError) => err.code === 'TIDE_CONFIG_INVALID' && err.where?.field === 'autoscale.interval_secs' && err.where.line === 3 && /interval_seconds/.test(err.message),
  );
  assert.throws(
    () => parseConfig('project: p\nautoscale: { interval_seconds: 0 }\nservices:\n  worker: { kind: worker }\n', 'tide.yaml'),
    (err: TideError) => err.code === 'TIDE_CONFIG_INVALID' && err.where?.field === 'autoscale.interval_seconds',
  );
});

test('a service takes sources by name and an actuator, each with a kind', () => {
  const config = parseConfig(
    [
      'project: p',
      'services:',
      '  worker:',
      '    kind: worker',
      '    sources:',
      '      backlog: { kind: postgres, connection_string: "postgres://h/db", query: "select 1 as queue_depth" }',
      '    actuator: { kind: compose, service: worker }',
    ].join('\n'),
  );
  assert.equal(config.services.worker!.sources?.backlog?.kind, 'postgres');
  assert.deepEqual(config.services.worker!.actuator, { kind: 'compose', service: 'worker' });
  assert.throws(
    () => parseConfig('project: p\nservices:\n  worker:\n    kind: worker\n    actuator: { service: worker }\n', 'tide.yaml'),
    (err: TideError) => err.code === 'TIDE_CONFIG_INVALID' && err.where?.field === 'services.worker.actuator.kind',
  );
});

test('building the controller: a missing actuator outside tide up names the service; a bad source names its field', async () => {
  const scaled = (extra: string) =>
    parseConfig(`project: p\nservices:\n  worker:\n    kind: worker\n    max: 4\n    queues: [jobs]\n    scale:\n      policies: [{ kind: steps, metric: queue_depth, up: [{ above: 10, add: 1 }] }]\n${extra}`, 'tide.yaml');
  await assert.rejects(
    buildServices({ config: scaled(''), databaseUrl: 'postgres://x@127.0.0.1:1/db' }),
    (err: TideError) => err.code === 'TIDE_CONTROLLER_NO_ACTUATOR' && err.where?.field === 'services.worker.actuator' && /worker/.test(err.message),
  );
  await assert.rejects(
    buildServices({ config: scaled('    sources:\n      q: { kind: builtin, queue: jobs }\n    actuator: { kind: compose, project: p }\n'), databaseUrl: 'postgres://x@127.0.0.1:1/db' }),
    (err: TideError) => err.code === 'TIDE_SOURCE_CONFIG' && err.where?.field === 'services.worker.sources.q.connection_string' && err.where.file === 'tide.yaml',
  );
  await assert.rejects(
    buildServices({ config: scaled('    actuator: { kind: compose, projekt: p }\n'), databaseUrl: 'postgres://x@127.0.0.1:1/db' }),
    (err: TideError) => err.code === 'TIDE_ACTUATOR_CONFIG' && err.where?.field?.startsWith('services.worker.actuator') === true,
  );
  const api = parseConfig('project: p\nservices:\n  api:\n    kind: api\n    max: 3\n    scale:\n      policies: [{ kind: target, metric: cpu_utilization, type: utilization, target: 0.6 }]\n    actuator: { kind: compose, project: p }\n', 'tide.yaml');
  await assert.rejects(buildServices({ config: api, databaseUrl: 'postgres://x@127.0.0.1:1/db' }), (err: TideError) => err.code === 'TIDE_CONTROLLER_CONFIG' && err.where?.field === 'services.api.sources');
  // a worker without sources gets the builtin source on each of its queues
  const built = await buildServices({ config: scaled('    actuator: { kind: compose, project: p }\n'), databaseUrl: 'postgres://x@127.0.0.1:1/db' });
  assert.deepEqual(
    built.map((s) => [s.name, s.sources.map((x) => x.name)]),
    [['worker', ['queue-jobs']]],
  );
  for (const s of built) {
    await Promise.all([...s.sources.map((x) => x.source.close()), s.actuator.close()]);
  }
});

// --- the commands, end to end

let schema: TestSchema;
let queue: PostgresQueue;
let fake: FakeKubernetes;
let dir: string;

before(async () => {
  schema = await freshSchema('cas');
  queue = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, poolSize: 1 });
  fake = new FakeKubernetes();
  const server = await fake.listen();
  dir = await mkdtemp(path.join(tmpdir(), 'tide-autoscale-'));
  await writeFile(
    path.join(dir, 'kubeconfig'),
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: fake, cluster: { server: "${server}", insecure-skip-tls-verify: true } }]`,
      'users: [{ name: fake, user: { token: t } }]',
      'contexts: [{ name: fake, context: { cluster: fake, user: fake, namespace: shop } }]',
      'current-context: fake',
    ].join('\n'),
  );
  const service = (actuator: boolean) =>
    [
      '  worker:',
      '    kind: worker',
      '    max: 5',
      '    queues: [jobs]',
      '    scale:',
      '      policies: [{ kind: steps, metric: queue_depth, up: [{ above: 10, set: 3 }] }]',
      ...(actuator ? [`    actuator: { kind: kubernetes, kubeconfig: ${JSON.stringify(path.join(dir, 'kubeconfig'))}, namespace: shop }`] : []),
    ].join('\n');
  const head = `project: p\ndatabase: { url: ${JSON.stringify(schema.url)}, schema: ${schema.schema} }\nservices:\n`;
  await writeFile(path.join(dir, 'tide.yaml'), `${head}${service(true)}\n`);
  await writeFile(path.join(dir, 'no-actuator.yaml'), `${head}${service(false)}\n`);
});

after(async () => {
  await fake.close();
  await queue.close();
  await rm(dir, { recursive: true, force: true });
  await schema.drop();
});

const tide = (args: string[]) => runTide(args, { cwd: dir, env: { ...process.env, DATABASE_URL: '' }, timeout: 60_000 });

test('tide autoscale --once: dry run records and changes nothing; a real round scales; tide decisions --json lists both', async () => {
  fake.add('deployments', 'shop', 'worker', 1);
  await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: 'jobs', handler: 'sleep', payload: { ms: 1 } })));

  const dry = await tide(['autoscale', '-c', 'tide.yaml', '--once', '--dry-run', '--json']);
  assert.equal(dry.code, 0, dry.stderr);
  const dryRows = dry.stdout.trim().split('\n').map((l) => JSON.parse(l) as { service: string; current: number; desired: number; applied: boolean; dryRun: boolean });
  assert.deepEqual(dryRows.map((r) => [r.service, r.current, r.desired, r.applied, r.dryRun]), [['worker', 1, 3, false, true]]);
  assert.equal(fake.get('deployments', 'shop', 'worker')?.replicas, 1);

  const real = await tide(['autoscale', '-c', 'tide.yaml', '--once']);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /worker scales 1 -> 3/);
  assert.equal(fake.get('deployments', 'shop', 'worker')?.replicas, 3);

  const listed = await tide(['decisions', '-c', 'tide.yaml', '--json', '--service', 'worker']);
  assert.equal(listed.code, 0, listed.stderr);
  const rows = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { desired: number; applied: boolean; dryRun: boolean; metrics: Record<string, number>; reasons: unknown[] });
  assert.deepEqual(rows.map((r) => [r.desired, r.applied, r.dryRun]), [[3, true, false], [3, false, true]]);
  assert.equal(rows[0]!.metrics.queue_depth, 20);
  assert.ok(rows[0]!.reasons.length > 0);

  const table = await tide(['decisions', '-c', 'tide.yaml', '--limit', '1']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /SERVICE/);
  assert.match(table.stdout, /worker\s+1\s+3\s+\d+\s+scale-out/);
});

test('tide autoscale without an actuator outside tide up is a coded error naming the service', async () => {
  const r = await tide(['autoscale', '-c', 'no-actuator.yaml', '--once']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TIDE_CONTROLLER_NO_ACTUATOR/);
  assert.match(r.stderr, /services\.worker\.actuator/);
});
