/**
 * The enqueue path: `tide api`'s `POST /v1/jobs` with one job per request against the simplest
 * server a team could write (Fastify with one `INSERT ... RETURNING id` on a pg pool of the same
 * size), one run, the same PostgreSQL (DATABASE_URL, default the machine's on 127.0.0.1:5432).
 *
 *   npm run bench:api -- [--json] [--duration 5] [--step 3] [--rounds 3]
 *
 * Each server runs in its own process (tide api from the built package, rate limit off; the
 * anchor written below); `tide load` drives them from a third, one thread.
 *   1. closed model, 32 and 128 users, `duration` seconds each (after a 1 s warm-up): jobs/s
 *      accepted and p50/p95;
 *   2. open model, rates rising by 25% from 250/s, `step` seconds each, until p95 (from the
 *      intended send time) passes 50 ms or requests fail: the last rate that held;
 *   3. tide api direct, through Tidescale's balancer (in this process, one upstream) and
 *      through nginx (the anchor proxy: one process, keep-alive to the upstream, as bench:lb
 *      sets it), closed 32, in rotated order, best of `rounds` rounds each (other work only
 *      lowers a round): balancer_overhead = 1 - (through the balancer / direct), and
 *      nginx_overhead the same for nginx: what any proxy hop costs on this machine;
 *   4. closed 32 on tide api again while two `tide worker` processes drain the queue.
 * Every accepted job is a row in a table (the anchor's `bench_bare.jobs`, tide's own queue in
 * a schema made for the run and dropped after). Everything listens on loopback.
 * Last line: {"tide":{...},"bare":{...},"ratio":{"closed32":N,"closed128":N,"max_rate":N},"balancer_overhead":N,"nginx_overhead":N,...}.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import pg from 'pg';

import { createBalancer } from '../src/balancer/balancer.js';
import { startNginx, stopChild } from './nginx.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tideBin = path.join(root, 'bin', 'tide.js');
const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    duration: { type: 'string', default: '5' },
    step: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
  },
});
const duration = Number(values.duration);
const step = Number(values.step);
const rounds = Math.max(1, Math.floor(Number(values.rounds)) || 1);
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const POOL = 10;
const say = (line: string) => (values.json ? console.error(line) : console.log(line));

/** The anchor: what a team writes first. CommonJS, run with `node -e` from the project root. */
const BARE = `
const fastify = require('fastify')({ logger: false });
const pg = require('pg');
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: ${POOL} });
fastify.post('/v1/jobs', async (request, reply) => {
  const { handler, payload } = request.body;
  const { rows } = await pool.query('INSERT INTO bench_bare.jobs (handler, payload) VALUES ($1, $2) RETURNING id', [handler, payload]);
  return reply.status(202).send({ id: rows[0].id });
});
fastify.listen({ host: '127.0.0.1', port: 0 }).then(() => process.stdout.write(fastify.server.address().port + '\\n'));
process.on('SIGTERM', () => fastify.close().then(() => pool.end()).then(() => process.exit(0)));
`;

interface LoadResult {
  rate: number;
  ok: number;
  failed: number;
  latency_ms: { p50: number; p95: number; p99: number };
  status_codes: Record<string, number>;
}

const BODY = '{"handler":"sleep","payload":{"ms":1,"n":{{counter}}}}';

function load(url: string, args: string[]): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [tideBin, 'load', url, '--method', 'POST', '--path', '/v1/jobs', '--header', 'content-type: application/json', '--body', BODY, '--threads', '1', '--quiet', '--json', ...args],
      { cwd: root, maxBuffer: 1 << 26, timeout: 600_000 },
      (err, stdout, stderr) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        // exit 99 is a failed threshold; the summary is still there
        if (err && !last.startsWith('{')) reject(new Error(`tide load failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(last) as LoadResult);
      },
    );
  });
}

async function closed(url: string, users: number): Promise<LoadResult> {
  await load(url, ['--vus', String(users), '--duration', '1s']);
  return load(url, ['--vus', String(users), '--duration', `${duration}s`]);
}

/** The highest rate (rising by 25%) whose p95 from the intended send time stays within 50 ms. */
async function maxRate(url: string, label: string): Promise<number> {
  let held = 0;
  for (let rate = 250; rate < 100_000; rate = Math.round(rate * 1.25)) {
    const r = await load(url, ['--rate', String(rate), '--duration', `${step}s`, '--connections', '256']);
    const ok = r.latency_ms.p95 <= 50 && r.failed === 0 && r.rate >= rate * 0.95;
    say(`  ${label} open ${rate}/s: ${Math.round(r.rate)}/s, p95 ${r.latency_ms.p95.toFixed(1)} ms${ok ? '' : ' (over)'}`);
    if (!ok) break;
    held = rate;
  }
  return held;
}

async function startProcess(args: string[], env: NodeJS.ProcessEnv, portFrom?: RegExp): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // its output is read (and dropped) all along, so a full pipe never stalls it
  const seen = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args.slice(0, 2).join(' ')} exited (${code}) before listening`)));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        const m = portFrom?.exec(line);
        if (m) resolve(Number(m[1]));
      });
    }
  });
  if (portFrom) return { child, port: await seen };
  seen.catch(() => undefined);
  return { child, port: 0 };
}

