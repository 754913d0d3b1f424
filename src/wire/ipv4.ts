/**
 * IPv4 + TCP/UDP/ICMP byte codec: wire bytes <-> validated Packet values (./packet.ts).
 *
 * Decoding follows the checks of Linux 6.17 `ip_rcv_core()` (net/ipv4/ip_input.c: version, ihl >= 5, total
 * length >= ihl), `tcp_parse_options()` (net/ipv4/tcp_input.c: eol ends the list, nop is one byte, a length
 * below 2 or past the header ends parsing silently), the header-length checks of `tcp_error()`
 * (net/netfilter/nf_conntrack_proto_tcp.c) and `icmp_error_message()` (nf_conntrack_proto_icmp.c: the quoted
 * header of error types 3, 4, 5, 11, 12). Checksums use ./checksum.ts (`ip_fast_csum`, `csum_tcpudp_magic`).
 *
 * A capture cut short by the snaplen is still a packet: lengths come from the headers, `payload` holds only
 * the bytes that were captured, and checksums that cannot be verified are "unknown". Non-first fragments
 * (fragOffset != 0) carry `l4: {kind: "other"}`; first fragments (MF set) parse the transport header but their
 * transport checksum is "unknown" (it covers the reassembled datagram).
 *
 * Left out on purpose: IP option semantics (kept as raw bytes), reassembly, TCP option validation beyond the
 * kernel's length rules (a malformed option list is cut where the kernel stops), ICMP extension objects
 * (RFC 4884; they stay in the payload), UDP-Lite, and VLAN priority bits on encode (LinkHeader keeps VLAN ids
 * only).
 */
