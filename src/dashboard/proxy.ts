/**
 * `tide dashboard --connect URL`: the dashboard page served from this machine for a control
 * API somewhere else. The page and its assets come from the local package; the events stream
 * and the scale calls are passed through to the remote control API, with its bearer token.
 *
 *   GET  /dashboard/...          local assets (server.ts)
 *   GET  /dashboard/events       -> remote /dashboard/events (streamed as it comes)
 *   GET  /v1/ps, POST /v1/scale  -> remote, same path
 *
 * Design note. The proxy listens on loopback only: it holds the token, so anything that can
 * reach it can act with the token's rights, the same trust the control API gives loopback.
 * The token sent upstream is the one given to `tide dashboard` (--token or
 * TIDE_CONTROL_TOKEN), else the one the page presents (after a 401 it asks for it). Every
 * upstream request is tracked and destroyed by close(), streams included, so nothing stays
 * open.
 */
import { type ClientRequest, type IncomingMessage, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';

import { TideError, isTideError } from '../errors.js';
import { browserRefusal, isLoopback } from '../net/loopback.js';
import { DASHBOARD_PREFIX, serveAsset } from './server.js';

export interface DashboardProxyOptions {
  /** The remote control API, `http(s)://host:port`. */
  remote: string;
  token?: string | undefined;
  /** Loopback only; default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
}

export interface DashboardProxy {
  /** `http://host:port` as bound; the page is at `${url}/dashboard/`. */
  url: string;
  close(): Promise<void>;
}

const PASSED = new Set(['GET /dashboard/events', 'GET /v1/ps', 'POST /v1/scale']);

/**
 * Starts the local server.
 * @throws TIDE_USAGE for a non-loopback host or a remote that is not an http(s) URL; TIDE_DASHBOARD_LISTEN
 */
export async function startDashboardProxy(options: DashboardProxyOptions): Promise<DashboardProxy> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    throw new TideError('TIDE_USAGE', `tide dashboard --connect listens on loopback only (it holds the control token), not ${host}.`, { where: { arg: '--host' } });
  }
  let remote: URL;
  try {
    remote = new URL(options.remote);
    if (remote.protocol !== 'http:' && remote.protocol !== 'https:') throw new Error('not http(s)');
  } catch (cause) {
    throw new TideError('TIDE_USAGE', `--connect takes the control API's http:// or https:// URL, not "${options.remote}".`, { where: { arg: '--connect' }, cause });
  }
  const base = remote.href.replace(/\/+$/, '');
  const upstreams = new Set<ClientRequest>();
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // it acts with the token: a page of another site must not drive it through a browser here
    const foreign = browserRefusal(req, true);
    if (foreign) throw new TideError('TIDE_DASHBOARD_ORIGIN', `Refused: ${foreign}. Open the dashboard at this server's own address.`);
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const route = `${req.method} ${url.pathname}`;
    if (PASSED.has(route)) return pass(req, res, url);
    if (url.pathname === '/' || url.pathname === DASHBOARD_PREFIX) {
      res.writeHead(308, { location: `${DASHBOARD_PREFIX}/` });
      return void res.end();
    }
    if (req.method === 'GET' && url.pathname.startsWith(`${DASHBOARD_PREFIX}/`)) return serveAsset(res, url.pathname);
    throw new TideError('TIDE_DASHBOARD_NOT_FOUND', `No ${route} here; the page is ${DASHBOARD_PREFIX}/.`, { where: { arg: url.pathname } });
  }

  function pass(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    return new Promise((resolve, reject) => {
      const authorization = options.token ? `Bearer ${options.token}` : req.headers.authorization;
      const target = new URL(`${base}${url.pathname}${url.search}`);
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const upstream = send(target, {
        method: req.method,
        agent: false,
        headers: {
          accept: req.headers.accept ?? '*/*',
          ...(req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {}),
          ...(authorization ? { authorization } : {}),
        },
      });
      upstreams.add(upstream);
      upstream.on('close', () => upstreams.delete(upstream));
      upstream.on('response', (answer) => {
        if (answer.statusCode === 404 && url.pathname === '/dashboard/events') {
          answer.resume();
          return reject(new TideError('TIDE_DASHBOARD_REMOTE', `The control API at ${base} has no dashboard events (an older \`tide up\`?).`));
        }
        res.writeHead(answer.statusCode ?? 502, {
          'content-type': answer.headers['content-type'] ?? 'application/octet-stream',
          'cache-control': 'no-store',
        });
        answer.pipe(res);
        answer.on('end', () => resolve());
        answer.on('error', () => resolve());
      });
      upstream.on('error', (cause) => {
        if (res.headersSent) return void (res.destroy(), resolve());
        reject(new TideError('TIDE_DASHBOARD_REMOTE', `The control API at ${base} does not answer: ${cause.message}.`, { cause }));
      });
      // the page went away: stop the stream upstream too
      res.on('close', () => upstream.destroy());
      req.pipe(upstream);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause: NodeJS.ErrnoException) =>
      reject(new TideError('TIDE_DASHBOARD_LISTEN', `tide dashboard cannot listen on ${host}:${options.port ?? 0}: ${cause.code ?? cause.message}.`, { where: { arg: '--port' }, cause })),
    );
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const u of upstreams) u.destroy();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

/**
 * Asks the remote control API for `/v1/ps` once; resolves with its status (401: the token is
 * missing or wrong).
 * @throws TIDE_DASHBOARD_REMOTE when nothing answers within 5 s
 */
export function probeRemote(remote: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(`${remote.replace(/\/+$/, '')}/v1/ps`);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { agent: false, timeout: 5_000, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (cause) => reject(new TideError('TIDE_DASHBOARD_REMOTE', `The control API at ${remote} does not answer: ${cause.message}.`, { where: { arg: '--connect' }, cause })));
    req.end();
  });
}

function sendError(res: ServerResponse, err: unknown): void {
  const typed = isTideError(err) ? err : new TideError('TIDE_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  if (res.headersSent) return void res.destroy();
  const text = JSON.stringify({ error: typed.toJSON() });
  res.writeHead(typed.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
