/**
 * The IPv4 netfilter hook order as data: which functions sit at each hook, in priority order.
 *
 * Mirrors include/uapi/linux/netfilter_ipv4.h `enum nf_ip_hook_priorities` and the `nf_hook_ops` arrays that
 * register at those priorities, Linux 6.17/6.18:
 *   - iptable_raw.c (NF_IP_PRI_RAW, -300: PRE_ROUTING, LOCAL_OUT),
 *   - nf_conntrack_proto.c `ipv4_conntrack_ops` (ipv4_conntrack_in / ipv4_conntrack_local at
 *     NF_IP_PRI_CONNTRACK -200 on PRE_ROUTING / LOCAL_OUT; nf_confirm at NF_IP_PRI_CONNTRACK_CONFIRM = INT_MAX on
 *     POST_ROUTING / LOCAL_IN),
 *   - iptable_mangle.c (NF_IP_PRI_MANGLE, -150: all five hooks),
 *   - nf_nat_proto.c `nf_nat_ipv4_ops` (NF_IP_PRI_NAT_DST -100 on PRE_ROUTING / LOCAL_OUT, NF_IP_PRI_NAT_SRC 100
 *     on POST_ROUTING / LOCAL_IN; the nat table's chains run from inside these, see nf_nat_inet_fn),
 *   - iptable_filter.c (NF_IP_PRI_FILTER, 0: LOCAL_IN, FORWARD, LOCAL_OUT),
 *   - iptable_security.c (NF_IP_PRI_SECURITY, 50: LOCAL_IN, FORWARD, LOCAL_OUT).
 *
 * Leaves out on purpose: defragmentation (NF_IP_PRI_CONNTRACK_DEFRAG -400; ctsim packets are never
 * reassembled), SELinux (-225/225), conntrack helpers (300), and nftables base chains at arbitrary priorities
 * (with `--backend nft` the iptables-nft chains register at the same standard priorities, so this table holds).
 */
import type { Hook, TableName } from "../netfilter/ruleset";
import type { NfHook } from "../conntrack/types";
import {
  NF_INET_FORWARD,
  NF_INET_LOCAL_IN,
  NF_INET_LOCAL_OUT,
  NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING,
} from "../conntrack/types";

/** enum nf_ip_hook_priorities (the values ctsim uses). */
export const NF_IP_PRI_RAW = -300;
export const NF_IP_PRI_CONNTRACK = -200;
export const NF_IP_PRI_MANGLE = -150;
export const NF_IP_PRI_NAT_DST = -100;
export const NF_IP_PRI_FILTER = 0;
export const NF_IP_PRI_SECURITY = 50;
export const NF_IP_PRI_NAT_SRC = 100;
export const NF_IP_PRI_CONNTRACK_CONFIRM = 2147483647;

/** One registered hook function. */
export type HookEntry =
  /** An iptables table's built-in chain for this hook (ipt_do_table). */
  | {
      readonly kind: "table";
      readonly table: Exclude<TableName, "nat">;
      readonly priority: number;
      readonly fn: string;
    }
  /** nf_conntrack_in (PRE_ROUTING, LOCAL_OUT). */
  | { readonly kind: "conntrack"; readonly priority: number; readonly fn: string }
  /** nf_nat_ipv4_* -> nf_nat_inet_fn, which may run the nat table's chain for this hook. */
  | { readonly kind: "nat"; readonly manip: "SRC" | "DST"; readonly priority: number; readonly fn: string }
  /** nf_confirm (POST_ROUTING, LOCAL_IN). */
  | { readonly kind: "confirm"; readonly priority: number; readonly fn: string };

const raw: HookEntry = { kind: "table", table: "raw", priority: NF_IP_PRI_RAW, fn: "iptable_raw_hook" };
const mangle: HookEntry = {
  kind: "table",
  table: "mangle",
  priority: NF_IP_PRI_MANGLE,
  fn: "iptable_mangle_hook",
};
const filter: HookEntry = {
  kind: "table",
  table: "filter",
  priority: NF_IP_PRI_FILTER,
  fn: "iptable_filter_hook",
};
const security: HookEntry = {
  kind: "table",
  table: "security",
  priority: NF_IP_PRI_SECURITY,
  fn: "iptable_security_hook",
};
const natDst = (fn: string): HookEntry => ({ kind: "nat", manip: "DST", priority: NF_IP_PRI_NAT_DST, fn });
const natSrc = (fn: string): HookEntry => ({ kind: "nat", manip: "SRC", priority: NF_IP_PRI_NAT_SRC, fn });
const confirm: HookEntry = { kind: "confirm", priority: NF_IP_PRI_CONNTRACK_CONFIRM, fn: "nf_confirm" };

/** The functions at each hook, in the order the kernel calls them (ascending priority). */
export const HOOK_ORDER: Readonly<Record<Hook, readonly HookEntry[]>> = {
  PREROUTING: [
    raw,
    { kind: "conntrack", priority: NF_IP_PRI_CONNTRACK, fn: "ipv4_conntrack_in" },
    mangle,
    natDst("nf_nat_ipv4_pre_routing"),
  ],
  INPUT: [mangle, filter, security, natSrc("nf_nat_ipv4_local_in"), confirm],
  FORWARD: [mangle, filter, security],
  OUTPUT: [
    raw,
    { kind: "conntrack", priority: NF_IP_PRI_CONNTRACK, fn: "ipv4_conntrack_local" },
    mangle,
    natDst("nf_nat_ipv4_local_fn"),
    filter,
    security,
  ],
  POSTROUTING: [mangle, natSrc("nf_nat_ipv4_out"), confirm],
};

/** enum nf_inet_hooks number of an iptables hook name: a switch on the interned names (per packet, no keyed lookup). */
export function hookNum(hook: Hook): NfHook {
  switch (hook) {
    case "PREROUTING":
      return NF_INET_PRE_ROUTING;
    case "INPUT":
      return NF_INET_LOCAL_IN;
    case "FORWARD":
      return NF_INET_FORWARD;
    case "OUTPUT":
      return NF_INET_LOCAL_OUT;
    default:
      return NF_INET_POST_ROUTING;
  }
}
