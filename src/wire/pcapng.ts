/**
 * pcapng reader (push parser).
 *
 * Format: draft-ietf-opsawg-pcapng (PCAP Next Generation Dump File Format). Behaviour follows libpcap 1.10
 * sf-pcapng.c (`pcap_ng_check_header()`, `pcap_ng_next_packet()`, `read_block()`): a Section Header Block in
 * either byte order starts each section and forgets its interfaces; block lengths must be multiples of 4, at
 * least 12, equal at both ends; Interface Description Blocks carry `if_name` (option 2), `if_tsresol` (9) and
 * `if_tsoffset` (14); Enhanced Packet Blocks, Simple Packet Blocks (interface 0, no timestamp) and the obsolete
 * Packet Block yield frames; every other block type (NRB, ISB, DSB, custom, ...) is skipped. EPB `epb_flags`
 * (option 2) inbound/outbound bits give the packet direction. Link-layer decoding is shared with ./pcap.ts.
 *
 * An interface name becomes `packet.iface`; unnamed interfaces use the caller's `defaultIface`.
 *
 * Per packet the reader allocates only what the Packet keeps: block labels ("EPB #12 in section 1") are
 * built when an error needs one, the timestamp divisor is computed once per interface, and EPB options are
 * walked inline.
 *
 * Left out on purpose: section-length skipping (sections are read block by block), comments and the other
 * options (hashes, drop counts, `if_fcslen`), and libpcap's per-interface snaplen truncation of EPB data.
 */
import { InputError } from "../errors";
import type { FrameSink } from "./capture";
import { decodeFrom } from "./ipv4";
import {
  decodeLinkFrame,
  emitFrame,
  newFrameContext,
  OriginNames,
  type CaptureParserOptions,
  type LinkDecoded,
  type RecordParser,
} from "./pcap";

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_PB = 0x00000002;
export const BT_SPB = 0x00000003;
export const BT_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

/** Largest block accepted (libpcap's MAX_BLOCKSIZE is 16 MiB); bounds the memory a stream can hold. */
export const MAX_BLOCK_LENGTH = 16 * 1024 * 1024;

const BLOCK_NAMES: Record<number, string> = {
  [BT_SHB]: "SHB",
  [BT_IDB]: "IDB",
  [BT_PB]: "PB",
  [BT_SPB]: "SPB",
  [BT_EPB]: "EPB",
  4: "NRB",
  5: "ISB",
  10: "DSB",
  0x00000bad: "CB",
  0x40000bad: "CB",
};

interface Interface {
  readonly linktype: number;
  readonly snaplen: number;
  readonly name: string | undefined;
  /** Timestamp units per second is 10^pow10 when pow10 >= 0, else given by `binaryShift` (2^shift). */
  readonly pow10: number;
  readonly binaryShift: number;
  /** if_tsoffset, seconds. */
  readonly tsOffset: number;
  /** 10^pow10 when 0 <= pow10 <= 9 (exact division in doubles), else 0 (BigInt path). */
  readonly tsDiv: number;
  /** 10^(9 - pow10), turning a remainder into nanoseconds, when tsDiv is set. */
  readonly nsecMul: number;
}

/** 2^21: when hi < d * 2^21, the 64-bit timestamp (hi * 2^32 + lo) divided by d is below 2^53. */
const EXACT_HI_LIMIT = 0x200000;

const utf8 = new TextDecoder("utf-8", { fatal: false });

export class PcapngParser implements RecordParser {
  private readonly opts: CaptureParserOptions;
  private readonly ctx = newFrameContext();
  private le = true;
  private section = 0;
  private interfaces: Interface[] = [];
  /** Blocks seen in this section, by block name; EPBs are counted in `epbCount` instead. */
  private blockCounts = new Map<string, number>();
  private epbCount = 0;
  private frameNo = 0;
  private readonly origins: OriginNames;

  constructor(opts: CaptureParserOptions = {}) {
    this.opts = opts;
    this.origins = new OriginNames(opts.file ?? "<input>");
  }

