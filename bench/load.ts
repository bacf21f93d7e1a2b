/**
 * Load generator benchmark: `tide load` against autocannon (npm) and wrk (Debian), the same
 * local target, one run.
 *
 *   npm run bench:load -- [--json] [--duration 5] [--connections 64] [--share 0.9]
 *
 * Target: a minimal node http server in a child process answering `GET /` with 200 "ok".
 * Method, in this order (1 s warm-up by wrk first):
 *   1. wrk -t1 -cC -dD --latency: the most the target takes from a closed loop (wrk_rps).
 *   2. autocannon -c C -d D: the same from Node (autocannon_rps).
 *   3. the fixed high rate R = share x the better of the two (default 0.9: an open model at
 *      the target's very limit only measures its queue growing);
 *      autocannon -R R (rate-limited) for its p50/p99 at that rate;
 *   4. tide load --rate R --threads 1 (open model, latency from the intended send time) in a
 *      child process; one thread, as wrk runs with -t1.
 * Each tool runs as its own process, so each gets a core while the target has the other.
 * `tide_rps` is what tide achieved (finished requests / run time); ratio_vs_best = tide_rps /
 * max(autocannon_rps, wrk_rps). The p50 comparison is at R, tide's against autocannon -R's,
 * both timed from send (tide also reports its p50 from the intended send time, which adds the
 * generator's own lag: the figure autocannon and wrk leave out).
 * Last line: {"tide_rps":N,"autocannon_rps":N,"wrk_rps":N,"ratio_vs_best":N, ...}.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    share: { type: 'string', default: '0.9' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const share = Number(values.share);
const say = (line: string) => (values.json ? console.error(line) : console.log(line));

const TARGET = `
const http = require('node:http');
const server = http.createServer((req, res) => { req.resume(); res.end('ok'); });
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: root, maxBuffer: 1 << 26, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** wrk's "1.23ms" / "456.00us" / "1.2s" in ms. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) throw new Error(`wrk latency "${text}" does not parse`);
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 'ms' ? 1 : 1000);
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
}

async function wrk(url: string, seconds: number): Promise<Figures> {
  const out = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], (seconds + 30) * 1000);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = wrkMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99 = wrkMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  return { rps, p50, p99 };
}

async function autocannon(url: string, rate?: number): Promise<Figures> {
  const args = ['-c', String(connections), '-d', String(duration), '-j', ...(rate ? ['-R', String(Math.round(rate))] : []), url];
  const out = await run(path.join(root, 'node_modules', '.bin', 'autocannon'), args, (duration + 30) * 1000);
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { requests: { total: number }; duration: number; latency: { p50: number; p99: number } };
  return { rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99 };
}

async function tide(url: string, rate: number): Promise<Figures & { dropped: number; threads: number; sendP50: number; sendP99: number }> {
  const args = [path.join(root, 'bin', 'tide.js'), 'load', url, '--method', 'GET', '--rate', String(Math.round(rate)), '--duration', `${duration}s`, '--connections', String(connections), '--threads', '1', '--json'];
  const out = await run(process.execPath, args, (duration + 60) * 1000);
  const s = JSON.parse(out.trim().split('\n').at(-1)!) as {
    rate: number;
    latency_ms: { p50: number; p99: number };
    latency_from_send_ms: { p50: number; p99: number };
    dropped_iterations: number;
    threads: number;
  };
  return { rps: s.rate, p50: s.latency_ms.p50, p99: s.latency_ms.p99, sendP50: s.latency_from_send_ms.p50, sendP99: s.latency_from_send_ms.p99, dropped: s.dropped_iterations, threads: s.threads };
}

if (!existsSync('/usr/bin/wrk')) throw new Error('wrk is not installed (apt-get install -y wrk)');
const target: ChildProcess = spawn(process.execPath, ['-e', TARGET], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const [chunk] = (await once(target.stdout!, 'data')) as [Buffer];
  const url = `http://127.0.0.1:${chunk.toString().trim()}/`;
  say(`target ${url}; ${duration} s per run, ${connections} connections`);
  await wrk(url, 1); // warm-up: the target's JIT, and its sockets
  const w = await wrk(url, duration);
  say(`wrk (closed, max)             ${w.rps.toFixed(0)} req/s  p50 ${w.p50.toFixed(3)} ms  p99 ${w.p99.toFixed(3)} ms`);
  const a = await autocannon(url);
  say(`autocannon (closed, max)      ${a.rps.toFixed(0)} req/s  p50 ${a.p50.toFixed(3)} ms  p99 ${a.p99.toFixed(3)} ms`);
  const best = Math.max(w.rps, a.rps);
  const rate = share * best;
  const ar = await autocannon(url, rate);
  say(`autocannon -R ${rate.toFixed(0)}         ${ar.rps.toFixed(0)} req/s  p50 ${ar.p50.toFixed(3)} ms  p99 ${ar.p99.toFixed(3)} ms`);
  const t = await tide(url, rate);
  say(`tide load --rate ${rate.toFixed(0)}      ${t.rps.toFixed(0)} req/s  p50 ${t.p50.toFixed(3)} ms  p99 ${t.p99.toFixed(3)} ms  (from the intended send time; ${t.dropped} dropped)`);
  say(`  the same, from socket write   p50 ${t.sendP50.toFixed(3)} ms  p99 ${t.sendP99.toFixed(3)} ms  (as autocannon and wrk time them)`);
  const result = {
    tide_rps: Math.round(t.rps),
    autocannon_rps: Math.round(a.rps),
    wrk_rps: Math.round(w.rps),
    ratio_vs_best: Math.round((t.rps / best) * 1000) / 1000,
    rate: Math.round(rate),
    tide_p50_ms: t.p50,
    tide_p99_ms: t.p99,
    tide_send_p50_ms: t.sendP50,
    tide_send_p99_ms: t.sendP99,
    tide_dropped: t.dropped,
    autocannon_at_rate_p50_ms: ar.p50,
    autocannon_at_rate_p99_ms: ar.p99,
    autocannon_p50_ms: a.p50,
    autocannon_p99_ms: a.p99,
    wrk_p50_ms: w.p50,
    wrk_p99_ms: w.p99,
  };
  // autocannon reports whole milliseconds (a sub-millisecond p50 reads 0), so the p50s are
  // compared with wrk's, which has microsecond resolution, when autocannon's rounds to zero
  const ref = ar.p50 > 0 ? { name: 'autocannon', p50: ar.p50 } : { name: 'wrk (autocannon rounds to 0 ms)', p50: w.p50 };
  say(`ratio vs best ${result.ratio_vs_best}; p50 at ${result.rate}/s, tide from send / ${ref.name}: ${(t.sendP50 / ref.p50).toFixed(2)}; tide from intended / ${ref.name}: ${(t.p50 / ref.p50).toFixed(2)}`);
  if (values.json) console.log(JSON.stringify(result));
} finally {
  target.kill('SIGTERM');
  await once(target, 'exit');
}
