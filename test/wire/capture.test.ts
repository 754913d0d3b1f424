import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CaptureReader, detectCaptureFormat, readCaptureBytes, type Frame } from "../../src/wire/capture";
import { encodeIpv4 } from "../../src/wire/ipv4";
import type { Packet } from "../../src/wire/packet";
import { InputError } from "../../src/errors";
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

/**
 * Reads `bytes` in fresh chunks of the given sizes, each handed over with `push(chunk, true)`, or with
 * `pushTo(chunk, true, sink)` when `streamed` (the sink then sees each frame while its chunk is pushed).
 */
function readTransferred(
  bytes: Uint8Array,
  sizes: number[],
  streamed = false,
): { frames: Frame[]; chunks: Uint8Array[] } {
  const reader = new CaptureReader({ file: "s" });
  const frames: Frame[] = [];
  const chunks: Uint8Array[] = [];
  let o = 0;
  let i = 0;
  while (o < bytes.length) {
    const n = Math.min(Math.max(1, sizes[i++ % sizes.length]), bytes.length - o);
    const chunk = bytes.slice(o, o + n);
    chunks.push(chunk);
    if (streamed) reader.pushTo(chunk, true, frames);
    else frames.push(...reader.push(chunk, true));
    o += n;
  }
  frames.push(...reader.end());
  return { frames, chunks };
}

