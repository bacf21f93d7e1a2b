/** What the controller is given (services, options) and what it reports (status, decision records). */
import type { Registry } from 'prom-client';

import type { Actuator } from '../actuators/types.js';
import type { Clock } from '../clock.js';
import type { Memory } from '../core/decider.js';
import type { Reason, ServicePolicy } from '../core/types.js';
import type { MetricSource } from '../sources/types.js';
import type { Journal, JournalEntry } from './journal.js';

/** One autoscaled service as the controller drives it. */
export interface ControlledService {
  name: string;
  policy: ServicePolicy;
  /** Named sources; their samples are combined (see combineSamples). */
  sources: Array<{ name: string; source: MetricSource }>;
  actuator: Actuator;
  /**
   * A cheap source whose `queue_oldest_age_seconds` the urgent poll reads (its own
   * connection, so a poll never waits behind a round's reads). Only used with an SLO policy.
   */
  urgentSource?: MetricSource;
  /** When the service was last scaled by hand (ms epoch), for the pause after a manual scale. */
  manualScaledAt?: () => number | null;
}

export interface RetryOptions {
  /** First retry after this many ms; doubles each time. Default 500. */
  baseMs: number;
  /** Longest wait between retries. Default 30 000. */
  maxMs: number;
  /** Calls in all (the first and its retries) before giving up until the next round. Default 6. */
  attempts: number;
}

export interface ControllerOptions {
  services: ControlledService[];
  /** Where decisions are recorded; absent: nowhere (status() still has the last one). */
  journal?: Journal;
  /** What the policies learned before a restart, by service (the journal's `loadMemory()`). */
  memory?: Record<string, Memory>;
  /** Decide and record, never scale. */
  dryRun?: boolean;
  /** Between rounds; default 5 000. */
  intervalMs?: number;
  /** Between urgent polls of the oldest age; 0 turns them off. Default 500. */
  urgentPollMs?: number;
  /** A source read longer than this is aborted and counts as failed. Default 2 000. */
  readTimeoutMs?: number;
  /** How long a manual scale pauses autoscaling of its service. Default 300 000. */
  manualPauseMs?: number;
  /** Journal rows older than this are pruned (at most once an hour). Default 7 days. */
  journalRetentionMs?: number;
  retry?: Partial<RetryOptions>;
  clock?: Clock;
  log?: (line: string) => void;
  /** Where the controller's own metrics go; default a registry of its own (`controller.registry`). */
  registry?: Registry;
}

/** A source that failed in the last round. */
export interface FailingSource {
  source: string;
  code: string;
  message: string;
  /** Failures in a row. */
  count: number;
  /** ms epoch of the first failure of this run. */
  since: number;
}

export interface ActuatorErrorStatus {
  code: string;
  message: string;
  /** ms epoch */
  at: number;
  /** Calls that failed in a row. */
  attempts: number;
  /** The count the controller was trying to apply. */
  target: number;
}

/** One service's state for `tide ps` and the dashboard. */
export interface ServiceControlStatus {
  service: string;
  /** The count of the last decision (what the controller wants). */
  desired: number | null;
  /** What the platform reported ready in the last round. */
  ready: number | null;
  lastDecision: { at: number; current: number; desired: number; limitedBy: string | null; reasons: Reason[]; applied: boolean } | null;
  /** ms epoch until which a manual scale pauses autoscaling; null when not paused. */
  pausedUntil: number | null;
  failingSources: FailingSource[];
  actuatorError: ActuatorErrorStatus | null;
  /** The count an actuator call is applying now, if one is in flight. */
  applying: number | null;
  dryRun: boolean;
}

/** What each round reports (the 'decision' event, and `tide autoscale`'s lines). */
export type DecisionRecord = JournalEntry;
