/**
 * MASQUERADE: source NAT to the address the kernel would pick as source on the output interface.
 *
 * Mirrors net/netfilter/nf_nat_masquerade.c `nf_nat_masquerade_ipv4` and net/ipv4/devinet.c `inet_select_addr`
 * / `in_dev_select_addr` (scope RT_SCOPE_UNIVERSE), Linux 6.17 (Kingxukai/linux @ 9b44fff6; devinet.c as in the
 * 6.6/6.12 stable trees). Primary/secondary addresses follow `__inet_insert_ifa`: an address is secondary when
 * an earlier primary on the device has the same prefix length and covers it; the device's ifa_list holds the
 * primaries (stable-sorted by scope) before the secondaries.
 *
 * Address choice: the first primary address of the output device whose subnet holds the next hop; else the
 * device's first primary of universe scope; else (inet_select_addr's fallback) the first primary universe,
 * non-link-scope address of any device of the namespace, in device order — only when the caller passes the
 * host's interface list. No address at all: "<dev> ate my IP address" and NF_DROP.
 * Scopes: 127.0.0.0/8 addresses are host scope (as `ip addr add` gives them), everything else universe.
 * Leaves out on purpose: IPv6 (nf_nat_masquerade_ipv6), VRF masters, route_localnet, the notifiers that flush
 * masqueraded entries when an address or device goes away (masq_device_event, masq_inet_event).
 */
import type { NfConn } from "../conntrack/core";
import type { Seconds } from "../conntrack/types";
import { NF_ACCEPT, NF_DROP } from "../conntrack/types";
import type { Ipv4Prefix } from "../wire/addr";
import { inPrefix } from "../wire/addr";
import type { NatState } from "./nf_nat_core";
import { nfNatSetupInfo } from "./nf_nat_core";
import type { NfNatRange2 } from "./types";
import { NF_NAT_RANGE_MAP_IPS } from "./types";

/** enum rt_scope_t values used here. */
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;

/** An interface as NAT needs it (src/host HostInterface fits). */
export interface NatIface {
  readonly name: string;
  readonly addresses: readonly Ipv4Prefix[];
}

/** struct in_ifaddr, reduced. */
export interface InIfaddr {
  readonly local: number;
  readonly prefixLen: number;
  readonly scope: number;
  readonly secondary: boolean;
}

function scopeOf(addr: number): number {
  return addr >>> 24 === 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
}

/**
 * ifa_lists made so far, by the device's address list (host interfaces do not change during a run; a device given
 * other addresses has another list): the kernel keeps in_dev->ifa_list as addresses come and go, and MASQUERADE
 * reads it for every new connection.
 */
const IFA_LISTS = new WeakMap<readonly Ipv4Prefix[], readonly InIfaddr[]>();

/** The device's ifa_list as __inet_insert_ifa builds it from the addresses in the order they were added. */
export function ifaList(dev: NatIface): readonly InIfaddr[] {
  let list = IFA_LISTS.get(dev.addresses);
  if (list === undefined) IFA_LISTS.set(dev.addresses, (list = buildIfaList(dev)));
  return list;
}

function buildIfaList(dev: NatIface): InIfaddr[] {
  const primaries: InIfaddr[] = [];
  const secondaries: InIfaddr[] = [];
  for (const a of dev.addresses) {
    const scope = scopeOf(a.addr);
    const covered = primaries.some(
      (p) => p.prefixLen === a.len && inPrefix(a.addr, { addr: p.local, len: a.len }),
    );
    const ifa: InIfaddr = { local: a.addr >>> 0, prefixLen: a.len, scope, secondary: covered };
    if (covered) {
      secondaries.push(ifa);
    } else {
      // Inserted after the last primary whose scope is not above its own.
      let at = 0;
      for (let i = 0; i < primaries.length; i++) if (primaries[i].scope <= scope) at = i + 1;
      primaries.splice(at, 0, ifa);
    }
  }
  return [...primaries, ...secondaries];
}

/**
 * inet_select_addr(dev, dst, scope): a source address for talking to `dst` (0 = any) out of `dev`; 0 when
 * there is none. `others` is every device of the namespace in order (loopback first), for the fallback.
 */
export function inetSelectAddr(
  dev: NatIface | undefined,
  dst: number,
  scope: number,
  others: readonly NatIface[] = [],
): number {
  let addr = 0;
  if (dev) {
    for (const ifa of ifaList(dev)) {
      if (ifa.secondary) continue;
      if (ifa.scope > scope) continue;
      if (!dst || inPrefix(dst, { addr: ifa.local, len: ifa.prefixLen })) return ifa.local;
      if (!addr) addr = ifa.local;
    }
  }
  if (addr) return addr;
  for (const other of others) {
    for (const ifa of ifaList(other)) {
      if (ifa.secondary) continue;
      if (ifa.scope !== RT_SCOPE_LINK && ifa.scope <= scope) return ifa.local;
    }
  }
  return 0;
}

/**
 * nf_nat_masquerade_ipv4() at POST_ROUTING: SNAT to inet_select_addr(out, nexthop), keeping the rule's port
 * range and random flags, and remembering the output interface (masq_index). `nexthop` is the route's gateway,
 * or the packet's destination for a directly connected one (rt_nexthop). Returns the verdict.
 */
export function nfNatMasqueradeIpv4(
  nat: NatState,
  ct: NfConn,
  range: NfNatRange2,
  outIface: NatIface,
  nexthop: number,
  now: Seconds,
  hostIfaces: readonly NatIface[] = [],
): number {
  // Source address is 0.0.0.0: a locally generated packet that is probably not supposed to be masqueraded.
  if (ct.orig.src === 0) return NF_ACCEPT;
  const newsrc = inetSelectAddr(outIface, nexthop >>> 0, RT_SCOPE_UNIVERSE, hostIfaces);
  if (!newsrc) {
    nat.log(`${outIface.name} ate my IP address`);
    return NF_DROP;
  }
  if (!ct.confirmed) ct.masqIndex = outIface.name;
  return nfNatSetupInfo(
    nat,
    ct,
    {
      flags: range.flags | NF_NAT_RANGE_MAP_IPS,
      minAddr: newsrc,
      maxAddr: newsrc,
      minProto: range.minProto,
      maxProto: range.maxProto,
      baseProto: range.baseProto,
    },
    "SRC",
    now,
  );
}
