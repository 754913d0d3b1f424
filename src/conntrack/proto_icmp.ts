/**
 * ICMP connection tracking: query/reply pairs as connections, and error messages attached to the connection
 * they quote.
 *
 * Mirrors net/netfilter/nf_conntrack_proto_icmp.c (icmp_pkt_to_tuple, invmap, nf_conntrack_icmp_packet with its
 * valid_new table, nf_conntrack_icmpv4_error, nf_conntrack_inet_error), Linux 6.17 (Kingxukai/linux @ 9b44fff6).
 * Checked against recordings on Linux 6.18.44 (test/conntrack/golden/).
 * Leaves out on purpose: ICMPv6, per-conntrack timeout policies, and the "short packet" check (a validated
 * Packet always has a whole ICMP header).
 *
 * Reasons: where the kernel logs (nf_l4proto_log_invalid) the text is the kernel's; where it returns -NF_ACCEPT
 * silently the text says so in brackets, e.g. "[silent] no conntrack matches the quoted packet".
 */
import type { Packet } from "../wire/packet";
import {
  ICMP_ADDRESS,
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_INFO_REQUEST,
  ICMP_PARAMETERPROB,
  ICMP_REDIRECT,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  ICMP_TIMESTAMP,
  IPPROTO_ICMP,
} from "../wire/packet";
import { formatIpv4 } from "../wire/addr";
import type { CtDir, CtInfo, CtReason, L4Context, L4Result, L4Tracker, NfConnL4View, Tuple } from "./types";
import {
  IPS_FIXED_TIMEOUT,
  IP_CT_DIR_ORIGINAL,
  IP_CT_DIR_REPLY,
  IP_CT_RELATED,
  IP_CT_RELATED_REPLY,
  NF_ACCEPT,
  NF_INET_PRE_ROUTING,
} from "./types";
import { icmpTypeOf, invertIcmpU, invertTuple, packetProtoU, quoteTuple, tupleEqual } from "./tuple";

/** NR_ICMP_TYPES: the highest type the kernel knows. */
export const NR_ICMP_TYPES = 18;

/** valid_new[]: the only types that may create a connection. */
const VALID_NEW = new Set([ICMP_ECHO, ICMP_TIMESTAMP, ICMP_INFO_REQUEST, ICMP_ADDRESS]);

/** icmp_is_err(): destination unreachable, source quench, redirect, time exceeded, parameter problem. */
export function icmpIsErr(type: number): boolean {
  return (
    type === ICMP_DEST_UNREACH ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_REDIRECT ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAMETERPROB
  );
}

/**
 * The non-error part of nf_conntrack_icmpv4_error(): checksum (PRE_ROUTING with nf_conntrack_checksum only) and
 * the type range. Error types are then handled by `nfConntrackInetError` in the core.
 */
export function icmpError(pkt: Packet, ctx: L4Context): CtReason | undefined {
  const l4 = pkt.l4;
  if (l4.kind !== "icmp") return { fn: "nf_conntrack_icmpv4_error", text: "short packet" };
  if (
    ctx.sysctl.nf_conntrack_checksum &&
    ctx.hook === NF_INET_PRE_ROUTING &&
    pkt.l4Checksum === "incorrect"
  ) {
    return { fn: "nf_conntrack_icmpv4_error", text: "bad hw icmp checksum" };
  }
  if (l4.type > NR_ICMP_TYPES) return { fn: "nf_conntrack_icmpv4_error", text: "invalid icmp type" };
  return undefined;
}

/** nf_conntrack_icmp_packet(): only request types may create an entry; every valid packet refreshes 30 s. */
export function nfConntrackIcmpPacket(
  ct: NfConnL4View,
  _pkt: Packet,
  _dir: CtDir,
  _ctinfo: CtInfo,
  ctx: L4Context,
): L4Result {
  const type = icmpTypeOf(ct.tuplehash[IP_CT_DIR_ORIGINAL]);
  if (!VALID_NEW.has(type)) {
    return {
      verdict: -NF_ACCEPT,
      reason: {
        fn: "nf_conntrack_icmp_packet",
        text: `[silent] icmp: can't create new conn with type ${type}`,
      },
    };
  }
  if (!(ct.status & IPS_FIXED_TIMEOUT)) ct.timeout = ctx.now + ctx.sysctl.nf_conntrack_icmp_timeout;
  return ACCEPT;
}

const ACCEPT: L4Result = Object.freeze({ verdict: NF_ACCEPT });

export type InetErrorResult<T> =
  | { readonly ct: T; readonly dir: CtDir; readonly ctinfo: CtInfo }
  | { readonly ct?: undefined; readonly reason: CtReason };

/**
 * nf_conntrack_inet_error(): find the connection the quoted packet belongs to (inverting its tuple, since the
 * error travels the other way), check that the outer destination is that direction's destination, and attach
 * it as RELATED (or RELATED_REPLY when the match is the reply tuple). `find` is the core's zone-aware lookup.
 */
export function nfConntrackInetError<T extends { readonly tuplehash: readonly [Tuple, Tuple] }>(
  pkt: Packet,
  find: (t: Tuple) => T | undefined,
): InetErrorResult<T> {
  const fn = "nf_conntrack_inet_error";
  const quote = pkt.l4.kind === "icmp" ? pkt.l4.quote : undefined;
  if (!quote) return { reason: { fn, text: "[silent] the quoted packet is missing" } };
  const orig = quoteTuple(quote);
  if (!orig) return { reason: { fn, text: "[silent] cannot read the quoted packet's tuple" } };
  const inner = invertTuple(orig);
  if (!inner) return { reason: { fn, text: "[silent] the quoted tuple cannot be inverted" } };
  const ct = find(inner);
  if (!ct) return { reason: { fn, text: "[silent] no conntrack matches the quoted packet" } };
  const dir: CtDir = tupleEqual(inner, ct.tuplehash[IP_CT_DIR_REPLY]) ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
  const ctDaddr = ct.tuplehash[dir].dst;
  if (pkt.ip.dst >>> 0 !== ctDaddr) {
    return { reason: { fn, text: `outer daddr ${formatIpv4(pkt.ip.dst)} != inner ${formatIpv4(ctDaddr)}` } };
  }
  return { ct, dir, ctinfo: dir === IP_CT_DIR_REPLY ? IP_CT_RELATED_REPLY : IP_CT_RELATED };
}

export const icmpTracker: L4Tracker = {
  l4proto: IPPROTO_ICMP,
  name: "icmp",
  pktToTuple(pkt: Packet) {
    return pkt.l4.kind === "icmp" ? packetProtoU(pkt) : undefined;
  },
  invertTuple: invertIcmpU,
  error: icmpError,
  packet: nfConntrackIcmpPacket,
};
