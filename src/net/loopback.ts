/** Telling requests from this machine (and pages served by this server) from the rest. */
import type { IncomingMessage } from 'node:http';

/** Whether a host names this machine only: `localhost`, 127.0.0.0/8, ::1, or 127.x as an IPv4-mapped IPv6 address; brackets allowed. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return /^127(\.\d{1,3}){3}$/.test(v4);
}

/**
 * Why a browser request must be refused, or undefined. Browsers send Origin on cross-site
 * requests (a form POST needs no preflight, so CORS alone would not stop it), and a rebound
 * DNS name reaches a loopback server with a foreign Host. The tide commands and curl send no
 * Origin and a loopback Host.
 */
export function browserRefusal(req: IncomingMessage, loopbackOnly: boolean): string | undefined {
  const host = req.headers.host ?? '';
  if (loopbackOnly && host !== '' && !isLoopback(host.replace(/:\d+$/, ''))) return `the Host ${host} is not a loopback name`;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  let from: string | undefined;
  try {
    from = new URL(origin).host;
  } catch {
    // "null" (a sandboxed page, a file) or garbage: not this server's page
  }
  return from === host ? undefined : `the request comes from a page of ${origin}`;
}
