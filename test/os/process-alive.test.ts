/**
 * `processAlive`, what `tide down` waits on: an exited process its parent has not reaped (a
 * zombie, as `tide up -d`'s supervisor is under a PID 1 that reaps late) counts as ended.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { test } from 'node:test';

import { processAlive } from '../../src/os/proc.js';

const state = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2];
  } catch {
    return undefined; // gone
  }
};

test('a zombie is not alive; a running process is; a reaped one is not', { timeout: 20_000, skip: process.platform !== 'linux' && 'needs /proc' }, async () => {
  // the shell starts a short child, then becomes `sleep`, which never reaps it: a zombie. The
  // child outlives the exec (a child that ended before it could be reaped by the shell itself).
  const parent = spawn('sh', ['-c', 'sleep 0.5 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [chunk] = (await once(parent.stdout!, 'data')) as [Buffer];
    const zombie = Number(chunk.toString().trim());
    // no event tells when a child of another process exits: look, bounded
    for (const deadline = Date.now() + 10_000; state(zombie) !== 'Z' && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(state(zombie), 'Z');
    assert.doesNotThrow(() => process.kill(zombie, 0), 'kill(0) alone still finds it');
    assert.equal(processAlive(zombie), false);
    assert.equal(processAlive(parent.pid!), true);
  } finally {
    parent.kill('SIGKILL');
    await once(parent, 'exit');
  }
  assert.equal(processAlive(parent.pid!), false);
});