  /** A DataView over the array being parsed (`dvOf`): a field in one read instead of two or four bytes. */
  private dv: DataView = new DataView(new ArrayBuffer(0));
  private dvOf: Uint8Array | undefined = undefined;

  /** The DataView of `b`, made once per array (parse and finish set it up for theirs). */
  private viewOf(b: Uint8Array): DataView {
    if (b !== this.dvOf) {
      this.dvOf = b;
      this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    return this.dv;
  }

  private u16(b: Uint8Array, o: number): number {
    return (b === this.dvOf ? this.dv : this.viewOf(b)).getUint16(o, this.le);
  }

  private u32(b: Uint8Array, o: number): number {
    return (b === this.dvOf ? this.dv : this.viewOf(b)).getUint32(o, this.le);
  }

  private static blockName(type: number): string {
    return BLOCK_NAMES[type] ?? `block type 0x${type.toString(16).padStart(8, "0")}`;
  }

  /** Blocks named `name` counted so far in this section. */
  private countOf(name: string): number {
    return name === "EPB" ? this.epbCount : (this.blockCounts.get(name) ?? 0);
  }

  /** Counts a complete block of this type; its label is then `blockLabel(type)`. */
  private countBlock(type: number): void {
    if (type === BT_EPB) this.epbCount++;
    else {
      const name = PcapngParser.blockName(type);
      this.blockCounts.set(name, (this.blockCounts.get(name) ?? 0) + 1);
    }
  }

  /** "EPB #3 in section 1": the label of the last counted block of this type (built only for errors). */
  private blockLabel(type: number): string {
    const name = PcapngParser.blockName(type);
    return `${name} #${this.countOf(name)} in section ${Math.max(this.section, 1)}`;
  }

  /** The label the next block of this type will get (a block rejected before it was counted). */
  private nextBlockLabel(type: number): string {
    const name = PcapngParser.blockName(type);
    return `${name} #${this.countOf(name) + 1} in section ${type === BT_SHB ? this.section + 1 : Math.max(this.section, 1)}`;
  }

  private fail(code: string, message: string, offset: number, block: string): never {
    throw new InputError({ code, message, file: this.opts.file, offset, block });
  }

  parse(b: Uint8Array, pos: number, end: number, base: number, out: FrameSink): number {
    decodeFrom(b);
    this.viewOf(b);
    for (;;) {
      const avail = end - pos;
      if (avail < 12) return pos;
      // The byte order of a section is known only after reading the SHB's byte-order magic.
      const typeRaw = ((b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]) >>> 0;
      if (typeRaw === BT_SHB) {
        const bomLe = (b[pos + 8] | (b[pos + 9] << 8) | (b[pos + 10] << 16) | (b[pos + 11] << 24)) >>> 0;
        const bomBe = ((b[pos + 8] << 24) | (b[pos + 9] << 16) | (b[pos + 10] << 8) | b[pos + 11]) >>> 0;
        if (bomLe === BYTE_ORDER_MAGIC) this.le = true;
        else if (bomBe === BYTE_ORDER_MAGIC) this.le = false;
        else {
          this.fail(
            "PCAPNG_BAD_BYTE_ORDER_MAGIC",
            `bad byte-order magic 0x${bomBe.toString(16).padStart(8, "0")} in section header`,
            base + pos,
            this.nextBlockLabel(BT_SHB),
          );
        }
      } else if (this.section === 0) {
        this.fail(
          "PCAPNG_BAD_MAGIC",
          "pcapng file does not start with a section header block",
          base + pos,
          "file header",
        );
      }
      const type = this.u32(b, pos);
      const len = this.u32(b, pos + 4);
      if (len < 12 || len % 4 !== 0 || (type === BT_SHB && len < 28)) {
        this.fail(
          "PCAPNG_BAD_BLOCK_LENGTH",
          `invalid block length ${len}`,
          base + pos,
          this.nextBlockLabel(type),
        );
      }
      if (len > MAX_BLOCK_LENGTH) {
        this.fail(
          "PCAPNG_BLOCK_TOO_LARGE",
          `block length ${len} exceeds the maximum ${MAX_BLOCK_LENGTH}`,
          base + pos,
          this.nextBlockLabel(type),
        );
      }
      if (avail < len) return pos;
      this.countBlock(type);
      const trailer = this.u32(b, pos + len - 4);
      if (trailer !== len) {
        this.fail(
          "PCAPNG_BLOCK_LENGTH_MISMATCH",
          `block length ${len} at the start but ${trailer} at the end`,
          base + pos,
          this.blockLabel(type),
        );
      }
      switch (type) {
        case BT_SHB: {
          const major = this.u16(b, pos + 12);
          if (major !== 1)
            this.fail(
              "PCAPNG_BAD_VERSION",
              `unsupported pcapng version ${major}`,
              base + pos,
              this.blockLabel(BT_SHB),
            );
          this.section++;
          this.interfaces = [];
          this.blockCounts = new Map([["SHB", 1]]);
          this.epbCount = 0;
          break;
        }
        case BT_IDB:
          this.readIdb(b, pos, len, base);
          break;
        case BT_EPB:
          emitFrame(out, this.readEpb(b, pos, len, base));
          break;
        case BT_SPB:
          emitFrame(out, this.readSpb(b, pos, len, base));
          break;
        case BT_PB:
          emitFrame(out, this.readPb(b, pos, len, base));
          break;
        default:
          break; // NRB, ISB, DSB, custom and unknown blocks carry nothing we use
      }
      pos += len;
    }
  }

  finish(b: Uint8Array, pos: number, end: number, base: number): void {
    this.viewOf(b);
    if (end === pos) {
      if (this.section === 0) this.fail("PCAPNG_TRUNCATED", "empty capture file", base + pos, "file header");
      return;
    }
    const have = end - pos;
    let label =
      this.section === 0 ? "file header" : `block after ${this.frameNo} packets in section ${this.section}`;
    let want = "";
    if (have >= 8) {
      const type = this.section === 0 ? BT_SHB : this.u32(b, pos);
      if (type !== BT_SHB || have >= 12) {
        label = this.nextBlockLabel(type);
        if (type !== BT_SHB) want = ` of ${this.u32(b, pos + 4)}`;
        else {
          const bomLe = (b[pos + 8] | (b[pos + 9] << 8)) === 0x3c4d;
          const len = bomLe
            ? (b[pos + 4] | (b[pos + 5] << 8) | (b[pos + 6] << 16) | (b[pos + 7] << 24)) >>> 0
            : ((b[pos + 4] << 24) | (b[pos + 5] << 16) | (b[pos + 6] << 8) | b[pos + 7]) >>> 0;
          want = ` of ${len}`;
        }
      }
    }
    this.fail("PCAPNG_TRUNCATED", `capture ends inside a block (${have}${want} bytes)`, base + pos, label);
  }

  private badOption(code: number, olen: number, base: number, blockPos: number, type: number): never {
    this.fail(
      "PCAPNG_BAD_OPTION",
      `option ${code} of length ${olen} runs past the end of the block`,
      base + blockPos,
      this.blockLabel(type),
    );
  }

  /** Walks the options in b[start..end); calls `fn(code, valueOffset, valueLength)` for each. */
  private options(
    b: Uint8Array,
    start: number,
    end: number,
    base: number,
    blockPos: number,
    type: number,
    fn: (code: number, at: number, len: number) => void,
  ): void {
    let o = start;
    while (o + 4 <= end) {
      const code = this.u16(b, o);
      const olen = this.u16(b, o + 2);
      if (code === 0) return; // opt_endofopt
      const next = o + 4 + ((olen + 3) & ~3);
      if (next > end) this.badOption(code, olen, base, blockPos, type);
      fn(code, o + 4, olen);
      o = next;
    }
  }

  private readIdb(b: Uint8Array, pos: number, len: number, base: number): void {
    if (len < 20)
      this.fail(
        "PCAPNG_BAD_BLOCK_LENGTH",
        `interface block too short (${len} bytes)`,
        base + pos,
        this.blockLabel(BT_IDB),
      );
    const linktype = this.u16(b, pos + 8);
    const snaplen = this.u32(b, pos + 12);
    let name: string | undefined;
    let pow10 = 6;
    let binaryShift = 0;
    let tsOffset = 0;
    this.options(b, pos + 16, pos + len - 4, base, pos, BT_IDB, (code, at, olen) => {
      if (code === 2) name = utf8.decode(b.subarray(at, at + olen)).replace(/\0+$/, "");
      else if (code === 9 && olen >= 1) {
        const r = b[at];
        if (r & 0x80) {
          pow10 = -1;
          binaryShift = r & 0x7f;
        } else pow10 = r;
      } else if (code === 14 && olen >= 8) {
        const hi = this.u32(b, this.le ? at + 4 : at) | 0; // signed
        const lo = this.u32(b, this.le ? at : at + 4);
        tsOffset = hi * 0x100000000 + lo;
      }
    });
    const exact = pow10 >= 0 && pow10 <= 9;
    this.interfaces.push({
      linktype,
      snaplen,
      name,
      pow10,
      binaryShift,
      tsOffset,
      tsDiv: exact ? 10 ** pow10 : 0,
      nsecMul: exact ? 10 ** (9 - pow10) : 0,
    });
  }

  private iface(id: number, base: number, pos: number, type: number): Interface {
    const itf = this.interfaces[id];
    if (itf === undefined) {
      this.fail(
        "PCAPNG_BAD_INTERFACE",
        `interface ${id} is not defined in this section (${this.interfaces.length} interfaces)`,
        base + pos,
        this.blockLabel(type),
      );
    }
    return itf;
  }

  /** Sets ctx.tsSec/tsNsec from a 64-bit timestamp in the interface's units. */
  private setTimestamp(itf: Interface, hi: number, lo: number): void {
    const ctx = this.ctx;
    const d = itf.tsDiv;
    if (d !== 0) {
      let q: number;
      let r: number;
      if (hi < d * EXACT_HI_LIMIT) {
        // The quotient is below 2^53. Estimate it from the value rounded to a double (off by at most
        // 2^11 / d + 1), then fix it with the remainder, which is small and exact modulo 2^32.
        q = Math.floor((hi * 0x100000000 + lo) / d);
        r = (lo - Math.imul(q, d)) | 0;
        if (r < 0 || r >= d) {
          const k = Math.floor(r / d);
          q += k;
          r -= k * d;
        }
      } else {
        // Seconds beyond 2^53: long division in 16-bit limbs, every step exact in a double (the quotient is
        // rounded as it grows).
        let cur = hi >>> 16;
        q = Math.floor(cur / d);
        r = cur - q * d;
        cur = r * 65536 + (hi & 0xffff);
        let qd = Math.floor(cur / d);
        r = cur - qd * d;
        q = q * 65536 + qd;
        cur = r * 65536 + (lo >>> 16);
        qd = Math.floor(cur / d);
        r = cur - qd * d;
        q = q * 65536 + qd;
        cur = r * 65536 + (lo & 0xffff);
        qd = Math.floor(cur / d);
        r = cur - qd * d;
        q = q * 65536 + qd;
      }
      ctx.tsSec = q + itf.tsOffset;
      ctx.tsNsec = r * itf.nsecMul;
    } else {
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      let sec: bigint;
      let nsec: bigint;
      if (itf.pow10 > 9) {
        const d = 10n ** BigInt(itf.pow10);
        sec = v / d;
        nsec = ((v % d) * 1_000_000_000n) / d;
      } else {
        const shift = BigInt(itf.binaryShift);
        sec = v >> shift;
        nsec = ((v & ((1n << shift) - 1n)) * 1_000_000_000n) >> shift;
      }
      ctx.tsSec = Number(sec) + itf.tsOffset;
      ctx.tsNsec = Number(nsec);
    }
  }

  private prepare(itf: Interface): void {
    const ctx = this.ctx;
    ctx.iface = itf.name ?? this.opts.defaultIface;
    ctx.direction = undefined;
    ctx.link = undefined;
    ctx.origin = this.origins.of(++this.frameNo);
  }

  private readEpb(b: Uint8Array, pos: number, len: number, base: number): LinkDecoded {
    if (len < 32)
      this.fail(
        "PCAPNG_BAD_BLOCK_LENGTH",
        `enhanced packet block too short (${len} bytes)`,
        base + pos,
        this.blockLabel(BT_EPB),
      );
    const itf = this.iface(this.u32(b, pos + 8), base, pos, BT_EPB);
    const caplen = this.u32(b, pos + 20);
    const dataEnd = pos + 28 + ((caplen + 3) & ~3);
    const optEnd = pos + len - 4;
    if (caplen > len - 32 || dataEnd > optEnd) {
      this.fail(
        "PCAPNG_BAD_CAPLEN",
        `captured length ${caplen} does not fit in a block of ${len} bytes`,
        base + pos,
        this.blockLabel(BT_EPB),
      );
    }
    this.prepare(itf);
    this.setTimestamp(itf, this.u32(b, pos + 12), this.u32(b, pos + 16));
    // The options walk of `options()`, inline: only epb_flags (2) is used.
    let flags = 0;
    for (let o = dataEnd; o + 4 <= optEnd;) {
      const code = this.u16(b, o);
      const olen = this.u16(b, o + 2);
      if (code === 0) break; // opt_endofopt
      const next = o + 4 + ((olen + 3) & ~3);
      if (next > optEnd) this.badOption(code, olen, base, pos, BT_EPB);
      if (code === 2 && olen >= 4) flags = this.u32(b, o + 4);
      o = next;
    }
    const dir = flags & 3; // epb_flags bits 0-1: 1 inbound, 2 outbound
    if (dir !== 0) this.ctx.direction = dir === 1 ? "In" : "Out";
    return decodeLinkFrame(itf.linktype, b, pos + 28, caplen, this.ctx, this.opts);
  }

  private readSpb(b: Uint8Array, pos: number, len: number, base: number): LinkDecoded {
    if (len < 16)
      this.fail(
        "PCAPNG_BAD_BLOCK_LENGTH",
        `simple packet block too short (${len} bytes)`,
        base + pos,
        this.blockLabel(BT_SPB),
      );
    const itf = this.iface(0, base, pos, BT_SPB);
    const origLen = this.u32(b, pos + 8);
    let caplen = Math.min(origLen, len - 16);
    if (itf.snaplen !== 0 && caplen > itf.snaplen) caplen = itf.snaplen;
    this.prepare(itf);
    this.ctx.tsSec = 0;
    this.ctx.tsNsec = 0;
    return decodeLinkFrame(itf.linktype, b, pos + 12, caplen, this.ctx, this.opts);
  }

  private readPb(b: Uint8Array, pos: number, len: number, base: number): LinkDecoded {
    if (len < 32)
      this.fail(
        "PCAPNG_BAD_BLOCK_LENGTH",
        `packet block too short (${len} bytes)`,
        base + pos,
        this.blockLabel(BT_PB),
      );
    const itf = this.iface(this.u16(b, pos + 8), base, pos, BT_PB);
    const caplen = this.u32(b, pos + 20);
    if (caplen > len - 32) {
      this.fail(
        "PCAPNG_BAD_CAPLEN",
        `captured length ${caplen} does not fit in a block of ${len} bytes`,
        base + pos,
        this.blockLabel(BT_PB),
      );
    }
    this.prepare(itf);
    this.setTimestamp(itf, this.u32(b, pos + 12), this.u32(b, pos + 16));
    return decodeLinkFrame(itf.linktype, b, pos + 28, caplen, this.ctx, this.opts);
  }
}
