/**
 * The package as a user gets it: `npm pack`, then installed from the tarball into fresh
 * projects outside the repository, one `"type": "module"` and one CommonJS. In each: `tide
 * init`, a JavaScript and a TypeScript handlers module (each on its own worker service), jobs
 * enqueued from application code through the library, `tide up -d`, the jobs complete, `tide
 * scale`, `tide down`. The ESM project uses the run's PostgreSQL (DATABASE_URL, in a schema of
 * its own); the CommonJS one the embedded database, in a private directory (mkdtemp: mode
 * 700) with its binaries inside it: as root, what a clone in root's home meets (the server runs
 * as another user, who must reach a copy of the binaries and the data). The install prefers
 * the local npm cache (`--prefer-offline`), so it goes to the registry only for what the
 * cache lacks.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseDocument } from 'yaml';

import type { ControlState } from '../../src/app/client.js';
import { fallbackDataDir, stopEmbeddedPostgres } from '../../src/db/embedded.js';
import { freshSchema } from '../helpers/db.js';
import { ok, run } from '../helpers/run.js';
import { alive, stopIfAlive } from '../helpers/tide.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

let packDir: string;
let tarball: string;

before(async () => {
  packDir = await mkdtemp(path.join(tmpdir(), 'tide-pack-'));
  // npm test has just built dist/; --ignore-scripts keeps pack from building it again
  ok(await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: root }), 'npm pack');
  const [name] = (await readdir(packDir)).filter((f) => f.endsWith('.tgz'));
  assert.ok(name, 'npm pack wrote no tarball');
  tarball = path.join(packDir, name);
});

after(async () => {
  await rm(packDir, { recursive: true, force: true });
});

test('the tarball holds what a user needs, and nothing of the tests, benchmarks or chaos suite', { timeout: 60_000 }, async () => {
  const list = ok(await run('tar', ['tzf', tarball], { cwd: packDir }), 'tar').stdout.trim().split('\n');
  const top = new Set(list.map((f) => f.replace(/^package\//, '').split('/')[0]));
  assert.deepEqual([...top].sort(), ['LICENSE', 'README.md', 'bin', 'dist', 'docs', 'package.json']);
  for (const must of ['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/cli/main.js', 'package/dist/db/migrations/0001_queue.sql']) {
    assert.ok(list.includes(must), `${must} is missing from the tarball`);
  }
  assert.equal(list.filter((f) => /\.(ts|mts|cts)$/.test(f) && !f.endsWith('.d.ts')).length, 0, 'TypeScript sources in the tarball');
});

const JS_HANDLERS = {
  module: 'export async function double(payload) {\n  return payload.n * 2;\n}\n',
  commonjs: 'exports.double = async (payload) => payload.n * 2;\n',
};

// type annotations on purpose: they are what fails to load without tsx's hooks
const TS_HANDLERS = {
  module: [
    "import { type JobContext, defineHandlers } from 'tidescale';",
    '',
    'export default defineHandlers({',
    '  shout: async (payload: { text: string }, ctx: JobContext): Promise<string> => {',
    '    ctx.log(`shouting ${ctx.job.id}`);',
    '    return payload.text.toUpperCase();',
    '  },',
    '});',
    '',
  ].join('\n'),
  commonjs: [
    "import type { JobContext } from 'tidescale';",
    '',
    'interface Shout {',
    '  text: string;',
    '}',
    '',
    'export const shout = async (payload: Shout, _ctx: JobContext): Promise<string> => payload.text.toUpperCase();',
    '',
  ].join('\n'),
};

/** A consumer's type check of the library: the handler map types enqueue's name and payload. */
const TYPED_ENQUEUE = [
  "import { createQueue } from 'tidescale';",
  "import type handlers from './jobs.ts';",
  '',
  'export async function check(): Promise<void> {',
  '  const queue = await createQueue<typeof handlers>();',
  "  await queue.enqueue('shout', { text: 'hi' }, { queue: 'ts', runAt: new Date(), maxAttempts: 2 });",
  '  // @ts-expect-error: shout takes { text: string }',
  "  await queue.enqueue('shout', { txt: 'hi' });",
  '  await queue.close();',
  '}',
  '',
].join('\n');
const CONSUMER_TSCONFIG = {
  compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2023', strict: true, noEmit: true, allowImportingTsExtensions: true },
  files: ['jobs.ts', 'check.ts'],
};
/** The repository's TypeScript compiler (the package exports no bin path; bin/tsc sits beside its package.json). */
const TSC = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');

