/**
 * The worker: claims jobs from the PostgreSQL queue and runs their handlers, up to
 * `concurrency` at a time in this process.
 *
 * Design note. One claim loop keeps the slots full: it claims the free slots' worth of jobs
 * plus what this process starts in the next 20 ms at its recent rate (claimed ahead, at most
 * 500; none for slow jobs) in one statement, and runs again when a slot frees (coalesced with
 * setImmediate, so a burst of finishing jobs becomes one claim for all of them), on a NOTIFY,
 * or on the poll timer. A freed slot takes the next job claimed ahead at once, without a round
 * trip. Finished jobs go into a completion buffer written every few ms, up to 500 in one
 * statement. A finished job frees its slot at once (the next claim overlaps the write) but
 * stays leased and heartbeated until its completion is written, as jobs claimed ahead are
 * until they start, so a crash only means those jobs run again (at least once). Failures are
 * written at once with the queue's backoff.
 *
 * States: running -> draining (stop(): no more claims, jobs claimed ahead released at once;
 * in-flight jobs get the grace period)
 * -> stopped (what is still running is released back to ready at once, the buffer flushed,
 * connections closed). A database outage is survived: claims and flushes back off and retry,
 * and /health reports 503 meanwhile.
 */
import { isConnectionError } from '../../db/errors.js';
import { TideError } from '../../errors.js';
import { builtinHandlers } from '../handlers/index.js';
import type { Handlers, JobContext } from '../handlers/types.js';
import { createPostgresQueue, describeError, newWorkerId } from '../queue/postgres.js';
import type { ClaimedJob, Completion, Listener, WorkerQueue } from '../queue/types.js';
import { type MetricsServer, startMetricsServer } from './metrics-server.js';

export interface WorkerOptions {
  connectionString: string;
  schema?: string;
  /** Queues to claim from; `*` is every queue. Default `['default']`. */
  queues?: string[];
  /** Jobs run at once in this process. Default 10. */
  concurrency?: number;
  /** User handlers, merged over the built-ins (hash, sleep). */
  handlers?: Handlers;
  /** Lease per claim; heartbeats renew it every third of it. Default 5000 ms. */
  leaseMs?: number;
  /** Polling fallback when no NOTIFY arrives. Default 1000 ms. */
  pollMs?: number;
  /** How often this worker returns expired leases (of dead workers) to ready. Default 1000 ms. */
  sweepMs?: number;
  /** Default drain grace for stop(). Default 30 s. */
  graceMs?: number;
  /** Completions per flush at most, and the longest a completion waits for its batch. Defaults 500, 2 ms. */
  completionBatch?: number;
  completionDelayMs?: number;
  /**
   * Finished (completed and dead) jobs older than this are deleted, in batches, every
   * `purgeEveryMs`. Default 7 days; 0 keeps them forever.
   */
  retentionMs?: number;
  purgeEveryMs?: number;
  /** Retry backoff of failed jobs (queue defaults when absent). */
  backoffBaseMs?: number;
  /** Port for /health and /metrics (0 or absent: none). */
  metricsPort?: number;
  metricsHost?: string;
  workerId?: string;
  log?: (line: string) => void;
  /** Use this queue engine instead of creating one (not closed by stop()). */
  queue?: WorkerQueue;
  /** Database connections of the engine this worker creates (plus one for LISTEN). Default 4. */
  poolSize?: number;
}

export interface RunningWorker {
  id: string;
  /**
   * Drains: stops claiming, waits up to `graceMs` for in-flight jobs, releases the rest.
   * `stop(0)` during a drain ends its grace at once: what still runs is released now.
   */
  stop(graceMs?: number): Promise<void>;
  /** Resolves when the worker has stopped. */
  readonly stopped: Promise<void>;
  /** Jobs finished (completed or failed) by this worker. */
  readonly processed: number;
  readonly running: number;
  /** The metrics server's port, when one runs. */
  readonly metricsPort: number | undefined;
}

