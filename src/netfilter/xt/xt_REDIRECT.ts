/**
 * REDIRECT target: net/netfilter/xt_REDIRECT.c (`redirect_tg4`, `redirect_tg4_check`; `.table` "nat",
 * `.hooks` PRE_ROUTING | LOCAL_OUT), kernel 6.17; userspace extensions/libxt_REDIRECT.c (`REDIRECT_parse`,
 * `REDIRECT_save`), iptables 1.8.x.
 *
 * Per packet (`redirect_tg4`): nf_nat_redirect_ipv4() of src/nat (127.0.0.1 on OUTPUT, the incoming
 * interface's first address on PREROUTING) with the rule's ports, through `par.host` (NatTargetHost).
 *
 * Left out on purpose: IPv6.
 */

import type { TargetDescriptor } from "../registry";
import { isDiagnostic } from "../registry";
import { collect } from "./util";
import {
  NAT_HOOKNUM,
  formatNatPorts,
  natTargetConn,
  natTargetHost,
  natVerdict,
  parseToPorts,
} from "./xt_nat";
import { nfNatRedirectIpv4 } from "../../nat/nf_nat_redirect";
import { natRangeFromOptions, type NfNatRange2 } from "../../nat/types";

export interface RedirectTargetOptions {
  readonly ports?: { readonly min: number; readonly max: number };
  readonly random: boolean;
}

export const redirectTarget: TargetDescriptor<RedirectTargetOptions, NfNatRange2> = {
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
    const ports = parseToPorts(m.get("to-ports"), ctx);
    if (isDiagnostic(ports)) return ports;
    // Every field present (see xt_nat.ts: one hidden class for every rule's options).
    return { ports, random: m.has("random") };
  },
  save(o) {
    return [o.ports && `--to-ports ${formatNatPorts(o.ports)}`, o.random && "--random"]
      .filter(Boolean)
      .join(" ");
  },
  prepare: natRangeFromOptions,
  target(range, skb, par) {
    const ct = natTargetConn(skb);
    if (!ct) return "ACCEPT";
    const h = natTargetHost(par);
    const hook = NAT_HOOKNUM[par.hook];
    return natVerdict(nfNatRedirectIpv4(h.nat, ct, range, hook, h.natIface(par.inIface), par.now));
  },
};
