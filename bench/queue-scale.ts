/**
 * The queue at scale: what an autoscaler's read, a claim, a new urgent job and a purge batch
 * cost as the ready backlog grows from a thousand to ten million jobs, against BullMQ's
 * getJobCounts on Redis at the same sizes (the anchor: Redis answers from list and sorted-set
 * lengths, in constant time), and one read of 1,000 queues' figures.
 *
 *   npm run bench:queue-scale -- [--json] [--sizes 1000,100000,1000000,10000000] [--max N]
 *                                [--reads 30] [--chart bench/charts/queue-scale.svg]
 *
 * The backlog is built through the queue's own enqueue (batches of 10,000) and BullMQ's
 * addBulk; both are removed at the end. DATABASE_URL, or the embedded PostgreSQL; REDIS_URL
 * (default redis://127.0.0.1:6379), or the BullMQ row is left out. `count_ms` is a full count
 * of the ready jobs through the ready index: how every read cost before the counts were kept.
 *
 * Last line (with --json): {"sizes":[...],"tide":{"stats_ms":[...],"claim_ms":[...],"start_ms":[...],
 * "purge_ms":[...],...},"bullmq":{"counts_ms":[...]},"growth":{"stats":N,"claim":N},"queues_1000_ms":N}
 * (medians; the p99s alongside).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Queue } from 'bullmq';
import pg from 'pg';

import { resolveDatabase } from '../src/db/connect.js';
import { type PostgresQueue, createPostgresQueue } from '../src/runtime/queue/postgres.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '1000,100000,1000000,10000000' },
    max: { type: 'string' },
    reads: { type: 'string', default: '30' },
    chart: { type: 'string' },
  },
});
const READS = Number(args.reads);
const SIZES = args.sizes
  .split(',')
  .map(Number)
  .filter((n) => n > 0 && (!args.max || n <= Number(args.max)))
  .sort((a, b) => a - b);
// Each claim read takes 16 jobs off the backlog (put back after the size is measured): the
// smallest backlog must hold them all, or the claims would run out and measure an empty queue.
if (!(READS >= 1) || SIZES.length === 0 || READS * 16 > SIZES[0]!) {
  console.error(
    `bench:queue-scale: --reads ${args.reads} with backlogs of ${SIZES.join(', ') || 'none'}: every size needs at least 16 jobs a read ` +
      `(${Number.isFinite(READS) ? READS * 16 : '?'}); lower --reads or raise the smallest of --sizes.`,
  );
  process.exit(2);
}
const BATCH = 10_000;
const QUEUE = 'scale';

const log = (line: string) => process.stdout.write(`${line}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

interface Timing {
  median: number;
  p99: number;
}

function summarize(samples: number[]): Timing {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { median: round(at(0.5), 3), p99: round(at(0.99), 3) };
}

async function timed(times: number, fn: (i: number) => Promise<unknown>): Promise<Timing> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await fn(i);
    samples.push(performance.now() - t0);
  }
  return summarize(samples);
}

/** Adds `n` jobs in batches, saying how far it got every few seconds. */
async function fill(label: string, n: number, add: (count: number) => Promise<unknown>): Promise<void> {
  const start = performance.now();
  let said = start;
  for (let done = 0; done < n; ) {
    const count = Math.min(BATCH, n - done);
    await add(count);
    done += count;
    const now = performance.now();
    if (now - said > 5000) {
      said = now;
      log(`    ${label}: ${done.toLocaleString('en')} / ${n.toLocaleString('en')} (${Math.round(done / ((now - start) / 1000)).toLocaleString('en')} jobs/s)`);
    }
  }
}

interface TideSize {
  stats: Timing;
  count: Timing;
  claim: Timing;
  start: Timing;
  purge: Timing;
}

