/**
 * Classic pcap reader (push parser) and the link-layer decoding shared with the pcapng reader.
 *
 * Format: draft-ietf-opsawg-pcap (the libpcap file format) and the LINKTYPE_* registry
 * (draft-ietf-opsawg-pcaplinktype). Behaviour follows libpcap 1.10 `pcap_check_header()` / `pcap_next_packet()`
 * (sf-pcap.c): both byte orders, microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magic, major version 2,
 * a record whose captured length exceeds max(snaplen, 262144) is an error. The link-layer headers mirror the
 * kernel's view where one exists: `struct sockaddr_ll` packet types (include/uapi/linux/if_packet.h, Linux 6.17)
 * give the direction of Linux cooked captures, as tcpdump prints "In"/"Out"/"B"/"M"/"P".
 *
 * Link types: NULL (0) and LOOP (108) with AF_INET, ETHERNET (1) with 802.1Q / 802.1ad / 0x9100 tags, PPP (9)
 * with protocol 0x0021, RAW (101, and the historical 12 and 14), LINUX_SLL (113), IPV4 (228), LINUX_SLL2 (276).
 * LINUX_SLL2 carries an ifindex, not a name: it is mapped through the caller's `ifaceByIndex`, else the packet
 * keeps the default interface. Any other link type, and any frame that is not IPv4 (ARP, IPv6, MPLS, 802.3
 * LLC), becomes a "skipped" frame with the reason, never a silent drop.
 *
 * Left out on purpose: the "modified" pcap formats (0xa1b2cd34 and friends; rejected as a bad magic), FCS
 * stripping (the IPv4 total length bounds the datagram anyway), SLL hardware addresses (no `link` is attached to
 * cooked captures, since LinkHeader needs both MACs).
 */
import { InputError } from "../errors";
import type { Direction, LinkHeader, Packet } from "./packet";
import { dataViewOf, decodeIpv4, isDecodeFailure } from "./ipv4";
import type { FrameSink, SkippedFrame } from "./capture";

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_PPP = 9;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_LINUX_SLL2 = 276;

export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;

/** libpcap's MAXIMUM_SNAPLEN: larger records are treated as corruption. */
export const MAX_SNAPLEN = 262144;

const ETH_P_IP = 0x0800;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const ETH_P_QINQ1 = 0x9100;
const AF_INET = 2;
/** `struct sockaddr_ll` sll_pkttype values (PACKET_HOST .. PACKET_OUTGOING). */
const PACKET_OUTGOING = 4;

const ETHERTYPE_NAMES: Record<number, string> = {
  0x0806: "ARP",
  0x86dd: "IPv6",
  0x8847: "MPLS",
  0x8848: "MPLS multicast",
  0x8035: "RARP",
  0x88cc: "LLDP",
  0x8864: "PPPoE session",
};

function ethertypeReason(type: number): string {
  const hex = "0x" + type.toString(16).padStart(4, "0");
  const name = ETHERTYPE_NAMES[type];
  return name ? `ethertype ${hex} (${name})` : `ethertype ${hex}`;
}

/** Where the frame came from and how to name it; mutated and reused by the readers (decodeIpv4 copies it). */
export interface FrameContext {
  tsSec: number;
  tsNsec: number;
  iface: string | undefined;
  direction: Direction | undefined;
  link: LinkHeader | undefined;
  origin: string;
}

export function newFrameContext(): FrameContext {
  return { tsSec: 0, tsNsec: 0, iface: undefined, direction: undefined, link: undefined, origin: "" };
}

const DIGITS3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));

/**
 * Frame origins "<file>#<n>" for a reader's frame numbers: the "<file>#<thousands>" prefix is built once per
 * thousand frames and the last three digits come from a table, so a frame costs one string concatenation and
 * no number-to-string conversion.
 */
export class OriginNames {
  private readonly prefix: string;
  private thousands = 0;
  private thousandsPrefix = "";

  constructor(file: string) {
    this.prefix = file + "#";
  }

  /** The origin of frame `n` (a positive integer). */
  of(n: number): string {
    const k = Math.floor(n / 1000);
    if (k === 0) return this.prefix + n;
    if (k !== this.thousands) {
      this.thousands = k;
      this.thousandsPrefix = this.prefix + k;
    }
    return this.thousandsPrefix + DIGITS3[n - k * 1000];
  }
}

export interface LinkDecodeOptions {
  /** Interface names by ifindex, for LINUX_SLL2 captures (otherwise the context's iface is kept). */
  readonly ifaceByIndex?: ReadonlyMap<number, string>;
}

