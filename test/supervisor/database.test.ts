/**
 * The embedded PostgreSQL as a supervised component (src/supervisor/database.ts), against the
 * real server: SIGKILLed (as the OOM killer does), it is started again on the same port and
 * data directory and keeps what was committed; when it cannot start again (its port taken)
 * it is marked failed after the backoff's crash count, as a replica is.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import pg from 'pg';

import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { processAlive } from '../../src/os/proc.js';
import { DatabaseWatch, type DatabaseState, type DatabaseStatus } from '../../src/supervisor/database.js';

/** Resolves with the status once the watch reports `state`. */
function reaches(watch: DatabaseWatch, state: DatabaseState): Promise<DatabaseStatus> {
  return new Promise((resolve) => {
    const on = (s: DatabaseStatus) => {
      if (s.state !== state) return;
      watch.off('state', on);
      resolve(s);
    };
    watch.on('state', on);
  });
}

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

test('SIGKILLed, the embedded PostgreSQL is restarted on its port with its data; when it cannot start again it is marked failed', { timeout: 120_000 }, async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-dbwatch-'));
  const lines: string[] = [];
  const server = await startEmbeddedPostgres({ stateDir });
  const watch = new DatabaseWatch({
    server,
    restart: () => startEmbeddedPostgres({ stateDir, port: server.port }),
    log: (line) => lines.push(line),
    checkMs: 100,
    backoff: { initialMs: 10, maxMs: 50, failAfter: 3 },
  });
  const holder = createServer();
  try {
    await query(server.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
    const first = server.pid!;
    assert.ok(processAlive(first));

    const down = reaches(watch, 'down');
    const back = reaches(watch, 'running');
    process.kill(first, 'SIGKILL');
    assert.equal((await down).pid, null);
    const running = await back;
    assert.equal(running.restarts, 1);
    assert.equal(running.port, server.port, 'the same port: the replicas reconnect to the URL they have');
    assert.notEqual(running.pid, first);
    assert.ok(running.lastCrash && running.lastCrash.downMs !== null && running.lastCrash.downMs >= 0);
    const { rows } = await query(server.url, 'SELECT n FROM kept');
    assert.deepEqual(rows, [{ n: 42 }], 'crash recovery kept the committed row');
    assert.ok(lines.some((l) => l.includes('restarting it on port')), lines.join('\n'));

    // killed again with its port taken meanwhile: the restart fails, and that third crash in the window fails it
    const failed = reaches(watch, 'failed');
    const pid = running.pid!;
    process.kill(pid, 'SIGKILL');
    await reaches(watch, 'down');
    // the port is free once the killed postmaster is gone (its backends follow it)
    for (let i = 0; ; i++) {
      const bound = await new Promise<boolean>((resolve) => {
        holder.once('error', () => resolve(false));
        holder.listen(server.port, '127.0.0.1', () => resolve(true));
      });
      if (bound) break;
      assert.ok(i < 200, 'the port was released');
      await new Promise((r) => setTimeout(r, 25));
    }
    const status = await failed;
    assert.equal(status.state, 'failed');
    assert.match(status.lastError ?? '', /did not start/);
    assert.ok(lines.some((l) => l.includes('marked failed')), lines.join('\n'));
  } finally {
    holder.close();
    await watch.stop();
    await rm(stateDir, { recursive: true, force: true });
    // as root the data lives where the postgres user reaches it, outside the state directory
    await rm(server.dataDir, { recursive: true, force: true });
  }
});
