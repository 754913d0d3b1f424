/**
 * GENEVE encapsulation (RFC 8926, "Geneve: Generic Network Virtualization Encapsulation", UDP port 6081) with
 * its TLV options, and the AWS Gateway Load Balancer options seen in field report 002.
 *
 * Wire format (RFC 8926 section 3.4 and 3.5):
 *
 *     |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
 *     |        Virtual Network Identifier (VNI)       |    Reserved   |
 *     |                    Variable-Length Options                    |
 *   each option:
 *     |          Option Class         |C|    Type     |R|R|R| Length  |
 *     |                      Variable-Length Option Data              |
 *
 * Opt Len and an option's Length count 4-byte words (the option's Length excludes its own 4-byte header), so an
 * option carries at most 124 data bytes and all options together at most 252 bytes. The high bit of the option
 * type is the "critical" bit. The Linux side is drivers/net/geneve.c (`geneve_rx`, `geneve_build_header`,
 * include/net/geneve.h `struct genevehdr`/`struct geneve_opt`, kernel 6.18); the printed form follows tcpdump
 * 4.99 print-geneve.c `geneve_print`/`geneve_opts_print` at -vv (`class Unknown (0x108) type 0x1 len 12 data
 * 74a11ad9 6ec49886`, where `len` includes the 4-byte option header).
 *
 * AWS GWLB options (class 0x0108). What is known: seed 002 shows three options of class 0x108 with types 1, 2, 3
 * and 8, 8 and 4 data bytes, type 2 all zero, no critical bit, VNI 0, and an inner IPv4 packet printed directly
 * after the options (so Protocol Type 0x0800, not 0x6558 Ethernet). What is assumed, from AWS's appliance
 * integration documentation as recalled (not verified against a capture here): type 1 is the GWLB endpoint
 * (VPC endpoint) id, type 2 the attachment id (zero unless the traffic came through a transit gateway
 * attachment), type 3 the flow cookie the appliance must echo back unchanged.
 *
 * Leaves out on purpose: IPv6 outer headers, the OAM bit's semantics (carried, not acted on), Ethernet inner
 * frames (Protocol Type 0x6558 is carried as opaque bytes: `innerBytes` is returned, `inner` is not decoded),
 * UDP source port entropy rules (the caller picks the source port), option semantics other than AWS's.
 * No I/O.
 */
import type { Packet } from "./packet";
import { IPPROTO_UDP } from "./packet";
import type { DecodeFailure } from "./ipv4";
import { decodeIpv4, encodeIpv4, isDecodeFailure } from "./ipv4";
import { formatIpv4 } from "./addr";
import { formatAddressLine, formatIpHeader, formatTimestamp } from "./tcpdump_format";

export const GENEVE_UDP_PORT = 6081;

/** Narrows a GENEVE decoding result to its failure. */
export function isGeneveFailure<T extends object>(x: T | DecodeFailure): x is DecodeFailure {
  return "failure" in x;
}
/** Protocol Type values (ethertypes). */
export const GENEVE_PROTO_IPV4 = 0x0800;
export const GENEVE_PROTO_TEB = 0x6558;
/** The critical bit of an option type. */
export const GENEVE_OPT_CRITICAL = 0x80;
/** Largest data of one option (Length is 5 bits of 4-byte words) and of all options (Opt Len is 6 bits). */
export const GENEVE_MAX_OPT_DATA = 31 * 4;
export const GENEVE_MAX_OPTS_LEN = 63 * 4;

/** AWS Gateway Load Balancer option class and types (see the header for what is known and assumed). */
export const AWS_GWLB_OPT_CLASS = 0x0108;
export const AWS_GWLB_OPT_ENDPOINT_ID = 1;
export const AWS_GWLB_OPT_ATTACHMENT_ID = 2;
export const AWS_GWLB_OPT_FLOW_COOKIE = 3;

