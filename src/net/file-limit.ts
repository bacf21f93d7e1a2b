/**
 * How many connections a server may hold before the process runs out of file descriptors.
 *
 * Why: at the descriptor limit `accept()` fails with EMFILE, which Node reports as an 'error'
 * on the server, and new connections, database sockets and log files all fail with it. A
 * server that stops accepting a little before the limit (Node's `server.maxConnections`
 * closes the excess at once) keeps the descriptors it needs for its own work.
 */
import { readFileSync } from 'node:fs';

/** The soft `Max open files` limit of this process from /proc/self/limits, or undefined (no /proc, or unlimited). */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
}

/**
 * The most client connections to hold: `requested` (undefined: as many as the descriptors
 * allow), never more than the descriptor limit less a reserve for the process's own files
 * and sockets (an eighth of the limit, at least 64).
 */
export function connectionCap(requested: number | undefined, fileLimit: number | undefined): number | undefined {
  const byFiles = fileLimit === undefined ? undefined : Math.max(1, fileLimit - Math.max(64, Math.floor(fileLimit / 8)));
  if (requested === undefined) return byFiles;
  return byFiles === undefined ? requested : Math.min(requested, byFiles);
}
