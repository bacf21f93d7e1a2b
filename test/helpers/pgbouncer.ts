/**
 * A real PgBouncer in transaction mode in front of the run's PostgreSQL, for the tests (and
 * for `npm test -- --pgbouncer`, which runs the chosen files through one). Its config, auth
 * file, pid file and log live in a temp directory removed by stop(). PgBouncer refuses to run
 * as root, so as root it runs as the `postgres` user (which then owns that directory).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

export interface PgBouncer {
  /** The URL of the upstream database through PgBouncer. */
  url: string;
  port: number;
  /** The pool each (database, user) pair gets: default_pool_size. */
  poolSize: number;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** The PostgreSQL to pool (a postgres:// URL with host and port). */
  upstreamUrl: string;
  /** default_pool_size. Default 20. */
  poolSize?: number;
  /** max_client_conn. Default 500. */
  maxClientConn?: number;
  /** query_wait_timeout in seconds (how long a client waits for a server connection). Default 120. */
  queryWaitTimeoutS?: number;
}

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

/** The pgbouncer binary, or undefined when it is not installed. */
export function pgbouncerBinary(): string | undefined {
  for (const c of CANDIDATES) if (existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Why PgBouncer tests cannot run here, or undefined when they can (for `test(..., { skip })`). */
export function pgbouncerSkipReason(): string | undefined {
  return pgbouncerBinary() ? undefined : 'PgBouncer is not installed (apt-get install -y pgbouncer); the PgBouncer tests skip';
}

async function freeLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, deadline: number, log: () => string): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`PgBouncer did not listen on 127.0.0.1:${port} within 10 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts PgBouncer (transaction mode, auth trust) on a free loopback port. */
export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const bin = pgbouncerBinary();
  if (!bin) throw new Error('PgBouncer is not installed (apt-get install -y pgbouncer)');
  const upstream = new URL(options.upstreamUrl);
  const user = decodeURIComponent(upstream.username || 'postgres');
  const password = decodeURIComponent(upstream.password);
  const host = upstream.hostname || '127.0.0.1';
  const upstreamPort = Number(upstream.port || 5432);
  const poolSize = options.poolSize ?? 20;
  const port = await freeLoopbackPort();
  const dir = mkdtempSync(path.join(tmpdir(), 'tide-pgbouncer-'));
  const file = (name: string) => path.join(dir, name);
  const passwordPart = password ? ` password=${password}` : '';
  writeFileSync(file('users.txt'), `"${user}" ""\n`);
  writeFileSync(
    file('pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${host} port=${upstreamPort} user=${user}${passwordPart}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${file('users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      `max_client_conn = ${options.maxClientConn ?? 500}`,
      'ignore_startup_parameters = extra_float_digits',
      `query_wait_timeout = ${options.queryWaitTimeoutS ?? 120}`,
      `pidfile = ${file('pgbouncer.pid')}`,
      `logfile = ${file('pgbouncer.log')}`,
      'admin_users = ' + user,
      '',
    ].join('\n'),
  );
  const args = [file('pgbouncer.ini')];
  if (userInfo().uid === 0) {
    // PgBouncer will not run as root: hand it the directory and run it as postgres
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    for (const f of ['', 'users.txt', 'pgbouncer.ini']) chownSync(file(f), uid, gid);
    args.unshift('-u', 'postgres');
  }
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // this process ending without stop() (a crash, a killed test) takes PgBouncer with it
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => `${stderr}${existsSync(file('pgbouncer.log')) ? readFileSync(file('pgbouncer.log'), 'utf8') : ''}`;
  try {
    await Promise.race([
      waitForPort(port, Date.now() + 10_000, log),
      exited.then(() => Promise.reject(new Error(`PgBouncer exited at start:\n${log()}`))),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = new URL(options.upstreamUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  let stopped: Promise<void> | undefined;
  return {
    url: url.toString(),
    port,
    poolSize,
    stop: () =>
      (stopped ??= (async () => {
        // SIGTERM: an immediate shutdown (SIGINT would wait for the clients' queries)
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const late = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(late);
        }
        process.removeListener('exit', reap);
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}
