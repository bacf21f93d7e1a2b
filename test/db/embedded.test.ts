import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import pg from 'pg';

import { fallbackDataDir, redactUrl, startEmbeddedPostgres } from '../../src/db/embedded.js';

test('the embedded PostgreSQL starts, is reused by a second caller, and stops', async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'tide-embedded-'));
  const first = await startEmbeddedPostgres({ stateDir });
  try {
    assert.equal(first.owned, true);
    const second = await startEmbeddedPostgres({ stateDir });
    assert.equal(second.owned, false, 'a second process on the same state dir reuses the server');
    assert.equal(second.port, first.port);
    const client = new pg.Client({ connectionString: second.url });
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    await client.end();
    assert.match(rows[0]!.v, /^\d+/);
    assert.ok(!redactUrl(first.url).includes(new URL(first.url).password));
  } finally {
    await first.stop();
    await rm(stateDir, { recursive: true, force: true });
    // as root, mkdtemp's private directory sends the data under the temp directory
    await rm(fallbackDataDir(stateDir), { recursive: true, force: true });
  }
});
