// Tuples: inversion (nf_ct_invert_tuple, ICMP invmap), packing, and tuples read from ICMP quotes.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  icmpTypeOf,
  invertTuple,
  makeTuple,
  packetTuple,
  quoteTuple,
  tupleEqual,
  tupleKey,
} from "../../src/conntrack/tuple";
import { icmp, icmpError, udp } from "./packets";

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });

describe("invertTuple", () => {
  it("is an involution for port protocols and swaps addresses and ports", () => {
    fc.assert(
      fc.property(u32, u32, u16, u16, fc.constantFrom(6, 17, 132, 136), (s, d, sp, dp, p) => {
        const t = makeTuple(s, d, p, sp, dp);
        const inv = invertTuple(t)!;
        expect([inv.src, inv.dst, inv.srcU, inv.dstU]).toEqual([d >>> 0, s >>> 0, dp, sp]);
        expect(tupleEqual(invertTuple(inv)!, t)).toBe(true);
      }),
    );
  });

  it("maps ICMP request <-> reply types, keeps id and code; other types have no inverse", () => {
    const echo = makeTuple(1, 2, 1, 0x1234, (8 << 8) | 0);
    expect(icmpTypeOf(invertTuple(echo)!)).toBe(0);
    expect(invertTuple(echo)!.srcU).toBe(0x1234);
    for (const [a, b] of [
      [13, 14],
      [15, 16],
      [17, 18],
    ]) {
      expect(icmpTypeOf(invertTuple(makeTuple(1, 2, 1, 1, a << 8))!)).toBe(b);
      expect(icmpTypeOf(invertTuple(makeTuple(1, 2, 1, 1, b << 8))!)).toBe(a);
    }
    for (const type of [3, 5, 9, 11, 12, 19])
      expect(invertTuple(makeTuple(1, 2, 1, 1, type << 8))).toBeUndefined();
  });
});

describe("tupleKey", () => {
  it("differs whenever the tuple or the zone differs", () => {
    fc.assert(
      fc.property(u32, u32, u16, u16, u16, u32, u16, (s, d, sp, dp, z, s2, z2) => {
        const t = makeTuple(s, d, 17, sp, dp);
        expect(tupleKey(t, z) === tupleKey(makeTuple(s2, d, 17, sp, dp), z2)).toBe(
          s2 >>> 0 === s >>> 0 && z === z2,
        );
      }),
    );
    expect(tupleKey(makeTuple(1, 2, 6, 3, 4), 0)).not.toBe(tupleKey(makeTuple(1, 2, 17, 3, 4), 0));
  });
});

describe("tuples from packets and quotes", () => {
  it("reads the echo id from the ICMP header and ports from UDP", () => {
    const t = packetTuple(icmp("192.0.2.2", "192.0.2.1", 8, 4660))!;
    expect([t.srcU, t.dstU]).toEqual([4660, 8 << 8]);
    const u = packetTuple(udp("192.0.2.2:47245", "192.0.2.1:9998"))!;
    expect([u.protonum, u.srcU, u.dstU]).toEqual([17, 47245, 9998]);
  });

  it("reads the quoted packet's tuple, refusing fragments and short quotes", () => {
    const q = icmpError("192.0.2.1", "192.0.2.2", 3, 3, udp("192.0.2.2:47245", "192.0.2.1:9998"));
    const quote = q.l4.kind === "icmp" ? q.l4.quote! : undefined;
    const t = quoteTuple(quote!)!;
    expect([t.srcU, t.dstU, t.protonum]).toEqual([47245, 9998, 17]);
    expect(quoteTuple({ ...quote!, l4: quote!.l4.slice(0, 3) })).toBeUndefined();
    expect(quoteTuple({ ...quote!, ip: { ...quote!.ip, fragOffset: 8 } })).toBeUndefined();
  });
});
