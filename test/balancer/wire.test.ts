/**
 * The balancer's HTTP/1.1 handling on the wire: raw bytes from a client socket, real node
 * http (or raw net) upstreams on loopback.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, type Server, type Socket, connect, createServer as createNetServer } from 'node:net';
import { test } from 'node:test';

import fc from 'fast-check';

import { type Balancer, type BalancerOptions, createBalancer } from '../../src/balancer/balancer.js';

/**
 * A node http upstream: /echo answers what it got; /chunked answers in three chunks; /hold
 * waits in `held`; /big streams 256 MiB. `cut` resolves when a response is cut before its end.
 */
async function httpUpstream(): Promise<{ url: string; hits: string[]; held: ServerResponse[]; cut: Promise<void>; close(): Promise<void> }> {
  const hits: string[] = [];
  const held: ServerResponse[] = [];
  let onCut = () => {};
  const cut = new Promise<void>((resolve) => (onCut = resolve));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') return void res.end('{"ok":true}');
    hits.push(`${req.method} ${req.url}`);
    res.on('close', () => {
      if (!res.writableFinished) onCut();
    });
    if (req.url === '/big') {
      // 256 MiB, written as fast as the reader takes it: more than any socket buffer.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 256 * 1024 * 1024 });
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      const pump = () => {
        while (sent < 256 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.url?.startsWith('/hold')) {
      held.push(res);
      return;
    }
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('one,');
      res.write('two,');
      res.end('three');
      return;
    }
    if (req.url === '/empty') {
      res.writeHead(204);
      res.end();
      return;
    }
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, length, sha256: hash.digest('hex'), headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    held,
    cut,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A raw TCP upstream: answers every request it reads with `answer`, then does what `after` says. */
async function rawUpstream(answer: string, after: 'close' | 'keep'): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => {
      if (after === 'close') socket.end(answer);
      else socket.write(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A client speaking raw bytes to the balancer. */
async function rawClient(url: string) {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  let ended = false;
  let errorCode: string | undefined;
  const changed = new EventTarget();
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    text += chunk;
    changed.dispatchEvent(new Event('change'));
  });
  socket.on('close', () => {
    ended = true;
    changed.dispatchEvent(new Event('change'));
  });
  socket.on('error', (err: NodeJS.ErrnoException) => (errorCode = err.code));
  return {
    socket,
    /** The socket's error, once it had one (ECONNRESET for a reset). */
    get errorCode() {
      return errorCode;
    },
    send(data: string | Buffer) {
      socket.write(data);
    },
    /** Resolves with everything read once `done(text)` holds, or the connection closed. */
    async read(done: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
      while (!done(text) && !ended) await once(changed, 'change');
      return { text, closed: ended };
    },
    get closed() {
      return ended;
    },
    close() {
      socket.destroy();
    },
  };
}

/** Send `wire` on a new connection and read until the balancer closes it. */
async function untilClosed(url: string, wire: string): Promise<{ text: string; closed: boolean }> {
  const client = await rawClient(url);
  client.send(wire);
  return client.read(() => false);
}

/** Run `body` against a balancer in front of `up` (if any); both are closed after, whatever happens. */
async function withBalancer(up: { url: string; close(): Promise<void> } | null, options: BalancerOptions, body: (lb: Balancer) => Promise<void>): Promise<void> {
  const lb = await createBalancer({ host: '127.0.0.1', port: 0, healthCheck: { intervalMs: 60_000 }, ...options });
  try {
    if (up) lb.addUpstream('a', up.url, { healthy: true });
    await body(lb);
  } finally {
    await lb.close();
    await up?.close();
  }
}

const count = (text: string, what: string) => text.split(what).length - 1;

test('pipelined requests are answered in order on one connection', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const client = await rawClient(lb.url);
    client.send('GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    const { text, closed } = await client.read((t) => count(t, 'HTTP/1.1 200') === 3 && t.includes('"url":"/echo?n=3"'));
    assert.equal(closed, false);
    const order = ['/echo?n=1', '/echo?n=2', '/echo?n=3'].map((u) => text.indexOf(`"url":"${u}"`));
    assert.ok(order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1]!)), text);
    assert.match(text, /"length":5/);
    assert.equal(count(text, 'connection: keep-alive'), 3);
    client.close();
  });
});