/** Frames, or the diagnostic of the InputError thrown. */
function outcome(fn: () => Frame[]): unknown {
  try {
    return fn();
  } catch (e) {
    return (e as { diagnostic?: unknown }).diagnostic ?? String(e);
  }
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

    it(`yields the same frames and errors from transferred chunks of a ${name} file (property)`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 0, max: file.length }),
          (sizes, cut) => {
            const bytes = file.subarray(0, cut);
            const want = outcome(() => readChunked(bytes, sizes));
            const got = outcome(() => readTransferred(bytes, sizes).frames);
            expect(got, `cut at ${cut}, chunks ${sizes.join(",")}`).toEqual(want);
            const streamed = outcome(() => readTransferred(bytes, sizes, true).frames);
            expect(streamed, `pushTo: cut at ${cut}, chunks ${sizes.join(",")}`).toEqual(want);
          },
        ),
        { numRuns: 200 },
      );
    });
  }

  it("damaged captures give frames or an InputError, never another exception (property)", () => {
    // Header fields are read through DataViews, which throw RangeError past their end: every read must stay
    // behind a length check, whatever the bytes say.
    const BIG_BE_PCAP = pcapFile(1, [{ data: ethernet(SYN) }, { data: ethernet(UDP) }], {
      littleEndian: false,
    });
    for (const file of [PCAP, PCAPNG, BIG_BE_PCAP]) {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: file.length }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
          fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 4 }),
          (cut, flips, sizes) => {
            const bytes = file.slice(0, cut);
            for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
            for (const transfer of [false, true]) {
              try {
                transfer ? readTransferred(bytes, sizes) : readCaptureBytes(bytes, { file: "s" });
              } catch (e) {
                expect(e, String(e)).toBeInstanceOf(InputError);
              }
            }
          },
        ),
        { numRuns: 300 },
      );
    }
  });

  it("payload views of a chunk that starts inside its buffer show the right bytes", () => {
    const file = pcapFile(1, [{ data: ethernet(UDP) }, { data: ethernet(SYN) }]);
    const backing = new Uint8Array(file.length + 13).fill(0xee);
    backing.set(file, 13);
    const got = new CaptureReader({ file: "s" }).push(backing.subarray(13), true);
    const want = readCaptureBytes(file, { file: "s" });
    expect(got).toEqual(want);
    const payload = (got[0] as { packet: { payload?: Uint8Array } }).packet.payload!;
    expect(payload.buffer, "a view, not a copy").toBe(backing.buffer);
    expect(payload.length).toBeGreaterThan(0);
  });

  it("payload views follow each chunk's own buffer and offset when readers alternate between chunks", () => {
    // Two files in one ArrayBuffer at different offsets, and one in a buffer of its own: the decoder remembers
    // the last chunk's buffer and offset, which must never leak into another chunk's views.
    const fileA = pcapFile(1, [{ data: ethernet(SYN) }]);
    const synB = encodeIpv4(tcpPacket({ payload: new Uint8Array(300).fill(0x5c) }));
    const fileB = pcapFile(1, [{ data: ethernet(synB) }]);
    const shared = new Uint8Array(fileA.length + fileB.length + 7);
    shared.set(fileA, 7);
    shared.set(fileB, 7 + fileA.length);
    const chunkA = shared.subarray(7, 7 + fileA.length);
    const chunkB = shared.subarray(7 + fileA.length);
    const own = Uint8Array.from(fileB);
    const payloadOf = (chunk: Uint8Array) =>
      (new CaptureReader({ file: "s" }).push(chunk, true)[0] as { packet: { payload?: Uint8Array } }).packet
        .payload!;
    for (const [chunk, fill] of [
      [chunkA, 0xab],
      [chunkB, 0x5c],
      [own, 0x5c],
      [chunkA, 0xab],
    ] as const) {
      const payload = payloadOf(chunk);
      expect(payload.buffer).toBe(chunk.buffer);
      expect(payload.length).toBe(300);
      expect(payload.every((x) => x === fill)).toBe(true);
    }
  });

  it("decodes a transferred chunk in place: payloads are views into it, not copies", () => {
    const records = [{ data: ethernet(SYN) }, { data: ethernet(UDP) }];
    for (let i = 0; i < 20; i++) records.push({ data: ethernet(SYN) });
    const file = pcapFile(1, records);
    const cut = 24 + 16 + ethernet(SYN).length + 5; // inside the second record's header
    const { frames, chunks } = readTransferred(file, [cut, file.length - cut]);
    expect(frames.length).toBe(22);
    const payloads = frames.map((f) => (f.kind === "packet" ? f.packet.payload : undefined));
    expect(payloads[0]?.buffer, "packet 1 lies in chunk 1").toBe(chunks[0].buffer);
    expect(payloads[1]?.length).toBe(3);
    expect(payloads[1]?.buffer, "packet 2 spans the boundary: copied").not.toBe(chunks[0].buffer);
    expect(payloads[1]?.buffer, "packet 2 spans the boundary: copied").not.toBe(chunks[1].buffer);
    expect(payloads[21]?.buffer, "packet 22 lies in chunk 2").toBe(chunks[1].buffer);
    expect(frames).toEqual(readCaptureBytes(file, { file: "s" }));
  });

  it("pushTo hands each frame to the sink as soon as the chunk completing it is pushed", () => {
    const reader = new CaptureReader({ file: "s" });
    const seen: number[] = [];
    const sink = { push: (f: Frame) => seen.push(f.kind === "packet" ? f.packet.ip.totalLength : -1) };
    const first = 24 + 16 + ethernet(SYN).length; // the file header and the whole first record
    reader.pushTo(PCAP.slice(0, first + 3), true, sink);
    expect(seen, "the first record is complete").toEqual([SYN.length]);
    reader.pushTo(PCAP.slice(first + 3), true, sink);
    expect(seen).toEqual([SYN.length, UDP.length, -1, SYN.length]);
    expect(reader.end()).toEqual([]);
  });

  it("a sink with a packet method gets the packets themselves, and skipped frames through push", () => {
    for (const file of [PCAP, PCAPNG]) {
      const got: Frame[] = [];
      const pushed: string[] = [];
      new CaptureReader({ file: "s" }).pushTo(file.slice(), true, {
        push: (f: Frame) => (pushed.push(f.kind), got.push(f)),
        packet: (p: Packet) => got.push({ kind: "packet", packet: p }),
      });
      const want = readCaptureBytes(file, { file: "s" });
      expect(got, "the same frames, in order").toEqual(want);
      expect(pushed, "only skipped frames went to push").toEqual(
        want.filter((f) => f.kind === "skipped").map((f) => f.kind),
      );
    }
  });

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
