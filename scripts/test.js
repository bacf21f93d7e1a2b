#!/usr/bin/env node
// `npm test`: runs every test/**/*.test.ts with node's test runner (through tsx).
// Without DATABASE_URL it starts the embedded PostgreSQL once for the whole run, so the
// suite passes on a fresh machine with only Node and npm. Arguments filter test files by
// substring: `npm test -- queue api`. The tests import src/ through tsx, but every process
// they spawn through bin/tide.js (replicas, `tide up`) runs the compiled dist/, so the run
// builds it first: a test never runs against a stale build. With `--pgbouncer`, the chosen
// files run through a real PgBouncer in transaction mode started in front of that PostgreSQL
// (DATABASE_URL points at it; DATABASE_UPSTREAM_URL at the server itself).
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { register } from 'tsx/esm/api';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return find(full);
    return e.name.endsWith('.test.ts') ? [full] : [];
  });
}

const files = find(path.join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

execFileSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { stdio: 'inherit', cwd: root });

for (const [name, what] of [['REDIS_URL', 'Redis'], ['AMQP_URL', 'RabbitMQ']]) {
  if (!process.env[name]) console.log(`note: ${name} is not set; the ${what} tests will skip (set it to run them)`);
}

let embedded;
let bouncer;
if (!process.env.DATABASE_URL) {
  register();
  const { startEmbeddedPostgres } = await import('../src/db/embedded.ts');
  console.log('DATABASE_URL is not set: starting the embedded PostgreSQL for the tests');
  embedded = await startEmbeddedPostgres({ stateDir: path.join(root, '.tide', 'test'), log: (l) => console.log(`  ${l}`) });
  process.env.DATABASE_URL = embedded.url;
}

if (process.argv.includes('--pgbouncer')) {
  register();
  const { startPgBouncer, pgbouncerSkipReason } = await import('../test/helpers/pgbouncer.ts');
  const skip = pgbouncerSkipReason();
  if (skip) {
    console.log(`note: ${skip}; --pgbouncer runs nothing`);
    if (embedded) await embedded.stop();
    process.exit(0);
  }
  bouncer = await startPgBouncer({ upstreamUrl: process.env.DATABASE_URL, poolSize: 20 });
  console.log(`running through PgBouncer (transaction mode) on 127.0.0.1:${bouncer.port}`);
  process.env.DATABASE_UPSTREAM_URL = process.env.DATABASE_URL;
  process.env.DATABASE_URL = bouncer.url;
}

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// every test is bounded: a regression that hangs fails after this long instead of stalling the run
// (a file counts as one test: the container tests' file, which builds an image, takes about five minutes)
const timeout = process.env.TEST_TIMEOUT_MS ?? '600000';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root, env: process.env },
);
// a stopped run (Ctrl-C, a CI timeout) still stops the servers it started: the test runner
// ends on the signal, and the lines below run
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
const code = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
if (bouncer) await bouncer.stop();
if (embedded) await embedded.stop();
process.exit(code);
