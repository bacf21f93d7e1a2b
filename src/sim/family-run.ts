/**
 * Running a generated family: each member's jobs drawn from the family seed, every policy of
 * `FAMILY_POLICIES` run over them, and the figures the judge (`score.ts`) needs. Baseline
 * figures can come from a cache, since they do not change when the policy under test does.
 */
import { type FamilyMember, FAMILY_POLICIES } from './family.js';
import { drawJobs } from './jobs.js';
import { type PolicyName, runPolicy } from './run.js';
import type { PolicyFigures, ScenarioRuns } from './score.js';

/** Baseline figures by scenario name and policy (a JSON-friendly cache). */
export type BaselineCache = Record<string, Record<string, PolicyFigures>>;

/** Runs one member through the policies; the cached ones are not run again (and the cache is filled). */
export async function runMember(m: FamilyMember, seed: number, cache?: BaselineCache, policies: readonly PolicyName[] = FAMILY_POLICIES): Promise<ScenarioRuns> {
  const loaded = { scenario: m.scenario, jobs: drawJobs(m.scenario, m.trace, seed) };
  const cached = cache?.[m.scenario.name] ?? {};
  const runs: Record<string, PolicyFigures> = {};
  for (const name of policies) {
    const hit = name === 'tide' ? undefined : cached[name];
    if (hit) {
      runs[name] = hit;
      continue;
    }
    const r = (await runPolicy(name, loaded, { skipPercentiles: true })).result;
    runs[name] = { attainment: r.attainment, replicaSeconds: r.replicaSeconds, flaps: r.flaps };
    if (cache && name !== 'tide') (cache[m.scenario.name] ??= {})[name] = runs[name]!;
  }
  return { name: m.scenario.name, attainment: m.scenario.slo.attainment, traceSeconds: loaded.jobs.traceSeconds, params: { ...m.params }, runs };
}
