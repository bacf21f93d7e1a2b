/**
 * Database restart during load: a private embedded PostgreSQL (so it can be stopped and
 * started) under the system; it is stopped for a few seconds while jobs keep arriving, then
 * started again on the same port.
 *
 * Invariants: while it is down, every refused request is a 503 with Retry-After (the API's
 * TIDE_DB_UNAVAILABLE, or the balancer's TIDE_LB_NO_UPSTREAM once health checks have taken
 * the replicas out); no other failure, and none outside the outage and its recovery; the
 * system accepts jobs again by itself; every job accepted with 202, before, during or after,
 * completes (the workers resume).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { failuresByCause, startLoad } from '../load.js';
import { type ChaosSystem, auditJobs, drained, secs, sleep, startChaosSystem, until } from '../system.js';
import type { Scenario, ScenarioResult } from '../types.js';

const RECOVERY_LIMIT_MS = 60_000;

export const dbRestart: Scenario = {
  name: 'db-restart',
  checks: 'while PostgreSQL is down only 503 + Retry-After; recovers by itself; no accepted job lost',
  async run(options): Promise<ScenarioResult> {
    const outageMs = options.full ? 20_000 : 5_000;
    const afterMs = options.durationMs ? Math.max(3_000, options.durationMs - outageMs - 5_000) : options.full ? 60_000 : 15_000;
    const started = performance.now();
    const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-chaos-pg-'));
    const violations: string[] = [];
    const notes: string[] = [];
    const end = new AbortController();
    let db: EmbeddedDatabase | undefined;
    let chaos: ChaosSystem | undefined;
    let load: ReturnType<typeof startLoad> | undefined;
    try {
      db = await startEmbeddedPostgres({ stateDir });
      const port = db.port;
      chaos = await startChaosSystem({
        databaseUrl: db.url,
        api: { replicas: 2, max: 2 },
        worker: { replicas: 2, max: 2, concurrency: 8 },
        log: (l) => options.log(`  system: ${l}`),
      });
      load = startLoad({
        url: chaos.system.balancer!.url,
        ratePerSecond: 20,
        seed: options.seed,
        job: (_i, r) => ({ handler: 'sleep', payload: { ms: Math.round(20 + r() * 180) } }),
      });
      const warm = await Promise.race([load.accepted(100).then(() => true), sleep(30_000, end.signal).then(() => false)]);
      if (!warm) violations.push('the system did not accept 100 jobs within 30 s before the outage');

      const downAt = performance.now();
      const acceptedBefore = load.totals.accepted.length;
      options.log(`  ${secs(started)} stopping PostgreSQL (${acceptedBefore} accepted so far)`);
      await db.stop();
      db = undefined;
      await sleep(outageMs, end.signal);
      options.log(`  ${secs(started)} starting PostgreSQL again on port ${port}`);
      db = await startEmbeddedPostgres({ stateDir, port });
      const upAt = performance.now();
      const acceptedDuringOutage = load.totals.accepted.length - acceptedBefore;
      const recovered = await until(() => (load!.totals.lastAcceptedAt ?? 0) > upAt, RECOVERY_LIMIT_MS, 100);
      const recoveredAt = performance.now();
      if (!recovered) violations.push(`no job was accepted within ${RECOVERY_LIMIT_MS / 1000} s after PostgreSQL came back`);
      else options.log(`  ${secs(started)} accepting jobs again, ${((recoveredAt - upAt) / 1000).toFixed(1)} s after the restart`);
      const acceptedBeforeAfter = load.totals.accepted.length;
      await sleep(afterMs, end.signal);
      const totals = await load.stop();
      const acceptedAfter = totals.accepted.length - acceptedBeforeAfter;

      const inOutage = (at: number) => at >= downAt && at <= recoveredAt;
      const good = (cause: string) => cause === '503 TIDE_DB_UNAVAILABLE' || cause === '503 TIDE_LB_NO_UPSTREAM';
      const outside = totals.failures.filter((f) => !inOutage(f.at));
      const wrong = totals.failures.filter((f) => inOutage(f.at) && !(good(f.cause) && f.retryAfter));
      if (outside.length > 0) violations.push(`${outside.length} requests failed outside the outage: ${JSON.stringify(failuresByCause(outside))}`);
      if (wrong.length > 0) violations.push(`${wrong.length} requests failed during the outage with something other than 503 + Retry-After: ${JSON.stringify(failuresByCause(wrong))}`);

      if (!(await drained(chaos.db, chaos.schema, 90_000))) violations.push('the queue did not drain within 90 s after the load stopped');
      const audit = await auditJobs(chaos.db, chaos.schema, totals.accepted, []);
      if (audit.missing > 0) violations.push(`${audit.missing} accepted jobs are missing`);
      if (audit.unfinished > 0 || audit.deadOther > 0) violations.push(`${audit.unfinished + audit.deadOther} accepted jobs did not complete`);
      if (acceptedAfter === 0) violations.push('no job was accepted after the restart');
      if (violations.length > 0) violations.push(...audit.examples.map((e) => `e.g. ${e}`));
      const byCause = failuresByCause(totals.failures);
      return {
        name: this.name,
        did: `20 jobs/s (sleep) through the balancer; the private PostgreSQL stopped for ${outageMs / 1000} s, then started again on the same port; ${Math.round(afterMs / 1000)} s more load`,
        durationMs: performance.now() - started,
        counts: {
          accepted: audit.accepted,
          acceptedDuringOutage,
          acceptedAfterRestart: acceptedAfter,
          completed: audit.completed,
          lost: audit.missing + audit.unfinished + audit.deadOther,
          refused503: totals.failures.filter((f) => good(f.cause) && f.retryAfter).length,
          ...Object.fromEntries(Object.entries(byCause).map(([k, v]) => [`failed ${k}`, v])),
          recoverySeconds: recovered ? Math.round((recoveredAt - upAt) / 100) / 10 : -1,
        },
        violations,
        notes,
      };
    } finally {
      end.abort();
      await load?.stop();
      // the schema can only be dropped with the database up
      if (!db) db = await startEmbeddedPostgres({ stateDir }).catch(() => undefined);
      await chaos?.stop();
      await db?.stop();
      // as root in a private directory, the data lives outside it (embedded.ts)
      if (db) await rm(db.dataDir, { recursive: true, force: true });
      await rm(stateDir, { recursive: true, force: true });
    }
  },
};
