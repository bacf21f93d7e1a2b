/**
 * Docker Compose: scales a service with `up -d --no-recreate --scale svc=N svc` and observes
 * its containers, through either command users have: `docker compose` (Compose v2, the
 * docker CLI's plugin) or `docker-compose` (Compose v1, a program of its own), configured or
 * found by asking `docker compose version` once.
 *
 * Design note. The CLI is run with execFile (no shell, so no quoting and no injection) and a
 * timeout. Compose keeps no desired count of its own: the count is whatever the last
 * `--scale` asked for. So `desired` is the count this actuator last applied, and until it has
 * applied one (a fresh process), the number of the service's containers. `ready` counts
 * containers that are running and, when they have a healthcheck, healthy; starting,
 * restarting and exited containers are listed too (`ps -a`), and not ready; `compose run`
 * containers (one-off) are not replicas and are left out. v2 lists them with
 * `ps -a --format json` (a JSON array before v2.21, one JSON object per line since; both are
 * read); v1 has no JSON output, so its `ps -a -q` gives the containers' ids and `docker inspect`
 * their state and health.
 */
import { execFile } from 'node:child_process';

import { z } from 'zod';

import type { Decision } from '../core/types.js';
import { TideError } from '../errors.js';
import { assertReplicas, assertServiceName, lastLine, scaleLogEntry } from './replicas.js';
import type { Actuator, ActuatorContext, ActuatorDefinition, ActuatorLog, Observed } from './types.js';

export const composeSchema = z.strictObject({
  /** Compose project name (`-p`): lowercase letters, digits, "-" and "_", as Compose requires. */
  project: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'a Compose project name: lowercase letters, digits, "-", "_"'),
  /**
   * Compose file (`-f`), or files merged in order (`-f a -f b`: a project file and its
   * override); absent: Compose finds compose.yaml in the working directory.
   */
  file: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** The docker binary: a path, or a name looked up on PATH. */
  docker: z.string().min(1).default('docker'),
  /**
   * Which Compose: `plugin` runs `docker compose` (v2), `standalone` runs `docker-compose`
   * (v1); `auto` uses the plugin when `docker compose version` answers, else the standalone.
   */
  compose: z.enum(['auto', 'plugin', 'standalone']).default('auto'),
  /** The standalone Compose binary (v1): a path, or a name looked up on PATH. */
  dockerCompose: z.string().min(1).default('docker-compose'),
  /** Time allowed for one docker call; `up` may pull images, hence the generous default. */
  timeoutSeconds: z.number().positive().max(3600).default(120),
});

export type ComposeConfig = z.output<typeof composeSchema>;

/** One container in `docker compose ps --format json` output (the fields this reads). */
export interface ComposeContainer {
  Name: string;
  Service: string;
  State: string;
  Health: string;
  /** A `compose run` container (label com.docker.compose.oneoff=True): not a replica. */
  OneOff: boolean;
}

const ONE_OFF = 'com.docker.compose.oneoff';

const containerSchema = z
  .looseObject({
    Name: z.string().default(''),
    Service: z.string(),
    State: z.string(),
    Health: z.string().default(''),
    /** "key=value,key=value" */
    Labels: z.string().default(''),
  })
  .transform(({ Name, Service, State, Health, Labels }) => ({ Name, Service, State, Health, OneOff: Labels.split(',').includes(`${ONE_OFF}=True`) }));

/**
 * Reads `ps --format json` output in either shape Compose has printed: a JSON array
 * (before v2.21), or one JSON object per line (since). Empty output means no containers.
 */
export function parseComposePs(stdout: string): ComposeContainer[] {
  const text = stdout.trim();
  if (text === '') return [];
  let rows: unknown[];
  try {
    rows = text.startsWith('[') ? (JSON.parse(text) as unknown[]) : text.split(/\r?\n/).filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
  } catch (cause) {
    throw new TideError('TIDE_ACTUATOR_FAILED', `docker compose ps printed output that is not JSON: ${lastLine(text).slice(0, 200)}`, { cause });
  }
  if (!Array.isArray(rows)) throw new TideError('TIDE_ACTUATOR_FAILED', 'docker compose ps printed JSON that is not a list of containers.');
  return rows.map((row) => {
    const parsed = containerSchema.safeParse(row);
    if (!parsed.success) throw new TideError('TIDE_ACTUATOR_FAILED', 'docker compose ps printed a container without Service or State.', { cause: parsed.error });
    return parsed.data;
  });
}

