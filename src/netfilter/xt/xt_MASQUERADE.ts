/**
 * MASQUERADE target: net/netfilter/xt_MASQUERADE.c (`masquerade_tg_check`: no MAP_IPS, one range;
 * `.table` "nat", `.hooks` POST_ROUTING only), kernel 6.17; userspace extensions/libxt_MASQUERADE.c
 * (`MASQUERADE_parse`, `MASQUERADE_save`), iptables 1.8.x.
 *
 * Per packet (`masquerade_tg`): nf_nat_masquerade_ipv4() of src/nat with the rule's ports and random flags,
 * the output interface and the route's next hop (rt_nexthop), through `par.host` (NatTargetHost).
 *
 * Left out on purpose: nothing of the syntax.
 */

import type { TargetDescriptor } from "../registry";
import { isDiagnostic } from "../registry";
import { collect } from "./util";
import { formatNatPorts, natTargetConn, natTargetHost, natVerdict, parseToPorts } from "./xt_nat";
import { nfNatMasqueradeIpv4 } from "../../nat/nf_nat_masquerade";
import { natRangeFromOptions, type NfNatRange2 } from "../../nat/types";

export interface MasqueradeTargetOptions {
  readonly ports?: { readonly min: number; readonly max: number };
  readonly random: boolean;
  readonly randomFully: boolean;
}

export const masqueradeTarget: TargetDescriptor<MasqueradeTargetOptions, NfNatRange2> = {
  kind: "target",
  name: "MASQUERADE",
  kernelFile: "net/netfilter/xt_MASQUERADE.c",
  userspaceFile: "extensions/libxt_MASQUERADE.c",
  table: "nat",
  hooks: ["POSTROUTING"],
  options: [
    { name: "to-ports", nargs: 1 },
    { name: "random", nargs: 0 },
    { name: "random-fully", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    const ports = parseToPorts(m.get("to-ports"), ctx);
    if (isDiagnostic(ports)) return ports;
    // Every field present (see xt_nat.ts: one hidden class for every rule's options).
    return { ports, random: m.has("random"), randomFully: m.has("random-fully") };
  },
  save(o) {
    return [
      o.ports && `--to-ports ${formatNatPorts(o.ports)}`,
      o.random && "--random",
      o.randomFully && "--random-fully",
    ]
      .filter(Boolean)
      .join(" ");
  },
  // (MASQUERADE's options carry no address and no --persistent: the same range natRangeFromOptions makes)
  prepare: natRangeFromOptions,
  target(range, skb, par) {
    const ct = natTargetConn(skb);
    if (!ct) return "ACCEPT";
    const h = natTargetHost(par);
    const out = h.natIface(par.outIface);
    if (!out) return "DROP";
    return natVerdict(
      nfNatMasqueradeIpv4(h.nat, ct, range, out, h.routeNexthop(skb), par.now, h.natIfaces()),
    );
  },
};