/** What decoding one captured frame gives: the packet, or the frame skipped and why. */
export type LinkDecoded = Packet | SkippedFrame;

/** Hands a decoded frame to `out`: a packet straight to `out.packet` when the sink has it (no frame object). */
export function emitFrame(out: FrameSink, d: LinkDecoded): void {
  if ((d as SkippedFrame).kind === "skipped") out.push(d as SkippedFrame);
  else if (out.packet !== undefined) out.packet(d as Packet);
  else out.push({ kind: "packet", packet: d as Packet });
}

function skipped(ctx: FrameContext, reason: string): SkippedFrame {
  return ctx.iface === undefined
    ? { kind: "skipped", origin: ctx.origin, reason, tsSec: ctx.tsSec, tsNsec: ctx.tsNsec }
    : { kind: "skipped", origin: ctx.origin, reason, tsSec: ctx.tsSec, tsNsec: ctx.tsNsec, iface: ctx.iface };
}

function ipFrame(buf: Uint8Array, off: number, len: number, ctx: FrameContext): LinkDecoded {
  const r = decodeIpv4(buf, off, len, ctx, true);
  return isDecodeFailure(r) ? skipped(ctx, r.failure) : r;
}

function sllDirection(pkttype: number): Direction | undefined {
  return pkttype < PACKET_OUTGOING ? "In" : pkttype === PACKET_OUTGOING ? "Out" : undefined;
}

/**
 * Decodes one captured frame of the given link type. `ctx` carries timestamp, origin and the default
 * interface; direction and link header found here are written into it. Packet payloads are views into `buf`,
 * which the caller must own and never modify afterwards.
 */
export function decodeLinkFrame(
  linktype: number,
  buf: Uint8Array,
  off: number,
  caplen: number,
  ctx: FrameContext,
  opts?: LinkDecodeOptions,
): LinkDecoded {
  const b = buf;
  switch (linktype) {
    case LINKTYPE_ETHERNET: {
      if (caplen < 14) return skipped(ctx, `truncated Ethernet header (${caplen} bytes)`);
      const outer = (b[off + 12] << 8) | b[off + 13];
      let type = outer;
      let p = off + 14;
      let vlans: number[] | undefined;
      while (type === ETH_P_8021Q || type === ETH_P_8021AD || type === ETH_P_QINQ1) {
        if (p + 4 > off + caplen) return skipped(ctx, "truncated VLAN tag");
        (vlans ??= []).push(((b[p] << 8) | b[p + 1]) & 0x0fff);
        type = (b[p + 2] << 8) | b[p + 3];
        p += 4;
      }
      if (type !== ETH_P_IP) {
        return skipped(ctx, type <= 1500 ? `802.3 frame (length ${type})` : ethertypeReason(type));
      }
      ctx.link = vlans
        ? { dst: formatMac(b, off), src: formatMac(b, off + 6), ethertype: outer, vlans }
        : untaggedLink(b, off);
      return ipFrame(b, p, off + caplen - p, ctx);
    }
    case LINKTYPE_RAW:
    case 12:
    case 14:
    case LINKTYPE_IPV4:
      if (caplen >= 1 && b[off] >> 4 === 6) return skipped(ctx, "IPv6");
      return ipFrame(b, off, caplen, ctx);
    case LINKTYPE_LINUX_SLL: {
      if (caplen < 16) return skipped(ctx, `truncated Linux cooked header (${caplen} bytes)`);
      ctx.direction = sllDirection((b[off] << 8) | b[off + 1]);
      const proto = (b[off + 14] << 8) | b[off + 15];
      if (proto !== ETH_P_IP) return skipped(ctx, ethertypeReason(proto));
      return ipFrame(b, off + 16, caplen - 16, ctx);
    }
    case LINKTYPE_LINUX_SLL2: {
      if (caplen < 20) return skipped(ctx, `truncated Linux cooked v2 header (${caplen} bytes)`);
      const ifindex = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
      const name = opts?.ifaceByIndex?.get(ifindex);
      if (name !== undefined) ctx.iface = name;
      ctx.direction = sllDirection(b[off + 10]);
      const proto = (b[off] << 8) | b[off + 1];
      if (proto !== ETH_P_IP) return skipped(ctx, ethertypeReason(proto));
      return ipFrame(b, off + 20, caplen - 20, ctx);
    }
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      if (caplen < 4) return skipped(ctx, `truncated loopback header (${caplen} bytes)`);
      // NULL stores the family in the writer's byte order, LOOP in network order; AF_INET is 2 everywhere.
      const be = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
      const le = (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
      if (be !== AF_INET && (linktype === LINKTYPE_LOOP || le !== AF_INET)) {
        return skipped(ctx, `address family ${linktype === LINKTYPE_LOOP || le > 0xffff ? be : le}`);
      }
      return ipFrame(b, off + 4, caplen - 4, ctx);
    }
    case LINKTYPE_PPP: {
      let p = off;
      if (caplen >= 2 && b[p] === 0xff && b[p + 1] === 0x03) p += 2; // HDLC address/control
      if (p >= off + caplen) return skipped(ctx, "truncated PPP header");
      let proto: number;
      if (b[p] & 1) {
        proto = b[p]; // protocol-field compression
        p += 1;
      } else {
        if (p + 2 > off + caplen) return skipped(ctx, "truncated PPP header");
        proto = (b[p] << 8) | b[p + 1];
        p += 2;
      }
      if (proto !== 0x21) return skipped(ctx, `PPP protocol 0x${proto.toString(16).padStart(4, "0")}`);
      return ipFrame(b, p, off + caplen - p, ctx);
    }
    default:
      return skipped(ctx, `unsupported link type ${linktype}`);
  }
}

