import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';

import { DEFAULT_BACKOFF, NO_CRASHES, afterCrash, restartDelay } from '../../src/supervisor/backoff.js';
import { type ReplicaStatus, type ServiceSpec, type UpstreamPool, Supervisor, simpleArgv } from '../../src/supervisor/supervisor.js';
import { alive } from '../helpers/tide.js';

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;

function nodeService(name: string, script: string, extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return { name, kind: 'command', command: { file: process.execPath, args: [fixture(script)] }, replicas: 1, stopGraceMs: 5_000, ...extra };
}

/** Resolves when `ready()` holds, checked on every state change and log line. */
function until(sup: Supervisor, ready: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!ready()) return;
      sup.off('state', check);
      sup.off('log', check);
      resolve();
    };
    sup.on('state', check);
    sup.on('log', check);
    check();
  });
}

/** An UpstreamPool that records what the supervisor told it, in order. */
function recordingPool(): UpstreamPool & { events: string[]; members: Set<string> } {
  const events: string[] = [];
  const members = new Set<string>();
  return {
    events,
    members,
    addUpstream(id, url) {
      events.push(`add ${id}`);
      members.add(id);
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    },
    async removeUpstream(id) {
      events.push(`remove ${id}`);
      members.delete(id);
    },
  };
}

test('backoff: 100 ms doubling to 15 s, reset after 30 s up, failed after 5 crashes in a minute', () => {
  assert.deepEqual([1, 2, 3, 4, 8, 9, 30].map((n) => restartDelay(n, DEFAULT_BACKOFF)), [100, 200, 400, 800, 12_800, 15_000, 15_000]);
  let history = NO_CRASHES;
  const delays: number[] = [];
  let now = 1_000_000;
  for (let i = 0; i < 4; i++) {
    const verdict = afterCrash(history, now - 10, now, DEFAULT_BACKOFF);
    assert.equal(verdict.action, 'restart');
    if (verdict.action === 'restart') delays.push(verdict.delayMs);
    history = verdict.history;
    now += 1_000;
  }
  assert.deepEqual(delays, [100, 200, 400, 800]);
  assert.equal(afterCrash(history, now - 10, now, DEFAULT_BACKOFF).action, 'fail', 'the fifth crash within the window fails it');
  // up for 30 s: the delay starts over, and crashes older than the window no longer count
  const later = afterCrash(history, now, now + 61_000, DEFAULT_BACKOFF);
  assert.deepEqual(later.action === 'restart' && [later.delayMs, later.history.recent.length], [100, 1]);
});

test('simple commands run without a shell; shell syntax keeps the shell', () => {
  assert.deepEqual(simpleArgv('node server.js --port 3000'), ['node', 'server.js', '--port', '3000']);
  assert.equal(simpleArgv('node a.js && node b.js'), undefined);
  assert.equal(simpleArgv('FOO=1 node a.js'), undefined);
});

