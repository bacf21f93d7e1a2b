import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { test } from 'node:test';

import { Pool } from 'undici';

import { type Balancer, type BalancerOptions, createBalancer } from '../../src/balancer/balancer.js';

/** A tiny upstream on loopback: answers its id, counts hits, can fail its health check or hold requests. */
interface Upstream {
  id: string;
  url: string;
  hits: number;
  healthy: boolean;
  /** Requests to paths starting /hold wait here until released. */
  held: ServerResponse[];
  events: EventEmitter;
  release(): void;
  close(): Promise<void>;
}

async function upstream(id: string): Promise<Upstream> {
  const events = new EventEmitter();
  const u: Upstream = {
    id,
    url: '',
    hits: 0,
    healthy: true,
    held: [],
    events,
    release() {
      for (const res of u.held.splice(0)) res.end(JSON.stringify({ id }));
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') {
      res.writeHead(u.healthy ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id, ok: u.healthy }));
      return;
    }
    u.hits++;
    if (req.url === '/echo-headers') {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-upstream': id });
      res.end(JSON.stringify(req.headers));
      return;
    }
    if (req.url === '/echo-body') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (req.url?.startsWith('/hold')) {
      u.held.push(res);
      res.on('close', () => {
        if (!res.writableFinished) events.emit('abandoned');
      });
      events.emit('held', u.held.length);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  u.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return u;
}

/** Resolves when `u` holds `n` requests. */
async function holding(u: Upstream, n: number): Promise<void> {
  while (u.held.length < n) await once(u.events, 'held');
}

/** A balancer on a free port with fast health checks, and a client pool to it. */
async function balancer(options: BalancerOptions = {}): Promise<{ lb: Balancer; client: Pool; close(): Promise<void> }> {
  const lb = await createBalancer({ host: '127.0.0.1', port: 0, healthCheck: { intervalMs: 20, timeoutMs: 500, fails: 2, passes: 1 }, ...options });
  const client = new Pool(lb.url, { connections: 32 });
  return {
    lb,
    client,
    async close() {
      await client.destroy();
      await lb.close();
    },
  };
}

/** Add upstreams and wait until each has passed its first health check. */
async function addHealthy(lb: Balancer, ups: Upstream[]): Promise<void> {
  const up = new Set<string>();
  const seen = new Promise<void>((resolve) => {
    const onUp = (id: string) => {
      up.add(id);
      if (ups.every((u) => up.has(u.id))) {
        lb.events.off('up', onUp);
        resolve();
      }
    };
    lb.events.on('up', onUp);
  });
  for (const u of ups) lb.addUpstream(u.id, u.url);
  await seen;
}

async function get(client: Pool, path: string, init: { method?: 'GET' | 'POST' | 'PUT'; body?: string | Buffer; headers?: Record<string, string> } = {}) {
  const res = await client.request({ path, method: init.method ?? 'GET', body: init.body ?? null, headers: init.headers ?? {} });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** Run `count` requests with at most `concurrency` at once. */
async function load(count: number, concurrency: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await one(next++);
  }));
}

test('3,000 requests spread evenly over 3 replicas', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map(upstream));
  const { lb, client, close } = await balancer();
  try {
    await addHealthy(lb, ups);
    const counts: Record<string, number> = {};
    await load(3000, 16, async () => {
      const res = await get(client, '/work');
      assert.equal(res.status, 200);
      const id = res.json().id as string;
      counts[id] = (counts[id] ?? 0) + 1;
    });
    for (const u of ups) {
      const share = (counts[u.id] ?? 0) / 3000;
      assert.ok(share > 0.3 && share < 0.367, `${u.id} got ${(share * 100).toFixed(1)}% (${JSON.stringify(counts)})`);
    }
    assert.equal(lb.stats().totals.requests, 3000);
  } finally {
    await close();
    await Promise.all(ups.map((u) => u.close()));
  }
});

test('least connections: a replica busy with a slow request gets none of the next ones', async () => {
  const [slow, idle] = await Promise.all([upstream('slow'), upstream('idle')]);
  const { lb, client, close } = await balancer();
  try {
    await addHealthy(lb, [slow, idle]);
    // Both idle: the tie goes round-robin, so two held requests land one on each...
    const first = get(client, '/hold');
    const second = get(client, '/hold');
    await Promise.all([holding(slow, 1), holding(idle, 1)]);
    idle.release();
    await second;
    // ...then `slow` still has one in flight and `idle` none: everything goes to `idle`.
    for (let i = 0; i < 20; i++) assert.equal((await get(client, '/work')).json().id, 'idle');
    assert.equal(slow.hits, 1);
    slow.release();
    assert.equal((await first).status, 200);
  } finally {
    await close();
    await Promise.all([slow.close(), idle.close()]);
  }
});

