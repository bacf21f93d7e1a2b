/**
 * Loading `tide.yaml`: YAML -> `${ENV}` interpolation -> zod -> cross-field checks -> a
 * normalised `TideConfig`.
 *
 * Every error names the file, line, column and field. The YAML is parsed with
 * `parseDocument` (not `parse`) because the document keeps each node's source range; a zod
 * issue's path is walked back through the document to find the line it points at.
 */
import { readFile } from 'node:fs/promises';

import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, type Pair, parseDocument } from 'yaml';

import type { ServicePolicy } from '../core/types.js';
import { TideError, type Where } from '../errors.js';
import { fieldIssues, fieldPath } from '../fields.js';
import { proxyTrust } from '../net/client-identity.js';
import { isLoopback } from '../net/loopback.js';
import { validateScale } from './scale.js';
import { suggest } from './suggest.js';
import { type ConfigFile, configFileSchema, KNOWN_KEYS, type ServiceConfig, type TideConfig } from './schema.js';

type Path = ReadonlyArray<string | number>;

const DEFAULT_CONCURRENCY = 10;
/** Connections per replica when the file does not say: what `tide api` and `tide worker` open by default. */
export const DEFAULT_POOL_SIZE = { api: 10, worker: 4 } as const;

/** One problem found in the file, already located. */
export interface ConfigIssue {
  field: string;
  message: string;
  line?: number;
  column?: number;
}

/**
 * Read and validate a config file.
 * @throws TideError TIDE_CONFIG_NOT_FOUND, TIDE_CONFIG_YAML, TIDE_CONFIG_INVALID, TIDE_CONFIG_ENV
 */
export async function loadConfig(path = 'tide.yaml', env: NodeJS.ProcessEnv = process.env): Promise<TideConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist (`tide init` writes a starter one)' : `cannot be read (${code ?? String(cause)})`;
    throw new TideError('TIDE_CONFIG_NOT_FOUND', `The config file ${path} ${why}.`, { where: { file: path }, cause });
  }
  return parseConfig(text, path, env);
}

/**
 * Validate config text. `file` only labels errors.
 * @throws TideError TIDE_CONFIG_YAML, TIDE_CONFIG_INVALID, TIDE_CONFIG_ENV
 */
export function parseConfig(text: string, file = '<memory>', env: NodeJS.ProcessEnv = process.env): TideConfig {
  const lines = new LineCounter();
  // Merge keys (`<<: *defaults`) let services share settings, as in Compose files.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = syntax.linePos?.[0] ?? lines.linePos(syntax.pos[0]);
    throw new TideError('TIDE_CONFIG_YAML', `${file} is not valid YAML: ${firstLine(syntax.message)}`, {
      where: { file, line: pos.line, column: pos.col },
      cause: syntax,
    });
  }
  const locate = (path: Path, key?: string) => locateNode(doc, lines, path, key);

  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    // An unresolved or runaway alias only shows up here, not in doc.errors.
    const message = cause instanceof Error ? cause.message : String(cause);
    const alias = /: (\S+)$/.exec(message)?.[1];
    const offset = alias === undefined ? -1 : text.indexOf(`*${alias}`);
    const pos = offset >= 0 ? lines.linePos(offset) : undefined;
    throw new TideError('TIDE_CONFIG_YAML', `${file} is not valid YAML: ${firstLine(message)}`, {
      where: { file, ...(pos ? { line: pos.line, column: pos.col } : {}) },
      cause,
    });
  }
  const raw = interpolate(js, [], env, {
    missing: (path, name) => {
      const at = locate(path);
      throw new TideError('TIDE_CONFIG_ENV', `${fieldPath(path)} uses \${${name}}, which is not set in the environment (write \${${name}:-default} for a default).`, {
        where: { file, ...at, field: fieldPath(path) },
      });
    },
    cycle: (path) => {
      throw new TideError('TIDE_CONFIG_YAML', `${file} has a recursive alias at ${fieldPath(path)}: a value cannot contain itself.`, {
        where: { file, ...locate(path), field: fieldPath(path) },
      });
    },
  });

  const parsed = configFileSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!parsed.success) {
    const issues = fieldIssues(parsed.error.issues).map((issue): ConfigIssue => {
      const key = issue.unknownKey;
      if (key === undefined) return { field: issue.field, message: issue.message, ...locate(issue.path as Path) };
      const parent = issue.path.slice(0, -1) as Path;
      return { field: issue.field, message: `${issue.message}${suggest(key, KNOWN_KEYS[pattern(parent)] ?? [])}`, ...locate(parent, key) };
    });
    throw invalid(file, issues);
  }

  const { issues, policies } = crossCheck(parsed.data, locate);
  if (issues.length > 0) throw invalid(file, issues);
  return normalise(parsed.data, file, policies);
}

