/**
 * Generates the example scenarios' arrival traces (synthetic, seeded: rerunning it rewrites the
 * same files). Run: `node --import tsx examples/scenarios/generate.ts`.
 *
 * Each trace is a rate curve sampled with Poisson counts per step.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Rng } from '../../src/sim/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const rng = new Rng(2026);

function write(name: string, step: number, steps: number, rate: (t: number) => number): void {
  const rows = ['t,count'];
  for (let i = 0; i < steps; i++) rows.push(`${i * step},${rng.poisson(rate(i * step) * step, 50)}`);
  writeFileSync(path.join(here, 'traces', `${name}.csv`), `${rows.join('\n')}\n`);
}

// flash sale: 15 jobs/s, x8 for four minutes from minute 20, over an hour
write('flash-sale', 1, 3600, (t) => (t >= 1200 && t < 1440 ? 120 : 15));

// office hours: 12 h from 06:00, a morning rise, a lunch dip and an evening fall (jobs/s)
write('office-hours', 60, 720, (t) => {
  const h = 6 + t / 3600;
  const day = Math.max(0, Math.sin(((h - 6) / 14) * Math.PI));
  const lunch = h > 12 && h < 13.5 ? 0.75 : 1;
  return 2 + 48 * day * lunch;
});

// nightly batch: 30,000 jobs at 00:00 and 20,000 at 01:00 over a trickle of 2 jobs/s, 2 h in 10 s steps
write('nightly-batch', 10, 720, (t) => (t === 0 ? 3000 : t === 3600 ? 2000 : 2));

// scale to zero: idle most of the time, a few minutes of work every half hour, 2 h in 1 s steps
write('scale-to-zero', 1, 7200, (t) => (t % 1800 >= 600 && t % 1800 < 840 ? 6 : 0));