test('scale out and in: ps follows, api replicas join and leave the pool, workers scaled in exit 0', { timeout: 60_000 }, async () => {
  const pool = recordingPool();
  const sup = new Supervisor({
    services: [
      nodeService('web', 'supervisor-server.mjs', { kind: 'command', listens: true, healthPath: '/health', pool, max: 4 }),
      nodeService('jobs', 'supervisor-worker.mjs', { max: 5 }),
    ],
  });
  const exits: string[] = [];
  sup.on('log', (l) => l.stream === 'tide' && l.line.startsWith('stopped') && exits.push(`${l.service}.${l.index} ${l.line}`));
  try {
    await sup.start();
    assert.deepEqual(sup.ps().services.map((s) => [s.name, s.desired, s.healthy, s.state]), [
      ['web', 1, 1, 'running'],
      ['jobs', 1, 1, 'running'],
    ]);
    await Promise.all([sup.scale('web', 3), sup.scale('jobs', 4)]);
    const ps = sup.ps();
    assert.deepEqual(ps.replicas.filter((r) => r.service === 'web').map((r) => [r.index, r.state]), [[1, 'healthy'], [2, 'healthy'], [3, 'healthy']]);
    assert.equal(ps.replicas.filter((r) => r.service === 'jobs' && r.state === 'healthy').length, 4);
    assert.deepEqual([...pool.members].sort(), ['web.1', 'web.2', 'web.3']);
    for (const r of ps.replicas) assert.ok(r.pid && alive(r.pid));
    const ports = ps.replicas.filter((r) => r.service === 'web').map((r) => r.port);
    assert.equal(new Set(ports).size, 3, 'each api replica has its own port');
    assert.equal(ps.services.find((s) => s.name === 'jobs')?.scaledBy, 'manual');

    // a replica without a health path counts as healthy once spawned; wait until each worker
    // has installed its SIGTERM handler (its "up" line), or a slow start dies by the signal
    await until(sup, () => sup.logs('jobs').filter((l) => /^worker \d+ up$/.test(l.line)).length >= 4);
    const before = ps.replicas.map((r) => r.pid!);
    await Promise.all([sup.scale('web', 1), sup.scale('jobs', 2)]);
    assert.deepEqual(sup.ps().replicas.map((r) => r.id), ['web.1', 'jobs.1', 'jobs.2'], 'the highest-numbered replicas go first');
    assert.deepEqual([...pool.members], ['web.1']);
    assert.deepEqual(exits.sort(), ['jobs.3 stopped (code 0)', 'jobs.4 stopped (code 0)', 'web.2 stopped (code 0)', 'web.3 stopped (code 0)']);
    const logs = sup.logs('jobs').filter((l) => l.line === 'drained').map((l) => l.index);
    assert.deepEqual(logs.sort(), [3, 4], 'scaled-in workers finished their work before exiting');
    assert.throws(() => sup.scale('web', 5), { code: 'TIDE_SUPERVISOR_SCALE_INVALID' });
    assert.throws(() => sup.scale('nope', 1), { code: 'TIDE_SUPERVISOR_UNKNOWN_SERVICE' });
    await sup.shutdown();
    for (const pid of before) assert.equal(alive(pid), false, `pid ${pid} is gone after shutdown`);
    assert.deepEqual(sup.ps().replicas, []);
  } finally {
    await sup.shutdown();
  }
});

