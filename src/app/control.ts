/**
 * The control API of `tide up`: HTTP + JSON, on 127.0.0.1 by default. The `tide scale`,
 * `ps`, `logs`, `restart` and `down` commands are thin clients of it (client.ts).
 *
 *   GET  /v1/ps                          services and replicas (ServiceStatus, ReplicaStatus), autoscaler status
 *   POST /v1/scale    {"replicas":{"worker":5,"api":3}}   validated as a whole, then applied (pauses autoscaling)
 *   POST /v1/restart  {"service":"api"}  rolling restart; answers when done
 *   GET  /v1/logs?service=&tail=&follow=1   NDJSON LogLines; follow keeps the stream open
 *   POST /v1/down     {"now":true}?      202, then `tide up` stops everything (now: without draining)
 *   GET  /v1/targets                     the replicas' /metrics as Prometheus HTTP service discovery
 *   GET  /metrics                        the autoscaler's Prometheus metrics (tide_controller_*)
 *
 * Design note: bound to a loopback address, the API trusts the machine (as Docker's socket
 * and the PostgreSQL defaults do). Bound anywhere else, every request needs
 * `Authorization: Bearer <token>`, compared in constant time (over SHA-256 digests, so the
 * lengths match too), and the server refuses to start without a token. Errors are the usual
 * `{"error":{code,message,where}}` bodies with the code's status.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';

import { TideError, isTideError } from '../errors.js';
import { browserRefusal, isLoopback } from '../net/loopback.js';
import type { LogLine, PsResult, ServiceStatus } from '../supervisor/supervisor.js';

/** What the control API drives: the supervisor, and `tide up`'s own stop. */
export interface ControlTarget {
  ps(): PsResult;
  serviceNames(): string[];
  checkScale(service: string, replicas: number): void;
  scale(service: string, replicas: number, options?: { by?: string | null }): Promise<ServiceStatus>;
  restart(service: string): Promise<ServiceStatus>;
  logs(service?: string, tail?: number): LogLine[];
  on(event: 'log', listener: (line: LogLine) => void): unknown;
  off(event: 'log', listener: (line: LogLine) => void): unknown;
}

export interface ControlOptions {
  target: ControlTarget;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Required when host is not a loopback address. */
  token?: string | undefined;
  /** `POST /v1/down` (`{"now": true}`: without draining): called after the 202 is sent. */
  onDown: (options: { now: boolean }) => void;
  /** The project's name, for the `__meta_tide_project` label of `GET /v1/targets`. */
  project?: string;
  /**
   * `GET /metrics`: the autoscaler's Prometheus registry (text and content type); undefined
   * when no autoscaler runs. Behind the same token rules as the rest of the API.
   */
  metrics?: () => Promise<{ contentType: string; text: string } | undefined>;
  /** Extra fields for `GET /v1/ps` (the balancer URL, the database, the project, the autoscaler). */
  info?: () => Record<string, unknown>;
  /**
   * More routes on the same server (the dashboard): answers true when it took the request.
   * It gets whether the request passed the token rules, and applies them where it needs them.
   */
  mount?: (req: IncomingMessage, res: ServerResponse, url: URL, access: { authorized: boolean }) => Promise<boolean>;
}

export interface ControlServer {
  /** `http://host:port` as bound (a wildcard host reads as 127.0.0.1). */
  url: string;
  close(): Promise<void>;
}

/** One target group of Prometheus's HTTP service discovery (`http_sd_configs`). */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * The replicas that serve /metrics as HTTP service discovery groups, one per replica, with
 * `__meta_tide_*` labels that the exported scrape config (`tide export prometheus-config`)
 * relabels into `job`, `service` and `replica`. A replica that crashed or is starting stays
 * listed while it has a port, so Prometheus records `up == 0` for it rather than nothing; a
 * stopped one is gone.
 */
export function targetGroups(ps: PsResult, project: string): TargetGroup[] {
  const kinds = new Map(ps.services.map((s) => [s.name, s.kind]));
  return ps.replicas
    .filter((r) => r.port !== null && r.state !== 'stopped')
    .map((r) => ({
      targets: [`127.0.0.1:${r.port}`],
      labels: { __meta_tide_project: project, __meta_tide_service: r.service, __meta_tide_kind: kinds.get(r.service) ?? 'command', __meta_tide_replica: r.id, __meta_tide_state: r.state },
    }));
}

