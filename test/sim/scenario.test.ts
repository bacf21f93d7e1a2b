// Scenario and trace loading: good files load; bad ones give coded errors naming the file,
// the line and the field. Files are written to a temporary directory, removed afterwards.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { TideError } from '../../src/errors.js';
import { loadScenario, loadTrace, parseScenario, parseTrace } from '../../src/sim/scenario.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tide-sim-scenario-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = `# a comment
name: tiny
trace: tiny.csv
step_seconds: 1
service_time: { dist: lognormal, mean_ms: 500, cv: 2.0 }
concurrency: 8
startup_seconds: 2
initial_replicas: 1
min_replicas: 1
max_replicas: 40
slo: { wait_seconds: 5, attainment: 0.99 }
`;

function expectError(fn: () => unknown, code: string, where: { line?: number; field?: string; file?: string }): TideError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TideError, `not a TideError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const [k, v] of Object.entries(where)) assert.equal(err.where?.[k as keyof typeof where], v, `${k} in ${JSON.stringify(err.where)}: ${err.message}`);
    return err;
  }
  assert.fail('expected an error');
}

test('a good scenario loads, in seconds, with its trace resolved next to it', () => {
  const file = path.join(dir, 'good.yaml');
  writeFileSync(file, GOOD);
  writeFileSync(path.join(dir, 'tiny.csv'), 't,count\n0,3\n1,0\n2,5\n');
  const s = loadScenario(file);
  assert.equal(s.name, 'tiny');
  assert.deepEqual(s.serviceTime, { dist: 'lognormal', meanSeconds: 0.5, cv: 2 });
  assert.equal(s.traceFile, path.join(dir, 'tiny.csv'));
  assert.equal(s.scale, 1);
  const trace = loadTrace(s);
  assert.deepEqual(Array.from(trace.t), [0, 1, 2]);
  assert.deepEqual(Array.from(trace.count), [3, 0, 5]);
});

test('a malformed field names the file, its line and the field', () => {
  const text = GOOD.replace('concurrency: 8', 'concurrency: eight');
  const err = expectError(() => parseScenario(text, 'bad.yaml'), 'TIDE_SCENARIO_INVALID', { file: 'bad.yaml', line: 6, field: 'concurrency' });
  assert.match(err.message, /concurrency/);
});

test('a nested field inside a flow map is found: slo.attainment above 1', () => {
  const text = GOOD.replace('attainment: 0.99', 'attainment: 99');
  expectError(() => parseScenario(text, 'bad.yaml'), 'TIDE_SCENARIO_INVALID', { line: 11, field: 'slo.attainment' });
});

test('an unknown field (a typo) is named with its line', () => {
  const text = GOOD.replace('startup_seconds: 2', 'startup_second: 2');
  const err = expectError(() => parseScenario(text, 'bad.yaml'), 'TIDE_SCENARIO_INVALID', { line: 7, field: 'startup_second' });
  assert.match(err.message, /did you mean "startup_seconds"/);
});

test('a missing field is named (at its parent, the top level)', () => {
  const text = GOOD.replace('step_seconds: 1\n', '');
  expectError(() => parseScenario(text, 'bad.yaml'), 'TIDE_SCENARIO_INVALID', { field: 'step_seconds' });
});

test('an unknown service time distribution names service_time.dist', () => {
  const text = GOOD.replace('dist: lognormal', 'dist: weibull');
  expectError(() => parseScenario(text, 'bad.yaml'), 'TIDE_SCENARIO_INVALID', { line: 5, field: 'service_time.dist' });
});

test('bounds that contradict each other name the field at fault', () => {
  expectError(() => parseScenario(GOOD.replace('max_replicas: 40', 'max_replicas: 0'), 'b.yaml'), 'TIDE_SCENARIO_INVALID', { field: 'max_replicas', line: 10 });
  expectError(() => parseScenario(GOOD.replace('min_replicas: 1', 'min_replicas: 50'), 'b.yaml'), 'TIDE_SCENARIO_INVALID', { field: 'max_replicas', line: 10 });
  expectError(() => parseScenario(GOOD.replace('initial_replicas: 1', 'initial_replicas: 41'), 'b.yaml'), 'TIDE_SCENARIO_INVALID', { field: 'initial_replicas', line: 8 });
});

test('YAML that does not parse names its line', () => {
  expectError(() => parseScenario('name: x\ntrace: [a\nstep_seconds: 1\n', 'broken.yaml'), 'TIDE_SCENARIO_INVALID', { file: 'broken.yaml' });
});

test('a missing scenario file and a missing trace file have their own codes', () => {
  expectError(() => loadScenario(path.join(dir, 'nope.yaml')), 'TIDE_SCENARIO_NOT_FOUND', { file: path.join(dir, 'nope.yaml') });
  const file = path.join(dir, 'lost.yaml');
  writeFileSync(file, GOOD.replace('tiny.csv', 'lost.csv'));
  const err = expectError(() => loadTrace(loadScenario(file)), 'TIDE_SCENARIO_TRACE_MISSING', { file, field: 'trace' });
  assert.match(err.message, /lost\.csv/);
});

test('trace rows: errors name the line; header and blank lines are allowed', () => {
  assert.equal(parseTrace('0,1\n\n1,2\n', 'a.csv').t.length, 2);
  expectError(() => parseTrace('t,count\n0,1\n1,x\n', 'a.csv'), 'TIDE_SCENARIO_TRACE_INVALID', { file: 'a.csv', line: 3 });
  expectError(() => parseTrace('t,count\n0,1\n1,-2\n', 'a.csv'), 'TIDE_SCENARIO_TRACE_INVALID', { line: 3, field: 'count' });
  expectError(() => parseTrace('t,count\n5,1\n5,2\n', 'a.csv'), 'TIDE_SCENARIO_TRACE_INVALID', { line: 3, field: 't' });
  expectError(() => parseTrace('t,count\n0,1,7\n', 'a.csv'), 'TIDE_SCENARIO_TRACE_INVALID', { line: 2 });
  expectError(() => parseTrace('t,count\n', 'a.csv'), 'TIDE_SCENARIO_TRACE_INVALID', { file: 'a.csv' });
});
