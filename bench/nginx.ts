/**
 * nginx as an anchor proxy for the benchmarks (bench:lb, bench:api): found on PATH or in the
 * sbin directories, installed with apt-get when missing and running as root, started with its
 * own configuration in a temporary directory (one process, least_conn, keep-alive to the
 * upstreams, HTTP/1.1, X-Forwarded-For/Proto set: the balancer's behaviour), on loopback.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A program on PATH or in the sbin directories (nginx lives in /usr/sbin on Debian). */
function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  return dirs.map((d) => path.join(d, name)).find((p) => p && existsSync(p));
}

let aptUpdated = false;
/** The program's path, installing its Debian package first when it is missing and this is root. */
export function ensureProgram(name: string, pkg: string, say: (line: string) => void): string {
  const found = findProgram(name);
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new Error(`${name} is not installed; install it (apt-get install -y ${pkg}) or run the benchmark as root so it can`);
  }
  say(`installing ${pkg} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    aptUpdated = true;
  }
  execFileSync('apt-get', ['install', '-y', '-qq', pkg], { stdio: 'inherit', env });
  const installed = findProgram(name);
  if (!installed) throw new Error(`${name} is still missing after installing ${pkg}`);
  return installed;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts connections on the port. */
async function listening(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nothing listens on ${port}`);
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function nginxConfig(dir: string, port: number, upstreamPorts: number[]): string {
  return `# written by bench/nginx.ts
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  upstream replicas {
    least_conn;
${upstreamPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 128;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`;
}

/** nginx in front of the upstreams (loopback ports); `stop` ends it and removes its directory. */
export async function startNginx(upstreamPorts: number[], say: (line: string) => void): Promise<{ url: string; stop(): Promise<void> }> {
  const bin = ensureProgram('nginx', 'nginx', say);
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-bench-nginx-'));
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(conf, nginxConfig(dir, port, upstreamPorts));
  const child = spawn(bin, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await listening(port, child);
  } catch (err) {
    await stopChild(child, 'SIGQUIT');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await stopChild(child, 'SIGQUIT');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
