import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';

import { isTideError } from '../../src/errors.js';
import { createHttpJsonSource, httpJsonConfig, parseJsonPath } from '../../src/sources/http-json.js';
import { sourceConformance } from './conformance.js';

const ctx = { now: () => 3_000, env: { TIDE_TEST_TOKEN: 'sesame' } };
const signal = () => new AbortController().signal;

/** A real HTTP server on loopback answering the shapes the source reads. */
const routes: Record<string, { status?: number; body: string }> = {
  '/hirefire': { body: JSON.stringify([{ name: 'worker', quantity: 12 }, { name: 'urgent', quantity: 0 }]) },
  '/flat': { body: JSON.stringify({ queue_depth: 12, queue_oldest_age_seconds: 3.5, version: '1.2', ok: true }) },
  '/nested': { body: JSON.stringify({ queues: { default: { depth: 7, 'oldest age': 2 } }, items: [{ count: 4 }], nothing: null, label: 'x' }) },
  '/text': { body: 'hello' },
  '/down': { status: 503, body: 'maintenance' },
  '/strings': { body: JSON.stringify({ a: 'b' }) },
};
let server: http.Server;
let base = '';
let lastAuthorization: string | undefined;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/private') {
      lastAuthorization = req.headers.authorization;
      const ok = req.headers.authorization === 'Bearer sesame';
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? JSON.stringify({ queue_depth: 1 }) : '{"error":"unauthorized"}');
      return;
    }
    const route = routes[req.url ?? ''];
    res.writeHead(route?.status ?? (route ? 200 : 404), { 'content-type': 'application/json' });
    res.end(route?.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function source(fields: Record<string, unknown>) {
  return createHttpJsonSource(httpJsonConfig.parse(fields), ctx);
}

async function readOnce(fields: Record<string, unknown>) {
  const s = source(fields);
  try {
    return { samples: await s.read(signal()), notes: s.notes!() };
  } finally {
    await s.close();
  }
}

sourceConformance('http-json', {
  create: (c) => createHttpJsonSource(httpJsonConfig.parse({ url: `${base}/flat` }), c),
  hanging: (host, port, timeoutMs, c) => createHttpJsonSource(httpJsonConfig.parse({ url: `http://${host}:${port}/`, timeout_ms: timeoutMs }), c),
  unreachable: (port, c) => createHttpJsonSource(httpJsonConfig.parse({ url: `http://127.0.0.1:${port}/` }), c),
});

test('HireFire-style [{ name, quantity }] gives one sample per entry', async () => {
  const { samples } = await readOnce({ url: `${base}/hirefire` });
  assert.deepEqual(samples, [
    { metric: 'worker', value: 12, at: 3_000 },
    { metric: 'urgent', value: 0, at: 3_000 },
  ]);
});

test('a flat object gives its numeric fields', async () => {
  const { samples } = await readOnce({ url: `${base}/flat` });
  assert.deepEqual(samples, [
    { metric: 'queue_depth', value: 12, at: 3_000 },
    { metric: 'queue_oldest_age_seconds', value: 3.5, at: 3_000 },
  ]);
});

test('configured JSON paths pick nested numbers; an absent one is a note, a non-number is TIDE_SOURCE_BAD_VALUE', async () => {
  const { samples, notes } = await readOnce({
    url: `${base}/nested`,
    paths: { queue_depth: '$.queues.default.depth', queue_oldest_age_seconds: "$.queues.default['oldest age']", in_flight: '$.items[0].count', gone: '$.queues.other.depth', empty: 'nothing' },
  });
  assert.deepEqual(samples, [
    { metric: 'queue_depth', value: 7, at: 3_000 },
    { metric: 'queue_oldest_age_seconds', value: 2, at: 3_000 },
    { metric: 'in_flight', value: 4, at: 3_000 },
  ]);
  assert.equal(notes.length, 2);
  assert.match(notes[0]!, /\$\.queues\.other\.depth is not in the answer, so gone is missing/);
  const s = source({ url: `${base}/nested`, paths: { m: '$.label' } });
  try {
    await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_BAD_VALUE' && /"x"/.test(err.message));
  } finally {
    await s.close();
  }
});

test('the JSON path dialect', () => {
  assert.deepEqual(parseJsonPath('$.a.b[2]["c d"]'), ['a', 'b', 2, 'c d']);
  assert.deepEqual(parseJsonPath('a.b'), ['a', 'b']);
  for (const bad of ['$', '$.', '$.a[', '$..a', '']) assert.equal(parseJsonPath(bad), undefined, bad);
  assert.equal(httpJsonConfig.safeParse({ url: base || 'http://x', paths: { m: '$..a' } }).success, false);
});

test('a bearer token from the named environment variable is sent; an unset variable is TIDE_SOURCE_CONFIG', async () => {
  const { samples } = await readOnce({ url: `${base}/private`, bearer_token_env: 'TIDE_TEST_TOKEN' });
  assert.equal(lastAuthorization, 'Bearer sesame');
  assert.deepEqual(samples, [{ metric: 'queue_depth', value: 1, at: 3_000 }]);
  const s = source({ url: `${base}/private`, bearer_token_env: 'TIDE_NOT_SET_ANYWHERE' });
  try {
    await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_CONFIG' && /TIDE_NOT_SET_ANYWHERE/.test(err.message));
  } finally {
    await s.close();
  }
});

test('an error status is TIDE_SOURCE_FAILED with the status; non-JSON or no numbers is TIDE_SOURCE_BAD_VALUE', async () => {
  for (const [route, code, words] of [
    ['/down', 'TIDE_SOURCE_FAILED', /answered 503: maintenance/],
    ['/private', 'TIDE_SOURCE_FAILED', /answered 401/],
    ['/text', 'TIDE_SOURCE_BAD_VALUE', /not JSON/],
    ['/strings', 'TIDE_SOURCE_BAD_VALUE', /no numeric field/],
  ] as const) {
    const s = source({ url: `${base}${route}` });
    try {
      await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === code && words.test(err.message), route);
    } finally {
      await s.close();
    }
  }
});
