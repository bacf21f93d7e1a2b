/**
 * The built-in handlers, and loading a user's handlers module (`--handlers ./jobs.ts`): a
 * module whose named exports, or whose default export, is an object of
 * `name -> async (payload, ctx) => result`. User handlers win over built-ins of the same name.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';

import { TideError } from '../../errors.js';
import { importUserModule } from '../user-module.js';
import { hash } from './hash.js';
import { sleep } from './sleep.js';
import type { Handlers, JobHandler } from './types.js';

export type { Handlers, JobContext, JobHandler } from './types.js';

export const builtinHandlers: Handlers = { hash, sleep };

function functionsOf(value: unknown): Handlers {
  const out: Handlers = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [name, fn] of Object.entries(value)) if (typeof fn === 'function') out[name] = fn as JobHandler;
  return out;
}

/** Loads a handlers module (path relative to `cwd`); throws TIDE_HANDLERS_LOAD naming the file. */
export async function loadHandlers(modulePath: string, cwd = process.cwd()): Promise<Handlers> {
  const file = path.resolve(cwd, modulePath);
  try {
    await access(file);
  } catch (cause) {
    throw new TideError('TIDE_HANDLERS_LOAD', `The handlers module ${modulePath} does not exist.`, { cause, where: { file: modulePath } });
  }
  let mod: Record<string, unknown>;
  try {
    mod = await importUserModule(file);
  } catch (cause) {
    throw new TideError('TIDE_HANDLERS_LOAD', `The handlers module ${modulePath} failed to load: ${(cause as Error).message}`, {
      cause,
      where: { file: modulePath },
    });
  }
  const { default: fallback, ...named } = mod;
  const handlers = { ...functionsOf(fallback), ...functionsOf(named) };
  if (Object.keys(handlers).length === 0) {
    throw new TideError(
      'TIDE_HANDLERS_LOAD',
      `The handlers module ${modulePath} exports no handler functions; export an object of name -> async (payload, ctx) => result, or named functions.`,
      { where: { file: modulePath } },
    );
  }
  return handlers;
}
