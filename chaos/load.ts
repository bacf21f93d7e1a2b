/**
 * A small open-model load for the chaos scenarios: Poisson arrivals at a fixed rate (seeded,
 * so a run's load is reproducible), each a `POST /v1/jobs` through the balancer.
 *
 * Design note. Open means arrivals do not wait for answers, as real clients do not; a cap on
 * requests in flight keeps a stalled system from piling up sockets (those arrivals count as
 * shed, never as failures). Every answer is classified: a 202 adds the job id to `accepted`
 * (the audit checks each one later), anything else is a failure keyed by its cause (status
 * and error code, or the network error), with the time it happened so a scenario can tell
 * failures inside a fault window from those outside it. The client never retries: a failure
 * the system caused must show here.
 */
import { Agent, request } from 'undici';

import { seeded } from '../src/app/demo.js';

export interface LoadOptions {
  /** The balancer's URL. */
  url: string;
  ratePerSecond: number;
  seed: number;
  /** The job body for arrival `i`; `random` is the load's seeded generator. */
  job: (i: number, random: () => number) => unknown;
  headers?: Record<string, string>;
  /** Most requests in flight. Default 64. */
  maxInFlight?: number;
  /** The clock for failure times. Default performance.now. */
  now?: () => number;
}

export interface Failure {
  /** ms on the load's clock */
  at: number;
  /** `503 TIDE_DB_UNAVAILABLE`, `network UND_ERR_SOCKET`, ... */
  cause: string;
  retryAfter: boolean;
}

export interface LoadTotals {
  offered: number;
  shed: number;
  accepted: string[];
  failures: Failure[];
  /** ms on the load's clock of the last 202 */
  lastAcceptedAt: number | null;
}

export interface RunningLoad {
  readonly totals: LoadTotals;
  /** Requests sent and not answered yet. */
  readonly inFlight: number;
  /** Resolves once `n` more jobs have been accepted (progress, not time). */
  accepted(n: number): Promise<void>;
  /** Stops arrivals, waits for the answers in flight, closes the connections. */
  stop(): Promise<LoadTotals>;
}

/** Failure counts by cause, for reports. */
export function failuresByCause(failures: Failure[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of failures) out[f.cause] = (out[f.cause] ?? 0) + 1;
  return out;
}

export function startLoad(options: LoadOptions): RunningLoad {
  const now = options.now ?? (() => performance.now());
  const random = seeded(options.seed);
  const maxInFlight = options.maxInFlight ?? 64;
  const agent = new Agent({ connections: maxInFlight, keepAliveTimeout: 4_000 });
  const totals: LoadTotals = { offered: 0, shed: 0, accepted: [], failures: [], lastAcceptedAt: null };
  const pending = new Set<Promise<void>>();
  const waiters: Array<{ target: number; resolve: () => void }> = [];
  let timer: NodeJS.Timeout | undefined;
  let running = true;
  let stopping: Promise<LoadTotals> | undefined;

  const notify = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (totals.accepted.length >= w.target || !running) waiters.splice(i, 1), w.resolve();
    }
  };

  const send = async (i: number) => {
    const body = JSON.stringify(options.job(i, random));
    try {
      const res = await request(`${options.url}/v1/jobs`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...options.headers },
        dispatcher: agent,
      });
      const text = await res.body.text();
      if (res.statusCode === 202) {
        const id = (JSON.parse(text) as { id?: unknown }).id;
        if (typeof id === 'string') totals.accepted.push(id), (totals.lastAcceptedAt = now());
        else totals.failures.push({ at: now(), cause: '202 without an id', retryAfter: false });
      } else {
        let code = 'no code';
        try {
          code = String((JSON.parse(text) as { error?: { code?: unknown } }).error?.code ?? 'no code');
        } catch {
          // not JSON: the cause stays "no code"
        }
        totals.failures.push({ at: now(), cause: `${res.statusCode} ${code}`, retryAfter: res.headers['retry-after'] !== undefined });
      }
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      totals.failures.push({ at: now(), cause: `network ${typeof code === 'string' ? code : (err as Error).name}`, retryAfter: false });
    }
    notify();
  };

  const arrive = () => {
    if (!running) return;
    const i = totals.offered++;
    if (pending.size >= maxInFlight) totals.shed++;
    else {
      const p = send(i).finally(() => pending.delete(p));
      pending.add(p);
    }
    // exponential inter-arrival times: a Poisson process at the given rate
    const gap = (-Math.log(1 - random()) / options.ratePerSecond) * 1000;
    timer = setTimeout(arrive, gap);
  };
  timer = setTimeout(arrive, 0);

  return {
    totals,
    get inFlight() {
      return pending.size;
    },
    accepted(n) {
      const target = totals.accepted.length + n;
      if (!running) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ target, resolve }));
    },
    stop() {
      stopping ??= (async () => {
        running = false;
        clearTimeout(timer);
        notify();
        await Promise.all([...pending]);
        await agent.close();
        return totals;
      })();
      return stopping;
    },
  };
}
