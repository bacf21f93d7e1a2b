/**
 * The control loop over real PostgreSQL: the builtin source reads a real queue, the journal
 * writes real rows. The actuator is RecordingActuator, a test double of our own Actuator
 * interface (not of an external system): it records scale calls and can be told to fail.
 * Time is a ManualClock: retries and pauses move when the test advances it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';

import type { Actuator, Observed } from '../../src/actuators/types.js';
import { ManualClock } from '../../src/clock.js';
import { type ControlledService, Controller } from '../../src/controller/controller.js';
import { combineSamples } from '../../src/core/metrics.js';
import { type Journal, openJournal } from '../../src/controller/journal.js';
import { sloServicePolicy } from '../../src/core/slo.js';
import type { Decision, ServicePolicy } from '../../src/core/types.js';
import { TideError } from '../../src/errors.js';
import { type PostgresQueue, createPostgresQueue } from '../../src/runtime/queue/postgres.js';
import { createSource } from '../../src/sources/registry.js';
import type { MetricSource } from '../../src/sources/types.js';
import { type TestSchema, freshSchema } from '../helpers/db.js';

/** Test double of our Actuator interface: a platform that takes every scale at once. */
class RecordingActuator implements Actuator {
  desired: number;
  calls: Array<{ service: string; replicas: number; why: Decision }> = [];
  /** The next this many scale calls fail with TIDE_ACTUATOR_FAILED. */
  failNext = 0;
  /** The next this many observe calls fail. */
  observeFails = 0;
  closed = false;
  constructor(desired: number) {
    this.desired = desired;
  }
  async observe(): Promise<Observed> {
    if (this.observeFails > 0) {
      this.observeFails--;
      throw new TideError('TIDE_ACTUATOR_FAILED', 'injected failure reading the platform');
    }
    return { desired: this.desired, ready: this.desired };
  }
  async scale(service: string, replicas: number, why: Decision): Promise<void> {
    this.calls.push({ service, replicas, why });
    if (this.failNext > 0) {
      this.failNext--;
      throw new TideError('TIDE_ACTUATOR_FAILED', `injected failure scaling ${service} to ${replicas}`);
    }
    this.desired = replicas;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

let schema: TestSchema;
let queue: PostgresQueue;
let journal: Journal;

before(async () => {
  schema = await freshSchema('ctl');
  queue = await createPostgresQueue({ connectionString: schema.url, schema: schema.schema, poolSize: 2 });
  journal = await openJournal({ connectionString: schema.url, schema: schema.schema });
});

after(async () => {
  await journal.close();
  await queue.close();
  await schema.drop();
});

function builtin(queueName: string, name = `q-${queueName}`): MetricSource {
  return createSource({ kind: 'builtin', name, connection_string: schema.url, schema: schema.schema, queue: queueName, timeout_ms: 5_000 });
}

/** A builtin source on a port nothing listens on: every read fails for real (ECONNREFUSED). */
function unreachable(): MetricSource {
  return createSource({ kind: 'builtin', name: 'down', connection_string: 'postgres://x:y@127.0.0.1:1/db', queue: 'q', timeout_ms: 2_000 });
}

const depthSteps = (min: number, max: number, extra: Partial<ServicePolicy> = {}): ServicePolicy => ({
  min,
  max,
  policies: [{ kind: 'steps', metric: 'queue_depth', up: [{ above: 10, set: 3 }], down: [{ below: 1, set: min }] }],
  behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
  ...extra,
});

function controller(services: ControlledService[], clock: ManualClock, extra: Partial<ConstructorParameters<typeof Controller>[0]> = {}) {
  return new Controller({ services, journal, clock, urgentPollMs: 0, ...extra });
}

describe('controller rounds', () => {
  test('a round reads the real queue, decides, journals and applies', async () => {
    const clock = new ManualClock();
    await queue.enqueueMany(Array.from({ length: 25 }, () => ({ queue: 'round', handler: 'sleep', payload: { ms: 1 } })));
    const actuator = new RecordingActuator(1);
    const c = controller([{ name: 'w-round', policy: depthSteps(1, 5), sources: [{ name: 'queue', source: builtin('round') }], actuator }], clock);
    try {
      const [record] = await c.tick();
      assert.ok(record);
      assert.equal(record.current, 1);
      assert.equal(record.desired, 3);
      assert.equal(record.applied, true);
      assert.equal(record.metrics.queue_depth, 25);
      await c.settled();
      assert.deepEqual(actuator.calls.map((x) => x.replicas), [3]);
      const rows = await journal.list({ service: 'w-round' });
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.desired, 3);
      assert.equal(rows[0]!.metrics.queue_depth, 25);
      assert.ok(rows[0]!.reasons.length > 0);
      const status = c.status()[0]!;
      assert.equal(status.desired, 3);
      assert.equal(status.actuatorError, null);
      const metrics = await c.registry.metrics();
      assert.match(metrics, /tide_controller_desired_replicas\{service="w-round"\} 3/);
      assert.match(metrics, /tide_controller_decisions_total\{service="w-round",direction="up"\} 1/);
      assert.match(metrics, /tide_controller_tick_seconds_count 1/);
    } finally {
      await c.stop();
    }
    assert.equal(actuator.closed, true);
  });

  test('dry run decides and journals but never calls scale', async () => {
    const clock = new ManualClock();
    await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: 'dry', handler: 'sleep', payload: { ms: 1 } })));
    const actuator = new RecordingActuator(1);
    const c = controller([{ name: 'w-dry', policy: depthSteps(1, 5), sources: [{ name: 'queue', source: builtin('dry') }], actuator }], clock, { dryRun: true });
    try {
      for (let i = 0; i < 3; i++) {
        const [r] = await c.tick();
        clock.advance(1_000);
        assert.equal(r!.desired, 3);
        assert.equal(r!.applied, false);
        assert.equal(r!.dryRun, true);
      }
      await c.settled();
      assert.equal(actuator.calls.length, 0);
      const rows = await journal.list({ service: 'w-dry' });
      assert.equal(rows.length, 3);
      assert.ok(rows.every((r) => r.dryRun && !r.applied && r.desired === 3 && r.current === 1));
      assert.match(rows[0]!.reasons.at(-1)!.message, /Dry run/);
    } finally {
      await c.stop();
    }
  });

  test('a failing source holds the count, then falls back after N failures', async () => {
    const clock = new ManualClock();
    const actuator = new RecordingActuator(2);
    const policy = depthSteps(1, 6, { fallback: { failureThreshold: 3, replicas: 5 } });
    const c = controller([{ name: 'w-fail', policy, sources: [{ name: 'down', source: unreachable() }], actuator }], clock);
    try {
      const desired: number[] = [];
      for (let i = 0; i < 3; i++) {
        const [r] = await c.tick();
        await c.settled();
        desired.push(r!.desired);
        assert.equal(r!.errors[0]?.source, 'down');
        assert.equal(r!.errors[0]?.code, 'TIDE_SOURCE_FAILED');
        clock.advance(5_000);
      }
      assert.deepEqual(desired, [2, 2, 5]);
      assert.deepEqual(actuator.calls.map((x) => x.replicas), [5]);
      const status = c.status()[0]!;
      assert.equal(status.failingSources.length, 1);
      assert.equal(status.failingSources[0]!.count, 3);
      assert.match(await c.registry.metrics(), /tide_controller_source_failures_total\{service="w-fail",source="down"\} 3/);
      const rows = await journal.list({ service: 'w-fail', limit: 1 });
      assert.equal(rows[0]!.limitedBy, 'FallbackReplicas');
    } finally {
      await c.stop();
    }
  });

  test('an actuator error is retried with exponential backoff and shown in status until it succeeds', async () => {
    const clock = new ManualClock();
    await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: 'retry', handler: 'sleep', payload: { ms: 1 } })));
    const actuator = new RecordingActuator(1);
    actuator.failNext = 2;
    const c = controller([{ name: 'w-retry', policy: depthSteps(1, 5), sources: [{ name: 'queue', source: builtin('retry') }], actuator }], clock, {
      retry: { baseMs: 500, maxMs: 10_000, attempts: 5 },
    });
    try {
      const firstError = once(c, 'actuator-error');
      await c.tick();
      await firstError;
      assert.equal(actuator.calls.length, 1);
      assert.equal(c.status()[0]!.actuatorError?.attempts, 1);
      assert.equal(c.status()[0]!.actuatorError?.code, 'TIDE_ACTUATOR_FAILED');
      clock.advance(499);
      assert.equal(actuator.calls.length, 1, 'no retry before the first backoff (500 ms)');
      const second = once(c, 'actuator-error');
      clock.advance(1);
      await second;
      assert.equal(actuator.calls.length, 2);
      assert.equal(c.status()[0]!.actuatorError?.attempts, 2);
      // a round while the retry waits shows the error in its journal row
      const [r] = await c.tick();
      assert.ok(r!.errors.some((e) => e.source === 'actuator' && e.code === 'TIDE_ACTUATOR_FAILED'));
      clock.advance(999);
      assert.equal(actuator.calls.length, 2, 'the second backoff is 1000 ms');
      const applied = once(c, 'applied');
      clock.advance(1);
      await applied;
      assert.equal(actuator.calls.length, 3);
      assert.equal(actuator.desired, 3);
      assert.equal(c.status()[0]!.actuatorError, null);
      assert.match(await c.registry.metrics(), /tide_controller_actuator_errors_total\{service="w-retry"\} 2/);
    } finally {
      await c.stop();
    }
  });

  test('a platform that cannot be observed: the round decides nothing, says why, and the error clears once it answers', async () => {
    const clock = new ManualClock();
    const actuator = new RecordingActuator(2);
    actuator.observeFails = 1;
    const c = controller([{ name: 'w-observe', policy: depthSteps(1, 5), sources: [{ name: 'queue', source: builtin('observe') }], actuator }], clock);
    try {
      const [r1] = await c.tick();
      assert.equal(r1!.applied, false);
      assert.equal(r1!.errors[0]?.source, 'actuator');
      assert.match(r1!.reasons[0]!.message, /did not report/);
      assert.equal(c.status()[0]!.actuatorError?.code, 'TIDE_ACTUATOR_FAILED');
      clock.advance(5_000);
      const [r2] = await c.tick();
      assert.equal(r2!.current, 2);
      assert.equal(r2!.errors.length, 0);
      assert.equal(c.status()[0]!.actuatorError, null);
      await c.settled();
      // the empty queue takes it down to min, now that the platform answers
      assert.deepEqual(actuator.calls.map((x) => x.replicas), [1]);
    } finally {
      await c.stop();
    }
  });

  test('a manual scale pauses autoscaling of that service for the configured time', async () => {
    const clock = new ManualClock();
    await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: 'pause', handler: 'sleep', payload: { ms: 1 } })));
    const actuator = new RecordingActuator(1);
    let manualAt: number | null = null;
    const c = controller(
      [{ name: 'w-pause', policy: depthSteps(1, 5), sources: [{ name: 'queue', source: builtin('pause') }], actuator, manualScaledAt: () => manualAt }],
      clock,
      { manualPauseMs: 60_000 },
    );
    try {
      manualAt = clock.now();
      const [r1] = await c.tick();
      await c.settled();
      assert.equal(r1!.paused, true);
      assert.equal(r1!.applied, false);
      assert.equal(actuator.calls.length, 0);
      assert.equal(c.status()[0]!.pausedUntil, manualAt + 60_000);
      clock.advance(59_000);
      const [r2] = await c.tick();
      assert.equal(r2!.paused, true);
      clock.advance(1_000);
      const [r3] = await c.tick();
      await c.settled();
      assert.equal(r3!.paused, false);
      assert.equal(r3!.applied, true);
      assert.deepEqual(actuator.calls.map((x) => x.replicas), [3]);
      assert.equal(c.status()[0]!.pausedUntil, null);
      // pause() directly, and resuming early
      c.pause('w-pause', clock.now() + 10_000);
      assert.equal(c.status()[0]!.pausedUntil, clock.now() + 10_000);
      c.pause('w-pause', null);
      assert.equal(c.status()[0]!.pausedUntil, null);
      assert.throws(() => c.pause('nope', 1), (err: TideError) => err.code === 'TIDE_CONTROLLER_UNKNOWN_SERVICE');
    } finally {
      await c.stop();
    }
  });

  test('a manual scale pauses at once: status() shows it before any round, and a target waiting behind the call in flight is dropped', async () => {
    const clock = new ManualClock();
    await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: 'gate', handler: 'sleep', payload: { ms: 1 } })));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // the first scale call waits for the gate, so the second round's target waits behind it
    const actuator = new (class extends RecordingActuator {
      override async scale(service: string, replicas: number, why: Decision): Promise<void> {
        if (this.calls.length === 0) await gate;
        await super.scale(service, replicas, why);
      }
    })(1);
    let manualAt: number | null = null;
    const policy: ServicePolicy = { min: 1, max: 5, policies: [{ kind: 'steps', metric: 'queue_depth', up: [{ above: 10, set: 3 }, { above: 30, set: 5 }] }] };
    const c = controller([{ name: 'w-gate', policy, sources: [{ name: 'queue', source: builtin('gate') }], actuator, manualScaledAt: () => manualAt }], clock, { manualPauseMs: 60_000 });
    try {
      const [r1] = await c.tick();
      assert.equal(r1!.desired, 3);
      await queue.enqueueMany(Array.from({ length: 20 }, () => ({ queue: 'gate', handler: 'sleep', payload: { ms: 1 } })));
      clock.advance(1_000);
      const [r2] = await c.tick();
      assert.equal(r2!.current, 3, 'the call in flight is the current count');
      assert.equal(r2!.desired, 5);
      assert.equal(r2!.applied, true);
      manualAt = clock.now();
      assert.equal(c.status()[0]!.pausedUntil, manualAt + 60_000, 'the pause shows before the next round');
      open();
      await c.settled();
      assert.deepEqual(actuator.calls.map((x) => x.replicas), [3], 'the waiting 5 was not applied after the manual scale');
    } finally {
      open();
      await c.stop();
    }
  });

  test('the count never leaves min..max, whatever the policy or the platform says', async () => {
    const clock = new ManualClock();
    await queue.enqueueMany(Array.from({ length: 50 }, () => ({ queue: 'bounds', handler: 'sleep', payload: { ms: 1 } })));
    const policy: ServicePolicy = {
      min: 2,
      max: 4,
      policies: [{ kind: 'steps', metric: 'queue_depth', up: [{ above: 10, set: 40 }] }],
    };
    // the platform runs 9, above max (a hand edit on the platform)
    const actuator = new RecordingActuator(9);
    const c = controller([{ name: 'w-bounds', policy, sources: [{ name: 'queue', source: builtin('bounds') }], actuator }], clock);
    try {
      for (let i = 0; i < 4; i++) {
        const [r] = await c.tick();
        await c.settled();
        assert.ok(r!.desired >= 2 && r!.desired <= 4, `desired ${r!.desired}`);
        clock.advance(20_000);
      }
      assert.ok(actuator.calls.every((x) => x.replicas >= 2 && x.replicas <= 4));
      assert.equal(actuator.desired, 4);
      // and below min
      actuator.desired = 0;
      const [low] = await c.tick();
      await c.settled();
      assert.ok(low!.desired >= 2 && low!.desired <= 4);
    } finally {
      await c.stop();
    }
  });

  test('the urgent poll runs a round at once when the oldest job age crosses the SLO wait, once per crossing', async () => {
    const clock = new ManualClock();
    const actuator = new RecordingActuator(1);
    const policy: ServicePolicy = { min: 1, max: 5, policies: [{ kind: 'slo', waitSeconds: 5, attainment: 0.95, concurrency: 2 }] };
    const c = controller(
      [{ name: 'w-urgent', policy, sources: [{ name: 'queue', source: builtin('urgent') }], actuator, urgentSource: builtin('urgent', 'urgent-poll') }],
      clock,
    );
    try {
      // a few finished jobs, so the SLO policy knows the service time (1 s each)
      await queue.enqueueMany(Array.from({ length: 4 }, () => ({ queue: 'urgent', handler: 'sleep', payload: { ms: 1 } })));
      for (const job of await queue.claim('w', ['urgent'], 4)) await queue.complete(job.id, 'w', null, 1_000);
      assert.deepEqual(await c.urgentPoll(), [], 'an empty queue triggers nothing');
      await queue.enqueue({ queue: 'urgent', handler: 'sleep', payload: { ms: 1 }, runAt: Date.now() - 2_000 });
      assert.deepEqual(await c.urgentPoll(), [], 'an age under the wait triggers nothing');
      await queue.enqueueMany(Array.from({ length: 30 }, () => ({ queue: 'urgent', handler: 'sleep', payload: { ms: 1 }, runAt: Date.now() - 30_000 })));
      const rounds = c.rounds;
      const decisions: number[] = [];
      c.on('decision', (r: { desired: number }) => decisions.push(r.desired));
      assert.deepEqual(await c.urgentPoll(), ['w-urgent']);
      assert.equal(decisions.length, 1);
      assert.ok(decisions[0]! > 1, `an SLO breach with a backlog scales out (desired ${decisions[0]})`);
      assert.equal(c.rounds, rounds, 'an urgent round is one service, not a full tick');
      assert.deepEqual(await c.urgentPoll(), [], 'still over the wait: no second trigger');
      assert.match(await c.registry.metrics(), /tide_controller_urgent_rounds_total\{service="w-urgent"\} 1/);
      await c.settled();
    } finally {
      await c.stop();
    }
  });

  test('start() runs rounds on the clock and stop() leaves no timer behind', async () => {
    const clock = new ManualClock();
    const actuator = new RecordingActuator(1);
    const c = controller([{ name: 'w-timer', policy: depthSteps(1, 5), sources: [{ name: 'queue', source: builtin('timer') }], actuator }], clock, {
      intervalMs: 1_000,
    });
    const seen: number[] = [];
    c.on('decision', (r: { at: number }) => seen.push(r.at));
    c.start();
    // the first round comes one interval after start, as in the simulator
    let next = once(c, 'tick');
    clock.advance(999);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(seen.length, 0);
    clock.advance(1);
    await next;
    // the next round is scheduled once the first has finished (after its promise settles)
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(clock.pending, 1);
    next = once(c, 'tick');
    clock.advance(1_000);
    await next;
    assert.equal(seen.length, 2);
    assert.equal(seen[1]! - seen[0]!, 1_000);
    await c.stop();
    assert.equal(clock.pending, 0);
  });
});

