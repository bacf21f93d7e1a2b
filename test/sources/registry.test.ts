import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isTideError } from '../../src/errors.js';
import { createSource, sourceKinds, sourceSummaries } from '../../src/sources/registry.js';

const ctx = { now: () => 0, pids: () => [process.pid] };

function configError(input: unknown, field: string | undefined, words?: RegExp, where = {}) {
  assert.throws(
    () => createSource(input, where, ctx),
    (err) => {
      assert.ok(isTideError(err), String(err));
      assert.equal(err.code, 'TIDE_SOURCE_CONFIG');
      assert.equal(err.where?.field, field);
      if (words) assert.match(err.message, words);
      return true;
    },
  );
}

test('one explicit map: every kind is listed with a summary', () => {
  assert.deepEqual(sourceKinds(), ['builtin', 'bullmq', 'http-json', 'postgres', 'process', 'prometheus', 'rabbitmq', 'redis']);
  for (const { summary } of sourceSummaries()) assert.ok(summary.length > 10);
});

test('a valid config creates the source without connecting to anything', async () => {
  const configs = [
    { kind: 'postgres', connection_string: 'postgres://nobody@127.0.0.1:1/x', query: 'SELECT 1', metric: 'm' },
    { kind: 'bullmq', url: 'redis://127.0.0.1:1', queue: 'q' },
    { kind: 'rabbitmq', url: 'amqp://127.0.0.1:1', queue: 'q', management_url: 'http://127.0.0.1:1' },
    { kind: 'redis', url: 'redis://127.0.0.1:1', key: ['a', 'b'] },
    { kind: 'prometheus', url: 'http://127.0.0.1:1', query: 'up', metric: 'm' },
    { kind: 'http-json', url: 'http://127.0.0.1:1', paths: { m: '$.a' } },
    { kind: 'process', memory_limit_bytes: 1024 },
    { kind: 'builtin', connection_string: 'postgres://nobody@127.0.0.1:1/x', queue: 'q' },
  ];
  assert.deepEqual(configs.map((c) => c.kind).sort(), sourceKinds());
  for (const config of configs) {
    const source = createSource(config, {}, ctx);
    await source.close();
  }
});

test('a bad config is TIDE_SOURCE_CONFIG naming the field, under the caller\'s where', () => {
  configError({ kind: 'postgres', connection_string: 'postgres://x', metric: 'm' }, 'query', /query/);
  configError({ kind: 'redis', url: 'redis://x', key: 'k', timeout_ms: -1 }, 'timeout_ms');
  configError({ kind: 'redis', url: 'redis://x', key: 'k', colour: 'blue' }, 'colour', /colour/);
  configError({ kind: 'http-json', url: 'http://x', paths: { m: '$..a' } }, 'paths.m', /JSON path/);
  configError({ kind: 'rabbitmq', url: 'http://x', queue: 'q' }, 'url', /amqp/);
  configError({ kind: 'redis', url: 'redis://x', key: [] }, 'key');
  configError({ kind: 'prometheus', url: 'http://x', query: 'up' }, 'services.api.sources[0].metric', /metric/, { file: 'tide.yaml', line: 12, field: 'services.api.sources[0]' });
  const err = (() => {
    try {
      createSource({ kind: 'prometheus', url: 'http://x', query: 'up' }, { file: 'tide.yaml', line: 12, field: 'src' }, ctx);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(isTideError(err));
  assert.deepEqual(err.where, { file: 'tide.yaml', line: 12, field: 'src.metric' });
});

test('an unknown, missing or non-string kind names the kind field and lists the kinds', () => {
  configError({ kind: 'kafka' }, 'kind', /no source kind "kafka".*builtin, bullmq/);
  configError({ url: 'x' }, 'kind', /needs a `kind`/);
  configError({ kind: 'toString' }, 'kind', /no source kind/);
  configError({ kind: 'kafka' }, 'sources.q.kind', undefined, { field: 'sources.q' });
  configError({ kind: 'redis', url: 'x', key: 'k' }, 'sources.q.url', /redis:\/\//, { field: 'sources.q' });
  configError('redis', undefined, /mapping/);
});

test('the process source without pids in its context is a config error', () => {
  assert.throws(() => createSource({ kind: 'process' }, {}, { now: () => 0 }), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_CONFIG');
});
