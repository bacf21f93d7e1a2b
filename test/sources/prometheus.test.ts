/**
 * The prometheus source against a real Prometheus (Debian package `prometheus`), started here
 * with a temporary config and storage, scraping a loopback target of this test every second.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';

import { isTideError } from '../../src/errors.js';
import { createPrometheusSource, prometheusConfig } from '../../src/sources/prometheus.js';
import { prometheusSkip as skip, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { sourceConformance } from './conformance.js';

if (skip) console.log(`note: ${skip}; the Prometheus source tests skip`);

const ctx = { now: () => 9_000 };
const signal = () => new AbortController().signal;

let target: http.Server | undefined;
let prometheus: RunningPrometheus | undefined;
let url = '';

/** The page the target serves: two series of one gauge. */
const exposition = ['# TYPE tide_test_depth gauge', 'tide_test_depth{queue="a"} 42', 'tide_test_depth{queue="b"} 8', ''].join('\n');

before(async () => {
  if (skip) return;
  target = http.createServer((req, res) => {
    res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(req.url === '/metrics' ? exposition : '');
  });
  await new Promise<void>((resolve) => target!.listen(0, '127.0.0.1', resolve));
  const targetPort = (target.address() as AddressInfo).port;
  // Ready once the target is up and a query over it returns its two series.
  prometheus = await startPrometheus({
    config: ['global:', '  scrape_interval: 1s', '  evaluation_interval: 1s', 'scrape_configs:', '  - job_name: tide', '    static_configs:', `      - targets: ['127.0.0.1:${targetPort}']`, ''].join('\n'),
    ready: async (p) => {
      const up = (await p.query('up{job="tide"}')) as Array<{ value: [number, string] }> | undefined;
      const depth = (await p.query('tide_test_depth')) as unknown[] | undefined;
      return up?.[0]?.value[1] === '1' && depth?.length === 2;
    },
  });
  url = prometheus.url;
});

after(async () => {
  await prometheus?.stop();
  if (target) await new Promise<void>((resolve) => target!.close(() => resolve()));
});

function source(q: string, extra: Record<string, unknown> = {}) {
  return createPrometheusSource(prometheusConfig.parse({ url, query: q, metric: 'queue_depth', ...extra }), ctx);
}

sourceConformance('prometheus', {
  skip,
  create: (c) => createPrometheusSource(prometheusConfig.parse({ url, query: 'sum(tide_test_depth)', metric: 'queue_depth' }), c),
  hanging: (host, port, timeoutMs, c) => createPrometheusSource(prometheusConfig.parse({ url: `http://${host}:${port}`, query: 'up', metric: 'm', timeout_ms: timeoutMs }), c),
  unreachable: (port, c) => createPrometheusSource(prometheusConfig.parse({ url: `http://127.0.0.1:${port}`, query: 'up', metric: 'm' }), c),
});

test('a vector with one series and a scalar each give one sample', { skip }, async () => {
  for (const [q, value] of [
    ['sum(tide_test_depth)', 50],
    ['tide_test_depth{queue="a"}', 42],
    ['scalar(sum(tide_test_depth)) / 2', 25],
  ] as const) {
    const s = source(q);
    try {
      assert.deepEqual(await s.read(signal()), [{ metric: 'queue_depth', value, at: 9_000 }], q);
    } finally {
      await s.close();
    }
  }
});

test('an empty result is no sample and a note; NaN and infinities too', { skip }, async () => {
  for (const q of ['tide_test_depth{queue="nope"}', '1 / 0', 'scalar(tide_test_depth{queue="nope"})']) {
    const s = source(q);
    try {
      assert.deepEqual(await s.read(signal()), [], q);
      assert.match(s.notes!().join(' '), /queue_depth is missing/);
    } finally {
      await s.close();
    }
  }
});

test("a PromQL error is TIDE_SOURCE_QUERY with Prometheus's message", { skip }, async () => {
  const s = source('sum(tide_test_depth');
  try {
    await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_QUERY' && /bad_data/.test(err.message) && /parse error/.test(err.message));
  } finally {
    await s.close();
  }
});

test('several series, or a range vector, is TIDE_SOURCE_BAD_VALUE', { skip }, async () => {
  for (const [q, words] of [
    ['tide_test_depth', /2 series/],
    ['tide_test_depth{queue="a"}[5s]', /matrix/],
  ] as const) {
    const s = source(q);
    try {
      await assert.rejects(s.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_BAD_VALUE' && words.test(err.message), q);
    } finally {
      await s.close();
    }
  }
});

test('a bearer token comes from the named environment variable; an unset one is TIDE_SOURCE_CONFIG', { skip }, async () => {
  const ok = createPrometheusSource(prometheusConfig.parse({ url, query: 'sum(tide_test_depth)', metric: 'queue_depth', bearer_token_env: 'TIDE_TEST_TOKEN' }), { ...ctx, env: { TIDE_TEST_TOKEN: 'secret' } });
  const unset = createPrometheusSource(prometheusConfig.parse({ url, query: 'up', metric: 'm', bearer_token_env: 'TIDE_TEST_TOKEN' }), { ...ctx, env: {} });
  try {
    assert.equal((await ok.read(signal())).length, 1);
    await assert.rejects(unset.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_CONFIG' && /TIDE_TEST_TOKEN/.test(err.message));
  } finally {
    await ok.close();
    await unset.close();
  }
});
