/**
 * Importing a user's own module (handlers, routes). Tidescale itself runs as compiled
 * JavaScript; a user's TypeScript module (.ts, .mts, .cts, .tsx) loads through tsx, whose
 * hooks are registered here the first time such a module is imported, and only then: a
 * JavaScript project never pays for them. Both hooks: the ESM one for `import()`, and the
 * CommonJS one, since a .ts file in a project without `"type": "module"` is CommonJS and
 * Node hands it to the CommonJS loader (without it: `Unexpected identifier`).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPESCRIPT = /\.(m|c)?tsx?$/;

let hooks: Promise<void> | undefined;

/** Registers tsx's ESM and CommonJS hooks once; a no-op when this code already runs through tsx. */
function registerTypeScriptHooks(): Promise<void> {
  // running from our own .ts sources (tests, benchmarks) means tsx is already loaded
  if (import.meta.url.endsWith('.ts')) return Promise.resolve();
  hooks ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register();
    cjs.register();
  });
  return hooks;
}

/** Imports the module at `file` (absolute, or relative to the working directory), TypeScript or JavaScript. */
export async function importUserModule(file: string): Promise<Record<string, unknown>> {
  const absolute = path.resolve(file);
  if (TYPESCRIPT.test(absolute)) await registerTypeScriptHooks();
  return (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
}
