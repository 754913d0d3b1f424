/**
 * length match: net/netfilter/xt_length.c (`length_mt`: IP total length in [min, max], XOR invert),
 * kernel 6.17; userspace extensions/libxt_length.c (`length_parse`, `length_save`), iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 *
 * Per packet: `length_mt`.
 */

import type { MatchDescriptor } from "../registry";
import { bang, collect, formatRange, parseColonRange, parseUint } from "./util";
import type { Skb } from "../skb";

export interface LengthMatchOptions {
  readonly range: readonly [number, number];
  readonly invert: boolean;
}

export const lengthMatch: MatchDescriptor<LengthMatchOptions> = {
  kind: "match",
  name: "length",
  match: lengthMt,
  kernelFile: "net/netfilter/xt_length.c",
  userspaceFile: "extensions/libxt_length.c",
  options: [{ name: "length", nargs: 1, invert: true }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("length");
    if (!o) return ctx.fail("length: --length is required");
    const r = parseColonRange(o.args[0], (s) => parseUint(s, 0xffff), 0xffff);
    if (!r) return ctx.fail(`invalid length or range "${o.args[0]}"`, o);
    return { range: r, invert: o.invert };
  },
  save(o) {
    return `${bang(o.invert)}--length ${formatRange(o.range)}`;
  },
};

/** length_mt: IP total length in [min, max], XOR invert. */
export function lengthMt(o: LengthMatchOptions, skb: Skb): boolean {
  const len = skb.pkt.ip.totalLength;
  return (len >= o.range[0] && len <= o.range[1]) !== o.invert;
}
