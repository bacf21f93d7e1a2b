/**
 * The shape of `tide.yaml`, as zod schemas over the file's own (snake_case) keys, and the
 * normalised, camelCase `TideConfig` the rest of Tidescale reads.
 *
 * Two layers on purpose: the zod schema is exactly what a user may write (so `tide schema`
 * can hand it to editors as JSON Schema, defaults included), while `TideConfig` has every
 * default resolved, including the ones that depend on other fields (a service's
 * min/replicas/max), which a JSON Schema cannot express.
 */
import { z } from 'zod';

import { ROUND_SCHEDULE } from '../core/decider.js';
import type { ServicePolicy } from '../core/types.js';

const duration = (what: string) => z.number().positive().describe(what);

const serviceName = /^[a-z][a-z0-9-]{0,62}$/;

export const healthCheckSchema = z
  .strictObject({
    interval_seconds: duration('Seconds between health checks of each upstream.').default(2),
    timeout_seconds: duration('Seconds a health check may take before it counts as failed.').default(1),
    fails: z.int().min(1).default(2).describe('Consecutive failed checks that mark an upstream down.'),
    passes: z.int().min(1).default(1).describe('Consecutive passing checks that mark an upstream up.'),
  })
  .describe('Active health checks of the API replicas.');

export const rateLimitSchema = z
  .strictObject({
    requests_per_second: z.number().positive().describe('Sustained requests per second allowed per client (its address, or the one a trusted proxy forwarded).'),
    burst: z.int().min(1).optional().describe('Bucket size: requests a client may send at once (default: requests_per_second, at least 1).'),
  })
  .describe('Per-client token bucket at the balancer; over the limit gets 429 with Retry-After.');

export const balancerSchema = z
  .strictObject({
    host: z.string().min(1).default('0.0.0.0').describe('Address the load balancer listens on.'),
    port: z.int().min(0).max(65535).default(8080).describe('Port the load balancer listens on.'),
    retries: z.int().min(0).max(10).default(2).describe('Other upstreams tried when a connection fails (idempotent requests only).'),
    health_check: healthCheckSchema.default({ interval_seconds: 2, timeout_seconds: 1, fails: 2, passes: 1 }),
    rate_limit: rateLimitSchema.optional(),
    trusted_proxies: z
      .array(z.string().min(1))
      .default([])
      .describe('Addresses or CIDRs of proxies in front of the application (10.0.0.0/8, 172.18.0.2, fd00::/8) whose forwarded header names the client; from anyone else the header is ignored. Default: none. Exports give it to the API replicas too.'),
    forwarded_header: z
      .enum(['x-forwarded-for', 'forwarded'])
      .default('x-forwarded-for')
      .describe('The header those proxies set, read from the right: X-Forwarded-For (Caddy, nginx, ingress-nginx, AWS ALB) or Forwarded (RFC 7239).'),
  })
  .describe('The HTTP load balancer in front of the API replicas.');

export const controlSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').describe('Address of the control API (`tide status`, `tide scale`, the dashboard).'),
    port: z.int().min(0).max(65535).default(8079).describe('Port of the control API.'),
    token: z.string().min(16).optional().describe('Bearer token for the control API; required when host is not loopback. Use ${ENV} to keep it out of the file.'),
  })
  .describe('The control API of `tide up`.');

export const databaseSchema = z
  .strictObject({
    url: z.string().min(1).optional().describe('PostgreSQL URL, usually `${DATABASE_URL}`. Absent: the embedded PostgreSQL.'),
    embedded: z.boolean().optional().describe('Use the embedded PostgreSQL (the default when url is absent).'),
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lowercase SQL identifier').default('tide').describe('PostgreSQL schema holding the queue and state tables.'),
    pooler: z
      .enum(['auto', 'none', 'pgbouncer'])
      .default('auto')
      .describe('A transaction-mode pooler between the services and PostgreSQL: `pgbouncer` (any such pooler), `none`, or `auto` (detected). Behind one: no prepared statements, LISTEN only on direct_url, else polling.'),
    direct_url: z.string().min(1).optional().describe('A PostgreSQL URL that bypasses the pooler, used only for LISTEN wake-ups (usually `${DATABASE_DIRECT_URL}`).'),
    pool_size: z.int().min(1).max(1000).optional().describe('Database connections each API or worker replica opens (default: API 10, worker 4); a service may set its own.'),
    max_connections: z
      .int()
      .min(1)
      .optional()
      .describe("The connection budget the replicas share: the server's max_connections, or behind PgBouncer its max_client_conn. Default: read from the server (or the pooler's SHOW CONFIG) where tide can."),
  })
  .describe('Where the queue and state live.');

