/** A replica and a service as the supervisor keeps them, and what it does to a replica's process. */
import type { ChildProcess } from 'node:child_process';

import type { CrashHistory } from './backoff.js';
import type { LogLine, ReplicaState, ReplicaStatus, ServiceSpec } from './types.js';

export interface Replica {
  service: Service;
  index: number;
  state: ReplicaState;
  child: ChildProcess | null;
  /** Signal the process group rather than the pid (shell commands). */
  group: boolean;
  /** The process group id of the last shell started (its pid). */
  groupId: number | null;
  port: number | null;
  startedAt: number;
  restarts: number;
  history: CrashHistory;
  inPool: boolean;
  /** The drain out of the balancer, once asked. */
  leaving?: Promise<unknown>;
  timer: NodeJS.Timeout | null;
  lastExit: ReplicaStatus['lastExit'];
  /** Resolves when the current process has exited. */
  exited: Promise<void>;
  /** The current process's last stderr lines (ERROR_TAIL of them); lines still arriving after its exit join it. */
  stderrTail: string[];
  /** The tail of the last process that exited on its own, and how it exited. */
  crash: { tail: string[]; exit: ReplicaStatus['lastExit'] } | null;
}

export interface Service {
  spec: ServiceSpec;
  replicas: Replica[];
  desired: number;
  queue: Promise<unknown>;
  scaledAt: number | null;
  scaledBy: string | null;
  manualScaledAt: number | null;
  logs: LogLine[];
}


export function describeExit(exit: ReplicaStatus['lastExit']): string {
  if (!exit) return 'no exit status';
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code ?? '?'}`;
}

export function replicaId(replica: Replica): string {
  return `${replica.service.spec.name}.${replica.index}`;
}

export function signal(replica: Replica, sig: NodeJS.Signals): void {
  const pid = replica.group ? replica.groupId : replica.child?.pid;
  if (pid === undefined || pid === null) return;
  try {
    process.kill(replica.group ? -pid : pid, sig);
  } catch {
    // already gone
  }
}
