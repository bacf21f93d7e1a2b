import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { type TestSchema, freshSchema } from '../helpers/db.js';

const bin = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));
let schema: TestSchema;
let dir: string;

before(async () => {
  schema = await freshSchema('apicli');
  dir = await mkdtemp(path.join(tmpdir(), 'tide-api-cli-'));
});

after(async () => {
  await schema.drop();
  await rm(dir, { recursive: true, force: true });
});

function tide(args: string[]): { child: ChildProcess; stderr: string[]; waitFor(re: RegExp): Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [bin, 'api', ...args], {
    env: { ...process.env, DATABASE_URL: schema.url, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    stderr,
    exit,
    waitFor: (re) => {
      const seen = stderr.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        void exit.then((code) => reject(new Error(`tide api exited (${String(code)}) before printing ${re}: ${stderr.join('\n')}`)));
      });
    },
  };
}

test('tide api: SIGTERM lets the request in flight finish, then exits 0', async () => {
  const routes = path.join(dir, 'routes.mjs');
  // the slow route finishes only once SIGTERM has arrived: it is in flight during the shutdown
  await writeFile(
    routes,
    `export default async function routes(app) {
  app.get('/slow', async () => {
    const signalled = new Promise((resolve) => process.once('SIGTERM', () => setImmediate(resolve)));
    process.stderr.write('slow: started\\n');
    await signalled;
    return { finished: true };
  });
}
`,
  );
  const api = tide(['--port', '0', '--schema', schema.schema, '--routes', routes]);
  try {
    const url = /(http:\/\/\S+)/.exec(await api.waitFor(/listening on http/))![1]!;
    const enqueued = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"handler":"hash"}' });
    assert.equal(enqueued.status, 202);

    const slow = fetch(`${url}/slow`);
    await api.waitFor(/slow: started/);
    api.child.kill('SIGTERM');
    const res = await slow;
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { finished: true });
    assert.equal(await api.exit, 0, api.stderr.join('\n'));
    assert.ok(api.stderr.some((l) => /tide api stopped/.test(l)));
  } finally {
    if (api.child.exitCode === null) api.child.kill('SIGKILL');
  }
});

test('tide api: a port in use is TIDE_API_LISTEN with exit code 1; a bad flag is TIDE_USAGE with 2', async () => {
  const busy: Server = createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  try {
    const port = (busy.address() as { port: number }).port;
    const api = tide(['--port', String(port), '--schema', schema.schema]);
    assert.equal(await api.exit, 1);
    assert.ok(api.stderr.some((l) => l.includes('TIDE_API_LISTEN')), api.stderr.join('\n'));

    const bad = tide(['--port', 'eighty']);
    assert.equal(await bad.exit, 2);
    assert.ok(bad.stderr.some((l) => l.includes('TIDE_USAGE') && l.includes('--port')), bad.stderr.join('\n'));
  } finally {
    busy.close();
  }
});

test('tide api: a trusted proxy that is not an address or CIDR is TIDE_TRUSTED_PROXY with exit code 2, naming where it came from', async () => {
  const flag = tide(['--port', '0', '--trusted-proxy', '10.0.0.0/33']);
  assert.equal(await flag.exit, 2);
  assert.ok(flag.stderr.some((l) => l.includes('TIDE_TRUSTED_PROXY') && l.includes('--trusted-proxy')), flag.stderr.join('\n'));
  const header = tide(['--port', '0', '--forwarded-header', 'x-real-ip']);
  assert.equal(await header.exit, 2);
  assert.ok(header.stderr.some((l) => l.includes('TIDE_USAGE') && l.includes('--forwarded-header')), header.stderr.join('\n'));
});
