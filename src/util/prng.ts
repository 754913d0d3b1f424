/**
 * A small seeded pseudo-random generator standing in for the kernel's random sources, so that every randomised
 * choice of a run (NAT port offsets, connection ids) is reproducible from `--seed`.
 *
 * The kernel draws from `get_random_u16()`/`get_random_u32()` (drivers/char/random.c, 6.x) and, before 6.1,
 * `prandom_u32()` (lib/random32.c); their streams cannot be reproduced (they are seeded from hardware entropy),
 * so the values here only have the same *shape* (width and uniformity), not the same numbers. All consumers
 * share one stream, in call order, like the kernel's per-CPU batches on a single CPU.
 *
 * Algorithm: xoshiro128** (Blackman and Vigna, 2018) seeded through splitmix32; 32-bit arithmetic only.
 * Leaves out on purpose: cryptographic quality, per-CPU batching, reseeding.
 */

/** FNV-1a over the UTF-16 code units of a text seed, so `--seed hello` is as good as `--seed 42`. */
export function seedFromString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** splitmix32 step: returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) >>> 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return [s, z];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Prng {
  /** The seed this generator started from (after string hashing). */
  readonly seed: number;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Values drawn so far (for traces and tests). */
  draws = 0;

  constructor(seed: number | string = 0) {
    this.seed = typeof seed === "string" ? seedFromString(seed) : Math.trunc(seed) >>> 0;
    let st = this.seed;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [n, z] = splitmix32(st);
      st = n;
      out.push(z);
    }
    [this.s0, this.s1, this.s2, this.s3] = out;
    // xoshiro's state must not be all zero; splitmix32 makes that practically impossible, but be exact.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next raw 32-bit output (xoshiro128**). */
  nextU32(): number {
    this.draws++;
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** get_random_u32(). */
  getRandomU32(): number {
    return this.nextU32();
  }

  /** get_random_u16() (6.1 and later NAT port offsets): the low 16 bits of one draw. */
  getRandomU16(): number {
    return this.nextU32() & 0xffff;
  }

  /** prandom_u32() (NAT port offsets up to 6.0, secure_port stand-in). */
  prandomU32(): number {
    return this.nextU32();
  }

  /** A float in [0, 1), for APIs that take `() => number` (e.g. ConntrackOptions.rng). */
  random(): number {
    return this.nextU32() / 0x100000000;
  }

  /** An independent generator with the same current state (for what-if runs). */
  clone(): Prng {
    const p = new Prng(this.seed);
    p.s0 = this.s0;
    p.s1 = this.s1;
    p.s2 = this.s2;
    p.s3 = this.s3;
    p.draws = this.draws;
    return p;
  }
}