const NO_VLANS: readonly number[] = Object.freeze([]);
const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function formatMac(b: Uint8Array, o: number): string {
  return (
    HEX[b[o]] +
    ":" +
    HEX[b[o + 1]] +
    ":" +
    HEX[b[o + 2]] +
    ":" +
    HEX[b[o + 3]] +
    ":" +
    HEX[b[o + 4]] +
    ":" +
    HEX[b[o + 5]]
  );
}

/**
 * Untagged IPv4 Ethernet headers, cached by their 12 address bytes: a capture holds a bounded set of MAC pairs
 * (a host's peers and gateways), and LinkHeader values are immutable, so frames share them (saves two string
 * builds and an object per packet). An open-addressing table keyed by the three 32-bit words of the addresses;
 * it is emptied when half full, so a capture with ever-new MACs costs one table clear per 512 new pairs.
 */
const LINK_CACHE_SLOTS = 1024; // a power of two
const LINK_CACHE_MAX = LINK_CACHE_SLOTS / 2;
const linkKeys = new Int32Array(LINK_CACHE_SLOTS * 3);
const linkValues: (LinkHeader | undefined)[] = new Array<LinkHeader | undefined>(LINK_CACHE_SLOTS).fill(
  undefined,
);
let linkCount = 0;

function untaggedLink(b: Uint8Array, o: number): LinkHeader {
  const dv = dataViewOf(b);
  const w0 = dv.getInt32(o);
  const w1 = dv.getInt32(o + 4);
  const w2 = dv.getInt32(o + 8);
  const h = Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca6b), 0xc2b2ae35);
  let i = h >>> 22; // the top 10 bits: LINK_CACHE_SLOTS
  for (;;) {
    const v = linkValues[i];
    if (v === undefined) break;
    if (linkKeys[3 * i] === w0 && linkKeys[3 * i + 1] === w1 && linkKeys[3 * i + 2] === w2) return v;
    i = (i + 1) & (LINK_CACHE_SLOTS - 1);
  }
  if (linkCount >= LINK_CACHE_MAX) {
    linkValues.fill(undefined);
    linkCount = 0;
    i = h >>> 22;
  }
  const link: LinkHeader = Object.freeze({
    dst: formatMac(b, o),
    src: formatMac(b, o + 6),
    ethertype: ETH_P_IP,
    vlans: NO_VLANS,
  });
  linkKeys[3 * i] = w0;
  linkKeys[3 * i + 1] = w1;
  linkKeys[3 * i + 2] = w2;
  linkValues[i] = link;
  linkCount++;
  return link;
}

// ---------------------------------------------------------------------------------------------------------
// Classic pcap

export interface CaptureParserOptions extends LinkDecodeOptions {
  /** File name for origins and error locations. */
  readonly file?: string;
  /** Interface name given to packets when the capture names none (the CLI's `--in`). */
  readonly defaultIface?: string;
}

/** A push parser over a byte stream: consumes whole records, leaves partial ones to the caller. */
export interface RecordParser {
  /** Decodes the complete records in buf[pos..end) (file offset of buf[0] is `base`); returns the new pos. */
  parse(buf: Uint8Array, pos: number, end: number, base: number, out: FrameSink): number;
  /** End of input with buf[pos..end) unconsumed: throws when that is a partial header or record. */
  finish(buf: Uint8Array, pos: number, end: number, base: number): void;
}

