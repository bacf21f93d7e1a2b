/**
 * The simulator's one source of randomness: sfc32 (Chris Doty-Humphrey's "small fast counting"
 * generator, 128 bits of uint32 state), seeded from one integer. Every draw of a scenario goes
 * through one instance in a fixed order, so a seed names a run exactly.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** The second output of the last Box-Muller pair, used on the next normal() call. */
  private spare = Number.NaN;

  constructor(seed: number) {
    // splitmix32 spreads the seed over the state so that nearby seeds give unrelated streams.
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** Standard normal (Box-Muller, both outputs used). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = Number.NaN;
      return v;
    }
    const u = 1 - this.float(); // (0, 1]: log() stays finite
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A Poisson draw: Knuth's product method for small means, a rounded normal above `normalAbove`. */
  poisson(mean: number, normalAbove = 30): number {
    if (mean <= 0) return 0;
    if (mean > normalAbove) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
    const limit = Math.exp(-mean);
    let k = 0;
    let p = this.float();
    while (p > limit) {
      k++;
      p *= this.float();
    }
    return k;
  }
}
