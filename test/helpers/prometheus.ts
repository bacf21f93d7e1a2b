/**
 * A real Prometheus (Debian package `prometheus`) for tests: started on a free loopback port
 * with a temporary directory holding its config, any rule files and its storage; stopped and
 * the directory removed by `stop()`. Tests skip with `prometheusSkip` when it is not installed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freePort } from './net.js';

function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const full = path.join(dir, name);
    if (dir && existsSync(full)) return full;
  }
  return undefined;
}

const binary = findBinary('prometheus');

/** The skip reason when there is no prometheus binary, else false. */
export const prometheusSkip: string | false = !binary && 'the prometheus binary is not installed (Debian package `prometheus`: apt-get install prometheus)';

export interface RunningPrometheus {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The temporary directory with the config and the rule files. */
  dir: string;
  /** An instant query's `data.result`. */
  query(q: string): Promise<unknown>;
  /** Its output so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts Prometheus with `config` (the YAML text of prometheus.yml) and `files` (name -> text,
 * written beside it, e.g. rule files the config names), and resolves once `ready()` says so
 * (polled every 200 ms, up to `timeoutMs`); rejects, after stopping it, when it exits or the
 * time is up.
 */
export async function startPrometheus(options: {
  config: string;
  files?: Record<string, string>;
  ready: (p: RunningPrometheus) => Promise<boolean>;
  timeoutMs?: number;
}): Promise<RunningPrometheus> {
  if (!binary) throw new Error(String(prometheusSkip));
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tide-prom-'));
  const configFile = path.join(dir, 'prometheus.yml');
  writeFileSync(configFile, options.config);
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(path.join(dir, name), text);
  let output = '';
  const child: ChildProcess = spawn(binary, [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const running: RunningPrometheus = {
    url,
    dir,
    async query(q) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
      return ((await res.json()) as { data?: { result?: unknown } }).data?.result;
    },
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      await running.stop();
      throw new Error(`prometheus exited:\n${output}`);
    }
    try {
      if (await options.ready(running)) return running;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await running.stop();
      throw new Error(`prometheus was not ready within ${(options.timeoutMs ?? 30_000) / 1000} s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