function invalid(file: string, issues: ConfigIssue[]): TideError {
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  const first = issues[0]!;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  const where: Where = { file, field: first.field };
  if (first.line !== undefined) where.line = first.line;
  if (first.column !== undefined) where.column = first.column;
  return new TideError('TIDE_CONFIG_INVALID', `${first.field || 'the file'}: ${first.message}${more}`, {
    where,
    details: { issues },
  });
}

/** The KNOWN_KEYS pattern of a path: service names become `*`. */
function pattern(path: Path): string {
  return path.map((seg, i) => (i === 1 && path[0] === 'services' ? '*' : String(seg))).join('.');
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

/**
 * Where a path points in the document: the value's position for a scalar, the key's for a
 * collection (its first line is the useful one), or the nearest existing ancestor's key when
 * the field is missing. With `key`, the position of that key inside the map at `path`.
 */
function locateNode(doc: Document, lines: LineCounter, path: Path, key?: string): { line?: number; column?: number } {
  const at = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const pos = lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  if (key !== undefined) {
    const pair = pairIn(doc.getIn(path, true), key);
    if (pair) return at((pair.key as Node | null)?.range?.[0]);
  }
  for (let n = path.length; n > 0; n--) {
    const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
    const seg = path[n - 1]!;
    if (isSeq(parent) && typeof seg === 'number') {
      const item = parent.items[seg] as Node | undefined;
      if (item?.range) return at(item.range[0]);
    }
    const pair = pairIn(parent, String(seg));
    if (pair) {
      const value = pair.value as Node | null;
      if (value && isScalar(value) && value.range) return at(value.range[0]);
      return at((pair.key as Node | null)?.range?.[0]);
    }
  }
  return at((doc.contents as Node | null)?.range?.[0] ?? 0);
}

function pairIn(node: unknown, key: string): Pair | undefined {
  if (!isMap(node)) return undefined;
  return node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === key);
}

const ENV_REF = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replace `${NAME}` and `${NAME:-default}` in every string value (not keys), as Compose
 * does, so secrets stay out of the file; `$$` is a literal `$`.
 */
function interpolate(
  value: unknown,
  path: Path,
  env: NodeJS.ProcessEnv,
  fail: { missing: (path: Path, name: string) => never; cycle: (path: Path) => never },
  ancestors: Set<object> = new Set(),
): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$$') return '$';
      const set = env[name!];
      if (set !== undefined && set !== '') return set;
      if (fallback !== undefined) return fallback;
      return fail.missing(path, name!);
    });
  }
  if (value === null || typeof value !== 'object') return value;
  // a recursive alias (`a: &a [*a]`) makes a cyclic value: refuse it rather than recurse forever
  if (ancestors.has(value)) return fail.cycle(path);
  ancestors.add(value);
  const out = Array.isArray(value)
    ? value.map((v, i) => interpolate(v, [...path, i], env, fail, ancestors))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], env, fail, ancestors)]));
  ancestors.delete(value);
  return out;
}

