import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { ChunkedScanner, Framing, type RequestHead, type ResponseHead, parseRequestHead, parseResponseHead } from '../../src/balancer/http1.js';

function request(text: string): RequestHead {
  const head = parseRequestHead(text);
  assert.equal(typeof head, 'object', `refused: ${String(head)}`);
  return head as RequestHead;
}

function refused(text: string, why: RegExp): void {
  const head = parseRequestHead(text);
  assert.equal(typeof head, 'string', `accepted ${JSON.stringify(text)}`);
  assert.match(head as string, why);
}

function response(text: string, method = 'GET'): ResponseHead {
  const head = parseResponseHead(text, method);
  assert.equal(typeof head, 'object', `refused: ${String(head)}`);
  return head as ResponseHead;
}

test('request head: method, target, forwarded lines and keep-alive', () => {
  const head = request('GET /v1/jobs?x=1 HTTP/1.1\r\nHost: api\r\nAccept:  */*  \r\nX-Kept: a b\r\n\r\n');
  assert.equal(head.method, 'GET');
  assert.equal(head.target, '/v1/jobs?x=1');
  assert.equal(head.minor, 1);
  assert.equal(head.lines, 'Host: api\r\nAccept:  */*  \r\nX-Kept: a b\r\n');
  assert.equal(head.keepAlive, true);
  assert.equal(head.framing, Framing.None);
  assert.equal(head.hasHost, true);
  assert.equal(request('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n').keepAlive, false);
  // HTTP/1.0: closes unless asked to keep alive; Host is optional.
  assert.equal(request('GET / HTTP/1.0\r\n\r\n').keepAlive, false);
  assert.equal(request('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true);
  assert.equal(request('GET / HTTP/1.0\r\n\r\n').hasHost, false);
});

test('request head: hop-by-hop headers and those Connection names are dropped; X-Forwarded-For values joined', () => {
  const head = request(
    'POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: s\r\n' +
      'X-Private: secret\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Proto: https\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n',
  );
  assert.equal(head.lines, 'Host: a\r\nContent-Length: 3\r\n');
  assert.equal(head.forwardedFor, '10.0.0.1, 10.0.0.2');
  assert.equal(head.expectContinue, true);
  assert.equal(head.framing, Framing.Length);
  assert.equal(head.length, 3);
});

test('request head: a Connection header cannot take away the framing, the Host, or itself', () => {
  const head = request('POST / HTTP/1.1\r\nHost: a\r\nConnection: close, content-length, host, connection, transfer-encoding\r\nContent-Length: 2\r\n\r\n');
  assert.deepEqual([head.lines, head.framing, head.length, head.keepAlive], ['Host: a\r\nContent-Length: 2\r\n', Framing.Length, 2, false]);
});

test('request head: Transfer-Encoding ending in chunked frames the body and is forwarded as sent', () => {
  const head = request('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n');
  assert.equal(head.framing, Framing.Chunked);
  assert.equal(head.lines, 'Host: a\r\nTransfer-Encoding: gzip, chunked\r\n');
  assert.equal(request('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n').framing, Framing.None);
});

test('request head: every ambiguity that could smuggle a request is refused', () => {
  refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', /both Content-Length and Transfer-Encoding/);
  refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n', /more than one Content-Length/);
  for (const value of ['1e3', '+5', '0x10', '-1', '3, 3', '1234567890123456']) {
    refused(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${value}\r\n\r\n`, /Content-Length/);
  }
  refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', /does not end in chunked/);
  refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n', /does not end in chunked/);
  refused('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', /HTTP\/1.0/);
  refused('GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n', /malformed/); // obs-fold
  refused('GET / HTTP/1.1\r\nHost: a\r\nX-Bare: a\nb\r\n\r\n', /malformed/);
  refused('GET / HTTP/1.1\r\nHost: a\r\nX-Bare: a\rb\r\n\r\n', /malformed/);
  refused('GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n', /malformed/);
  refused('GET / HTTP/1.1\r\nHost : a\r\n\r\n', /malformed/); // space before the colon
  refused('GET / HTTP/1.1\r\nHost: a\r\nBad[Name]: x\r\n\r\n', /malformed/);
  refused('GET / HTTP/1.1\r\n\r\n', /no Host/);
  refused('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', /more than one Host/);
  refused('GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', /request line/);
  refused('G(T / HTTP/1.1\r\nHost: a\r\n\r\n', /request line/);
  refused('GET / HTTP/2.0\r\nHost: a\r\n\r\n', /request line/);
  refused('GET / HTTP/1.1\nHost: a\r\n\r\n', /request line/);
});

test('response head: framing by method, status, Transfer-Encoding and Content-Length', () => {
  const ok = response('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n');
  assert.equal(ok.status, 200);
  assert.equal(ok.statusText, '200 OK');
  assert.equal(ok.lines, 'Content-Type: application/json\r\nContent-Length: 12\r\n');
  assert.deepEqual([ok.framing, ok.length, ok.keepAlive, ok.keepAliveHintMs], [Framing.Length, 12, true, 5000]);
  assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n', 'HEAD').framing, Framing.None);
  assert.equal(response('HTTP/1.1 204 No Content\r\n\r\n').framing, Framing.None);
  assert.equal(response('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n').framing, Framing.None);
  const chunked = response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.deepEqual([chunked.framing, chunked.transferEncoding, chunked.keepAlive, chunked.lines], [Framing.Chunked, 'chunked', true, '']);
  // No length at all: the body runs to the close, and the connection cannot carry another.
  const open = response('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
  assert.deepEqual([open.framing, open.keepAlive], [Framing.UntilClose, false]);
  // Transfer-Encoding wins over Content-Length, which is not passed on, and the connection is
  // not trusted again.
  const both = response('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nX: 1\r\n\r\n');
  assert.deepEqual([both.framing, both.keepAlive, both.lines], [Framing.Chunked, false, 'X: 1\r\n']);
  // A coding without chunked: the body runs to the close and the client is told its coding.
  const coded = response('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n');
  assert.deepEqual([coded.framing, coded.keepAlive, coded.lines], [Framing.UntilClose, false, 'Transfer-Encoding: gzip\r\n']);
  // A Connection header cannot take away the framing.
  assert.equal(response('HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\n').lines, 'Content-Length: 3\r\n');
  assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n').keepAlive, false);
  assert.equal(response('HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n').keepAlive, false);
  assert.equal(response('HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n').keepAlive, true);
  assert.equal(response('HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n').statusText, '404 ');
  // The same Content-Length twice is one; two different ones are an invalid response.
  assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n').lines, 'Content-Length: 5\r\n');
  assert.match(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 'GET') as string, /Content-Length/);
  assert.match(parseResponseHead('HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n', 'GET') as string, /malformed/);
  assert.match(parseResponseHead('HTTP/1.1 20 OK\r\n\r\n', 'GET') as string, /status line/);
  // Headers the upstream's Connection names are its own.
  assert.equal(response('HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-End: 2\r\nContent-Length: 0\r\n\r\n').lines, 'X-End: 2\r\nContent-Length: 0\r\n');
});

/** A chunked encoding of `parts`, with an extension on the first chunk and a trailer. */
function encodeChunked(parts: Buffer[], trailer = 'X-Sum: 1\r\n'): Buffer {
  const pieces: Buffer[] = [];
  parts.forEach((part, i) => {
    if (part.length === 0) return;
    pieces.push(Buffer.from(`${part.length.toString(16)}${i === 0 ? ';name=value' : ''}\r\n`), part, Buffer.from('\r\n'));
  });
  pieces.push(Buffer.from(`0\r\n${trailer}\r\n`));
  return Buffer.concat(pieces);
}

/** Scan `bytes` split at `cuts`; the end index (within `bytes`) and the data seen. */
function scanSplit(bytes: Buffer, cuts: number[]): { end: number; data: Buffer; error: string | null } {
  const scanner = new ChunkedScanner();
  const data: Buffer[] = [];
  const points = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
  for (let k = 0; k + 1 < points.length; k++) {
    const piece = bytes.subarray(points[k]!, points[k + 1]!);
    const stop = scanner.scan(piece, 0, piece.length, (from, to) => data.push(piece.subarray(from, to)));
    if (stop < 0) return { end: -1, data: Buffer.concat(data), error: scanner.error };
    if (scanner.done) return { end: points[k]! + stop, data: Buffer.concat(data), error: null };
  }
  return { end: bytes.length, data: Buffer.concat(data), error: 'not done' };
}

test('chunked scanner: finds the end and the data at every split point', () => {
  const body = encodeChunked([Buffer.from('hello '), Buffer.from('chunked world'), Buffer.alloc(300, 'x')]);
  const next = Buffer.from('GET /next HTTP/1.1\r\n');
  const bytes = Buffer.concat([body, next]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const { end, data, error } = scanSplit(bytes, [cut]);
    assert.equal(error, null, `cut at ${cut}`);
    assert.equal(end, body.length, `cut at ${cut}`);
    assert.equal(data.toString(), `hello chunked world${'x'.repeat(300)}`);
  }
  // One byte at a time.
  assert.equal(scanSplit(bytes, Array.from({ length: bytes.length }, (_, i) => i)).end, body.length);
  assert.equal(scanSplit(Buffer.from('0\r\n\r\n'), []).end, 5);
  // Extensions: a name, a token value or a quoted one (with escapes), several in a row.
  const extended = Buffer.from('3;a;b=tok;c="q \\" ;x"\r\nabc\r\n0;last\r\nX-T: v\tw\r\n\r\n');
  assert.equal(scanSplit(extended, []).end, extended.length);
});

test('chunked scanner: any body split anywhere ends where it was encoded to (seeded property)', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }), fc.array(fc.nat(2000), { maxLength: 6 }), (parts, cuts) => {
      const buffers = parts.map((p) => Buffer.from(p));
      const body = encodeChunked(buffers, '');
      const bytes = Buffer.concat([body, Buffer.from('trailing')]);
      const { end, data, error } = scanSplit(bytes, cuts);
      assert.equal(error, null);
      assert.equal(end, body.length);
      assert.deepEqual(data, Buffer.concat(buffers));
    }),
    { seed: 42, numRuns: 300 },
  );
});

test('chunked scanner: malformed bodies are refused with a reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['g\r\nabc\r\n0\r\n\r\n', /not hexadecimal/],
    ['\r\n', /not hexadecimal/],
    ['3\nabc\r\n0\r\n\r\n', /not hexadecimal/],
    ['3\r\nabcd\r\n0\r\n\r\n', /longer than its size/],
    ['3\r\nabc\r0\r\n\r\n', /does not end in CRLF/],
    ['1234567890abc\r\n', /too large/],
    ['3;ext\n', /extension is malformed/],
    ['3 ;ext\r\nabc\r\n0\r\n\r\n', /not hexadecimal/],
    ['3;\r\nabc\r\n0\r\n\r\n', /extension is malformed/],
    ['3;a=\r\nabc\r\n0\r\n\r\n', /extension is malformed/],
    ['3;a=b c\r\nabc\r\n0\r\n\r\n', /extension is malformed/],
    ['3;a="b\r\nabc\r\n0\r\n\r\n', /extension is malformed/],
    ['0\r\nX: a\nb\r\n\r\n', /control character/],
    ['0\r\n1\r\n\r\n', /not a header field/],
    ['0\r\nX a: 1\r\n\r\n', /not a header field/],
    ['0\r\n\rX', /does not end in CRLF/],
  ];
  for (const [text, why] of cases) {
    const { end, error } = scanSplit(Buffer.from(text), []);
    assert.equal(end, -1, text);
    assert.match(error ?? '', why, text);
  }
});
