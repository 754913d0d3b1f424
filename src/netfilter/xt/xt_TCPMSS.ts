/**
 * TCPMSS target: net/netfilter/xt_TCPMSS.c (`tcpmss_tg4`, `tcpmss_tg4_check`: --clamp-mss-to-pmtu only from
 * FORWARD, OUTPUT and POSTROUTING; the rule must carry a tcp match on SYN (`find_syn_match`); `.proto`
 * IPPROTO_TCP), kernel 6.17; userspace extensions/libxt_TCPMSS.c (`TCPMSS_parse`, `TCPMSS_save`),
 * iptables 1.8.x.
 *
 * Left out on purpose: IPv6.
 */

import type { TargetDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { TcpMatchOptions } from "./xt_tcpudp";

export type TcpmssTargetOptions =
  { readonly clampToPmtu: true } | { readonly clampToPmtu: false; readonly mss: number };

export const tcpmssTarget: TargetDescriptor<TcpmssTargetOptions> = {
  kind: "target",
  name: "TCPMSS",
  kernelFile: "net/netfilter/xt_TCPMSS.c",
  userspaceFile: "extensions/libxt_TCPMSS.c",
  proto: 6,
  options: [
    { name: "set-mss", nargs: 1 },
    { name: "clamp-mss-to-pmtu", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (opts.length !== 1)
      return ctx.fail("TCPMSS needs exactly one of --set-mss or --clamp-mss-to-pmtu", opts[1]);
    const o = opts[0];
    if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    if (o.name === "clamp-mss-to-pmtu") return { clampToPmtu: true };
    const mss = parseUint(o.args[0], 0xfffe);
    if (mss === undefined) return ctx.fail(`bad --set-mss "${o.args[0]}"`, o);
    return { clampToPmtu: false, mss };
  },
  check(o, ctx) {
    if (
      o.clampToPmtu &&
      [...ctx.hooks].some((h) => h !== "FORWARD" && h !== "OUTPUT" && h !== "POSTROUTING")
    ) {
      return ctx.fail("TCPMSS --clamp-mss-to-pmtu is only valid in FORWARD, OUTPUT and POSTROUTING");
    }
    const syn = ctx.rule.matches.some((mi) => {
      if (mi.name !== "tcp" || mi.unknown) return false;
      const f = (mi.options as TcpMatchOptions).flags;
      return f !== undefined && (f.comp & 0x02) !== 0 && !f.invert;
    });
    if (!syn) return ctx.fail("TCPMSS only works on TCP SYN packets: add -m tcp --tcp-flags SYN,RST SYN");
    return undefined;
  },
  save(o) {
    return o.clampToPmtu ? "--clamp-mss-to-pmtu" : `--set-mss ${o.mss}`;
  },
};