export interface GeneveOption {
  readonly optClass: number;
  /** Type byte including the critical bit (0x80). */
  readonly type: number;
  /** Option data; its length is a multiple of 4, at most 124. */
  readonly data: Uint8Array;
}

export interface GeneveHeader {
  /** Always 0 for RFC 8926. */
  readonly version: number;
  /** O bit: control (OAM) packet. */
  readonly oam: boolean;
  /** C bit: at least one critical option is present. */
  readonly critical: boolean;
  /** The six reserved flag bits, as carried (0 on send). */
  readonly reservedFlags: number;
  readonly protocolType: number;
  /** 24-bit virtual network identifier. */
  readonly vni: number;
  /** Trailing reserved byte, as carried. */
  readonly reserved: number;
  readonly options: readonly GeneveOption[];
}

export interface GeneveDecoded {
  readonly header: GeneveHeader;
  /** Offset of the inner frame within the buffer given to decodeGeneve. */
  readonly innerOffset: number;
}

/** What an encapsulated packet carries, decoded. */
export interface GeneveFrame {
  readonly header: GeneveHeader;
  /** The inner IPv4 packet (Protocol Type 0x0800). */
  readonly inner?: Packet;
  /** Inner bytes when they are not IPv4 or could not be decoded. */
  readonly innerBytes: Uint8Array;
  /** Why the inner IPv4 packet could not be decoded. */
  readonly innerFailure?: string;
}

export function geneveHeader(init: {
  readonly vni?: number;
  readonly protocolType?: number;
  readonly oam?: boolean;
  readonly options?: readonly GeneveOption[];
}): GeneveHeader {
  const options = init.options ?? [];
  return {
    version: 0,
    oam: init.oam ?? false,
    critical: options.some((o) => (o.type & GENEVE_OPT_CRITICAL) !== 0),
    reservedFlags: 0,
    protocolType: init.protocolType ?? GENEVE_PROTO_IPV4,
    vni: init.vni ?? 0,
    reserved: 0,
    options,
  };
}

/** Length in bytes of the options as encoded. */
export function geneveOptionsLength(options: readonly GeneveOption[]): number {
  let n = 0;
  for (const o of options) n += 4 + o.data.length;
  return n;
}

/** GENEVE header + options + inner bytes (the UDP payload). Throws RangeError on values the format cannot hold. */
export function encodeGeneve(h: GeneveHeader, inner: Uint8Array): Uint8Array {
  const optsLen = geneveOptionsLength(h.options);
  if (optsLen > GENEVE_MAX_OPTS_LEN) throw new RangeError(`GENEVE options too long (${optsLen} > 252 bytes)`);
  if (h.vni < 0 || h.vni > 0xffffff || !Number.isInteger(h.vni)) throw new RangeError(`GENEVE VNI ${h.vni}`);
  const b = new Uint8Array(8 + optsLen + inner.length);
  b[0] = ((h.version & 3) << 6) | (optsLen / 4);
  b[1] = (h.oam ? 0x80 : 0) | (h.critical ? 0x40 : 0) | (h.reservedFlags & 0x3f);
  b[2] = (h.protocolType >> 8) & 0xff;
  b[3] = h.protocolType & 0xff;
  b[4] = (h.vni >>> 16) & 0xff;
  b[5] = (h.vni >>> 8) & 0xff;
  b[6] = h.vni & 0xff;
  b[7] = h.reserved & 0xff;
  let o = 8;
  for (const opt of h.options) {
    const n = opt.data.length;
    if (n % 4 !== 0 || n > GENEVE_MAX_OPT_DATA)
      throw new RangeError(`GENEVE option data of ${n} bytes (must be a multiple of 4, at most 124)`);
    b[o] = (opt.optClass >> 8) & 0xff;
    b[o + 1] = opt.optClass & 0xff;
    b[o + 2] = opt.type & 0xff;
    b[o + 3] = n / 4;
    b.set(opt.data, o + 4);
    o += 4 + n;
  }
  b.set(inner, o);
  return b;
}

