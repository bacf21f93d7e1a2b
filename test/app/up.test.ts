import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import type { PsResult } from '../../src/supervisor/supervisor.js';
import { freshSchema } from '../helpers/db.js';
import { TIDE_BIN, alive, runTide, stopIfAlive, upDetached } from '../helpers/tide.js';

const tide = (cwd: string, args: string[]) => runTide(args, { cwd, env: process.env, timeout: 120_000 });

test('tide up -d, scale workers in under load (no job lost, exit 0), ps --json, logs, rolling restart under POSTs (none fails), down: nothing left behind', { timeout: 240_000 }, async () => {
  const db = await freshSchema('sup');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-up-'));
  await writeFile(
    path.join(dir, 'tide.yaml'),
    [
      'project: uptest',
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 1 } }',
      'control: { port: 0 }',
      'services:',
      '  api: { kind: api, replicas: 1, max: 2, stop_grace_seconds: 10 }',
      '  worker: { kind: worker, replicas: 3, min: 1, max: 4, concurrency: 10, stop_grace_seconds: 10 }',
      '',
    ].join('\n'),
  );
  let upPid: number | undefined;
  const pids = new Set<number>();
  try {
    const { run: up, state } = await upDetached(dir);
    assert.match(up.stdout, /runs in the background/);
    upPid = state.pid;
    assert.ok(!JSON.stringify(state).includes(new URL(db.url).password || '\u0000'), 'control.json holds no secret');

    // wait until every replica is healthy: ps --json is what a script reads
    let ps: PsResult & { balancer: string };
    for (;;) {
      ps = JSON.parse((await tide(dir, ['ps', '--json'])).stdout) as typeof ps;
      if (ps.services.every((s) => s.state === 'running')) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    for (const r of ps.replicas) pids.add(r.pid!);
    assert.deepEqual(ps.services.map((s) => [s.name, s.healthy]), [['api', 1], ['worker', 3]]);

    // 200 jobs of 200 ms through the balancer, then scale the workers in while they run
    const jobs = Array.from({ length: 200 }, (_, i) => ({ handler: 'sleep', payload: { ms: 200 }, idempotency_key: `job-${i}` }));
    const res = await fetch(`${ps.balancer}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs }) });
    assert.equal(res.status, 202, await res.text());
    const scaled = await tide(dir, ['scale', 'worker=1']);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.match(scaled.stdout, /worker: 1\/1 healthy/);

    const queue = await createPostgresQueue({ connectionString: db.url, schema: db.schema, migrate: false, poolSize: 1 });
    try {
      let stats = await queue.stats();
      while (stats.reduce((n, s) => n + s.ready + s.active, 0) > 0) {
        await new Promise((r) => setTimeout(r, 250));
        stats = await queue.stats();
      }
      assert.equal(stats.reduce((n, s) => n + s.completionsTotal, 0), 200, 'every job completed: none lost to the scale-in');
      assert.equal(stats.reduce((n, s) => n + s.dead, 0), 0);
    } finally {
      await queue.close();
    }
    const logs = await tide(dir, ['logs', 'worker', '--json', '-n', '2000']);
    const stops = logs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { index: number; stream: string; line: string }).filter((l) => l.stream === 'tide' && l.line.startsWith('stopped'));
    assert.deepEqual(stops.map((l) => l.line), ['stopped (code 0)', 'stopped (code 0)'], 'the two scaled-in workers exited 0');

    // a rolling restart of the real API under a stream of POSTs through the balancer: none fails
    let streaming = true;
    const outcome = { accepted: 0, failed: [] as string[] };
    const clients = Array.from({ length: 4 }, async () => {
      while (streaming) {
        try {
          const r = await fetch(`${ps.balancer}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"handler":"sleep","payload":{"ms":1}}' });
          await r.arrayBuffer();
          if (r.status === 202) outcome.accepted++;
          else outcome.failed.push(`status ${r.status}`);
        } catch (err) {
          outcome.failed.push(String(err));
        }
      }
    });
    const restarted = await tide(dir, ['restart', 'api']);
    streaming = false;
    await Promise.all(clients);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.deepEqual(outcome.failed, []);
    assert.ok(outcome.accepted > 0);
    const table = await tide(dir, ['ps']);
    assert.match(table.stdout, /^SERVICE\s+KIND\s+HEALTHY/m);
    assert.match(table.stdout, /worker\s+worker\s+1\s+1\s+1\.\.4\s+running\s+manual/);
    for (const r of (JSON.parse((await tide(dir, ['ps', '--json'])).stdout) as PsResult).replicas) pids.add(r.pid!);

    const down = await tide(dir, ['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /stopped/);
    assert.equal(alive(upPid), false);
    for (const pid of pids) assert.equal(alive(pid), false, `replica pid ${pid} is gone`);
    const notRunning = await tide(dir, ['ps']);
    assert.equal(notRunning.code, 1);
    assert.match(notRunning.stderr, /TIDE_SUPERVISOR_NOT_RUNNING/);
  } finally {
    stopIfAlive(upPid);
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  }
});

test('tide up with a bad config names the file, line and field, and starts nothing', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-up-'));
  try {
    await writeFile(path.join(dir, 'tide.yaml'), ['project: bad', 'services:', '  worker:', '    kind: worker', '    replicas: many', ''].join('\n'));
    const result = await tide(dir, ['up']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /TIDE_CONFIG_INVALID/);
    assert.match(result.stderr, /tide\.yaml:5/);
    assert.match(result.stderr, /services\.worker\.replicas/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('foreground tide up: Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops everything, exit 0', { timeout: 180_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const db = await freshSchema('sup');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-up-'));
  await writeFile(
    path.join(dir, 'tide.yaml'),
    [
      'project: fg',
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      'balancer: { host: 127.0.0.1, port: 0 }',
      'control: { port: 0 }',
      'services:',
      '  api: { kind: api, replicas: 1, stop_grace_seconds: 5 }',
      '  worker: { kind: worker, replicas: 1, stop_grace_seconds: 5 }',
      '',
    ].join('\n'),
  );
  // detached: its own process group, standing in for a terminal's foreground job
  const up = spawn(process.execPath, [TIDE_BIN, 'up', '--no-color'], { cwd: dir, env: process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  up.stdout.on('data', (c: Buffer) => (output += c.toString()));
  up.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
  let pids: number[] = [];
  try {
    await new Promise<void>((resolve) => {
      const check = () => /tide \| up: /.test(output) && (up.stderr.off('data', check), resolve());
      up.stderr.on('data', check);
    });
    pids = (JSON.parse((await tide(dir, ['ps', '--json'])).stdout) as PsResult).replicas.map((r) => r.pid!);
    assert.equal(pids.length, 2);
    assert.match(output, /api\.1 +\| /, 'replica output is prefixed with its name');
    process.kill(-up.pid!, 'SIGINT');
    assert.equal(await exited, 0, output);
    assert.match(output, /tide \| stopped/);
    for (const pid of pids) assert.equal(alive(pid), false, `replica pid ${pid} is gone`);
  } finally {
    if (up.exitCode === null) process.kill(-up.pid!, 'SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  }
});
