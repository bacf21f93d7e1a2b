/**
 * The embedded PostgreSQL SIGKILLed under load, twice (what the OOM killer does): `tide up`'s
 * own embedded server (startSystem with no database URL), which it supervises. Nobody starts
 * it again by hand: the supervision must notice, restart it on its port and data directory,
 * and the replicas must reconnect by themselves.
 *
 * Invariants: every job accepted with 202, before, between or after the kills, completes
 * (PostgreSQL's crash recovery keeps what was committed, the workers resume); the system
 * accepts jobs again after each kill by itself; no replica is left failed, and the database
 * is running at the end with two restarts. Reported: the time from each kill to the first
 * job accepted after it, and the database's own downtime. Requests refused during an outage
 * are counted by cause (503 + Retry-After is the expected answer); a failure outside the
 * outages is a violation.
 */
import type { ReplicaStatus } from '../../src/supervisor/supervisor.js';
import { failuresByCause, startLoad } from '../load.js';
import { type ChaosSystem, auditJobs, drained, secs, sleep, startChaosSystem, until } from '../system.js';
import type { Scenario, ScenarioResult } from '../types.js';

const RECOVERY_LIMIT_MS = 60_000;
const KILLS = 2;

export const dbKill: Scenario = {
  name: 'db-kill',
  checks: 'SIGKILL of the embedded PostgreSQL under load, twice: restarted by tide up itself, no accepted job lost, no replica left failed',
  async run(options): Promise<ScenarioResult> {
    const betweenMs = options.durationMs ? Math.max(3_000, (options.durationMs - 5_000) / (KILLS + 1)) : options.full ? 30_000 : 8_000;
    const started = performance.now();
    const violations: string[] = [];
    const notes: string[] = [];
    const end = new AbortController();
    let chaos: ChaosSystem | undefined;
    let load: ReturnType<typeof startLoad> | undefined;
    try {
      chaos = await startChaosSystem({
        databaseUrl: 'embedded',
        api: { replicas: 2, max: 2 },
        worker: { replicas: 2, max: 2, concurrency: 8 },
        log: (l) => options.log(`  system: ${l}`),
        onLog: (l) => l.stream === 'tide' && options.log(`  ${l.service}.${l.index}: ${l.line}`),
      });
      const { system } = chaos;
      // a replica that exits while the database is away is restarted by the supervisor; a job
      // it had claimed runs again (at-least-once), so its pid counts as killed for the audit
      const pids = new Map<string, number>();
      const crashedPids = new Set<number>();
      let replicaCrashes = 0;
      system.supervisor.on('state', (r: ReplicaStatus) => {
        if (r.pid !== null) pids.set(r.id, r.pid);
        if (r.state === 'crashed') {
          replicaCrashes++;
          const pid = pids.get(r.id);
          if (pid !== undefined) crashedPids.add(pid);
        }
      });
      load = startLoad({
        url: system.balancer!.url,
        ratePerSecond: 20,
        seed: options.seed,
        job: (_i, r) => ({ handler: 'chaos', payload: { ms: Math.round(20 + r() * 180) } }),
      });
      const warm = await Promise.race([load.accepted(100).then(() => true), sleep(30_000, end.signal).then(() => false)]);
      if (!warm) violations.push('the system did not accept 100 jobs within 30 s before the first kill');

      const outages: Array<{ from: number; to: number }> = [];
      const recoveries: number[] = [];
      const downtimes: number[] = [];
      for (let k = 1; k <= KILLS; k++) {
        const pid = system.database().pid;
        if (!pid) {
          violations.push(`kill ${k}: the database had no pid to kill (state ${system.database().state})`);
          break;
        }
        const killedAt = performance.now();
        const back = new Promise<void>((resolve) => {
          const on = (s: { state: string | null }) => s.state === 'running' && (system.databaseWatch!.off('state', on), resolve());
          system.databaseWatch!.on('state', on);
        });
        options.log(`  ${secs(started)} kill ${k}: SIGKILL to the embedded PostgreSQL (pid ${pid}), ${load.totals.accepted.length} accepted so far`);
        process.kill(pid, 'SIGKILL');
        // accepting again: a 202 answered after the database is back (one answered just after
        // the kill may have been committed before it)
        let backAt = Number.POSITIVE_INFINITY;
        void back.then(() => (backAt = performance.now()));
        const accepting = await until(() => (load!.totals.lastAcceptedAt ?? 0) > backAt, RECOVERY_LIMIT_MS, 50);
        const acceptingAt = load.totals.lastAcceptedAt ?? performance.now();
        if (!accepting) {
          outages.push({ from: killedAt, to: performance.now() });
          violations.push(`kill ${k}: no job was accepted within ${RECOVERY_LIMIT_MS / 1000} s (database ${system.database().state})`);
          break;
        }
        // the outage lasts until every api replica is back in the balancer's rotation
        const whole = await until(() => system.supervisor.ps().services.every((s) => s.state === 'running'), RECOVERY_LIMIT_MS, 50);
        outages.push({ from: killedAt, to: performance.now() });
        if (!whole) violations.push(`kill ${k}: the services were not all running within ${RECOVERY_LIMIT_MS / 1000} s of the restart`);
        recoveries.push(acceptingAt - killedAt);
        downtimes.push(system.database().lastCrash?.downMs ?? -1);
        options.log(`  ${secs(started)} kill ${k}: accepting jobs again ${((acceptingAt - killedAt) / 1000).toFixed(1)} s after the kill (database down ${((system.database().lastCrash?.downMs ?? 0) / 1000).toFixed(1)} s)`);
        await sleep(betweenMs, end.signal);
      }
      const totals = await load.stop();

      const inOutage = (at: number) => outages.some((o) => at >= o.from && at <= o.to);
      const outside = totals.failures.filter((f) => !inOutage(f.at));
      if (outside.length > 0) violations.push(`${outside.length} requests failed outside the outages: ${JSON.stringify(failuresByCause(outside))}`);
      const expected = (cause: string) => cause === '503 TIDE_DB_UNAVAILABLE' || cause === '503 TIDE_LB_NO_UPSTREAM';
      const other = totals.failures.filter((f) => inOutage(f.at) && !(expected(f.cause) && f.retryAfter));
      if (other.length > 0) notes.push(`${other.length} requests failed during the outages with something other than 503 + Retry-After: ${JSON.stringify(failuresByCause(other))}`);

      if (!(await drained(chaos.db, chaos.schema, 90_000))) violations.push('the queue did not drain within 90 s after the load stopped');
      const audit = await auditJobs(chaos.db, chaos.schema, totals.accepted, crashedPids);
      const lost = audit.missing + audit.unfinished + audit.deadOther;
      if (audit.missing > 0) violations.push(`${audit.missing} accepted jobs are missing`);
      if (audit.unfinished > 0 || audit.deadOther > 0) violations.push(`${audit.unfinished + audit.deadOther} accepted jobs did not complete`);
      const ps = system.supervisor.ps();
      const failed = ps.replicas.filter((r) => r.state === 'failed');
      if (failed.length > 0) violations.push(`replicas left failed: ${failed.map((r) => r.id).join(', ')}`);
      const db = system.database();
      if (db.state !== 'running' || db.restarts !== recoveries.length) violations.push(`the database is ${db.state} after ${db.restarts} restarts (expected running after ${recoveries.length})`);
      if (violations.length > 0) violations.push(...audit.examples.map((e) => `e.g. ${e}`));
      if (audit.duplicates > 0) notes.push(`${audit.duplicates} jobs ran twice, each after its worker exited while the database was away (at-least-once)`);
      if (replicaCrashes > 0) notes.push(`${replicaCrashes} replica exits while the database was away, each restarted by the supervisor`);
      const byCause = failuresByCause(totals.failures);
      const round = (ms: number) => Math.round(ms / 100) / 10;
      return {
        name: this.name,
        did: `20 jobs/s (sleep) through the balancer; \`tide up\`'s own embedded PostgreSQL SIGKILLed ${KILLS} times, ${Math.round(betweenMs / 1000)} s apart; nothing restarted by hand`,
        durationMs: performance.now() - started,
        counts: {
          accepted: audit.accepted,
          completed: audit.completed,
          lost,
          duplicates: audit.duplicates,
          kills: recoveries.length,
          ...Object.fromEntries(recoveries.map((ms, i) => [`secondsToAcceptingAfterKill${i + 1}`, round(ms)])),
          ...Object.fromEntries(downtimes.map((ms, i) => [`databaseDownSeconds${i + 1}`, round(ms)])),
          replicaExits: replicaCrashes,
          replicasFailed: failed.length,
          refused503: totals.failures.filter((f) => expected(f.cause) && f.retryAfter).length,
          ...Object.fromEntries(Object.entries(byCause).map(([k, v]) => [`failed ${k}`, v])),
        },
        violations,
        notes,
      };
    } finally {
      end.abort();
      await load?.stop();
      await chaos?.stop();
    }
  },
};
