/**
 * Reading /proc/<pid>/stat (Linux, proc(5)): one parser for every place that asks about a
 * process. The command name (field 2) may hold spaces and parentheses, so fields are read from
 * after the last ')'.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface ProcStat {
  /** Field 3: R, S, D, Z (a zombie: exited, not yet reaped), T, ... */
  state: string;
  /** utime + stime (fields 14 and 15), in USER_HZ ticks. */
  ticks: number;
  /** Field 22: start time after boot, ticks; tells a reused pid from the process that had it. */
  start: number;
  /** Field 24: resident set size, pages. */
  rssPages: number;
}

/** Clock ticks per second in /proc/<pid>/stat: USER_HZ, 100 on every architecture Node runs on. */
export const USER_HZ = 100;

/** Parses the text of /proc/<pid>/stat; undefined when it is not one. */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).trim().split(/\s+/); // fields[0] is field 3
  const field = (n: number): number => Number(fields[n - 3]);
  const stat = { state: fields[0] ?? '', ticks: field(14) + field(15), start: field(22), rssPages: field(24) };
  return stat.state !== '' && [stat.ticks, stat.start, stat.rssPages].every(Number.isFinite) ? stat : undefined;
}

/** /proc/<pid>/stat now; undefined when the process is gone or there is no /proc (macOS). */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether this system has /proc at all (where it does not, signal 0 is all there is). */
export function hasProc(): boolean {
  return readProcStat(process.pid) !== undefined;
}

/**
 * Whether a process still runs: signal 0 finds it (EPERM: it exists, under another user, such
 * as the embedded PostgreSQL's when tide runs as root), and it is not a zombie. An exited process
 * its parent has not reaped (`tide up -d`'s supervisor under a PID 1 that reaps late, a killed
 * postmaster pg_ctl detached) still answers signal 0, so /proc has the last word where there is one.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readProcStat(pid);
  if (stat) return stat.state !== 'Z';
  // gone since kill(0), or no /proc here (macOS), where kill(0) is the answer
  return !hasProc() || existsSync(`/proc/${pid}`);
}
