/**
 * The TCP resets a Linux host sends without a socket:
 * - `nf_send_reset` of net/ipv4/netfilter/nf_reject_ipv4.c (REJECT --reject-with tcp-reset), with
 *   `nf_reject_ip_tcphdr_get` (no reset for a non-first fragment, a non-TCP packet, an RST, or a bad checksum
 *   outside LOCAL_OUT), `nf_reject_iphdr_put` (TOS 0, id 0, DF, TTL = ip4_dst_hoplimit, source = the
 *   offending destination even for forwarded packets) and `nf_reject_ip_tcphdr_put`; no reset when the
 *   offending packet was routed as broadcast or multicast; mark = IP4_REPLY_MARK (the offending mark with
 *   net.ipv4.fwmark_reflect, else 0).
 * - `tcp_v4_send_reset` of net/ipv4/tcp_ipv4.c for a segment to a local address with no socket: never for an
 *   RST, only when the destination is RTN_LOCAL; TOS = offending TOS without the ECN bits (6.12+), DF, id 0
 *   (ip_select_ident on a connectionless control socket), TTL ip_default_ttl.
 * Both: with ACK set the reset has seq = the offending ack and no ACK flag; otherwise seq 0, ACK set and ack =
 * seq + SYN + FIN + segment payload length. Window 0, no options. Linux 6.18.
 * Leaves out on purpose: TCP-MD5/AO signatures, the bridge (br_indev) path, the time-wait socket variants.
 */

import type { Packet } from "../wire/packet";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../wire/packet";
import { decodeIpv4, isDecodeFailure } from "../wire/ipv4";
import { internetChecksum, foldChecksum, onesComplementSum, pseudoHeaderSum } from "../wire/checksum";
import type { BuildResult } from "./icmp_send";
import { put16, put32 } from "../wire/bytes";

export interface ResetContext {
  /** Route type of the offending packet's destination (LOCAL, UNICAST, BROADCAST, MULTICAST...). */
  readonly dstType: string;
  /** TTL of the reset (ip4_dst_hoplimit / ip_default_ttl: 64). */
  readonly ttl: number;
  readonly tsSec?: number;
  readonly tsNsec?: number;
}

export interface NfResetContext extends ResetContext {
  /** The hook REJECT runs at; LOCAL_OUT ("OUTPUT") skips the checksum check. */
  readonly hook: string;
}

function resetPacket(orig: Packet, tos: number, ctx: ResetContext): BuildResult {
  const ip = orig.ip;
  const th = orig.l4;
  if (th.kind !== "tcp") return { refused: "not TCP" };
  const b = new Uint8Array(40);
  b[0] = 0x45;
  b[1] = tos;
  put16(b, 2, 40);
  put16(b, 4, 0);
  put16(b, 6, 0x4000);
  b[8] = ctx.ttl;
  b[9] = 6;
  put32(b, 12, ip.dst);
  put32(b, 16, ip.src);
  put16(b, 10, internetChecksum(b, 0, 20));
  put16(b, 20, th.dstPort);
  put16(b, 22, th.srcPort);
  let flags = TCP_RST;
  if (th.flags & TCP_ACK) {
    put32(b, 24, th.ack);
  } else {
    const segLen = ip.totalLength - ip.ihl - th.dataOffset;
    const ack = th.seq + (th.flags & TCP_SYN ? 1 : 0) + (th.flags & TCP_FIN ? 1 : 0) + segLen;
    put32(b, 28, ack >>> 0);
    flags |= TCP_ACK;
  }
  b[32] = 5 << 4;
  b[33] = flags;
  put16(b, 36, foldChecksum(onesComplementSum(b, 20, 20, pseudoHeaderSum(ip.dst, ip.src, 6, 20))));
  const p = decodeIpv4(b, 0, 40, { tsSec: ctx.tsSec ?? orig.tsSec, tsNsec: ctx.tsNsec ?? orig.tsNsec });
  if (isDecodeFailure(p)) throw new Error(`reset builder made an undecodable datagram: ${p.failure}`);
  return { packet: p };
}

/** nf_send_reset: REJECT --reject-with tcp-reset. */
export function nfSendReset(orig: Packet, ctx: NfResetContext): BuildResult {
  const ip = orig.ip;
  if (ip.fragOffset !== 0) return { refused: "not the first fragment" };
  if (ip.protocol !== 6) return { refused: "not TCP" };
  if (orig.l4.kind !== "tcp") return { refused: "TCP header unreadable" };
  if (orig.l4.flags & TCP_RST) return { refused: "no RST for an RST" };
  if (ctx.hook !== "OUTPUT" && orig.l4Checksum === "incorrect") return { refused: "bad TCP checksum" };
  if (ctx.dstType === "BROADCAST" || ctx.dstType === "MULTICAST") {
    return { refused: "offending packet was broadcast or multicast" };
  }
  return resetPacket(orig, 0, ctx);
}

/** tcp_v4_send_reset with no socket (a closed port on this host). */
export function tcpV4SendReset(orig: Packet, ctx: ResetContext): BuildResult {
  if (orig.l4.kind !== "tcp") return { refused: "not TCP" };
  if (orig.l4.flags & TCP_RST) return { refused: "no RST for an RST" };
  if (ctx.dstType !== "LOCAL") return { refused: "no socket and not addressed to this host" };
  return resetPacket(orig, orig.ip.tos & ~0x03, ctx);
}
