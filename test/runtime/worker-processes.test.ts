/**
 * Workers as real processes (`node bin/tide.js worker`): several on one queue never run a job
 * twice at the same time; a SIGKILLed worker's jobs finish elsewhere within the lease bound;
 * SIGTERM drains without losing or duplicating anything.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { createRunsTable } from '../fixtures/runs.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let schema: TestSchema;
let queue: PostgresQueue;
let db: pg.Pool;
const children = new Set<ChildProcess>();

before(async () => {
  schema = await freshSchema('twp');
  queue = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, poolSize: 2 });
  await createRunsTable(schema.url, schema.schema);
  db = new pg.Pool({ connectionString: schema.url, max: 2 });
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...children].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)))));
  await db.end();
  await queue.close();
  await schema.drop();
});

interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  output: () => string;
}

/** Spawns `tide worker` and resolves once it printed its startup line. */
async function spawnWorker(queueName: string, extra: string[] = []): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    ['bin/tide.js', 'worker', '--handlers', 'test/fixtures/jobs.ts', '--queues', queueName, '--schema', schema.schema, '--poll', '100', ...extra],
    { cwd: root, env: { ...process.env, FIXTURE_SCHEMA: schema.schema }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const check = () => /tide worker \S+: queues/.test(out) && (child.stdout!.off('data', check), resolve());
    child.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`worker exited (${code}) before starting:\n${out}`)));
  });
  return { child, pid: child.pid!, exited, output: () => out };
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const stats = async (q: string) => (await queue.stats(q))[0]!;

/** Runs per job that overlap in time (must be none), and jobs that ran more than once. */
async function overlaps(jobIds: string[]): Promise<{ overlapping: number; runsPerJob: Map<string, number> }> {
  const { rows } = await db.query<{ job_id: string; started: Date; ended: Date | null }>(
    `SELECT job_id::text, started, ended FROM "${schema.schema}".runs WHERE job_id = ANY($1::bigint[]) ORDER BY job_id, started`,
    [jobIds],
  );
  let overlapping = 0;
  const runsPerJob = new Map<string, number>();
  let previous: (typeof rows)[number] | undefined;
  for (const row of rows) {
    runsPerJob.set(row.job_id, (runsPerJob.get(row.job_id) ?? 0) + 1);
    if (previous && previous.job_id === row.job_id && (previous.ended === null || previous.ended > row.started)) overlapping++;
    previous = row;
  }
  return { overlapping, runsPerJob };
}

test('three worker processes on one queue: every job runs, none twice at once, all drain with exit 0', async () => {
  const q = 'many';
  const workers = await Promise.all([0, 1, 2].map(() => spawnWorker(q, ['--concurrency', '4'])));
  const jobs = await queue.enqueueMany(Array.from({ length: 240 }, (_, i) => ({ queue: q, handler: 'record', payload: { ms: i % 7 } })));
  await until(async () => (await stats(q)).completed === 240, 30_000, 'all 240 jobs completed');
  for (const w of workers) w.child.kill('SIGTERM');
  const codes = await Promise.all(workers.map((w) => w.exited));
  assert.deepEqual(codes, [0, 0, 0]);
  const { overlapping, runsPerJob } = await overlaps(jobs.map((j) => j.id));
  assert.equal(overlapping, 0);
  assert.equal(runsPerJob.size, 240);
  assert.ok([...runsPerJob.values()].every((n) => n === 1), 'no job ran twice');
  const { rows } = await db.query<{ n: string }>(`SELECT count(DISTINCT worker)::text AS n FROM "${schema.schema}".runs WHERE job_id = ANY($1::bigint[])`, [jobs.map((j) => j.id)]);
  assert.ok(Number(rows[0]!.n) >= 2, 'the work spread over several processes');
});

test("a SIGKILLed worker's jobs finish on another worker within the lease bound", async () => {
  const q = 'kill';
  const victim = await spawnWorker(q, ['--concurrency', '4', '--lease', '2']);
  const jobs = await queue.enqueueMany(Array.from({ length: 4 }, () => ({ queue: q, handler: 'record', payload: { hangFirst: true } })));
  const ids = jobs.map((j) => j.id);
  const started = async () =>
    Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema.schema}".runs WHERE job_id = ANY($1::bigint[])`, [ids])).rows[0]!.n);
  await until(async () => (await started()) === 4, 15_000, 'the victim started the jobs');
  victim.child.kill('SIGKILL');
  const killedAt = Date.now();
  await victim.exited;
  const { rows: dead } = await db.query<{ at: Date }>('SELECT now() AS at');
  const rescuer = await spawnWorker(q, ['--concurrency', '4', '--lease', '2']);
  // lease 2 s + sweep every 1 s: well within 10 s
  await until(async () => (await stats(q)).completed === 4, 10_000, 'the jobs completed elsewhere');
  const recoveredAfter = (Date.now() - killedAt) / 1000;
  assert.ok(recoveredAfter <= 10, `recovered after ${recoveredAfter} s`);
  for (const id of ids) {
    const job = (await queue.getJob(id))!;
    assert.equal(job.state, 'completed');
    assert.equal(job.attempts, 2);
  }
  const { rows } = await db.query<{ job_id: string; attempt: number; started: Date; ended: Date | null }>(
    `SELECT job_id::text, attempt, started, ended FROM "${schema.schema}".runs WHERE job_id = ANY($1::bigint[]) ORDER BY job_id, started`,
    [ids],
  );
  assert.equal(rows.length, 8, 'each job ran twice: killed, then once elsewhere');
  for (const row of rows) {
    if (row.attempt === 1) assert.equal(row.ended, null, 'the killed run never finished');
    // the second run began only after the first holder was dead: never two live holders
    else assert.ok(row.ended !== null && row.started > dead[0]!.at);
  }
  rescuer.child.kill('SIGTERM');
  assert.equal(await rescuer.exited, 0);
});

test('SIGTERM drains: in-flight jobs finish within the grace, nothing lost or duplicated', async () => {
  const q = 'drain';
  const first = await spawnWorker(q, ['--concurrency', '4', '--grace', '20']);
  const jobs = await queue.enqueueMany(Array.from({ length: 40 }, () => ({ queue: q, handler: 'record', payload: { ms: 150 } })));
  await until(async () => (await stats(q)).completed >= 4, 15_000, 'some jobs done');
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  assert.match(first.output(), /draining/);
  const afterDrain = await stats(q);
  assert.equal(afterDrain.active, 0, 'nothing left locked after the drain');
  const second = await spawnWorker(q, ['--concurrency', '8']);
  await until(async () => (await stats(q)).completed === 40, 20_000, 'the rest completed');
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
  const { overlapping, runsPerJob } = await overlaps(jobs.map((j) => j.id));
  assert.equal(overlapping, 0);
  assert.ok([...runsPerJob.values()].every((n) => n === 1), 'each job ran exactly once');
  assert.equal(runsPerJob.size, 40);
});

test('SIGTERM with a grace shorter than the jobs releases them at once', async () => {
  const q = 'short-grace';
  const w = await spawnWorker(q, ['--concurrency', '2', '--grace', '0.1']);
  const jobs = await queue.enqueueMany(Array.from({ length: 2 }, () => ({ queue: q, handler: 'record', payload: { hangFirst: true } })));
  await until(async () => (await stats(q)).active === 2, 15_000, 'claimed');
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0);
  for (const { id } of jobs) {
    const job = (await queue.getJob(id))!;
    assert.equal(job.state, 'ready');
    assert.equal(job.lockedBy, null);
  }
  assert.match(w.output(), /released 2 unfinished job/);
});