/** Constant-time comparison of a presented token with the configured one. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

const MAX_BODY = 64 * 1024;

/** Starts the control API. @throws TIDE_CONTROL_TOKEN_REQUIRED on a non-loopback host without a token. */
export async function startControl(options: ControlOptions): Promise<ControlServer> {
  const host = options.host ?? '127.0.0.1';
  const remote = !isLoopback(host);
  if (remote && !options.token) {
    throw new TideError(
      'TIDE_CONTROL_TOKEN_REQUIRED',
      `The control API is set to listen on ${host}, which is not a loopback address, and has no token; set control.token (or TIDE_CONTROL_TOKEN), or keep host 127.0.0.1.`,
      { where: { field: 'control.token' } },
    );
  }
  const followers = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // the dashboard puts this API in browsers: a page of another site must not drive it
    const foreign = browserRefusal(req, !remote);
    if (foreign) throw new TideError('TIDE_DASHBOARD_ORIGIN', `Refused: ${foreign}. Open the dashboard from this server's own address.`);
    const allowed = !remote || authorized(req.headers.authorization, options.token!);
    const url = new URL(req.url ?? '/', 'http://control');
    if (options.mount && (await options.mount(req, res, url, { authorized: allowed }))) return;
    if (!allowed) {
      throw new TideError('TIDE_CONTROL_UNAUTHORIZED', 'This control API listens beyond loopback: send Authorization: Bearer <token> (TIDE_CONTROL_TOKEN for the tide commands).');
    }
    const route = `${req.method} ${url.pathname}`;
    const { target } = options;
    switch (route) {
      case 'GET /v1/ps':
        return sendJson(res, 200, { ...(options.info?.() ?? {}), ...target.ps() });
      case 'POST /v1/scale': {
        const body = await readJson(req);
        const wanted = parseScaleBody(body);
        // all or nothing: check every pair before changing anything
        for (const [name, n] of wanted) target.checkScale(name, n);
        const services = await Promise.all(wanted.map(([name, n]) => target.scale(name, n, { by: 'manual' })));
        return sendJson(res, 200, { services });
      }
      case 'POST /v1/restart': {
        const body = await readJson(req);
        const service = (body as { service?: unknown } | null)?.service;
        if (typeof service !== 'string') {
          throw new TideError('TIDE_CONTROL_BAD_REQUEST', 'POST /v1/restart takes {"service": "<name>"}.', { where: { field: 'service' } });
        }
        return sendJson(res, 200, { service: await target.restart(service) });
      }
      case 'GET /v1/targets':
        return sendJson(res, 200, targetGroups(target.ps(), options.project ?? 'tide'));
      case 'GET /v1/logs':
        return streamLogs(url, res);
      case 'GET /metrics': {
        const metrics = await options.metrics?.();
        // an empty exposition still parses: no autoscaler means no tide_controller_* series
        const text = metrics?.text ?? '# no autoscaler runs here (no service has a scale: block)\n';
        res.writeHead(200, { 'content-type': metrics?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        return void res.end(text);
      }
      case 'POST /v1/down': {
        const now = (await readJson(req) as { now?: unknown } | null)?.now === true;
        sendJson(res, 202, { stopping: true, now });
        res.once('finish', () => options.onDown({ now }));
        return;
      }
      default:
        throw new TideError('TIDE_CONTROL_BAD_REQUEST', `No control endpoint ${route}; see docs/local.md.`);
    }
  }

  function streamLogs(url: URL, res: ServerResponse): void {
    const service = url.searchParams.get('service') || undefined;
    const tail = Number(url.searchParams.get('tail') ?? 200);
    if (!Number.isInteger(tail) || tail < 0) {
      throw new TideError('TIDE_CONTROL_BAD_REQUEST', `tail takes a whole number, not "${url.searchParams.get('tail')}".`, { where: { field: 'tail' } });
    }
    const lines = options.target.logs(service, tail);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    for (const line of lines) res.write(`${JSON.stringify(line)}\n`);
    if (url.searchParams.get('follow') !== '1') return void res.end();
    const onLine = (line: LogLine) => {
      if (!service || line.service === service) res.write(`${JSON.stringify(line)}\n`);
    };
    options.target.on('log', onLine);
    followers.add(res);
    res.on('close', () => {
      options.target.off('log', onLine);
      followers.delete(res);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause: NodeJS.ErrnoException) =>
      reject(
        cause.code === 'EADDRINUSE'
          ? new TideError('TIDE_SUPERVISOR_ALREADY_RUNNING', `The control port ${host}:${options.port} is in use (another \`tide up\`?); stop it with \`tide down\` or set control.port.`, {
              where: { field: 'control.port' },
              cause,
            })
          : cause,
      ),
    );
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${shownHost}:${port}`,
    async close() {
      for (const res of followers) res.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // a `tide logs -f` or a pending restart call must not hold the shutdown
        setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, 1_000).unref();
      });
    },
  };
}

function authorized(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match !== null && tokenMatches(match[1]!, token);
}

function parseScaleBody(body: unknown): Array<[string, number]> {
  const replicas = (body as { replicas?: unknown } | null)?.replicas;
  if (typeof replicas !== 'object' || replicas === null || Array.isArray(replicas) || Object.keys(replicas).length === 0) {
    throw new TideError('TIDE_CONTROL_BAD_REQUEST', 'POST /v1/scale takes {"replicas": {"<service>": <count>, ...}}.', { where: { field: 'replicas' } });
  }
  return Object.entries(replicas).map(([name, n]) => {
    if (typeof n !== 'number') {
      throw new TideError('TIDE_SUPERVISOR_SCALE_INVALID', `${name} takes a number of replicas, not ${JSON.stringify(n)}.`, { where: { field: `replicas.${name}` } });
    }
    return [name, n];
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new TideError('TIDE_CONTROL_BAD_REQUEST', `The request body is over ${MAX_BODY} bytes.`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new TideError('TIDE_CONTROL_BAD_REQUEST', 'The request body is not valid JSON.', { cause });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  const typed = isTideError(err) ? err : new TideError('TIDE_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  if (res.headersSent) return void res.destroy();
  sendJson(res, typed.status, { error: typed.toJSON() });
}
