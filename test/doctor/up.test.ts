/**
 * `tide doctor` against a real `tide up`: it finds the services, the balancer and the API
 * replicas through the control API by itself. The workers are scaled to zero and jobs are
 * enqueued through the balancer: "workers not consuming" (none), critical, exit 1.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { freshSchema } from '../helpers/db.js';
import { alive, runTide, stopIfAlive, upDetached } from '../helpers/tide.js';

const tide = (cwd: string, args: string[]) => runTide(args, { cwd, env: process.env, timeout: 120_000 });

test('tide doctor on a running tide up: workers scaled to zero and jobs enqueued -> critical, exit 1', { timeout: 180_000 }, async () => {
  const db = await freshSchema('docup');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-doctor-up-'));
  await writeFile(
    path.join(dir, 'tide.yaml'),
    [
      'project: doctorup',
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 1 } }',
      'control: { port: 0 }',
      'services:',
      '  api: { kind: api, replicas: 2, max: 2, stop_grace_seconds: 5 }',
      '  worker: { kind: worker, replicas: 1, min: 0, max: 2, concurrency: 4, stop_grace_seconds: 5 }',
      '',
    ].join('\n'),
  );
  let upPid: number | undefined;
  try {
    const { state } = await upDetached(dir);
    upPid = state.pid;

    const scaled = await tide(dir, ['scale', 'worker=0']);
    assert.equal(scaled.code, 0, scaled.stderr);
    const jobs = Array.from({ length: 20 }, () => ({ handler: 'sleep', payload: { ms: 10 } }));
    const res = await fetch(`${state.balancer}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs }) });
    assert.equal(res.status, 202, await res.text());

    const run = await tide(dir, ['doctor', '--json', '--window', '0.5']);
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
      findings: Array<{ severity: string; code: string; title: string; evidence: string }>;
      facts: { services: Array<{ name: string; healthy?: number }>; upstreams?: unknown[]; apis: unknown[]; database?: { connections: number } };
    };
    const first = report.findings[0]!;
    assert.deepEqual([first.severity, first.code], ['critical', 'workers-not-consuming']);
    assert.match(first.title, /no worker consumes/);
    assert.match(first.evidence, /20 waiting .*worker: 0 healthy of 0/);
    // found by itself through the control API: both services, the balancer, both replicas, the database
    assert.deepEqual(report.facts.services.map((s) => [s.name, s.healthy]), [['api', 2], ['worker', 0]]);
    assert.equal(report.facts.upstreams?.length, 2);
    assert.equal(report.facts.apis.length, 2);
    assert.ok((report.facts.database?.connections ?? 0) > 0);

    const down = await tide(dir, ['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(alive(upPid), false);
  } finally {
    stopIfAlive(upPid);
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  }
});

test('tide doctor on a running tide up: workers pinned at their max while jobs start late -> at-max, critical', { timeout: 180_000 }, async () => {
  const db = await freshSchema('docmax');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-doctor-max-'));
  await writeFile(
    path.join(dir, 'tide.yaml'),
    [
      'project: doctormax',
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 1 } }',
      'control: { port: 0 }',
      'services:',
      '  api: { kind: api, replicas: 1, max: 1, stop_grace_seconds: 5 }',
      '  worker:',
      '    kind: worker',
      '    replicas: 2',
      '    min: 1',
      '    max: 2',
      '    concurrency: 1',
      '    stop_grace_seconds: 5',
      '    scale: { policies: [{ kind: slo, waitSeconds: 1, attainment: 0.9 }] }',
      '',
    ].join('\n'),
  );
  let upPid: number | undefined;
  try {
    const { state } = await upDetached(dir);
    upPid = state.pid;
    // two slots, forty jobs of 2 s: the oldest waits longer than the 1 s promise at once
    const jobs = Array.from({ length: 40 }, () => ({ handler: 'sleep', payload: { ms: 2000 } }));
    const res = await fetch(`${state.balancer}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs }) });
    assert.equal(res.status, 202, await res.text());
    // hold the count at the max by hand (it pauses the autoscaler), and wait until the queue is late
    assert.equal((await tide(dir, ['scale', 'worker=2'])).code, 0);
    for (;;) {
      const body = (await (await fetch(`${state.balancer}/v1/queues`)).json()) as { queues: Array<{ oldest_ready_age_s: number | null }> };
      if ((body.queues[0]?.oldest_ready_age_s ?? 0) > 1.5) break;
      await new Promise((r) => setTimeout(r, 200));
    }

    const run = await tide(dir, ['doctor', '--json', '--window', '0.5']);
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { findings: Array<{ severity: string; code: string; subject?: string; evidence: string }> };
    const atMax = report.findings.find((f) => f.code === 'at-max');
    assert.deepEqual([atMax?.severity, atMax?.subject], ['critical', 'worker']);
    assert.match(atMax!.evidence, /2 of max 2 replicas; queue default's oldest job has waited .* \(over 1\.0 s\)/);
    assert.ok(report.findings.some((f) => f.code === 'queue-age'));

    const down = await tide(dir, ['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(alive(upPid), false);
  } finally {
    stopIfAlive(upPid);
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  }
});
