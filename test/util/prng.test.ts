// The seeded generator: same seed, same stream; different seeds differ; widths of the kernel-shaped draws.
import { describe, expect, it } from "vitest";
import { Prng, seedFromString } from "../../src/util/prng";

describe("Prng", () => {
  it("is deterministic for a seed and differs between seeds", () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    const sb = Array.from({ length: 8 }, () => b.nextU32());
    const sc = Array.from({ length: 8 }, () => c.nextU32());
    expect(sb, "same seed: got a different stream").toEqual(sa);
    expect(sc, "seeds 42 and 43 gave the same stream").not.toEqual(sa);
  });

  it("text seeds hash to numbers; clone continues the same stream", () => {
    expect(new Prng("hello").seed).toBe(seedFromString("hello"));
    const p = new Prng("x");
    p.nextU32();
    const q = p.clone();
    expect(q.nextU32()).toBe(p.nextU32());
  });

  it("draws have the kernel widths and look uniform", () => {
    const p = new Prng(1);
    let hi = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u16 = p.getRandomU16();
      expect(u16).toBeGreaterThanOrEqual(0);
      expect(u16).toBeLessThanOrEqual(0xffff);
      if (u16 >= 0x8000) hi++;
      const u32 = p.prandomU32();
      expect(u32 >>> 0).toBe(u32);
      const f = p.random();
      expect(f >= 0 && f < 1).toBe(true);
    }
    expect(Math.abs(hi / n - 0.5), `upper-half share: got ${hi / n}, want about 0.5`).toBeLessThan(0.02);
    expect(p.draws).toBe(3 * n);
  });
});
