/**
 * Docker Compose: scales a service with `docker compose up -d --no-recreate --scale svc=N svc`
 * and observes it with `docker compose ps --format json svc`.
 *
 * Design note. The docker CLI is run with execFile (no shell, so no quoting and no
 * injection) and a timeout. Compose keeps no desired count of its own: the count is whatever
 * the last `--scale` asked for. So `desired` is the count this actuator last applied, and
 * until it has applied one (a fresh process), the number of the service's containers that
 * `ps` lists. `ready` counts containers that are running and, when they have a healthcheck,
 * healthy. `ps --format json` prints a JSON array in Compose before v2.21 and one JSON
 * object per line since; both are read.
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
  /** Compose file (`-f`); absent: Compose finds compose.yaml in the working directory. */
  file: z.string().min(1).optional(),
  /** The docker binary: a path, or a name looked up on PATH. */
  docker: z.string().min(1).default('docker'),
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
}

const containerSchema = z.looseObject({
  Name: z.string().default(''),
  Service: z.string(),
  State: z.string(),
  Health: z.string().default(''),
});

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

export class ComposeActuator implements Actuator {
  readonly #config: ComposeConfig;
  readonly #log: ActuatorLog;
  /** The count last applied per service: Compose itself does not store one. */
  readonly #applied = new Map<string, number>();

  constructor(config: ComposeConfig, context: ActuatorContext = {}) {
    this.#config = config;
    this.#log = context.log ?? (() => {});
  }

  async observe(service: string): Promise<Observed> {
    assertServiceName(service);
    const stdout = await this.#compose(['ps', '--format', 'json', service], service);
    const containers = parseComposePs(stdout).filter((c) => c.Service === service);
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

  /** Runs `docker compose -p P [-f file] <args>`; resolves with stdout. */
  #compose(args: string[], service: string): Promise<string> {
    const { docker, project, file, timeoutSeconds } = this.#config;
    const argv = ['compose', '-p', project, ...(file ? ['-f', file] : []), ...args];
    const what = `docker compose ${args[0] ?? ''} (project ${project}, service ${service})`;
    return new Promise((resolve, reject) => {
      execFile(docker, argv, { timeout: timeoutSeconds * 1000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const details = { command: what, exitCode: typeof err.code === 'number' ? err.code : undefined };
        if (err.code === 'ENOENT') {
          return reject(new TideError('TIDE_ACTUATOR_FAILED', `${what}: the docker binary "${docker}" was not found.`, { cause: err, where: { field: 'docker' }, details }));
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
  summary: 'Docker Compose on one host: docker compose up -d --no-recreate --scale svc=N.',
  schema: composeSchema,
  create(config, context) {
    return new ComposeActuator(config, context);
  },
};
