/** Responses the balancer writes itself: JSON, as the API's errors are. */
import { STATUS_CODES } from 'node:http';

import { type ErrorCode, TideError } from '../errors.js';

/** A client's keep-alive connection is closed after this long idle (and told so in Keep-Alive). */
export const CLIENT_KEEP_ALIVE_MS = 65_000;
export const HEAD_END = Buffer.from('\r\n\r\n');
export const KEEP_ALIVE_LINES = `connection: keep-alive\r\nkeep-alive: timeout=${CLIENT_KEEP_ALIVE_MS / 1000}\r\n\r\n`;

/** A whole response, head and JSON body; `close` ends the connection after it. */
export function ownResponse(status: number, body: string, headers: Record<string, string>, close: boolean): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}${close ? 'connection: close\r\n\r\n' : KEEP_ALIVE_LINES}${body}`;
}

/** The status and JSON body of the balancer's error `code`. */
export function errorBody(code: ErrorCode, message: string): { status: number; body: string } {
  const err = new TideError(code, message);
  return { status: err.status, body: JSON.stringify({ error: err.toJSON() }) };
}