import type {
  Direction,
  IcmpHeader,
  IcmpQuote,
  Ipv4Header,
  L4Header,
  LinkHeader,
  OtherL4,
  Packet,
  TcpHeader,
  TcpOption,
  UdpHeader,
  ChecksumStatus,
} from "./packet";
import {
  ICMP_DEST_UNREACH,
  ICMP_PARAMETERPROB,
  ICMP_REDIRECT,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from "./packet";
import { macToBytes } from "./addr";
import { foldChecksum, internetChecksum, onesComplementSum, pseudoHeaderSum } from "./checksum";
import { put16, put32 } from "./bytes";

/** Why bytes could not be turned into a Packet ("not IPv4 (version 6)", "truncated TCP header", ...). */
export interface DecodeFailure {
  readonly failure: string;
}

/** Capture metadata attached to a decoded packet. */
export interface DecodeMeta {
  readonly tsSec: number;
  readonly tsNsec: number;
  readonly iface?: string;
  readonly direction?: Direction;
  readonly link?: LinkHeader;
  readonly origin?: string;
}

/** Shared empty byte array ("no options", "no payload captured"). */
export const EMPTY_BYTES: Uint8Array = Object.freeze(new Uint8Array(0)) as Uint8Array;
/** Shared empty TCP option list. */
export const NO_TCP_OPTIONS: readonly TcpOption[] = Object.freeze([]);
const OTHER_L4: OtherL4 = Object.freeze({ kind: "other" });
const OPT_EOL: TcpOption = Object.freeze({ kind: "eol" });
const OPT_NOP: TcpOption = Object.freeze({ kind: "nop" });
const OPT_SACK_PERM: TcpOption = Object.freeze({ kind: "sackPermitted" });

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOPT_WINDOW = 3;
export const TCPOPT_SACK_PERM = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;

const F_VERSION = 0;
const F_IP_TRUNCATED = 1;
const F_IHL = 2;
const F_IP_OPTIONS = 3;
const F_TOTAL_LENGTH = 4;
const F_TCP_TRUNCATED = 5;
const F_DATA_OFFSET = 6;
const F_DATA_OFFSET_BEYOND = 7;
const F_TCP_OPTIONS = 8;
const F_UDP_TRUNCATED = 9;
const F_ICMP_TRUNCATED = 10;

/**
 * The failure message for decodeIpv4's checks, built here rather than at each check: with template strings in the
 * decoder, V8 converted the numbers to text ahead of the checks, for every packet (seen in profiles).
 */
function failed(kind: number, a: number, b = 0): DecodeFailure {
  switch (kind) {
    case F_VERSION:
      return { failure: `not IPv4 (version ${a})` };
    case F_IP_TRUNCATED:
      return { failure: `truncated IPv4 header (${a} bytes captured)` };
    case F_IHL:
      return { failure: `bad IPv4 header length ${a}` };
    case F_IP_OPTIONS:
      return { failure: `truncated IPv4 options (${a} of ${b} header bytes captured)` };
    case F_TOTAL_LENGTH:
      return { failure: `IPv4 total length ${a} below header length ${b}` };
    case F_TCP_TRUNCATED:
      return { failure: `truncated TCP header (${a} bytes)` };
    case F_DATA_OFFSET:
      return { failure: `bad TCP data offset ${a}` };
    case F_DATA_OFFSET_BEYOND:
      return { failure: `TCP data offset ${a} beyond datagram (${b} bytes)` };
    case F_TCP_OPTIONS:
      return { failure: `truncated TCP options (${a} of ${b} bytes)` };
    case F_UDP_TRUNCATED:
      return { failure: `truncated UDP header (${a} bytes)` };
    default:
      return { failure: `truncated ICMP header (${a} bytes)` };
  }
}

export function isDecodeFailure(x: Packet | DecodeFailure): x is DecodeFailure {
  return (x as DecodeFailure).failure !== undefined;
}

/** ICMP types whose body quotes the offending datagram (`icmp_is_err()` plus redirect / source quench). */
export function isIcmpErrorType(type: number): boolean {
  return (
    type === ICMP_DEST_UNREACH ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_REDIRECT ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAMETERPROB
  );
}

// Node leaves V8 unable to resolve methods on %TypedArray%.prototype at compile time: `buf.slice(...)` costs a
// generic property lookup per call in optimized code (seen in profiles of the decoder). Calling the function
// itself avoids it. Views are made with the constructor: `subarray` also looks up the species constructor and
// converts its arguments (measured 2026-11-21: 1.5% of a `ctsim trace --quiet` run, bench/trace.ts).
const typedSlice = Uint8Array.prototype.slice;

/**
 * The buffer and offset of the last array views were made into. A reader decodes thousands of packets from one
 * chunk, and `buffer` and `byteOffset` are generic getter calls in optimized code (`buffer` a call into the
 * runtime): they are read once per chunk instead of once per packet.
 */
let viewSource: Uint8Array | undefined;
let viewBuffer: ArrayBufferLike = new ArrayBuffer(0);
let viewOffset = 0;
/** A DataView over that array (its offsets are the array's): header words in one read instead of 2 or 4 bytes. */
let viewData: DataView = new DataView(viewBuffer);

/**
 * Tells the decoder that the next packets come from `b` (the capture parsers call it once per chunk): reading
 * its buffer and offset here, outside decodeIpv4, keeps that step out of the decoder's optimized code, which
 * would otherwise meet it for the first time at the second chunk and be thrown away.
 */
export function decodeFrom(b: Uint8Array): void {
  if (b !== viewSource) {
    viewSource = b;
    viewBuffer = b.buffer;
    viewOffset = b.byteOffset;
    viewData = new DataView(viewBuffer, viewOffset, b.byteLength);
  }
}

/** A DataView over `b` (offsets are b's), the one decodeFrom made: the capture parsers read their headers with it. */
export function dataViewOf(b: Uint8Array): DataView {
  if (b !== viewSource) decodeFrom(b);
  return viewData;
}

/**
 * A view of [start..end) (start <= end) of the array decodeFrom was last given: what `subarray` gives, without
 * its generic steps. decodeIpv4 calls decodeFrom for its array before it gets here.
 */
function viewBytes(start: number, end: number): Uint8Array {
  return new Uint8Array(viewBuffer, viewOffset + start, end - start);
}

/** A copy of b[start..end): TypedArray slice, since Node's Buffer#slice returns a view instead. */
export function copyBytes(b: Uint8Array, start: number, end: number): Uint8Array {
  return typedSlice.call(b, start, end);
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/**
 * `foldChecksum(sum) === 0`: the bytes summed verify. Below 2^32 (any IPv4 datagram with its pseudo header)
 * the end-around carry is folded with integer operations instead of foldChecksum's floating-point modulo.
 */
function sumVerifies(sum: number): boolean {
  if (sum >= 0x100000000) return foldChecksum(sum) === 0;
  const s = (sum >>> 16) + (sum & 0xffff); // <= 0x1fffe
  return (s >>> 16) + (s & 0xffff) === 0xffff;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Whether a TCP or UDP segment's checksum (with its pseudo header) verifies; `dv` is a DataView over `buf`. */
function transportChecksum(
  buf: Uint8Array,
  dv: DataView,
  ip: Ipv4Header,
  protocol: number,
  start: number,
  len: number,
): ChecksumStatus {
  const sum = onesComplementSum(buf, start, len, pseudoHeaderSum(ip.src, ip.dst, protocol, len), dv);
  return sumVerifies(sum) ? "correct" : "incorrect";
}

/** Parses an IPv4 header whose ihl bytes are known to be present (`dv` is a DataView over `b`). */
function readIpv4Header(b: Uint8Array, dv: DataView, o: number, ihl: number): Ipv4Header {
  const flagsFrag = dv.getUint16(o + 6);
  return {
    ihl,
    tos: b[o + 1],
    totalLength: dv.getUint16(o + 2),
    id: dv.getUint16(o + 4),
    rf: (flagsFrag & 0x8000) !== 0,
    df: (flagsFrag & 0x4000) !== 0,
    mf: (flagsFrag & 0x2000) !== 0,
    fragOffset: flagsFrag & 0x1fff,
    ttl: b[o + 8],
    protocol: b[o + 9],
    checksum: dv.getUint16(o + 10),
    src: dv.getUint32(o + 12),
    dst: dv.getUint32(o + 16),
    options: ihl === 20 ? EMPTY_BYTES : copyBytes(b, o + 20, o + ihl),
  };
}

/** TCP options between `start` and `end` (`tcp_parse_options`, which stops silently at a malformed option). */
export function parseTcpOptions(b: Uint8Array, start: number, end: number): readonly TcpOption[] {
  if (start >= end) return NO_TCP_OPTIONS;
  const out: TcpOption[] = [];
  let i = start;
  while (i < end) {
    const kind = b[i];
    if (kind === TCPOPT_EOL) {
      out.push(OPT_EOL);
      break;
    }
    if (kind === TCPOPT_NOP) {
      out.push(OPT_NOP);
      i++;
      continue;
    }
    if (i + 1 >= end) break;
    const len = b[i + 1];
    if (len < 2 || i + len > end) break;
    if (kind === TCPOPT_MSS && len === 4) out.push({ kind: "mss", value: u16(b, i + 2) });
    else if (kind === TCPOPT_WINDOW && len === 3) out.push({ kind: "wscale", shift: b[i + 2] });
    else if (kind === TCPOPT_SACK_PERM && len === 2) out.push(OPT_SACK_PERM);
    else if (kind === TCPOPT_TIMESTAMP && len === 10)
      out.push({ kind: "timestamp", tsval: u32(b, i + 2), tsecr: u32(b, i + 6) });
    else if (kind === TCPOPT_SACK && len >= 10 && (len - 2) % 8 === 0) {
      const blocks: (readonly [number, number])[] = [];
      for (let j = i + 2; j < i + len; j += 8) blocks.push([u32(b, j), u32(b, j + 4)]);
      out.push({ kind: "sack", blocks });
    } else out.push({ kind: "unknown", type: kind, data: copyBytes(b, i + 2, i + len) });
    i += len;
  }
  return out;
}

/**
 * Decodes one IPv4 datagram from `buf[offset .. offset+length)` (the captured bytes; the datagram may be
 * longer when the capture was cut by the snaplen, or shorter when the link layer padded it).
 *
 * With `shareBytes` the payload is a view into `buf` instead of a copy (no allocation of a backing store); the
 * caller promises never to modify `buf` afterwards. The capture readers do this on buffers they own.
 */
export function decodeIpv4(
  buf: Uint8Array,
  offset: number,
  length: number,
  meta: DecodeMeta,
  shareBytes = false,
): Packet | DecodeFailure {
  if (length < 20) {
    if (length >= 1 && buf[offset] >> 4 !== 4) return failed(F_VERSION, buf[offset] >> 4);
    return failed(F_IP_TRUNCATED, length);
  }
  if (buf !== viewSource) decodeFrom(buf);
  const dv = viewData;
  const b0 = buf[offset];
  if (b0 >> 4 !== 4) return failed(F_VERSION, b0 >> 4);
  const ihl = (b0 & 0x0f) * 4;
  if (ihl < 20) return failed(F_IHL, ihl);
  if (ihl > length) return failed(F_IP_OPTIONS, length, ihl);
  const totalLength = dv.getUint16(offset + 2);
  if (totalLength < ihl) return failed(F_TOTAL_LENGTH, totalLength, ihl);
  const ip = readIpv4Header(buf, dv, offset, ihl);
  const ipChecksum: ChecksumStatus = sumVerifies(onesComplementSum(buf, offset, ihl, 0, dv))
    ? "correct"
    : "incorrect";

  const l4Start = offset + ihl;
  const l4Len = totalLength - ihl; // from the header
  const l4Avail = (length < totalLength ? length : totalLength) - ihl; // captured
  const complete = l4Avail === l4Len && !ip.mf && ip.fragOffset === 0;

  let l4: L4Header;
  let hdrLen: number;
  let l4Checksum: ChecksumStatus = "unknown";
  if (ip.fragOffset !== 0) {
    l4 = OTHER_L4;
    hdrLen = 0;
  } else if (ip.protocol === IPPROTO_TCP) {
    if (l4Avail < 20) return failed(F_TCP_TRUNCATED, l4Avail);
    const dataOffset = (buf[l4Start + 12] >> 4) * 4;
    if (dataOffset < 20) return failed(F_DATA_OFFSET, dataOffset);
    if (dataOffset > l4Len) return failed(F_DATA_OFFSET_BEYOND, dataOffset, l4Len);
    if (dataOffset > l4Avail) return failed(F_TCP_OPTIONS, l4Avail, dataOffset);
    const tcp: TcpHeader = {
      kind: "tcp",
      srcPort: dv.getUint16(l4Start),
      dstPort: dv.getUint16(l4Start + 2),
      seq: dv.getUint32(l4Start + 4),
      ack: dv.getUint32(l4Start + 8),
      dataOffset,
      reserved: buf[l4Start + 12] & 0x0e,
      flags: buf[l4Start + 13] | ((buf[l4Start + 12] & 1) << 8),
      window: dv.getUint16(l4Start + 14),
      checksum: dv.getUint16(l4Start + 16),
      urgentPointer: dv.getUint16(l4Start + 18),
      options: parseTcpOptions(buf, l4Start + 20, l4Start + dataOffset),
    };
    l4 = tcp;
    hdrLen = dataOffset;
    if (complete) l4Checksum = transportChecksum(buf, dv, ip, IPPROTO_TCP, l4Start, l4Len);
  } else if (ip.protocol === IPPROTO_UDP) {
    if (l4Avail < 8) return failed(F_UDP_TRUNCATED, l4Avail);
    const udp: UdpHeader = {
      kind: "udp",
      srcPort: dv.getUint16(l4Start),
      dstPort: dv.getUint16(l4Start + 2),
      length: dv.getUint16(l4Start + 4),
      checksum: dv.getUint16(l4Start + 6),
    };
    l4 = udp;
    hdrLen = 8;
    if (udp.checksum === 0) {
      // RFC 768: no checksum was computed; the kernel (udp_error) skips verification.
      l4Checksum = "correct";
    } else if (complete) l4Checksum = transportChecksum(buf, dv, ip, IPPROTO_UDP, l4Start, l4Len);
  } else if (ip.protocol === IPPROTO_ICMP) {
    if (l4Avail < 8) return failed(F_ICMP_TRUNCATED, l4Avail);
    const type = buf[l4Start];
    let quote: IcmpQuote | undefined;
    hdrLen = 8;
    if (isIcmpErrorType(type) && l4Avail >= 28 && buf[l4Start + 8] >> 4 === 4) {
      const innerIhl = (buf[l4Start + 8] & 0x0f) * 4;
      if (innerIhl >= 20 && 8 + innerIhl <= l4Avail) {
        const innerStart = l4Start + 8 + innerIhl;
        const rest = Math.min(8, l4Len - 8 - innerIhl, l4Avail - 8 - innerIhl);
        quote = {
          ip: readIpv4Header(buf, dv, l4Start + 8, innerIhl),
          l4: rest > 0 ? copyBytes(buf, innerStart, innerStart + rest) : EMPTY_BYTES,
        };
        hdrLen = 8 + innerIhl + (rest > 0 ? rest : 0);
      }
    }
    const code = buf[l4Start + 1];
    const checksum = dv.getUint16(l4Start + 2);
    const restOfHeader = dv.getUint32(l4Start + 4);
    const icmp: IcmpHeader = quote
      ? { kind: "icmp", type, code, checksum, restOfHeader, quote }
      : { kind: "icmp", type, code, checksum, restOfHeader };
    l4 = icmp;
    if (complete)
      l4Checksum = sumVerifies(onesComplementSum(buf, l4Start, l4Len, 0, dv)) ? "correct" : "incorrect";
  } else {
    l4 = OTHER_L4;
    hdrLen = 0;
  }

  const payloadStart = l4Start + hdrLen;
  const payloadEnd = l4Start + l4Avail;
  return {
    ip,
    l4,
    payloadLength: l4Len - hdrLen,
    payload:
      payloadEnd <= payloadStart
        ? EMPTY_BYTES
        : shareBytes
          ? viewBytes(payloadStart, payloadEnd)
          : copyBytes(buf, payloadStart, payloadEnd),
    iface: meta.iface,
    direction: meta.direction,
    link: meta.link,
    tsSec: meta.tsSec,
    tsNsec: meta.tsNsec,
    ipChecksum,
    l4Checksum,
    origin: meta.origin,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

function roundUp4(n: number): number {
  return (n + 3) & ~3;
}

/** Bytes the option list occupies on the wire, before padding. */
export function tcpOptionsLength(options: readonly TcpOption[]): number {
  let n = 0;
  for (const o of options) {
    switch (o.kind) {
      case "eol":
      case "nop":
        n += 1;
        break;
      case "mss":
        n += 4;
        break;
      case "wscale":
        n += 3;
        break;
      case "sackPermitted":
        n += 2;
        break;
      case "sack":
        n += 2 + 8 * o.blocks.length;
        break;
      case "timestamp":
        n += 10;
        break;
      case "unknown":
        n += 2 + o.data.length;
        break;
    }
  }
  return n;
}

function writeTcpOptions(b: Uint8Array, o: number, options: readonly TcpOption[]): void {
  for (const opt of options) {
    switch (opt.kind) {
      case "eol":
        b[o++] = TCPOPT_EOL;
        break;
      case "nop":
        b[o++] = TCPOPT_NOP;
        break;
      case "mss":
        b[o] = TCPOPT_MSS;
        b[o + 1] = 4;
        put16(b, o + 2, opt.value);
        o += 4;
        break;
      case "wscale":
        b[o] = TCPOPT_WINDOW;
        b[o + 1] = 3;
        b[o + 2] = opt.shift;
        o += 3;
        break;
      case "sackPermitted":
        b[o] = TCPOPT_SACK_PERM;
        b[o + 1] = 2;
        o += 2;
        break;
      case "sack":
        b[o] = TCPOPT_SACK;
        b[o + 1] = 2 + 8 * opt.blocks.length;
        o += 2;
        for (const [left, right] of opt.blocks) {
          put32(b, o, left);
          put32(b, o + 4, right);
          o += 8;
        }
        break;
      case "timestamp":
        b[o] = TCPOPT_TIMESTAMP;
        b[o + 1] = 10;
        put32(b, o + 2, opt.tsval);
        put32(b, o + 6, opt.tsecr);
        o += 10;
        break;
      case "unknown":
        b[o] = opt.type;
        b[o + 1] = 2 + opt.data.length;
        b.set(opt.data, o + 2);
        o += 2 + opt.data.length;
        break;
    }
  }
}

/** Writes an IPv4 header (checksum computed) at `o`; returns the header length. */
function writeIpv4Header(
  b: Uint8Array,
  o: number,
  ip: Ipv4Header,
  totalLength: number,
  carried = false,
  view?: DataView,
): number {
  const ihl = 20 + roundUp4(ip.options.length);
  if (ihl > 60) throw new RangeError(`IPv4 options too long (${ip.options.length} bytes)`);
  b[o] = 0x40 | (ihl >> 2);
  b[o + 1] = ip.tos;
  put16(b, o + 2, totalLength);
  put16(b, o + 4, ip.id);
  put16(
    b,
    o + 6,
    (ip.rf ? 0x8000 : 0) | (ip.df ? 0x4000 : 0) | (ip.mf ? 0x2000 : 0) | (ip.fragOffset & 0x1fff),
  );
  b[o + 8] = ip.ttl;
  b[o + 9] = ip.protocol;
  put32(b, o + 12, ip.src);
  put32(b, o + 16, ip.dst);
  b.set(ip.options, o + 20);
  put16(b, o + 10, carried ? ip.checksum : internetChecksum(b, o, ihl, view));
  return ihl;
}

/** Transport header length `encodeIpv4` will write for this packet. */
function encodedL4Length(l4: L4Header): number {
  switch (l4.kind) {
    case "tcp": {
      const dataOffset = Math.max(l4.dataOffset, 20 + roundUp4(tcpOptionsLength(l4.options)));
      if (dataOffset > 60) throw new RangeError(`TCP options too long (${dataOffset - 20} bytes)`);
      return dataOffset;
    }
    case "udp":
      return 8;
    case "icmp":
      return 8 + (l4.quote ? 20 + roundUp4(l4.quote.ip.options.length) + l4.quote.l4.length : 0);
    case "other":
      return 0;
  }
}

/**
 * Wire bytes of the datagram: total length, IP header checksum and TCP/UDP/ICMP checksums recomputed (the
 * transport checksum of a fragment is copied as carried, since it covers the whole datagram). Payload bytes come
 * from `p.payload`, zero-filled up to `payloadLength`.
 *
 * With `checksums: "carried"` every checksum is written as the packet carries it instead of recomputed: for
 * readers of the bytes that never look at checksums (the nf_log dump of TRACE lines), which then skip a pass
 * over the whole datagram.
 */
export function encodeIpv4(p: Packet, checksums: "compute" | "carried" = "compute"): Uint8Array {
  const totalLength = ipv4EncodedLength(p);
  const b = new Uint8Array(totalLength);
  writeIpv4(b, 0, p, totalLength, checksums === "carried");
  return b;
}

/** The length of `encodeIpv4(p)` (RangeError when the datagram or its options do not fit their fields). */
export function ipv4EncodedLength(p: Packet): number {
  const totalLength = 20 + roundUp4(p.ip.options.length) + encodedL4Length(p.l4) + p.payloadLength;
  if (totalLength > 0xffff) throw new RangeError(`IPv4 datagram too long (${totalLength} bytes)`);
  return totalLength;
}

/**
 * encodeIpv4's bytes written into b[o .. o + totalLength), which must be zero (a fresh array): writers that
 * frame the datagram (Ethernet, pcapng) build each record in one array.
 */
export function writeIpv4(b: Uint8Array, o: number, p: Packet, totalLength: number, carried = false): void {
  // One DataView for both checksums (the checksum code would otherwise make one per sum for a new array).
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ipHdrLen = writeIpv4Header(b, o, p.ip, totalLength, carried, dv);
  const l4 = p.l4;
  const l4HdrLen = encodedL4Length(l4);
  const s = o + ipHdrLen;
  const payloadStart = s + l4HdrLen;
  if (p.payload && p.payload.length > 0) {
    const n = Math.min(p.payload.length, p.payloadLength);
    b.set(n === p.payload.length ? p.payload : p.payload.subarray(0, n), payloadStart);
  }
  const l4Len = totalLength - ipHdrLen;
  const fragment = p.ip.mf || p.ip.fragOffset !== 0;
  const keep = fragment || carried; // transport checksum as carried
  switch (l4.kind) {
    case "tcp": {
      put16(b, s, l4.srcPort);
      put16(b, s + 2, l4.dstPort);
      put32(b, s + 4, l4.seq);
      put32(b, s + 8, l4.ack);
      b[s + 12] = ((l4HdrLen >> 2) << 4) | (l4.reserved & 0x0e) | ((l4.flags >> 8) & 1);
      b[s + 13] = l4.flags & 0xff;
      put16(b, s + 14, l4.window);
      put16(b, s + 18, l4.urgentPointer);
      writeTcpOptions(b, s + 20, l4.options);
      const sum = keep
        ? l4.checksum
        : foldChecksum(
            onesComplementSum(b, s, l4Len, pseudoHeaderSum(p.ip.src, p.ip.dst, IPPROTO_TCP, l4Len), dv),
          );
      put16(b, s + 16, sum);
      break;
    }
    case "udp": {
      put16(b, s, l4.srcPort);
      put16(b, s + 2, l4.dstPort);
      put16(b, s + 4, fragment ? l4.length : l4Len); // a fragment's UDP length covers the whole datagram
      let sum = keep
        ? l4.checksum
        : foldChecksum(
            onesComplementSum(b, s, l4Len, pseudoHeaderSum(p.ip.src, p.ip.dst, IPPROTO_UDP, l4Len), dv),
          );
      if (sum === 0 && !keep) sum = 0xffff; // RFC 768: a computed zero is sent as all ones
      put16(b, s + 6, sum);
      break;
    }
    case "icmp": {
      b[s] = l4.type;
      b[s + 1] = l4.code;
      put32(b, s + 4, l4.restOfHeader);
      if (l4.quote) {
        const q = l4.quote;
        const innerIhl = writeIpv4Header(b, s + 8, q.ip, q.ip.totalLength, carried, dv);
        b.set(q.l4, s + 8 + innerIhl);
      }
      put16(b, s + 2, keep ? l4.checksum : internetChecksum(b, s, l4Len, dv));
      break;
    }
    case "other":
      break;
  }
}

export interface EthernetOptions {
  /** MAC addresses, "aa:bb:cc:dd:ee:ff". */
  readonly src: string;
  readonly dst: string;
  /** VLAN ids, outermost first. */
  readonly vlans?: readonly number[];
  /** TPID of the outermost tag (default 0x88a8 with two or more tags, else 0x8100); inner tags use 0x8100. */
  readonly outerTpid?: number;
}

/** The bytes of MAC addresses seen so far (a capture has few; a writer encodes the same ones for every packet). */
const macBytesCache = new Map<string, Uint8Array>();

function macBytes(mac: string): Uint8Array {
  let b = macBytesCache.get(mac);
  if (b === undefined) {
    b = macToBytes(mac);
    if (macBytesCache.size < 4096) macBytesCache.set(mac, b);
  }
  return b;
}

/** Ethernet II frame (with optional 802.1Q/802.1ad tags) around `encodeIpv4(p)`. No FCS. */
export function encodeEthernet(p: Packet, eth: EthernetOptions): Uint8Array {
  const ipLen = ipv4EncodedLength(p);
  const b = new Uint8Array(ethernetHeaderLength(eth) + ipLen);
  writeEthernet(b, 0, p, eth, ipLen);
  return b;
}

/** The length of the Ethernet header encodeEthernet writes (14, and 4 a VLAN tag). */
export function ethernetHeaderLength(eth: EthernetOptions): number {
  return 14 + 4 * (eth.vlans?.length ?? 0);
}

/** encodeEthernet's bytes written into a zeroed b[o ..), the datagram being `ipLen` (ipv4EncodedLength) long. */
export function writeEthernet(
  b: Uint8Array,
  o: number,
  p: Packet,
  eth: EthernetOptions,
  ipLen: number,
): void {
  const vlans = eth.vlans ?? [];
  b.set(macBytes(eth.dst), o);
  b.set(macBytes(eth.src), o + 6);
  let at = o + 12;
  for (let i = 0; i < vlans.length; i++) {
    const tpid = i === 0 ? (eth.outerTpid ?? (vlans.length > 1 ? 0x88a8 : 0x8100)) : 0x8100;
    put16(b, at, tpid);
    put16(b, at + 2, vlans[i] & 0x0fff);
    at += 4;
  }
  put16(b, at, 0x0800);
  writeIpv4(b, at + 2, p, ipLen);
}
