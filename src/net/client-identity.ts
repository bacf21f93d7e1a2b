/**
 * Who a client is: the one rule the API and the load balancer both use for per-client limits.
 *
 * Design note. A request names its client three ways, and only two can be believed:
 *
 * - The socket's peer address: the kernel's, it cannot be forged over TCP. This is the client,
 *   unless the peer is a proxy we were told to trust.
 * - A forwarded header (`X-Forwarded-For`, or `Forwarded: for=`): anyone can send one. It is
 *   read only when the peer is in the configured trusted set (CIDRs, as Caddy's
 *   `trusted_proxies`, nginx's `set_real_ip_from` and Fastify's `trustProxy` take), and then
 *   from the right: each trusted proxy appends the address it saw, so the hops are walked from
 *   the peer leftwards while they are trusted, and the first untrusted hop is the client.
 *   Everything left of it was written by the client and is ignored. One header is read, never
 *   both: a proxy that appends to one passes the other through as the client wrote it.
 * - An API key: only once it has been verified against the configured keys (the caller says
 *   so with `verifiedKey`). An unverified key names nobody: a client sending a fresh random
 *   key per request is the same client, its address.
 *
 * Pure: no I/O, no clock. A malformed hop ends the walk at the last good one (the address of
 * the proxy that passed it on), so garbage in a header never becomes an identity of its own.
 */
import { createHash } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

import { TideError } from '../errors.js';

/** Which forwarded header trusted proxies set. */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

export interface TrustOptions {
  /** Addresses or CIDRs of the proxies whose forwarded header is believed. Empty: none. */
  trustedProxies?: readonly string[];
  /** The header those proxies set. Default `x-forwarded-for` (Caddy, nginx, ingress-nginx, AWS ALB). */
  forwardedHeader?: ForwardedHeader;
}

/** The decided client: `kind` says where its identity came from. */
export interface ClientIdentity {
  /** A stable bucket key: `key:<sha256 hex>` or `ip:<address>`. */
  id: string;
  kind: 'key' | 'address';
  /** The client's address (the socket's, or the forwarded one from a trusted proxy). */
  address: string;
  /** The address came from a forwarded header (the peer is a trusted proxy). */
  forwarded: boolean;
}

/** The trusted set, parsed once: `trusts(address)` answers per hop. */
export interface ProxyTrust {
  readonly header: ForwardedHeader;
  readonly none: boolean;
  trusts(address: string): boolean;
}

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) is 1.2.3.4. */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  return lower;
}

/**
 * Parses the trusted set (`10.0.0.0/8`, `172.18.0.2`, `::1`, `fd00::/8`).
 * @throws TideError TIDE_TRUSTED_PROXY for an entry that is not an address or CIDR; `where` names `source`.
 */
export function proxyTrust(options: TrustOptions = {}, source = 'trusted_proxies'): ProxyTrust {
  const list = new BlockList();
  const entries = (options.trustedProxies ?? []).map((e) => e.trim()).filter((e) => e.length > 0);
  for (const entry of entries) {
    const [address = '', bits, extra] = entry.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (family === 0 || extra !== undefined || !(prefix >= 0 && prefix <= (family === 6 ? 128 : 32))) {
      throw new TideError('TIDE_TRUSTED_PROXY', `"${entry}" is not an IP address or CIDR (like 10.0.0.0/8, 172.18.0.2 or fd00::/8).`, { where: { field: source } });
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  const header = options.forwardedHeader ?? 'x-forwarded-for';
  return {
    header,
    none: entries.length === 0,
    trusts(address) {
      const a = normalizeAddress(address);
      const family = isIP(a);
      if (family === 0) return false;
      // an IPv4 proxy listed as such also matches when it reaches us over a dual-stack socket
      return list.check(a, family === 6 ? 'ipv6' : 'ipv4');
    },
  };
}

/** One `for=` value of a Forwarded element: quotes, brackets and a port taken off. */
function forwardedFor(value: string): string {
  let v = value.trim();
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    return close > 0 ? v.slice(1, close) : '';
  }
  // IPv4 with a port; a bare IPv6 (several colons) is not valid here but is read as written
  const colon = v.indexOf(':');
  return colon > 0 && v.indexOf(':', colon + 1) < 0 ? v.slice(0, colon) : v;
}

/** The hops a header names, leftmost first (several header lines count as one list, in order). */
export function forwardedHops(header: ForwardedHeader, values: string | readonly string[] | undefined): string[] {
  if (values === undefined) return [];
  const joined = typeof values === 'string' ? values : values.join(',');
  if (header === 'x-forwarded-for') return joined.split(',').map(forwardedFor); // some proxies write `v4:port` or `[v6]:port`
  const hops: string[] = [];
  for (const element of joined.split(',')) {
    let found = '';
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === 'for') found = forwardedFor(pair.slice(eq + 1));
    }
    hops.push(found);
  }
  return hops;
}

/**
 * The client's address: the peer, or (when the peer is trusted) the rightmost untrusted hop of
 * the forwarded header. `headerValues` is the raw header (string or lines), absent when not sent.
 */
export function clientAddress(peer: string, headerValues: string | readonly string[] | undefined, trust: ProxyTrust): { address: string; forwarded: boolean } {
  let address = normalizeAddress(peer);
  if (trust.none || !trust.trusts(address)) return { address, forwarded: false };
  const hops = forwardedHops(trust.header, headerValues);
  let forwarded = false;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]!);
    if (isIP(hop) === 0) break; // garbage (or `unknown`, `_hidden`): the proxy that passed it on is the client
    address = hop;
    forwarded = true;
    if (!trust.trusts(hop)) break;
  }
  return { address, forwarded };
}

/** The bucket key of a verified API key (its digest: the key itself is kept out of memory dumps and logs). */
export function keyId(verifiedKey: string): string {
  return `key:${createHash('sha256').update(verifiedKey).digest('hex')}`;
}

/**
 * Who the client is, decided once per request: a verified API key when the caller verified
 * one, else the client's address by `clientAddress`.
 */
export function identifyClient(
  request: { peer: string; headers: Readonly<Record<string, string | readonly string[] | undefined>>; verifiedKey?: string | undefined },
  trust: ProxyTrust,
): ClientIdentity {
  const { address, forwarded } = clientAddress(request.peer, request.headers[trust.header], trust);
  if (request.verifiedKey !== undefined && request.verifiedKey !== '') return { id: keyId(request.verifiedKey), kind: 'key', address, forwarded };
  return { id: `ip:${address}`, kind: 'address', address, forwarded };
}
