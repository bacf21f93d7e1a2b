/**
 * The embedded database under `tide up` went down (killed, say, by the OOM killer): while it
 * is down or restarting every request gets 503 and the workers wait; failed means it kept
 * going down and is no longer restarted; restarted means it crashed and came back (the jobs
 * were kept by its crash recovery), which is worth knowing before it happens again.
 */
import type { Facts, Finding } from '../types.js';

export function databaseSupervision(facts: Facts): Finding[] {
  const db = facts.databaseSupervision;
  if (!db) return [];
  const ago = (at: number) => `${Math.max(0, Math.round((facts.at - at) / 1000))} s ago`;
  const why = db.lastError ? `; the last restart failed: ${db.lastError}` : '';
  if (db.state === 'failed') {
    return [
      {
        severity: 'critical',
        code: 'database-failed',
        subject: 'database',
        title: 'The embedded PostgreSQL kept going down and is no longer restarted',
        evidence: `state failed after ${db.restarts} restart(s)${db.lastCrash ? `, last down ${ago(db.lastCrash.at)}` : ''}${why} (from tide ps).`,
        fix: 'Read its log (server.log in the data directory under the state directory) and the kernel log for OOM kills (`dmesg | grep -i kill`); free memory or lower the replicas\' pools, then `tide down` and `tide up`.',
      },
    ];
  }
  if (db.state === 'down' || db.state === 'restarting') {
    return [
      {
        severity: 'critical',
        code: 'database-down',
        subject: 'database',
        title: `The embedded PostgreSQL is ${db.state}: requests get 503 and workers wait until it is back`,
        evidence: `state ${db.state}${db.lastCrash ? ` since ${ago(db.lastCrash.at)}` : ''}, ${db.restarts} restart(s) so far${why} (from tide ps).`,
        fix: '`tide up` restarts it on its port by itself (crash recovery keeps every accepted job); if it does not come back, read server.log in its data directory.',
      },
    ];
  }
  if (db.restarts > 0 && db.lastCrash) {
    return [
      {
        severity: 'warning',
        code: 'database-restarted',
        subject: 'database',
        title: 'The embedded PostgreSQL went down and was restarted',
        evidence: `${db.restarts} restart(s); the last one ${ago(db.lastCrash.at)}${db.lastCrash.downMs !== null ? `, down ${(db.lastCrash.downMs / 1000).toFixed(1)} s` : ''} (from tide ps).`,
        fix: 'Find out what killed it before it happens again: the kernel log for OOM kills (`dmesg | grep -i kill`), memory per replica (`tide ps`), and server.log in its data directory.',
      },
    ];
  }
  return [];
}
