/**
 * Reaction benchmark: how fast the live control loop answers a step in load on the local
 * platform. The whole local system runs (the supervisor's real worker processes, the `sleep`
 * handler, the PostgreSQL queue) with the controller over the `local` actuator, as in `tide up`.
 *
 * Method: one worker replica (concurrency 2) takes 200 ms jobs; SLO policy "90% of jobs start
 * within 1 s"; control interval 5 s (the local default). Warm-up: 3 jobs/s for 3 s (the policy
 * learns the service time). Step: 40 jobs/s from t0, four times one replica's capacity.
 *   decision_s:  t0 -> the first scale-out decision (the controller's 'decision' event).
 *   first_job_s: that decision -> the first job started by a new replica (the job row's
 *                started_at, for a worker id carrying the new replica's pid).
 * Anchor, in the same run: the same loop without the urgent trigger, i.e. a plain fixed-interval
 * poll at 5 s (how the HPA, every 15 s, and KEDA, every 30 s, work, at a shorter period). Both
 * steps start right after a control round, the worst phase for a fixed-interval poll.
 *
 * Usage: npm run bench:reaction [-- --json] [--trials N]. The tide loop runs N trials (default 3;
 * the figures are their medians), the anchor one. DATABASE_URL, or the embedded PostgreSQL.
 * The last line is {"decision_s":N,"first_job_s":N} (the tide loop, with the urgent trigger).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { parseConfig } from '../src/config/load.js';
import { decisionWhere } from '../src/controller/events.js';
import { startController } from '../src/controller/start.js';
import { resolveDatabase } from '../src/db/connect.js';
import { createPostgresQueue } from '../src/runtime/queue/postgres.js';
import { startSystem } from '../src/app/system.js';

const json = process.argv.includes('--json');
const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);

interface Result {
  decision_s: number;
  first_job_s: number;
  /** decision -> the first new replica passing its health check (process start, for the diagnosis). */
  healthy_s: number | null;
  desired: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(databaseUrl: string, urgent: boolean): Promise<Result> {
  const schema = `bench_reaction_${randomBytes(4).toString('hex')}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-bench-reaction-'));
  const config = parseConfig(
    [
      'project: reaction',
      `database: { url: "${databaseUrl}", schema: ${schema} }`,
      'control: { port: 0 }',
      'autoscale: { interval_seconds: 5, urgent_poll_seconds: 0.5 }',
      'services:',
      '  worker:',
      '    kind: worker',
      '    replicas: 1',
      '    min: 1',
      '    max: 4',
      '    concurrency: 2',
      '    queues: [jobs]',
      '    stop_grace_seconds: 2',
      '    scale:',
      '      policies: [{ kind: slo, waitSeconds: 1, attainment: 0.9, startupSeconds: 1 }]',
      '',
    ].join('\n'),
    path.join(dir, 'tide.yaml'),
  );
  if (!urgent) config.autoscale.urgentPollMs = 0;
  // the benchmark drives its own controller (`autoscaler: false` keeps `tide up`'s own out of it)
  const systemOptions = { configDir: dir, log: () => {}, writeState: false, autoscaler: false };
  const system = await startSystem(config, systemOptions);
  const queue = await createPostgresQueue({ connectionString: databaseUrl, schema, migrate: false, poolSize: 2 });
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let running: Awaited<ReturnType<typeof startController>> | undefined;
  let load: NodeJS.Timeout | undefined;
  try {
    running = await startController({ config, databaseUrl, supervisor: system.supervisor });
    const enqueue = (n: number) => void queue.enqueueMany(Array.from({ length: n }, () => ({ queue: 'jobs', handler: 'sleep', payload: { ms: 200 } }))).catch(() => {});
    // warm-up: 3 jobs/s for 3 s
    load = setInterval(() => enqueue(1), 333);
    await pause(3_000);
    clearInterval(load);
    // the step starts right after a round: the same phase for both loops, and the worst one
    // for a fixed-interval poll (a poll loses half its interval on average, here nearly all)
    await new Promise((resolve) => running!.controller.once('tick', resolve));
    // the step: 40 jobs/s
    const before = new Set(system.supervisor.ps().replicas.map((r) => r.pid));
    const t0 = Date.now();
    load = setInterval(() => enqueue(2), 50);
    enqueue(2);
    let healthyAt: number | undefined;
    const onState = (r: { pid: number | null; state: string }) => {
      if (healthyAt === undefined && r.state === 'healthy' && r.pid !== null && !before.has(r.pid)) healthyAt = Date.now();
    };
    system.supervisor.on('state', onState);
    const decision = await decisionWhere(running.controller, (r) => r.desired > r.current && r.applied);
    const decidedAt = Date.now();
    // the new replica's first job: its worker id carries its pid
    let firstStart: number | undefined;
    for (let waited = 0; firstStart === undefined && waited < 60_000; waited += 20) {
      const fresh = system.supervisor.ps().replicas.filter((r) => r.pid !== null && !before.has(r.pid)).map((r) => r.pid!);
      for (const pid of fresh) {
        const { rows } = await client.query<{ ms: number | null }>(
          `SELECT (extract(epoch FROM min(started_at)) * 1000)::float8 AS ms FROM "${schema}".jobs WHERE locked_by LIKE $1 AND state = 'active'`,
          [`%:${pid}:%`],
        );
        if (rows[0]?.ms != null) firstStart = Math.min(firstStart ?? Number.POSITIVE_INFINITY, rows[0].ms);
      }
      if (firstStart === undefined) await pause(20);
    }
    if (firstStart === undefined) throw new Error('no new replica took a job within 60 s');
    system.supervisor.off('state', onState);
    return {
      decision_s: round((decidedAt - t0) / 1000),
      first_job_s: round((firstStart - decidedAt) / 1000),
      healthy_s: healthyAt === undefined ? null : round((healthyAt - decidedAt) / 1000),
      desired: decision.desired,
    };
  } finally {
    if (load) clearInterval(load);
    await running?.stop();
    await queue.close();
    await system.stop('benchmark done');
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await client.end();
    await rm(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return round(s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const database = await resolveDatabase({ url: process.env.DATABASE_URL, stateDir: path.join('.tide', 'bench'), log: say });
try {
  const trials = Math.max(1, Number(process.argv[process.argv.indexOf('--trials') + 1] ?? 3) || 3);
  say(`reaction: the tide loop (5 s interval + urgent trigger on the oldest age, polled every 0.5 s), ${trials} trials`);
  const runs: Result[] = [];
  for (let i = 0; i < trials; i++) {
    const r = await run(database.url, true);
    runs.push(r);
    say(`  step -> scale-out decision ${r.decision_s} s (to ${r.desired}); decision -> new replica's first job ${r.first_job_s} s (healthy after ${r.healthy_s} s)`);
  }
  const tide = { decision_s: median(runs.map((r) => r.decision_s)), first_job_s: median(runs.map((r) => r.first_job_s)) };
  say(`  median: decision ${tide.decision_s} s, first job ${tide.first_job_s} s more`);
  say('anchor: the same loop polling every 5 s only (no urgent trigger), 1 trial');
  const anchor = await run(database.url, false);
  say(`  step -> scale-out decision ${anchor.decision_s} s (to ${anchor.desired}); decision -> new replica's first job ${anchor.first_job_s} s (healthy after ${anchor.healthy_s} s)`);
  const ratio = round(anchor.decision_s / Math.max(tide.decision_s, 0.01));
  say(`ratio: the anchor's decision takes ${ratio}x as long; targets: decision <= 2 s (${tide.decision_s <= 2 ? 'met' : 'MISSED'}), first job <= 1.5 s more (${tide.first_job_s <= 1.5 ? 'met' : 'MISSED'})`);
  if (json) {
    process.stdout.write(`${JSON.stringify({ anchor: { decision_s: anchor.decision_s, first_job_s: anchor.first_job_s }, ratio: { decision: ratio } })}\n`);
    process.stdout.write(`${JSON.stringify({ decision_s: tide.decision_s, first_job_s: tide.first_job_s })}\n`);
  }
} finally {
  await database.stop();
}