test('health checks take a failing replica out and put it back', async () => {
  const [a, b] = await Promise.all([upstream('a'), upstream('b')]);
  const { lb, client, close } = await balancer();
  try {
    await addHealthy(lb, [a, b]);
    a.healthy = false;
    const [downId] = (await once(lb.events, 'down')) as [string, string];
    assert.equal(downId, 'a');
    assert.equal(lb.upstreams().find((u) => u.id === 'a')?.healthy, false);
    const before = a.hits;
    for (let i = 0; i < 10; i++) assert.equal((await get(client, '/work')).json().id, 'b');
    assert.equal(a.hits, before);

    a.healthy = true;
    const [upId] = (await once(lb.events, 'up')) as [string];
    assert.equal(upId, 'a');
    const ids = new Set<unknown>();
    for (let i = 0; i < 10; i++) ids.add((await get(client, '/work')).json().id);
    assert.deepEqual([...ids].sort(), ['a', 'b']);
  } finally {
    await close();
    await Promise.all([a.close(), b.close()]);
  }
});

test('a new upstream gets no traffic until its first passing check, unless added healthy', async () => {
  const [a, b] = await Promise.all([upstream('a'), upstream('b')]);
  // Checks far apart, so only the explicit ones below run in this test's lifetime.
  const { lb, client, close } = await balancer({ healthCheck: { intervalMs: 60_000, timeoutMs: 500, fails: 1, passes: 1 } });
  try {
    a.healthy = false;
    lb.addUpstream('a', a.url);
    assert.equal(await lb.checkHealth('a'), false);
    assert.equal((await get(client, '/work')).status, 503);
    lb.addUpstream('b', b.url, { healthy: true });
    assert.equal((await get(client, '/work')).json().id, 'b');
    a.healthy = true;
    assert.equal(await lb.checkHealth('a'), true);
    assert.equal(lb.upstreams().find((u) => u.id === 'a')?.healthy, true);
  } finally {
    await close();
    await Promise.all([a.close(), b.close()]);
  }
});

test('draining: a replica being removed gets no new requests, its in-flight ones complete, then removeUpstream resolves', async () => {
  const [a, b] = await Promise.all([upstream('a'), upstream('b')]);
  const { lb, client, close } = await balancer();
  try {
    await addHealthy(lb, [a, b]);
    const inFlight = [get(client, '/hold'), get(client, '/hold')];
    await Promise.all([holding(a, 1), holding(b, 1)]);
    b.release();
    await inFlight[1];

    let removed = false;
    const removal = lb.removeUpstream('a').then(() => {
      removed = true;
    });
    assert.equal(lb.upstreams().find((u) => u.id === 'a')?.draining, true);
    const hitsBefore = a.hits;
    for (let i = 0; i < 10; i++) assert.equal((await get(client, '/work')).json().id, 'b');
    assert.equal(a.hits, hitsBefore);
    assert.equal(removed, false);

    a.release();
    const res = await inFlight[0]!;
    assert.equal(res.status, 200);
    assert.equal(res.json().id, 'a');
    await removal;
    assert.deepEqual(lb.upstreams().map((u) => u.id), ['b']);
  } finally {
    await close();
    await Promise.all([a.close(), b.close()]);
  }
});

test('a drain that outlasts its timeout resolves anyway', async () => {
  const a = await upstream('a');
  const { lb, client, close } = await balancer({ drainTimeoutMs: 50 });
  try {
    await addHealthy(lb, [a]);
    const held = get(client, '/hold').catch((err: unknown) => err);
    await holding(a, 1);
    await lb.removeUpstream('a');
    assert.deepEqual(lb.upstreams(), []);
    // Cut off at removal: the client sees its request fail rather than hang.
    assert.ok(await held);
  } finally {
    await close();
    await a.close();
  }
});

