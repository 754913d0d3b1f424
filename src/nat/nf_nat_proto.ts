/**
 * NAT packet rewriting: the layer-3/layer-4 manipulation of a packet towards a target tuple, and the translation
 * of ICMP errors (inner quoted header with the inverse manip, then the outer header).
 *
 * Mirrors net/netfilter/nf_nat_proto.c — nf_nat_manip_pkt, nf_nat_ipv4_manip_pkt, l4proto_manip_pkt,
 * tcp_manip_pkt, udp_manip_pkt (__udp_manip_pkt), icmp_manip_pkt, nf_nat_ipv4_csum_update, nf_csum_update,
 * nf_nat_icmp_reply_translation — Linux 6.17 (Kingxukai/linux @ 0291023e); the same since 5.1 (before that the
 * per-protocol code lived in nf_nat_proto_{tcp,udp,icmp}.c with the same effect).
 *
 * Checksums: the kernel updates them incrementally (csum_replace4, inet_proto_csum_replace2/4; RFC 1624 eqn. 3),
 * so a checksum that was right stays right and a wrong one stays wrong. The same is done here on the `checksum`
 * fields, and the packet's `ipChecksum`/`l4Checksum` status is kept. The one full recomputation is the outer ICMP
 * checksum of a translated error (the kernel recomputes it with skb_checksum); it is computed from the encoded
 * packet (payload zero-filled where unknown).
 * Leaves out on purpose: IPv6/ICMPv6, SCTP (CRC32c), DCCP and GRE (PPTP call ids) rewriting — their packets
 * reach NAT as `kind: "other"` and only the addresses change; CHECKSUM_PARTIAL (locally generated) packets.
 */
