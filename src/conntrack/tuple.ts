/**
 * Conntrack tuples: building them from packets (and from the packet quoted inside an ICMP error), inversion, and
 * the packed table key.
 *
 * Mirrors net/netfilter/nf_conntrack_core.c (nf_ct_get_tuple, nf_ct_get_tuple_ports, ipv4_get_l4proto,
 * nf_ct_get_tuplepr, nf_ct_invert_tuple) and net/netfilter/nf_conntrack_proto_icmp.c (icmp_pkt_to_tuple, invmap,
 * nf_conntrack_invert_icmp_tuple), Linux 6.17 (Kingxukai/linux @ 9b44fff6); unchanged in substance since 3.x.
 * Leaves out on purpose: IPv6 and ICMPv6, GRE keys (GRE is tracked as a generic protocol), SCTP/DCCP/UDPLITE
 * ports (UDPLITE is tracked generically), and zone directions (CT --zone-orig/--zone-reply): a zone applies to
 * both directions.
 */
import type { IcmpQuote, Packet } from "../wire/packet";
import {
  ICMP_ADDRESS,
  ICMP_ADDRESSREPLY,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_INFO_REPLY,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from "../wire/packet";
import type { Tuple } from "./types";

/** IPPROTO_UDPLITE and IPPROTO_SCTP carry ports at the same place as UDP. */
export const IPPROTO_UDPLITE = 136;
export const IPPROTO_SCTP = 132;

export function makeTuple(src: number, dst: number, protonum: number, srcU = 0, dstU = 0): Tuple {
  return { src: src >>> 0, dst: dst >>> 0, protonum, srcU, dstU };
}

export function tupleEqual(a: Tuple, b: Tuple): boolean {
  return (
    a.src === b.src && a.dst === b.dst && a.protonum === b.protonum && a.srcU === b.srcU && a.dstU === b.dstU
  );
}

/** ICMP type (high byte of dstU) and code (low byte), as the kernel's dst.u.icmp.{type,code}. */
export function icmpTypeOf(t: Tuple): number {
  return t.dstU >>> 8;
}
export function icmpCodeOf(t: Tuple): number {
  return t.dstU & 0xff;
}

/** invmap: request <-> reply types; other types have no inverse. */
const ICMP_INVMAP: ReadonlyMap<number, number> = new Map([
  [ICMP_ECHO, ICMP_ECHOREPLY],
  [ICMP_ECHOREPLY, ICMP_ECHO],
  [ICMP_TIMESTAMP, ICMP_TIMESTAMPREPLY],
  [ICMP_TIMESTAMPREPLY, ICMP_TIMESTAMP],
  [ICMP_INFO_REQUEST, ICMP_INFO_REPLY],
  [ICMP_INFO_REPLY, ICMP_INFO_REQUEST],
  [ICMP_ADDRESS, ICMP_ADDRESSREPLY],
  [ICMP_ADDRESSREPLY, ICMP_ADDRESS],
]);

/** nf_conntrack_invert_icmp_tuple: the id stays, the type maps through invmap, the code stays. */
export function invertIcmpU(t: Tuple): { srcU: number; dstU: number } | undefined {
  const inv = ICMP_INVMAP.get(icmpTypeOf(t));
  if (inv === undefined) return undefined;
  return { srcU: t.srcU, dstU: (inv << 8) | icmpCodeOf(t) };
}

/**
 * nf_ct_invert_tuple: swaps the addresses; ICMP maps through invmap, every other protocol swaps its two
 * protocol words (ports; zeros for generic protocols). Undefined when the tuple cannot be inverted.
 */
export function invertTuple(t: Tuple): Tuple | undefined {
  if (t.protonum === IPPROTO_ICMP) {
    const u = invertIcmpU(t);
    return u && { src: t.dst, dst: t.src, protonum: t.protonum, srcU: u.srcU, dstU: u.dstU };
  }
  return { src: t.dst, dst: t.src, protonum: t.protonum, srcU: t.dstU, dstU: t.srcU };
}

/** Protocols whose tuple carries ports (nf_ct_get_tuple_ports). */
export function hasPorts(protonum: number): boolean {
  return (
    protonum === IPPROTO_TCP ||
    protonum === IPPROTO_UDP ||
    protonum === IPPROTO_UDPLITE ||
    protonum === IPPROTO_SCTP
  );
}

/**
 * The protocol words of a packet's tuple (nf_ct_get_tuple's protocol switch), from the validated headers.
 * Undefined when the header is missing (e.g. a packet whose L4 header could not be parsed).
 */
export function packetProtoU(pkt: Packet): { srcU: number; dstU: number } | undefined {
  const l4 = pkt.l4;
  const proto = pkt.ip.protocol;
  if (proto === IPPROTO_ICMP) {
    if (l4.kind !== "icmp") return undefined;
    // The echo id is the first half of the rest-of-header word; non-echo types read the same bytes.
    return { srcU: (l4.restOfHeader >>> 16) & 0xffff, dstU: ((l4.type & 0xff) << 8) | (l4.code & 0xff) };
  }
  if (hasPorts(proto)) {
    if (l4.kind !== "tcp" && l4.kind !== "udp") return undefined;
    return { srcU: l4.srcPort, dstU: l4.dstPort };
  }
  return { srcU: 0, dstU: 0 };
}

/** The tuple of a packet in its own direction; undefined when the transport header cannot be read. */
export function packetTuple(pkt: Packet): Tuple | undefined {
  const u = packetProtoU(pkt);
  return u && makeTuple(pkt.ip.src, pkt.ip.dst, pkt.ip.protocol, u.srcU, u.dstU);
}

/**
 * nf_ct_get_tuplepr on the packet quoted in an ICMP error: undefined when the inner header is a non-first
 * fragment (ipv4_get_l4proto) or too short for the protocol words (skb_header_pointer fails: 4 bytes for
 * ports, 8 for an ICMP header).
 */
export function quoteTuple(quote: IcmpQuote): Tuple | undefined {
  const ip = quote.ip;
  if (ip.fragOffset !== 0) return undefined;
  const b = quote.l4;
  const proto = ip.protocol;
  if (proto === IPPROTO_ICMP) {
    if (b.length < 8) return undefined;
    return makeTuple(ip.src, ip.dst, proto, (b[4] << 8) | b[5], (b[0] << 8) | b[1]);
  }
  if (hasPorts(proto)) {
    if (b.length < 4) return undefined;
    return makeTuple(ip.src, ip.dst, proto, (b[0] << 8) | b[1], (b[2] << 8) | b[3]);
  }
  return makeTuple(ip.src, ip.dst, proto);
}

/**
 * The table key: the tuple and zone packed into 8 UTF-16 code units (addresses as two 16-bit halves each,
 * ports/ids, protocol, zone). Two keys per connection, so the key stays small.
 */
export function tupleKey(t: Tuple, zone: number): string {
  return tupleKeyOf(t.src, t.dst, t.protonum, t.srcU, t.dstU, zone);
}

/** tupleKey from the fields (addresses as u32 or int32: only their bits are used). */
export function tupleKeyOf(
  src: number,
  dst: number,
  protonum: number,
  srcU: number,
  dstU: number,
  zone: number,
): string {
  return String.fromCharCode(
    (src >>> 16) & 0xffff,
    src & 0xffff,
    (dst >>> 16) & 0xffff,
    dst & 0xffff,
    srcU & 0xffff,
    dstU & 0xffff,
    protonum & 0xff,
    zone & 0xffff,
  );
}

/** One end of a tuple (address and its protocol word) mixed into 32 bits. */
function mixEnd(addr: number, u: number): number {
  let h = Math.imul(addr ^ 0x165667b1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15) ^ (u & 0xffff), 0xc2b2ae35);
  return h ^ (h >>> 13);
}