test('the journal lists newest first, filters by service and time, and prunes by age', async () => {
  const base = Date.UTC(2025, 5, 1);
  const row = (service: string, at: number, desired: number) => ({
    at, service, current: 1, desired, ready: 1, applied: true, dryRun: false, paused: false, limitedBy: null,
    reasons: [{ code: 'ScalingActive' as const, message: 'x' }], metrics: { queue_depth: desired }, errors: [],
  });
  await journal.insert(row('j-a', base, 2));
  await journal.insert(row('j-b', base + 1_000, 3));
  await journal.insert(row('j-a', base + 2_000, 4));
  const a = await journal.list({ service: 'j-a' });
  assert.deepEqual(a.map((r) => [r.desired, r.at]), [[4, base + 2_000], [2, base]]);
  assert.deepEqual((await journal.list({ service: 'j-a', limit: 1 })).map((r) => r.desired), [4]);
  assert.deepEqual((await journal.list({ since: base + 1_000 })).filter((r) => r.service.startsWith('j-')).map((r) => r.desired), [4, 3]);
  assert.equal(await journal.prune(base + 1_500), 2);
  assert.deepEqual((await journal.list({ service: 'j-a' })).map((r) => r.desired), [4]);
});

test('combineSamples sums depths and counters, takes the largest age, averages the rest', () => {
  const out = combineSamples([
    [
      { metric: 'queue_depth', value: 3, at: 1 },
      { metric: 'queue_oldest_age_seconds', value: 4, at: 1 },
      { metric: 'service_time_mean_seconds', value: 1, at: 1 },
    ],
    [
      { metric: 'queue_depth', value: 5, at: 2 },
      { metric: 'queue_oldest_age_seconds', value: 9, at: 2 },
      { metric: 'service_time_mean_seconds', value: 3, at: 2 },
      { metric: 'only_here', value: 7, at: 2 },
    ],
  ]);
  const byName = Object.fromEntries(out.map((s) => [s.metric, s.value]));
  assert.deepEqual(byName, { queue_depth: 8, queue_oldest_age_seconds: 9, service_time_mean_seconds: 2, only_here: 7 });
});