test('many pipelined requests behind a slow one, then half a request: all answered once the rest arrives', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const client = await rawClient(lb.url);
    client.send('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
    while (up.held.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // More than 16 KiB of pipelined requests arrives while the first is in flight (the client
    // is paused), and ends in an incomplete head. The balancer answers /lb/stats itself, so
    // all of them are read in one go once the first answer is out.
    const many = 1000;
    client.send(`${'GET /lb/stats HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(many)}GET /echo?last HTTP/1.1\r\nHo`);
    up.held[0]!.end('held');
    await client.read((t) => count(t, '"totals"') === many);
    client.send('st: x\r\n\r\n');
    const { text } = await client.read((t) => t.includes('"url":"/echo?last"'));
    assert.equal(count(text, 'HTTP/1.1 200 OK'), many + 2);
    client.close();
  });
});

test('a chunked request body split anywhere reaches the upstream whole', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const payload = Buffer.alloc(70_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) % 256;
    const wire = Buffer.concat([
      Buffer.from('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'),
      Buffer.from('10000;note=first\r\n'), payload.subarray(0, 0x10000), Buffer.from('\r\n'),
      Buffer.from(`${(payload.length - 0x10000).toString(16)}\r\n`), payload.subarray(0x10000), Buffer.from('\r\n'),
      Buffer.from('0\r\nX-Trailer: yes\r\n\r\n'),
    ]);
    const client = await rawClient(lb.url);
    // Cut the bytes at fixed odd places, including inside the head and the chunk size lines.
    let at = 0;
    for (const cut of [7, 40, 66, 70, 5000, 65_600, 65_620, wire.length]) {
      client.send(wire.subarray(at, cut));
      at = cut;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { text } = await client.read((t) => t.includes('"sha256"'));
    const seen = JSON.parse(text.slice(text.indexOf('{'))) as { length: number; sha256: string; headers: Record<string, string> };
    assert.equal(seen.length, payload.length);
    assert.equal(seen.sha256, createHash('sha256').update(payload).digest('hex'));
    assert.equal(seen.headers['transfer-encoding'], 'chunked');
    client.close();
  });
});

test('a chunked response goes to an HTTP/1.1 client chunked, and to an HTTP/1.0 client unwrapped and closed', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const modern = await rawClient(lb.url);
    modern.send('GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n');
    const chunked = await modern.read((t) => t.endsWith('0\r\n\r\n'));
    assert.match(chunked.text, /transfer-encoding: chunked\r\n/i);
    assert.match(chunked.text, /\r\n4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n$/);
    assert.equal(chunked.closed, false);
    modern.close();

    const plain = await untilClosed(lb.url, 'GET /chunked HTTP/1.0\r\n\r\n');
    assert.equal(plain.closed, true);
    assert.doesNotMatch(plain.text, /transfer-encoding/i);
    assert.match(plain.text, /connection: close\r\n/);
    assert.ok(plain.text.endsWith('\r\n\r\none,two,three'), plain.text);
  });
});

test('an HTTP/1.0 request without Host gets the upstream address as its Host', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const { text, closed } = await untilClosed(lb.url, 'GET /echo HTTP/1.0\r\n\r\n');
    assert.equal(closed, true);
    const seen = JSON.parse(text.slice(text.indexOf('{'))) as { headers: Record<string, string> };
    assert.equal(seen.headers.host, new URL(up.url).host);
  });
});

test('requests that could be read two ways get 400 TIDE_LB_BAD_REQUEST, reach no upstream, and end the connection', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const attempts = [
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd',
      'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      'GET /echo HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n  b\r\n\r\n',
      'GET /echo HTTP/1.1\r\nHost: x\nX-Bare: lf\r\n\r\n',
      'GET /echo HTTP/1.1\r\n\r\n',
    ];
    for (const wire of attempts) {
      const { text, closed } = await untilClosed(lb.url, wire);
      assert.equal(closed, true, wire);
      assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, wire);
      assert.match(text, /"code":"TIDE_LB_BAD_REQUEST"/, wire);
    }
    assert.deepEqual(up.hits, []);
    // The balancer itself is fine afterwards.
    const client = await rawClient(lb.url);
    client.send('GET /echo HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match((await client.read((t) => t.includes('"sha256"'))).text, /^HTTP\/1\.1 200 OK/);
    client.close();
  });
});

test('a malformed chunked request body is refused with 400 and the connection ends', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const { text, closed } = await untilClosed(lb.url, 'POST /hold HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n');
    assert.equal(closed, true);
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /chunk size is not hexadecimal/);
    assert.equal(lb.stats().totals.in_flight, 0);
  });
});

