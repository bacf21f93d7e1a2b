/**
 * `tide export compose`: a Compose file for one Docker host. Each service gets
 * `deploy.replicas` and a `stop_grace_period` sized so its drain finishes; API replicas sit
 * behind a reverse proxy; autoscaled services get `tide autoscale` with the Compose actuator.
 *
 * The proxy is Caddy (`caddy reverse-proxy`), not nginx with `upstream api:8000` as the
 * runbooks have it: nginx resolves `api` once at start, so replicas added by `--scale` get
 * no traffic until it reloads; Caddy resolves the name on each new connection, and Docker's
 * DNS answers with every replica.
 *
 * Who a client is behind it: Caddy writes the address it saw into X-Forwarded-For (a client's
 * own X-Forwarded-For is not trusted, Caddy's default), and the API replicas trust exactly
 * Caddy: it has a fixed address on the project's network, outside the range Docker hands out,
 * and the replicas get it as TRUSTED_PROXIES. Stock Caddy has no rate limiter, so the
 * per-client limit (`balancer.rate_limit`, else the API's default) is the replicas', keyed by
 * that address; each replica counts on its own.
 */
import type { ServiceConfig, TideConfig } from '../config/schema.js';
import { type ExportOptions, type ExportResult, imageOf } from './types.js';
import { API_DEFAULT_PER_MINUTE, containerPort, perClientPerMinute, serviceCommand, serviceEnv, terminationSeconds } from './workload.js';

type Obj = Record<string, unknown>;

/**
 * The project's network: Docker hands out addresses from the upper half only, and the proxy
 * has a fixed one below it, the one address the API replicas trust. Change both together if
 * the subnet clashes with one of the host's.
 */
export const COMPOSE_SUBNET = '172.28.0.0/24';
export const COMPOSE_DYNAMIC_RANGE = '172.28.0.128/25';
export const COMPOSE_PROXY_ADDRESS = '172.28.0.2';

