/**
 * REDIRECT: destination NAT to the host itself.
 *
 * Mirrors net/netfilter/nf_nat_redirect.c `nf_nat_redirect_ipv4` and `nf_nat_redirect`, Linux 6.x
 * (torvalds/linux @ 0ea5c948); the same since 3.x. On LOCAL_OUT the new destination is 127.0.0.1; on
 * PRE_ROUTING the first address of the incoming device's ifa_list (primaries first, see ./nf_nat_masquerade
 * ifaList), NF_DROP when it has none. The rule's ports (`--to-ports`) and `--random` are kept; without ports a
 * DST manip keeps the port.
 * Leaves out on purpose: IPv6 (nf_nat_redirect_ipv6).
 */
import type { NfConn } from "../conntrack/core";
import type { NfHook, Seconds } from "../conntrack/types";
import { NF_DROP, NF_INET_LOCAL_OUT } from "../conntrack/types";
import type { NatState } from "./nf_nat_core";
import { nfNatSetupInfo } from "./nf_nat_core";
import type { NatIface } from "./nf_nat_masquerade";
import { ifaList } from "./nf_nat_masquerade";
import type { NfNatRange2 } from "./types";
import { NF_NAT_RANGE_MAP_IPS } from "./types";

export const INADDR_LOOPBACK = 0x7f000001;

/** The address REDIRECT sends to: 127.0.0.1 on LOCAL_OUT, else the incoming device's first address (0 = none). */
export function redirectAddress(hook: NfHook, inIface: NatIface | undefined): number {
  if (hook === NF_INET_LOCAL_OUT) return INADDR_LOOPBACK;
  if (!inIface) return 0;
  const first = ifaList(inIface)[0];
  return first ? first.local : 0;
}

/** nf_nat_redirect_ipv4(): returns the verdict. */
export function nfNatRedirectIpv4(
  nat: NatState,
  ct: NfConn,
  range: NfNatRange2,
  hook: NfHook,
  inIface: NatIface | undefined,
  now: Seconds,
): number {
  const newdst = redirectAddress(hook, inIface);
  if (!newdst) return NF_DROP;
  return nfNatSetupInfo(
    nat,
    ct,
    {
      flags: range.flags | NF_NAT_RANGE_MAP_IPS,
      minAddr: newdst,
      maxAddr: newdst,
      minProto: range.minProto,
      maxProto: range.maxProto,
      baseProto: 0,
    },
    "DST",
    now,
  );
}
