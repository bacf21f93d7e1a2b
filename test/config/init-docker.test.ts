/**
 * `tide init --docker`: the Dockerfile and .dockerignore of the project's image, named
 * <project>:latest, which the Kubernetes and Compose exports reference by default, and the
 * port `tide health` (its HEALTHCHECK) asks. The image is built and run in docker.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { parseAllDocuments } from 'yaml';

import { healthPort } from '../../src/cli/commands/health.js';
import { runTide } from '../helpers/tide.js';

test('tide init --docker writes the image recipe the exports then reference; refuses to overwrite without --force', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-init-docker-'));
  const tide = (...args: string[]) => runTide(args, { cwd: dir, timeout: 30_000 });
  try {
    assert.equal((await tide('init', '--project', 'Shop.App')).code, 0);
    const made = await tide('init', '--docker', '--json');
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(JSON.parse(made.stdout), { files: ['Dockerfile', '.dockerignore'], image: 'shop.app:latest' });

    const dockerfile = await readFile(path.join(dir, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM node:2\d/m);
    assert.match(dockerfile, /docker build -t shop\.app:latest \./);
    // the entrypoint is the installed package's own bin (the path package.json declares)
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { bin: { tide: string } };
    assert.match(dockerfile, new RegExp(`^ENTRYPOINT \\["node", "node_modules/tidescale/${pkg.bin.tide.replace('.', '\\.')}"\\]$`, 'm'));
    assert.match(dockerfile, /^USER node$/m);
    const ignore = (await readFile(path.join(dir, '.dockerignore'), 'utf8')).split('\n');
    for (const entry of ['node_modules', '.tide', '.git']) assert.ok(ignore.includes(entry), entry);

    const again = await tide('init', '--docker');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /TIDE_CONFIG_EXISTS/);
    assert.equal((await tide('init', '--docker', '--force', '--project', 'other')).code, 0);
    assert.match(await readFile(path.join(dir, 'Dockerfile'), 'utf8'), /docker build -t other:latest/);

    // the exports' default image is the one the recipe builds (the project in tide.yaml)
    const k8s = await tide('export', 'kubernetes');
    assert.equal(k8s.code, 0, k8s.stderr);
    const images = parseAllDocuments(k8s.stdout)
      .map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: Array<{ image: string }> } } } })
      .filter((d) => d.kind === 'Deployment')
      .flatMap((d) => d.spec?.template?.spec?.containers?.map((c) => c.image) ?? []);
    assert.ok(images.length > 0);
    assert.ok(images.every((i) => i === 'shop.app:latest'), images.join(', '));
    const compose = await tide('export', 'compose', '--json');
    assert.equal(compose.code, 0, compose.stderr);
    const services = (JSON.parse(compose.stdout) as { services: Record<string, { image: string }> }).services;
    assert.equal(services.worker?.image, 'shop.app:latest');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('tide health finds the port from the main process: the API its --port, PORT or 3000, the worker its metrics port', () => {
  const tide = ['node', 'node_modules/tidescale/bin/tide.js'];
  assert.deepEqual(healthPort([...tide, 'api', '--host', '0.0.0.0', '--port', '8000'], { PORT: '9' }), { port: 8000 });
  assert.deepEqual(healthPort([...tide, 'api', '--port=8001'], {}), { port: 8001 });
  assert.deepEqual(healthPort([...tide, 'api', '--port', '1', '--port', '8002'], {}), { port: 8002 });
  assert.deepEqual(healthPort([...tide, 'api'], { PORT: '4000' }), { port: 4000 });
  assert.deepEqual(healthPort([...tide, 'api'], {}), { port: 3000 });
  assert.deepEqual(healthPort([...tide, 'worker', '--metrics-port', '9091'], { TIDE_METRICS_PORT: '1' }), { port: 9091 });
  assert.deepEqual(healthPort([...tide, 'worker'], { TIDE_METRICS_PORT: '9191' }), { port: 9191 });
  assert.ok('none' in healthPort([...tide, 'worker'], { TIDE_METRICS_PORT: '0' }), 'a worker without a metrics port has nothing to ask');
  assert.ok('none' in healthPort([...tide, 'worker'], {}));
  assert.ok('none' in healthPort(['nginx', '-g', 'daemon off;'], {}));
  assert.throws(() => healthPort([...tide, 'api', '--port', 'x'], {}), (err: Error & { code?: string }) => err.code === 'TIDE_USAGE');
});

test('tide health exits 0 on a 2xx /health and 1 when nothing answers', { timeout: 60_000 }, async () => {
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/health' ? 200 : 503;
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const good = await runTide(['health', '--port', String(port)], { cwd: tmpdir(), timeout: 30_000 });
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^ok: .* answered 200/);
    const bad = await runTide(['health', '--port', String(port), '--path', '/other'], { cwd: tmpdir(), timeout: 30_000 });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^unhealthy: .* answered 503/);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const closed = await runTide(['health', '--port', String(port), '--timeout', '1'], { cwd: tmpdir(), timeout: 30_000 });
  assert.equal(closed.code, 1);
  assert.match(closed.stdout, /^unhealthy: /);
  // a usage error is 1 as well: Docker reserves 2 in a health check
  const usage = await runTide(['health', '--port', 'x'], { cwd: tmpdir(), timeout: 30_000 });
  assert.equal(usage.code, 1, usage.stdout + usage.stderr);
});