const scalarEnv = z.union([z.string(), z.number(), z.boolean()]);

export const serviceSchema = z
  .strictObject({
    kind: z.enum(['api', 'worker', 'command']).describe('`api` runs `tide api`, `worker` runs `tide worker`, `command` runs `command`.'),
    command: z.string().min(1).optional().describe('The command line to run (kind command only).'),
    replicas: z.int().min(0).optional().describe('Replicas at start (default: min).'),
    min: z.int().min(0).optional().describe('Fewest replicas the autoscaler may run (default 1, or 0 when replicas is 0).'),
    max: z.int().min(1).optional().describe('Most replicas the autoscaler may run (default: the larger of min and replicas).'),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), scalarEnv).optional().describe('Extra environment for every replica.'),
    port: z.int().min(1).max(65535).optional().describe('Base port: replicas get consecutive free ports from here (default: any free port).'),
    health: z.string().startsWith('/').default('/health').describe('Health check path.'),
    stop_grace_seconds: z.number().min(0).default(30).describe('Seconds a replica gets to finish its work after SIGTERM before SIGKILL.'),
    concurrency: z.int().min(1).optional().describe('Jobs each worker replica runs at once (kind worker; default 10).'),
    pool_size: z.int().min(1).max(1000).optional().describe('Database connections each replica opens (kind api or worker; default database.pool_size, else API 10, worker 4).'),
    handlers: z.string().min(1).optional().describe('Module path exporting the job handlers (kind worker).'),
    queues: z.array(z.string().min(1)).min(1).optional().describe('Queues the worker takes jobs from (kind worker; default all).'),
    scale: z.record(z.string(), z.unknown()).optional().describe('The autoscaling policy: policies, schedule, behavior, fallback, activation, panic (see docs/config.md). min and max come from the service.'),
    sources: z
      .record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, `.`, `_` or `-`'), z.looseObject({ kind: z.string().min(1) }))
      .optional()
      .describe('Metric sources the autoscaler reads for this service, by name: `{kind, ...fields}` (see docs/sources.md). Default for a worker: the builtin source on its queues.'),
    actuator: z
      .looseObject({ kind: z.string().min(1) })
      .optional()
      .describe('Where the autoscaler applies its decisions: `{kind, ...fields}` (see docs/actuators.md). Default inside `tide up`: local; required for `tide autoscale`.'),
  })
  .describe('One service: a set of identical replicas.');

export const autoscaleSchema = z
  .strictObject({
    interval_seconds: duration('Seconds between control-loop rounds.').default(ROUND_SCHEDULE.intervalSeconds),
    dry_run: z.boolean().default(false).describe('Decide and record in the journal, but never scale.'),
    manual_pause_seconds: z.number().min(0).default(300).describe('Seconds a manual `tide scale` pauses autoscaling of that service.'),
    urgent_poll_seconds: duration('Seconds between the cheap polls of the oldest job age that trigger an immediate round when it crosses an SLO wait.').default(ROUND_SCHEDULE.urgentPollSeconds),
    read_timeout_seconds: duration('Seconds a metric source read may take before it counts as failed.').default(2),
    journal_retention_hours: duration('Hours the decision journal keeps its rows.').default(168),
  })
  .describe('The control loop (`tide up` and `tide autoscale`).');

