/**
 * Running the `tide` command in tests: a child process whose exit code and output are
 * collected whatever the code, since a failing command is something the test asserts on.
 * Also `alive(pid)`, the check `tide down` itself waits on, for "nothing left behind", and
 * `tide up -d` started in a project directory.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { processAlive } from '../../src/os/proc.js';
import type { ControlState } from '../../src/app/client.js';

export { processAlive as alive };

/** The CLI entry point, bin/tide.js. */
export const TIDE_BIN = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));

export interface TideRun {
  /** The exit code; 1 when the process ended without one (killed by a signal or the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface TideRunOptions {
  cwd: string;
  /** The child's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Kills the child after this many ms (default: no limit). */
  timeout?: number;
  /** The most output kept per stream, bytes (default: execFile's 1 MiB). */
  maxBuffer?: number;
}

/** Runs `tide <args>` with this Node and resolves when it exits, whatever its exit code. */
export function runTide(args: string[], options: TideRunOptions): Promise<TideRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TIDE_BIN, ...args], options, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * `tide up -d` in `dir` (its tide.yaml, state in `dir/.tide`), asserted to exit 0; resolves
 * with the run and the control.json it wrote (the background process's pid, the control API,
 * the balancer). Pair it with `stopIfAlive(state.pid)` in the test's `finally`.
 */
export async function upDetached(dir: string): Promise<{ run: TideRun; state: ControlState }> {
  const run = await runTide(['up', '-d'], { cwd: dir, env: process.env, timeout: 120_000 });
  assert.equal(run.code, 0, run.stderr);
  const state = JSON.parse(await readFile(path.join(dir, '.tide', 'control.json'), 'utf8')) as ControlState;
  return { run, state };
}

/** SIGTERM to `pid` when it still runs: the cleanup after a test that meant to stop it itself. */
export function stopIfAlive(pid: number | undefined): void {
  if (pid && processAlive(pid)) process.kill(pid, 'SIGTERM');
}