/**
 * Parses a GENEVE header and its options from `buf[offset .. offset+length)`. Like `geneve_rx`, a version other
 * than 0 is refused; an option whose length runs past Opt Len is refused (tcpdump prints `[bad length]`).
 */
export function decodeGeneve(
  buf: Uint8Array,
  offset = 0,
  length = buf.length - offset,
): GeneveDecoded | DecodeFailure {
  if (length < 8) return { failure: `truncated GENEVE header (${length} of 8 bytes)` };
  const b0 = buf[offset];
  const version = b0 >> 6;
  if (version !== 0) return { failure: `unknown GENEVE version ${version}` };
  const optsLen = (b0 & 0x3f) * 4;
  if (8 + optsLen > length)
    return { failure: `truncated GENEVE options (${length - 8} of ${optsLen} bytes)` };
  const b1 = buf[offset + 1];
  const options: GeneveOption[] = [];
  let o = offset + 8;
  const end = o + optsLen;
  while (o < end) {
    if (end - o < 4) return { failure: `truncated GENEVE option header at byte ${o - offset}` };
    const n = (buf[o + 3] & 0x1f) * 4;
    if (o + 4 + n > end)
      return { failure: `GENEVE option at byte ${o - offset} runs past the options (${n} data bytes)` };
    options.push({
      optClass: (buf[o] << 8) | buf[o + 1],
      type: buf[o + 2],
      data: buf.slice(o + 4, o + 4 + n),
    });
    o += 4 + n;
  }
  return {
    header: {
      version,
      oam: (b1 & 0x80) !== 0,
      critical: (b1 & 0x40) !== 0,
      reservedFlags: b1 & 0x3f,
      protocolType: (buf[offset + 2] << 8) | buf[offset + 3],
      vni: ((buf[offset + 4] << 16) | (buf[offset + 5] << 8) | buf[offset + 6]) >>> 0,
      reserved: buf[offset + 7],
      options,
    },
    innerOffset: end,
  };
}

export interface OuterAddressing {
  readonly src: number;
  readonly dst: number;
  /** UDP source port (flow entropy; the GWLB keeps it per flow). */
  readonly srcPort: number;
  readonly dstPort?: number;
  readonly ttl?: number;
  readonly id?: number;
  readonly df?: boolean;
}

/** Wraps `inner` in IPv4/UDP/GENEVE; the result is a validated Packet whose UDP payload is the GENEVE message. */
export function geneveEncapsulate(inner: Packet, header: GeneveHeader, outer: OuterAddressing): Packet {
  const innerBytes = encodeIpv4(inner);
  const payload = encodeGeneve(header, innerBytes);
  const udpLen = 8 + payload.length;
  const skeleton: Packet = {
    ip: {
      ihl: 20,
      tos: 0,
      totalLength: 20 + udpLen,
      id: outer.id ?? 0,
      rf: false,
      df: outer.df ?? false,
      mf: false,
      fragOffset: 0,
      ttl: outer.ttl ?? 64,
      protocol: IPPROTO_UDP,
      checksum: 0,
      src: outer.src,
      dst: outer.dst,
      options: new Uint8Array(0),
    },
    l4: {
      kind: "udp",
      srcPort: outer.srcPort,
      dstPort: outer.dstPort ?? GENEVE_UDP_PORT,
      length: udpLen,
      checksum: 0,
    },
    payloadLength: payload.length,
    payload,
    tsSec: inner.tsSec,
    tsNsec: inner.tsNsec,
    ipChecksum: "unknown",
    l4Checksum: "unknown",
  };
  // One round trip through the codec fills in lengths and checksums as a sender would.
  const bytes = encodeIpv4(skeleton);
  const p = decodeIpv4(bytes, 0, bytes.length, { tsSec: inner.tsSec, tsNsec: inner.tsNsec });
  if (isDecodeFailure(p)) throw new Error(`GENEVE encapsulation made an undecodable datagram: ${p.failure}`);
  return p;
}

