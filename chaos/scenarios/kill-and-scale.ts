/**
 * Kill and scale under load: a mixed open load through the balancer while a random worker
 * gets SIGKILL about every 10 s and the api and worker counts change every 15 s (seeded choices).
 * The kill period is jittered (±40%, seeded): at a fixed period that is a multiple of the 5 s
 * lease, each kill lands just as the last victim's jobs come back from lease expiry and are
 * claimed again, so the same jobs die with worker after worker until their attempts run out;
 * crashes in the field are not in step with the lease.
 *
 * Invariants: every job accepted with 202 completes, or is dead after its own failures (the
 * 10% that ask to fail); a job runs twice only if an earlier run was on a killed worker; no
 * request fails (killing workers and scaling the API through the supervisor must cost no
 * HTTP answer).
 */
import { seeded } from '../../src/app/demo.js';
import { failuresByCause, startLoad } from '../load.js';
import { auditJobs, drained, secs, sleep, startChaosSystem } from '../system.js';
import type { Scenario, ScenarioResult } from '../types.js';

const FULL_MS = 10 * 60_000;
const SHORT_MS = 2 * 60_000;

export const killAndScale: Scenario = {
  name: 'kill-and-scale',
  checks: 'every 202 completes or is dead by its own failures; duplicates only after a kill; no HTTP failure',
  async run(options): Promise<ScenarioResult> {
    const durationMs = options.durationMs ?? (options.full ? FULL_MS : SHORT_MS);
    const killEveryMs = Math.min(10_000, durationMs / 4);
    const scaleEveryMs = Math.min(15_000, durationMs / 3);
    const random = seeded(options.seed + 1);
    const jitter = seeded(options.seed + 2);
    const started = performance.now();
    const chaos = await startChaosSystem({
      databaseUrl: options.databaseUrl,
      api: { replicas: 2, max: 3 },
      worker: { replicas: 2, max: 4, concurrency: 8 },
      log: (l) => options.log(`  system: ${l}`),
    });
    const { system } = chaos;
    const sup = system.supervisor;
    const killed = new Set<number>();
    const counts = { kills: 0, apiScales: 0, workerScales: 0, scaleErrors: 0 };
    const violations: string[] = [];
    const notes: string[] = [];
    const load = startLoad({
      url: system.balancer!.url,
      ratePerSecond: 25,
      seed: options.seed,
      job: (_i, r) => {
        const x = r();
        if (x < 0.1) return { handler: 'chaos', payload: { fail: true }, max_attempts: 2 };
        if (x < 0.25) return { handler: 'hash', payload: { data: 'chaos', rounds: 300 } };
        return { handler: 'chaos', payload: { ms: Math.round(20 + r() * 280) } };
      },
    });
    let running = true;
    const end = new AbortController();
    const stopped = sleep(durationMs, end.signal);
    const every = async (ms: () => number, fn: () => Promise<void>) => {
      while (running) {
        await sleep(ms(), end.signal);
        if (running) await fn();
      }
    };
    const killer = every(() => killEveryMs * (0.6 + 0.8 * jitter()), async () => {
      const workers = sup.ps().replicas.filter((r) => r.service === 'worker' && r.state === 'healthy' && r.pid !== null);
      const victim = workers[Math.floor(random() * workers.length)];
      if (!victim?.pid) return;
      killed.add(victim.pid);
      process.kill(victim.pid, 'SIGKILL');
      counts.kills++;
      options.log(`  ${secs(started)} SIGKILL ${victim.id} (pid ${victim.pid}); ${load.totals.accepted.length} accepted so far`);
    });
    const scaler = every(() => scaleEveryMs, async () => {
      const api = 1 + Math.floor(random() * 3);
      const worker = 1 + Math.floor(random() * 4);
      options.log(`  ${secs(started)} scale api=${api} worker=${worker}`);
      const results = await Promise.allSettled([sup.scale('api', api, { by: 'chaos' }), sup.scale('worker', worker, { by: 'chaos' })]);
      counts.apiScales++, counts.workerScales++;
      for (const r of results) if (r.status === 'rejected') counts.scaleErrors++, notes.push(`a scale failed: ${String(r.reason)}`);
    });
    try {
      await stopped;
      running = false;
      end.abort();
      await Promise.all([killer, scaler]);
      const totals = await load.stop();
      // a worker killed five times within a minute is marked failed: ask for working ones again
      await sup.scale('worker', 2, { by: 'chaos' });
      options.log(`  ${secs(started)} load stopped (${totals.accepted.length} accepted); waiting for the queue to drain`);
      if (!(await drained(chaos.db, chaos.schema, 120_000))) violations.push('the queue did not drain within 120 s after the load stopped');
      const audit = await auditJobs(chaos.db, chaos.schema, totals.accepted, killed);
      if (audit.missing > 0) violations.push(`${audit.missing} accepted jobs are missing`);
      if (audit.deadOther > 0) violations.push(`${audit.deadOther} jobs are dead without failing themselves`);
      if (audit.unfinished > 0) violations.push(`${audit.unfinished} jobs never finished`);
      if (audit.duplicates > audit.duplicatesOnKilled) violations.push(`${audit.duplicates - audit.duplicatesOnKilled} jobs ran twice with no kill to explain it`);
      if (totals.failures.length > 0) violations.push(`${totals.failures.length} requests failed: ${JSON.stringify(failuresByCause(totals.failures))}`);
      if (violations.length > 0) violations.push(...audit.examples.map((e) => `e.g. ${e}`));
      return {
        name: this.name,
        did: `${Math.round(durationMs / 1000)} s of mixed load at 25 jobs/s (sleep, hash, 10% failing); SIGKILL of a random worker every ${Math.round(killEveryMs / 1000)} s ±40%; api 1-3 and worker 1-4 replicas re-chosen every ${Math.round(scaleEveryMs / 1000)} s`,
        durationMs: performance.now() - started,
        counts: {
          offered: totals.offered,
          shed: totals.shed,
          accepted: audit.accepted,
          completed: audit.completed,
          deadOwnFailures: audit.deadOwnFailures,
          deadOther: audit.deadOther,
          lost: audit.missing + audit.unfinished,
          duplicates: audit.duplicates,
          duplicatesAfterKill: audit.duplicatesOnKilled,
          httpFailures: totals.failures.length,
          ...counts,
        },
        violations,
        notes,
      };
    } finally {
      running = false;
      end.abort();
      await load.stop();
      await chaos.stop();
    }
  },
};
