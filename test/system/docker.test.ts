/**
 * Containers for real, on the machine's Docker engine (skipped, visibly, without one; .ci/run
 * starts one). The package is packed and installed into a project's image built from the
 * Dockerfile `tide init --docker` writes, on a base image made here (no registry is
 * reachable). Every container runs with host networking and talks only to loopback: the
 * run's PostgreSQL, in a schema of its own.
 *
 * - the image: runs as a non-root user, its HEALTHCHECK (`tide health`) turns healthy, and
 *   `docker stop` drains the job in flight (exit 0, the job completed);
 * - the Compose actuator against the real Compose here: scale up under a backlog, observe,
 *   scale in while jobs run (each job completes once), a container killed with `docker kill`
 *   has its job run again elsewhere;
 * - `tide autoscale` driving the Compose project from the SLO policy: containers added while
 *   the backlog is deep, removed once it is drained, every decision in the journal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parse } from 'yaml';

import { ComposeActuator, composeSchema } from '../../src/actuators/compose.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { why } from '../actuators/conformance.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';
import { TEST_LABEL, composeCommand, docker, dockerSkipReason, ensureBaseImage, ensureCaddyImage, ok, removeTestObjects, run, startRegistry } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const skip = dockerSkipReason();
if (skip) console.log(`note: ${skip}; the Docker tests skip`);

const project = `tidetest${randomBytes(3).toString('hex')}`;
const image = `${project}:latest`;
let dir: string;
let db: TestSchema;
let queue: PostgresQueue;
let madeBase = false;
let madeCaddy = false;

before(async () => {
  if (skip) return;
  db = await freshSchema('docker');
  queue = await createPostgresQueue({ connectionString: db.url, schema: db.schema });
  await queue.migrate();
  dir = await mkdtemp(path.join(tmpdir(), 'tide-docker-'));
  ok(await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: root }), 'npm pack');
  const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote no tarball');
  const registry = await startRegistry(path.join(dir, tarball));
  try {
    const app = path.join(dir, 'app');
    await mkdir(app);
    // the project as a user has it: tidescale a dependency, the recipe beside tide.yaml
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: project, version: '1.0.0', private: true, type: 'module', dependencies: { tidescale: registry.version } }, null, 2));
    await writeFile(path.join(app, '.npmrc'), `registry=${registry.url}/\n`);
    ok(await run(process.execPath, [path.join(root, 'bin', 'tide.js'), 'init', '--project', project], { cwd: app }), 'tide init');
    ok(await run(process.execPath, [path.join(root, 'bin', 'tide.js'), 'init', '--docker'], { cwd: app }), 'tide init --docker');
    // what an interrupted run left behind (its after() never ran)
    await removeTestObjects();
    madeBase = await ensureBaseImage();
    // the classic builder (no BuildKit here); RUN steps reach the registry through the host's network
    const build = await run('docker', ['build', '--network', 'host', '-t', image, app], { env: { ...process.env, DOCKER_BUILDKIT: '0' }, timeout: 600_000 });
    ok(await build, 'docker build');
  } finally {
    await registry.close();
  }
});

after(async () => {
  if (skip) return;
  // the containers first (they hold connections to the schema), each step whatever the last did
  const steps = [
    () => removeTestObjects([image, ...(madeBase ? ['node:22-slim'] : []), ...(madeCaddy ? ['caddy:2-alpine'] : [])]),
    async () => queue?.close(),
    async () => db?.drop(),
    async () => dir && rm(dir, { recursive: true, force: true }),
  ];
  const failed: unknown[] = [];
  for (const step of steps) await step().catch((err: unknown) => failed.push(err));
  if (failed.length > 0) throw new AggregateError(failed, 'clean-up failed');
});

const env = () => ['-e', `DATABASE_URL=${db.url}`, '-e', `TIDE_SCHEMA=${db.schema}`];

async function inspect(container: string, format: string): Promise<string> {
  return (ok(await docker(['inspect', '-f', format, container]), 'docker inspect')).stdout.trim();
}

/** Polls `check` until it holds or the deadline passes (the engine has no event for these). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function states(ids: string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => (await queue.getJob(id))!.state));
}

test('docker: the recipe image runs tide as a non-root user, turns healthy, and drains on docker stop', { skip }, async () => {
  const metrics = await freePort();
  const name = `${project}-image`;
  ok(await docker(['run', '-d', '--name', name, '--network', 'host', '--label', TEST_LABEL, ...env(), '-e', `TIDE_METRICS_PORT=${metrics}`, '--health-interval', '1s', '--health-start-period', '1s', image, 'worker', '--concurrency', '2', '--grace', '20']),
    'docker run',
  );
  assert.equal(await inspect(name, '{{.Config.User}}'), 'node');
  assert.equal((ok(await docker(['exec', name, 'node', '-e', 'process.stdout.write(String(process.getuid()))']), 'docker exec')).stdout, '1000');
  await until('the container to turn healthy', async () => (await inspect(name, '{{.State.Health.Status}}')) === 'healthy');
  // healthy because the worker answered its /health, not for want of a port to ask
  assert.match(await inspect(name, '{{json .State.Health.Log}}'), new RegExp(`ok: http://127.0.0.1:${metrics}/health answered 200`));
  const { id } = await queue.enqueue({ queue: 'default', handler: 'sleep', payload: { ms: 2000 } });
  await until('the job to start', async () => (await queue.getJob(id))!.state === 'active');
  ok(await docker(['stop', '-t', '30', name], 60_000), 'docker stop');
  // exit 0: it drained and left on its own (a SIGKILL after the stop timeout is 137)
  assert.equal(await inspect(name, '{{.State.ExitCode}}'), '0');
  assert.equal((await queue.getJob(id))!.state, 'completed');
});

/** A Compose project of one worker service on the image, on the host's network. */
async function composeProject(name: string): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  const service = {
    image,
    network_mode: 'host',
    // host networking: replicas would share one metrics port, so none; tide health says so
    environment: { DATABASE_URL: db.url, TIDE_SCHEMA: db.schema, TIDE_METRICS_PORT: '0' },
    command: ['worker', '--concurrency', '2', '--grace', '20', '--lease', '2'],
    stop_grace_period: '30s',
    // the image's check (tide health), asked every second rather than every 10 s
    healthcheck: { interval: '1s', timeout: '5s', start_period: '2s' },
    labels: { [TEST_LABEL]: 'compose' },
  };
  await writeFile(file, JSON.stringify({ version: '2.4', services: { worker: service } }, null, 2));
  return file;
}