/** Whether a packet is UDP to the GENEVE port (what a GENEVE socket would receive). */
export function isGenevePacket(p: Packet, port = GENEVE_UDP_PORT): boolean {
  return p.l4.kind === "udp" && p.l4.dstPort === port;
}

/** Unwraps a UDP/GENEVE packet; the inner IPv4 packet keeps the outer packet's timestamp. */
export function geneveDecapsulate(outer: Packet): GeneveFrame | DecodeFailure {
  if (outer.l4.kind !== "udp") return { failure: "not UDP" };
  const payload = outer.payload;
  if (!payload || payload.length < outer.payloadLength)
    return {
      failure: `GENEVE payload not captured (${payload?.length ?? 0} of ${outer.payloadLength} bytes)`,
    };
  const d = decodeGeneve(payload, 0, outer.payloadLength);
  if (isGeneveFailure(d)) return d;
  const innerBytes = payload.subarray(d.innerOffset, outer.payloadLength);
  if (d.header.protocolType !== GENEVE_PROTO_IPV4) return { header: d.header, innerBytes };
  const inner = decodeIpv4(innerBytes, 0, innerBytes.length, { tsSec: outer.tsSec, tsNsec: outer.tsNsec });
  if (isDecodeFailure(inner)) return { header: d.header, innerBytes, innerFailure: inner.failure };
  return { header: d.header, inner, innerBytes };
}

// ---------------------------------------------------------------------------------------------------------------
// AWS GWLB options

export interface AwsGwlbMetadata {
  /** 64-bit GWLB endpoint id (type 1). */
  readonly endpointId: bigint;
  /** 64-bit attachment id (type 2); 0 when absent. */
  readonly attachmentId: bigint;
  /** 32-bit flow cookie (type 3). */
  readonly flowCookie: number;
}

function u64Bytes(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return b;
}

function u32Bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

/** The three options in the order seed 002 shows them: endpoint id, attachment id, flow cookie. */
export function awsGwlbOptions(m: AwsGwlbMetadata): GeneveOption[] {
  return [
    { optClass: AWS_GWLB_OPT_CLASS, type: AWS_GWLB_OPT_ENDPOINT_ID, data: u64Bytes(m.endpointId) },
    { optClass: AWS_GWLB_OPT_CLASS, type: AWS_GWLB_OPT_ATTACHMENT_ID, data: u64Bytes(m.attachmentId) },
    { optClass: AWS_GWLB_OPT_CLASS, type: AWS_GWLB_OPT_FLOW_COOKIE, data: u32Bytes(m.flowCookie) },
  ];
}

/** Reads the AWS options; undefined when the endpoint id or the flow cookie is missing or has the wrong size. */
export function parseAwsGwlbOptions(options: readonly GeneveOption[]): AwsGwlbMetadata | undefined {
  let endpointId: bigint | undefined;
  let attachmentId = 0n;
  let flowCookie: number | undefined;
  for (const o of options) {
    if (o.optClass !== AWS_GWLB_OPT_CLASS) continue;
    const dv = new DataView(o.data.buffer, o.data.byteOffset, o.data.byteLength);
    const type = o.type & ~GENEVE_OPT_CRITICAL;
    if (type === AWS_GWLB_OPT_ENDPOINT_ID && o.data.length === 8) endpointId = dv.getBigUint64(0);
    else if (type === AWS_GWLB_OPT_ATTACHMENT_ID && o.data.length === 8) attachmentId = dv.getBigUint64(0);
    else if (type === AWS_GWLB_OPT_FLOW_COOKIE && o.data.length === 4) flowCookie = dv.getUint32(0);
  }
  if (endpointId === undefined || flowCookie === undefined) return undefined;
  return { endpointId, attachmentId, flowCookie };
}

// ---------------------------------------------------------------------------------------------------------------
// tcpdump form

