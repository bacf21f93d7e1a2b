/**
 * `tide init --docker`: the Dockerfile and .dockerignore of the project's image, named
 * <project>:latest, which the Kubernetes and Compose exports reference by default. (No image
 * is built here: that needs a Docker daemon and the registry's node image.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { parseAllDocuments } from 'yaml';

import { runTide } from './helpers/tide.js';

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
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { bin: { tide: string } };
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
