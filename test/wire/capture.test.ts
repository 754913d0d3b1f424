import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CaptureReader, detectCaptureFormat, readCaptureBytes, type Frame } from "../../src/wire/capture";
import { encodeIpv4 } from "../../src/wire/ipv4";
import { concatBytes, epb, ethernet, idb, pcapFile, shb, tcpPacket, udpPacket } from "./capture_builders";

const SYN = encodeIpv4(tcpPacket({ payload: new Uint8Array(300).fill(0xab) }));
const UDP = encodeIpv4(udpPacket());

const PCAP = pcapFile(1, [
  { data: ethernet(SYN) },
  { data: ethernet(UDP) },
  { data: ethernet(new Uint8Array(28), 0x0806) },
  { data: ethernet(SYN) },
]);
const PCAPNG = concatBytes([
  shb(true),
  idb(true, 1, { name: "eth0", tsresol: 9 }),
  epb(true, 0, 5n, ethernet(SYN)),
  shb(false),
  idb(false, 101, { name: "eth1" }),
  epb(false, 0, 7n, UDP),
]);

/** Reads `bytes` in chunks of the given sizes through one reusable buffer, as the CLI does with fs.readSync. */
function readChunked(bytes: Uint8Array, sizes: number[]): Frame[] {
  const reader = new CaptureReader({ file: "s" });
  const scratch = Buffer.alloc(bytes.length);
  const frames: Frame[] = [];
  let o = 0;
  let i = 0;
  while (o < bytes.length) {
    const n = Math.min(Math.max(1, sizes[i++ % sizes.length]), bytes.length - o);
    scratch.set(bytes.subarray(o, o + n), 0);
    frames.push(...reader.push(scratch.subarray(0, n)));
    scratch.fill(0xee); // the reader must not keep views into our buffer
    o += n;
  }
  frames.push(...reader.end());
  return frames;
}

describe("CaptureReader", () => {
  it("detects the format from the magic", () => {
    expect(detectCaptureFormat(PCAP)).toBe("pcap");
    expect(detectCaptureFormat(PCAPNG)).toBe("pcapng");
    expect(detectCaptureFormat(Uint8Array.of(1, 2, 3, 4))).toBeUndefined();
  });

  for (const [name, file] of [
    ["pcap", PCAP],
    ["pcapng", PCAPNG],
  ] as const) {
    it(`yields the same frames for any chunking of a ${name} file (property)`, () => {
      const whole = readCaptureBytes(file, { file: "s" });
      expect(whole.length).toBe(name === "pcap" ? 4 : 2);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 8 }), (sizes) => {
          expect(readChunked(file, sizes)).toEqual(whole);
        }),
        { numRuns: 150 },
      );
    });
  }

  it("keeps only the unconsumed tail between pushes", () => {
    const reader = new CaptureReader();
    const first = reader.push(PCAP.subarray(0, 24 + 16 + 10));
    expect(first).toEqual([]);
    const rest = reader.push(PCAP.subarray(50));
    expect(rest.length).toBe(4);
    expect((reader as unknown as { tail: Uint8Array }).tail.length).toBe(0);
    expect(reader.end()).toEqual([]);
  });
});
