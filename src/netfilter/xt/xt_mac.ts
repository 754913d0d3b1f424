/**
 * mac match: net/netfilter/xt_mac.c (`mac_mt`; `.hooks` PRE_ROUTING | LOCAL_IN | FORWARD), kernel 6.17;
 * userspace extensions/libxt_mac.c (`mac_parse`, `mac_save` prints upper-case hex), iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 *
 * Per packet: `mac_mt` on the source MAC of the frame's link header.
 */

import { parseMac } from "../../wire/addr";
import type { MatchDescriptor } from "../registry";
import { bang, collect } from "./util";
import type { Skb } from "../skb";

export interface MacMatchOptions {
  /** Lower-case colon form. */
  readonly mac: string;
  readonly invert: boolean;
}

export const macMatch: MatchDescriptor<MacMatchOptions> = {
  kind: "match",
  name: "mac",
  match: macMt,
  kernelFile: "net/netfilter/xt_mac.c",
  userspaceFile: "extensions/libxt_mac.c",
  hooks: ["PREROUTING", "INPUT", "FORWARD"],
  options: [{ name: "mac-source", nargs: 1, invert: true }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("mac-source");
    if (!o) return ctx.fail("mac: --mac-source is required");
    const mac = parseMac(o.args[0]);
    if (!mac) return ctx.fail(`bad MAC address "${o.args[0]}"`, o);
    return { mac, invert: o.invert };
  },
  save(o) {
    return `${bang(o.invert)}--mac-source ${o.mac.toUpperCase()}`;
  },
};

/** mac_mt: needs an Ethernet header (none on locally generated packets: false, even inverted). */
export function macMt(o: MacMatchOptions, skb: Skb): boolean {
  const link = skb.pkt.link;
  if (!link || skb.inIface === undefined) return false;
  return (link.src.toLowerCase() === o.mac) !== o.invert;
}
