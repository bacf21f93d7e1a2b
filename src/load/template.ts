/**
 * Request templates: method, path, headers and a body in which `{{counter}}` (a number unique
 * across the run's threads), `{{uuid}}`, `{{random}}` (an integer from a seeded generator)
 * and `{{thread}}` are replaced on every request. A template compiles once into literal
 * parts and variable slots, so rendering costs a join, not a regex per request.
 */
import { randomUUID } from 'node:crypto';

import { TideError } from '../errors.js';
import { mulberry32 } from '../random.js';

export const VARIABLES = ['counter', 'uuid', 'random', 'thread'] as const;
export type Variable = (typeof VARIABLES)[number];

/** A serializable request template (it crosses to worker threads). */
export interface RequestTemplate {
  method: string;
  /** Path and query, with variables allowed. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** The job `tide load` sends when it is given no method, path or body: a short sleep job. */
export const DEMO_JOB = '{"handler":"sleep","payload":{"mean_ms":20,"cv":1}}';

type Part = string | Variable;

/** One thread's compiled renderer. */
export interface Renderer {
  path(): string;
  body(): string | undefined;
  readonly hasVariables: boolean;
}

function compile(text: string, where: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(/\{\{\s*([a-z]*)\s*\}\}/g)) {
    const name = m[1]!;
    if (!(VARIABLES as readonly string[]).includes(name)) {
      throw new TideError('TIDE_LOAD_TEMPLATE', `Unknown variable {{${name}}} in the ${where}; the variables are ${VARIABLES.map((v) => `{{${v}}}`).join(', ')}.`, {
        where: { arg: where === 'body' ? '--body' : '--path' },
      });
    }
    parts.push(text.slice(last, m.index));
    parts.push(name as Variable);
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

/** Checks a template's variables (throws TIDE_LOAD_TEMPLATE); cheap enough to run before starting. */
export function validateTemplate(t: RequestTemplate): void {
  compile(t.path, 'path');
  if (t.body !== undefined) compile(t.body, 'body');
}

/** A small seeded generator (mulberry32), so `{{random}}` repeats with the same seed. */
export const seededRandom: (seed: number) => () => number = mulberry32;

/** A renderer for thread `thread` of `threads`: counters interleave, so they never collide. */
export function renderer(t: RequestTemplate, thread: number, threads: number, seed: number): Renderer {
  const path = compile(t.path, 'path');
  const body = t.body === undefined ? undefined : compile(t.body, 'body');
  const random = seededRandom(seed + thread * 7919);
  let counter = 0;
  let current = 0;
  const value = (v: Variable): string => {
    switch (v) {
      case 'counter':
        return String(current);
      case 'uuid':
        return randomUUID();
      case 'random':
        return String(Math.floor(random() * 1e9));
      case 'thread':
        return String(thread);
    }
  };
  const render = (parts: Part[]): string => {
    if (parts.length === 1) return parts[0] as string;
    let out = '';
    for (let i = 0; i < parts.length; i++) out += i % 2 === 0 ? (parts[i] as string) : value(parts[i] as Variable);
    return out;
  };
  const hasVariables = path.length > 1 || (body !== undefined && body.length > 1);
  return {
    hasVariables,
    // path() is called first for each request: it advances the counter
    path() {
      current = counter * threads + thread;
      counter++;
      return render(path);
    },
    body: () => (body === undefined ? undefined : render(body)),
  };
}

/** Parses `Name: value` header flags; throws TIDE_LOAD_TEMPLATE naming the bad one. */
export function parseHeaders(lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new TideError('TIDE_LOAD_TEMPLATE', `Header "${line}" is not "Name: value".`, { where: { arg: '--header' } });
    }
    headers[name.toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