/** Checks that involve more than one field, or the decision core's schema. */
function crossCheck(
  config: ConfigFile,
  locate: (path: Path, key?: string) => { line?: number; column?: number },
): { issues: ConfigIssue[]; policies: Map<string, ServicePolicy> } {
  const issues: ConfigIssue[] = [];
  const policies = new Map<string, ServicePolicy>();
  const add = (path: Path, message: string) => issues.push({ field: fieldPath(path), message, ...locate(path) });

  if (config.database.url !== undefined && config.database.embedded === true) {
    add(['database', 'embedded'], 'cannot be true together with database.url; use one or the other');
  }
  if (config.database.embedded === false && config.database.url === undefined) {
    add(['database', 'url'], 'is required when database.embedded is false');
  }
  for (const [name, s] of Object.entries(config.services)) {
    if (s.pool_size !== undefined && s.kind === 'command') add(['services', name, 'pool_size'], 'applies to kind api or worker only (a command opens its own connections)');
  }
  if (!isLoopback(config.control.host) && config.control.token === undefined) {
    add(['control', 'token'], `is required when control.host (${config.control.host}) is not a loopback address; set it from the environment, e.g. token: \${TIDE_CONTROL_TOKEN}`);
  }

  // Ports: each fixed port, and each service's range of replica ports, must not overlap.
  const taken: Array<{ path: Path; from: number; to: number }> = [];
  const claim = (path: Path, from: number, to: number) => {
    const clash = taken.find((t) => from <= t.to && t.from <= to);
    if (clash) {
      const range = from === to ? `port ${from}` : `ports ${from}-${to}`;
      add(path, `${range} overlaps ${fieldPath(clash.path)} (${clash.from === clash.to ? clash.from : `${clash.from}-${clash.to}`}); ports must be distinct`);
    } else taken.push({ path, from, to });
  };
  config.balancer.trusted_proxies.forEach((entry, i) => {
    try {
      proxyTrust({ trustedProxies: [entry] });
    } catch {
      add(['balancer', 'trusted_proxies', i], `"${entry}" is not an IP address or CIDR (like 10.0.0.0/8, 172.18.0.2 or fd00::/8)`);
    }
  });
  if (config.balancer.port !== 0) claim(['balancer', 'port'], config.balancer.port, config.balancer.port);
  if (config.control.port !== 0) claim(['control', 'port'], config.control.port, config.control.port);

  for (const [name, s] of Object.entries(config.services)) {
    const at = (field: string): Path => ['services', name, field];
    if (s.kind === 'command' && s.command === undefined) add(at('kind'), 'kind command needs a `command` to run');
    if (s.kind !== 'command' && s.command !== undefined) add(at('command'), `is only for kind command (this service is kind ${s.kind})`);
    for (const field of ['concurrency', 'handlers', 'queues'] as const) {
      if (s.kind !== 'worker' && s[field] !== undefined) add(at(field), `is only for kind worker (this service is kind ${s.kind})`);
    }
    const { min, replicas, max } = counts(s);
    if (min > max) add(at(s.max !== undefined ? 'max' : 'min'), `min (${min}) is above max (${max})`);
    else if (replicas < min) add(at('replicas'), `replicas (${replicas}) is below min (${min})`);
    else if (replicas > max) add(at('replicas'), `replicas (${replicas}) is above max (${max})`);
    if (s.port !== undefined) {
      const last = s.port + Math.max(max, 1) - 1;
      if (last > 65535) add(at('port'), `port ${s.port} leaves no room for ${max} replicas below 65536`);
      else claim(at('port'), s.port, last);
    }
    if (s.scale !== undefined) {
      const { policy, problems } = validateScale(s.scale, { min, max, concurrency: s.kind === 'worker' ? (s.concurrency ?? DEFAULT_CONCURRENCY) : undefined });
      for (const problem of problems) {
        const path: Path = ['services', name, 'scale', ...problem.path];
        // An unknown key is located at the key itself (it has no value position of its own).
        const last = problem.path.at(-1);
        const at = problem.message.startsWith('unknown key') && typeof last === 'string' ? locate(path.slice(0, -1), last) : locate(path);
        issues.push({ field: fieldPath(path), message: problem.message, ...at });
      }
      if (policy) policies.set(name, policy);
    }
  }
  return { issues, policies };
}

