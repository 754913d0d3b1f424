import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  foldChecksum,
  internetChecksum,
  onesComplementSum,
  transportChecksum,
} from "../../src/wire/checksum";

/** Reference: 16-bit words, carries folded at every step (RFC 1071 §4.1). */
function naive(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) {
    sum += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe("internet checksum", () => {
  it("matches the RFC 1071 §3 example", () => {
    const b = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    const got = internetChecksum(b, 0, b.length);
    expect(got, `got 0x${got.toString(16)}, want 0x220d`).toBe(0x220d);
  });

  it("computes a known IPv4 header checksum and verifies to zero", () => {
    const hdr = Uint8Array.from(Buffer.from("450000730000400040110000c0a80001c0a800c7", "hex"));
    expect(internetChecksum(hdr, 0, 20)).toBe(0xb861);
    hdr[10] = 0xb8;
    hdr[11] = 0x61;
    expect(internetChecksum(hdr, 0, 20)).toBe(0);
  });

  it("agrees with a word-at-a-time reference for any bytes, offset and length", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.nat(8),
        fc.nat(8),
        (bytes, skip, trim) => {
          const off = Math.min(skip, bytes.length);
          const len = Math.max(0, bytes.length - off - trim);
          const got = foldChecksum(onesComplementSum(bytes, off, len));
          const want = naive(bytes, off, len);
          // 0x0000 and 0xffff are both "zero" in one's complement; the kernel's csum_fold yields the same.
          expect(
            got === want || (got ^ want) === 0xffff,
            `got 0x${got.toString(16)}, want 0x${want.toString(16)}`,
          ).toBe(true);
        },
      ),
    );
  });

  it("includes the pseudo header in transport checksums", () => {
    // UDP 10.0.0.1:1 -> 10.0.0.2:2, no payload: the sum depends on both addresses.
    const udp = Uint8Array.of(0, 1, 0, 2, 0, 8, 0, 0);
    const a = transportChecksum(udp, 0, 8, 0x0a000001, 0x0a000002, 17);
    const b = transportChecksum(udp, 0, 8, 0x0a000001, 0x0a000003, 17);
    expect(a).not.toBe(b);
    udp[6] = a >> 8;
    udp[7] = a & 0xff;
    expect(transportChecksum(udp, 0, 8, 0x0a000001, 0x0a000002, 17)).toBe(0);
  });
});

describe("foldChecksum", () => {
  /** The textbook fold (RFC 1071): add the carries back until 16 bits remain, then complement. */
  function reference(sum: number): number {
    let s = BigInt(sum);
    while (s > 0xffffn) s = (s & 0xffffn) + (s >> 16n);
    return Number(~s & 0xffffn);
  }
  it("agrees with the textbook fold on both sides of 2^32", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 2 ** 40 })),
        (sum) => {
          expect(foldChecksum(sum), `sum ${sum}`).toBe(reference(sum));
        },
      ),
    );
    for (const sum of [0, 0xffff, 0x10000, 0x1fffe, 0xffffffff, 0x100000000, 2 ** 53 - 1])
      expect(foldChecksum(sum), `sum ${sum}`).toBe(reference(sum));
  });
});
