/**
 * Autoscaler faults: the live controller (src/controller, the real decide()) driven round by
 * round on a manual clock, reading a real `postgres` SQL source whose answer the scenario
 * changes every round (a good number, NaN, a negative, a huge value, infinity, a value that
 * is not a number, no row, a query that runs past the read timeout), and, through a thin
 * wrapper, values the source's own guard would have refused (NaN, negative, a thrown plain
 * Error), so the core's checks are hit too. The actuator is an in-memory platform that fails
 * runs of scale calls.
 *
 * Invariants: no decision and no scale call leaves min..max; a round with a failed or invalid
 * source never scales down (hold), and after `failureThreshold` failed rounds in a row the
 * count goes to the fallback; a failing actuator call is retried (more than one call for the
 * same target), shown while it fails (status().actuatorError, the journal row's errors), and
 * the target is reached once the platform answers again.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import type { Actuator } from '../../src/actuators/types.js';
import { ManualClock } from '../../src/clock.js';
import { Controller, type DecisionRecord } from '../../src/controller/controller.js';
import { parseServicePolicy } from '../../src/core/schema.js';
import type { Decision, Sample } from '../../src/core/types.js';
import { TideError } from '../../src/errors.js';
import { createSource } from '../../src/sources/registry.js';
import type { MetricSource } from '../../src/sources/types.js';
import { seeded } from '../../src/app/demo.js';
import { sleep, startChaosSystem } from '../system.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from '../types.js';

/** What the source answers in one round. `sql-*` go through the real SQL source; `raw-*` bypass its guard. */
const MODES = ['ok', 'ok', 'ok', 'sql-nan', 'sql-negative', 'sql-huge', 'sql-infinity', 'sql-text', 'sql-no-row', 'sql-slow', 'raw-nan', 'raw-negative', 'raw-throw'] as const;
type Mode = (typeof MODES)[number];

const MIN = 1;
const MAX = 6;
const FALLBACK = 2;
const THRESHOLD = 3;
const INTERVAL_MS = 5_000;

/** An in-memory platform whose scale calls fail while `failing` > 0 (each failure uses one). */
class FlakyPlatform implements Actuator {
  replicas = MIN;
  failing = 0;
  calls: number[] = [];
  failures = 0;
  async observe(): Promise<{ desired: number; ready: number }> {
    return { desired: this.replicas, ready: this.replicas };
  }
  async scale(_service: string, replicas: number, _why: Decision): Promise<void> {
    this.calls.push(replicas);
    if (this.failing > 0) {
      this.failing--;
      this.failures++;
      throw new TideError('TIDE_ACTUATOR_FAILED', 'the platform refused the scale call (chaos)');
    }
    this.replicas = replicas;
  }
  async close(): Promise<void> {}
}

export const autoscalerFaults: Scenario = {
  name: 'autoscaler-faults',
  checks: 'bad metrics hold or fall back, never out of min..max; a failing actuator is retried and shown',
  async run(options): Promise<ScenarioResult> {
    const manual = await manualClockFaults(options);
    const live = await liveFaults(options);
    return {
      name: this.name,
      did: `${manual.did}; then ${live.did}`,
      durationMs: manual.durationMs + live.durationMs,
      counts: { ...manual.counts, ...live.counts },
      violations: [...manual.violations, ...live.violations],
      notes: [...manual.notes, ...live.notes],
    };
  },
};

/**
 * The faults on a manual clock: many rounds, fast, every round checked against its input.
 */
