/** Process helpers of the supervisor: commands without a shell, signals to groups, bounded waits, health probes, /proc usage. */
import { readProcStat, USER_HZ } from '../os/proc.js';

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** argv for a command with no shell syntax (so it runs without a shell); undefined otherwise. */
export function simpleArgv(command: string): string[] | undefined {
  if (/[^\w\s./=:@%+,-]/.test(command)) return undefined;
  const argv = command.trim().split(/\s+/);
  // `FOO=1 node x` sets a variable: leave that to the shell
  if (argv.length === 0 || argv[0] === '' || argv[0]!.includes('=')) return undefined;
  return argv;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True once `promise` settles within `ms`, false when the time runs out or `cut` aborts first.
 * The timer is cleared either way: a stop must not leave a grace timer holding the process.
 */
export function settleWithin(promise: Promise<unknown>, ms: number, cut?: AbortSignal): Promise<boolean> {
  if (cut?.aborted) return Promise.race([promise.then(() => true, () => true), Promise.resolve(false)]);
  return new Promise((resolve) => {
    const done = (settled: boolean) => {
      clearTimeout(timer);
      cut?.removeEventListener('abort', onCut);
      resolve(settled);
    };
    const onCut = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    cut?.addEventListener('abort', onCut, { once: true });
    promise.then(() => done(true), () => done(true));
  });
}

/**
 * Whether `url` answers 200, and, given `pid`, that the answer is that process's: a health body
 * naming another pid (as the API's does) comes from whatever else holds the port.
 */
export async function probe(url: string, pid?: number): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    const text = await res.text().catch(() => '');
    if (res.status !== 200) return false;
    if (pid === undefined) return true;
    const named = answeredPid(text);
    return named === undefined || named === pid;
  } catch {
    return false;
  }
}

/** The `pid` a JSON health body names, if any. */
export function answeredPid(text: string): number | undefined {
  try {
    const pid = (JSON.parse(text) as { pid?: unknown } | null)?.pid;
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined; // not JSON: nothing to check
  }
}

const PAGE_SIZE = 4096;

/** CPU seconds and RSS from /proc (Linux); undefined where there is no /proc. */
export function procUsage(pid: number): { cpuSeconds: number; rssBytes: number } | undefined {
  const stat = readProcStat(pid);
  return stat && { cpuSeconds: Math.round((stat.ticks / USER_HZ) * 100) / 100, rssBytes: stat.rssPages * PAGE_SIZE };
}