/** Application code: enqueues one job per handler through the library and waits for the results. */
const APP_BODY = `
  const queue = await createQueue({ config: 'tide.yaml' });
  try {
    const settled = async (id) => {
      for (let i = 0; i < 1200; i++) {
        const job = await queue.getJob(id);
        if (job.state === 'completed') return job.result;
        if (job.state === 'dead') throw new Error('job ' + id + ' died: ' + job.lastError);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('job ' + id + ' did not complete within 120 s');
    };
    const [a, b] = await queue.enqueueMany([
      { handler: 'double', payload: { n: 21 }, queue: 'js' },
      { handler: 'shout', payload: { text: 'hi' }, queue: 'ts', priority: 1 },
    ]);
    console.log(JSON.stringify({ double: await settled(a.id), shout: await settled(b.id) }));
  } finally {
    await queue.close();
  }
`;
const APP = {
  module: `import { createQueue } from 'tidescale';\n${APP_BODY}`,
  commonjs: [
    "const assert = require('node:assert');",
    '',
    'async function main() {',
    "  const { createQueue } = await import('tidescale');",
    '  // Node 20.19+ and 22.12+ also load it with require()',
    "  if (process.features.require_module) assert.equal(typeof require('tidescale').createQueue, 'function');",
    APP_BODY,
    '}',
    '',
    'main().catch((err) => {',
    '  console.error(err);',
    '  process.exitCode = 1;',
    '});',
    '',
  ].join('\n'),
};

for (const type of ['module', 'commonjs'] as const) {
  test(`installed from the tarball into a ${type} project: init, JS and TS handlers, enqueue from code, up, scale, down`, { timeout: 480_000 }, async () => {
    const db = await freshSchema('pkg');
    const dir = await mkdtemp(path.join(tmpdir(), `tide-app-${type}-`));
    const embedded = type === 'commonjs';
    const env = { ...process.env };
    if (embedded) delete env.DATABASE_URL;
    let upPid: number | undefined;
    try {
      await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: `app-${type}`, private: true, ...(type === 'module' ? { type } : {}) }));
      ok(await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: dir, timeout: 300_000 }), 'npm install');
      const tide = (...args: string[]) => run('npx', ['--no-install', 'tide', ...args], { cwd: dir, env });

      ok(await tide('init'), 'tide init');
      const doc = parseDocument(await readFile(path.join(dir, 'tide.yaml'), 'utf8'));
      if (!embedded) doc.setIn(['database', 'url'], '${DATABASE_URL}');
      doc.setIn(['database', 'schema'], db.schema);
      doc.setIn(['balancer', 'host'], '127.0.0.1');
      doc.setIn(['balancer', 'port'], 0);
      doc.setIn(['control', 'port'], 0);
      const worker = (handlers: string, queue: string) => ({ kind: 'worker', replicas: 1, min: 1, max: 3, concurrency: 4, handlers, queues: [queue], stop_grace_seconds: 5 });
      doc.set(
        'services',
        doc.createNode({
          api: { kind: 'api', replicas: 1, min: 1, max: 2, stop_grace_seconds: 5 },
          worker: worker('./jobs.js', 'js'),
          'worker-ts': worker('./jobs.ts', 'ts'),
        }),
      );
      await writeFile(path.join(dir, 'tide.yaml'), doc.toString());
      await writeFile(path.join(dir, 'jobs.js'), JS_HANDLERS[type]);
      await writeFile(path.join(dir, 'jobs.ts'), TS_HANDLERS[type]);
      await writeFile(path.join(dir, 'app.js'), APP[type]);

      if (type === 'module') {
        // the declarations serve a strict TypeScript project: typed handlers type enqueue
        await writeFile(path.join(dir, 'check.ts'), TYPED_ENQUEUE);
        await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG));
        ok(await run(process.execPath, [TSC, '-p', '.'], { cwd: dir }), 'tsc in the project');
      }
      const up = ok(await tide('up', '-d'), 'tide up -d');
      if (embedded && process.getuid?.() === 0) {
        // the one line that says how PostgreSQL runs as root, and where its files are
        assert.match(`${up.stdout}${up.stderr}${await readFile(path.join(dir, '.tide', 'up.log'), 'utf8').catch(() => '')}`, /runs as user \w+ \(uid \d+\), binaries in /);
      }
      upPid = (JSON.parse(await readFile(path.join(dir, '.tide', 'control.json'), 'utf8')) as ControlState).pid;

      const app = ok(await run(process.execPath, ['app.js'], { cwd: dir, env }), 'node app.js');
      assert.deepEqual(JSON.parse(app.stdout.trim().split('\n').at(-1)!), { double: 42, shout: 'HI' });

      ok(await tide('scale', 'worker=2'), 'tide scale');
      const ps = JSON.parse(ok(await tide('ps', '--json'), 'tide ps').stdout) as { services: Array<{ name: string; desired: number }> };
      assert.equal(ps.services.find((s) => s.name === 'worker')?.desired, 2);

      ok(await tide('down'), 'tide down');
      assert.equal(alive(upPid), false);
    } finally {
      stopIfAlive(upPid);
      if (embedded) {
        const stateDir = path.join(dir, '.tide');
        await stopEmbeddedPostgres(stateDir).catch(() => false);
        // as root the data and the binaries' copy live outside the private directory
        await rm(fallbackDataDir(stateDir), { recursive: true, force: true });
        await rm(`${fallbackDataDir(stateDir)}-bin`, { recursive: true, force: true });
      }
      await rm(dir, { recursive: true, force: true });
      await db.drop();
    }
  });
}