test('a SIGKILLed replica leaves the pool at once and comes back after the backoff, healthy before it rejoins', { timeout: 60_000 }, async () => {
  const pool = recordingPool();
  const states: string[] = [];
  const sup = new Supervisor({
    services: [nodeService('web', 'supervisor-server.mjs', { listens: true, healthPath: '/health', pool })],
    backoff: { initialMs: 50 },
  });
  sup.on('state', (s: ReplicaStatus) => states.push(s.state));
  try {
    await sup.start();
    const first = sup.ps().replicas[0]!;
    states.length = 0;
    pool.events.length = 0;
    process.kill(first.pid!, 'SIGKILL');
    await until(sup, () => sup.ps().replicas[0]?.state === 'healthy' && sup.ps().replicas[0]?.restarts === 1);
    const second = sup.ps().replicas[0]!;
    assert.deepEqual(states, ['crashed', 'backoff', 'starting', 'healthy']);
    assert.deepEqual(pool.events, ['remove web.1', 'add web.1'], 'out of the pool before the restart, back only once healthy');
    assert.equal(second.restarts, 1);
    assert.equal(second.lastExit?.signal, 'SIGKILL');
    const res = await fetch(`http://127.0.0.1:${second.port}/health`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  } finally {
    await sup.shutdown();
  }
});

test('a port another process holds is not mistaken for the replica: a health answer naming another pid is not healthy', { timeout: 30_000 }, async () => {
  // Another process answers /health on the replica's port as a replica would, with its own pid.
  const foreign = createServer((_req, res) => res.end(JSON.stringify({ ok: true, pid: process.pid })));
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  const pool = recordingPool();
  const states: string[] = [];
  const sup = new Supervisor({
    services: [nodeService('api', 'supervisor-server.mjs', { listens: true, basePort: (foreign.address() as AddressInfo).port, healthPath: '/health', pool })],
    backoff: { initialMs: 10, maxMs: 40, failAfter: 3, failWindowMs: 60_000 },
  });
  sup.on('state', (s: ReplicaStatus) => states.push(s.state));
  try {
    void sup.start();
    // The replica cannot listen there and exits, again and again: never healthy, never in the pool.
    await until(sup, () => sup.ps().services.find((s) => s.name === 'api')?.state === 'failed');
    assert.ok(!states.includes('healthy'), states.join(' '));
    assert.deepEqual(pool.events, []);
  } finally {
    await sup.shutdown();
    foreign.close();
  }
});

test('a service that keeps crashing is marked failed; the others keep running', { timeout: 60_000 }, async () => {
  const sup = new Supervisor({
    services: [nodeService('broken', 'supervisor-crash.mjs', { replicas: 1 }), nodeService('jobs', 'supervisor-worker.mjs')],
    backoff: { initialMs: 10, maxMs: 40, failAfter: 4, failWindowMs: 60_000 },
  });
  try {
    void sup.start();
    await until(sup, () => sup.ps().services.find((s) => s.name === 'broken')?.state === 'failed');
    const ps = sup.ps();
    const broken = ps.replicas.find((r) => r.service === 'broken')!;
    assert.equal(broken.state, 'failed');
    assert.equal(broken.restarts, 3, 'three restarts, then the fourth crash fails it');
    assert.equal(broken.lastExit?.code, 3);
    await until(sup, () => sup.ps().services.find((s) => s.name === 'jobs')?.state === 'running');
    const jobs = sup.ps().replicas.find((r) => r.service === 'jobs')!;
    assert.ok(jobs.pid && alive(jobs.pid));
    assert.ok(sup.logs('broken').some((l) => l.line === 'boom'), 'its output is kept for tide logs');
    assert.ok(sup.logs('broken').some((l) => l.stream === 'tide' && l.line.includes('marked failed')));
  } finally {
    await sup.shutdown();
  }
});

test('a replica that ignores SIGTERM is SIGKILLed after the stop grace', { timeout: 30_000 }, async () => {
  const sup = new Supervisor({ services: [nodeService('stubborn', 'supervisor-stubborn.mjs', { stopGraceMs: 300 })] });
  try {
    await sup.start();
    await until(sup, () => sup.logs('stubborn').some((l) => l.line === 'up'));
    const pid = sup.ps().replicas[0]!.pid!;
    await sup.scale('stubborn', 0);
    assert.equal(alive(pid), false);
    assert.ok(sup.logs('stubborn').some((l) => l.line === 'stopped (signal SIGKILL)'));
  } finally {
    await sup.shutdown();
  }
});

test('a shell command runs in its own process group and none of it survives a stop', { timeout: 30_000 }, async () => {
  const script = fixture('supervisor-worker.mjs');
  const sup = new Supervisor({
    services: [{ name: 'sh', kind: 'command', command: { shell: `echo starting && "${process.execPath}" "${script}"` }, replicas: 1, stopGraceMs: 2_000 }],
  });
  try {
    await sup.start();
    await until(sup, () => sup.logs('sh').some((l) => l.line.startsWith('worker')));
    const shellPid = sup.ps().replicas[0]!.pid!;
    await sup.shutdown();
    assert.equal(alive(shellPid), false);
    // the node grandchild shares the shell's process group: signalling the group reached it
    assert.throws(() => process.kill(-shellPid, 0), { code: 'ESRCH' });
  } finally {
    await sup.shutdown();
  }
});

test('replicas of a SIGKILLed supervisor stop by themselves (orphan guard)', { timeout: 60_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const { createInterface } = await import('node:readline');
  const parent = spawn(process.execPath, ['--import', 'tsx', fixture('supervisor-parent.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let pids: number[] = [];
  try {
    const line = await new Promise<string>((resolve) => createInterface({ input: parent.stdout }).once('line', resolve));
    pids = JSON.parse(line) as number[];
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive));
    const exited = new Promise((resolve) => parent.once('exit', resolve));
    parent.kill('SIGKILL');
    await exited;
    // the guard checks once a second; wait on the processes themselves, not a fixed time
    while (pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  } finally {
    parent.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
});

test('restart brings a failed replica back (here it fails again: the command is still broken)', { timeout: 30_000 }, async () => {
  const sup = new Supervisor({
    services: [nodeService('broken', 'supervisor-crash.mjs')],
    backoff: { initialMs: 5, maxMs: 10, failAfter: 2 },
  });
  try {
    await sup.start();
    // without a health path a replica counts as healthy once spawned: wait for the crashes
    await until(sup, () => sup.ps().services[0]!.state === 'failed');
    const pidsSeen = new Set<number>();
    sup.on('state', (s: ReplicaStatus) => s.pid && pidsSeen.add(s.pid));
    await sup.restart('broken');
    assert.ok(pidsSeen.size >= 1, 'a new process was started for the failed replica');
    await until(sup, () => sup.ps().services[0]!.state === 'failed');
    assert.equal(sup.ps().replicas.length, 1);
  } finally {
    await sup.shutdown();
  }
});

test('a stop leaves no grace timer behind: with a 60 s grace and a replica crash-looping, the supervisor process exits by itself once its replicas are gone', { timeout: 30_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', fixture('supervisor-stop.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  try {
    // the test's own timeout (30 s, under the 60 s grace) is the bound: a lingering timer fails it
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 0);
    assert.equal(out.trim(), 'stopped 0', 'every replica stopped, none left');
  } finally {
    child.kill('SIGKILL');
  }
});

test('shutdown({ now }) during a drain: no waiting out the grace; SIGTERM then SIGINT (a worker releases its jobs), SIGKILL for what still runs', { timeout: 30_000 }, async () => {
  const pool = recordingPool();
  let removeCalled!: () => void;
  const removing = new Promise<void>((resolve) => (removeCalled = resolve));
  // a balancer whose drain never ends (a request in flight that never finishes)
  const stuckPool: UpstreamPool = { addUpstream: (id, url) => pool.addUpstream(id, url), removeUpstream: () => (removeCalled(), new Promise(() => undefined)) };
  const sup = new Supervisor({
    services: [
      nodeService('stubborn', 'supervisor-stubborn.mjs', { stopGraceMs: 60_000 }),
      { ...nodeService('web', 'supervisor-server.mjs', { stopGraceMs: 60_000 }), listens: true, healthPath: '/health', pool: stuckPool },
    ],
  });
  try {
    await sup.start();
    await until(sup, () => sup.logs('stubborn').some((l) => l.line === 'up'));
    const pids = sup.ps().replicas.map((r) => r.pid!);
    const draining = sup.shutdown();
    await removing;
    // the SIGTERM reached it and was ignored: a second signal sent before its handler ran
    // would end it without that line
    await until(sup, () => sup.logs('stubborn').some((l) => l.line === 'ignoring SIGTERM'));
    await sup.shutdown({ now: true });
    await draining;
    for (const pid of pids) assert.equal(alive(pid), false);
    // the stubborn replica ignores SIGTERM; the second signal ended it (or, on a machine too
    // loaded for it to exit within the short wait, the SIGKILL that follows it)
    const lines = sup.logs('stubborn').map((l) => l.line);
    assert.ok(lines.includes('stopped (signal SIGINT)') || lines.includes('still running after a stop now; sending SIGKILL'), JSON.stringify(lines));
  } finally {
    await sup.shutdown({ now: true });
  }
});

test('a replica that crashes shows the last lines of its error in ps', { timeout: 30_000 }, async () => {
  const sup = new Supervisor({ services: [nodeService('broken', 'supervisor-crash.mjs')], backoff: { initialMs: 10, maxMs: 10, failAfter: 2 } });
  try {
    void sup.start();
    await until(sup, () => sup.ps().replicas[0]?.state === 'failed' && (sup.ps().replicas[0]?.lastError?.length ?? 0) > 0);
    assert.deepEqual(sup.ps().replicas[0]!.lastError, ['boom']);
    assert.equal(sup.ps().services[0]!.state, 'failed');
  } finally {
    await sup.shutdown();
  }
});
