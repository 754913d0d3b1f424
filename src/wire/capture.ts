/**
 * Capture reading facade: detects pcap vs pcapng from the first four bytes and streams frames with bounded
 * memory (only the unconsumed tail of the input, at most one record plus one chunk, is kept between pushes).
 *
 * Formats: libpcap file format (./pcap.ts) and pcapng (./pcapng.ts); detection follows libpcap 1.10
 * `pcap_fopen_offline_with_tstamp_precision()` (sf-pcap.c / sf-pcapng.c check the magic in turn).
 *
 * Every packet record becomes one Frame: a decoded IPv4 Packet, or a "skipped" frame naming why (ARP, IPv6,
 * truncated header, unsupported link type). Malformed files throw InputError with the file, byte offset and
 * block; a capture that ends in the middle of a record is such an error, never a silent stop.
 *
 * Memory: each pushed chunk is copied once into a buffer the reader owns, and packet payloads are views into
 * it (no per-packet copy), so a chunk stays alive while any packet decoded from it is referenced. Keep chunks
 * modest (64 KiB .. 1 MiB) when packets are retained for long. A caller that hands its chunks over for good
 * (`push(chunk, true)`, e.g. the fresh buffers of a Node read stream) saves that copy: only the record cut at
 * each chunk boundary is copied, into a small buffer, and the rest is decoded in place.
 *
 * Left out on purpose: compressed captures, and reading the file itself (src/cli does the I/O).
 */
import { InputError } from "../errors";
import type { Packet } from "./packet";
import { EMPTY_BYTES } from "./ipv4";
import {
  PCAP_MAGIC_NSEC,
  PCAP_MAGIC_USEC,
  PcapParser,
  type CaptureParserOptions,
  type RecordParser,
} from "./pcap";
import { BT_SHB, PcapngParser } from "./pcapng";

export type Frame =
  | { readonly kind: "packet"; readonly packet: Packet }
  | {
      readonly kind: "skipped";
      /** "<file>#<1-based frame number>", as for packets. */
      readonly origin: string;
      readonly reason: string;
      readonly tsSec: number;
      readonly tsNsec: number;
      readonly iface?: string;
    };

export type CaptureFormat = "pcap" | "pcapng";

/** A frame the reader skipped (not IPv4, truncated, ...), with why. */
export type SkippedFrame = Extract<Frame, { readonly kind: "skipped" }>;

/** Where decoded frames go, in capture order: an array, or a consumer that handles each as it is decoded. */
export interface FrameSink {
  push(frame: Frame): unknown;
  /**
   * Decoded packets, when the sink has this method: each is handed over as is instead of in a
   * `{ kind: "packet" }` frame (one object less per packet). Skipped frames still go to `push`.
   */
  packet?(packet: Packet): unknown;
}

export type CaptureReaderOptions = CaptureParserOptions;