export async function manualClockFaults(options: ScenarioOptions): Promise<ScenarioResult> {
  const rounds = options.full ? 2_000 : options.durationMs && options.durationMs < 30_000 ? 150 : 400;
  const started = performance.now();
  const random = seeded(options.seed + 3);
  const violations: string[] = [];
  const counts: Record<string, number> = { rounds, heldOnBadMetric: 0, fallbacks: 0, scaleUps: 0, scaleDowns: 0, actuatorFailures: 0, actuatorRetries: 0, actuatorRecovered: 0 };
  const schema = `chaos_${randomBytes(5).toString('hex')}`;
  const db = new pg.Pool({ connectionString: options.databaseUrl, max: 1 });
  await db.query(`CREATE SCHEMA "${schema}"`);
  await db.query(`CREATE TABLE "${schema}".fault (value text, sleep float8 NOT NULL DEFAULT 0)`);
  const sql = createSource(
    {
      kind: 'postgres',
      name: 'faulty',
      connection_string: options.databaseUrl,
      query: `SELECT value::float8 FROM "${schema}".fault, pg_sleep(sleep)`,
      metric: 'queue_depth',
      timeout_ms: 300,
    },
    { field: 'chaos.sources.faulty' },
  );
  let mode: Mode = 'ok';
  let value = 0;
  const source: MetricSource = {
    async read(signal): Promise<Sample[]> {
      const at = clock.now();
      if (mode === 'raw-nan') return [{ metric: 'queue_depth', value: Number.NaN, at }];
      if (mode === 'raw-negative') return [{ metric: 'queue_depth', value: -value - 1, at }];
      if (mode === 'raw-throw') throw new Error('a plain Error from a source (not a TideError)');
      return sql.read(signal);
    },
    close: () => sql.close(),
  };
  const policy = parseServicePolicy(
    {
      min: MIN,
      max: MAX,
      policies: [{ kind: 'target', metric: 'queue_depth', type: 'average', target: 10 }],
      fallback: { failureThreshold: THRESHOLD, replicas: FALLBACK },
      // short windows so a run of rounds sees both directions
      behavior: { scaleDown: { stabilizationWindowSeconds: 10 }, scaleUp: { stabilizationWindowSeconds: 0 } },
    },
    { field: 'chaos.scale' },
  );
  const clock = new ManualClock();
  const platform = new FlakyPlatform();
  const shown: string[] = [];
  const controller = new Controller({
    services: [{ name: 'worker', policy, sources: [{ name: 'faulty', source }], actuator: platform }],
    clock,
    readTimeoutMs: 1_000,
    urgentPollMs: 0,
    retry: { baseMs: 500, maxMs: 4_000, attempts: 4 },
  });
  controller.on('actuator-error', (e: { error: { code: string } }) => shown.push(e.error.code));
  let failedInARow = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      mode = MODES[Math.floor(random() * MODES.length)]!;
      value = Math.round(random() * 80);
      const text = { ok: String(value), 'sql-nan': 'NaN', 'sql-negative': String(-value - 1), 'sql-huge': '1e300', 'sql-infinity': 'Infinity', 'sql-text': 'lots' }[mode as string];
      await db.query(`DELETE FROM "${schema}".fault`);
      if (mode !== 'sql-no-row') await db.query(`INSERT INTO "${schema}".fault (value, sleep) VALUES ($1, $2)`, [text ?? String(value), mode === 'sql-slow' ? 1 : 0]);
      // now and then the platform refuses a few calls in a row
      if (random() < 0.08) platform.failing = 1 + Math.floor(random() * 3);
      const failuresBefore = platform.failures;

      const errorBefore = controller.status()[0]!.actuatorError;
      const [record] = (await controller.tick(clock.now())) as [DecisionRecord | undefined];
      if (!record) {
        violations.push(`round ${round}: no decision`);
        continue;
      }
      if (errorBefore && !record.errors.some((e) => e.source === 'actuator')) violations.push(`round ${round}: the actuator error (${errorBefore.code}) is not in the decision's errors`);
      const bad = mode !== 'ok' && mode !== 'sql-huge';
      const sourceFailed = record.errors.some((e) => e.source !== 'actuator');
      failedInARow = sourceFailed ? failedInARow + 1 : 0;
      if (record.desired < MIN || record.desired > MAX) violations.push(`round ${round} (${mode}): desired ${record.desired} outside ${MIN}..${MAX}`);
      if (failedInARow >= THRESHOLD) {
        counts.fallbacks!++;
        if (record.desired !== FALLBACK) violations.push(`round ${round} (${mode}): ${failedInARow} failed reads in a row, but desired ${record.desired}, not the fallback ${FALLBACK}`);
      } else if (bad) {
        if (record.desired < record.current) violations.push(`round ${round} (${mode}): scaled down from ${record.current} to ${record.desired} on a bad metric`);
        else counts.heldOnBadMetric!++;
      }
      if (record.desired > record.current) counts.scaleUps!++;
      if (record.desired < record.current) counts.scaleDowns!++;

      // let the actuator call and its retries run: the retry timers are on the manual clock
      for (let i = 0; i < 40 && controller.status()[0]!.applying !== null; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        const failing = controller.status()[0]!.actuatorError;
        if (failing && !shown.includes(failing.code)) violations.push(`round ${round}: an actuator error is in status() but was not emitted`);
        clock.advance(500);
      }
      const failedNow = platform.failures - failuresBefore;
      if (failedNow > 0) {
        counts.actuatorFailures! += failedNow;
        const status = controller.status()[0]!;
        const target = platform.calls.at(-1)!;
        const tries = platform.calls.slice(-(failedNow + 1)).filter((c) => c === target).length;
        if (tries > 1) counts.actuatorRetries! += tries - 1;
        if (status.actuatorError === null && platform.replicas === target) counts.actuatorRecovered!++;
        else if (status.actuatorError === null) violations.push(`round ${round}: the actuator failed ${failedNow} times, the target ${target} was not reached, and status() shows no error`);
      }
      if (platform.replicas < MIN || platform.replicas > MAX) violations.push(`round ${round}: the platform was scaled to ${platform.replicas}, outside ${MIN}..${MAX}`);
      if (platform.calls.some((c) => c < MIN || c > MAX)) violations.push(`round ${round}: a scale call outside the bounds`);
      clock.advance(INTERVAL_MS);
    }
    if (counts.actuatorFailures! > 0 && counts.actuatorRetries === 0) violations.push('the actuator failed but no call was retried');
    return {
      name: 'autoscaler-faults',
      did: `${rounds} rounds of the live controller on a manual clock; each round the SQL source answered one of ${[...new Set(MODES)].join(', ')} (seeded); the platform refused runs of 1-3 scale calls now and then`,
      durationMs: performance.now() - started,
      counts: { ...counts, scaleCalls: platform.calls.length },
      violations: violations.slice(0, 20),
      notes: violations.length > 20 ? [`${violations.length - 20} more violations not listed`] : [],
    };
  } finally {
    await controller.stop();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end();
  }
}

