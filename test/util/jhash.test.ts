// jhash/jhash2 (include/linux/jhash.h): Bob Jenkins' published lookup3 vectors, the word/byte agreement the
// kernel relies on, and reciprocal_scale against BigInt.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { jhash, jhash2, leU32, reciprocalScale, rol32 } from "../../src/util/jhash";

const text = (s: string) => new TextEncoder().encode(s);

describe("jhash (hashlittle)", () => {
  it("matches lookup3.c's driver5 vectors", () => {
    // lookup3.c driver5(): hashlittle("", 0, 0) = 0xdeadbeef; "Four score and seven years ago" -> 0x17770551
    // (initval 0) and 0xcd628161 (initval 1).
    const cases: [Uint8Array, number, number][] = [
      [text(""), 0, 0xdeadbeef],
      [text("Four score and seven years ago"), 0, 0x17770551],
      [text("Four score and seven years ago"), 1, 0xcd628161],
    ];
    for (const [key, init, want] of cases) {
      const got = jhash(key, init);
      expect(
        got,
        `jhash(${key.length} bytes, ${init}): got 0x${got.toString(16)}, want 0x${want.toString(16)}`,
      ).toBe(want);
    }
  });
});

describe("jhash2", () => {
  it("equals jhash over the little-endian bytes of the words (x86 kernels rely on this)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 9 }),
        fc.nat({ max: 0xffffffff }),
        (w, iv) => {
          const bytes = new Uint8Array(w.length * 4);
          w.forEach((x, i) => {
            for (let b = 0; b < 4; b++) bytes[i * 4 + b] = (x >>> (8 * b)) & 0xff;
          });
          expect(jhash2(w, iv)).toBe(jhash(bytes, iv));
        },
      ),
    );
  });

  it("of no words is the initial state", () => {
    expect(jhash2([], 5)).toBe((0xdeadbeef + 5) >>> 0);
  });
});

describe("helpers", () => {
  it("reciprocal_scale equals (val * ep_ro) >> 32 in 64-bit arithmetic", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (v, r) => {
        const want = Number((BigInt(v) * BigInt(r)) >> 32n);
        expect(reciprocalScale(v, r)).toBe(want);
      }),
    );
  });
  it("leU32 swaps bytes; rol32 rotates", () => {
    expect(leU32(0xc0000201)).toBe(0x010200c0);
    expect(rol32(0x80000001, 4)).toBe(0x18);
  });
});
