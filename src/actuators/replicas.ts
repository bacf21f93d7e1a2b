/**
 * Checks shared by every actuator, run before any platform call.
 */
import type { Decision } from '../core/types.js';
import { TideError } from '../errors.js';
import type { ScaleLogEntry } from './types.js';

/** Throws TIDE_ACTUATOR_REPLICAS unless `replicas` is a whole number >= 0. */
export function assertReplicas(service: string, replicas: number): void {
  if (!Number.isSafeInteger(replicas) || replicas < 0) {
    throw new TideError('TIDE_ACTUATOR_REPLICAS', `Cannot scale ${service} to ${String(replicas)}: a replica count is a whole number >= 0.`, {
      where: { field: 'replicas' },
      details: { service, replicas: String(replicas) },
    });
  }
}

/**
 * Service names reach command lines and URL paths, so only plain names pass: a name that
 * starts with "-" would read as a flag to docker, one with "/" would change an API path.
 */
export function assertServiceName(service: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/.test(service)) {
    throw new TideError('TIDE_ACTUATOR_CONFIG', `"${service}" is not a valid service name (letters, digits, "_", ".", "-"; not starting with a sign).`, {
      where: { field: 'service' },
    });
  }
}

/** The log entry for a scale call: reason codes and sentences only. */
export function scaleLogEntry(actuator: string, service: string, to: number, why: Decision, from?: number): ScaleLogEntry {
  return {
    actuator,
    service,
    ...(from === undefined ? {} : { from }),
    to,
    reasons: why.reasons.map((r) => ({ code: r.code, message: r.message })),
  };
}

/** The last non-empty line of a program's stderr (where docker and compose put the cause). */
export function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.at(-1) ?? '';
}