const LIVE_MIN = 1;
const LIVE_MAX = 3;
const LIVE_FALLBACK = 2;

/**
 * The same faults on a running system: `startSystem` with the autoscaler on (0.5 s rounds), a
 * worker service whose only source is a real SQL source on a table the scenario rewrites in
 * phases (a good value, a huge one, NaN, a value that is not a number, a negative, a good one
 * again). Every decision the live controller makes is checked against min..max, and a run of
 * failed reads must end at the fallback count; the supervisor must never be asked for a count
 * outside the bounds (it would refuse with TIDE_SUPERVISOR_SCALE_INVALID).
 */
export async function liveFaults(options: ScenarioOptions): Promise<ScenarioResult> {
  const phaseMs = options.full ? 10_000 : 3_000;
  // failing: the source refuses the value (a failed read); invalid: the source passes it on
  // and the core must refuse it (InvalidMetric) and hold
  const phases: Array<{ mode: string; value: string; failing: boolean; invalid?: boolean }> = [
    { mode: 'ok', value: '100', failing: false },
    { mode: 'huge', value: '1e300', failing: false },
    { mode: 'nan', value: 'NaN', failing: true },
    { mode: 'text', value: 'lots', failing: true },
    { mode: 'negative', value: '-40', failing: false, invalid: true },
    { mode: 'ok', value: '10', failing: false },
  ];
  const started = performance.now();
  const violations: string[] = [];
  const schema = `chaos_${randomBytes(5).toString('hex')}`;
  const table = `"${schema}".fault`;
  const db = new pg.Pool({ connectionString: options.databaseUrl, max: 1 });
  await db.query(`CREATE SCHEMA "${schema}"`);
  await db.query(`CREATE TABLE ${table} (value text)`);
  await db.query(`INSERT INTO ${table} VALUES ('0')`);
  const counts: Record<string, number> = { liveDecisions: 0, liveOutOfBounds: 0, liveFallbacks: 0, liveFailedReads: 0, liveMaxDesired: 0 };
  const end = new AbortController();
  let chaos: Awaited<ReturnType<typeof startChaosSystem>> | undefined;
  try {
    chaos = await startChaosSystem({
      databaseUrl: options.databaseUrl,
      api: { replicas: 1, max: 1 },
      worker: { replicas: 1, max: LIVE_MAX, concurrency: 4 },
      autoscale: { interval_seconds: 0.5, read_timeout_seconds: 1 },
      workerScale: {
        policies: [{ kind: 'target', metric: 'queue_depth', type: 'average', target: 50 }],
        fallback: { failureThreshold: 3, replicas: LIVE_FALLBACK },
        behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
      },
      workerSources: { faulty: { kind: 'postgres', connection_string: options.databaseUrl, query: `SELECT value::float8 FROM ${table}`, metric: 'queue_depth', timeout_ms: 1_000 } },
      log: (l) => options.log(`  system: ${l}`),
    });
    const autoscaler = chaos.system.autoscaler;
    if (!autoscaler) throw new Error('the system runs no autoscaler for a worker with a scale block');
    let phase = phases[0]!;
    let failedInARow = 0;
    const seenDesired: number[] = [];
    autoscaler.controller.on('decision', (r: DecisionRecord) => {
      counts.liveDecisions!++;
      const failed = r.errors.some((e) => e.source !== 'actuator');
      if (failed) counts.liveFailedReads!++;
      failedInARow = failed ? failedInARow + 1 : 0;
      seenDesired.push(r.desired);
      counts.liveMaxDesired = Math.max(counts.liveMaxDesired!, r.desired);
      if (r.desired < LIVE_MIN || r.desired > LIVE_MAX) counts.liveOutOfBounds!++, violations.push(`live (${phase.mode}): desired ${r.desired} outside ${LIVE_MIN}..${LIVE_MAX}`);
      if (failedInARow >= 3) {
        counts.liveFallbacks!++;
        if (r.desired !== LIVE_FALLBACK) violations.push(`live (${phase.mode}): ${failedInARow} failed reads in a row, desired ${r.desired}, not the fallback ${LIVE_FALLBACK}`);
      } else if (failed && r.desired < r.current) violations.push(`live (${phase.mode}): scaled down from ${r.current} to ${r.desired} on a failed read`);
    });
    for (const p of phases) {
      phase = p;
      await db.query(`UPDATE ${table} SET value = $1`, [p.value]);
      options.log(`  live autoscaler: the source now answers ${p.mode} (${p.value})`);
      await sleep(phaseMs, end.signal);
      const worker = chaos.system.supervisor.ps().services.find((s) => s.name === 'worker')!;
      if (worker.desired < LIVE_MIN || worker.desired > LIVE_MAX) violations.push(`live (${p.mode}): the worker service was set to ${worker.desired}`);
      const status = autoscaler.status()[0];
      if (p.failing && (status?.failingSources.length ?? 0) === 0) violations.push(`live (${p.mode}): the failing source is not shown in the autoscaler status`);
      const last = status?.lastDecision;
      if (p.invalid && !last?.reasons.some((r) => r.code === 'InvalidMetric')) violations.push(`live (${p.mode}): the last decision does not say InvalidMetric: ${JSON.stringify(last?.reasons.map((r) => r.code))}`);
      if (p.invalid && last && last.desired < last.current) violations.push(`live (${p.mode}): scaled down from ${last.current} to ${last.desired} on an invalid value`);
      if (status?.actuatorError?.code === 'TIDE_SUPERVISOR_SCALE_INVALID') violations.push(`live (${p.mode}): the supervisor refused a count: ${status.actuatorError.message}`);
    }
    if (counts.liveMaxDesired! < LIVE_MAX) violations.push(`live: the huge value never took the worker to its max ${LIVE_MAX} (desired at most ${counts.liveMaxDesired})`);
    if (counts.liveFallbacks === 0) violations.push('live: three phases of failed reads never reached the fallback');
    return {
      name: 'autoscaler-faults',
      did: `${((phases.length * phaseMs) / 1000).toFixed(0)} s of the live autoscaler in a running system (0.5 s rounds, worker 1..${LIVE_MAX}, fallback ${LIVE_FALLBACK}) while its SQL source answered ${phases.map((p) => p.mode).join(', ')}`,
      durationMs: performance.now() - started,
      counts,
      violations: violations.slice(0, 20),
      notes: [],
    };
  } finally {
    end.abort();
    await chaos?.stop();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end();
  }
}
