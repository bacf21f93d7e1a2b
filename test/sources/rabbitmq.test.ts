import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { type Channel, type ChannelModel, type ConsumeMessage, connect } from 'amqplib';

import { isTideError } from '../../src/errors.js';
import { createRabbitmqSource, rabbitmqConfig } from '../../src/sources/rabbitmq.js';
import { sourceConformance } from './conformance.js';
import { uniqueName } from './helpers.js';

const url = process.env.AMQP_URL ?? '';
const skip = !url && 'AMQP_URL is not set';
const ctx = { now: () => 7_000 };
const signal = () => new AbortController().signal;
const queue = uniqueName('rmq');
const busy = uniqueName('rmq_busy');
const later = uniqueName('rmq_later');

/** The management API next to the broker (port 15672, the AMQP URL's credentials). */
function managementUrl(): string {
  const amqp = new URL(url);
  return `http://${amqp.hostname}:15672`;
}

let admin: ChannelModel | undefined;
let channel: Channel | undefined;
let managementUp = false;

before(async () => {
  if (skip) return;
  admin = await connect(url);
  channel = await admin.createChannel();
  for (const q of [queue, busy]) await channel.assertQueue(q, { durable: false });
  for (let i = 0; i < 2; i++) channel.sendToQueue(queue, Buffer.from('x'));
  for (let i = 0; i < 3; i++) channel.sendToQueue(busy, Buffer.from('x'));
  // Publishes are asynchronous: a round trip on the same channel orders them before the reads.
  await channel.checkQueue(queue);
  const amqp = new URL(url);
  try {
    const res = await fetch(`${managementUrl()}/api/overview`, {
      headers: { authorization: `Basic ${Buffer.from(`${decodeURIComponent(amqp.username)}:${decodeURIComponent(amqp.password)}`).toString('base64')}` },
    });
    managementUp = res.ok;
    await res.body?.cancel();
  } catch {
    managementUp = false;
  }
  if (!managementUp) console.log('note: the RabbitMQ management API (rabbitmq_management plugin, port 15672) does not answer; its test skips');
});

after(async () => {
  if (!admin) return;
  for (const q of [queue, busy, later]) await channel!.deleteQueue(q);
  await admin.close();
});

sourceConformance('rabbitmq', {
  skip,
  create: (c) => createRabbitmqSource(rabbitmqConfig.parse({ url, queue }), c),
  hanging: (host, port, timeoutMs, c) => createRabbitmqSource(rabbitmqConfig.parse({ url: `amqp://guest:guest@${host}:${port}`, queue, timeout_ms: timeoutMs }), c),
  unreachable: (port, c) => createRabbitmqSource(rabbitmqConfig.parse({ url: `amqp://guest:guest@127.0.0.1:${port}`, queue }), c),
});

test('ready messages and consumers over AMQP; a delivered message is no longer ready', { skip }, async () => {
  const source = createRabbitmqSource(rabbitmqConfig.parse({ url, queue: busy }), ctx);
  const consumerChannel = await admin!.createChannel();
  try {
    assert.deepEqual(await source.read(signal()), [
      { metric: 'queue_depth', value: 3, at: 7_000 },
      { metric: 'consumers', value: 0, at: 7_000 },
    ]);
    await consumerChannel.prefetch(1);
    const delivered = new Promise<ConsumeMessage | null>((resolve) => {
      void consumerChannel.consume(busy, resolve, { noAck: false });
    });
    assert.ok(await delivered);
    assert.deepEqual(await source.read(signal()), [
      { metric: 'queue_depth', value: 2, at: 7_000 },
      { metric: 'consumers', value: 1, at: 7_000 },
    ]);
  } finally {
    // Closing the channel requeues the unacknowledged message.
    await consumerChannel.close();
    await source.close();
  }
});

test('a missing queue is TIDE_SOURCE_NOT_FOUND, and the source reopens its channel and reads once it exists', { skip }, async () => {
  const source = createRabbitmqSource(rabbitmqConfig.parse({ url, queue: later }), ctx);
  try {
    for (let i = 0; i < 2; i++) {
      await assert.rejects(source.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_NOT_FOUND' && err.message.includes(later));
    }
    await channel!.assertQueue(later, { durable: false });
    assert.deepEqual(await source.read(signal()), [
      { metric: 'queue_depth', value: 0, at: 7_000 },
      { metric: 'consumers', value: 0, at: 7_000 },
    ]);
  } finally {
    await source.close();
  }
});

test('with management_url: unacknowledged count and publish/deliver rates from the management API', { skip, timeout: 40_000 }, async (t) => {
  if (!managementUp) {
    t.skip('the RabbitMQ management API does not answer (enable the rabbitmq_management plugin)');
    return;
  }
  const source = createRabbitmqSource(rabbitmqConfig.parse({ url, queue, management_url: managementUrl() }), ctx);
  const missing = createRabbitmqSource(rabbitmqConfig.parse({ url, queue: uniqueName('nope'), management_url: managementUrl() }), ctx);
  try {
    const samples = await source.read(signal());
    assert.deepEqual(samples.map((s) => s.metric), ['queue_depth', 'consumers', 'in_flight', 'arrivals_total', 'completions_total', 'publish_rate_per_second', 'deliver_rate_per_second']);
    for (const s of samples) {
      assert.ok(Number.isFinite(s.value) && s.value >= 0, `${s.metric} = ${s.value}`);
      assert.equal(s.at, 7_000);
    }
    await assert.rejects(missing.read(signal()), (err) => isTideError(err) && err.code === 'TIDE_SOURCE_NOT_FOUND');
    // The management API computes rates from its own samples (every 5 s by default): keep
    // publishing and read until the publish rate shows, within a bound. A condition, not a
    // duration, is asserted.
    const deadline = Date.now() + 25_000;
    let last = samples;
    const valueOf = (metric: string) => last.find((s) => s.metric === metric)!.value;
    while (valueOf('publish_rate_per_second') === 0 && Date.now() < deadline) {
      for (let i = 0; i < 5; i++) channel!.sendToQueue(queue, Buffer.from('x'));
      await new Promise((resolve) => setTimeout(resolve, 500));
      last = await source.read(signal());
    }
    assert.ok(valueOf('publish_rate_per_second') > 0, 'the publish rate shows the messages published');
    assert.ok(valueOf('arrivals_total') >= 2, 'the publish total counts them');
  } finally {
    await source.close();
    await missing.close();
  }
});
