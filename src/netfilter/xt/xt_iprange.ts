/**
 * iprange match: net/netfilter/xt_iprange.c (revision 1: `iprange_mt4`), kernel 6.17; userspace
 * extensions/libxt_iprange.c (`iprange_mt4_parse`, `iprange_mt4_save`), iptables 1.8.x.
 *
 * Left out on purpose: IPv6 ranges, revision 0.
 *
 * Per packet: `iprange_mt4`.
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { MatchDescriptor } from "../registry";
import { bang, collect } from "./util";
import type { Skb } from "../skb";

export interface IpRange {
  readonly from: number;
  readonly to: number;
  readonly invert: boolean;
}

export interface IprangeMatchOptions {
  readonly src?: IpRange;
  readonly dst?: IpRange;
}

export function parseIpRange(text: string): { from: number; to: number } | undefined {
  const dash = text.indexOf("-");
  const from = parseIpv4(dash < 0 ? text : text.slice(0, dash));
  const to = dash < 0 ? from : parseIpv4(text.slice(dash + 1));
  if (from === undefined || to === undefined) return undefined;
  return { from, to };
}

export const iprangeMatch: MatchDescriptor<IprangeMatchOptions> = {
  kind: "match",
  name: "iprange",
  match: iprangeMt,
  kernelFile: "net/netfilter/xt_iprange.c",
  userspaceFile: "extensions/libxt_iprange.c",
  options: [
    { name: "src-range", nargs: 1, invert: true },
    { name: "dst-range", nargs: 1, invert: true },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const out: { src?: IpRange; dst?: IpRange } = {};
    for (const key of ["src-range", "dst-range"] as const) {
      const o = m.get(key);
      if (!o) continue;
      const r = parseIpRange(o.args[0]);
      if (!r) return ctx.fail(`invalid address range "${o.args[0]}" (a.b.c.d-e.f.g.h)`, o);
      out[key === "src-range" ? "src" : "dst"] = { from: r.from, to: r.to, invert: o.invert };
    }
    if (!out.src && !out.dst) return ctx.fail("iprange: --src-range or --dst-range is required");
    return out;
  },
  save(o) {
    const fmt = (name: string, r?: IpRange): string | undefined =>
      r && `${bang(r.invert)}--${name} ${formatIpv4(r.from)}-${formatIpv4(r.to)}`;
    return [fmt("src-range", o.src), fmt("dst-range", o.dst)].filter(Boolean).join(" ");
  },
};

/** iprange_mt4: each given range must contain the address, XOR its `!`. */
export function iprangeMt(o: IprangeMatchOptions, skb: Skb): boolean {
  const { src, dst } = skb.pkt.ip;
  if (o.src && (src >= o.src.from && src <= o.src.to) === o.src.invert) return false;
  if (o.dst && (dst >= o.dst.from && dst <= o.dst.to) === o.dst.invert) return false;
  return true;
}
