// The dashboard's HTTP side over real loopback sockets: the SSE stream (history on connect,
// then a snapshot per round) mounted on the real control API, over a real supervisor and the
// real queue on PostgreSQL; the token rules beyond loopback; and `tide dashboard --connect`'s
// proxy in front of a token-protected control API.
import assert from 'node:assert/strict';
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import { after, before, test } from 'node:test';

import { startDashboardProxy } from '../../src/dashboard/proxy.js';
import { type Dashboard, createDashboard } from '../../src/dashboard/server.js';
import type { Snapshot } from '../../src/dashboard/snapshot.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { type ControlServer, startControl } from '../../src/app/control.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;
const TOKEN = 'test-token-7f3a';

interface SseEvent {
  event: string;
  data: unknown;
}

/** An SSE client on node:http: `next(name)` resolves with the next event of that name. */
function sse(url: string, headers: Record<string, string> = {}): Promise<{ status: number; res: IncomingMessage; next(name: string): Promise<SseEvent>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const queue: SseEvent[] = [];
      const waiters: Array<{ name: string; resolve: (e: SseEvent) => void }> = [];
      let buffer = '';
      const deliver = () => {
        for (const w of [...waiters]) {
          const i = queue.findIndex((e) => e.event === w.name);
          if (i < 0) continue;
          const [e] = queue.splice(i, 1);
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e!);
        }
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) queue.push({ event, data: JSON.parse(data) as unknown });
        }
        deliver();
      });
      res.on('error', () => undefined);
      resolve({
        status: res.statusCode ?? 0,
        res,
        next: (name) =>
          new Promise((r) => {
            waiters.push({ name, resolve: r });
            deliver();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** Snapshots until one satisfies `ok`. */
async function until(client: { next(name: string): Promise<SseEvent> }, ok: (s: Snapshot) => boolean): Promise<Snapshot> {
  for (;;) {
    const s = (await client.next('snapshot')).data as Snapshot;
    if (ok(s)) return s;
  }
}

let db: TestSchema;
let queue: PostgresQueue;
let supervisor: Supervisor;
let dashboard: Dashboard;
let control: ControlServer;

before(async () => {
  db = await freshSchema('dash');
  queue = await createPostgresQueue({ connectionString: db.url, schema: db.schema, poolSize: 1 });
  supervisor = new Supervisor({
    services: [{ name: 'web', kind: 'command', command: { file: process.execPath, args: [fixture('supervisor-server.mjs')] }, listens: true, healthPath: '/health', replicas: 1, min: 1, max: 2, stopGraceMs: 5_000 }],
  });
  await supervisor.start();
  dashboard = createDashboard({
    supervisor,
    openQueue: () => createPostgresQueue({ connectionString: db.url, schema: db.schema, poolSize: 1, migrate: false }),
    info: () => ({ project: 'ssetest', database: 'postgres://app:***@db/main' }),
    intervalMs: 100,
  });
  control = await startControl({ target: supervisor, port: 0, onDown: () => {}, mount: (req, res, url, access) => dashboard.handle(req, res, url, access) });
});

after(async () => {
  await dashboard?.close();
  await control?.close();
  await supervisor?.shutdown();
  await queue?.close();
  await db?.drop();
});

test('the page and its assets are served from the package; unknown paths are TIDE_DASHBOARD_NOT_FOUND', async () => {
  const page = await get(`${control.url}/dashboard/`);
  assert.equal(page.status, 200);
  assert.match(page.type, /text\/html/);
  assert.match(page.body, /<script type="module" src="app.js">/);
  for (const asset of ['app.js', 'charts.js', 'style.css', 'vendor/uPlot.esm.js', 'vendor/uPlot.min.css']) {
    const r = await get(`${control.url}/dashboard/${asset}`);
    assert.equal(r.status, 200, asset);
    assert.ok(r.body.length > 100, asset);
  }
  const redirect = await fetch(`${control.url}/dashboard`, { redirect: 'manual' });
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.get('location'), '/dashboard/');
  // only the files listed are served: no path walks out of the assets
  const missing = await get(`${control.url}/dashboard/..%2F..%2Fpackage.json`);
  assert.equal(missing.status, 404);
  const lost = await get(`${control.url}/dashboard/secrets.json`);
  assert.equal(lost.status, 404);
  assert.equal((JSON.parse(lost.body) as { error: { code: string } }).error.code, 'TIDE_DASHBOARD_NOT_FOUND');
  // the control API's own routes still answer
  assert.equal((await get(`${control.url}/v1/ps`)).status, 200);
});

test('GET /dashboard/events: hello with the history ring, then live snapshots with queue depth, jobs/s and a manual scale in the timeline', async () => {
  const client = await sse(`${control.url}/dashboard/events`);
  try {
    assert.equal(client.status, 200);
    assert.match(String(client.res.headers['content-type']), /text\/event-stream/);
    const hello = (await client.next('hello')).data as { info: { project: string }; intervalMs: number; history: Snapshot[]; timeline: unknown[] };
    assert.equal(hello.info.project, 'ssetest');
    assert.equal(hello.intervalMs, 100);

    const first = await until(client, (s) => s.services[0]?.ready === 1);
    assert.deepEqual(first.services.map((s) => [s.name, s.kind, s.desired, s.ready, s.min, s.max]), [['web', 'command', 1, 1, 1, 2]]);
    assert.equal(first.api, null, 'no api service, no api view');

    await queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ queue: 'default', handler: 'sleep', payload: { ms: 1 }, idempotencyKey: `k${i}` })));
    const deep = await until(client, (s) => s.queues.some((q) => q.queue === 'default' && q.depth === 5));
    const row = deep.queues.find((q) => q.queue === 'default')!;
    assert.ok(row.oldestAgeSeconds >= 0);

    // complete them here (no worker runs in this test): jobs/s turns positive in a later window
    const claimed = await queue.claim('test', ['default'], 5);
    assert.equal(claimed.length, 5);
    await queue.completeMany('test', claimed.map((job) => ({ id: job.id, durationMs: 1 })));
    const busy = await until(client, (s) => (s.queues.find((q) => q.queue === 'default')?.jobsPerSecond ?? 0) > 0);
    assert.equal(busy.queues.find((q) => q.queue === 'default')!.depth, 0);

    // a scale through the control API's own route shows in the cards and the timeline
    const scaled = await fetch(`${control.url}/v1/scale`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replicas: { web: 2 } }) });
    assert.equal(scaled.status, 200, await scaled.text());
    const after2 = await until(client, (s) => s.timeline.length > 0);
    assert.equal(after2.timeline[0]!.service, 'web');
    assert.deepEqual([after2.timeline[0]!.from, after2.timeline[0]!.to, after2.timeline[0]!.by], [1, 2, 'manual']);
    assert.equal(after2.timeline[0]!.reasons[0]!.code, 'ManualScale');
    await until(client, (s) => s.services[0]!.ready === 2);

    // a page that connects now gets the history at once, and the timeline
    const late = await sse(`${control.url}/dashboard/events`);
    try {
      const h = (await late.next('hello')).data as { history: Snapshot[]; timeline: Array<{ service: string }> };
      assert.ok(h.history.length >= 3);
      assert.deepEqual(h.timeline.map((e) => e.service), ['web']);
    } finally {
      late.close();
    }
  } finally {
    client.close();
  }
  const back = await fetch(`${control.url}/v1/scale`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replicas: { web: 1 } }) });
  assert.equal(back.status, 200);
});

