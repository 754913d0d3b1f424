/**
 * The ICMP error a Linux host sends about a packet: net/ipv4/icmp.c `__icmp_send` (and `icmp_pointers[]`
 * `.error`), as called by `nf_send_unreach` of net/ipv4/netfilter/nf_reject_ipv4.c (REJECT with an ICMP type)
 * and by the stack for a closed UDP port (`__udp4_lib_rcv` -> icmp_send port unreachable). Linux 6.18; checked
 * against the recorded egress of oracle scenario 09 (UDP to a closed port on the router).
 *
 * Refusals, in __icmp_send's order: the offending packet was not PACKET_HOST; it was routed as broadcast or
 * multicast; it is not the first fragment; it is an ICMP error (or an unknown ICMP type) and the new message is
 * an error too; its source cannot be answered (0.0.0.0, limited broadcast or multicast: the route lookup fails).
 * The message: IP TOS = (tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL for errors, TTL ip_default_ttl, no
 * DF (the ICMP socket is IP_PMTUDISC_DONT, so the id comes from ip_select_ident: the host's generator), source
 * = the offending destination when that was a local address, else the address routing picks towards the
 * offending source; body = as much of the offending datagram (from its IP header) as fits in 576 bytes (or the
 * route MTU when smaller).
 * Leaves out on purpose: rate limiting (icmp_global_allow / icmpv4_xrlim_allow: every error is sent), echoing
 * IP options (__ip_options_echo), net.ipv4.icmp_errors_use_inbound_ifaddr, ICMP extensions (RFC 4884).
 */

import type { Packet } from "../wire/packet";
import { decodeIpv4, encodeIpv4, isDecodeFailure } from "../wire/ipv4";
import { internetChecksum } from "../wire/checksum";
import { put16, put32 } from "../wire/bytes";

/** ICMP types whose icmp_pointers[] entry has `.error = 1`. */
const ICMP_ERROR_TYPES: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12]);
const NR_ICMP_TYPES = 18;
const IPTOS_TOS_MASK = 0x1e;
const IPTOS_PREC_INTERNETCONTROL = 0xc0;
/** RFC 1812 / the kernel's cap on an ICMP error's size. */
export const ICMP_ERROR_MAX = 576;

export interface IcmpSendContext {
  /** Route type of the offending packet's destination (its rtable: LOCAL, UNICAST, BROADCAST, MULTICAST...). */
  readonly dstType: string;
  /** skb->pkt_type of the offending packet ("host"/"unicast" is PACKET_HOST; locally made packets too). */
  readonly pktType: "unicast" | "broadcast" | "multicast" | "host" | "otherhost";
  /** Source address routing picks for a packet to `dst` (used when the offending destination is not ours). */
  readonly sourceFor: (dst: number) => number | undefined;
  /** dst_mtu of the route back to the offending source; 1500 when unknown. */
  readonly mtu?: number;
  /** net.ipv4.ip_default_ttl (64). */
  readonly ttl: number;
  /** IP id for the new datagram (ip_select_ident draws it; pass the host generator's value). */
  readonly id: number;
  readonly tsSec?: number;
  readonly tsNsec?: number;
}

export type BuildResult = { readonly packet: Packet } | { readonly refused: string };

function isUnanswerableSource(addr: number): boolean {
  return addr === 0 || addr === 0xffffffff || addr >>> 28 === 0xe;
}

/** __icmp_send: the ICMP message the host sends about `orig`, or why it sends nothing. */
export function icmpSend(
  orig: Packet,
  type: number,
  code: number,
  info: number,
  ctx: IcmpSendContext,
): BuildResult {
  const ip = orig.ip;
  if (ctx.pktType !== "host" && ctx.pktType !== "unicast") return { refused: "not PACKET_HOST" };
  if (ctx.dstType === "BROADCAST" || ctx.dstType === "MULTICAST") {
    return { refused: "offending packet was broadcast or multicast" };
  }
  if (ip.fragOffset !== 0) return { refused: "not the first fragment" };
  const isError = ICMP_ERROR_TYPES.has(type);
  if (isError && ip.protocol === 1) {
    if (orig.l4.kind !== "icmp") return { refused: "ICMP header of the offending packet is unreadable" };
    if (orig.l4.type > NR_ICMP_TYPES || ICMP_ERROR_TYPES.has(orig.l4.type)) {
      return { refused: "no ICMP error about an ICMP error" };
    }
  }
  if (isUnanswerableSource(ip.src)) return { refused: "offending source is not a unicast address" };
  let saddr = ip.dst;
  if (ctx.dstType !== "LOCAL") {
    const s = ctx.sourceFor(ip.src);
    if (s === undefined) return { refused: "no route back to the offending source" };
    saddr = s;
  }
  const tos = isError ? (ip.tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL : ip.tos;

  const quoted = encodeIpv4(orig);
  const room = Math.min(ctx.mtu ?? 1500, ICMP_ERROR_MAX) - 20 - 8;
  if (room <= 0) return { refused: "route MTU too small" };
  const dataLen = Math.min(quoted.length, room);
  const total = 20 + 8 + dataLen;
  const b = new Uint8Array(total);
  b[0] = 0x45;
  b[1] = tos;
  put16(b, 2, total);
  put16(b, 4, ctx.id & 0xffff);
  put16(b, 6, 0); // no DF
  b[8] = ctx.ttl;
  b[9] = 1;
  put32(b, 12, saddr);
  put32(b, 16, ip.src);
  put16(b, 10, internetChecksum(b, 0, 20));
  b[20] = type;
  b[21] = code;
  put32(b, 24, info >>> 0);
  b.set(quoted.subarray(0, dataLen), 28);
  put16(b, 22, internetChecksum(b, 20, total - 20));
  const p = decodeIpv4(b, 0, total, { tsSec: ctx.tsSec ?? orig.tsSec, tsNsec: ctx.tsNsec ?? orig.tsNsec });
  if (isDecodeFailure(p)) throw new Error(`icmpSend built an undecodable datagram: ${p.failure}`);
  return { packet: p };
}
