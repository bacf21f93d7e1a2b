/**
 * Running a program in a test: its exit code and output collected whatever the code (a failing
 * command is something the test asserts on), and `ok` to require success with the output in
 * the failure message.
 */
import { execFile } from 'node:child_process';

export interface Run {
  /** The exit code; 1 when the process ended without one (a signal, the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: string[], options: { cwd?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeout ?? 180_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The run, if it exited 0; else an error with its exit code and the end of its output. */
export function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  return r;
}
