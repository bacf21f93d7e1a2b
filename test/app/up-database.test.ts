/**
 * `tide up` with its embedded PostgreSQL, as a new user runs it (no DATABASE_URL): the
 * database shown as supervised in `tide ps` (text and --json), the balancer's view of each api
 * replica, a replica that cannot start with the last lines of its error in `tide up -d`'s
 * answer and in `tide ps`, the autoscaler metrics route, and `tide down` ending everything it
 * started (the crash-looping replica and the database included).
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import type { DatabaseStatus } from '../../src/supervisor/database.js';
import type { PsResult } from '../../src/supervisor/supervisor.js';
import { alive, runTide, stopIfAlive } from '../helpers/tide.js';

test('tide up with the embedded database: ps tells the database and the balancer view, a replica that cannot start says why, down ends everything', { timeout: 240_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-up-db-'));
  // as root the server runs as the postgres user, which must reach the state directory
  await chmod(dir, 0o755);
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const tide = (args: string[]) => runTide(args, { cwd: dir, env, timeout: 120_000 });
  await writeFile(path.join(dir, 'broken.mjs'), "console.error('loading settings');\nconsole.error('cannot open settings.json: no such file');\nprocess.exit(2);\n");
  await writeFile(
    path.join(dir, 'tide.yaml'),
    [
      'project: updb',
      'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 0.5 } }',
      'control: { port: 0 }',
      'services:',
      '  api: { kind: api, replicas: 1, max: 2, stop_grace_seconds: 30 }',
      `  broken: { kind: command, command: "${process.execPath} ${path.join(dir, 'broken.mjs')}", replicas: 1, stop_grace_seconds: 30 }`,
      '',
    ].join('\n'),
  );
  let upPid: number | undefined;
  const pids = new Set<number>();
  try {
    const up = await tide(['up', '-d']);
    // a command replica counts as healthy once spawned: `up -d` may answer before its first exit
    if (up.code === 1) assert.match(up.stdout, /broken\.1 .*its last error lines:\n {2}loading settings\n {2}cannot open settings\.json: no such file/, up.stdout);

    type Ps = PsResult & { pid: number; database: DatabaseStatus & { embedded: boolean } };
    let ps: Ps;
    for (;;) {
      ps = JSON.parse((await tide(['ps', '--json'])).stdout) as Ps;
      if (ps.services.find((s) => s.name === 'api')?.state === 'running') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    upPid = ps.pid;
    assert.equal(ps.database.embedded, true);
    assert.equal(ps.database.supervised, true);
    assert.equal(ps.database.state, 'running');
    assert.ok(ps.database.pid && alive(ps.database.pid));
    const dbPid = ps.database.pid;
    const api = ps.replicas.find((r) => r.service === 'api')!;
    assert.equal(api.balancer, 'in-rotation');
    assert.equal(ps.services.find((s) => s.name === 'api')!.inRotation, 1);
    const broken = ps.replicas.find((r) => r.service === 'broken')!;
    assert.ok(broken.lastError?.includes('cannot open settings.json: no such file'), JSON.stringify(broken));
    for (const r of ps.replicas) if (r.pid) pids.add(r.pid);

    // the text shows a replica's last error lines while it is down: between two crashes the
    // broken one is briefly up (a command replica is healthy once spawned), so look again, bounded
    let text = await tide(['ps']);
    for (let tries = 0; !/cannot open settings\.json: no such file/.test(text.stdout) && tries < 20; tries++) {
      await new Promise((r) => setTimeout(r, 250));
      text = await tide(['ps']);
    }
    assert.match(text.stdout, /^DATABASE embedded, running \(pid \d+, port \d+/m);
    assert.match(text.stdout, /^api\.1 +\d+ +\d+ +healthy +in-rotation /m);
    assert.match(text.stdout, /cannot open settings\.json: no such file/);

    // the autoscaler's metrics route answers under the same rules (loopback: no token); no scale: block, no series
    const state = JSON.parse(await (await import('node:fs/promises')).readFile(path.join(dir, '.tide', 'control.json'), 'utf8')) as { url: string };
    const metrics = await fetch(`${state.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /no autoscaler runs here/);

    // down: everything it started ends, the crash-looping replica and the database included,
    // without waiting out the 30 s stop grace (the test's bound holds it to the drain)
    const down = await tide(['down']);
    assert.equal(down.code, 0, down.stdout + down.stderr);
    assert.equal(alive(upPid), false);
    for (const pid of pids) assert.equal(alive(pid), false, `replica ${pid} is gone`);
    for (let i = 0; alive(dbPid) && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(dbPid), false, 'the embedded PostgreSQL is stopped');
  } finally {
    stopIfAlive(upPid);
    await rm(dir, { recursive: true, force: true });
  }
});