/**
 * The table hash of a tuple's fields and zone (the role of hash_conntrack_raw's jhash2 over the tuple): a
 * non-negative small integer (30 bits) so that Map keys stay unboxed. Different tuples may share a hash; the table
 * compares the tuple itself. Takes the fields rather than a Tuple so lookups need not build one; addresses may be
 * u32 or int32 (only their bits are used).
 *
 * Symmetric on purpose: swapping (src, srcU) with (dst, dstU) gives the same hash, so a TCP/UDP tuple and its
 * inverse — the ORIGINAL and REPLY tuples of an entry without NAT — share one table slot (one Map entry per
 * connection instead of two). The kernel's jhash is not symmetric; only the table's memory differs.
 */
export function tupleHashOf(
  src: number,
  dst: number,
  protonum: number,
  srcU: number,
  dstU: number,
  zone: number,
): number {
  let h = (mixEnd(src, srcU) + mixEnd(dst, dstU)) | 0;
  h = Math.imul(h ^ (h >>> 16) ^ (protonum | (zone << 8)), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return h & 0x3fffffff;
}

/** tupleHashOf for a Tuple. */
export function tupleHash(t: Tuple, zone: number): number {
  return tupleHashOf(t.src, t.dst, t.protonum, t.srcU, t.dstU, zone);
}