async function measureTide(queue: PostgresQueue, pool: pg.Pool, schema: string): Promise<TideSize> {
  const stats = await timed(READS, () => queue.stats(QUEUE));
  const count = await timed(Math.min(READS, 10), () => pool.query(`SELECT count(*) FROM "${schema}".jobs WHERE state = 'ready' AND queue = $1`, [QUEUE]));
  const claim = await timed(READS, async () => {
    const jobs = await queue.claim('bench', [QUEUE], 16);
    if (jobs.length !== 16) throw new Error(`claimed ${jobs.length} of 16`);
    await queue.completeMany('bench', jobs.map((j) => ({ id: j.id })));
  });
  // a new high-priority job, from enqueue to its claim: it must come first, ahead of the backlog
  const start = await timed(READS, async () => {
    const { id } = await queue.enqueue({ queue: QUEUE, handler: 'noop', priority: 1000 });
    const [job] = await queue.claim('bench', [QUEUE], 1);
    if (job?.id !== id) throw new Error('the urgent job was not claimed first');
    await queue.completeMany('bench', [{ id }]);
  });
  // the claims above finished READS * 17 jobs: purge them in batches of 100
  const purged: number[] = [];
  for (;;) {
    const t0 = performance.now();
    const n = await queue.purgeFinished(0, 100);
    if (n === 0) break;
    purged.push(performance.now() - t0);
  }
  // put the backlog back to its size
  await queue.enqueueMany(Array.from({ length: READS * 16 }, () => ({ queue: QUEUE, handler: 'noop' })));
  return { stats, count, claim, start, purge: summarize(purged) };
}