/** An upstream in a child process, so it can really be killed: holds /hold requests, counts them on stdout. */
async function childUpstream(): Promise<{ url: string; child: ChildProcess; held(n: number): Promise<void> }> {
  const code = `
    const http = require('node:http');
    let held = 0;
    const server = http.createServer((req, res) => {
      if (req.url === '/health') return res.end('{"ok":true}');
      if (req.url.startsWith('/hold')) { req.resume(); held++; console.log('held ' + held); return; }
      res.end('{"id":"child"}');
    });
    server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
  `;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const events = new EventEmitter();
  let heldCount = 0;
  lines.on('line', (line) => {
    const [what, n] = line.split(' ');
    if (what === 'held') heldCount = Number(n);
    events.emit(what!, Number(n));
  });
  const [port] = (await once(events, 'port')) as [number];
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async held(n) {
      while (heldCount < n) await once(events, 'held');
    },
  };
}

test('a killed upstream: only requests in flight on it can fail, and idempotent ones are retried elsewhere', async () => {
  const victim = await childUpstream();
  const survivor = await upstream('survivor');
  const { lb, client, close } = await balancer();
  try {
    lb.addUpstream('victim', victim.url, { healthy: true });
    const gets = Array.from({ length: 3 }, () => get(client, '/hold'));
    const puts = Array.from({ length: 2 }, () => get(client, '/hold', { method: 'PUT' }));
    const posts = Array.from({ length: 3 }, () => get(client, '/hold', { method: 'POST', body: 'x' }));
    await victim.held(8);
    lb.addUpstream('survivor', survivor.url, { healthy: true });

    const exited = once(victim.child, 'exit');
    victim.child.kill('SIGKILL');
    await exited;
    // The retried requests reach the survivor's /hold too: let them through.
    await holding(survivor, 5);
    survivor.release();

    // Idempotent requests in flight on the dead replica are replayed on the survivor.
    for (const res of await Promise.all([...gets, ...puts])) {
      assert.equal(res.status, 200);
      assert.equal(res.json().id, 'survivor');
    }
    // A POST whose body reached the dead replica may have had effects: it fails, coded.
    for (const res of await Promise.all(posts)) {
      assert.equal(res.status, 502);
      assert.equal((res.json().error as { code: string }).code, 'TIDE_LB_UPSTREAM_FAILED');
    }
    // Nothing after the kill fails: the dead replica was marked down at its first error.
    for (let i = 0; i < 20; i++) {
      const res = await get(client, '/work', { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'y' : '' });
      assert.equal(res.status, 200);
    }
    const victimStats = lb.upstreams().find((u) => u.id === 'victim')!;
    assert.equal(victimStats.healthy, false);
    assert.ok(victimStats.failures >= 1);
    assert.equal(lb.stats().totals.retries, 5);
  } finally {
    victim.child.kill('SIGKILL');
    await close();
    await survivor.close();
  }
});

test('a POST to a refused connection is retried: nothing was sent', async () => {
  const dead = await upstream('dead');
  const live = await upstream('live');
  await dead.close();
  const { lb, client, close } = await balancer({ healthCheck: { intervalMs: 60_000, timeoutMs: 500, fails: 1, passes: 1 } });
  try {
    lb.addUpstream('dead', dead.url, { healthy: true });
    lb.addUpstream('live', live.url, { healthy: true });
    for (let i = 0; i < 4; i++) {
      const res = await get(client, '/work', { method: 'POST', body: 'z' });
      assert.equal(res.status, 200);
      assert.equal(res.json().id, 'live');
    }
  } finally {
    await close();
    await live.close();
  }
});

test('503 TIDE_LB_NO_UPSTREAM with none healthy, 502 TIDE_LB_UPSTREAM_FAILED when all fail', async () => {
  const dead = await upstream('dead');
  await dead.close();
  const { lb, client, close } = await balancer({ healthCheck: { intervalMs: 60_000, timeoutMs: 500, fails: 1, passes: 1 } });
  try {
    const none = await get(client, '/work');
    assert.equal(none.status, 503);
    assert.equal((none.json().error as { code: string }).code, 'TIDE_LB_NO_UPSTREAM');
    lb.addUpstream('dead', dead.url, { healthy: true });
    const failed = await get(client, '/work');
    assert.equal(failed.status, 502);
    assert.equal((failed.json().error as { code: string }).code, 'TIDE_LB_UPSTREAM_FAILED');
  } finally {
    await close();
  }
});