test('a request head over 16 KiB gets 431 TIDE_LB_HEAD_TOO_LARGE', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const { text, closed } = await untilClosed(lb.url, `GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(17 * 1024)}\r\n\r\n`);
    assert.equal(closed, true);
    assert.match(text, /^HTTP\/1\.1 431 /);
    assert.match(text, /TIDE_LB_HEAD_TOO_LARGE/);
    assert.deepEqual(up.hits, []);
  });
});

test('Expect: 100-continue is answered at once, and the upstream answer follows the body', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const client = await rawClient(lb.url);
    client.send('PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n');
    await client.read((t) => t.includes('100 Continue\r\n\r\n'));
    client.send('abc');
    const { text } = await client.read((t) => t.includes('"sha256"'));
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /"length":3/);
    assert.doesNotMatch(text, /"expect"/);
    client.close();
  });
});

test('an upstream that sends no response head in time: 504 TIDE_LB_UPSTREAM_TIMEOUT, and it stays in', async () => {
  const up = await httpUpstream();
  await withBalancer(up, { upstreamTimeoutMs: 100 }, async (lb) => {
    const client = await rawClient(lb.url);
    client.send('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, closed } = await client.read((t) => t.includes('}'));
    assert.match(text, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
    assert.match(text, /TIDE_LB_UPSTREAM_TIMEOUT/);
    assert.equal(closed, false);
    assert.equal(lb.upstreams()[0]?.healthy, true);
    assert.equal(lb.stats().totals.in_flight, 0);
    client.close();
  });
});

test('a request waiting for a free upstream connection times out too, and leaves the pool usable', async () => {
  const up = await httpUpstream();
  await withBalancer(up, { upstreamTimeoutMs: 100, connectionsPerUpstream: 1 }, async (lb) => {
    const first = await rawClient(lb.url);
    first.send('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
    while (up.held.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // The only connection is busy: this one waits in the pool's queue.
    const queued = await rawClient(lb.url);
    queued.send('GET /hold?queued HTTP/1.1\r\nHost: x\r\n\r\n');
    for (const client of [first, queued]) assert.match((await client.read((t) => t.includes('}'))).text, /^HTTP\/1\.1 504 /);
    assert.equal(lb.stats().totals.in_flight, 0);
    // Whatever the queued one was lent after it gave up went back: the next request gets through.
    const next = await rawClient(lb.url);
    next.send('GET /echo HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match((await next.read((t) => t.includes('"sha256"'))).text, /^HTTP\/1\.1 200 OK/);
    for (const client of [first, queued, next]) client.close();
  });
});

test('a client that stops reading a large answer is cut off after the timeout without progress, and the replica is let go', async () => {
  const up = await httpUpstream();
  await withBalancer(up, { upstreamTimeoutMs: 100 }, async (lb) => {
    const client = await rawClient(lb.url);
    client.socket.pause(); // reads nothing: the balancer's writes back up, then the replica's
    client.send('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    await up.cut;
    assert.equal(lb.stats().totals.in_flight, 0);
    assert.equal(lb.upstreams()[0]?.healthy, true);
    // The connection ends far short of the 256 MiB announced. (The balancer resets it; a client
    // that is not reading when the reset comes reads what was queued, then a plain end.)
    client.socket.resume();
    const { text, closed } = await client.read(() => false);
    assert.equal(closed, true);
    assert.match(text, /content-length: 268435456\r\n/i);
    assert.ok(text.length < 64 * 1024 * 1024, `${text.length} bytes`);
  });
});

test('a body ended by the close, cut off when its replica is removed: the client sees a reset, not an end', async () => {
  const up = await rawUpstream('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial', 'keep');
  await withBalancer(up, { drainTimeoutMs: 20 }, async (lb) => {
    const client = await rawClient(lb.url);
    client.send('GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    await client.read((t) => t.endsWith('partial'));
    await lb.removeUpstream('a');
    const { text, closed } = await client.read(() => false);
    assert.equal(closed, true);
    assert.equal(client.errorCode, 'ECONNRESET');
    assert.match(text, /connection: close\r\n\r\npartial$/);
  });
});

test('HEAD and 204 answers carry no body and the connection goes on', async () => {
  const up = await httpUpstream();
  await withBalancer(up, {}, async (lb) => {
    const client = await rawClient(lb.url);
    client.send('HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, closed } = await client.read((t) => t.includes('"sha256"'));
    assert.equal(closed, false);
    const heads = text.match(/HTTP\/1\.1 \d+ [^\r]*/g);
    assert.deepEqual(heads, ['HTTP/1.1 200 OK', 'HTTP/1.1 204 No Content', 'HTTP/1.1 200 OK']);
    // The HEAD answer announced a length but sent no body: the 204 follows its head directly.
    assert.match(text, /keep-alive: timeout=65\r\n\r\nHTTP\/1\.1 204/);
    client.close();
  });
});

test('a body the upstream ends by closing reaches the client, whose connection then closes', async () => {
  const up = await rawUpstream('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', 'close');
  await withBalancer(up, {}, async (lb) => {
    const { text, closed } = await untilClosed(lb.url, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(closed, true);
    assert.match(text, /connection: close\r\n\r\nuntil the end$/);
    assert.equal(lb.upstreams()[0]?.healthy, true);
  });
});

test('an invalid response from the upstream is 502 TIDE_LB_UPSTREAM_FAILED', async () => {
  const up = await rawUpstream('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello', 'keep');
  await withBalancer(up, {}, async (lb) => {
    const client = await rawClient(lb.url);
    client.send('GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text } = await client.read((t) => t.includes('}'));
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.match(text, /"code":"TIDE_LB_UPSTREAM_FAILED".*invalid response: Content-Length/);
    assert.equal(lb.upstreams()[0]?.failures, 1);
    client.close();
  });
});

test('an upstream address other than http:// is refused with TIDE_LB_UPSTREAM_URL', async () => {
  await withBalancer(null, {}, async (lb) => {
    assert.throws(() => lb.addUpstream('a', 'https://127.0.0.1:1'), { code: 'TIDE_LB_UPSTREAM_URL' });
  });
});

test('fuzz (seeded): mutated requests never reach a replica as bytes its own parser refuses, nor as extra requests', async () => {
  // The replica's parser (node's llhttp, strict) is the reference: whatever the balancer
  // forwards must parse there, and the replica must never count more requests than the
  // balancer sent it. A request smuggled past the balancer would break one or the other.
  const parseErrors: string[] = [];
  let seen = 0;
  const server = createServer((req, res) => {
    seen++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A message cut short is not misread: the client hung up mid-body and the balancer cut the
    // upstream connection too, as it must.
    if (err.code?.startsWith('HPE_') && err.code !== 'HPE_INVALID_EOF_STATE') parseErrors.push(`${err.code}: ${err.message}`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const up = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const seeds = [
    'GET /f HTTP/1.1\r\nHost: x\r\n\r\n',
    'POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
    'POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n',
    'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  ];
  const pieces = ['\r', '\n', '\r\n', ' ', '\t', ':', ',', ';', '0', 'f', '\0', '\x7f', '\x80', '\xff', 'chunked', 'Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n', 'Host: y\r\n', 'Connection: close\r\n', 'Expect: 100-continue\r\n', '\r\n\r\n', 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'];
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), piece: fc.constantFrom(...pieces) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 30 }) }),
  );
  const cases = fc.sample(fc.record({ seed: fc.constantFrom(...seeds), edits: fc.array(edit, { minLength: 1, maxLength: 4 }) }), { seed: 7, numRuns: 300 });
  await withBalancer(up, {}, async (lb) => {
    for (const { seed, edits } of cases) {
      let wire = seed;
      for (const e of edits) {
        const at = e.at % (wire.length + 1);
        if (e.kind === 'insert') wire = wire.slice(0, at) + e.piece + wire.slice(at);
        else if (e.kind === 'delete') wire = wire.slice(0, at) + wire.slice(at + e.length);
        else wire = wire.slice(0, at) + wire.slice(at, at + e.length) + wire.slice(at);
      }
      const client = await rawClient(lb.url);
      client.socket.end(Buffer.from(wire, 'latin1'));
      await client.read(() => false);
    }
    await new Promise<void>((resolve) => {
      const settled = () => (lb.stats().totals.in_flight === 0 ? resolve() : setImmediate(settled));
      settled();
    });
    assert.deepEqual(parseErrors, []);
    assert.ok(seen <= lb.stats().totals.requests, `the replica saw ${seen} requests, the balancer sent ${lb.stats().totals.requests}`);
    const client = await rawClient(lb.url);
    client.send('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match((await client.read((t) => t.endsWith('ok'))).text, /^HTTP\/1\.1 200 OK/);
    client.close();
  });
});
