/**
 * The restart policy for crashed replicas, as pure functions of the crash history and `now`
 * (no clock reads, no timers), so the supervisor's timing rules test without processes.
 *
 * A replica that exits on its own is restarted after a delay that starts at `initialMs` and
 * doubles per consecutive crash up to `maxMs`. A replica that stayed up for `resetAfterMs`
 * before crashing starts over at `initialMs`. `failAfter` crashes within `failWindowMs` mark
 * it failed: it stays down (until a restart or scale asks for it again) so one broken service
 * cannot churn the machine or take the others down.
 */

export interface BackoffTimings {
  /** First restart delay. Default 100 ms. */
  initialMs: number;
  /** Largest restart delay. Default 15 s. */
  maxMs: number;
  /** Up this long before a crash: the delay starts over. Default 30 s. */
  resetAfterMs: number;
  /** This many crashes within `failWindowMs` mark the replica failed. Default 5. */
  failAfter: number;
  /** Default 60 s. */
  failWindowMs: number;
}

export const DEFAULT_BACKOFF: BackoffTimings = {
  initialMs: 100,
  maxMs: 15_000,
  resetAfterMs: 30_000,
  failAfter: 5,
  failWindowMs: 60_000,
};

/** What the supervisor remembers of one replica's crashes. */
export interface CrashHistory {
  /** Crashes since the last long enough run. */
  consecutive: number;
  /** Crash times (ms) within the fail window, oldest first. */
  recent: number[];
}

export const NO_CRASHES: CrashHistory = { consecutive: 0, recent: [] };

export type CrashVerdict =
  | { action: 'restart'; delayMs: number; history: CrashHistory }
  | { action: 'fail'; history: CrashHistory };

/**
 * The decision after a crash at `now` of a replica that had been up since `startedAt`.
 * Returns the new history with the verdict; the caller keeps it for the next crash.
 */
export function afterCrash(history: CrashHistory, startedAt: number, now: number, timings: BackoffTimings): CrashVerdict {
  const stayedUp = now - startedAt >= timings.resetAfterMs;
  const consecutive = stayedUp ? 1 : history.consecutive + 1;
  const recent = [...history.recent.filter((t) => now - t < timings.failWindowMs), now];
  const next: CrashHistory = { consecutive, recent };
  if (recent.length >= timings.failAfter) return { action: 'fail', history: next };
  return { action: 'restart', delayMs: restartDelay(consecutive, timings), history: next };
}

/** The delay before restart number `consecutive` (1-based): initial, doubling, capped. */
export function restartDelay(consecutive: number, timings: BackoffTimings): number {
  const exponent = Math.max(0, consecutive - 1);
  // 2 ** 60 overflows nothing but is pointless; cap the exponent so the product stays finite
  return Math.min(timings.maxMs, timings.initialMs * 2 ** Math.min(exponent, 40));
}