export class PcapParser implements RecordParser {
  private readonly origins: OriginNames;
  private readonly opts: CaptureParserOptions;
  private readonly ctx = newFrameContext();
  private headerDone = false;
  private le = true;
  private nsec = false;
  private linktype = 0;
  private snaplen = 0;
  private maxCaplen = MAX_SNAPLEN;
  private frameNo = 0;

  constructor(opts: CaptureParserOptions = {}) {
    this.opts = opts;
    this.origins = new OriginNames(opts.file ?? "<input>");
  }

  /** Link type from the file header (after the header has been parsed). */
  get linkType(): number {
    return this.linktype;
  }

  private fail(code: string, message: string, offset: number, block: string): never {
    throw new InputError({ code, message, file: this.opts.file, offset, block });
  }

  private parseHeader(b: Uint8Array, p: number, base: number): void {
    const magicBe = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
    const magicLe = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    if (magicLe === PCAP_MAGIC_USEC || magicLe === PCAP_MAGIC_NSEC) {
      this.le = true;
      this.nsec = magicLe === PCAP_MAGIC_NSEC;
    } else if (magicBe === PCAP_MAGIC_USEC || magicBe === PCAP_MAGIC_NSEC) {
      this.le = false;
      this.nsec = magicBe === PCAP_MAGIC_NSEC;
    } else {
      this.fail(
        "PCAP_BAD_MAGIC",
        `not a pcap file (magic 0x${magicBe.toString(16).padStart(8, "0")})`,
        base + p,
        "file header",
      );
    }
    const major = this.u16(b, p + 4);
    if (major !== 2)
      this.fail("PCAP_BAD_VERSION", `unsupported pcap version ${major}`, base + p, "file header");
    this.snaplen = this.u32(b, p + 16);
    this.linktype = this.u32(b, p + 20) & 0x03ffffff; // upper bits carry the FCS length
    this.maxCaplen = Math.max(this.snaplen, MAX_SNAPLEN);
    this.headerDone = true;
  }

  private u16(b: Uint8Array, o: number): number {
    return this.le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1];
  }

  private u32(b: Uint8Array, o: number): number {
    return this.le
      ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
      : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  }

  parse(b: Uint8Array, pos: number, end: number, base: number, out: FrameSink): number {
    const dv = dataViewOf(b); // also tells the decoder the packets come from `b`
    if (!this.headerDone) {
      if (end - pos < 24) return pos;
      this.parseHeader(b, pos, base);
      pos += 24;
    }
    const ctx = this.ctx;
    const origins = this.origins;
    const defaultIface = this.opts.defaultIface;
    const linktype = this.linktype;
    const le = this.le;
    const tsMul = this.nsec ? 1 : 1000;
    const maxCaplen = this.maxCaplen;
    while (end - pos >= 16) {
      const tsSec = dv.getUint32(pos, le);
      const tsFrac = dv.getUint32(pos + 4, le);
      const caplen = dv.getUint32(pos + 8, le);
      if (caplen > maxCaplen) {
        this.fail(
          "PCAP_BAD_CAPLEN",
          `captured length ${caplen} is larger than the maximum ${maxCaplen}`,
          base + pos,
          `record ${this.frameNo + 1}`,
        );
      }
      if (end - pos - 16 < caplen) break;
      const n = ++this.frameNo;
      ctx.tsSec = tsSec;
      ctx.tsNsec = tsFrac * tsMul;
      ctx.iface = defaultIface;
      ctx.direction = undefined;
      ctx.link = undefined;
      ctx.origin = origins.of(n);
      emitFrame(out, decodeLinkFrame(linktype, b, pos + 16, caplen, ctx, this.opts));
      pos += 16 + caplen;
    }
    return pos;
  }

  finish(b: Uint8Array, pos: number, end: number, base: number): void {
    if (!this.headerDone) {
      this.fail(
        "PCAP_TRUNCATED",
        end === pos ? "empty capture file" : `truncated pcap file header (${end - pos} of 24 bytes)`,
        base + pos,
        "file header",
      );
    }
    if (end > pos) {
      const have = end - pos;
      const what =
        have < 16
          ? `record header (${have} of 16 bytes)`
          : `record data (${have - 16} of ${this.u32(b, pos + 8)} bytes)`;
      this.fail("PCAP_TRUNCATED", `capture ends inside a ${what}`, base + pos, `record ${this.frameNo + 1}`);
    }
  }
}
