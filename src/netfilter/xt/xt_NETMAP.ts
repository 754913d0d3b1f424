/**
 * NETMAP target: net/netfilter/xt_NETMAP.c (`netmap_tg4`; `.table` "nat", `.hooks` PRE_ROUTING |
 * POST_ROUTING | LOCAL_OUT | LOCAL_IN), kernel 6.17; userspace extensions/libipt_NETMAP.c (`NETMAP_parse`,
 * `NETMAP_save` prints the prefix length), iptables 1.8.x.
 *
 * Per packet (`netmap_tg4`): src/nat netmapTg4 — the prefix of the destination (PREROUTING, OUTPUT) or source
 * (POSTROUTING, INPUT) replaced by the rule's, bound with nf_nat_setup_info.
 *
 * Left out on purpose: IPv6.
 */

import { formatIpv4 } from "../../wire/addr";
import type { TargetDescriptor } from "../registry";
import { collect, maskToLen, parseAddrMask } from "./util";
import { NAT_HOOKNUM, natTargetConn, natTargetHost, natVerdict } from "./xt_nat";
import { netmapRange, netmapTg4 } from "../../nat/netmap";

export interface NetmapTargetOptions {
  readonly addr: number;
  readonly mask: number;
}

export const netmapTarget: TargetDescriptor<NetmapTargetOptions> = {
  kind: "target",
  name: "NETMAP",
  kernelFile: "net/netfilter/xt_NETMAP.c",
  userspaceFile: "extensions/libipt_NETMAP.c",
  table: "nat",
  hooks: ["PREROUTING", "POSTROUTING", "OUTPUT", "INPUT"],
  options: [{ name: "to", nargs: 1 }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("to");
    if (!o) return ctx.fail("NETMAP needs --to address[/mask]");
    const v = parseAddrMask(o.args[0]);
    if (!v) return ctx.fail(`bad network "${o.args[0]}"`, o);
    return { addr: v.addr, mask: v.mask };
  },
  save(o) {
    const len = maskToLen(o.mask);
    return `--to ${formatIpv4(o.addr)}/${len === undefined ? formatIpv4(o.mask) : len}`;
  },
  target(o, skb, par) {
    const ct = natTargetConn(skb);
    if (!ct) return "ACCEPT";
    const h = natTargetHost(par);
    const range = netmapRange(o.addr, o.mask);
    return natVerdict(netmapTg4(h.nat, ct, range, NAT_HOOKNUM[par.hook], skb.pkt, par.now));
  },
};