async function composeDown(name: string, file: string): Promise<void> {
  const { file: program, prefix } = composeCommand();
  await run(program, [...prefix, '-p', name, '-f', file, 'down', '-t', '30'], { timeout: 120_000 });
}

test('docker: the Compose actuator on the real engine scales workers under load; scale-in and docker kill lose nothing', { skip }, async () => {
  const name = `${project}c`;
  const file = await composeProject(name);
  const actuator = new ComposeActuator(composeSchema.parse({ project: name, file }));
  const enqueue = async (n: number, ms: number) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await queue.enqueue({ queue: 'default', handler: 'sleep', payload: { ms } })).id);
    return ids;
  };
  const active = async (ids: string[]) => (await states(ids)).filter((s) => s === 'active').length;
  try {
    assert.deepEqual(await actuator.observe('worker'), { desired: 0, ready: 0 });
    await actuator.scale('worker', 3, why(3));
    await until('three containers healthy', async () => (await actuator.observe('worker')).ready === 3);
    assert.deepEqual(await actuator.observe('worker'), { desired: 3, ready: 3 });
    // scale in while every slot is busy: the two stopped containers drain (SIGTERM, within
    // stop_grace_period): their jobs finish, none is left locked
    const first = await enqueue(12, 4000);
    await until('six jobs in flight', async () => (await active(first)) === 6);
    await actuator.scale('worker', 1, why(1));
    assert.deepEqual(await actuator.observe('worker'), { desired: 1, ready: 1 });
    // a container killed outright: its jobs wait out their lease and run again on the next one
    const second = await enqueue(4, 4000);
    const all = [...first, ...second];
    const [survivor] = (ok(await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${name}`]), 'docker ps')).stdout.split(/\s+/).filter(Boolean);
    await until('the last container busy', async () => (await active(all)) === 2);
    ok(await docker(['kill', survivor!]), 'docker kill');
    // read at once (the lease is 2 s, no other container runs): the jobs the kill cut short
    const cut = (await Promise.all(all.map(async (id) => [id, (await queue.getJob(id))!.state] as const))).filter(([, state]) => state === 'active').map(([id]) => id);
    assert.equal(cut.length, 2);
    // a fresh actuator (nothing applied): the killed container is listed, and not ready
    const fresh = new ComposeActuator(composeSchema.parse({ project: name, file }));
    await until('the killed container listed as not ready', async () => (await fresh.observe('worker')).ready === 0);
    assert.deepEqual(await fresh.observe('worker'), { desired: 1, ready: 0 });
    await actuator.scale('worker', 2, why(2));
    await until('every job completed', async () => (await states(all)).every((s) => s === 'completed'), 120_000);
    // exactly the killed container's jobs ran twice; the scale-in drained its jobs (a SIGKILL
    // there would have cut them short too)
    for (const id of all) assert.equal((await queue.getJob(id))!.attempts, cut.includes(id) ? 2 : 1, `job ${id}`);
  } finally {
    await composeDown(name, file);
  }
});

test('docker: tide autoscale drives the Compose project from the SLO policy, out under a backlog and back in', { skip }, async (t) => {
  const name = `${project}a`;
  const file = await composeProject(name);
  const config = path.join(dir, `${name}.tide.yaml`);
  await writeFile(
    config,
    [
      `project: ${name}`,
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      'autoscale: { interval_seconds: 1 }',
      'services:',
      '  worker:',
      '    kind: worker',
      '    concurrency: 2',
      '    min: 1',
      '    max: 3',
      `    actuator: { kind: compose, project: ${name}, file: "${file}" }`,
      '    scale:',
      // a 20 s reversal window (default 300 s) so the scale-in comes within the test's time
      '      policies: [{ kind: slo, waitSeconds: 2, attainment: 0.95, concurrency: 2, startupSeconds: 5, reversalSeconds: 20 }]',
      '      behavior: { scaleDown: { stabilizationWindowSeconds: 5 } }',
      '',
    ].join('\n'),
  );
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) ids.push((await queue.enqueue({ queue: 'default', handler: 'sleep', payload: { ms: 1000 } })).id);
  const autoscaler = spawn(process.execPath, [path.join(root, 'bin', 'tide.js'), 'autoscale', '-c', config, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: autoscaler.stdout }).on('line', (line) => lines.push(line));
  let stderr = '';
  autoscaler.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const actuator = new ComposeActuator(composeSchema.parse({ project: name, file }));
  try {
    let most = 0;
    await until(
      'containers added for the backlog',
      async () => {
        most = Math.max(most, (await actuator.observe('worker')).ready);
        return most >= 2;
      },
      90_000,
    );
    await until('every job completed', async () => (await states(ids)).every((s) => s === 'completed'), 120_000);
    await until('the containers removed once the backlog is drained', async () => (await actuator.observe('worker')).desired === 1, 120_000);
    const decisions = lines.map((l) => JSON.parse(l) as { desired: number; current: number; at: string });
    assert.ok(decisions.some((d) => d.desired >= 2), `a decision to scale out: ${lines.join('\n')}`);
    assert.ok(decisions.some((d) => d.desired === 1 && d.current > 1), `a decision to scale in: ${lines.join('\n')}`);
    // the figure docs/platforms/compose.md quotes: from the first scale-out decision to the first job started
    const out = decisions.find((d) => d.desired > d.current)!;
    const started = await Promise.all(ids.map(async (id) => (await queue.getJob(id))!.startedAt!));
    t.diagnostic(`scale-out: decision to first job in a new container ${((Math.min(...started) - Date.parse(out.at)) / 1000).toFixed(1)} s; jobs ${ids.length}, completed ${ids.length}`);
  } catch (err) {
    throw new Error(`${String(err)}\nautoscaler stderr:\n${stderr}`);
  } finally {
    if (autoscaler.exitCode === null && autoscaler.signalCode === null) {
      const exited = new Promise((r) => autoscaler.once('exit', r));
      autoscaler.kill('SIGTERM');
      const timer = setTimeout(() => autoscaler.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    await composeDown(name, file);
  }
  // the journal holds them: the scale-out and the scale-in, with their reasons
  const journal = (ok(await run(process.execPath, [path.join(root, 'bin', 'tide.js'), 'decisions', '-c', config, '--limit', '1000', '--json']), 'tide decisions')).stdout;
  const recorded = journal.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { desired: number; reasons: unknown[] });
  assert.ok(recorded.some((d) => d.desired >= 2) && recorded.some((d) => d.desired === 1), journal);
  assert.ok(recorded.every((d) => d.reasons.length > 0));
});

test('docker: tide export compose comes up on the real engine (host networking overridden in), healthy, takes a job through its proxy, and scales', { skip: skip ?? (existsSync('/usr/bin/caddy') ? false : 'caddy is not installed (the proxy image is made from it)') }, async () => {
  const name = `${project}x`;
  const apiPort = await freePort();
  const proxyPort = await freePort();
  const config = path.join(dir, `${name}.tide.yaml`);
  await writeFile(
    config,
    [
      `project: ${name}`,
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      `balancer: { port: ${proxyPort} }`,
      'services:',
      `  api: { kind: api, port: ${apiPort} }`,
      '  worker: { kind: worker, concurrency: 2, stop_grace_seconds: 10 }',
      '',
    ].join('\n'),
  );
  const exported = path.join(dir, `${name}.compose.yaml`);
  ok(await run(process.execPath, [path.join(root, 'bin', 'tide.js'), 'export', 'compose', '-c', config, '--image', image, '-o', exported]), 'tide export compose');
  const file = parse(await readFile(exported, 'utf8')) as { services: Record<string, { command: string[]; healthcheck?: unknown }> };
  assert.ok(file.services.api && file.services.worker && file.services.proxy, Object.keys(file.services).join(', '));
  // The override for this machine's rule (host networking, loopback only): every service on the
  // host's network, the proxy sent to the API's loopback address instead of Docker's DNS, and the
  // workers' metrics port off (replicas on one network would share it; their check is then
  // `tide health` on the process).
  const worker = file.services.worker.command.map((a, i, all) => (all[i - 1] === '--metrics-port' ? '0' : a));
  const proxy = file.services.proxy.command.map((a) => (a === `api:${apiPort}` ? `127.0.0.1:${apiPort}` : a));
  const override = {
    services: {
      api: { network_mode: 'host', labels: { [TEST_LABEL]: 'export' } },
      worker: { network_mode: 'host', command: worker, healthcheck: { test: ['CMD', 'node', 'node_modules/tidescale/bin/tide.js', 'health'] }, labels: { [TEST_LABEL]: 'export' } },
      proxy: { network_mode: 'host', command: proxy, labels: { [TEST_LABEL]: 'export' } },
    },
  };
  const overrideFile = path.join(dir, `${name}.override.yaml`);
  await writeFile(overrideFile, JSON.stringify(override, null, 2));
  // the exported file's `networks:` and `ports:` do not apply on the host's network: drop them
  const bare = parse(await readFile(exported, 'utf8')) as { services: Record<string, Record<string, unknown>>; networks?: unknown };
  delete bare.networks;
  for (const service of Object.values(bare.services)) {
    delete service.networks;
    delete service.ports;
  }
  const base = path.join(dir, `${name}.base.yaml`);
  await writeFile(base, JSON.stringify(bare, null, 2));
  madeCaddy = await ensureCaddyImage();
  const { file: program, prefix } = composeCommand();
  const compose = (args: string[]) => run(program, [...prefix, '-p', name, '-f', base, '-f', overrideFile, ...args], { timeout: 180_000, env: { ...process.env, DATABASE_URL: db.url } });
  // the actuator as a user configures it for a project file and its override
  const actuator = new ComposeActuator(composeSchema.parse({ project: name, file: [base, overrideFile] }));
  try {
    ok(await compose(['up', '-d']), 'docker-compose up');
    const idsOf = async (service: string) => (ok(await compose(['ps', '-q', service]), 'ps')).stdout.split(/\s+/).filter(Boolean);
    await until('the API and the worker healthy', async () => {
      const ids = [...(await idsOf('api')), ...(await idsOf('worker'))];
      const states = await Promise.all(ids.map((id) => inspect(id, '{{if .State.Health}}{{.State.Health.Status}}{{end}}')));
      return ids.length === 2 && states.every((s) => s === 'healthy');
    }, 120_000);
    // a job through the proxy, to the API, on to a worker
    const res = await fetch(`http://127.0.0.1:${proxyPort}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ queue: 'default', handler: 'sleep', payload: { ms: 10 } }) });
    assert.equal(res.status, 202, await res.clone().text());
    const { id } = (await res.json()) as { id: string };
    await until('the job completed', async () => (await queue.getJob(id))?.state === 'completed');
    // the actuator scales the exported worker service
    await actuator.scale('worker', 3, why(3));
    await until('three workers ready', async () => (await actuator.observe('worker')).ready === 3, 120_000);
    await actuator.scale('worker', 1, why(1));
    assert.deepEqual(await actuator.observe('worker'), { desired: 1, ready: 1 });
  } finally {
    await compose(['down', '-t', '20']);
  }
});