/** A raw request with the headers a browser would send (fetch may not set Host or Origin). */
function raw(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a page of another site cannot drive the control API or the proxy through a browser (Origin), nor a rebound DNS name (Host)', async () => {
  const port = new URL(control.url).port;
  const code = (r: { body: string }) => (JSON.parse(r.body) as { error: { code: string } }).error.code;
  // a cross-site form POST needs no preflight: refused on its Origin, and nothing scaled
  const crossSite = await raw(`${control.url}/v1/scale`, 'POST', { origin: 'http://evil.example', 'content-type': 'text/plain' }, '{"replicas":{"web":2}}');
  assert.equal(crossSite.status, 403);
  assert.equal(code(crossSite), 'TIDE_DASHBOARD_ORIGIN');
  assert.equal(supervisor.ps().services[0]!.desired, 1);
  const rebound = await raw(`${control.url}/dashboard/events`, 'GET', { host: `evil.example:${port}` });
  assert.equal(rebound.status, 403);
  assert.equal(code(rebound), 'TIDE_DASHBOARD_ORIGIN');
  // the page's own requests (same origin), and tools without an Origin, pass
  const sameOrigin = await raw(`${control.url}/v1/ps`, 'GET', { origin: control.url, host: `127.0.0.1:${port}` });
  assert.equal(sameOrigin.status, 200);
  assert.equal((await raw(`${control.url}/v1/ps`, 'GET', { host: `localhost:${port}` })).status, 200);

  const proxy = await startDashboardProxy({ remote: control.url, token: TOKEN });
  try {
    const viaProxy = await raw(`${proxy.url}/v1/scale`, 'POST', { origin: 'http://evil.example', 'content-type': 'text/plain' }, '{"replicas":{"web":2}}');
    assert.equal(viaProxy.status, 403);
    assert.equal(supervisor.ps().services[0]!.desired, 1);
  } finally {
    await proxy.close();
  }
});

