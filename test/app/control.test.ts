import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { ControlClient, connectControl, readControlState, removeControlState, writeControlState } from '../../src/app/client.js';
import { isLoopback } from '../../src/net/loopback.js';
import { startControl, targetGroups, tokenMatches } from '../../src/app/control.js';
import { type LogLine, type PsResult, type ServiceSpec, Supervisor } from '../../src/supervisor/supervisor.js';

const worker = new URL('../fixtures/supervisor-worker.mjs', import.meta.url).pathname;

function jobs(): ServiceSpec {
  return { name: 'jobs', kind: 'command', command: { file: process.execPath, args: [worker] }, replicas: 1, max: 3, stopGraceMs: 5_000 };
}

test('loopback detection and the constant-time token check', () => {
  assert.deepEqual(['127.0.0.1', '127.0.0.2', '::1', 'localhost', 'LocalHost', '[::1]', '::ffff:127.0.0.1', '[::ffff:127.1.2.3]'].map(isLoopback), [true, true, true, true, true, true, true, true]);
  assert.deepEqual(['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', '::ffff:10.0.0.1', '128.0.0.1', 'localhost.example.com'].map(isLoopback), [false, false, false, false, false, false, false]);
  assert.equal(tokenMatches('s3cret-token-abcdef', 's3cret-token-abcdef'), true);
  assert.equal(tokenMatches('s3cret', 's3cret-token-abcdef'), false);
});

test('control API on loopback: ps, scale (all or nothing), restart, logs with follow, down', { timeout: 60_000 }, async () => {
  const sup = new Supervisor({ services: [jobs()] });
  let downCalled = false;
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-control-'));
  const control = await startControl({ target: sup, port: 0, onDown: () => (downCalled = true), info: () => ({ project: 'demo' }) });
  try {
    await sup.start();
    await writeControlState(stateDir, { url: control.url, pid: process.pid, startedAt: Date.now() });
    assert.equal((await stat(path.join(stateDir, 'control.json'))).mode & 0o777, 0o600);
    const client = await connectControl({ stateDir });

    const ps = await client.request<PsResult & { project: string }>('GET', '/v1/ps');
    assert.equal(ps.project, 'demo');
    assert.deepEqual(ps.services.map((s) => [s.name, s.desired, s.state, s.pausedUntil]), [['jobs', 1, 'running', null]]);

    const scaled = await client.request<{ services: Array<{ desired: number; scaledBy: string }> }>('POST', '/v1/scale', { replicas: { jobs: 3 } });
    assert.deepEqual(scaled.services.map((s) => [s.desired, s.scaledBy]), [[3, 'manual']]);
    await sup.scale('jobs', 3, { by: 'autoscaler' });
    const after = (await client.request<PsResult>('GET', '/v1/ps')).services[0]!;
    assert.equal(after.scaledBy, 'autoscaler');
    assert.ok(after.manualScaledAt !== null && after.manualScaledAt <= after.scaledAt!, 'the manual scale time survives an autoscaler scale');
    assert.equal((await client.request<PsResult>('GET', '/v1/ps')).replicas.length, 3);

    await assert.rejects(client.request('POST', '/v1/scale', { replicas: { jobs: 1, nope: 2 } }), { code: 'TIDE_SUPERVISOR_UNKNOWN_SERVICE' });
    await assert.rejects(client.request('POST', '/v1/scale', { replicas: { jobs: 9 } }), { code: 'TIDE_SUPERVISOR_SCALE_INVALID' });
    await assert.rejects(client.request('POST', '/v1/scale', { replicas: 3 }), { code: 'TIDE_CONTROL_BAD_REQUEST' });
    assert.equal((await client.request<PsResult>('GET', '/v1/ps')).replicas.length, 3, 'a refused scale changed nothing');

    const before = new Set(sup.ps().replicas.map((r) => r.pid));
    await client.request('POST', '/v1/restart', { service: 'jobs' });
    assert.ok(sup.ps().replicas.every((r) => !before.has(r.pid)));

    // the fresh replicas print as they start: wait (on log events) until there are 5 lines to tail
    await new Promise<void>((resolve) => {
      const check = () => sup.logs('jobs', 5).length >= 5 && (sup.off('log', check), resolve());
      sup.on('log', check);
      check();
    });
    const tail: LogLine[] = [];
    await client.logs({ service: 'jobs', tail: 5 }, (l) => tail.push(l));
    assert.equal(tail.length, 5);
    assert.ok(tail.every((l) => l.service === 'jobs'));

    // follow: lines printed after the call arrive on the open stream
    const abort = new AbortController();
    const followed: LogLine[] = [];
    const following = client.logs({ service: 'jobs', tail: 0, follow: true }, (l) => {
      followed.push(l);
      if (followed.length === 3) abort.abort();
    }, abort.signal);
    await following;
    assert.equal(followed.length, 3);

    await client.request('POST', '/v1/down');
    assert.equal(downCalled, true);
  } finally {
    await control.close();
    await sup.shutdown();
    await removeControlState(stateDir);
    assert.equal(await readControlState(stateDir), undefined);
    await rm(stateDir, { recursive: true, force: true });
  }
});

