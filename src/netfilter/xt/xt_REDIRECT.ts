/**
 * REDIRECT target: net/netfilter/xt_REDIRECT.c (`redirect_tg4`, `redirect_tg4_check`; `.table` "nat",
 * `.hooks` PRE_ROUTING | LOCAL_OUT), kernel 6.17; userspace extensions/libxt_REDIRECT.c (`REDIRECT_parse`,
 * `REDIRECT_save`), iptables 1.8.x.
 *
 * Left out on purpose: IPv6.
 */

import type { TargetDescriptor } from "../registry";
import { collect } from "./util";
import { formatNatPorts, parseNatPorts, portProtoError } from "./xt_nat";

export interface RedirectTargetOptions {
  readonly ports?: { readonly min: number; readonly max: number };
  readonly random: boolean;
}

export const redirectTarget: TargetDescriptor<RedirectTargetOptions> = {
  kind: "target",
  name: "REDIRECT",
  kernelFile: "net/netfilter/xt_REDIRECT.c",
  userspaceFile: "extensions/libxt_REDIRECT.c",
  table: "nat",
  hooks: ["PREROUTING", "OUTPUT"],
  options: [
    { name: "to-ports", aliases: ["to-port"], nargs: 1 },
    { name: "random", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    let ports: RedirectTargetOptions["ports"];
    const tp = m.get("to-ports");
    if (tp) {
      const bad = portProtoError(ctx, tp);
      if (bad) return bad;
      const r = parseNatPorts(tp.args[0], false);
      if (!r) return ctx.fail(`bad port or port range "${tp.args[0]}"`, tp);
      ports = { min: r.min, max: r.max };
    }
    return { ...(ports ? { ports } : {}), random: m.has("random") };
  },
  save(o) {
    return [o.ports && `--to-ports ${formatNatPorts(o.ports)}`, o.random && "--random"]
      .filter(Boolean)
      .join(" ");
  },
};