/** min, replicas and max with their defaults, which depend on each other. */
function counts(s: ConfigFile['services'][string]): { min: number; replicas: number; max: number } {
  const min = s.min ?? (s.replicas === 0 ? 0 : 1);
  const replicas = s.replicas ?? min;
  const max = s.max ?? Math.max(min, replicas, 1);
  return { min, replicas, max };
}

function normalise(config: ConfigFile, file: string, policies: Map<string, ServicePolicy>): TideConfig {
  const services: Record<string, ServiceConfig> = {};
  for (const [name, s] of Object.entries(config.services)) {
    const service: ServiceConfig = {
      name,
      kind: s.kind,
      ...counts(s),
      env: Object.fromEntries(Object.entries(s.env ?? {}).map(([k, v]) => [k, String(v)])),
      healthPath: s.health,
      stopGraceSeconds: s.stop_grace_seconds,
    };
    if (s.command !== undefined) service.command = s.command;
    if (s.port !== undefined) service.port = s.port;
    if (s.kind === 'worker') service.concurrency = s.concurrency ?? DEFAULT_CONCURRENCY;
    if (s.kind !== 'command') service.poolSize = s.pool_size ?? config.database.pool_size ?? DEFAULT_POOL_SIZE[s.kind];
    if (s.handlers !== undefined) service.handlers = s.handlers;
    if (s.queues !== undefined) service.queues = s.queues;
    const policy = policies.get(name);
    if (policy) service.scale = policy;
    if (s.sources !== undefined) service.sources = s.sources;
    if (s.actuator !== undefined) service.actuator = s.actuator;
    services[name] = service;
  }
  const b = config.balancer;
  const tideConfig: TideConfig = {
    file,
    project: config.project,
    stateDir: config.state_dir,
    database: {
      schema: config.database.schema,
      pooler: config.database.pooler,
      ...(config.database.url === undefined ? {} : { url: config.database.url }),
      ...(config.database.direct_url === undefined ? {} : { directUrl: config.database.direct_url }),
      ...(config.database.max_connections === undefined ? {} : { maxConnections: config.database.max_connections }),
    },
    balancer: {
      host: b.host,
      port: b.port,
      retries: b.retries,
      healthCheck: {
        intervalMs: Math.round(b.health_check.interval_seconds * 1000),
        timeoutMs: Math.round(b.health_check.timeout_seconds * 1000),
        fails: b.health_check.fails,
        passes: b.health_check.passes,
      },
      ...(b.rate_limit
        ? { rateLimit: { ratePerSecond: b.rate_limit.requests_per_second, burst: b.rate_limit.burst ?? Math.max(1, Math.ceil(b.rate_limit.requests_per_second)) } }
        : {}),
      trustedProxies: b.trusted_proxies,
      forwardedHeader: b.forwarded_header,
    },
    control: { host: config.control.host, port: config.control.port, ...(config.control.token === undefined ? {} : { token: config.control.token }) },
    autoscale: {
      intervalMs: Math.round(config.autoscale.interval_seconds * 1000),
      dryRun: config.autoscale.dry_run,
      manualPauseMs: Math.round(config.autoscale.manual_pause_seconds * 1000),
      urgentPollMs: Math.round(config.autoscale.urgent_poll_seconds * 1000),
      readTimeoutMs: Math.round(config.autoscale.read_timeout_seconds * 1000),
      journalRetentionMs: Math.round(config.autoscale.journal_retention_hours * 3_600_000),
    },
    services,
  };
  return tideConfig;
}
