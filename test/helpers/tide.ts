/**
 * Running the `tide` command in tests: a child process whose exit code and output are
 * collected whatever the code, since a failing command is something the test asserts on.
 * Also `alive(pid)`, the check `tide down` itself waits on, for "nothing left behind".
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export { processAlive as alive } from '../../src/cli/control.js';

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