import type { CtInfo, NfHook, Tuple } from "../conntrack/types";
import { IPS_DST_NAT, IPS_NAT_MASK, IPS_SRC_NAT, IP_CT_DIR_ORIGINAL } from "../conntrack/types";
import { ctinfoDir } from "../conntrack/core";
import { invertTuple } from "../conntrack/tuple";
import type { IcmpHeader, IcmpQuote, Ipv4Header, L4Header, Packet } from "../wire/packet";
import {
  ICMP_ADDRESS,
  ICMP_ADDRESSREPLY,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_INFO_REPLY,
  ICMP_INFO_REQUEST,
  ICMP_REDIRECT,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from "../wire/packet";
import { encodeIpv4 } from "../wire/ipv4";
import type { NfNatManipType } from "./types";
import { hook2manip } from "./types";
import { put16 } from "../wire/bytes";
import type { Mutable } from "../util/types";

/** The part of struct nf_conn that rewriting reads. */
export interface NatConnView {
  readonly orig: Tuple;
  readonly reply: Tuple;
  readonly status: number;
  /** Field-by-field tuple reads that build no Tuple (NfConn has them; plain views fall back to orig/reply). */
  tupleSrc?(dir: 0 | 1): number;
  tupleDst?(dir: 0 | 1): number;
  tupleSrcU?(dir: 0 | 1): number;
  tupleDstU?(dir: 0 | 1): number;
  tupleProtonum?(dir: 0 | 1): number;
}

const IPS_NAT_DONE_MASK = (1 << 7) | (1 << 8);

// ---------------------------------------------------------------------------------------------------------------
// incremental checksums (include/net/checksum.h csum_replace2/csum_replace4, RFC 1624 eqn. 3)

/** HC' = ~(~HC + ~m + m') for one 16-bit word. */
export function csumReplace2(check: number, from: number, to: number): number {
  let sum = (~check & 0xffff) + (~from & 0xffff) + (to & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The same for a 32-bit value (an address, as u32 or int32): both halves. */
export function csumReplace4(check: number, from: number, to: number): number {
  return csumReplace2(csumReplace2(check, from >>> 16, to >>> 16), from & 0xffff, to & 0xffff);
}

// ---------------------------------------------------------------------------------------------------------------
// layer 4

function isIcmpQuery(type: number): boolean {
  switch (type) {
    case ICMP_ECHO:
    case ICMP_ECHOREPLY:
    case ICMP_TIMESTAMP:
    case ICMP_TIMESTAMPREPLY:
    case ICMP_INFO_REQUEST:
    case ICMP_INFO_REPLY:
    case ICMP_ADDRESS:
    case ICMP_ADDRESSREPLY:
      return true;
    default:
      return false;
  }
}

/** The address the manip replaces and its new value (nf_nat_ipv4_csum_update's oldip/newip). */
function addrChange(ip: Ipv4Header, target: Tuple, manip: NfNatManipType): [number, number] {
  return manip === "SRC" ? [ip.src >>> 0, target.src >>> 0] : [ip.dst >>> 0, target.dst >>> 0];
}

/**
 * l4proto_manip_pkt() on a decoded header: tcp_manip_pkt, udp_manip_pkt, icmp_manip_pkt; others unchanged.
 * `oldIp`/`newIp` are the address being replaced and its new value (nf_nat_ipv4_csum_update's oldip/newip),
 * `newPort` the target's port on the manip's side, `icmpId` the target's src.u.icmp.id (either manip type).
 * With `inPlace` the header object itself is rewritten (the caller owns it) and returned.
 */
function l4protoManip(
  l4: L4Header,
  protonum: number,
  /** The addresses as u32 or int32: only their 16-bit halves are used. */
  oldIp: number,
  newIp: number,
  newPort: number,
  icmpId: number,
  manip: NfNatManipType,
  inPlace: boolean,
): L4Header {
  switch (protonum) {
    case IPPROTO_TCP:
    case IPPROTO_UDP: {
      if (l4.kind !== "tcp" && l4.kind !== "udp") return l4;
      const oldPort = manip === "SRC" ? l4.srcPort : l4.dstPort;
      let checksum = l4.checksum;
      // UDP without a checksum (0) is left so (udp_manip_pkt: do_csum = !!hdr->check).
      if (l4.kind === "tcp" || checksum !== 0) {
        checksum = csumReplace4(checksum, oldIp, newIp); // nf_csum_update (pseudo header)
        checksum = csumReplace2(checksum, oldPort, newPort);
        if (l4.kind === "udp" && checksum === 0) checksum = 0xffff; // CSUM_MANGLED_0
      }
      if (inPlace) {
        const w = l4 as Mutable<typeof l4>;
        if (manip === "SRC") w.srcPort = newPort;
        else w.dstPort = newPort;
        w.checksum = checksum;
        return l4;
      }
      return manip === "SRC" ? { ...l4, srcPort: newPort, checksum } : { ...l4, dstPort: newPort, checksum };
    }
    case IPPROTO_ICMP: {
      if (l4.kind !== "icmp" || !isIcmpQuery(l4.type)) return l4;
      const oldId = l4.restOfHeader >>> 16;
      const newId = icmpId & 0xffff;
      const checksum = csumReplace2(l4.checksum, oldId, newId);
      const restOfHeader = ((newId << 16) | (l4.restOfHeader & 0xffff)) >>> 0;
      if (inPlace) {
        const w = l4 as Mutable<typeof l4>;
        w.checksum = checksum;
        w.restOfHeader = restOfHeader;
        return l4;
      }
      return { ...l4, checksum, restOfHeader };
    }
    default:
      return l4;
  }
}

/**
 * How far the caller owns the packet it passes (a working copy no report or other packet references):
 * 0 not at all (rewriting copies), 1 the packet object and its IP header (rewritten in place; a changed layer-4
 * header is a new object), 2 its layer-4 header too.
 */
export type PacketWritable = 0 | 1 | 2;

/** nf_nat_ipv4_manip_pkt() on a whole packet: layer 4, then the address and the IP header checksum. */
export function nfNatIpv4ManipPkt(
  pkt: Packet,
  target: Tuple,
  manip: NfNatManipType,
  writable: PacketWritable = 0,
): Packet {
  return manipPkt(
    pkt,
    target.protonum,
    manip === "SRC" ? target.src : target.dst,
    manip === "SRC" ? target.srcU : target.dstU,
    target.srcU,
    manip,
    writable,
  );
}

/**
 * nfNatIpv4ManipPkt with the target tuple's fields passed one by one (no tuple object per packet). With
 * `writable` (see PacketWritable) the owned parts are rewritten in place and `pkt` itself is returned.
 */
function manipPkt(
  pkt: Packet,
  protonum: number,
  addr: number,
  port: number,
  icmpId: number,
  manip: NfNatManipType,
  writable: PacketWritable,
): Packet {
  const ip = pkt.ip;
  const oldIp = (manip === "SRC" ? ip.src : ip.dst) >>> 0;
  const newIp = addr >>> 0;
  // The addresses go to the checksum update as int32 (small integers to V8; the u32 values above 2^31 were boxed
  // into a heap number for each call): only their 16-bit halves are used.
  const l4 = l4protoManip(pkt.l4, protonum, oldIp | 0, newIp | 0, port, icmpId, manip, writable === 2);
  const checksum = csumReplace4(ip.checksum, oldIp | 0, newIp | 0);
  if (writable !== 0) {
    const w = ip as Mutable<Ipv4Header>;
    if (manip === "SRC") w.src = newIp;
    else w.dst = newIp;
    w.checksum = checksum;
    if (l4 !== pkt.l4) (pkt as Mutable<Packet>).l4 = l4;
    return pkt;
  }
  const newIpHdr: Ipv4Header =
    manip === "SRC" ? { ...ip, src: newIp, checksum } : { ...ip, dst: newIp, checksum };
  return { ...pkt, ip: newIpHdr, l4 };
}

/**
 * nf_nat_manip_pkt(): rewrite towards the inverse of the other direction's tuple. ORIGINAL packets take the
 * (inverted) REPLY tuple's addresses and ports, REPLY packets the (inverted) ORIGINAL ones.
 */
export function nfNatManipPkt(
  pkt: Packet,
  ct: NatConnView,
  mtype: NfNatManipType,
  dir: number,
  writable: PacketWritable = 0,
): Packet {
  if (ct.tupleProtonum !== undefined) {
    const od = dir === IP_CT_DIR_ORIGINAL ? 1 : 0;
    const protonum = ct.tupleProtonum(od);
    if (protonum !== IPPROTO_ICMP) {
      const dstU = ct.tupleDstU!(od);
      return mtype === "SRC"
        ? manipPkt(pkt, protonum, ct.tupleDst!(od), dstU, dstU, mtype, writable)
        : manipPkt(pkt, protonum, ct.tupleSrc!(od), ct.tupleSrcU!(od), dstU, mtype, writable);
    }
  }
  const other = dir === IP_CT_DIR_ORIGINAL ? ct.reply : ct.orig;
  if (other.protonum !== IPPROTO_ICMP) {
    // The inverse of a port tuple swaps its addresses and ports: read them from `other` directly.
    return mtype === "SRC"
      ? manipPkt(pkt, other.protonum, other.dst, other.dstU, other.dstU, mtype, writable)
      : manipPkt(pkt, other.protonum, other.src, other.srcU, other.dstU, mtype, writable);
  }
  const target = invertTuple(other);
  if (!target) return pkt; // an ICMP tuple without an inverse never gets a conntrack entry
  return nfNatIpv4ManipPkt(pkt, target, mtype, writable);
}

// ---------------------------------------------------------------------------------------------------------------
// ICMP errors

function get16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/**
 * nf_nat_ipv4_manip_pkt() at the quoted header (iphdroff = the inner IP header): the inner l4 words, the inner
 * IP header checksum. TCP's checksum is updated only when the whole inner TCP header was quoted (the kernel's
 * `hdrsize` rule); its bytes 8.. sit in `payload` (our quote keeps 8 transport bytes). Undefined when the quote
 * is too short for skb_ensure_writable (8 transport bytes for TCP, UDP and ICMP).
 */
function manipQuote(
  quote: IcmpQuote,
  payload: Uint8Array | undefined,
  payloadLength: number,
  target: Tuple,
  manip: NfNatManipType,
): { quote: IcmpQuote; payload: Uint8Array | undefined } | undefined {
  const ip = quote.ip;
  const [oldIp, newIp] = addrChange(ip, target, manip);
  let l4 = quote.l4;
  let newPayload = payload;
  switch (target.protonum) {
    case IPPROTO_TCP:
    case IPPROTO_UDP: {
      if (l4.length < 8) return undefined;
      l4 = Uint8Array.from(l4);
      const portOff = manip === "SRC" ? 0 : 2;
      const oldPort = get16(l4, portOff);
      const newPort = manip === "SRC" ? target.srcU : target.dstU;
      put16(l4, portOff, newPort);
      if (target.protonum === IPPROTO_UDP) {
        let check = get16(l4, 6);
        if (check !== 0) {
          check = csumReplace2(csumReplace4(check, oldIp, newIp), oldPort, newPort);
          put16(l4, 6, check === 0 ? 0xffff : check);
        }
      } else if (payload && 8 + payloadLength >= 20 && payload.length >= 10) {
        newPayload = Uint8Array.from(payload);
        const check = csumReplace2(csumReplace4(get16(newPayload, 8), oldIp, newIp), oldPort, newPort);
        put16(newPayload, 8, check);
      }
      break;
    }
    case IPPROTO_ICMP: {
      if (l4.length < 8) return undefined;
      if (isIcmpQuery(l4[0])) {
        l4 = Uint8Array.from(l4);
        const oldId = get16(l4, 4);
        const newId = target.srcU & 0xffff;
        put16(l4, 2, csumReplace2(get16(l4, 2), oldId, newId));
        put16(l4, 4, newId);
      }
      break;
    }
    default:
      break;
  }
  const newIpHdr: Ipv4Header =
    manip === "SRC"
      ? { ...ip, src: newIp, checksum: csumReplace4(ip.checksum, oldIp, newIp) }
      : { ...ip, dst: newIp, checksum: csumReplace4(ip.checksum, oldIp, newIp) };
  return { quote: { ip: newIpHdr, l4 }, payload: newPayload };
}

/** The ICMP checksum the kernel's skb_checksum recomputation gives, read back from the encoded datagram. */
function icmpChecksumOf(pkt: Packet): number {
  const bytes = encodeIpv4(pkt);
  const o = 20 + ((pkt.ip.options.length + 3) & ~3);
  return (bytes[o + 2] << 8) | bytes[o + 3];
}

/**
 * nf_nat_icmp_reply_translation(): an ICMP error RELATED to `ct`. If the connection is NATed in the direction
 * this hook handles (status bit XOR direction, as nf_nat_packet), the quoted packet is rewritten with the
 * inverse manip towards `ct`'s other-direction tuple, the ICMP checksum recomputed, and the outer header
 * rewritten as the reply to that tuple. Returns the packet (unchanged when nothing applies), or undefined for
 * NF_DROP (bad ICMP checksum, a redirect for a NATed connection, a quote too short to rewrite).
 */
export function nfNatIcmpReplyTranslation(
  ct: NatConnView,
  ctinfo: CtInfo,
  hook: NfHook,
  pkt: Packet,
): Packet | undefined {
  const dir = ctinfoDir(ctinfo);
  const manip = hook2manip(hook);
  const icmp = pkt.l4;
  if (icmp.kind !== "icmp" || !icmp.quote) return undefined; // skb_ensure_writable(hdrlen + sizeof(*inside))
  if (pkt.l4Checksum === "incorrect") return undefined; // nf_ip_checksum
  if (icmp.type === ICMP_REDIRECT) {
    if ((ct.status & IPS_NAT_DONE_MASK) !== IPS_NAT_DONE_MASK) return undefined;
    if (ct.status & IPS_NAT_MASK) return undefined;
  }
  let statusbit = manip === "SRC" ? IPS_SRC_NAT : IPS_DST_NAT;
  if (dir !== IP_CT_DIR_ORIGINAL) statusbit ^= IPS_NAT_MASK;
  if (!(ct.status & statusbit)) return pkt;

  const other = dir === IP_CT_DIR_ORIGINAL ? ct.reply : ct.orig;
  const inverse: NfNatManipType = manip === "SRC" ? "DST" : "SRC";
  const inner = manipQuote(icmp.quote, pkt.payload, pkt.payloadLength, other, inverse);
  if (!inner) return undefined;
  const innerL4: IcmpHeader = { ...icmp, quote: inner.quote };
  let out: Packet = { ...pkt, l4: innerL4, payload: inner.payload };
  out = { ...out, l4: { ...innerL4, checksum: icmpChecksumOf(out) } };

  // Change outer to look like the reply to an incoming packet.
  const target = invertTuple(other);
  if (!target) return undefined;
  return nfNatIpv4ManipPkt(out, { ...target, protonum: IPPROTO_ICMP }, manip);
}