/** Running, and healthy when the container has a healthcheck (Health is empty without one). */
export function isReady(c: ComposeContainer): boolean {
  return c.State === 'running' && (c.Health === '' || c.Health === 'healthy');
}

/** The fields of `docker inspect` output the standalone path reads. */
const inspectSchema = z.array(
  z.looseObject({
    Name: z.string().default(''),
    Config: z.looseObject({ Labels: z.record(z.string(), z.string()).nullish() }),
    State: z.looseObject({ Status: z.string(), Health: z.looseObject({ Status: z.string() }).nullish() }),
  }),
);

/** Reads `docker inspect` output into the rows `ps --format json` gives. */
export function parseInspect(stdout: string): ComposeContainer[] {
  let parsed;
  try {
    parsed = inspectSchema.safeParse(JSON.parse(stdout.trim() || '[]'));
  } catch (cause) {
    throw new TideError('TIDE_ACTUATOR_FAILED', `docker inspect printed output that is not JSON: ${lastLine(stdout).slice(0, 200)}`, { cause });
  }
  if (!parsed.success) throw new TideError('TIDE_ACTUATOR_FAILED', 'docker inspect printed a container without Config or State.', { cause: parsed.error });
  return parsed.data.map((c) => ({
    Name: c.Name.replace(/^\//, ''),
    Service: c.Config.Labels?.['com.docker.compose.service'] ?? '',
    State: c.State.Status,
    Health: c.State.Health?.Status ?? '',
    OneOff: c.Config.Labels?.[ONE_OFF] === 'True',
  }));
}

/** How to run Compose: the program and the arguments before the project's. */
interface ComposeCli {
  kind: 'plugin' | 'standalone';
  file: string;
  prefix: string[];
}

export class ComposeActuator implements Actuator {
  readonly #config: ComposeConfig;
  readonly #log: ActuatorLog;
  /** The count last applied per service: Compose itself does not store one. */
  readonly #applied = new Map<string, number>();
  /** Which Compose runs here, once found (`compose: auto`). */
  #cli: Promise<ComposeCli> | undefined;

  constructor(config: ComposeConfig, context: ActuatorContext = {}) {
    this.#config = config;
    this.#log = context.log ?? (() => {});
  }

  async observe(service: string): Promise<Observed> {
    assertServiceName(service);
    const containers = (await this.#containers(service)).filter((c) => c.Service === service && !c.OneOff);
    return {
      desired: this.#applied.get(service) ?? containers.length,
      ready: containers.filter(isReady).length,
    };
  }

  async scale(service: string, replicas: number, why: Decision): Promise<void> {
    assertReplicas(service, replicas);
    assertServiceName(service);
    // --no-recreate: scaling must not restart the replicas that already run.
    await this.#compose(['up', '-d', '--no-recreate', '--scale', `${service}=${replicas}`, service], service);
    this.#log(scaleLogEntry('compose', service, replicas, why, this.#applied.get(service)));
    this.#applied.set(service, replicas);
  }

  async close(): Promise<void> {}

  /** The service's containers, whatever their state. */
  async #containers(service: string): Promise<ComposeContainer[]> {
    if ((await this.#which()).kind === 'plugin') return parseComposePs(await this.#compose(['ps', '-a', '--format', 'json', service], service));
    // -a: the stopped ones too (a v2 docker-compose binary lists only running ones without it)
    let ids = (await this.#compose(['ps', '-a', '-q', service], service)).split(/\s+/).filter((id) => id !== '');
    const what = `docker inspect (project ${this.#config.project}, service ${service})`;
    // A container removed between the two calls (a scale-in under way) is gone, not a replica:
    // docker names each one it cannot find, and the others are inspected again.
    while (ids.length > 0) {
      try {
        return parseInspect(await this.#run(this.#config.docker, ['inspect', ...ids], what, 'docker'));
      } catch (err) {
        const gone = err instanceof TideError ? [...err.message.matchAll(/no such object: ([0-9a-f]+)/gi)].map((m) => m[1]!) : [];
        const left = ids.filter((id) => !gone.some((g) => g.startsWith(id) || id.startsWith(g)));
        if (left.length === ids.length) throw err;
        ids = left;
      }
    }
    return [];
  }

  /** Runs `<compose> -p P [-f file] <args>`; resolves with stdout. */
  async #compose(args: string[], service: string): Promise<string> {
    const { project, file } = this.#config;
    const files = file === undefined ? [] : [file].flat().flatMap((f) => ['-f', f]);
    const cli = await this.#which();
    const name = cli.kind === 'plugin' ? 'docker compose' : 'docker-compose';
    const what = `${name} ${args[0] ?? ''} (project ${project}, service ${service})`;
    return this.#run(cli.file, [...cli.prefix, '-p', project, ...files, ...args], what, cli.kind === 'plugin' ? 'docker' : 'dockerCompose');
  }

  /** The configured Compose, or the one found here: the plugin if it answers, else the standalone. */
  #which(): Promise<ComposeCli> {
    const { docker, dockerCompose, compose } = this.#config;
    const plugin: ComposeCli = { kind: 'plugin', file: docker, prefix: ['compose'] };
    const standalone: ComposeCli = { kind: 'standalone', file: dockerCompose, prefix: [] };
    if (compose === 'plugin') return Promise.resolve(plugin);
    if (compose === 'standalone') return Promise.resolve(standalone);
    this.#cli ??= this.#run(docker, ['compose', 'version'], 'docker compose version', 'docker').then(
      () => plugin,
      (pluginError: unknown) =>
        this.#run(dockerCompose, ['version'], 'docker-compose version', 'dockerCompose').then(
          () => standalone,
          (cause: unknown) => {
            this.#cli = undefined; // ask again next time: Compose may be installed meanwhile
            const why = (e: unknown) => (e instanceof Error ? e.message : String(e));
            throw new TideError(
              'TIDE_ACTUATOR_FAILED',
              `Neither \`${docker} compose\` (Compose v2: ${why(pluginError)}) nor \`${dockerCompose}\` (Compose v1: ${why(cause)}) runs here. Install one, or name it with the compose actuator's \`docker\` or \`dockerCompose\` field.`,
              { cause, where: { field: 'compose' } },
            );
          },
        ),
    );
    return this.#cli;
  }

  /** Runs one program with a timeout and no shell; resolves with stdout. */
  #run(program: string, argv: string[], what: string, field: 'docker' | 'dockerCompose'): Promise<string> {
    const { timeoutSeconds } = this.#config;
    return new Promise((resolve, reject) => {
      execFile(program, argv, { timeout: timeoutSeconds * 1000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const details = { command: what, exitCode: typeof err.code === 'number' ? err.code : undefined };
        if (err.code === 'ENOENT') {
          return reject(new TideError('TIDE_ACTUATOR_FAILED', `${what}: the program "${program}" was not found.`, { cause: err, where: { field }, details }));
        }
        if (err.killed) {
          return reject(new TideError('TIDE_ACTUATOR_FAILED', `${what} did not finish within ${timeoutSeconds} s and was stopped.`, { cause: err, details }));
        }
        const cause = lastLine(stderr) || `exit code ${String(err.code)}`;
        // Compose's message for a service the project does not define.
        const code = /no such service/i.test(cause) ? 'TIDE_ACTUATOR_NOT_FOUND' : 'TIDE_ACTUATOR_FAILED';
        reject(new TideError(code, `${what} failed: ${cause}`, { cause: err, details }));
      });
    });
  }
}

export const composeActuator: ActuatorDefinition<typeof composeSchema> = {
  kind: 'compose',
  summary: 'Docker Compose on one host (docker compose or docker-compose): up -d --no-recreate --scale svc=N.',
  schema: composeSchema,
  create(config, context) {
    return new ComposeActuator(config, context);
  },
};
