// The family chart: one mark per scenario, placed by cost ratio (log) and attainment against the
// SLO, inside the drawing however far off the axes a scenario lies; misses drawn as crosses.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { familyMarks, renderFamilyChart } from '../../src/sim/family-chart.js';
import { type ScenarioRuns, summarize } from '../../src/sim/score.js';

const scenario = (name: string, shape: string, tide: number, tideCost: number, hpa: number): ScenarioRuns => ({
  name,
  attainment: 0.95,
  traceSeconds: 3600,
  params: { shape },
  runs: { tide: { attainment: tide, replicaSeconds: tideCost, flaps: 0 }, hpa: { attainment: hpa, replicaSeconds: 100, flaps: 0 } },
});

const family = [
  scenario('cheaper', 'diurnal', 0.99, 50, 0.96),
  scenario('dearer', 'on-off', 0.96, 200, 0.96),
  scenario('far-off', 'sawtooth', 1, 10_000, 0.96), // 100x: past the axis
  scenario('missed', 'flash-crowd', 0.5, 80, 0.96), // 45 points under: past the axis
  scenario('unranked', 'mixture', 0.9, 80, 0.92), // no baseline meets: no cost ratio
];
const slos = new Map(family.map((f) => [f.name, f.attainment]));

test('marks: cheaper sits left of dearer, better attainment higher; everything inside the drawing', () => {
  const marks = new Map(familyMarks(family).map((m) => [m.name, m]));
  assert.equal(marks.size, family.length);
  assert.ok(marks.get('cheaper')!.x < marks.get('dearer')!.x);
  assert.ok(marks.get('cheaper')!.y < marks.get('dearer')!.y, 'four points over the SLO is drawn above one');
  for (const m of marks.values()) assert.ok(m.x > 0 && m.x < 900 && m.y > 0 && m.y < 560, JSON.stringify(m));
  assert.equal(marks.get('far-off')!.clipped, true);
  assert.equal(marks.get('missed')!.clipped, true);
  assert.equal(marks.get('missed')!.met, false);
  assert.equal(marks.get('cheaper')!.clipped, false);
  assert.equal(marks.get('unranked')!.unranked, true);
  assert.ok(marks.get('unranked')!.x > marks.get('far-off')!.x, 'the unranked strip is right of the axis');
});

test('the SVG: one titled mark per scenario, the summary line, the same bytes every time', () => {
  const s = summarize(family, slos);
  const svg = renderFamilyChart('five scenarios', family, s);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.endsWith('</svg>'));
  for (const f of family) assert.equal(svg.split(`<title>${f.name}</title>`).length - 1, 1, f.name);
  assert.match(svg, /SLO met on 3 of 4 where a baseline meets it/);
  assert.equal(renderFamilyChart('five scenarios', family, s), svg);
  // well-formed enough for a browser: no attribute twice on one element
  for (const tag of svg.match(/<[a-z]+ [^>]*>/g) ?? []) {
    const names = [...tag.matchAll(/ ([a-z-]+)="/g)].map((m) => m[1]);
    assert.equal(new Set(names).size, names.length, tag);
  }
  // a miss is a cross (a path), not a dot
  assert.match(svg, /<path d="M[^"]+" stroke="[^"]+" stroke-width="2"><title>missed<\/title>/);
});
