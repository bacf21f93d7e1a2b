#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm install` of the repository builds it): compiles src/
// to dist/ with declarations, then copies the files tsc does not emit (SQL migrations, the
// dashboard's static files, the orphan guard). dist/ is cleared first so a deleted source
// leaves no stale module behind.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
// the package exports no bin path; its package.json is exported, and bin/tsc sits beside it
const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

/** Every file under `dir` that tsc does not compile, relative to src/. */
function assets(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return assets(full);
    return /\.(m|c)?ts$/.test(e.name) ? [] : [path.relative(src, full)];
  });
}
for (const file of assets(src)) cpSync(path.join(src, file), path.join(dist, file));
