/**
 * multiport match: net/netfilter/xt_multiport.c (`multiport_mt`, `multiport_mt_check`: protocol must be
 * tcp/udp/udplite/sctp/dccp and not inverted, at most XT_MULTI_PORTS=15 ports), kernel 6.17; userspace
 * extensions/libxt_multiport.c (revision 1: `multiport_parse1`, `multiport_save1`), iptables 1.8.x.
 *
 * Left out on purpose: revision 0 (no ranges, no inversion); iptables-save prints revision 1.
 *
 * Per packet: `multiport_mt`, `ports_match_v1`.
 */

import type { MatchDescriptor } from "../registry";
import { PORT_PROTOCOLS, bang, collect, formatRange, parseColonRange, parsePort } from "./util";
import type { Skb, XtActionParam } from "../skb";
import type { Packet } from "../../wire/packet";

export const XT_MULTI_PORTS = 15;

export interface MultiportMatchOptions {
  readonly direction: "sports" | "dports" | "ports";
  readonly ports: readonly (readonly [number, number])[];
  readonly invert: boolean;
}

export const multiportMatch: MatchDescriptor<MultiportMatchOptions> = {
  kind: "match",
  name: "multiport",
  match: multiportMt,
  kernelFile: "net/netfilter/xt_multiport.c",
  userspaceFile: "extensions/libxt_multiport.c",
  options: [
    { name: "sports", aliases: ["source-ports"], nargs: 1, invert: true },
    { name: "dports", aliases: ["destination-ports"], nargs: 1, invert: true },
    { name: "ports", nargs: 1, invert: true },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (m.size === 0) return ctx.fail("multiport: one of --sports, --dports or --ports is required");
    if (m.size > 1)
      return ctx.fail("multiport: only one of --sports, --dports or --ports may be given", opts[1]);
    const o = opts[0];
    const ports: (readonly [number, number])[] = [];
    let slots = 0;
    for (const item of o.args[0].split(",")) {
      const r = parseColonRange(item, parsePort, 0xffff);
      if (!r || item === "") return ctx.fail(`invalid port or range "${item}"`, o);
      ports.push(r);
      slots += r[0] === r[1] ? 1 : 2;
    }
    if (slots > XT_MULTI_PORTS) return ctx.fail(`too many ports specified (at most ${XT_MULTI_PORTS})`, o);
    const p = ctx.proto;
    if (!p || p.invert || !PORT_PROTOCOLS.has(p.proto)) {
      return ctx.fail("multiport needs `-p tcp`, `-p udp`, `-p udplite`, `-p sctp` or `-p dccp`", o);
    }
    return { direction: o.name as MultiportMatchOptions["direction"], ports, invert: o.invert };
  },
  save(o) {
    return `${bang(o.invert)}--${o.direction} ${o.ports.map((r) => formatRange(r)).join(",")}`;
  },
};

/** The two 16-bit ports at the start of the transport header (TCP/UDP; SCTP/DCCP/UDP-Lite from the payload). */
export function transportPorts(pkt: Packet): readonly [number, number] | undefined {
  const l4 = pkt.l4;
  if (l4.kind === "tcp" || l4.kind === "udp") return [l4.srcPort, l4.dstPort];
  if (l4.kind === "other" && pkt.payload && pkt.payload.length >= 4) {
    const b = pkt.payload;
    return [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
  }
  return undefined;
}

/** multiport_mt + ports_match_v1: first range containing the port decides; none: the inverse. */
export function multiportMt(o: MultiportMatchOptions, skb: Skb, par: XtActionParam): boolean {
  if (skb.pkt.ip.fragOffset !== 0) return false;
  const ports = transportPorts(skb.pkt);
  if (!ports) {
    par.hotdrop = true;
    return false;
  }
  const [src, dst] = ports;
  for (const [lo, hi] of o.ports) {
    const inS = src >= lo && src <= hi;
    const inD = dst >= lo && dst <= hi;
    const hit = o.direction === "sports" ? inS : o.direction === "dports" ? inD : inS || inD;
    if (hit) return !o.invert;
  }
  return o.invert;
}
