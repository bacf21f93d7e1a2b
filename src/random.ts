/**
 * A small seeded generator (mulberry32): uniform in [0, 1), the same sequence for the same
 * seed. For reproducible load (the demo's arrivals, `tide load`'s `{{random}}`); the simulator
 * has its own longer-period generator in src/sim/rng.ts.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
