/**
 * Reading a `t,count` trace for replay: the simulator's parser (src/sim/scenario.ts), so a
 * trace means the same to `tide simulate` and `tide load`; its errors come back as
 * TIDE_LOAD_TRACE naming the --trace argument and the file and line.
 */
import { readFileSync } from 'node:fs';

import { TideError, isTideError } from '../errors.js';
import { parseTrace } from '../sim/scenario.js';

export interface LoadTrace {
  file: string;
  t: number[];
  count: number[];
}

/** Parses trace text; throws TIDE_LOAD_TRACE with the file and line. */
export function parseLoadTrace(text: string, file: string, arg = '--trace'): LoadTrace {
  try {
    const trace = parseTrace(text, file);
    return { file, t: Array.from(trace.t), count: Array.from(trace.count) };
  } catch (err) {
    if (isTideError(err)) throw new TideError('TIDE_LOAD_TRACE', `${err.message} Expected rows "t,count" (seconds, requests) with t increasing.`, { where: { ...err.where, arg }, cause: err });
    throw err;
  }
}

/** Reads and parses a trace file; throws TIDE_LOAD_TRACE when it cannot be read or parsed. */
export function loadTraceFile(file: string, arg = '--trace'): LoadTrace {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TideError('TIDE_LOAD_TRACE', `The trace ${file} cannot be read: ${(cause as Error).message}.`, { where: { file, arg }, cause });
  }
  return parseLoadTrace(text, file, arg);
}
