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
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { createBalancer } from '../src/balancer/balancer.js';
import { ensureProgram, startNginx, stopChild } from './nginx.js';

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
const rounds = Math.max(1, Math.floor(Number(values.rounds)) || 1);
const say = (line: string) => {
  if (!values.json) console.log(line);
  else console.error(line);
};

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

async function main(): Promise<void> {
  const wrkBin = ensureProgram('wrk', 'wrk', say);
  const replicas: Array<{ port: number; child: ChildProcess }> = [];
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  const lb = await createBalancer({ host: '127.0.0.1', port: 0, healthPath: '/health' });
  try {
    for (let i = 0; i < replicaCount; i++) replicas.push(await startReplica());
    for (const [i, r] of replicas.entries()) lb.addUpstream(`r${i}`, `http://127.0.0.1:${r.port}`, { healthy: true });

    nginx = await startNginx(replicas.map((r) => r.port), say);

    say(`wrk -t${threads} -c${connections} -d${duration}s, GET /health, ${replicaCount} replicas, ${warmup}s warm-up each, best of ${rounds} rounds`);
    const targets = [
      { name: 'direct', url: `http://127.0.0.1:${replicas[0]!.port}/health`, results: [] as WrkResult[] },
      { name: 'tide lb', url: `${lb.url}/health`, results: [] as WrkResult[] },
      { name: 'nginx', url: `${nginx.url}/health`, results: [] as WrkResult[] },
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
    await nginx?.stop();
    await lb.close();
    await Promise.all(replicas.map((r) => stopChild(r.child)));
  }
}

await main();