test('control API bound to 0.0.0.0 (non-loopback) refuses a tokenless call from 127.0.0.1 with 401', { timeout: 30_000 }, async () => {
  const sup = new Supervisor({ services: [jobs()] });
  await assert.rejects(startControl({ target: sup, host: '0.0.0.0', port: 0, onDown: () => undefined }), { code: 'TIDE_CONTROL_TOKEN_REQUIRED' });
  const token = 'a-control-token-for-tests';
  const control = await startControl({ target: sup, host: '0.0.0.0', port: 0, token, onDown: () => undefined });
  try {
    const res = await fetch(`${control.url}/v1/ps`);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'TIDE_CONTROL_UNAUTHORIZED');
    await assert.rejects(new ControlClient(control.url, 'wrong-token').request('GET', '/v1/ps'), { code: 'TIDE_CONTROL_UNAUTHORIZED' });
    const ps = await new ControlClient(control.url, token).request<PsResult>('GET', '/v1/ps');
    assert.deepEqual(ps.services.map((s) => s.name), ['jobs']);
  } finally {
    await control.close();
    await sup.shutdown();
  }
});

test('a client finds no tide up: TIDE_SUPERVISOR_NOT_RUNNING', async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-control-'));
  try {
    await assert.rejects(connectControl({ stateDir }), { code: 'TIDE_SUPERVISOR_NOT_RUNNING' });
    await writeControlState(stateDir, { url: 'http://127.0.0.1:9', pid: 1, startedAt: 0 });
    const client = await connectControl({ stateDir });
    await assert.rejects(client.request('GET', '/v1/ps'), { code: 'TIDE_SUPERVISOR_NOT_RUNNING' });
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});

test('GET /v1/targets groups: one per replica with a port, labelled for the exported relabelling; stopped replicas and portless ones left out', () => {
  const replica = (id: string, service: string, port: number | null, state: PsResult['replicas'][number]['state']) =>
    ({ id, service, index: 1, pid: 1, port, state, restarts: 0, uptimeSeconds: 1, cpuSeconds: null, rssBytes: null, lastExit: null }) as PsResult['replicas'][number];
  const ps = {
    services: [
      { name: 'api', kind: 'api' },
      { name: 'worker', kind: 'worker' },
    ],
    replicas: [replica('api-1', 'api', 4001, 'healthy'), replica('worker-1', 'worker', 4002, 'crashed'), replica('worker-2', 'worker', 4003, 'stopped'), replica('cmd-1', 'cmd', null, 'healthy')],
  } as unknown as PsResult;
  assert.deepEqual(targetGroups(ps, 'shop'), [
    { targets: ['127.0.0.1:4001'], labels: { __meta_tide_project: 'shop', __meta_tide_service: 'api', __meta_tide_kind: 'api', __meta_tide_replica: 'api-1', __meta_tide_state: 'healthy' } },
    { targets: ['127.0.0.1:4002'], labels: { __meta_tide_project: 'shop', __meta_tide_service: 'worker', __meta_tide_kind: 'worker', __meta_tide_replica: 'worker-1', __meta_tide_state: 'crashed' } },
  ]);
});

test('GET /metrics serves the autoscaler registry behind the token rules; POST /v1/down passes on {"now": true}', { timeout: 30_000 }, async () => {
  const { Gauge, Registry } = await import('prom-client');
  const registry = new Registry();
  new Gauge({ name: 'tide_controller_desired_replicas_test', help: 'a series of the autoscaler', registers: [registry] }).set(3);
  const sup = new Supervisor({ services: [jobs()] });
  const token = 'a-control-token-for-tests';
  const downs: Array<{ now: boolean }> = [];
  const control = await startControl({
    target: sup,
    host: '0.0.0.0',
    port: 0,
    token,
    onDown: (down) => downs.push(down),
    metrics: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  });
  try {
    assert.equal((await fetch(`${control.url}/metrics`)).status, 401, 'no token, no metrics');
    const res = await fetch(`${control.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await res.text(), /^tide_controller_desired_replicas_test 3$/m);
    const client = new ControlClient(control.url, token);
    await client.request('POST', '/v1/down', { now: true });
    await client.request('POST', '/v1/down');
    for (let i = 0; downs.length < 2 && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(downs, [{ now: true }, { now: false }]);
  } finally {
    await control.close();
    await sup.shutdown();
  }
});
