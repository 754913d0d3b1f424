/**
 * NETMAP: 1:1 mapping of one prefix onto another, keeping the host part.
 *
 * Mirrors net/netfilter/xt_NETMAP.c `netmap_tg4` (torvalds/linux @ 3867a24c; unchanged in substance since 2.6)
 * and iptables extensions/libipt_NETMAP.c (`--to a.b.c.d/len` gives min_ip = addr & mask, max_ip = min_ip |
 * ~mask). The netmask is ~(min_ip ^ max_ip); on PRE_ROUTING and LOCAL_OUT the destination is mapped (DST
 * manip), on POST_ROUTING and LOCAL_IN the source (SRC manip). The rule's port range and flags are kept.
 * Leaves out on purpose: IPv6 (netmap_tg6).
 */
import type { NfConn } from "../conntrack/core";
import type { NfHook, Seconds } from "../conntrack/types";
import { NF_INET_LOCAL_OUT, NF_INET_PRE_ROUTING } from "../conntrack/types";
import type { Packet } from "../wire/packet";
import type { NatState } from "./nf_nat_core";
import { nfNatSetupInfo } from "./nf_nat_core";
import type { NfNatRange2 } from "./types";
import { NF_NAT_RANGE_MAP_IPS, hook2manip, nfNatRange } from "./types";

/** The range libipt_NETMAP stores for `--to addr/mask` (mask as a host-order u32). */
export function netmapRange(addr: number, mask: number): NfNatRange2 {
  const min = (addr & mask) >>> 0;
  return nfNatRange({ flags: NF_NAT_RANGE_MAP_IPS, minAddr: min, maxAddr: (min | ~mask) >>> 0 });
}

/** The mapped address: the packet's destination (DST hooks) or source, with the prefix replaced. */
export function netmapAddress(range: NfNatRange2, hook: NfHook, pkt: Packet): number {
  const netmask = ~(range.minAddr ^ range.maxAddr) >>> 0;
  const orig = hook === NF_INET_PRE_ROUTING || hook === NF_INET_LOCAL_OUT ? pkt.ip.dst : pkt.ip.src;
  return ((orig & ~netmask) | (range.minAddr & netmask)) >>> 0;
}

/** netmap_tg4(): returns the verdict of nf_nat_setup_info. */
export function netmapTg4(
  nat: NatState,
  ct: NfConn,
  range: NfNatRange2,
  hook: NfHook,
  pkt: Packet,
  now: Seconds,
): number {
  const newIp = netmapAddress(range, hook, pkt);
  return nfNatSetupInfo(
    nat,
    ct,
    {
      flags: range.flags | NF_NAT_RANGE_MAP_IPS,
      minAddr: newIp,
      maxAddr: newIp,
      minProto: range.minProto,
      maxProto: range.maxProto,
      baseProto: range.baseProto,
    },
    hook2manip(hook),
    now,
  );
}
