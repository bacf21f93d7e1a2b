/**
 * Load balancer benchmark: requests/s and p99 of `GET /health` through Tidescale's balancer,
 * straight to one replica, and through nginx (least_conn, keep-alive to the same replicas),
 * all in one run on this machine, measured by wrk.
 *
 * The replicas are minimal node http servers in child processes, answering `/health` JSON
 * like the API's (without the database), so they do not share an event loop with the
 * balancer, which runs in this process (otherwise idle while wrk runs).
 *
 *   npm run bench:lb -- [--json] [--duration 5] [--rounds 3] [--connections 64] [--threads 2] [--replicas 2]
 *
 * Method: each round measures the three targets one after another (1 s warm-up, then
 * `duration` seconds), rotating their order; the figure kept per target is its best round.
 * Other work on a shared machine only ever lowers a round's throughput, so the best round
 * is the least disturbed one, and rotation keeps any target from always running first.
 *
 * Needs `wrk` and `nginx` (on PATH or in /usr/sbin); when missing and running as root, it
 * installs them with apt-get. Everything listens on loopback only.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { createBalancer } from '../src/supervisor/balancer.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    replicas: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
  },
});
const duration = Number(values.duration);
const warmup = Number(values.warmup);
const connections = Number(values.connections);
const threads = Number(values.threads);
const replicaCount = Number(values.replicas);
const rounds = Math.max(1, Number(values.rounds));
const say = (line: string) => {
  if (!values.json) console.log(line);
  else console.error(line);
};

/** A program on PATH or in the sbin directories (nginx lives in /usr/sbin on Debian). */
function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  return dirs.map((d) => path.join(d, name)).find((p) => p && existsSync(p));
}

let aptUpdated = false;
function ensure(name: string, pkg: string): string {
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

const REPLICA = `
const http = require('node:http');
const os = require('node:os');
const started = Date.now();
const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    const body = JSON.stringify({ status: 'ok', hostname: os.hostname(), pid: process.pid, version: '0.0.0-bench', uptime: (Date.now() - started) / 1000 });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404);
  res.end();
});
server.keepAliveTimeout = 65000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
`;

async function startReplica(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', REPLICA], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return { port: Number(line), child };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

interface WrkResult {
  rps: number;
  p99Ms: number;
  errors: number;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) throw new Error(`cannot read wrk latency "${value}"`);
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

async function wrk(bin: string, url: string, seconds: number): Promise<WrkResult> {
  const child = spawn(bin, [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1];
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((n, x) => n + Number(x), 0) : 0);
  if (!Number.isFinite(rps) || p99 === undefined) throw new Error(`cannot read wrk output:\n${out}`);
  return { rps, p99Ms: toMs(p99), errors };
}

async function measure(bin: string, name: string, url: string, round: number): Promise<WrkResult> {
  if (warmup > 0) await wrk(bin, url, warmup);
  const result = await wrk(bin, url, duration);
  say(`round ${round + 1}  ${name.padEnd(8)} ${Math.round(result.rps).toString().padStart(7)} req/s   p99 ${result.p99Ms.toFixed(2)} ms${result.errors ? `   ${result.errors} errors` : ''}`);
  return result;
}

/** The best round (most requests/s), with the errors of all rounds. */
function best(results: WrkResult[]): WrkResult {
  const top = results.reduce((a, b) => (b.rps > a.rps ? b : a));
  return { ...top, errors: results.reduce((n, r) => n + r.errors, 0) };
}

function nginxConfig(dir: string, port: number, replicaPorts: number[]): string {
  return `# written by bench/lb.ts
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
${replicaPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
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

async function main(): Promise<void> {
  const wrkBin = ensure('wrk', 'wrk');
  const nginxBin = ensure('nginx', 'nginx');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-bench-lb-'));
  const replicas: Array<{ port: number; child: ChildProcess }> = [];
  let nginx: ChildProcess | undefined;
  const lb = await createBalancer({ host: '127.0.0.1', port: 0, healthPath: '/health' });
  try {
    for (let i = 0; i < replicaCount; i++) replicas.push(await startReplica());
    for (const [i, r] of replicas.entries()) lb.addUpstream(`r${i}`, `http://127.0.0.1:${r.port}`, { healthy: true });

    const nginxPort = await freePort();
    const conf = path.join(dir, 'nginx.conf');
    await writeFile(conf, nginxConfig(dir, nginxPort, replicas.map((r) => r.port)));
    nginx = spawn(nginxBin, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'inherit'] });
    await listening(nginxPort, nginx);

    say(`wrk -t${threads} -c${connections} -d${duration}s, GET /health, ${replicaCount} replicas, ${warmup}s warm-up each, best of ${rounds} rounds`);
    const targets = [
      { name: 'direct', url: `http://127.0.0.1:${replicas[0]!.port}/health`, results: [] as WrkResult[] },
      { name: 'tide lb', url: `${lb.url}/health`, results: [] as WrkResult[] },
      { name: 'nginx', url: `http://127.0.0.1:${nginxPort}/health`, results: [] as WrkResult[] },
    ];
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < targets.length; k++) {
        const target = targets[(round + k) % targets.length]!;
        target.results.push(await measure(wrkBin, target.name, target.url, round));
      }
    }
    const [direct, balanced, viaNginx] = targets.map((t) => best(t.results)) as [WrkResult, WrkResult, WrkResult];
    say(`best: direct ${Math.round(direct.rps)}, tide lb ${Math.round(balanced.rps)}, nginx ${Math.round(viaNginx.rps)} req/s`);
    const ratio = balanced.rps / viaNginx.rps;
    say(`ratio vs nginx: ${ratio.toFixed(2)} (target >= 0.6)`);
    const round = (n: number, places = 0) => Math.round(n * 10 ** places) / 10 ** places;
    console.log(
      JSON.stringify({
        lb_rps: round(balanced.rps),
        direct_rps: round(direct.rps),
        nginx_rps: round(viaNginx.rps),
        ratio_vs_nginx: round(ratio, 3),
        lb_p99_ms: round(balanced.p99Ms, 2),
        direct_p99_ms: round(direct.p99Ms, 2),
        nginx_p99_ms: round(viaNginx.p99Ms, 2),
        errors: balanced.errors + direct.errors + viaNginx.errors,
        replicas: replicaCount,
        connections,
        threads,
        duration_s: duration,
        rounds,
      }),
    );
  } finally {
    if (nginx) await stop(nginx, 'SIGQUIT');
    await lb.close();
    await Promise.all(replicas.map((r) => stop(r.child)));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
