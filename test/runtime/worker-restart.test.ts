/**
 * A database restart mid-run: a private embedded PostgreSQL is stopped and started again on
 * the same port while a worker drains a queue; the worker rides it out and nothing is lost.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { startWorker } from '../../src/runtime/worker/worker.js';
import { freePort } from '../helpers/net.js';

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // during the outage the check itself fails: that is "not yet"
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('a worker survives a database restart and loses no job', { timeout: 120_000 }, async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-restart-'));
  const port = await freePort();
  let server: EmbeddedDatabase = await startEmbeddedPostgres({ stateDir, port });
  const queue = await createPostgresQueue({ connectionString: server.url, poolSize: 2 });
  const lines: string[] = [];
  const worker = await startWorker({ connectionString: server.url, queues: ['r'], concurrency: 4, pollMs: 50, log: (l) => lines.push(l) });
  try {
    const total = 300;
    await queue.enqueueMany(Array.from({ length: total }, () => ({ queue: 'r', handler: 'sleep', payload: { ms: 20 } })));
    const completed = async () => (await queue.stats('r'))[0]!.completed;
    await until(async () => (await completed()) >= 40, 30_000, 'the worker under way');

    await server.stop();
    server = await startEmbeddedPostgres({ stateDir, port });
    assert.equal(server.owned, true, 'restarted by this test on the same port');

    await until(async () => (await completed()) === total, 60_000, 'every job completed after the restart');
    const [s] = await queue.stats('r');
    assert.equal(s!.dead, 0);
    assert.equal(s!.ready + s!.active + s!.delayed, 0);
    assert.ok(lines.some((l) => /database unavailable/.test(l)), 'the worker noticed the outage');
    assert.ok(lines.some((l) => /database reachable again/.test(l)), 'and the recovery');
  } finally {
    await worker.stop(1000);
    await queue.close();
    await server.stop();
    // as root in a private directory, the data lives outside it (embedded.ts)
    await rm(server.dataDir, { recursive: true, force: true });
    await rm(stateDir, { recursive: true, force: true });
  }
});
