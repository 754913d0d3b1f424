/**
 * TTL target: net/ipv4/netfilter/ipt_TTL.c, now net/netfilter/xt_HL.c (`ttl_tg`, `ttl_tg_check`: inc/dec
 * of 0 refused; `.table` "mangle"), kernel 6.17; userspace extensions/libipt_TTL.c (`TTL_parse`, `TTL_save`),
 * iptables 1.8.x.
 *
 * Left out on purpose: ip6tables' HL target.
 *
 * Per packet: `ttl_tg`.
 */

import type { TargetDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { Skb, TargetVerdict } from "../skb";
import { XT_CONTINUE } from "../skb";

export interface TtlTargetOptions {
  readonly mode: "set" | "inc" | "dec";
  readonly value: number;
}

export const ttlTarget: TargetDescriptor<TtlTargetOptions> = {
  kind: "target",
  name: "TTL",
  target: ttlTg,
  kernelFile: "net/netfilter/xt_HL.c",
  userspaceFile: "extensions/libipt_TTL.c",
  table: "mangle",
  options: [
    { name: "ttl-set", nargs: 1 },
    { name: "ttl-inc", nargs: 1 },
    { name: "ttl-dec", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (opts.length !== 1)
      return ctx.fail("TTL needs exactly one of --ttl-set, --ttl-inc, --ttl-dec", opts[1]);
    const o = opts[0];
    if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    const v = parseUint(o.args[0], 255);
    if (v === undefined) return ctx.fail(`bad TTL value "${o.args[0]}" (0..255)`, o);
    const mode = o.name.slice(4) as TtlTargetOptions["mode"];
    if (mode !== "set" && v === 0) return ctx.fail(`--ttl-${mode} 0 makes no sense`, o);
    return { mode, value: v };
  },
  save(o) {
    return `--ttl-${o.mode} ${o.value}`;
  },
};

/** ttl_tg: set, or add/subtract saturating at 255/0; the header checksum stays valid (csum_replace2). */
export function ttlTg(o: TtlTargetOptions, skb: Skb): TargetVerdict {
  const old = skb.pkt.ip.ttl;
  const ttl =
    o.mode === "set" ? o.value : o.mode === "inc" ? Math.min(255, old + o.value) : Math.max(0, old - o.value);
  if (ttl !== old) skb.pkt = { ...skb.pkt, ip: { ...skb.pkt.ip, ttl } };
  return XT_CONTINUE;
}
