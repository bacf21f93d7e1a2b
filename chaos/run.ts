/**
 * `npm run test:chaos [-- --full] [--only name] [--json] [--seed n] [--no-report]`: runs the
 * chaos scenarios against a real system, prints progress, writes docs/reliability.md, and
 * exits 1 when an invariant was violated (2 on bad arguments).
 *
 * The database: DATABASE_URL when set, else an embedded PostgreSQL of the run's own (in a
 * temporary directory, removed afterwards).
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/db/embedded.js';
import { renderReport } from './report.js';
import { SCENARIOS } from './scenarios/index.js';
import type { ScenarioResult } from './types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        full: { type: 'boolean', default: false },
        only: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
        seed: { type: 'string', default: '7' },
        'no-report': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`usage: npm run test:chaos -- [--full] [--only <name>]... [--json] [--seed n] [--no-report]\nscenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
    return 0;
  }
  const seed = Number(values.seed);
  const unknown = (values.only ?? []).filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (!Number.isInteger(seed) || unknown.length > 0) {
    process.stderr.write(`${unknown.length > 0 ? `no scenario ${unknown.join(', ')}; the scenarios are ${SCENARIOS.map((s) => s.name).join(', ')}` : `--seed takes a whole number`}\n`);
    return 2;
  }
  const chosen = values.only ? SCENARIOS.filter((s) => values.only!.includes(s.name)) : SCENARIOS;
  const out = values.json ? process.stderr : process.stdout;
  const log = (line: string) => out.write(`${line}\n`);

  let embedded: EmbeddedDatabase | undefined;
  let stateDir: string | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    stateDir = await mkdtemp(path.join(tmpdir(), 'tide-chaos-db-'));
    log('DATABASE_URL is not set: starting an embedded PostgreSQL for the run');
    embedded = await startEmbeddedPostgres({ stateDir });
    databaseUrl = embedded.url;
  }
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of chosen) {
      log(`${scenario.name}: ${scenario.checks}`);
      let result: ScenarioResult;
      const started = performance.now();
      try {
        result = await scenario.run({ databaseUrl, full: values.full, seed, log });
      } catch (err) {
        result = { name: scenario.name, did: 'did not complete', durationMs: performance.now() - started, counts: {}, violations: [`the scenario threw: ${(err as Error).stack ?? String(err)}`], notes: [] };
      }
      results.push(result);
      log(`${scenario.name}: ${result.violations.length === 0 ? 'pass' : 'FAIL'} in ${(result.durationMs / 1000).toFixed(0)} s; ${JSON.stringify(result.counts)}`);
      for (const v of result.violations) log(`  violation: ${v}`);
      for (const n of result.notes) log(`  note: ${n}`);
    }
  } finally {
    await embedded?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    // as root the data lives outside the state directory (where the postgres user reaches it)
    if (embedded) await rm(embedded.dataDir, { recursive: true, force: true });
  }
  if (!values['no-report'] && !values.only) {
    await writeFile(path.join(ROOT, 'docs', 'reliability.md'), renderReport(results, { full: values.full, seed, at: new Date(), checks: Object.fromEntries(chosen.map((s) => [s.name, s.checks])) }));
    log('wrote docs/reliability.md');
  }
  if (values.json) process.stdout.write(`${JSON.stringify(results)}\n`);
  return results.every((r) => r.violations.length === 0) ? 0 : 1;
}

process.exitCode = await main();
