/**
 * Building the control loop from a config: for each service with a `scale:` block, its
 * sources (the configured ones, or the builtin source on a worker's queues), its actuator (the
 * configured one, or `local` when a supervisor is given), and the journal; then starting it.
 * `tide up` calls `startController` with its supervisor; `tide autoscale` without one.
 */
import { createActuator } from '../actuators/registry.js';
import type { Actuator, ActuatorLog, LocalSupervisor } from '../actuators/types.js';
import type { TideConfig } from '../config/schema.js';
import type { Memory } from '../core/decider.js';
import { combineSamples } from '../core/metrics.js';
import type { Sample } from '../core/types.js';
import { TideError, errorFacts } from '../errors.js';
import { createSource } from '../sources/registry.js';
import type { MetricSource, SourceContext } from '../sources/types.js';
import type { Clock } from '../clock.js';
import { type ControlledService, Controller, type ServiceControlStatus } from './controller.js';
import { type Journal, openJournal } from './journal.js';

/** The supervisor as the controller sees it: the local actuator's part, plus when a service was scaled by hand. */
export interface ControllerSupervisor extends LocalSupervisor {
  /** When `service` was last scaled by hand (ms epoch), or null. */
  manualScaledAt(service: string): number | null;
  ps(): {
    services: ReadonlyArray<{ name: string; desired: number; healthy: number }>;
    /** The replicas' processes, for a `process` source named in a service's `sources:`. */
    replicas?: ReadonlyArray<{ service: string; pid: number | null; state: string }>;
  };
}

/**
 * The source context of one service: inside `tide up`, `pids()` names the processes of its
 * healthy replicas (asked afresh on every read). Starting and draining replicas are left out:
 * one has no work yet, the other's is going away, and either would skew the mean.
 */
function sourceContext(service: string, supervisor: ControllerSupervisor | undefined): SourceContext {
  const now = () => Date.now();
  if (!supervisor) return { now };
  return {
    now,
    pids: () => (supervisor.ps().replicas ?? []).flatMap((r) => (r.service === service && r.state === 'healthy' && r.pid !== null ? [r.pid] : [])),
  };
}

export interface BuildOptions {
  config: TideConfig;
  /** The database of the builtin sources (the queue's). */
  databaseUrl: string;
  /** Inside `tide up`: the default actuator is `local` over it, and manual scales pause autoscaling. */
  supervisor?: ControllerSupervisor;
  /** Where actuators report what they did. */
  actuatorLog?: ActuatorLog;
  /** Test seam: actuators by service name, instead of building them from the config. */
  actuators?: Record<string, Actuator>;
}

/** Several sources read as one (the builtin source per queue of a worker). */
function combinedSource(parts: MetricSource[]): MetricSource {
  return {
    async read(signal) {
      const all: Sample[][] = await Promise.all(parts.map((p) => p.read(signal)));
      return combineSamples(all);
    },
    async close() {
      await Promise.all(parts.map((p) => p.close().catch(() => undefined)));
    },
  };
}

/**
 * The services the controller drives, built from the config. On a config error, whatever was
 * built is closed again.
 * @throws TideError TIDE_CONTROLLER_CONFIG, TIDE_CONTROLLER_NO_ACTUATOR, TIDE_SOURCE_CONFIG, TIDE_ACTUATOR_CONFIG
 */
