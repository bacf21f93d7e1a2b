/**
 * `rabbitmq`: a queue's ready message count and consumer count over AMQP (`checkQueue`), and,
 * when `management_url` is set, its unacknowledged count, publish and ack totals, and
 * publish and deliver rates from the management HTTP API (which refreshes them every 5 s by
 * default: the rates lag that much).
 *
 * Design: one AMQP connection and one channel per source, opened on the first read. RabbitMQ
 * closes a channel on any channel error (a missing queue is a 404 that closes it), so the
 * channel is reopened on the next read; a connection that closes is reconnected the same way.
 * Each connection's socket carries an AbortSignal the source owns: an aborted read, or
 * close(), destroys the socket even in the middle of the AMQP handshake, which amqplib
 * cannot cancel otherwise. close() closes the connection politely when it is open, then
 * destroys the socket and the HTTP agent.
 */
import { type Channel, type ChannelModel, type SocketOptions, connect } from 'amqplib';
import { z } from 'zod';

import type { Sample } from '../core/types.js';
import { METRIC } from '../core/types.js';
import { type SourceLabel, closedError, commonFields, finiteNumber, guardedConnectionRead, labelOf, sourceError } from './guard.js';
import { httpClient, splitCredentials } from './http.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

export const rabbitmqConfig = z.strictObject({
  ...commonFields,
  /** amqp://user:pass@host:port/vhost */
  url: z.string().regex(/^amqps?:\/\//, 'an amqp:// or amqps:// URL'),
  queue: z.string().min(1),
  /** http://user:pass@host:15672 (credentials default to the AMQP URL's). */
  management_url: z.string().regex(/^https?:\/\//, 'an http:// or https:// URL').optional(),
});
export type RabbitmqConfig = z.infer<typeof rabbitmqConfig>;

/** Metric names this source publishes besides the well-known ones. */
export const RABBITMQ_METRIC = {
  consumers: 'consumers',
  publishRate: 'publish_rate_per_second',
  deliverRate: 'deliver_rate_per_second',
} as const;

interface Link {
  /** Aborting it destroys the connection's socket, whatever state it is in. */
  kill: AbortController;
  model: Promise<ChannelModel>;
  /** Set once the connection is open, for a polite close. */
  open?: ChannelModel;
  channel?: Promise<Channel> | undefined;
}

/** The reply code RabbitMQ closes a channel with (404 for a missing queue), if any. */
function replyCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function vhostOf(amqpUrl: string): string {
  const path = new URL(amqpUrl).pathname;
  return path.length > 1 ? decodeURIComponent(path.slice(1)) : '/';
}

/** The management API URL of the queue, with the AMQP URL's credentials when it has none. */
function managementQueueUrl(config: RabbitmqConfig & { management_url: string }): string {
  const base = new URL(config.management_url);
  if (!base.username) {
    const amqp = new URL(config.url);
    base.username = amqp.username;
    base.password = amqp.password;
  }
  const root = base.toString().replace(/\/+$/, '');
  return `${root}/api/queues/${encodeURIComponent(vhostOf(config.url))}/${encodeURIComponent(config.queue)}`;
}

function rate(stats: unknown, key: string): number {
  const details = (stats as Record<string, { rate?: unknown } | undefined> | undefined)?.[key];
  // No message_stats yet means nothing has been published or delivered: a rate of 0.
  return typeof details?.rate === 'number' && Number.isFinite(details.rate) ? details.rate : 0;
}

function count(stats: unknown, key: string): number {
  const value = (stats as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

async function readManagement(label: SourceLabel, http: ReturnType<typeof httpClient>, url: string, signal: AbortSignal, at: number): Promise<Sample[]> {
  const answer = await http.get(url, { signal });
  const shown = splitCredentials(url).url;
  if (answer.status === 404) throw sourceError(label, 'TIDE_SOURCE_NOT_FOUND', `the management API has no such queue (${shown})`);
  if (answer.status < 200 || answer.status >= 300) {
    throw sourceError(label, 'TIDE_SOURCE_FAILED', `the management API answered ${answer.status}: ${answer.text.slice(0, 200)}`);
  }
  if (!answer.isJson || typeof answer.json !== 'object' || answer.json === null) {
    throw sourceError(label, 'TIDE_SOURCE_BAD_VALUE', 'the management API answer is not a JSON object');
  }
  const body = answer.json as Record<string, unknown>;
  return [
    { metric: METRIC.inFlight, value: finiteNumber(label, 'messages_unacknowledged', body.messages_unacknowledged ?? 0), at },
    // Cumulative counts too: the core derives its own rates from counters over its windows.
    { metric: METRIC.arrivalsTotal, value: count(body.message_stats, 'publish'), at },
    { metric: METRIC.completionsTotal, value: count(body.message_stats, 'ack'), at },
    { metric: RABBITMQ_METRIC.publishRate, value: rate(body.message_stats, 'publish_details'), at },
    { metric: RABBITMQ_METRIC.deliverRate, value: rate(body.message_stats, 'deliver_get_details'), at },
  ];
}

export function createRabbitmqSource(config: RabbitmqConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('rabbitmq', config);
  const http = httpClient(config.timeout_ms);
  const management = config.management_url ? managementQueueUrl({ ...config, management_url: config.management_url }) : undefined;
  let link: Link | undefined;
  let closed = false;

  function theLink(): Link {
    if (link) return link;
    const kill = new AbortController();
    // `signal` reaches net.connect (amqplib copies the socket options): aborting destroys the socket.
    const options: SocketOptions & { signal: AbortSignal } = { timeout: config.timeout_ms, signal: kill.signal };
    const fresh: Link = { kill, model: connect(config.url, options) };
    fresh.model.then(
      (model) => {
        fresh.open = model;
        // A connection error closes it; forget it so the next read reconnects.
        model.on('error', () => {});
        model.on('close', () => {
          if (link === fresh) link = undefined;
        });
      },
      () => {
        if (link === fresh) link = undefined;
      },
    );
    link = fresh;
    return fresh;
  }

  function theChannel(l: Link): Promise<Channel> {
    if (l.channel) return l.channel;
    const opening: Promise<Channel> = l.model.then(async (model) => {
      const channel = await model.createChannel();
      channel.on('error', () => {});
      // RabbitMQ closes the channel on a channel error (a missing queue): reopen next read.
      channel.on('close', () => {
        if (l.channel === opening) l.channel = undefined;
      });
      return channel;
    });
    opening.catch(() => {
      if (l.channel === opening) l.channel = undefined;
    });
    l.channel = opening;
    return opening;
  }

  /** Forget the connection and destroy its socket at once. */
  function destroyLink(): void {
    const l = link;
    link = undefined;
    l?.kill.abort();
  }

  async function readAmqp(at: () => number): Promise<Sample[]> {
    const channel = await theChannel(theLink());
    let reply;
    try {
      reply = await channel.checkQueue(config.queue);
    } catch (err) {
      if (replyCode(err) === 404) {
        throw sourceError(label, 'TIDE_SOURCE_NOT_FOUND', `there is no queue "${config.queue}" in vhost "${vhostOf(config.url)}"`, err);
      }
      throw err;
    }
    const now = at();
    return [
      { metric: METRIC.queueDepth, value: reply.messageCount, at: now },
      { metric: RABBITMQ_METRIC.consumers, value: reply.consumerCount, at: now },
    ];
  }

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      return guardedConnectionRead(
        label,
        signal,
        config.timeout_ms,
        async (readSignal) => {
          const at = ctx.now();
          const [amqp, api] = await Promise.all([readAmqp(() => at), management ? readManagement(label, http, management, readSignal, at) : Promise.resolve([])]);
          return [...amqp, ...api];
        },
        destroyLink,
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      const l = link;
      link = undefined;
      if (l?.open) {
        try {
          await l.open.close();
        } catch {
          // Already closing or closed: the socket is destroyed below either way.
        }
      }
      l?.kill.abort();
      await http.close();
    },
  };
}

export const rabbitmqSource: SourceDefinition<RabbitmqConfig> = {
  kind: 'rabbitmq',
  summary: "A RabbitMQ queue's ready and consumer counts over AMQP; publish and deliver rates from the management API.",
  schema: rabbitmqConfig,
  create: createRabbitmqSource,
};
