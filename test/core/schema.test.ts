// The `scale:` block schema: what it accepts, and errors that name the field path.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseServicePolicy } from '../../src/core/schema.js';
import { TideError } from '../../src/errors.js';

function failure(input: unknown): TideError {
  try {
    parseServicePolicy(input, { file: 'tide.yaml', line: 12, field: 'services.worker.scale' });
  } catch (err) {
    assert.ok(err instanceof TideError);
    assert.equal(err.code, 'TIDE_POLICY_INVALID');
    return err;
  }
  assert.fail('expected TIDE_POLICY_INVALID');
}

test('a full scale: block parses into a ServicePolicy', () => {
  const p = parseServicePolicy({
    min: 1,
    max: 40,
    policies: [
      { kind: 'slo', waitSeconds: 30, attainment: 0.95, concurrency: 8, startupSeconds: 20 },
      { kind: 'target', metric: 'cpu_utilization', type: 'utilization', target: 0.7 },
      { kind: 'steps', metric: 'queue_depth', up: [{ above: 1000, add: 5 }], down: [{ below: 100, remove: 2 }] },
    ],
    schedule: [{ cron: '0 22 * * *', min: 2, timezone: 'Europe/Paris', durationSeconds: 3600 }],
    behavior: { scaleDown: { stabilizationWindowSeconds: 120, policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] } },
    fallback: { failureThreshold: 3, replicas: 5 },
    activation: { metric: 'queue_depth', threshold: 0 },
    panic: { threshold: 2, windowSeconds: 6 },
  });
  assert.equal(p.policies.length, 3);
  assert.equal(p.policies[0]!.kind, 'slo');
  assert.deepEqual(parseServicePolicy({ min: 0, max: 3 }).policies, []);
});

test('errors name the field path under where the block came from', () => {
  const err = failure({ min: 1, max: 10, policies: [{ kind: 'slo', waitSeconds: 30, attainment: 1.5, concurrency: 8 }] });
  assert.equal(err.where?.field, 'services.worker.scale.policies[0].attainment');
  assert.equal(err.where?.file, 'tide.yaml');
  assert.equal(err.where?.line, 12);
});

test('unknown keys (a misspelling) are errors, not ignored', () => {
  const err = failure({ min: 1, max: 10, behavior: { scaleDown: { stabilisationWindowSeconds: 60 } } });
  assert.match(err.where?.field ?? '', /^services\.worker\.scale\.behavior\.scaleDown/);
});

test('min above max, a bad cron and a bad time zone are caught', () => {
  assert.equal(failure({ min: 5, max: 2 }).where?.field, 'services.worker.scale.min');
  assert.equal(failure({ min: 1, max: 2, schedule: [{ cron: '0 25 * * *', min: 2 }] }).where?.field, 'services.worker.scale.schedule[0].cron');
  assert.equal(
    failure({ min: 1, max: 2, schedule: [{ cron: '0 2 * * *', min: 2, timezone: 'Mars/Olympus' }] }).where?.field,
    'services.worker.scale.schedule[0].timezone',
  );
});

test('a step takes exactly one action, and the policy kind must be known', () => {
  assert.equal(
    failure({ min: 1, max: 2, policies: [{ kind: 'steps', metric: 'q', up: [{ above: 1, add: 1, set: 3 }] }] }).where?.field,
    'services.worker.scale.policies[0].up[0]',
  );
  assert.match(failure({ min: 1, max: 2, policies: [{ kind: 'magic' }] }).where?.field ?? '', /policies\[0\]/);
});