test('GET /lb/stats reports each upstream and the totals', async () => {
  const [a, b] = await Promise.all([upstream('a'), upstream('b')]);
  const { lb, client, close } = await balancer();
  try {
    await addHealthy(lb, [a, b]);
    for (let i = 0; i < 4; i++) await get(client, '/work');
    const res = await get(client, '/lb/stats');
    assert.equal(res.status, 200);
    const stats = res.json() as unknown as { upstreams: Array<Record<string, unknown>>; totals: Record<string, number> };
    assert.deepEqual(
      stats.upstreams.map((u) => ({ ...u })).sort((x, y) => String(x.id).localeCompare(String(y.id))),
      [
        { id: 'a', address: a.url, healthy: true, draining: false, in_flight: 0, requests: 2, failures: 0 },
        { id: 'b', address: b.url, healthy: true, draining: false, in_flight: 0, requests: 2, failures: 0 },
      ],
    );
    assert.deepEqual(stats.totals, { upstreams: 2, healthy: 2, in_flight: 0, requests: 4, failures: 0, retries: 0, no_upstream: 0, rate_limited: 0 });
  } finally {
    await close();
    await Promise.all([a.close(), b.close()]);
  }
});

test('hop-by-hop headers are dropped both ways and X-Forwarded-For/Proto added', async () => {
  const a = await upstream('a');
  const { lb, close } = await balancer();
  try {
    lb.addUpstream('a', a.url, { healthy: true });
    // node:http, not undici: undici will not send a Connection header naming other headers.
    const res = await new Promise<{ headers: IncomingMessage['headers']; json: () => Record<string, unknown> }>((resolve, reject) => {
      const req = request(`${lb.url}/echo-headers`, {
        headers: { connection: 'keep-alive, x-private', 'x-private': 'secret', 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https', 'x-kept': 'yes' },
        agent: false,
      }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ headers: response.headers, json: () => JSON.parse(text) as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end();
    });
    const seen = res.json();
    assert.equal(seen['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-kept'], 'yes');
    assert.equal(seen['x-private'], undefined);
    assert.equal(res.headers['x-upstream'], 'a');
    assert.equal(res.headers['keep-alive'], 'timeout=65');
  } finally {
    await close();
    await a.close();
  }
});

test('a large body streams through both ways unchanged', async () => {
  const a = await upstream('a');
  const { lb, client, close } = await balancer();
  try {
    lb.addUpstream('a', a.url, { healthy: true });
    const body = Buffer.alloc(4 * 1024 * 1024, 7);
    for (let i = 0; i < body.length; i += 4096) body[i] = i % 251;
    const res = await client.request({ path: '/echo-body', method: 'POST', body });
    const hash = createHash('sha256');
    let length = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
    assert.equal(res.statusCode, 200);
    assert.equal(length, body.length);
    assert.equal(hash.digest('hex'), createHash('sha256').update(body).digest('hex'));
  } finally {
    await close();
    await a.close();
  }
});

test('per-client rate limit: 429 with Retry-After past the burst, refilled with time', async () => {
  const a = await upstream('a');
  let clock = 1_000_000;
  const { lb, client, close } = await balancer({ rateLimit: { ratePerSecond: 2, burst: 3 }, now: () => clock });
  try {
    lb.addUpstream('a', a.url, { healthy: true });
    for (let i = 0; i < 3; i++) assert.equal((await get(client, '/work')).status, 200);
    const limited = await get(client, '/work');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '1');
    assert.equal((limited.json().error as { code: string }).code, 'TIDE_LB_RATE_LIMITED');
    clock += 500; // 2/s: one token back
    assert.equal((await get(client, '/work')).status, 200);
    assert.equal((await get(client, '/work')).status, 429);
    assert.equal(lb.stats().totals.rate_limited, 2);
  } finally {
    await close();
    await a.close();
  }
});

test('a client that hangs up cancels its upstream request', async () => {
  const a = await upstream('a');
  const { lb, close } = await balancer();
  try {
    lb.addUpstream('a', a.url, { healthy: true });
    const req = request(`${lb.url}/hold`, { agent: false });
    req.on('error', () => {});
    req.end();
    await holding(a, 1);
    assert.equal(lb.stats().totals.in_flight, 1);
    const abandoned = once(a.events, 'abandoned');
    req.destroy();
    await abandoned;
    assert.equal(lb.stats().totals.in_flight, 0);
    assert.equal(lb.upstreams()[0]?.healthy, true);
  } finally {
    await close();
    await a.close();
  }
});
