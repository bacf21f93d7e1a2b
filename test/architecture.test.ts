/**
 * The import direction: every module of src/ imports only from its own room (top-level folder)
 * or from rooms on a lower floor. A new import that runs up or across a floor fails here, naming
 * the file and the import. There are no exceptions: rooms on one floor do not import each other,
 * so no two rooms form a cycle.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Floors, lowest first: a room may import from its own floor's other rooms only where listed below. */
const FLOORS: ReadonlyArray<readonly string[]> = [
  ['errors.ts', 'fields.ts', 'version.ts', 'random.ts', 'clock.ts', 'os', 'metrics'],
  ['core', 'net'],
  ['db'],
  ['config', 'actuators', 'runtime', 'sim', 'supervisor', 'balancer'],
  ['sources', 'export', 'load', 'library'],
  ['controller', 'plan', 'index.ts'],
  ['dashboard'],
  ['app'],
  ['doctor'],
  ['cli'],
];

function floorOf(room: string): number {
  const i = FLOORS.findIndex((f) => f.includes(room));
  if (i < 0) throw new Error(`src/${room} is on no floor: add it to FLOORS in test/architecture.test.ts`);
  return i;
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return files(full);
    return /\.(ts|mjs)$/.test(e.name) ? [full] : [];
  });
}

/** Relative imports of a module: static `from '...'`, `import('...')` with a literal. */
function imports(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)) out.push(m[1]!);
  return out;
}

const roomOf = (file: string): string => path.relative(src, file).split(path.sep)[0]!;

test('imports run down the floors (or stay in their room)', () => {
  const upward: string[] = [];
  let checked = 0;
  for (const file of files(src)) {
    const from = path.relative(src, file);
    const room = roomOf(file);
    for (const spec of imports(readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      const to = path.relative(src, target);
      if (to.startsWith('..')) continue; // package.json and the like
      checked++;
      const toRoom = roomOf(target);
      if (toRoom === room || floorOf(toRoom) < floorOf(room)) continue;
      upward.push(`src/${from} imports src/${to} (${toRoom} is not below ${room})`);
    }
  }
  assert.ok(checked > 300, `only ${checked} imports read: the pattern no longer matches the code`);
  assert.deepEqual(upward, []);
});

test('the check sees an upward import', () => {
  // the pattern itself: a module of core importing the CLI would be reported
  assert.deepEqual(imports("import { x } from '../cli/main.js';\nconst y = await import('../app/system.js');"), ['../cli/main.js', '../app/system.js']);
  assert.ok(floorOf('cli') > floorOf('core'));
});
