import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Redis } from 'ioredis';

import { isTideError } from '../../src/errors.js';
import { createRedisSource, redisConfig } from '../../src/sources/redis.js';
import { sourceConformance } from './conformance.js';
import { uniqueName } from './helpers.js';

const url = process.env.REDIS_URL ?? '';
const skip = !url && 'REDIS_URL is not set';
const ctx = { now: () => 5_000 };
const signal = () => new AbortController().signal;
const a = uniqueName('list_a');
const b = uniqueName('list_b');
const str = uniqueName('string');
let admin: Redis | undefined;

before(async () => {
  if (skip) return;
  admin = new Redis(url);
  await admin.rpush(a, 'x', 'y', 'z');
  await admin.rpush(b, 'x', 'y');
  await admin.set(str, 'not a list');
});

after(async () => {
  if (!admin) return;
  await admin.del(a, b, str);
  await admin.quit();
});

function source(fields: Record<string, unknown>) {
  return createRedisSource(redisConfig.parse({ url, ...fields }), ctx);
}

sourceConformance('redis', {
  skip,
  create: (c) => createRedisSource(redisConfig.parse({ url, key: a }), c),
  hanging: (host, port, timeoutMs, c) => createRedisSource(redisConfig.parse({ url: `redis://${host}:${port}`, key: a, timeout_ms: timeoutMs }), c),
  unreachable: (port, c) => createRedisSource(redisConfig.parse({ url: `redis://127.0.0.1:${port}`, key: a }), c),
});

test('LLEN of one key, the sum over several, and 0 for a missing key', { skip }, async () => {
  const one = source({ key: a });
  const sum = source({ key: [a, b, uniqueName('missing')], metric: 'backlog' });
  try {
    assert.deepEqual(await one.read(signal()), [{ metric: 'queue_depth', value: 3, at: 5_000 }]);
    assert.deepEqual(await sum.read(signal()), [{ metric: 'backlog', value: 5, at: 5_000 }]);
    await admin!.lpop(a);
    assert.deepEqual(await one.read(signal()), [{ metric: 'queue_depth', value: 2, at: 5_000 }]);
  } finally {
    await one.close();
    await sum.close();
  }
});

test('a key that is not a list is TIDE_SOURCE_QUERY with the server\'s words, and the source still reads', { skip }, async () => {
  const bad = source({ key: [b, str] });
  try {
    await assert.rejects(bad.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_QUERY' && /WRONGTYPE/.test(err.message));
    await assert.rejects(bad.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_QUERY');
  } finally {
    await bad.close();
  }
});
