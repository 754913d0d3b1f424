/**
 * ttl match (file named after the kernel's xt_hl.c, since xt_ttl.ts would clash with xt_TTL.ts on
 * case-insensitive file systems): formerly net/ipv4/netfilter/ipt_ttl.c, now net/netfilter/xt_hl.c (`ttl_mt`: IPT_TTL_EQ/NE/LT/GT),
 * kernel 6.17; userspace extensions/libipt_ttl.c (`ttl_parse`, `ttl_save`), iptables 1.8.x.
 *
 * Left out on purpose: ip6tables' hl match.
 *
 * Per packet: `ttl_mt`.
 */

import type { MatchDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { Skb } from "../skb";

export interface TtlMatchOptions {
  readonly mode: "eq" | "ne" | "lt" | "gt";
  readonly ttl: number;
}

export const ttlMatch: MatchDescriptor<TtlMatchOptions> = {
  kind: "match",
  name: "ttl",
  match: ttlMt,
  kernelFile: "net/netfilter/xt_hl.c",
  userspaceFile: "extensions/libipt_ttl.c",
  options: [
    { name: "ttl-eq", nargs: 1, invert: true },
    { name: "ttl-lt", nargs: 1 },
    { name: "ttl-gt", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (m.size === 0) return ctx.fail("ttl: one of --ttl-eq, --ttl-lt or --ttl-gt is required");
    if (m.size > 1) return ctx.fail("ttl: only one of --ttl-eq, --ttl-lt, --ttl-gt may be given", opts[1]);
    const o = opts[0];
    const ttl = parseUint(o.args[0], 255);
    if (ttl === undefined) return ctx.fail(`invalid TTL "${o.args[0]}" (0..255)`, o);
    const mode = o.name === "ttl-eq" ? (o.invert ? "ne" : "eq") : o.name === "ttl-lt" ? "lt" : "gt";
    return { mode, ttl };
  },
  save(o) {
    switch (o.mode) {
      case "eq":
        return `--ttl-eq ${o.ttl}`;
      case "ne":
        return `! --ttl-eq ${o.ttl}`;
      case "lt":
        return `--ttl-lt ${o.ttl}`;
      case "gt":
        return `--ttl-gt ${o.ttl}`;
    }
  },
};

/** ttl_mt: IPT_TTL_EQ / NE / LT / GT against the IP TTL. */
export function ttlMt(o: TtlMatchOptions, skb: Skb): boolean {
  const ttl = skb.pkt.ip.ttl;
  switch (o.mode) {
    case "eq":
      return ttl === o.ttl;
    case "ne":
      return ttl !== o.ttl;
    case "lt":
      return ttl < o.ttl;
    case "gt":
      return ttl > o.ttl;
  }
}