/** print-geneve.c format_opt_class. */
export function geneveOptClassName(c: number): string {
  switch (c) {
    case 0x0100:
      return "Linux";
    case 0x0101:
      return "Open vSwitch";
    case 0x0102:
      return "Open Virtual Networking (OVN)";
    case 0x0103:
      return "In-band Network Telemetry (INT)";
    case 0x0104:
      return "VMware";
    default:
      return c <= 0x00ff ? "Standard" : c >= 0xfff0 ? "Experimental" : "Unknown";
  }
}

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [0x80, "O"],
  [0x40, "C"],
  [0x20, "R1"],
  [0x10, "R2"],
  [0x08, "R3"],
  [0x04, "R4"],
  [0x02, "R5"],
  [0x01, "R6"],
];

/** `Geneve, Flags [none], vni 0x0, options [...]` as `geneve_print` writes it at -vv (without the inner packet). */
export function formatGeneveHeader(h: GeneveHeader, vv = true): string {
  const flags = (h.oam ? 0x80 : 0) | (h.critical ? 0x40 : 0) | (h.reservedFlags & 0x3f);
  const names = FLAG_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n);
  let out = `Geneve, Flags [${names.length ? names.join("") : "none"}], vni 0x${h.vni.toString(16)}`;
  if (h.reserved) out += `, rsvd 0x${h.reserved.toString(16)}`;
  const optsLen = geneveOptionsLength(h.options);
  if (optsLen > 0) {
    const parts = h.options.map((o) => {
      let s = `class ${geneveOptClassName(o.optClass)} (0x${o.optClass.toString(16)}) type 0x${o.type.toString(16)}`;
      s += `${o.type & GENEVE_OPT_CRITICAL ? "(C)" : ""} len ${4 + o.data.length}`;
      if (vv && o.data.length > 0) {
        s += " data";
        const dv = new DataView(o.data.buffer, o.data.byteOffset, o.data.byteLength);
        for (let i = 0; i + 4 <= o.data.length; i += 4)
          s += ` ${dv.getUint32(i).toString(16).padStart(8, "0")}`;
      }
      return s;
    });
    out += `, options [${parts.join(", ")}]`;
  }
  return out;
}

/**
 * An encapsulated packet as `tcpdump -nvv` prints it: the outer IP header line, the UDP line with the GENEVE
 * header, then the inner packet (header line and address line). Falls back to the plain UDP form when the packet
 * is not GENEVE.
 */
export function formatGenevePacket(outer: Packet, time: "none" | "abs" | "epoch" = "none"): string {
  let out = formatTimestamp(outer.tsSec, outer.tsNsec, time);
  if (out) out += " ";
  out += `IP ${formatIpHeader(outer.ip, outer.ipChecksum === "incorrect")}\n    `;
  const udpLine = formatAddressLine(outer, true, true);
  const frame = geneveDecapsulate(outer);
  if (isGeneveFailure(frame)) return out + udpLine;
  out += udpLine.replace(/UDP, length \d+$/, formatGeneveHeader(frame.header));
  if (frame.inner) {
    out += `\n\tIP ${formatIpHeader(frame.inner.ip, frame.inner.ipChecksum === "incorrect")}\n    `;
    out += formatAddressLine(frame.inner, true, true);
  } else {
    out += `\n\tgeneve-proto-0x${frame.header.protocolType.toString(16)}`;
  }
  return out;
}

/** `src:port > dst:port [inner a > b]`, short text for hop summaries. */
export function geneveSummary(outer: Packet): string {
  const frame = geneveDecapsulate(outer);
  const l4 = outer.l4;
  const ports = l4.kind === "udp" ? `:${l4.srcPort} > ${formatIpv4(outer.ip.dst)}:${l4.dstPort}` : "";
  const head = `geneve ${formatIpv4(outer.ip.src)}${ports}`;
  if (isGeneveFailure(frame)) return `${head} (${frame.failure})`;
  if (!frame.inner) return head;
  return `${head} [inner ${formatIpv4(frame.inner.ip.src)} > ${formatIpv4(frame.inner.ip.dst)}]`;
}