export async function buildServices(options: BuildOptions): Promise<ControlledService[]> {
  const { config } = options;
  const built: ControlledService[] = [];
  const closeAll = async () => {
    for (const s of built) {
      await Promise.all([...s.sources.map((x) => x.source.close()), s.urgentSource?.close(), s.actuator.close()].map((p) => p?.catch(() => undefined)));
    }
  };
  try {
    for (const service of Object.values(config.services)) {
      const policy = service.scale;
      if (!policy) continue;
      const field = `services.${service.name}`;
      const sourceConfigs: Array<{ name: string; config: Record<string, unknown>; field: string }> = [];
      if (service.sources && Object.keys(service.sources).length > 0) {
        for (const [name, cfg] of Object.entries(service.sources)) sourceConfigs.push({ name, config: { name, ...cfg }, field: `${field}.sources.${name}` });
      } else if (service.kind === 'worker') {
        const queues = service.queues ?? ['default'];
        if (queues.includes('*')) {
          throw new TideError('TIDE_CONTROLLER_CONFIG', `${service.name} takes jobs from every queue ("*"), so the autoscaler cannot tell which to measure; name them in \`queues:\` or give \`sources:\`.`, {
            where: { file: config.file, field: `${field}.queues` },
          });
        }
        for (const queue of queues) {
          sourceConfigs.push({
            name: `queue-${queue}`,
            config: { kind: 'builtin', name: `queue-${queue}`, connection_string: options.databaseUrl, schema: config.database.schema, queue, timeout_ms: config.autoscale.readTimeoutMs },
            field: `${field}.sources`,
          });
        }
      } else {
        throw new TideError('TIDE_CONTROLLER_CONFIG', `${service.name} has a \`scale:\` block but no metric source to decide on; add \`sources:\` (docs/sources.md).`, {
          where: { file: config.file, field: `${field}.sources` },
        });
      }
      const sources: ControlledService['sources'] = [];
      let urgentSource: MetricSource | undefined;
      let actuator: Actuator;
      try {
        const ctx = sourceContext(service.name, options.supervisor);
        for (const s of sourceConfigs) sources.push({ name: s.name, source: createSource(s.config, { file: config.file, field: s.field }, ctx) });
        // the urgent poll reads its own copies of the builtin sources (one connection each)
        const builtins = sourceConfigs.filter((s) => s.config.kind === 'builtin');
        if (policy.policies.some((p) => p.kind === 'slo') && builtins.length > 0) {
          urgentSource = combinedSource(builtins.map((s) => createSource({ ...s.config, name: `${s.name}-urgent` }, { file: config.file, field: s.field })));
        }
        actuator = actuatorFor(service, options);
      } catch (err) {
        await Promise.all([...sources.map((s) => s.source.close()), urgentSource?.close()].map((p) => p?.catch(() => undefined)));
        throw err;
      }
      const entry: ControlledService = { name: service.name, policy, sources, actuator, ...(urgentSource ? { urgentSource } : {}) };
      built.push(entry);
      const given = options.actuators?.[service.name];
      const supervisor = options.supervisor;
      if (supervisor && !given && (!service.actuator || service.actuator.kind === 'local')) {
        entry.manualScaledAt = () => supervisor.manualScaledAt(service.name);
      }
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  return built;
}

function actuatorFor(service: TideConfig['services'][string], options: BuildOptions): Actuator {
  const { config } = options;
  const field = `services.${service.name}.actuator`;
  const given = options.actuators?.[service.name];
  if (given) return given;
  const context = { ...(options.supervisor ? { supervisor: options.supervisor } : {}), ...(options.actuatorLog ? { log: options.actuatorLog } : {}) };
  if (service.actuator) return createActuator(service.actuator, context, { field, file: config.file });
  if (options.supervisor) return createActuator({ kind: 'local' }, context, { field, file: config.file });
  throw new TideError('TIDE_CONTROLLER_NO_ACTUATOR', `${service.name} has no \`actuator:\`; outside \`tide up\` the autoscaler needs one (compose, kubernetes or ecs; docs/actuators.md).`, {
    where: { file: config.file, field },
  });
}

export interface StartControllerOptions extends BuildOptions {
  /** Progress and actuator lines. */
  log?: (line: string) => void;
  /** Overrides the config's `autoscale.dry_run`. */
  dryRun?: boolean;
  clock?: Clock;
  /** Called with every decision (after its journal row). */
  onDecision?: (record: import('./journal.js').JournalEntry) => void;
  /** Do not start the timers (`tide autoscale --once`, tests). */
  manual?: boolean;
}

/** The control loop as `tide up` and `tide autoscale` hold it. */
export interface RunningController {
  controller: Controller;
  journal: Journal;
  status(): ServiceControlStatus[];
  /** Stops the loop, closes sources, actuators and the journal. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Opens the journal (migrating), builds the services and starts the loop. With no autoscaled
 * service it still returns a controller (with nothing to do), so callers need no special case.
 */
export async function startController(options: StartControllerOptions): Promise<RunningController> {
  const { config } = options;
  const journal = await openJournal({ connectionString: options.databaseUrl, schema: config.database.schema });
  let services: ControlledService[];
  try {
    services = await buildServices(options);
  } catch (err) {
    await journal.close();
    throw err;
  }
  // What the policies learned before is worth having, not worth refusing to start over.
  const memory = await journal.loadMemory().catch((err: unknown): Record<string, Memory> => {
    options.log?.(`the policies' memory could not be read, so they start afresh: ${errorFacts(err).message}`);
    return {};
  });
  const a = config.autoscale;
  const controller = new Controller({
    services,
    journal,
    memory,
    dryRun: options.dryRun ?? a.dryRun,
    intervalMs: a.intervalMs,
    urgentPollMs: a.urgentPollMs,
    readTimeoutMs: a.readTimeoutMs,
    manualPauseMs: a.manualPauseMs,
    journalRetentionMs: a.journalRetentionMs,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  if (options.onDecision) controller.on('decision', options.onDecision);
  if (!options.manual) controller.start();
  let stopping: Promise<void> | undefined;
  return {
    controller,
    journal,
    status: () => controller.status(),
    stop() {
      stopping ??= (async () => {
        await controller.stop();
        await journal.close();
      })();
      return stopping;
    },
  };
}
