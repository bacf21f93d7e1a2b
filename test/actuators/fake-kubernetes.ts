/**
 * A FAKE Kubernetes API server (no real one runs on these machines): an in-process HTTP
 * server implementing the documented parts the actuator uses, in the documented shapes.
 *
 *   GET   /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}        the workload
 *   GET   /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale  autoscaling/v1 Scale
 *   PATCH .../scale   only Content-Type application/merge-patch+json (415 otherwise); a
 *                     metadata.resourceVersion in the patch is a precondition (409 if stale)
 *   PUT   .../scale   a whole Scale; a stale metadata.resourceVersion is 409 Conflict
 *
 * Errors are `Status` objects (kind Status, apiVersion v1, status Failure, reason, code).
 * Every write bumps the object's resourceVersion. `readyReplicas` is omitted when 0, as the
 * API server does (omitempty). Hooks: `conflictNext` and `failNext` inject 409s and 500s,
 * `hang` leaves requests unanswered.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';

import { closeHttpServer, listenOnLoopback } from '../helpers/net.js';

export interface FakeWorkload {
  replicas: number;
  /** Pods not ready (still starting): readyReplicas = replicas - notReady. */
  notReady: number;
  resourceVersion: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

const PLURALS = { deployments: 'Deployment', statefulsets: 'StatefulSet' } as const;
type Plural = keyof typeof PLURALS;

export class FakeKubernetes {
  readonly workloads = new Map<string, FakeWorkload>();
  readonly requests: RecordedRequest[] = [];
  conflictNext = 0;
  failNext = 0;
  /** Accept requests and never answer them. */
  hang = false;
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  add(plural: Plural, namespace: string, name: string, replicas: number, notReady = 0): void {
    this.workloads.set(`${plural}/${namespace}/${name}`, { replicas, notReady, resourceVersion: 1000 });
  }

  get(plural: Plural, namespace: string, name: string): FakeWorkload | undefined {
    return this.workloads.get(`${plural}/${namespace}/${name}`);
  }

  listen(): Promise<string> {
    return listenOnLoopback(this.#server);
  }

  close(): Promise<void> {
    return closeHttpServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      return this.#status(res, 400, 'BadRequest', 'the request body is not JSON');
    }
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push({ method: req.method ?? '', path: url.pathname, contentType: req.headers['content-type'], authorization: req.headers.authorization, body });
    if (this.hang) return;

    const m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|statefulsets)\/([^/]+)(\/scale)?$/.exec(url.pathname);
    if (!m) return this.#status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const [, namespace, plural, name, scale] = m as unknown as [string, string, Plural, string, string | undefined];
    const w = this.get(plural, namespace, name);
    if (!w) return this.#status(res, 404, 'NotFound', `${plural}.apps "${name}" not found`, { name, group: 'apps', kind: plural });
    if (this.failNext > 0) {
      this.failNext--;
      return this.#status(res, 500, 'InternalError', 'Internal error occurred: fake failure injected by the test');
    }
    const conflict = () =>
      this.#status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${plural}.apps "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: 'apps', kind: plural });

    if (req.method === 'GET' && scale) return this.#json(res, 200, this.#scale(plural, namespace, name, w));
    if (req.method === 'GET') return this.#json(res, 200, this.#workload(plural, namespace, name, w));
    if (req.method === 'PATCH' && scale) {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== 'application/merge-patch+json') {
        return this.#status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (this fake accepts only merge patches, got "${type}")`);
      }
      const patch = body as { metadata?: { resourceVersion?: string }; spec?: { replicas?: unknown } } | undefined;
      if (this.conflictNext > 0) {
        this.conflictNext--;
        return conflict();
      }
      if (patch?.metadata?.resourceVersion !== undefined && patch.metadata.resourceVersion !== String(w.resourceVersion)) return conflict();
      return this.#write(res, plural, namespace, name, w, patch?.spec?.replicas);
    }
    if (req.method === 'PUT' && scale) {
      const put = body as { metadata?: { resourceVersion?: string }; spec?: { replicas?: unknown } } | undefined;
      if (this.conflictNext > 0) {
        this.conflictNext--;
        return conflict();
      }
      if (put?.metadata?.resourceVersion !== String(w.resourceVersion)) return conflict();
      return this.#write(res, plural, namespace, name, w, put?.spec?.replicas);
    }
    return this.#status(res, 405, 'MethodNotAllowed', `${req.method ?? ''} is not supported on ${url.pathname}`);
  }

  #write(res: ServerResponse, plural: Plural, namespace: string, name: string, w: FakeWorkload, replicas: unknown): void {
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      return this.#status(res, 422, 'Invalid', `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`);
    }
    w.replicas = replicas;
    w.resourceVersion++;
    this.#json(res, 200, this.#scale(plural, namespace, name, w));
  }

  #scale(plural: Plural, namespace: string, name: string, w: FakeWorkload) {
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name, namespace, uid: `uid-${plural}-${name}`, resourceVersion: String(w.resourceVersion), creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { replicas: w.replicas },
      status: { replicas: w.replicas, selector: `app=${name}` },
    };
  }

  #workload(plural: Plural, namespace: string, name: string, w: FakeWorkload) {
    const ready = Math.max(0, w.replicas - w.notReady);
    return {
      kind: PLURALS[plural],
      apiVersion: 'apps/v1',
      metadata: { name, namespace, uid: `uid-${plural}-${name}`, resourceVersion: String(w.resourceVersion), generation: 1 },
      spec: {
        replicas: w.replicas,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'demo/app:latest' }] } },
      },
      // The API server leaves zero counts out (omitempty).
      status: { observedGeneration: 1, ...(w.replicas ? { replicas: w.replicas } : {}), ...(ready ? { readyReplicas: ready, availableReplicas: ready } : {}) },
    };
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  #status(res: ServerResponse, code: number, reason: string, message: string, details?: object): void {
    this.#json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });
  }
}