test('beyond loopback: the page is public, the events and scale need the bearer token; the proxy of tide dashboard --connect passes them', async () => {
  // a second control API on the wildcard address, as `control.host: 0.0.0.0` would be
  const remoteDashboard = createDashboard({ supervisor, info: () => ({ project: 'remote' }), intervalMs: 100 });
  const remote = await startControl({ target: supervisor, host: '0.0.0.0', port: 0, token: TOKEN, onDown: () => {}, mount: (req, res, url, access) => remoteDashboard.handle(req, res, url, access) });
  const proxy = await startDashboardProxy({ remote: remote.url, token: TOKEN });
  const open = await startDashboardProxy({ remote: remote.url });
  try {
    assert.equal((await get(`${remote.url}/dashboard/`)).status, 200);
    const refused = await get(`${remote.url}/dashboard/events`);
    assert.equal(refused.status, 401);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'TIDE_CONTROL_UNAUTHORIZED');
    assert.equal((await get(`${remote.url}/v1/ps`)).status, 401);
    const wrong = await sse(`${remote.url}/dashboard/events`, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    wrong.close();

    const direct = await sse(`${remote.url}/dashboard/events`, { authorization: `Bearer ${TOKEN}` });
    try {
      assert.equal(direct.status, 200);
      const hello = await direct.next('hello');
      assert.ok(!JSON.stringify(hello).includes(TOKEN), 'the token is never in the events');
      await direct.next('snapshot');
    } finally {
      direct.close();
    }

    // through the proxy: the page locally, the events and scale upstream with the token
    const page = await get(`${proxy.url}/dashboard/`);
    assert.equal(page.status, 200);
    assert.ok(!page.body.includes(TOKEN), 'the token is never in the page');
    const viaProxy = await sse(`${proxy.url}/dashboard/events`);
    try {
      assert.equal(viaProxy.status, 200);
      assert.equal(((await viaProxy.next('hello')).data as { info: { project: string } }).info.project, 'remote');
      const s = (await viaProxy.next('snapshot')).data as Snapshot;
      assert.equal(s.services[0]!.name, 'web');
    } finally {
      viaProxy.close();
    }
    const bad = await fetch(`${proxy.url}/v1/scale`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replicas: { web: 9 } }) });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'TIDE_SUPERVISOR_SCALE_INVALID');

    // without a token of its own the proxy passes the page's (the page asks after a 401)
    assert.equal((await get(`${open.url}/dashboard/events`)).status, 401);
    const withHeader = await fetch(`${open.url}/v1/ps`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(withHeader.status, 200);
    await withHeader.text();
  } finally {
    await open.close();
    await proxy.close();
    await remoteDashboard.close();
    await remote.close();
  }
  // nothing answers any more: the proxy says so with its own code
  const gone = await startDashboardProxy({ remote: remote.url, token: TOKEN });
  try {
    const r = await get(`${gone.url}/v1/ps`);
    assert.equal(r.status, 502);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'TIDE_DASHBOARD_REMOTE');
  } finally {
    await gone.close();
  }
  await assert.rejects(startDashboardProxy({ remote: remote.url, host: '0.0.0.0' }), { code: 'TIDE_USAGE' });
});
