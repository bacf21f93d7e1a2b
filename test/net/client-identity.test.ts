/** Who a client is: the socket's address, the forwarded one only from trusted proxies, a key only once verified. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isTideError } from '../../src/errors.js';
import { clientAddress, forwardedHops, identifyClient, keyId, normalizeAddress, proxyTrust } from '../../src/net/client-identity.js';
import { connectionCap, openFileLimit } from '../../src/net/file-limit.js';

const caddy = proxyTrust({ trustedProxies: ['172.18.0.2', '10.0.0.0/8', 'fd00::/8'] });

test('with no trusted proxy the socket address is the client, whatever the headers say', () => {
  const none = proxyTrust();
  assert.deepEqual(clientAddress('203.0.113.9', '1.2.3.4', none), { address: '203.0.113.9', forwarded: false });
  assert.deepEqual(identifyClient({ peer: '::ffff:203.0.113.9', headers: { 'x-forwarded-for': '1.2.3.4' } }, none), { id: 'ip:203.0.113.9', kind: 'address', address: '203.0.113.9', forwarded: false });
});

test('from an untrusted peer a forwarded header changes nothing', () => {
  assert.deepEqual(clientAddress('198.51.100.7', '10.1.1.1, 172.18.0.2', caddy), { address: '198.51.100.7', forwarded: false });
});

test('from a trusted proxy the rightmost untrusted hop is the client; what the client wrote to its left is ignored', () => {
  // the client sent "X-Forwarded-For: 6.6.6.6"; Caddy appended the address it saw
  assert.deepEqual(clientAddress('172.18.0.2', '6.6.6.6, 198.51.100.7', caddy), { address: '198.51.100.7', forwarded: true });
  // two trusted proxies in a row (an ingress behind a cloud load balancer in 10/8)
  assert.deepEqual(clientAddress('172.18.0.2', ['6.6.6.6, 198.51.100.7', '10.4.0.1'], caddy), { address: '198.51.100.7', forwarded: true });
  // every hop trusted: the leftmost is as far as the chain goes
  assert.deepEqual(clientAddress('172.18.0.2', '10.0.0.5, 10.4.0.1', caddy), { address: '10.0.0.5', forwarded: true });
  // no header from the proxy: the proxy itself
  assert.deepEqual(clientAddress('172.18.0.2', undefined, caddy), { address: '172.18.0.2', forwarded: false });
});

test('a malformed hop ends the walk at the proxy that passed it on', () => {
  assert.deepEqual(clientAddress('172.18.0.2', '198.51.100.7, not-an-ip', caddy), { address: '172.18.0.2', forwarded: false });
  assert.deepEqual(clientAddress('172.18.0.2', 'garbage, 10.4.0.1', caddy), { address: '10.4.0.1', forwarded: true });
  assert.deepEqual(clientAddress('172.18.0.2', '', caddy), { address: '172.18.0.2', forwarded: false });
});

test('ports, brackets and IPv4-mapped addresses are normalised', () => {
  assert.equal(normalizeAddress('::FFFF:192.0.2.1'), '192.0.2.1');
  assert.deepEqual(forwardedHops('x-forwarded-for', '192.0.2.1:5555, [2001:db8::1]:443, 2001:db8::2'), ['192.0.2.1', '2001:db8::1', '2001:db8::2']);
  assert.deepEqual(clientAddress('::ffff:172.18.0.2', '192.0.2.1', caddy).address, '192.0.2.1');
  assert.deepEqual(clientAddress('fd00::5', '2001:db8::9', caddy).address, '2001:db8::9');
});

test('Forwarded (RFC 7239) is read only when configured, by its for= parameter, from the right', () => {
  const rfc = proxyTrust({ trustedProxies: ['172.18.0.2'], forwardedHeader: 'forwarded' });
  assert.deepEqual(forwardedHops('forwarded', 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, by=1.1.1.1'), ['6.6.6.6', '2001:db8::7', '']);
  assert.equal(identifyClient({ peer: '172.18.0.2', headers: { forwarded: 'for=6.6.6.6, for=198.51.100.7;proto=http' } }, rfc).address, '198.51.100.7');
  // the other header is not read: a proxy that sets one passes the other through as the client wrote it
  assert.equal(identifyClient({ peer: '172.18.0.2', headers: { forwarded: 'for=198.51.100.7' } }, caddy).address, '172.18.0.2');
  assert.equal(identifyClient({ peer: '172.18.0.2', headers: { 'x-forwarded-for': '198.51.100.7' } }, rfc).address, '172.18.0.2');
});

test('an API key identifies a client only when verified', () => {
  const headers = { 'x-api-key': 'random-1' };
  assert.equal(identifyClient({ peer: '198.51.100.7', headers }, caddy).id, 'ip:198.51.100.7');
  const verified = identifyClient({ peer: '198.51.100.7', headers, verifiedKey: 'k-1' }, caddy);
  assert.equal(verified.kind, 'key');
  assert.equal(verified.id, keyId('k-1'));
  assert.ok(!verified.id.includes('k-1'), 'the key itself is not kept');
});

test('a trusted proxy entry that is not an address or CIDR is refused with its source', () => {
  for (const bad of ['10.0.0.0/33', 'fd00::/129', 'localhost', '10.0.0.1/8/2', '10.0.0/8', '10.0.0.0/x']) {
    assert.throws(
      () => proxyTrust({ trustedProxies: [bad] }, '--trusted-proxy'),
      (err: unknown) => isTideError(err) && err.code === 'TIDE_TRUSTED_PROXY' && err.where?.field === '--trusted-proxy',
      bad,
    );
  }
  assert.equal(proxyTrust({ trustedProxies: ['0.0.0.0/0'] }).trusts('8.8.8.8'), true);
  assert.equal(proxyTrust({ trustedProxies: ['127.0.0.1'] }).trusts('127.0.0.2'), false);
});

test('the connection cap stays below the file descriptor limit', () => {
  assert.equal(openFileLimit('Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n'), 1024);
  assert.equal(openFileLimit('Max open files            unlimited            unlimited            files\n'), undefined);
  assert.equal(connectionCap(undefined, 1024), 896);
  assert.equal(connectionCap(100_000, 256), 192);
  assert.equal(connectionCap(50, 20_000), 50);
  assert.equal(connectionCap(undefined, undefined), undefined);
  const here = openFileLimit();
  if (here !== undefined) assert.ok(here > 0);
});
