/**
 * An API replica killed under load: SIGKILL of one api replica (of three) while jobs arrive
 * through the balancer; the supervisor restarts it and it rejoins.
 *
 * Invariant: failed requests are no more than those in flight on that replica: the ones it
 * had at the kill (read from the balancer in the same tick as the kill) plus the ones the
 * balancer sent it after the kill and before it could know (until a closed connection or the
 * supervisor's exit notice reaches it; counted from the upstream's request counter, reported
 * apart as sentAfterKill); every accepted job completes; the replica is healthy again and back
 * in the balancer.
 */
import { failuresByCause, startLoad } from '../load.js';
import { auditJobs, drained, secs, sleep, startChaosSystem, until } from '../system.js';
import type { Scenario, ScenarioResult } from '../types.js';

export const replicaKill: Scenario = {
  name: 'replica-kill',
  checks: 'failed requests <= those in flight on the killed api replica (at the kill, or sent before the balancer could know); it rejoins; no accepted job lost',
  async run(options): Promise<ScenarioResult> {
    const kills = options.full ? 5 : options.durationMs && options.durationMs < 30_000 ? 1 : 2;
    const started = performance.now();
    const violations: string[] = [];
    const end = new AbortController();
    const chaos = await startChaosSystem({
      databaseUrl: options.databaseUrl,
      api: { replicas: 3, max: 3 },
      worker: { replicas: 2, max: 2, concurrency: 8 },
      log: (l) => options.log(`  system: ${l}`),
    });
    const { system } = chaos;
    const balancer = system.balancer!;
    // a higher rate than the other scenarios, so the victim has requests in flight when it dies
    const load = startLoad({
      url: balancer.url,
      ratePerSecond: 60,
      seed: options.seed,
      job: (_i, r) => ({ handler: 'sleep', payload: { ms: Math.round(10 + r() * 90) } }),
    });
    let inFlightAtKills = 0;
    let sentAfterKill = 0;
    try {
      for (let k = 0; k < kills; k++) {
        await Promise.race([load.accepted(150), sleep(30_000, end.signal)]);
        const replicas = system.supervisor.ps().replicas.filter((r) => r.service === 'api' && r.state === 'healthy' && r.pid !== null);
        const victim = replicas[k % replicas.length];
        if (!victim?.pid) {
          violations.push('no healthy api replica to kill');
          break;
        }
        // kill it mid-request when we can: wait (a few seconds at most) for a tick in which
        // it has a request in flight; the read and the kill are in the same tick, so nothing
        // can be dispatched to it in between
        const deadline = performance.now() + 5_000;
        let before = balancer.upstreams().find((u) => u.id === victim.id);
        while ((before?.in_flight ?? 0) === 0 && performance.now() < deadline) {
          await new Promise((resolve) => setImmediate(resolve));
          before = balancer.upstreams().find((u) => u.id === victim.id);
        }
        const inFlight = before?.in_flight ?? 0;
        // requests the balancer still sent to the dead replica before it noticed (the pool
        // cannot know of a SIGKILL before the closed connections or the exit reach it)
        const noticed = new Promise<number>((resolve) => {
          const on = (id: string) => {
            if (id !== victim.id) return;
            balancer.events.off('down', on).off('draining', on);
            resolve((balancer.upstreams().find((u) => u.id === victim.id)?.requests ?? 0) - (before?.requests ?? 0));
          };
          balancer.events.on('down', on).on('draining', on);
        });
        process.kill(victim.pid, 'SIGKILL');
        inFlightAtKills += inFlight;
        // bounded: a balancer that never notices must fail the scenario, not hang it
        const late = await Promise.race([noticed, sleep(30_000, end.signal).then(() => -1)]);
        if (late < 0) {
          violations.push(`the balancer never took ${victim.id} out after its SIGKILL (no down or draining event within 30 s)`);
          break;
        }
        sentAfterKill += late;
        options.log(`  ${secs(started)} SIGKILL ${victim.id} (pid ${victim.pid}) with ${inFlight} requests in flight on it; ${late} more sent to it before the balancer noticed`);
        const back = await until(() => {
          const r = system.supervisor.ps().replicas.find((x) => x.id === victim.id);
          return r?.state === 'healthy' && r.pid !== victim.pid && balancer.upstreams().some((u) => u.id === victim.id);
        }, 30_000, 100);
        if (!back) violations.push(`${victim.id} was not healthy and back in the balancer within 30 s`);
      }
      await Promise.race([load.accepted(150), sleep(30_000, end.signal)]);
      const totals = await load.stop();
      // in flight on it: those it had at the kill, and those the balancer still sent it before
      // it could know (a POST on a keep-alive connection the dead process left is not replayed:
      // the balancer cannot tell whether it was read, as nginx cannot)
      if (totals.failures.length > inFlightAtKills + sentAfterKill) {
        violations.push(`${totals.failures.length} requests failed, more than the ${inFlightAtKills + sentAfterKill} in flight on the killed replicas: ${JSON.stringify(failuresByCause(totals.failures))}`);
      }
      if (!(await drained(chaos.db, chaos.schema, 60_000))) violations.push('the queue did not drain within 60 s after the load stopped');
      const audit = await auditJobs(chaos.db, chaos.schema, totals.accepted, []);
      if (audit.missing + audit.unfinished + audit.deadOther > 0) violations.push(`${audit.missing + audit.unfinished + audit.deadOther} accepted jobs did not complete`);
      if (violations.length > 0) violations.push(...audit.examples.map((e) => `e.g. ${e}`));
      return {
        name: this.name,
        did: `60 jobs/s (sleep) through the balancer to 3 api replicas; ${kills} SIGKILL${kills > 1 ? 's' : ''} of an api replica, each waited until restarted and back in the balancer`,
        durationMs: performance.now() - started,
        counts: {
          accepted: audit.accepted,
          completed: audit.completed,
          lost: audit.missing + audit.unfinished + audit.deadOther,
          kills,
          inFlightAtKills,
          sentAfterKill,
          httpFailures: totals.failures.length,
          ...Object.fromEntries(Object.entries(failuresByCause(totals.failures)).map(([k, v]) => [`failed ${k}`, v])),
        },
        violations,
        notes:
          sentAfterKill > 0
            ? [`${sentAfterKill} request(s) reached a killed replica after the kill, before the balancer knew: a POST on a keep-alive connection the dead process left fails with 502 (not replayed, since the balancer cannot tell whether it was read)`]
            : [],
      };
    } finally {
      end.abort();
      await load.stop();
      await chaos.stop();
    }
  },
};
