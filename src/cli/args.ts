/**
 * Argument parsing for the commands: node's own `parseArgs`, with usage errors turned into
 * TIDE_USAGE naming the argument.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

import { TideError } from '../errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** What `parse` returns (named, so the declarations can say it). */
export type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>>;

export function parse<T extends Options>(argv: string[], options: T, allowPositionals = true): Parsed<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    const arg = /'(-{1,2}[^']+)'/.exec(message)?.[1];
    throw new TideError('TIDE_USAGE', message, { cause, ...(arg ? { where: { arg } } : {}) });
  }
}

/** A flag's number value, or a TIDE_USAGE naming the flag. */
export function numberArg(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    throw new TideError('TIDE_USAGE', `${flag} takes a number >= ${min}, not "${value}".`, { where: { arg: flag } });
  }
  return n;
}
