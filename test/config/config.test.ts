import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { loadConfig, parseConfig } from '../../src/config/load.js';
import { starterConfig } from '../../src/config/starter.js';
import { type TideError, isTideError } from '../../src/errors.js';

const env = { DB_URL: 'postgres://u:secret@db.example:5432/app', TOKEN: 'a-long-enough-control-token' };

/** The TideError parseConfig throws for `text`. */
function failure(text: string): TideError {
  try {
    parseConfig(text, 'tide.yaml', env);
  } catch (err) {
    assert.ok(isTideError(err), `expected a TideError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the config to be rejected');
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tide-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tide = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));

/** Run the real `tide` command in a child process (the test runner owns this process's stdout). */
function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [tide, ...argv], { cwd: dir, timeout: 30_000 }, (error, out, err) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: typeof error?.code === 'number' ? error.code : 0, out, err });
    });
  });
}

test('a minimal file gets every default', () => {
  const config = parseConfig('project: demo\nservices:\n  api:\n    kind: api\n', 'tide.yaml', env);
  assert.equal(config.stateDir, '.tide');
  assert.deepEqual(config.database, { schema: 'tide', pooler: 'auto' });
  assert.deepEqual(config.balancer, { host: '0.0.0.0', port: 8080, retries: 2, healthCheck: { intervalMs: 2000, timeoutMs: 1000, fails: 2, passes: 1 }, trustedProxies: [], forwardedHeader: 'x-forwarded-for' });
  assert.deepEqual(config.control, { host: '127.0.0.1', port: 8079 });
  assert.deepEqual(config.services.api, { name: 'api', kind: 'api', min: 1, replicas: 1, max: 1, env: {}, healthPath: '/health', stopGraceSeconds: 30, poolSize: 10 });
});

test('a full file is normalised, with ${ENV} interpolated', () => {
  const config = parseConfig(
    `project: shop
database:
  url: \${DB_URL}
  schema: shop_tide
balancer:
  port: 9000
  rate_limit: { requests_per_second: 20 }
control:
  host: 0.0.0.0
  token: \${TOKEN}
services:
  worker:
    kind: worker
    replicas: 0
    max: 12
    queues: [emails, "\${QUEUE:-thumbs}"]
    env: { LOG_LEVEL: debug, RETRIES: 3 }
  legacy:
    kind: command
    command: node legacy.js --price $$5
`,
    'tide.yaml',
    env,
  );
  assert.deepEqual(config.database, { url: env.DB_URL, schema: 'shop_tide', pooler: 'auto' });
  assert.deepEqual(config.balancer.rateLimit, { ratePerSecond: 20, burst: 20 });
  assert.equal(config.control.token, env.TOKEN);
  assert.deepEqual(config.services.worker, {
    name: 'worker', kind: 'worker', min: 0, replicas: 0, max: 12, concurrency: 10, poolSize: 4, queues: ['emails', 'thumbs'],
    env: { LOG_LEVEL: 'debug', RETRIES: '3' }, healthPath: '/health', stopGraceSeconds: 30,
  });
  assert.equal(config.services.legacy?.command, 'node legacy.js --price $5');
});

test('services can share settings through YAML anchors and merge keys', () => {
  const config = parseConfig(
    'project: demo\nservices:\n  a: &worker\n    kind: worker\n    max: 5\n    env: { MODE: batch }\n  b:\n    <<: *worker\n    max: 7\n',
    'tide.yaml',
    env,
  );
  assert.equal(config.services.b?.kind, 'worker');
  assert.equal(config.services.b?.max, 7);
  assert.deepEqual(config.services.b?.env, { MODE: 'batch' });
});

test('an unknown key names its field and line, with a suggestion', () => {
  const err = failure('project: demo\nservices:\n  api:\n    kind: api\n    replica: 2\n');
  assert.equal(err.code, 'TIDE_CONFIG_INVALID');
  assert.deepEqual(err.where, { file: 'tide.yaml', field: 'services.api.replica', line: 5, column: 5 });
  assert.match(err.message, /unknown key "replica"; did you mean "replicas"\?/);

  const top = failure('project: demo\nstatedir: x\nservices: {}\n');
  assert.equal(top.where?.line, 2);
  assert.match(top.message, /did you mean "state_dir"/);
});

test('a wrong type names its field and line', () => {
  const err = failure('project: demo\nbalancer:\n  port: eighty\nservices: {}\n');
  assert.equal(err.code, 'TIDE_CONFIG_INVALID');
  assert.deepEqual(err.where, { file: 'tide.yaml', field: 'balancer.port', line: 3, column: 9 });
  assert.match(err.message, /expected number/);
});

test('a missing required field points at its parent', () => {
  const err = failure('project: demo\nservices:\n  web:\n    replicas: 1\n');
  assert.equal(err.where?.field, 'services.web.kind');
  assert.equal(err.where?.line, 3);
  assert.match(err.message, /is required/);
});

test('min above max, replicas out of range, clashing ports and kind-only fields are rejected', () => {
  const minMax = failure('project: demo\nservices:\n  api:\n    kind: api\n    min: 5\n    max: 2\n');
  assert.equal(minMax.where?.field, 'services.api.max');
  assert.equal(minMax.where?.line, 6);
  assert.match(minMax.message, /min \(5\) is above max \(2\)/);

  const replicas = failure('project: demo\nservices:\n  api:\n    kind: api\n    replicas: 9\n    max: 3\n');
  assert.equal(replicas.where?.field, 'services.api.replicas');

  const ports = failure('project: demo\nservices:\n  api:\n    kind: api\n    port: 3000\n    max: 4\n  admin:\n    kind: api\n    port: 3002\n');
  assert.equal(ports.where?.field, 'services.admin.port');
  assert.equal(ports.where?.line, 9);
  assert.match(ports.message, /overlaps services\.api\.port \(3000-3003\)/);

  const balancer = failure('project: demo\nbalancer:\n  port: 3000\nservices:\n  api:\n    kind: api\n    port: 3000\n');
  assert.equal(balancer.where?.field, 'services.api.port');

  const concurrency = failure('project: demo\nservices:\n  api:\n    kind: api\n    concurrency: 4\n');
  assert.equal(concurrency.where?.field, 'services.api.concurrency');

  const command = failure('project: demo\nservices:\n  legacy:\n    kind: command\n');
  assert.equal(command.where?.field, 'services.legacy.kind');
});

test('the control API off loopback needs a token', () => {
  const err = failure('project: demo\ncontrol:\n  host: 0.0.0.0\nservices: {}\n');
  assert.equal(err.where?.field, 'control.token');
  assert.equal(err.where?.line, 2);
});

test('several problems are all reported, the first in the file first', () => {
  const err = failure('project: demo\nbalancer:\n  prot: 1\nservices:\n  api:\n    kind: nope\n');
  assert.equal(err.where?.line, 3);
  assert.match(err.message, /and 1 more problem/);
  const issues = (err.details as { issues: Array<{ field: string; line: number }> }).issues;
  assert.deepEqual(issues.map((i) => [i.field, i.line]), [['balancer.prot', 3], ['services.api.kind', 6]]);
});

test('an unset ${ENV} without a default is an error naming the variable and line', () => {
  const err = failure('project: demo\ndatabase:\n  url: ${NOT_SET_ANYWHERE}\nservices: {}\n');
  assert.equal(err.code, 'TIDE_CONFIG_ENV');
  assert.equal(err.where?.line, 3);
  assert.equal(err.where?.field, 'database.url');
  assert.match(err.message, /NOT_SET_ANYWHERE/);
});

test('bad YAML syntax names its line', () => {
  const err = failure('project: demo\nservices:\n  api:\n    kind: api\n    min: 1: 2\n');
  assert.equal(err.code, 'TIDE_CONFIG_YAML');
  assert.equal(err.where?.line, 5);

  const alias = failure('project: demo\nservices:\n  api:\n    kind: api\n    max: *nope\n');
  assert.equal(alias.code, 'TIDE_CONFIG_YAML');
  assert.equal(alias.where?.line, 5);

  const dup = failure('project: demo\nproject: again\nservices: {}\n');
  assert.equal(dup.code, 'TIDE_CONFIG_YAML');
  assert.equal(dup.where?.line, 2);
});

test('an empty file says what is required', () => {
  const err = failure('');
  assert.equal(err.code, 'TIDE_CONFIG_INVALID');
  assert.equal(err.where?.field, 'project');
});

test('loadConfig reads the file, and a missing one is TIDE_CONFIG_NOT_FOUND', async () => {
  const file = path.join(dir, 'load.yaml');
  await writeFile(file, 'project: demo\nservices: {}\n');
  assert.equal((await loadConfig(file, env)).project, 'demo');
  await assert.rejects(loadConfig(path.join(dir, 'absent.yaml'), env), (err: unknown) => isTideError(err) && err.code === 'TIDE_CONFIG_NOT_FOUND');
});

test('the starter config validates', () => {
  const config = parseConfig(starterConfig('demo'), 'tide.yaml', {});
  assert.deepEqual(Object.keys(config.services).sort(), ['api', 'worker']);
  assert.equal(config.services.worker?.scale?.policies[0]?.kind, 'slo');
});

test('a scale block is checked by the decision core, with the service bounds and concurrency filled in', () => {
  const config = parseConfig(
    'project: demo\nservices:\n  worker:\n    kind: worker\n    min: 2\n    max: 9\n    concurrency: 4\n    scale:\n      policies:\n        - kind: slo\n          waitSeconds: 10\n          attainment: 0.9\n',
    'tide.yaml',
    env,
  );
  assert.equal(config.services.worker?.scale?.min, 2);
  assert.equal(config.services.worker?.scale?.max, 9);
  assert.deepEqual(config.services.worker?.scale?.policies, [{ kind: 'slo', waitSeconds: 10, attainment: 0.9, concurrency: 4 }]);

  const bad = failure('project: demo\nservices:\n  worker:\n    kind: worker\n    scale:\n      policies:\n        - kind: slo\n          waitSeconds: -1\n          attainment: 0.9\n');
  assert.equal(bad.code, 'TIDE_CONFIG_INVALID');
  assert.equal(bad.where?.field, 'services.worker.scale.policies[0].waitSeconds');
  assert.equal(bad.where?.line, 8);

  const unknown = failure('project: demo\nservices:\n  worker:\n    kind: worker\n    scale:\n      behaviour: {}\n');
  assert.equal(unknown.where?.field, 'services.worker.scale.behaviour');
  assert.equal(unknown.where?.line, 6);
  assert.match(unknown.message, /did you mean "behavior"/);

  const bounds = failure('project: demo\nservices:\n  worker:\n    kind: worker\n    max: 4\n    scale:\n      max: 5\n');
  assert.equal(bounds.where?.field, 'services.worker.scale.max');
  assert.equal(bounds.where?.line, 7);
});

test('tide init writes a valid file and refuses to overwrite it without --force', async () => {
  const file = path.join(dir, 'init', 'tide.yaml');
  await rm(path.dirname(file), { recursive: true, force: true });
  await mkdir(path.dirname(file));
  assert.equal((await cli(['init', '--file', file])).code, 0);
  const config = await loadConfig(file, {});
  assert.equal(config.project, 'init');

  await writeFile(file, '# mine\n');
  const refused = await cli(['init', '--file', file]);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /TIDE_CONFIG_EXISTS/);
  assert.equal(await readFile(file, 'utf8'), '# mine\n');
  assert.equal((await cli(['init', '--file', file, '--force', '--project', 'other'])).code, 0);
  assert.equal((await loadConfig(file, {})).project, 'other');
});

test('tide schema prints a JSON Schema with the services property', async () => {
  const { code, out } = await cli(['schema']);
  assert.equal(code, 0);
  const schema = JSON.parse(out) as { type: string; properties: Record<string, { additionalProperties?: { properties?: Record<string, unknown> } }>; required: string[] };
  assert.equal(schema.type, 'object');
  assert.ok(schema.properties.services);
  assert.ok(schema.properties.services.additionalProperties?.properties?.kind);
  assert.ok(schema.properties.services.additionalProperties?.properties?.scale);
  assert.deepEqual(schema.required, ['project', 'services']);
});

test('balancer.trusted_proxies takes addresses and CIDRs, and names the entry that is neither', () => {
  const ok = parseConfig('project: p\nbalancer:\n  trusted_proxies: [172.18.0.2, 10.0.0.0/8, "fd00::/8"]\n  forwarded_header: forwarded\nservices: {}\n', 'tide.yaml', {});
  assert.deepEqual(ok.balancer.trustedProxies, ['172.18.0.2', '10.0.0.0/8', 'fd00::/8']);
  assert.equal(ok.balancer.forwardedHeader, 'forwarded');
  assert.throws(
    () => parseConfig('project: p\nbalancer:\n  trusted_proxies: [10.0.0.0/8, proxy.local]\nservices: {}\n', 'tide.yaml', {}),
    (err: unknown) => isTideError(err) && err.message.includes('balancer.trusted_proxies[1]') && err.message.includes('proxy.local'),
  );
});