test('what the SLO policy learned survives a restart: a new controller on the same database goes on from the arrivals per minute the last one kept', async () => {
  const policy = sloServicePolicy({ waitSeconds: 10, attainment: 0.99, concurrency: 4, startupSeconds: 1, min: 1, max: 5 });
  const service = (actuator: Actuator): ControlledService => ({ name: 'w-memory', policy, sources: [{ name: 'queue', source: builtin('memory') }], actuator });
  const clock = new ManualClock();
  const minute = 60_000;
  const enqueue = (n: number) => queue.enqueueMany(Array.from({ length: n }, () => ({ queue: 'memory', handler: 'sleep', payload: { ms: 1 } })));
  const seasonOf = (memory: Record<string, Record<string, Record<string, unknown>>>) => Object.values(memory['w-memory'] ?? {})[0]?.season as { start: number; counts: number[] } | undefined;

  const first = controller([service(new RecordingActuator(1))], clock);
  try {
    // rounds on the minute: each reading covers exactly the minute that closes
    await first.tick(0);
    for (const [m, n] of [[1, 6], [2, 9], [3, 3]] as const) {
      await enqueue(n);
      await first.tick(m * minute);
    }
    // half a minute after the last save: only stop() keeps this round's count
    await enqueue(2);
    await first.tick(3 * minute + 30_000);
  } finally {
    await first.stop();
  }
  const kept = seasonOf(await journal.loadMemory()) as { start: number; counts: number[]; open: number } | undefined;
  assert.ok(kept, 'the memory was kept');
  assert.deepEqual(kept.counts, [6, 9, 3], 'each minute holds the jobs that arrived in it');
  assert.equal(kept.open, 2, 'what the last round counted was kept when the controller stopped');

  const second = controller([service(new RecordingActuator(1))], clock, { memory: await journal.loadMemory() });
  try {
    await enqueue(12);
    await second.tick(4 * minute);
  } finally {
    await second.stop();
  }
  const after = seasonOf(await journal.loadMemory());
  assert.equal(after?.start, kept.start, 'the same history, not a new one');
  assert.deepEqual(after?.counts, [6, 9, 3, 14]);
});
