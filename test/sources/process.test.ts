import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';

import { isTideError } from '../../src/errors.js';
import { parseProcStat } from '../../src/os/proc.js';
import { cpuFraction, createProcessSource, parseRssBytes, processConfig, readProcess } from '../../src/sources/process.js';
import { sourceConformance } from './conformance.js';

/** Above the largest pid_max Linux allows (2^22): never a process. */
const NO_SUCH_PID = 4_194_305;
const signal = () => new AbortController().signal;

/** A child node process that prints "ready" once set up, then loops or idles. */
async function child(code: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['-e', `process.stdout.write('ready\\n'); ${code}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(proc.stdout!, 'data')) as [Buffer];
  assert.equal(chunk.toString().trim(), 'ready');
  return proc;
}

let busy: ChildProcess;
let idle: ChildProcess;

before(async () => {
  busy = await child('for (;;) {}');
  idle = await child('setInterval(() => {}, 1e9)');
});

after(async () => {
  for (const proc of [busy, idle]) {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = once(proc, 'exit');
      proc.kill('SIGKILL');
      await gone;
    }
  }
});

function source(pids: () => number[], fields: Record<string, unknown> = {}) {
  return createProcessSource(processConfig.parse(fields), { now: () => 11_000, pids });
}

sourceConformance('process', {
  create: (c) => createProcessSource(processConfig.parse({}), { ...c, pids: () => [process.pid] }),
  unreachable: (_port, c) => createProcessSource(processConfig.parse({}), { ...c, pids: () => [NO_SUCH_PID] }),
});

test('the arithmetic: ticks over wall time, /proc/<pid>/stat with an awkward command name, VmRSS', () => {
  assert.equal(cpuFraction(100, 150, 1_000), 0.5);
  assert.equal(cpuFraction(100, 300, 1_000), 2);
  assert.equal(cpuFraction(100, 90, 1_000), 0);
  const stat = '42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000000 200 18446744073709551615';
  assert.deepEqual(parseProcStat(stat), { state: 'S', ticks: 300, start: 12345, rssPages: 200 });
  assert.equal(parseProcStat('7 (a) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0')?.state, 'Z');
  assert.equal(parseProcStat('garbage'), undefined);
  assert.equal(parseRssBytes('Name:\tnode\nVmRSS:\t   2048 kB\n'), 2 * 1024 * 1024);
  assert.equal(parseRssBytes('Name:\tkthreadd\n'), 0);
});

/** Waits until the busy child has used `ticks` more CPU ticks (an event in /proc, bounded). */
async function busyTicks(ticks: number): Promise<void> {
  const start = (await readProcess(busy.pid!))!.stat.ticks;
  for (let i = 0; i < 400; i++) {
    if ((await readProcess(busy.pid!))!.stat.ticks - start >= ticks) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail('the busy child did not get CPU time');
}

test('a busy-looping child uses most of a core, an idle one almost none; memory is its RSS', async () => {
  const hot = source(() => [busy.pid!], { memory_limit_bytes: 1024 ** 3 });
  const cold = source(() => [idle.pid!]);
  const both = source(() => [busy.pid!, idle.pid!]);
  try {
    // The first read has nothing to diff against: memory only, and a note why.
    const first = await hot.read(signal());
    assert.deepEqual(first.map((s) => s.metric), ['memory_rss_bytes', 'memory_utilization']);
    assert.match(hot.notes!().join(' '), /first time/);
    await cold.read(signal());
    await both.read(signal());
    await busyTicks(30);
    const hotSamples = Object.fromEntries((await hot.read(signal())).map((s) => [s.metric, s.value]));
    const coldSamples = Object.fromEntries((await cold.read(signal())).map((s) => [s.metric, s.value]));
    const bothSamples = Object.fromEntries((await both.read(signal())).map((s) => [s.metric, s.value]));
    // Bounds loose enough for a shared 2-core machine; the point is busy >> idle.
    assert.ok(hotSamples.cpu_utilization! > 0.2, `busy cpu ${hotSamples.cpu_utilization}`);
    assert.ok(hotSamples.cpu_utilization! <= 1.05, `busy cpu ${hotSamples.cpu_utilization}`);
    assert.ok(coldSamples.cpu_utilization! < 0.1, `idle cpu ${coldSamples.cpu_utilization}`);
    assert.ok(bothSamples.cpu_utilization! > 0.1 && bothSamples.cpu_utilization! < hotSamples.cpu_utilization!, `mean cpu ${bothSamples.cpu_utilization}`);
    // A node process holds megabytes resident.
    assert.ok(hotSamples.memory_rss_bytes! > 5 * 1024 * 1024, `rss ${hotSamples.memory_rss_bytes}`);
    assert.equal(hotSamples.memory_utilization, hotSamples.memory_rss_bytes! / 1024 ** 3);
  } finally {
    await hot.close();
    await cold.close();
    await both.close();
  }
});

test('a process that is gone is a note; when all are gone the read is TIDE_SOURCE_FAILED; none at all is a note', async () => {
  const mixed = source(() => [process.pid, NO_SUCH_PID]);
  const gone = source(() => [NO_SUCH_PID]);
  const none = source(() => []);
  try {
    assert.deepEqual((await mixed.read(signal())).map((s) => s.metric), ['memory_rss_bytes']);
    assert.match(mixed.notes!().join(' '), new RegExp(`process ${NO_SUCH_PID} is gone`));
    await assert.rejects(gone.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_FAILED' && /none of the 1 processes/.test(err.message));
    assert.deepEqual(await none.read(signal()), []);
    assert.match(none.notes!().join(' '), /no processes/);
  } finally {
    await mixed.close();
    await gone.close();
    await none.close();
  }
});

test('without pids in its context the source is a TIDE_SOURCE_CONFIG', () => {
  assert.throws(() => createProcessSource(processConfig.parse({}), { now: () => 0 }), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_CONFIG');
});
