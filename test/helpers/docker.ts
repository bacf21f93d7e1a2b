/**
 * A real Docker engine for the tests: whether one answers (else a visible skip), a base image
 * made on this machine (no registry is reachable: `docker import` of a root filesystem holding
 * this machine's own node, npm and the libraries `ldd` lists, tagged with the name the
 * Dockerfile recipe starts FROM), a loopback npm registry that serves the packed tidescale and
 * sends every other package to the public registry, and clean-up by label. Every container
 * runs with host networking and talks only to loopback.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ok, run } from './run.js';

export { ok, run };

/** Every image and container the tests make carries this label, so clean-up finds them. */
export const TEST_LABEL = 'tidescale.test';

export const docker = (args: string[], timeout = 120_000) => run('docker', args, { timeout });

/** Why the Docker tests cannot run here, or undefined when an engine and a Compose answer. */
export function dockerSkipReason(): string | undefined {
  const works = (file: string, args: string[]) => {
    try {
      execFileSync(file, args, { stdio: 'ignore', timeout: 15_000 });
      return true;
    } catch {
      return false;
    }
  };
  if (!works('docker', ['info', '--format', '{{.ServerVersion}}'])) {
    return 'no Docker engine answers (`docker info`): start dockerd (.ci/run does) to run the Docker tests';
  }
  if (!works('docker', ['compose', 'version']) && !works('docker-compose', ['version'])) {
    return 'neither `docker compose` nor `docker-compose` is installed';
  }
  return undefined;
}

/** The Compose command line here, as the actuator finds it. */
export function composeCommand(): { file: string; prefix: string[] } {
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore', timeout: 15_000 });
    return { file: 'docker', prefix: ['compose'] };
  } catch {
    return { file: 'docker-compose', prefix: [] };
  }
}

/** What a made image holds besides the binaries and their libraries. */
interface RootfsPlan {
  /** Executables copied to the same path, with every library `ldd` lists for them. */
  binaries: string[];
  /** More set-up in the root filesystem before it is imported. */
  extra?: (root: string) => Promise<void>;
  /** `docker import --change` lines (ENV, ...). */
  changes?: string[];
}

/**
 * Imports an image made of this machine's own files, unless the engine has `tag` already.
 * Resolves with whether it was made (and so is to be removed afterwards).
 */
async function importImage(tag: string, plan: RootfsPlan): Promise<boolean> {
  if ((await docker(['image', 'inspect', tag])).code === 0) return false;
  const root = await mkdtemp(path.join(tmpdir(), 'tide-rootfs-'));
  try {
    const libs = new Set<string>();
    for (const bin of plan.binaries) {
      const out = execFileSync('ldd', [bin], { encoding: 'utf8' });
      for (const m of out.matchAll(/(\/\S+\.so[.\d]*)/g)) libs.add(m[1]!);
    }
    for (const file of [...libs, ...plan.binaries]) {
      await mkdir(path.join(root, path.dirname(file)), { recursive: true });
      await copyFile(file, path.join(root, file)); // copyFile follows links: the file itself
    }
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n');
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
    await mkdir(path.join(root, 'home/node'), { recursive: true });
    await mkdir(path.join(root, 'root'), { recursive: true });
    await mkdir(path.join(root, 'tmp'), { recursive: true });
    await plan.extra?.(root);
    execFileSync('chown', ['1000:1000', path.join(root, 'home/node')]);
    execFileSync('chmod', ['1777', path.join(root, 'tmp')]);
    execFileSync('chmod', ['755', root]); // mkdtemp's 700 would become the image's / and lock out every user but root
    const changes = ['ENV PATH=/usr/local/bin:/usr/bin:/bin', ...(plan.changes ?? []), `LABEL ${TEST_LABEL}=base`].flatMap((c) => ['--change', c]);
    const imported = await run('sh', ['-c', 'dir="$1"; shift; tar -C "$dir" -c . | docker import "$@"', 'sh', root, ...changes, '-', tag]);
    ok(await imported, `docker import of ${tag}`);
    return true;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The image the Dockerfile recipe starts FROM: this machine's node and npm, and a shell. */
export function ensureBaseImage(tag = 'node:22-slim'): Promise<boolean> {
  const node = process.execPath;
  // this machine's certificate authorities, as it trusts them (a proxy's own CA included), for
  // the registry's HTTPS
  const cas = '/etc/ssl/certs/ca-certificates.crt';
  const trust = existsSync(cas);
  return importImage(tag, {
    binaries: [node, '/bin/sh'],
    changes: trust ? [`ENV NODE_EXTRA_CA_CERTS=${cas}`] : [],
    async extra(root) {
      if (node !== '/usr/bin/node') {
        await mkdir(path.join(root, 'usr/bin'), { recursive: true });
        await copyFile(node, path.join(root, 'usr/bin/node'));
      }
      // npm, beside this node; its launcher as a shell script (no /usr/bin/env in the image)
      const npmDir = path.join(path.dirname(path.dirname(node)), 'lib', 'node_modules', 'npm');
      await cp(npmDir, path.join(root, 'usr/lib/node_modules/npm'), { recursive: true });
      await writeFile(path.join(root, 'usr/bin/npm'), '#!/bin/sh\nexec node /usr/lib/node_modules/npm/bin/npm-cli.js "$@"\n', { mode: 0o755 });
      if (trust) {
        await mkdir(path.join(root, 'etc/ssl/certs'), { recursive: true });
        await copyFile(cas, path.join(root, cas));
      }
    },
  });
}

/** The exported Compose file's proxy image: this machine's caddy (Debian's package). */
export function ensureCaddyImage(tag = 'caddy:2-alpine'): Promise<boolean> {
  return importImage(tag, { binaries: ['/usr/bin/caddy'], changes: ['ENV HOME=/root'] });
}

/**
 * An npm registry on loopback for `docker build`: serves the packed tidescale (the package as
 * a user installs it) and redirects every other package to the public registry.
 */
export async function startRegistry(tarball: string): Promise<{ url: string; version: string; close(): Promise<void> }> {
  const bytes = await readFile(tarball);
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as Record<string, unknown> & { name: string; version: string };
  const integrity = `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
  const shasum = createHash('sha1').update(bytes).digest('hex');
  const file = `${manifest.name}-${manifest.version}.tgz`;
  let url = '';
  const server: Server = createServer((req, res) => {
    const route = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    if (route === `/${manifest.name}`) {
      const version = { ...manifest, dist: { tarball: `${url}/${manifest.name}/-/${file}`, integrity, shasum } };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name: manifest.name, 'dist-tags': { latest: manifest.version }, versions: { [manifest.version]: version } }));
    } else if (route === `/${manifest.name}/-/${file}`) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(bytes);
    } else {
      res.statusCode = 302;
      res.setHeader('location', `https://registry.npmjs.org${req.url ?? '/'}`);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    url,
    version: manifest.version,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Removes every container, then every image, carrying the test label (and the named extras). */
export async function removeTestObjects(images: string[] = []): Promise<void> {
  const containers = (await docker(['ps', '-aq', '--filter', `label=${TEST_LABEL}`])).stdout.split(/\s+/).filter(Boolean);
  if (containers.length > 0) await docker(['rm', '-f', '-v', ...containers]);
  const labelled = (await docker(['images', '-q', '--filter', `label=${TEST_LABEL}`])).stdout.split(/\s+/).filter(Boolean);
  for (const image of [...images, ...new Set(labelled)]) await docker(['rmi', '-f', image]);
  await docker(['image', 'prune', '-f', '--filter', `label=${TEST_LABEL}`]);
}
