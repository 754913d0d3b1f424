import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/errors";
import { readCaptureBytes } from "../../src/wire/capture";
import { encodeIpv4 } from "../../src/wire/ipv4";
import { concatBytes, epb, ethernet, idb, ngBlock, shb, spb, tcpPacket, udpPacket } from "./capture_builders";

const SYN = encodeIpv4(tcpPacket());
const UDP = encodeIpv4(udpPacket());

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw new Error(`got ${(e as Error)?.name}: ${(e as Error)?.message}, want InputError`);
  }
  throw new Error("got no error, want InputError");
}

describe("pcapng reader", () => {
  for (const le of [true, false]) {
    it(`reads a ${le ? "little" : "big"}-endian section with named interfaces and ns timestamps`, () => {
      const file = concatBytes([
        shb(le),
        idb(le, 1, { name: "eth0", tsresol: 9 }),
        idb(le, 101, { name: "wg0" }), // default resolution: microseconds
        ngBlock(4, new Uint8Array(8), le), // NRB: skipped
        epb(le, 0, 1_700_000_000_123_456_789n, ethernet(SYN), { flags: 1 }),
        epb(le, 1, 1_700_000_001_000_042n, UDP, { flags: 2 }),
        ngBlock(5, new Uint8Array(12), le), // ISB: skipped
        ngBlock(0x40000bad, new Uint8Array(8), le), // custom block: skipped
      ]);
      const frames = readCaptureBytes(file, { file: "c.pcapng", defaultIface: "lo" });
      expect(frames.map((f) => f.kind)).toEqual(["packet", "packet"]);
      const [a, b] = frames.map((f) => (f.kind === "packet" ? f.packet : undefined)!);
      expect([a.iface, a.tsSec, a.tsNsec, a.direction, a.origin]).toEqual([
        "eth0",
        1_700_000_000,
        123_456_789,
        "In",
        "c.pcapng#1",
      ]);
      expect([b.iface, b.tsSec, b.tsNsec, b.direction, b.origin]).toEqual([
        "wg0",
        1_700_000_001,
        42_000,
        "Out",
        "c.pcapng#2",
      ]);
      expect(a.link?.src).toBe("02:00:00:00:00:01");
      expect([a.l4Checksum, b.l4Checksum]).toEqual(["correct", "correct"]);
    });
  }

  it("gives unnamed interfaces the default name and SPBs interface 0 without a timestamp", () => {
    const file = concatBytes([shb(true), idb(true, 228), spb(true, SYN)]);
    const [f] = readCaptureBytes(file, { defaultIface: "eth9" });
    expect(
      f.kind === "packet" && [f.packet.iface, f.packet.tsSec, f.packet.tsNsec, f.packet.l4.kind],
    ).toEqual(["eth9", 0, 0, "tcp"]);
  });

  it("converts binary (2^-n) timestamp resolutions", () => {
    const file = concatBytes([
      shb(true),
      idb(true, 101, { tsresol: 0x80 | 10 }),
      epb(true, 0, (5n << 10n) | 512n, SYN),
    ]);
    const [f] = readCaptureBytes(file);
    expect(f.kind === "packet" && [f.packet.tsSec, f.packet.tsNsec]).toEqual([5, 500_000_000]);
  });

  it("converts decimal resolutions 10^0..10^9 exactly, near multiples of the divisor too (property)", () => {
    const ts = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 53n) - 1n }), // exact in a double
      fc.bigInt({ min: 1n << 53n, max: (1n << 64n) - 1n }), // rounded in a double: corrected by the remainder
      fc.tuple(fc.bigInt({ min: 1n, max: 1n << 34n }), fc.integer({ min: -1, max: 1 })).map(
        ([k, e]) => k * 1_000_000_000n + BigInt(e), // next to a second boundary at 10^9
      ),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9 }), ts, (pow10, v) => {
        const d = 10n ** BigInt(pow10);
        const wantSec = v / d;
        fc.pre(wantSec < 1n << 53n); // larger seconds are not exact in a Packet's number either
        const file = concatBytes([shb(true), idb(true, 101, { tsresol: pow10 }), epb(true, 0, v, SYN)]);
        const [f] = readCaptureBytes(file);
        const got = f.kind === "packet" ? [f.packet.tsSec, f.packet.tsNsec] : f.kind;
        const want = [Number(wantSec), Number((v % d) * 10n ** BigInt(9 - pow10))];
        expect(got, `ts ${v} at 10^-${pow10}: got ${String(got)}, want ${String(want)}`).toEqual(want);
      }),
      { numRuns: 500 },
    );
  });

  it("names the failing block by its number in the section, counted per block type", () => {
    const flagsAt = (b: Uint8Array) => b.length - 4 - 4 - 8; // EPB with one option: flags, end, trailer
    const badOpt = epb(true, 0, 0n, SYN, { flags: 1 });
    new DataView(badOpt.buffer).setUint16(flagsAt(badOpt) + 2, 200, true); // option runs past the block
    const file = concatBytes([
      shb(true),
      idb(true, 101),
      epb(true, 0, 0n, SYN),
      ngBlock(4, new Uint8Array(8), true),
      idb(true, 101),
      badOpt,
    ]);
    const d = inputError(() => readCaptureBytes(file, { file: "o.pcapng" })).diagnostic;
    expect(d).toMatchObject({
      code: "PCAPNG_BAD_OPTION",
      message: "option 2 of length 200 runs past the end of the block",
      offset: file.length - badOpt.length,
      block: "EPB #2 in section 1",
    });
    const badIdb = idb(true, 101, { name: "eth0" });
    new DataView(badIdb.buffer).setUint16(18, 300, true);
    const file2 = concatBytes([shb(true), idb(true, 101), epb(true, 0, 0n, SYN), shb(true), badIdb]);
    expect(inputError(() => readCaptureBytes(file2)).diagnostic).toMatchObject({
      code: "PCAPNG_BAD_OPTION",
      block: "IDB #1 in section 2",
    });
    const v2 = shb(true);
    new DataView(v2.buffer).setUint16(12, 2, true);
    const file3 = concatBytes([shb(true), idb(true, 101), v2]);
    expect(inputError(() => readCaptureBytes(file3)).diagnostic).toMatchObject({
      code: "PCAPNG_BAD_VERSION",
      block: "SHB #2 in section 1",
    });
  });

  it("resets interfaces at each section, which may change byte order", () => {
    const file = concatBytes([
      shb(true),
      idb(true, 101, { name: "a" }),
      epb(true, 0, 0n, SYN),
      shb(false),
      idb(false, 101, { name: "b" }),
      epb(false, 0, 0n, UDP),
    ]);
    const frames = readCaptureBytes(file);
    expect(frames.map((f) => f.kind === "packet" && f.packet.iface)).toEqual(["a", "b"]);
    const second = concatBytes([shb(true), idb(true, 101), idb(true, 101), shb(true), epb(true, 1, 0n, SYN)]);
    const d = inputError(() => readCaptureBytes(second)).diagnostic;
    expect(d).toMatchObject({ code: "PCAPNG_BAD_INTERFACE", block: "EPB #1 in section 2" });
  });

  it("rejects a block length mismatch, a bad byte-order magic and a caplen past the block", () => {
    const good = concatBytes([shb(true), idb(true, 101), epb(true, 0, 0n, SYN)]);
    const epbAt = shb(true).length + idb(true, 101).length;
    const mismatch = good.slice();
    mismatch[mismatch.length - 4] ^= 4;
    expect(inputError(() => readCaptureBytes(mismatch, { file: "m" })).diagnostic).toMatchObject({
      code: "PCAPNG_BLOCK_LENGTH_MISMATCH",
      offset: epbAt,
      block: "EPB #1 in section 1",
      file: "m",
    });
    const bom = good.slice();
    bom[8] = 0;
    expect(inputError(() => readCaptureBytes(bom)).diagnostic).toMatchObject({
      code: "PCAPNG_BAD_BYTE_ORDER_MAGIC",
      offset: 0,
    });
    const caplen = good.slice();
    new DataView(caplen.buffer).setUint32(epbAt + 20, 4000, true);
    expect(inputError(() => readCaptureBytes(caplen)).diagnostic.code).toBe("PCAPNG_BAD_CAPLEN");
    const odd = good.slice();
    new DataView(odd.buffer).setUint32(epbAt + 4, 41, true);
    expect(inputError(() => readCaptureBytes(odd)).diagnostic.code).toBe("PCAPNG_BAD_BLOCK_LENGTH");
  });

  it("throws InputError with the block offset for a truncation at every offset (property)", () => {
    const blocks = [
      shb(false),
      idb(false, 1, { name: "eth0", tsresol: 9 }),
      epb(false, 0, 1n, ethernet(SYN)),
      spb(false, UDP),
    ];
    const file = concatBytes(blocks);
    const starts = [0];
    for (const b of blocks) starts.push(starts[starts.length - 1] + b.length);
    fc.assert(
      fc.property(fc.nat({ max: file.length - 1 }), (cut) => {
        if (starts.includes(cut) && cut > 0) {
          expect(() => readCaptureBytes(file.subarray(0, cut))).not.toThrow();
          return;
        }
        const d = inputError(() => readCaptureBytes(file.subarray(0, cut), { file: "t.pcapng" })).diagnostic;
        const want = Math.max(...starts.filter((s) => s <= cut));
        expect(d.code).toMatch(/TRUNCATED$/);
        expect(d.offset, `cut at ${cut}: got offset ${d.offset}, want ${want}`).toBe(want);
        expect(d.file).toBe("t.pcapng");
      }),
      { numRuns: 400 },
    );
  });
});
