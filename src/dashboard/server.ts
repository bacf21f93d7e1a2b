/**
 * The dashboard's HTTP side, mounted on the control API's server (or on `tide dashboard`'s
 * own): the page and its assets under /dashboard/, and `GET /dashboard/events`, a
 * server-sent event stream of snapshots. Scaling from the page goes through the control API's
 * own `POST /v1/scale`, so its token rules are the ones that apply.
 *
 *   GET /dashboard/                 the page (public/index.html)
 *   GET /dashboard/<asset>          app.js, style.css; vendor/uPlot.* from the uplot package
 *   GET /dashboard/events           SSE: `hello` {info, history, timeline}, then `snapshot` each round
 *
 * Design note. The page and its assets hold no secret and are served to anyone who reaches
 * the server; the events are state of the system and need the same authorization as the rest
 * of the control API (the caller passes `authorized`). Assets are read from the package at
 * run time (no build step at install); uPlot's dist files are resolved through node's module
 * resolution. Sampling starts with the first events client (or at once with `eager`) and then
 * runs until close(); close() ends every stream and stops the sampler and the collector.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { type Clock, systemClock } from '../clock.js';
import { TideError } from '../errors.js';
import { type AutoscalerView, type Collector, type CollectorSources, createCollector } from './collect.js';
import { Sampler } from './sampler.js';
import type { Snapshot } from './snapshot.js';

/** What the page shows about the system besides the snapshots. Never a secret. */
export interface DashboardInfo {
  project?: string;
  balancer?: string | null;
  /** Where the database is, redacted (see redactUrl). */
  database?: string;
  /** Where this dashboard reads from, for `tide dashboard --connect`. */
  remote?: string;
}

export interface DashboardOptions extends CollectorSources {
  info?: () => DashboardInfo;
  clock?: Clock;
  /** Between sampling rounds; default 1 000. */
  intervalMs?: number;
  /** Snapshots kept for a page that connects; default 300. */
  historySize?: number;
  /** Start sampling now rather than with the first page (`tide up`: so the charts have history). */
  eager?: boolean;
}

/** The mounted dashboard. */
export interface Dashboard {
  readonly sampler: Sampler;
  /**
   * Answers a request under /dashboard (true), or leaves it (false). `authorized` says whether
   * the request passed the server's token rules; the events stream needs it.
   */
  handle(req: IncomingMessage, res: ServerResponse, url: URL, access: { authorized: boolean }): Promise<boolean>;
  attachAutoscaler(view: AutoscalerView): void;
  /** Ends every stream, stops sampling, closes the queue connection. Idempotent. */
  close(): Promise<void>;
}

export const DASHBOARD_PREFIX = '/dashboard';
const HEARTBEAT_MS = 15_000;
/** A client this far behind is dropped rather than buffered without bound. */
const MAX_BUFFERED = 1 << 20;

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The asset files by URL path under /dashboard/, resolved once. */
function assetPath(rel: string): string | undefined {
  switch (rel) {
    case '':
    case 'index.html':
      return path.join(PUBLIC_DIR, 'index.html');
    case 'app.js':
    case 'charts.js':
    case 'style.css':
      return path.join(PUBLIC_DIR, rel);
    case 'vendor/uPlot.esm.js':
    case 'vendor/uPlot.min.css':
      return path.join(uplotDist(), rel.slice('vendor/'.length));
    default:
      return undefined;
  }
}

let uplotDir: string | undefined;
function uplotDist(): string {
  uplotDir ??= path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  return uplotDir;
}

const cache = new Map<string, Buffer>();

/** Serves a page or asset of the dashboard (no authorization needed: they hold no secret). */
export async function serveAsset(res: ServerResponse, pathname: string): Promise<void> {
  const rel = pathname.slice(DASHBOARD_PREFIX.length + 1);
  const file = assetPath(rel);
  if (!file) throw new TideError('TIDE_DASHBOARD_NOT_FOUND', `No dashboard asset ${pathname}; the page is ${DASHBOARD_PREFIX}/.`, { where: { arg: pathname } });
  let body = cache.get(file);
  if (!body) {
    body = await readFile(file);
    cache.set(file, body);
  }
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    // the page is small; always the one of this version
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    ...(file.endsWith('.html') ? { 'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:" } : {}),
  });
  res.end(body);
}

/** Formats one server-sent event. */
export function sseEvent(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Creates the dashboard over a running system (see DashboardOptions). */
export function createDashboard(options: DashboardOptions): Dashboard {
  const clock = options.clock ?? systemClock;
  const collector: Collector = createCollector(options);
  const sampler = new Sampler({
    read: (now) => collector.read(now),
    clock,
    ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
    ...(options.historySize !== undefined ? { historySize: options.historySize } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const clients = new Set<ServerResponse>();
  let cancelHeartbeat: (() => void) | null = null;
  let closing: Promise<void> | undefined;

  const send = (res: ServerResponse, chunk: string) => {
    if (res.writableLength > MAX_BUFFERED) return void res.destroy();
    res.write(chunk);
  };
  const onSnapshot = (s: Snapshot) => {
    const chunk = sseEvent('snapshot', s);
    for (const res of clients) send(res, chunk);
  };
  sampler.on('snapshot', onSnapshot);

  // a comment now and then keeps proxies from closing an idle stream
  const heartbeat = () => {
    cancelHeartbeat = clock.setTimer(() => {
      for (const res of clients) send(res, ': ping\n\n');
      heartbeat();
    }, HEARTBEAT_MS);
  };

  function stream(req: IncomingMessage, res: ServerResponse): void {
    if (closing) throw new TideError('TIDE_SUPERVISOR_STOPPING', 'The dashboard is closing.');
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\n\n`);
    res.write(sseEvent('hello', { info: options.info?.() ?? {}, intervalMs: sampler.intervalMs, history: sampler.history(), timeline: sampler.timeline() }));
    clients.add(res);
    if (!cancelHeartbeat) heartbeat();
    sampler.start();
    req.on('close', () => {
      clients.delete(res);
      if (clients.size === 0) {
        cancelHeartbeat?.();
        cancelHeartbeat = null;
      }
    });
  }

  if (options.eager) sampler.start();

  return {
    sampler,
    async handle(req, res, url, access) {
      const p = url.pathname;
      if (p !== DASHBOARD_PREFIX && !p.startsWith(`${DASHBOARD_PREFIX}/`)) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new TideError('TIDE_DASHBOARD_NOT_FOUND', `The dashboard answers GET only (scale with POST /v1/scale), not ${req.method} ${p}.`);
      }
      if (p === DASHBOARD_PREFIX) {
        res.writeHead(308, { location: `${DASHBOARD_PREFIX}/` });
        res.end();
        return true;
      }
      if (p === `${DASHBOARD_PREFIX}/events`) {
        if (!access.authorized) {
          throw new TideError('TIDE_CONTROL_UNAUTHORIZED', 'This control API listens beyond loopback: the dashboard events need Authorization: Bearer <token>.');
        }
        stream(req, res);
        return true;
      }
      await serveAsset(res, p);
      return true;
    },
    attachAutoscaler(view) {
      collector.attachAutoscaler(view);
    },
    close() {
      closing ??= (async () => {
        cancelHeartbeat?.();
        cancelHeartbeat = null;
        for (const res of clients) res.end();
        clients.clear();
        sampler.off('snapshot', onSnapshot);
        await sampler.stop();
        await collector.close();
      })();
      return closing;
    },
  };
}
