/**
 * CLI start-up benchmark: how long `tide` takes to answer, against bare node in the same run.
 *
 * Method: each command is a fresh process from this Node (`process.execPath`), run in a temp
 * directory with no `tide up` in it: `node -e 0` (the anchor), `tide version`, `tide ps` (which
 * finds nothing running and says so, exit 1), and, for comparison, `tide version` as it ran
 * before the build (`node --import tsx` on the TypeScript sources). Rounds rotate the order;
 * each figure is the median of the rounds (`--rounds N`, default 15) of wall time from spawn
 * to exit. Then a replica's start: `tide worker` spawned with one job already waiting, from
 * spawn to the job's started_at (median of `--replicas N`, default 5; needs DATABASE_URL, or
 * skipped), against `node -e 0`.
 *
 * Usage: npm run bench:cli [-- --json] [--rounds N] [--replicas N]. Target: `tide version`
 * within 0.25 s of bare node. The last line with --json:
 * {"node_ms","version_ms","ps_ms","tsx_version_ms","version_delta_s","ps_delta_s",
 *  "version_ratio","ps_ratio","version_target_met","replica_first_job_ms"}.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { dropSchema } from '../src/db/migrate.js';
import { createPostgresQueue } from '../src/runtime/queue/postgres.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'tide.js');
const json = process.argv.includes('--json');
const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** Wall ms from spawn to exit of `node ...args` in `cwd`. */
function timeRun(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, args, { cwd, env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(performance.now() - start));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round1 = (x: number) => Math.round(x * 10) / 10;

/** Spawn of `tide worker` to the first job it starts, with the job waiting before the spawn. */
async function replicaFirstJob(databaseUrl: string, cwd: string): Promise<number> {
  const schema = `bench_cli_${randomBytes(4).toString('hex')}`;
  const queue = await createPostgresQueue({ connectionString: databaseUrl, schema, poolSize: 2 });
  try {
    const { id } = await queue.enqueue({ queue: 'default', handler: 'sleep', payload: { ms: 0 } });
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, [bin, 'worker', '--schema', schema, '--poll', '50'], { cwd, env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: 'ignore' });
    try {
      for (;;) {
        const job = await queue.getJob(id);
        if (job?.startedAt) return job.startedAt - spawnedAt;
        if (Date.now() - spawnedAt > 60_000) throw new Error('the worker started no job within 60 s');
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    await queue.close();
    await dropSchema(databaseUrl, schema);
  }
}

async function main(): Promise<void> {
  const rounds = flag('--rounds', 15);
  const replicas = flag('--replicas', 5);
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-bench-cli-'));
  try {
    const cases: Record<string, string[]> = {
      node: ['-e', '0'],
      version: [bin, 'version'],
      ps: [bin, 'ps'],
      tsx_version: ['--import', 'tsx', '-e', `import(${JSON.stringify(path.join(root, 'src', 'cli', 'main.ts'))}).then((m) => m.main(['version']))`],
    };
    // tsx resolves from the repository when run as a loader from elsewhere
    const env = { ...process.env, NODE_PATH: path.join(root, 'node_modules') };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
    const names = Object.keys(cases);
    for (const name of names) await timeRun(cases[name]!, name === 'tsx_version' ? root : dir, env); // warm the file cache
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + r) % names.length]!;
        times[name]!.push(await timeRun(cases[name]!, name === 'tsx_version' ? root : dir, env));
      }
      if (!json && (r + 1) % 5 === 0) say(`  round ${r + 1}/${rounds}`);
    }
    const m = Object.fromEntries(names.map((n) => [n, median(times[n]!)])) as Record<string, number>;
    let replica: number | null = null;
    if (process.env.DATABASE_URL) {
      const runs: number[] = [];
      for (let i = 0; i < replicas; i++) runs.push(await replicaFirstJob(process.env.DATABASE_URL, dir));
      replica = median(runs);
    } else {
      say('DATABASE_URL is not set: skipping the replica start (spawn to first job)');
    }
    const result = {
      node_ms: round1(m.node!),
      version_ms: round1(m.version!),
      ps_ms: round1(m.ps!),
      tsx_version_ms: round1(m.tsx_version!),
      version_delta_s: Math.round(m.version! - m.node!) / 1000,
      ps_delta_s: Math.round(m.ps! - m.node!) / 1000,
      version_ratio: Math.round((m.version! / m.node!) * 100) / 100,
      ps_ratio: Math.round((m.ps! / m.node!) * 100) / 100,
      version_target_met: m.version! - m.node! <= 250,
      replica_first_job_ms: replica === null ? null : Math.round(replica),
    };
    say(`median of ${rounds} rounds (ms): node -e 0 ${result.node_ms}, tide version ${result.version_ms} (+${result.version_delta_s} s, x${result.version_ratio}), tide ps ${result.ps_ms} (+${result.ps_delta_s} s, x${result.ps_ratio}); before the build (tsx on the sources) tide version ${result.tsx_version_ms}`);
    if (replica !== null) say(`tide worker: spawn to its first job ${result.replica_first_job_ms} ms (median of ${replicas})`);
    say(`target: tide version within 0.25 s of bare node: ${result.version_target_met ? 'met' : 'NOT met'}`);
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
