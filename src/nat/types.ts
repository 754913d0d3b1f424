/**
 * NAT vocabulary: struct nf_nat_range2 and its flags, the manip type and HOOK2MANIP.
 *
 * Mirrors include/uapi/linux/netfilter/nf_nat.h (NF_NAT_RANGE_* flags, struct nf_nat_range2) and
 * include/net/netfilter/nf_nat.h (enum nf_nat_manip_type, HOOK2MANIP, nf_nat_initialized), Linux 6.17
 * (Kingxukai/linux @ 9b44fff6). Addresses are host-order u32 as everywhere in ctsim; `minProto`/`maxProto`/
 * `baseProto` are the union nf_conntrack_man_proto as a number (a port, or an ICMP id).
 * Leaves out: IPv6 addresses, NF_NAT_RANGE_PROTO_PSID (an out-of-tree MAP-E patch), GRE keys.
 */
import type { NfHook } from "../conntrack/types";
import {
  IPS_DST_NAT_DONE,
  IPS_SRC_NAT_DONE,
  NF_INET_LOCAL_IN,
  NF_INET_POST_ROUTING,
} from "../conntrack/types";

export const NF_NAT_RANGE_MAP_IPS = 1 << 0;
export const NF_NAT_RANGE_PROTO_SPECIFIED = 1 << 1;
export const NF_NAT_RANGE_PROTO_RANDOM = 1 << 2;
export const NF_NAT_RANGE_PERSISTENT = 1 << 3;
export const NF_NAT_RANGE_PROTO_RANDOM_FULLY = 1 << 4;
export const NF_NAT_RANGE_PROTO_OFFSET = 1 << 5;
export const NF_NAT_RANGE_NETMAP = 1 << 6;
export const NF_NAT_RANGE_PROTO_RANDOM_ALL = NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY;
export const NF_NAT_RANGE_MASK =
  NF_NAT_RANGE_MAP_IPS |
  NF_NAT_RANGE_PROTO_SPECIFIED |
  NF_NAT_RANGE_PROTO_RANDOM |
  NF_NAT_RANGE_PERSISTENT |
  NF_NAT_RANGE_PROTO_RANDOM_FULLY |
  NF_NAT_RANGE_PROTO_OFFSET |
  NF_NAT_RANGE_NETMAP;

/** struct nf_nat_range2. */
export interface NfNatRange2 {
  readonly flags: number;
  readonly minAddr: number;
  readonly maxAddr: number;
  readonly minProto: number;
  readonly maxProto: number;
  /** Start of the original port range for NF_NAT_RANGE_PROTO_OFFSET (`--to-source a:p1-p2/base`). */
  readonly baseProto: number;
}

/** enum nf_nat_manip_type. */
export type NfNatManipType = "SRC" | "DST";

/** A range with every field zero except those given (the kernel memsets its ranges). */
export function nfNatRange(r: Partial<NfNatRange2> = {}): NfNatRange2 {
  return {
    flags: r.flags ?? 0,
    minAddr: (r.minAddr ?? 0) >>> 0,
    maxAddr: (r.maxAddr ?? r.minAddr ?? 0) >>> 0,
    minProto: r.minProto ?? 0,
    maxProto: r.maxProto ?? r.minProto ?? 0,
    baseProto: r.baseProto ?? 0,
  };
}

/**
 * The options of an SNAT/DNAT/MASQUERADE/REDIRECT rule (src/netfilter/xt/xt_nat.ts `NatRange` and friends,
 * structurally) as the kernel's range: what iptables' libxt_NAT `parse_to` and xt_nat.c revision 2 hand over.
 */
export interface NatTargetRangeOptions {
  readonly addrs?: { readonly min: number; readonly max: number };
  readonly ports?: { readonly min: number; readonly max: number };
  readonly base?: number;
  readonly random?: boolean;
  readonly randomFully?: boolean;
  readonly persistent?: boolean;
}

/** The kernel's range of a rule's options; targets get it from their descriptor's `prepare`, once per rule. */
export function natRangeFromOptions(o: NatTargetRangeOptions): NfNatRange2 {
  let flags = 0;
  if (o.addrs) flags |= NF_NAT_RANGE_MAP_IPS;
  if (o.ports) flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
  if (o.base !== undefined) flags |= NF_NAT_RANGE_PROTO_OFFSET;
  if (o.random) flags |= NF_NAT_RANGE_PROTO_RANDOM;
  if (o.randomFully) flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
  if (o.persistent) flags |= NF_NAT_RANGE_PERSISTENT;
  return nfNatRange({
    flags,
    minAddr: o.addrs?.min ?? 0,
    maxAddr: o.addrs?.max ?? 0,
    minProto: o.ports?.min ?? 0,
    maxProto: o.ports?.max ?? 0,
    baseProto: o.base ?? 0,
  });
}

/** HOOK2MANIP(): POST_ROUTING and LOCAL_IN rewrite the source, every other hook the destination. */
export function hook2manip(hook: NfHook): NfNatManipType {
  return hook !== NF_INET_POST_ROUTING && hook !== NF_INET_LOCAL_IN ? "DST" : "SRC";
}

/** nf_nat_initialized(): the _DONE bit of this manip type. */
export function nfNatInitialized(ct: { readonly status: number }, manip: NfNatManipType): boolean {
  return (ct.status & (manip === "SRC" ? IPS_SRC_NAT_DONE : IPS_DST_NAT_DONE)) !== 0;
}
