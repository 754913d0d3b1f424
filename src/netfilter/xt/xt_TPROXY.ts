/**
 * TPROXY target: net/netfilter/xt_TPROXY.c (revision 1: `tproxy_tg4_v1`, `tproxy_tg4_check`: the rule must
 * be `-p tcp` or `-p udp`, not inverted; `.table` "mangle", `.hooks` PRE_ROUTING), kernel 6.17; userspace
 * extensions/libxt_TPROXY.c (`tproxy_tg_parse1`, `tproxy_tg_save` prints all three options), iptables 1.8.x.
 *
 * Left out on purpose: IPv6 (--on-ip with an IPv6 address).
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { TargetDescriptor } from "../registry";
import { collect, hex, parseMarkMask, parsePort } from "./util";

export interface TproxyTargetOptions {
  readonly onPort: number;
  readonly onIp: number;
  readonly markValue: number;
  readonly markMask: number;
}

export const tproxyTarget: TargetDescriptor<TproxyTargetOptions> = {
  kind: "target",
  name: "TPROXY",
  kernelFile: "net/netfilter/xt_TPROXY.c",
  userspaceFile: "extensions/libxt_TPROXY.c",
  table: "mangle",
  hooks: ["PREROUTING"],
  options: [
    { name: "on-port", nargs: 1 },
    { name: "on-ip", nargs: 1 },
    { name: "tproxy-mark", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    const p = m.get("on-port");
    if (!p) return ctx.fail("TPROXY needs --on-port");
    const onPort = parsePort(p.args[0]);
    if (onPort === undefined) return ctx.fail(`bad --on-port "${p.args[0]}"`, p);
    let onIp = 0;
    const ip = m.get("on-ip");
    if (ip) {
      const v = parseIpv4(ip.args[0]);
      if (v === undefined) return ctx.fail(`bad --on-ip "${ip.args[0]}"`, ip);
      onIp = v;
    }
    let markValue = 0;
    let markMask = 0;
    const mk = m.get("tproxy-mark");
    if (mk) {
      const v = parseMarkMask(mk.args[0]);
      if (!v) return ctx.fail(`bad --tproxy-mark "${mk.args[0]}"`, mk);
      markValue = v.value;
      markMask = v.mask;
    }
    return { onPort, onIp, markValue, markMask };
  },
  check(_o, ctx) {
    const p = ctx.rule.proto;
    if (!p || p.invert || (p.proto !== 6 && p.proto !== 17)) {
      return ctx.fail("TPROXY can only be used with -p tcp or -p udp (not inverted)");
    }
    return undefined;
  },
  save(o) {
    return `--on-port ${o.onPort} --on-ip ${formatIpv4(o.onIp)} --tproxy-mark ${hex(o.markValue)}/${hex(o.markMask)}`;
  },
};
