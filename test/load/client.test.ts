// The lean HTTP/1.1 client against real node http and raw TCP servers: response framing
// (Content-Length, chunked, close-delimited, HEAD, 204), keep-alive reuse, a server that
// closes, one that never answers, and a refused port.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';

import { type Done, LeanPool, serialize } from '../../src/load/client.js';

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function close(server: net.Server | http.Server): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function ask(pool: LeanPool, bytes: Buffer, head = false): Promise<{ status: number; error?: string }> {
  return new Promise((resolve) => {
    const done: Done = (status, error) => resolve(error === undefined ? { status } : { status, error });
    pool.request(bytes, head, done);
  });
}

test('framing: Content-Length (large, split), chunked (many writes), HEAD, 204, over one reused socket', async () => {
  const big = 'x'.repeat(300_000);
  let sockets = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/big') return res.end(big);
    if (req.url === '/chunked') {
      res.write('a'.repeat(10));
      res.write('b'.repeat(70_000));
      setImmediate(() => res.end('c'));
      return;
    }
    if (req.url === '/empty') {
      res.statusCode = 204;
      return res.end();
    }
    res.setHeader('content-length', '5');
    res.end(req.method === 'HEAD' ? undefined : 'hello');
  });
  server.on('connection', () => sockets++);
  const port = await listen(server);
  const pool = new LeanPool('127.0.0.1', port, 1, 5000);
  try {
    const get = (path: string, method = 'GET') => serialize(method, path, `127.0.0.1:${port}`, {}, undefined);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await ask(pool, get('/big')), { status: 200 });
      assert.deepEqual(await ask(pool, get('/chunked')), { status: 200 });
      assert.deepEqual(await ask(pool, get('/x', 'HEAD'), true), { status: 200 });
      assert.deepEqual(await ask(pool, get('/empty')), { status: 204 });
    }
    const post = serialize('POST', '/p', `127.0.0.1:${port}`, { 'content-type': 'application/json' }, '{"a":"é"}');
    assert.match(post.toString(), /content-length: 10\r\n\r\n\{"a":"é"\}$/);
    assert.deepEqual(await ask(pool, post), { status: 200 });
    assert.equal(sockets, 1);
  } finally {
    pool.destroy();
    await close(server);
  }
});

test('a body delimited by the server closing, Connection: close, a server that drops the socket, silence, a refused port', async () => {
  const raw = net.createServer((socket) => {
    socket.once('data', (d) => {
      const path = d.toString().split(' ')[1];
      if (path === '/eof') socket.end('HTTP/1.1 200 OK\r\n\r\nbody until close');
      else if (path === '/close') socket.end('HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 2\r\n\r\nno');
      else if (path === '/drop') socket.destroy();
      // '/silent': never answers
    });
  });
  const port = await listen(raw);
  const pool = new LeanPool('127.0.0.1', port, 2, 300);
  try {
    const get = (path: string) => serialize('GET', path, 'h', {}, undefined);
    assert.deepEqual(await ask(pool, get('/eof')), { status: 200 });
    assert.deepEqual(await ask(pool, get('/close')), { status: 503 });
    assert.deepEqual(await ask(pool, get('/drop')), { status: 0, error: 'ECONNRESET' });
    assert.deepEqual(await ask(pool, get('/silent')), { status: 0, error: 'TIMEOUT' });
  } finally {
    pool.destroy();
    await close(raw);
  }
  const refused = new LeanPool('127.0.0.1', port, 1, 1000);
  const results = await Promise.all([1, 2, 3].map(() => ask(refused, serialize('GET', '/', 'h', {}, undefined))));
  assert.deepEqual(results, [1, 2, 3].map(() => ({ status: 0, error: 'ECONNREFUSED' })));
  refused.destroy();
});