function renderChart(sizes: number[], series: Array<{ name: string; color: string; values: number[] }>): string {
  const W = 640;
  const H = 360;
  const L = 60;
  const B = 40;
  const all = series.flatMap((s) => s.values).filter((v) => v > 0);
  const ymin = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const ymax = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const xmin = Math.log10(sizes[0]!);
  const xmax = Math.log10(sizes.at(-1)!);
  const x = (n: number) => L + ((Math.log10(n) - xmin) / Math.max(1e-9, xmax - xmin)) * (W - L - 20);
  const y = (v: number) => H - B - ((Math.log10(Math.max(v, ymin)) - Math.log10(ymin)) / (Math.log10(ymax) - Math.log10(ymin))) * (H - B - 20);
  const parts: string[] = [];
  for (let e = Math.log10(ymin); e <= Math.log10(ymax); e++) {
    parts.push(`<line x1="${L}" x2="${W - 20}" y1="${y(10 ** e)}" y2="${y(10 ** e)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${y(10 ** e) + 4}" text-anchor="end" font-size="11">${10 ** e} ms</text>`);
  }
  for (const n of sizes) parts.push(`<text x="${x(n)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${n.toLocaleString('en')}</text>`);
  parts.push(`<text x="${(L + W) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">ready jobs (log scale)</text>`);
  series.forEach((s, i) => {
    const points = s.values.map((v, k) => `${x(sizes[k]!)},${y(v)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points}"/>`);
    parts.push(`<text x="${L + 8}" y="${20 + i * 15}" font-size="12" fill="${s.color}">${s.name}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">\n${parts.join('\n')}\n</svg>\n`;
}

async function main(): Promise<void> {
  const database = await resolveDatabase({ url: process.env.DATABASE_URL, stateDir: path.join('.tide', 'bench'), log });
  const schema = `bench_scale_${randomBytes(4).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const queue = await createPostgresQueue({ connectionString: database.url, schema, poolSize: 4 });
  const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const bullName = `scale-${randomBytes(4).toString('hex')}`;
  const bull = new Queue(bullName, { connection: { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null } });
  let redis = true;
  try {
    await bull.waitUntilReady();
  } catch (err) {
    redis = false;
    log(`  BullMQ row left out: Redis at ${redisUrl.host} did not answer (${(err as Error).message})`);
  }
  try {
    const { rows } = await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    log(`queue at scale: backlogs of ${SIZES.map((n) => n.toLocaleString('en')).join(', ')} ready jobs; PostgreSQL ${rows[0]!.v}${database.embedded ? ' (embedded)' : ''}; ${READS} reads each`);
    const tide: TideSize[] = [];
    const bullmq: Timing[] = [];
    let have = 0;
    let haveBull = 0;
    for (const size of SIZES) {
      log(`  ${size.toLocaleString('en')} ready jobs`);
      await fill('tide', size - have, (n) => queue.enqueueMany(Array.from({ length: n }, () => ({ queue: QUEUE, handler: 'noop' }))));
      have = size;
      const t = await measureTide(queue, pool, schema);
      tide.push(t);
      log(
        `    tide: stats ${t.stats.median} ms (p99 ${t.stats.p99}), full count ${t.count.median} ms, claim 16 ${t.claim.median} ms (p99 ${t.claim.p99}), ` +
          `urgent job enqueue-to-claim ${t.start.median} ms (p99 ${t.start.p99}), purge 100 ${t.purge.median} ms (p99 ${t.purge.p99})`,
      );
      if (redis) {
        await fill('bullmq', size - haveBull, (n) => bull.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data: null }))));
        haveBull = size;
        const counts = await timed(READS, () => bull.getJobCounts('wait', 'active', 'delayed', 'failed', 'completed', 'prioritized'));
        bullmq.push(counts);
        log(`    bullmq: getJobCounts ${counts.median} ms (p99 ${counts.p99})`);
      }
    }
    // 1,000 queues, a few jobs each (one of them delayed), read in one statement
    await queue.enqueueMany(
      Array.from({ length: 3000 }, (_, i) => ({ queue: `many-${String(i % 1000).padStart(4, '0')}`, handler: 'noop', ...(i >= 2000 ? { delayMs: 3_600_000 } : {}) })),
    );
    const many = await timed(Math.min(READS, 20), async () => {
      const all = await queue.stats();
      if (all.length < 1000) throw new Error(`read ${all.length} queues`);
    });
    log(`  1,000 queues (and the backlog's) read at once: ${many.median} ms (p99 ${many.p99})`);

    const first = tide[0]!;
    const last = tide.at(-1)!;
    const summary = {
      sizes: SIZES,
      tide: {
        stats_ms: tide.map((t) => t.stats.median),
        stats_p99_ms: tide.map((t) => t.stats.p99),
        claim_ms: tide.map((t) => t.claim.median),
        claim_p99_ms: tide.map((t) => t.claim.p99),
        start_ms: tide.map((t) => t.start.median),
        start_p99_ms: tide.map((t) => t.start.p99),
        purge_ms: tide.map((t) => t.purge.median),
        count_ms: tide.map((t) => t.count.median),
      },
      bullmq: redis ? { counts_ms: bullmq.map((b) => b.median), counts_p99_ms: bullmq.map((b) => b.p99) } : null,
      growth: { stats: round(last.stats.median / first.stats.median), claim: round(last.claim.median / first.claim.median) },
      stats_vs_bullmq: redis ? round(last.stats.median / bullmq.at(-1)!.median) : null,
      queues_1000_ms: many.median,
    };
    log(
      `growth from ${SIZES[0]!.toLocaleString('en')} to ${SIZES.at(-1)!.toLocaleString('en')}: stats ${summary.growth.stats}x, claim ${summary.growth.claim}x` +
        (redis ? `; stats at the largest backlog / BullMQ's counts: ${summary.stats_vs_bullmq}x` : ''),
    );
    if (args.chart) {
      mkdirSync(path.dirname(args.chart), { recursive: true });
      const series = [
        { name: 'tide stats()', color: '#1f77b4', values: summary.tide.stats_ms },
        { name: 'full count (before)', color: '#d62728', values: summary.tide.count_ms },
        { name: 'tide claim of 16', color: '#2ca02c', values: summary.tide.claim_ms },
        ...(redis ? [{ name: 'BullMQ getJobCounts', color: '#ff7f0e', values: summary.bullmq!.counts_ms }] : []),
      ];
      writeFileSync(args.chart, renderChart(SIZES, series));
      log(`  chart: ${args.chart}`);
    }
    if (args.json) log(JSON.stringify(summary));
  } finally {
    await queue.close().catch(() => undefined);
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
    if (redis) await bull.obliterate({ force: true }).catch((err: Error) => log(`  could not remove BullMQ queue ${bullName}: ${err.message}`));
    await bull.close();
    await database.stop();
  }
}

await main();