/** Detects the format from the first four bytes; undefined when they match neither magic. */
export function detectCaptureFormat(bytes: Uint8Array): CaptureFormat | undefined {
  if (bytes.length < 4) return undefined;
  const be = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  const le = (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0;
  if (be === BT_SHB) return "pcapng";
  for (const m of [PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC]) if (be === m || le === m) return "pcap";
  return undefined;
}

/** Streaming reader: `push` chunks as they are read, then `end()`. Both return the frames completed so far. */
export class CaptureReader {
  private readonly opts: CaptureReaderOptions;
  private parser: RecordParser | undefined;
  private tail: Uint8Array = EMPTY_BYTES;
  /** File offset of tail[0]. */
  private tailOffset = 0;
  private ended = false;
  format: CaptureFormat | undefined;

  constructor(opts: CaptureReaderOptions = {}) {
    this.opts = opts;
  }

  /**
   * Decodes the records completed by `chunk`. With `transfer`, the caller gives the chunk to the reader: it
   * must never modify it afterwards (packet payloads and the kept tail may be views into it).
   */
  push(chunk: Uint8Array, transfer = false): Frame[] {
    const out: Frame[] = [];
    this.pushTo(chunk, transfer, out);
    return out;
  }

  /**
   * `push` handing each frame to `out` as soon as it is decoded (a streaming consumer keeps no chunk's worth of
   * decoded packets alive). When `out.push` throws, the reader must not be used again.
   */
  pushTo(chunk: Uint8Array, transfer: boolean, out: FrameSink): void {
    if (this.ended) throw new Error("CaptureReader.push after end()");
    if (chunk.length === 0) return;
    if (transfer && (this.parser !== undefined || (this.tail.length === 0 && chunk.length >= 4))) {
      this.parser ??= this.createParser(chunk, this.tailOffset);
      this.pushInPlace(chunk, out);
      return;
    }
    // Decoded payloads are views into `buf`, so `buf` must be ours: copy the chunk (the caller may reuse it).
    let buf: Uint8Array;
    if (this.tail.length === 0) {
      buf = new Uint8Array(chunk.length);
      buf.set(chunk, 0);
    } else {
      buf = new Uint8Array(this.tail.length + chunk.length);
      buf.set(this.tail, 0);
      buf.set(chunk, this.tail.length);
    }
    const base = this.tailOffset;
    let pos = 0;
    if (this.parser === undefined) {
      if (buf.length < 4) {
        this.tail = buf;
        return;
      }
      this.parser = this.createParser(buf, base);
    }
    pos = this.parser.parse(buf, pos, buf.length, base, out);
    this.tail = pos === buf.length ? EMPTY_BYTES : buf.subarray(pos);
    this.tailOffset = base + pos;
  }

  /** `push` of a transferred chunk once the format is known: parses it where it lies. */
  private pushInPlace(chunk: Uint8Array, out: FrameSink): void {
    const parser = this.parser!;
    let head = this.tail;
    let headOffset = this.tailOffset;
    let start = 0;
    if (head.length > 0) {
      // The record cut at the boundary: join the tail with the start of the chunk, doubling the borrowed part
      // until the parser gets past the tail, then continue in the chunk itself.
      let k = Math.min(chunk.length, Math.max(head.length, 512));
      for (;;) {
        const joined = new Uint8Array(head.length + k);
        joined.set(head, 0);
        joined.set(chunk.subarray(0, k), head.length);
        const p = parser.parse(joined, 0, joined.length, headOffset, out);
        if (p >= head.length) {
          start = p - head.length;
          break;
        }
        if (k === chunk.length) {
          this.tail = joined.subarray(p);
          this.tailOffset = headOffset + p;
          return;
        }
        head = joined.subarray(p, head.length);
        headOffset += p;
        k = Math.min(chunk.length, 2 * k);
      }
    }
    const base = headOffset + head.length; // file offset of chunk[0]
    const pos = parser.parse(chunk, start, chunk.length, base, out);
    this.tail = pos === chunk.length ? EMPTY_BYTES : chunk.subarray(pos);
    this.tailOffset = base + pos;
  }

  end(): Frame[] {
    if (this.ended) return [];
    this.ended = true;
    if (this.parser === undefined) {
      throw new InputError({
        code: "CAPTURE_TRUNCATED",
        message:
          this.tail.length === 0 ? "empty capture file" : `truncated capture (${this.tail.length} bytes)`,
        file: this.opts.file,
        offset: 0,
        block: "file header",
      });
    }
    this.parser.finish(this.tail, 0, this.tail.length, this.tailOffset);
    this.tail = EMPTY_BYTES;
    return [];
  }

  private createParser(buf: Uint8Array, base: number): RecordParser {
    this.format = detectCaptureFormat(buf);
    if (this.format === "pcap") return new PcapParser(this.opts);
    if (this.format === "pcapng") return new PcapngParser(this.opts);
    const hex = Array.from(buf.subarray(0, 4), (x) => x.toString(16).padStart(2, "0")).join(" ");
    throw new InputError({
      code: "CAPTURE_BAD_MAGIC",
      message: `not a pcap or pcapng file (first bytes ${hex})`,
      file: this.opts.file,
      offset: base,
      block: "file header",
    });
  }
}

/** Reads a whole capture held in memory. */
export function readCaptureBytes(bytes: Uint8Array, opts: CaptureReaderOptions = {}): Frame[] {
  const reader = new CaptureReader(opts);
  const frames = reader.push(bytes);
  for (const f of reader.end()) frames.push(f);
  return frames;
}

/** The decoded packets of a frame list (skipped frames dropped). */
export function packetsOf(frames: readonly Frame[]): Packet[] {
  const out: Packet[] = [];
  for (const f of frames) if (f.kind === "packet") out.push(f.packet);
  return out;
}
