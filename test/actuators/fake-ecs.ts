/**
 * A FAKE Amazon ECS endpoint (no AWS on these machines): an HTTP server on loopback speaking
 * the service's documented JSON 1.1 protocol for the two operations the actuator uses.
 *
 *   POST /  X-Amz-Target: AmazonEC2ContainerServiceV20141113.UpdateService     {cluster, service, desiredCount}
 *   POST /  X-Amz-Target: AmazonEC2ContainerServiceV20141113.DescribeServices  {cluster, services: [...]}
 *
 * It checks the content type (application/x-amz-json-1.1), that the request is SigV4-signed
 * for the ecs service, and that the body has exactly the documented fields; it answers in
 * the documented response shapes, and errors as `{"__type": "<Name>", "message": ...}`.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';

import { closeHttpServer, listenOnLoopback } from '../helpers/net.js';

export interface FakeEcsService {
  desiredCount: number;
  /** Tasks still PENDING: runningCount = desiredCount - pending. */
  pending: number;
  status: 'ACTIVE' | 'DRAINING' | 'INACTIVE';
}

export interface RecordedEcsRequest {
  target: string;
  body: Record<string, unknown>;
  authorization: string;
}

const PREFIX = 'AmazonEC2ContainerServiceV20141113.';
const ACCOUNT = '123456789012';

export class FakeEcs {
  readonly clusters = new Map<string, Map<string, FakeEcsService>>();
  readonly requests: RecordedEcsRequest[] = [];
  failNext = 0;
  /** Accept requests and never answer them. */
  hang = false;
  readonly #server: Server;
  readonly #region: string;

  constructor(region = 'us-east-1') {
    this.#region = region;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  add(cluster: string, service: string, desiredCount: number, pending = 0): void {
    if (!this.clusters.has(cluster)) this.clusters.set(cluster, new Map());
    this.clusters.get(cluster)!.set(service, { desiredCount, pending, status: 'ACTIVE' });
  }

  service(cluster: string, service: string): FakeEcsService | undefined {
    return this.clusters.get(cluster)?.get(service);
  }

  listen(): Promise<string> {
    return listenOnLoopback(this.#server);
  }

  close(): Promise<void> {
    return closeHttpServer(this.#server);
  }

  #arn(cluster: string, service?: string): string {
    return service
      ? `arn:aws:ecs:${this.#region}:${ACCOUNT}:service/${cluster}/${service}`
      : `arn:aws:ecs:${this.#region}:${ACCOUNT}:cluster/${cluster}`;
  }

  #describe(cluster: string, name: string, s: FakeEcsService) {
    return {
      serviceArn: this.#arn(cluster, name),
      serviceName: name,
      clusterArn: this.#arn(cluster),
      status: s.status,
      desiredCount: s.desiredCount,
      runningCount: Math.max(0, s.desiredCount - s.pending),
      pendingCount: Math.min(s.pending, s.desiredCount),
      launchType: 'FARGATE',
      schedulingStrategy: 'REPLICA',
      deployments: [],
      events: [],
      createdAt: 1767225600,
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const authorization = String(req.headers.authorization ?? '');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return this.#error(res, 400, 'SerializationException', 'the body is not JSON');
    }
    this.requests.push({ target, body, authorization });
    if (this.hang) return;
    if (req.method !== 'POST' || req.url !== '/') return this.#error(res, 404, 'UnknownOperationException', `${req.method ?? ''} ${req.url ?? ''}`);
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') return this.#error(res, 400, 'SerializationException', `content type ${String(req.headers['content-type'])}`);
    if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/ecs\/aws4_request, SignedHeaders=.*x-amz-target.*, Signature=[0-9a-f]{64}$/.test(authorization)) {
      return this.#error(res, 403, 'UnrecognizedClientException', 'the request is not SigV4-signed for ecs');
    }
    const fields = (allowed: string[]) => Object.keys(body).every((k) => allowed.includes(k));
    if (this.failNext > 0) {
      this.failNext--;
      return this.#error(res, 500, 'ServerException', 'fake failure injected by the test');
    }
    const cluster = typeof body.cluster === 'string' ? body.cluster : 'default';
    const services = this.clusters.get(cluster);

    if (target === `${PREFIX}UpdateService`) {
      if (!fields(['cluster', 'service', 'desiredCount']) || typeof body.service !== 'string' || !Number.isInteger(body.desiredCount) || (body.desiredCount as number) < 0) {
        return this.#error(res, 400, 'InvalidParameterException', `unexpected UpdateService body ${JSON.stringify(body)}`);
      }
      if (!services) return this.#error(res, 400, 'ClusterNotFoundException', 'Cluster not found.');
      const s = services.get(body.service);
      if (!s) return this.#error(res, 400, 'ServiceNotFoundException', 'Service not found.');
      if (s.status !== 'ACTIVE') return this.#error(res, 400, 'ServiceNotActiveException', 'Service was not ACTIVE.');
      s.desiredCount = body.desiredCount as number;
      return this.#json(res, { service: this.#describe(cluster, body.service, s) });
    }
    if (target === `${PREFIX}DescribeServices`) {
      if (!fields(['cluster', 'services']) || !Array.isArray(body.services) || body.services.length === 0 || body.services.length > 10) {
        return this.#error(res, 400, 'InvalidParameterException', `unexpected DescribeServices body ${JSON.stringify(body)}`);
      }
      if (!services) return this.#error(res, 400, 'ClusterNotFoundException', 'Cluster not found.');
      const found: unknown[] = [];
      const failures: unknown[] = [];
      for (const name of body.services as string[]) {
        const s = services.get(name);
        if (s) found.push(this.#describe(cluster, name, s));
        else failures.push({ arn: this.#arn(cluster, name), reason: 'MISSING' });
      }
      return this.#json(res, { services: found, failures });
    }
    return this.#error(res, 400, 'UnknownOperationException', `unknown target ${target}`);
  }

  #json(res: ServerResponse, body: unknown): void {
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake-request-id' });
    res.end(JSON.stringify(body));
  }

  #error(res: ServerResponse, status: number, type: string, message: string): void {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake-request-id' });
    res.end(JSON.stringify({ __type: type, message }));
  }
}