const summary = (r: LoadResult) => `${Math.round(r.rate)} jobs/s, p50 ${r.latency_ms.p50.toFixed(1)} ms, p95 ${r.latency_ms.p95.toFixed(1)} ms${r.failed ? `, ${r.failed} failed` : ''}`;

async function main(): Promise<void> {
  const schema = `bench_api_${process.pid}`;
  const admin = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  await admin.query('DROP SCHEMA IF EXISTS bench_bare CASCADE; CREATE SCHEMA bench_bare; CREATE TABLE bench_bare.jobs (id bigserial PRIMARY KEY, handler text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
  const children: ChildProcess[] = [];
  const lb = await createBalancer({ host: '127.0.0.1', port: 0, healthPath: '/health' });
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  try {
    const env = { DATABASE_URL: databaseUrl };
    const bare = await startProcess(['-e', BARE], env, /^(\d+)$/);
    children.push(bare.child);
    const tide = await startProcess([tideBin, 'api', '--port', '0', '--schema', schema, '--rate-limit', '0', '--pool-size', String(POOL)], env, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    children.push(tide.child);
    const tideUrl = `http://127.0.0.1:${tide.port}`;
    const bareUrl = `http://127.0.0.1:${bare.port}`;
    say(`POST /v1/jobs, one job per request; pool ${POOL}; tide load, one thread; ${duration} s per closed run`);

    const figures = { tide: {} as Record<string, number>, bare: {} as Record<string, number> };
    for (const users of [32, 128]) {
      for (const [name, url] of [['bare', bareUrl], ['tide', tideUrl]] as const) {
        const r = await closed(url, users);
        say(`  ${name} closed ${users}: ${summary(r)}`);
        figures[name][`closed${users}_rps`] = Math.round(r.rate);
        figures[name][`closed${users}_p95_ms`] = r.latency_ms.p95;
      }
    }
    for (const [name, url] of [['bare', bareUrl], ['tide', tideUrl]] as const) figures[name].max_rate_p95_50ms = await maxRate(url, name);

    lb.addUpstream('api.1', tideUrl, { healthy: true });
    nginx = await startNginx([tide.port], say);
    const paths = [
      { name: 'direct', url: tideUrl, results: [] as LoadResult[] },
      { name: 'balancer', url: lb.url, results: [] as LoadResult[] },
      { name: 'nginx', url: nginx.url, results: [] as LoadResult[] },
    ];
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < paths.length; k++) {
        const p = paths[(round + k) % paths.length]!;
        const r = await closed(p.url, 32);
        say(`  tide closed 32 ${p.name}, round ${round + 1}: ${summary(r)}`);
        p.results.push(r);
      }
    }
    const [direct, balanced, viaNginx] = paths.map((p) => p.results.reduce((a, b) => (b.rate > a.rate ? b : a))) as [LoadResult, LoadResult, LoadResult];
    say(`  best of ${rounds}: direct ${summary(direct)}; through the balancer ${summary(balanced)}; through nginx ${summary(viaNginx)}`);

    const workers = [];
    for (let i = 0; i < 2; i++) {
      const w = await startProcess([tideBin, 'worker', '--schema', schema, '--concurrency', '16'], env);
      children.push(w.child);
      workers.push(w.child);
    }
    const draining = await closed(tideUrl, 32);
    say(`  tide closed 32 with two workers draining: ${summary(draining)}`);

    const ratio = (k: string) => Math.round((figures.tide[k]! / figures.bare[k]!) * 100) / 100;
    const result = {
      tide: figures.tide,
      bare: figures.bare,
      ratio: { closed32: ratio('closed32_rps'), closed128: ratio('closed128_rps'), max_rate: ratio('max_rate_p95_50ms') },
      balancer_overhead: Math.round((1 - balanced.rate / direct.rate) * 100) / 100,
      nginx_overhead: Math.round((1 - viaNginx.rate / direct.rate) * 100) / 100,
      direct_closed32_rps: Math.round(direct.rate),
      through_balancer_closed32_rps: Math.round(balanced.rate),
      through_nginx_closed32_rps: Math.round(viaNginx.rate),
      with_workers_closed32_rps: Math.round(draining.rate),
      pool: POOL,
      duration_s: duration,
    };
    say(`ratio: closed32 ${result.ratio.closed32}, closed128 ${result.ratio.closed128}, max rate ${result.ratio.max_rate} (targets >= 1.0); balancer overhead ${result.balancer_overhead} (target <= 0.10; nginx's ${result.nginx_overhead})`);
    console.log(JSON.stringify(result));
  } finally {
    await nginx?.stop();
    await lb.close();
    await Promise.all(children.map((c) => stopChild(c)));
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS bench_bare CASCADE`);
    await admin.end();
  }
}

await main();