export const configFileSchema = z
  .strictObject({
    project: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, `.`, `_` or `-`').describe('Project name; labels processes, metrics and exports.'),
    state_dir: z.string().min(1).default('.tide').describe('Directory for the embedded database, logs and run state.'),
    database: databaseSchema.default({ schema: 'tide', pooler: 'auto' }),
    balancer: balancerSchema.default({ host: '0.0.0.0', port: 8080, retries: 2, health_check: { interval_seconds: 2, timeout_seconds: 1, fails: 2, passes: 1 }, trusted_proxies: [], forwarded_header: 'x-forwarded-for' }),
    control: controlSchema.default({ host: '127.0.0.1', port: 8079 }),
    autoscale: autoscaleSchema.default({ interval_seconds: ROUND_SCHEDULE.intervalSeconds, dry_run: false, manual_pause_seconds: 300, urgent_poll_seconds: ROUND_SCHEDULE.urgentPollSeconds, read_timeout_seconds: 2, journal_retention_hours: 168 }),
    services: z.record(z.string().regex(serviceName, 'lowercase letters, digits and `-`, starting with a letter'), serviceSchema).describe('Services by name.'),
  })
  .describe('tide.yaml: the Tidescale project file.');

/** The file as written, after zod defaults. */
export type ConfigFile = z.output<typeof configFileSchema>;

/**
 * The known keys at each place in the file, for "did you mean" on an unknown key. `*` stands
 * for any map key (a service name).
 */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(configFileSchema.shape),
  database: Object.keys(databaseSchema.shape),
  balancer: Object.keys(balancerSchema.shape),
  'balancer.health_check': Object.keys(healthCheckSchema.shape),
  'balancer.rate_limit': Object.keys(rateLimitSchema.shape),
  control: Object.keys(controlSchema.shape),
  autoscale: Object.keys(autoscaleSchema.shape),
  'services.*': Object.keys(serviceSchema.shape),
};

export type ServiceKind = 'api' | 'worker' | 'command';

/** A service with every default resolved. */
export interface ServiceConfig {
  name: string;
  kind: ServiceKind;
  /** kind `command` only. */
  command?: string;
  replicas: number;
  min: number;
  max: number;
  env: Record<string, string>;
  /** Base port; absent: the supervisor picks free ports. */
  port?: number;
  healthPath: string;
  stopGraceSeconds: number;
  /** kind `worker` only (default 10). */
  concurrency?: number;
  /** Database connections per replica (kind api or worker). */
  poolSize?: number;
  handlers?: string;
  queues?: string[];
  /**
   * The autoscaling policy (the `scale:` block, validated by the decision core's schema), with
   * the service's min and max as its bounds. Absent: the service is not autoscaled.
   */
  scale?: ServicePolicy;
  /** Metric source configs by name (`{ kind, ...fields }`), validated when the controller builds them. */
  sources?: Record<string, Record<string, unknown> & { kind: string }>;
  /** The actuator config (`{ kind, ...fields }`); absent: `local` inside `tide up`. */
  actuator?: Record<string, unknown> & { kind: string };
}

/** The control loop's settings, in ms. */
export interface AutoscaleConfig {
  intervalMs: number;
  dryRun: boolean;
  manualPauseMs: number;
  urgentPollMs: number;
  readTimeoutMs: number;
  journalRetentionMs: number;
}

export interface BalancerConfig {
  host: string;
  port: number;
  retries: number;
  healthCheck: { intervalMs: number; timeoutMs: number; fails: number; passes: number };
  rateLimit?: { ratePerSecond: number; burst: number };
  /** Proxies in front whose forwarded header is believed (validated CIDRs); empty: none. */
  trustedProxies: string[];
  forwardedHeader: 'x-forwarded-for' | 'forwarded';
}

export interface DatabaseConfig {
  url?: string;
  schema: string;
  /** `auto` unless the file says. */
  pooler: 'auto' | 'none' | 'pgbouncer';
  directUrl?: string;
  /** The declared connection budget; absent: read live where possible. */
  maxConnections?: number;
}

/** The whole config, normalised: what `loadConfig` returns. */
export interface TideConfig {
  /** The file it came from (for messages), or `<memory>`. */
  file: string;
  project: string;
  stateDir: string;
  /** `url` absent means the embedded PostgreSQL. */
  database: DatabaseConfig;
  balancer: BalancerConfig;
  control: { host: string; port: number; token?: string };
  autoscale: AutoscaleConfig;
  services: Record<string, ServiceConfig>;
}