interface Slot {
  job: ClaimedJob;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Waits `ms`, or less when `signal` aborts. The abort listener goes when the timer fires:
 * the claim loop sleeps on the worker's one lifetime signal at every retry, and listeners
 * left behind piled up on it (MaxListenersExceededWarning after ten database errors).
 */
export const sleepFor = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** How much work a worker claims ahead of its free slots, in time at its recent start rate. */
const AHEAD_HORIZON_MS = 20;
/** Jobs claimed ahead that wait longer than this, beyond the current target, go back to the queue. */
const AHEAD_MAX_WAIT_MS = 200;
/** The start rate is measured over windows this long, averaged (half each new window). */
const RATE_WINDOW_MS = 50;
const MAX_AHEAD = 500;

interface Ahead {
  job: ClaimedJob;
  /** When it was claimed (performance.now()). */
  at: number;
  /** When its lease runs out, as far as this process knows (performance.now()). */
  leaseUntil: number;
}

/** Starts a worker in this process. */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const id = options.workerId ?? newWorkerId();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const concurrency = options.concurrency ?? 10;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TideError('TIDE_USAGE', `concurrency must be a whole number >= 1, not ${concurrency}.`, { where: { field: 'concurrency' } });
  }
  const queues = options.queues && options.queues.length > 0 ? options.queues : ['default'];
  const handlers: Handlers = Object.assign(Object.create(null) as Handlers, builtinHandlers, options.handlers);
  const batchSize = options.completionBatch ?? 500;
  const batchDelay = options.completionDelayMs ?? 2;
  const sweepMs = options.sweepMs ?? 1000;
  const graceDefault = options.graceMs ?? 30_000;
  const retentionMs = options.retentionMs ?? 7 * 24 * 3600 * 1000;

  const queue =
    options.queue ??
    (await createPostgresQueue({
      connectionString: options.connectionString,
      ...(options.schema ? { schema: options.schema } : {}),
      ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
      ...(options.pollMs ? { pollMs: options.pollMs } : {}),
      ...(options.backoffBaseMs !== undefined ? { backoffBaseMs: options.backoffBaseMs } : {}),
      poolSize: options.poolSize ?? 4,
    }));
  const ownsQueue = !options.queue;
  const heartbeatMs = Math.max(50, Math.floor(queue.leaseMs / 3));

  const slots = new Map<string, Slot>();
  /**
   * Claimed ahead, waiting for a slot: leased and heartbeated like running jobs, so a finished
   * job's slot takes the next one at once instead of waiting for a claim's round trip. Sized to
   * what this process starts in AHEAD_HORIZON_MS (none for slow jobs), so a later urgent job
   * waits behind at most that much work here, and other workers are not starved. Each knows
   * when its lease runs out here (`leaseUntil`, moved on by every renewing heartbeat) and when
   * it was claimed (`at`): one whose lease is nearly out never starts here, and what waits too
   * long (the jobs turned out slower than the rate said) goes back to the queue.
   */
  let ahead: Ahead[] = [];
  let releasingAhead = false;
  let startRate = 0;
  let startsCounted = 0;
  let rateSince = performance.now();
  /** Finished, waiting for the flush; still leased and heartbeated. */
  let buffer: Completion[] = [];
  /** The batch being written right now (still leased: heartbeats include it). */
  let flushingIds: string[] = [];
  let flushing: Promise<void> | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  const pendingFails = new Set<Promise<unknown>>();
  let processed = 0;
  let stopping = false;
  let databaseUp = true;
  const lifetime = new AbortController();
  let metrics: MetricsServer | undefined;

  // --- claiming
  let claiming = false;
  let again = false;
  let fillScheduled = false;
  let filling: Promise<void> = Promise.resolve();
  function scheduleFill(): void {
    if (fillScheduled || stopping) return;
    fillScheduled = true;
    setImmediate(() => {
      fillScheduled = false;
      if (claiming) {
        again = true;
        return;
      }
      filling = fill();
    });
  }
  async function fill(): Promise<void> {
    claiming = true;
    try {
      let failures = 0;
      while (!stopping) {
        again = false;
        // slots held back by backpressure may be free again since the last completion
        startAhead();
        const want = Math.max(0, freeSlots()) + aheadTarget() - ahead.length;
        if (want <= 0) break;
        let jobs: ClaimedJob[];
        const claimedAt = performance.now();
        try {
          jobs = await queue.claim(id, queues, want);
          failures = 0;
          setDatabase(true);
        } catch (err) {
          databaseError('claiming jobs', err);
          // back off while the database is away; a NOTIFY or poll cannot help meanwhile
          await sleepFor(Math.min(5000, 200 * 2 ** failures++), lifetime.signal);
          continue;
        }
        // a job already here (its lease ran out during an outage or a stall, it was swept and
        // claimed again) is one job: the copy already held is kept, and one that finished here and
        // waits for its completion to be written is not run again (the write completes it: the
        // claim made it ours again)
        const held = new Set([...ahead.map((a) => a.job.id), ...buffer.map((c) => c.id), ...flushingIds]);
        const fresh = jobs.filter((j) => !slots.has(j.id) && !held.has(j.id));
        ahead.push(...fresh.map((job) => ({ job, at: claimedAt, leaseUntil: claimedAt + queue.leaseMs })));
        // drain began while the claim ran: these never start (released with the rest)
        if (stopping) break;
        startAhead();
        if (jobs.length < want && !again) break;
      }
    } finally {
      claiming = false;
    }
  }

  function setDatabase(up: boolean, err?: unknown): void {
    if (up !== databaseUp) log(up ? `worker ${id}: database reachable again` : `worker ${id}: database unavailable (${describeError(err)}); retrying`);
    databaseUp = up;
  }

  /** An outage flips health; anything else (a deadlock, say) is logged and retried. */
  function databaseError(what: string, err: unknown): void {
    if (isConnectionError(err)) setDatabase(false, err);
    else log(`worker ${id}: ${what} failed (${describeError(err)}); retrying`);
  }

  /** Slots free for a new job; finished jobs waiting to be written count beyond one batch. */
  function freeSlots(): number {
    // backpressure: a slow database cannot make the completion buffer (and its leases) grow
    // past one full batch being written and one filling
    return concurrency - slots.size - Math.max(0, buffer.length + flushingIds.length - Math.max(concurrency, 2 * batchSize));
  }

  /** Jobs to hold ahead: what this process starts in AHEAD_HORIZON_MS, from its recent start rate. */
  function aheadTarget(): number {
    const now = performance.now();
    const elapsed = now - rateSince;
    if (elapsed >= RATE_WINDOW_MS) {
      const recent = (startsCounted * 1000) / elapsed;
      startRate = startRate === 0 ? recent : 0.5 * startRate + 0.5 * recent;
      startsCounted = 0;
      rateSince = now;
    }
    return Math.min(MAX_AHEAD, Math.floor((startRate * AHEAD_HORIZON_MS) / 1000));
  }

  /**
   * Moves jobs claimed ahead into free slots (not re-entered: a job that fails at once calls
   * back here). None starts while the database is away (its lease cannot be renewed) or with
   * less than a heartbeat's time left on its lease: it is forgotten here, and runs again when
   * the lease expires. What has waited past AHEAD_MAX_WAIT_MS beyond the current target is
   * released.
   */
  let startingAhead = false;
  function startAhead(): void {
    if (startingAhead || !databaseUp) return;
    startingAhead = true;
    try {
      while (ahead.length > 0 && freeSlots() > 0 && !stopping) {
        const next = ahead.shift()!;
        if (next.leaseUntil - performance.now() > heartbeatMs) start(next.job);
      }
      releaseSurplus();
    } finally {
      startingAhead = false;
    }
  }

  function releaseSurplus(): void {
    if (releasingAhead || stopping || ahead.length === 0 || performance.now() - ahead[0]!.at < AHEAD_MAX_WAIT_MS) return;
    const surplus = ahead.splice(aheadTarget());
    if (surplus.length === 0) return;
    releasingAhead = true;
    void releaseAhead(surplus).finally(() => (releasingAhead = false));
  }

  /** Jobs claimed ahead, never started, back to the queue (attempt not counted). */
  async function releaseAhead(jobs: Ahead[]): Promise<void> {
    await queue.release(
      id,
      jobs.map((a) => a.job.id),
    ).catch((err) => log(`worker ${id}: could not release ${jobs.length} job(s) claimed ahead (${describeError(err)}); they run again when their lease expires`));
  }

  // --- running
  function start(job: ClaimedJob): void {
    startsCounted++;
    const abort = new AbortController();
    const slot: Slot = { job, abort, done: Promise.resolve() };
    slots.set(job.id, slot);
    slot.done = run(slot);
  }

  async function run(slot: Slot): Promise<void> {
    const { job } = slot;
    const began = performance.now();
    let result: unknown;
    let error: unknown;
    let ok = false;
    try {
      const handler = handlers[job.handler];
      if (!handler) {
        throw new TideError(
          'TIDE_HANDLER_UNKNOWN',
          `No handler "${job.handler}" in worker ${id} (it has: ${Object.keys(handlers).sort().join(', ')}).`,
          { where: { field: 'handler' } },
        );
      }
      const ctx: JobContext = { job, workerId: id, signal: slot.abort.signal, log };
      result = await handler(job.payload, ctx);
      ok = true;
    } catch (err) {
      error = err;
    }
    // released on drain while it ran: the job is no longer ours to finish
    if (slots.get(job.id) !== slot) return;
    const durationMs = performance.now() - began;
    processed++;
    // the slot frees now (the next claim overlaps the flush); the job stays leased and
    // heartbeated in the buffer until its completion is written
    slots.delete(job.id);
    if (ok) {
      metrics?.jobDone(job.queue, 'completed', durationMs);
      buffer.push({ id: job.id, result: result === undefined ? null : result, durationMs });
      if (buffer.length >= batchSize) void flush();
      else flushTimer ??= setTimeout(() => void flush(), batchDelay);
      startAhead();
      scheduleFill();
    } else {
      metrics?.jobDone(job.queue, 'failed', durationMs);
      const failing = queue
        .fail(job.id, id, error)
        .then((out) => {
          const next = out?.state === 'dead' ? 'dead, no attempts left' : out ? `retry at ${new Date(out.runAt).toISOString()}` : 'lease lost';
          log(`job ${job.id} (${job.queue}/${job.handler}) failed on attempt ${job.attempts}/${job.maxAttempts}: ${describeError(error)} -> ${next}`);
        })
        .catch((err) => log(`job ${job.id} failed, and recording the failure failed too (the lease will expire and it runs again): ${describeError(err)}`))
        .finally(() => pendingFails.delete(failing));
      pendingFails.add(failing);
      startAhead();
      scheduleFill();
    }
  }

  // --- completion buffer
  function flush(): Promise<void> {
    if (flushTimer) clearTimeout(flushTimer), (flushTimer = undefined);
    if (flushing) return flushing.then(() => (buffer.length > 0 ? flush() : undefined));
    if (buffer.length === 0) return Promise.resolve();
    const batch = buffer.slice(0, batchSize);
    buffer = buffer.slice(batchSize);
    flushingIds = batch.map((c) => c.id);
    flushing = (async () => {
      try {
        await queue.completeMany(id, batch);
        setDatabase(true);
      } catch (err) {
        databaseError('recording completions', err);
        // keep them (leased, heartbeated) and try again shortly; never drop a completion
        buffer = batch.concat(buffer);
        if (!stopping) flushTimer ??= setTimeout(() => void flush(), 500);
        return;
      } finally {
        flushing = undefined;
        flushingIds = [];
      }
      // more finished meanwhile: write them now; and slots held back by backpressure are free
      if (buffer.length >= batchSize) void flush();
      else if (buffer.length > 0) flushTimer ??= setTimeout(() => void flush(), batchDelay);
      scheduleFill();
    })();
    return flushing;
  }

  // --- lease upkeep
  // one heartbeat at a time: a second one would skip the rows the first still locks and
  // take them for lost
  let beating = false;
  const heartbeat = setInterval(() => {
    // slow jobs in every slot: no completion calls startAhead, so what waits too long goes back from here
    releaseSurplus();
    const running = [...slots.entries()];
    const waiting = [...ahead];
    const ids = [...running.map(([jobId]) => jobId), ...waiting.map((a) => a.job.id), ...buffer.map((c) => c.id), ...flushingIds];
    if (ids.length === 0 || beating) return;
    beating = true;
    const sentAt = performance.now();
    queue.heartbeat(id, ids).then(
      (renewed) => {
        setDatabase(true);
        const held = new Set(renewed);
        for (const a of waiting) if (held.has(a.job.id)) a.leaseUntil = sentAt + queue.leaseMs;
        if (renewed.length === ids.length) return;
        // claimed ahead but no longer ours (expired and swept): never start them here
        const lost = new Set(waiting.filter((a) => !held.has(a.job.id)).map((a) => a.job.id));
        if (lost.size > 0) ahead = ahead.filter((a) => !lost.has(a.job.id));
        // still running here but no longer ours (the lease expired and was swept): tell the
        // handler to stop; its result would be ignored anyway (locked_by no longer matches).
        // That includes a job lost while it waited ahead and started since this heartbeat went out.
        const stale = running.filter(([jobId]) => !held.has(jobId));
        for (const jobId of lost) {
          const slot = slots.get(jobId);
          if (slot) stale.push([jobId, slot]);
        }
        for (const [jobId, slot] of stale) {
          if (slots.get(jobId) === slot) {
            log(`job ${jobId}: lease lost (expired and returned to the queue); aborting it here`);
            slot.abort.abort(new TideError('TIDE_INTERNAL', `lease on job ${jobId} lost`));
          }
        }
      },
      (err) => databaseError('renewing leases', err),
    ).finally(() => (beating = false));
  }, heartbeatMs);
  const sweep = setInterval(() => {
    queue.recoverExpired().then(
      (n) => {
        if (n > 0) {
          log(`worker ${id}: returned ${n} job(s) with expired leases to the queue`);
          scheduleFill();
        }
      },
      () => undefined,
    );
  }, sweepMs);

  // retention: every worker may purge; batches with SKIP LOCKED keep them out of each other's way
  let purging = false;
  const purge =
    retentionMs > 0
      ? setInterval(() => {
          if (purging) return;
          purging = true;
          queue
            .purgeFinished(retentionMs, 1000)
            .catch((err) => databaseError('purging finished jobs', err))
            .finally(() => (purging = false));
        }, options.purgeEveryMs ?? 60_000)
      : undefined;

  let listener: Listener | undefined;
  try {
    listener = await queue.listen(scheduleFill, { pollMs: queue.pollMs });
    if (options.metricsPort) {
      metrics = await startMetricsServer({
        port: options.metricsPort,
        ...(options.metricsHost ? { host: options.metricsHost } : {}),
        health: () => ({ ok: databaseUp, workerId: id, queues, concurrency, running: slots.size, processed }),
      });
    }
  } catch (err) {
    clearInterval(heartbeat);
    clearInterval(sweep);
    clearInterval(purge);
    await listener?.close();
    if (ownsQueue) await queue.close();
    throw err;
  }
  scheduleFill();

  // --- drain
  let stopping$: Promise<void> | undefined;
  /** Ends the grace period of a drain under way (a stop(0) during a stop: release now). */
  let endGrace: (() => void) | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));

  async function drain(graceMs: number): Promise<void> {
    stopping = true;
    clearInterval(sweep);
    clearInterval(purge);
    lifetime.abort();
    await listener?.close();
    // a claim in flight may still hand us jobs: they wait in `ahead`, released below
    await filling;
    // claimed ahead, never started: back to the queue at once, for other workers
    const notStarted = ahead;
    ahead = [];
    if (notStarted.length > 0) await releaseAhead(notStarted);
    // wait for in-flight jobs, up to the grace period
    const inFlight = () => Promise.all([...slots.values()].map((s) => s.done));
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([inFlight(), new Promise<void>((r) => ((endGrace = r), (graceTimer = setTimeout(r, graceMs))))]);
    clearTimeout(graceTimer);
    endGrace = undefined;
    // flush what finished (retrying a few times through a short outage)
    for (let failures = 0; failures < 10 && (buffer.length > 0 || flushing); ) {
      const before = buffer.length;
      await flush();
      if (buffer.length >= before && buffer.length > 0) failures++, await sleepFor(300);
    }
    // still unflushed (database away): their leases expire and they run again elsewhere
    if (buffer.length > 0) log(`worker ${id}: could not record ${buffer.length} completion(s); those jobs will run again`);
    buffer = [];
    if (flushTimer) clearTimeout(flushTimer);
    // what still runs goes back to the queue at once
    const remaining = [...slots.values()];
    slots.clear();
    if (remaining.length > 0) {
      for (const s of remaining) s.abort.abort(new TideError('TIDE_INTERNAL', 'the worker is stopping: job released'));
      try {
        const released = await queue.release(
          id,
          remaining.map((s) => s.job.id),
        );
        log(`worker ${id}: released ${released.length} unfinished job(s) back to the queue`);
      } catch (err) {
        log(`worker ${id}: could not release ${remaining.length} job(s) (${describeError(err)}); they run again when their lease expires`);
      }
    }
    await Promise.all(pendingFails);
    clearInterval(heartbeat);
    await metrics?.close();
    if (ownsQueue) await queue.close();
    resolveStopped();
  }

  return {
    id,
    stop: (graceMs = graceDefault) => {
      if (stopping$ && graceMs === 0) endGrace?.();
      return (stopping$ ??= drain(graceMs));
    },
    stopped,
    get processed() {
      return processed;
    },
    get running() {
      return slots.size;
    },
    get metricsPort() {
      return metrics?.port;
    },
  };
}