function healthcheck(service: ServiceConfig): Obj | undefined {
  const port = containerPort(service);
  if (port === undefined) return undefined;
  // node is in the image; curl and wget may not be
  const probe = `fetch('http://127.0.0.1:${port}${service.healthPath}').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
  return { test: ['CMD', 'node', '-e', probe], interval: '5s', timeout: '2s', retries: 3, start_period: '10s' };
}

function composeService(config: TideConfig, service: ServiceConfig, options: ExportOptions, databaseUrl: string): Obj {
  const perMinute = perClientPerMinute(config) ?? API_DEFAULT_PER_MINUTE;
  const command = serviceCommand(service, ['--rate-limit', String(perMinute)]);
  const port = containerPort(service);
  // the proxy's address, and the proxies the file names in front of the whole application
  const trusted = service.kind === 'api' ? { TRUSTED_PROXIES: [COMPOSE_PROXY_ADDRESS, ...config.balancer.trustedProxies].join(',') } : {};
  const out: Obj = {
    image: imageOf(options, service.name),
    ...('args' in command ? { command: command.args } : { entrypoint: ['sh', '-c'], command: [command.shell] }),
    environment: { DATABASE_URL: databaseUrl, ...serviceEnv(config, service), ...trusted },
    ...(port !== undefined ? { expose: [String(port)] } : {}),
    // the drain (stop_grace_seconds) plus the exit margin; for the API also the pause while
    // the proxy stops choosing it
    stop_grace_period: `${terminationSeconds(service)}s`,
    restart: 'unless-stopped',
    deploy: {
      replicas: service.replicas,
      resources: { limits: { cpus: options.cpuRequest, memory: `${options.memoryMiB}M` } },
    },
  };
  const check = healthcheck(service);
  if (check) out.healthcheck = check;
  return out;
}

/** The Compose file of the project (one document). */
export function exportCompose(config: TideConfig, options: ExportOptions): ExportResult {
  const notes: string[] = [];
  const services: Obj = {};
  const embedded = config.database.url === undefined;
  // the embedded PostgreSQL is one process's; containers on one host share a real server
  const databaseUrl = embedded ? 'postgres://postgres:${POSTGRES_PASSWORD:-tide}@postgres:5432/postgres' : '${DATABASE_URL}';
  if (embedded) {
    services.postgres = {
      image: 'postgres:17-alpine',
      environment: { POSTGRES_PASSWORD: '${POSTGRES_PASSWORD:-tide}' },
      volumes: ['pgdata:/var/lib/postgresql/data'],
      healthcheck: { test: ['CMD', 'pg_isready', '-U', 'postgres'], interval: '5s', timeout: '2s', retries: 10 },
      restart: 'unless-stopped',
    };
  }
  const dependsOnDb = embedded ? { depends_on: { postgres: { condition: 'service_healthy' } } } : {};
  const apis: ServiceConfig[] = [];
  for (const service of Object.values(config.services)) {
    services[service.name] = { ...composeService(config, service, options, databaseUrl), ...dependsOnDb };
    if (service.kind === 'api') apis.push(service);
  }
  if (apis.length > 0) {
    const api = apis[0]!;
    if (apis.length > 1) notes.push(`the proxy fronts ${api.name}; ${apis.slice(1).map((a) => a.name).join(', ')} get no published port`);
    notes.push(`per-client limit: ${perClientPerMinute(config) ?? API_DEFAULT_PER_MINUTE} requests a minute per client address per API replica (the replicas trust only the proxy at ${COMPOSE_PROXY_ADDRESS} for the address)`);
    if (config.balancer.trustedProxies.length > 0) notes.push('balancer.trusted_proxies: the exported Caddy does not trust them (`caddy reverse-proxy` has no such flag); put them in a Caddyfile\'s `trusted_proxies` if a load balancer sits in front of Caddy');
    // `caddy reverse-proxy` sets X-Forwarded-For to the address it saw (it trusts no
    // client's); the published port must keep that address (no userland proxy in between)
    services.proxy = {
      image: 'caddy:2-alpine',
      command: ['caddy', 'reverse-proxy', '--from', `:${config.balancer.port}`, '--to', `${api.name}:${containerPort(api)}`],
      ports: [`${config.balancer.port}:${config.balancer.port}`],
      networks: { default: { ipv4_address: COMPOSE_PROXY_ADDRESS } },
      depends_on: { [api.name]: { condition: 'service_healthy' } },
      restart: 'unless-stopped',
    };
  }
  const scaled = Object.values(config.services).filter((s) => s.scale);
  if (scaled.length > 0) {
    services.autoscaler = {
      image: options.image,
      command: ['autoscale', '--config', '/etc/tide/tide.yaml'],
      environment: { DATABASE_URL: databaseUrl, COMPOSE_PROJECT_NAME: config.project },
      // the Compose actuator runs `docker compose up --scale` on this host's engine
      volumes: ['/var/run/docker.sock:/var/run/docker.sock', './tide.yaml:/etc/tide/tide.yaml:ro', './compose.yaml:/etc/tide/compose.yaml:ro'],
      restart: 'unless-stopped',
      ...dependsOnDb,
    };
    const without = scaled.filter((s) => s.actuator?.kind !== 'compose').map((s) => s.name);
    notes.push(`autoscaler: tide autoscale for ${scaled.map((s) => s.name).join(', ')}; its image needs the docker CLI and its compose plugin`);
    if (without.length) {
      notes.push(`autoscaler: give ${without.join(', ')} \`actuator: { kind: compose, project: ${config.project}, file: /etc/tide/compose.yaml }\` in tide.yaml`);
    }
  }
  // no top-level `name` (newer than the compose-spec schema the tests hold): run it with
  // `docker compose -p <project>`, the name the autoscaler's actuator uses
  const body: Obj = { services };
  if (apis.length > 0) body.networks = { default: { ipam: { config: [{ subnet: COMPOSE_SUBNET, ip_range: COMPOSE_DYNAMIC_RANGE }] } } };
  if (embedded) body.volumes = { pgdata: {} };
  return { documents: [{ body, comment: `Compose file for ${config.project}, exported by tide export compose.` }], notes };
}
