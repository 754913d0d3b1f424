/**
 * TPROXY target: net/netfilter/xt_TPROXY.c (revision 1: `tproxy_tg4_v1`, `tproxy_tg4_check`: the rule must
 * be `-p tcp` or `-p udp`, not inverted; `.table` "mangle", `.hooks` PRE_ROUTING), kernel 6.17; userspace
 * extensions/libxt_TPROXY.c (`tproxy_tg_parse1`, `tproxy_tg_save` prints all three options), iptables 1.8.x.
 *
 * Left out on purpose: IPv6 (--on-ip with an IPv6 address).
 *
 * Per packet: `tproxy_tg4` / `nf_tproxy_laddr4` through HostServices; TIME_WAIT sockets are not\nmodelled (nf_tproxy_handle_time_wait4 never applies).
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { TargetDescriptor } from "../registry";
import { collect, hex, parseMarkMask, parsePort } from "./util";
import type { Skb, TargetVerdict, XtActionParam } from "../skb";
import { hostOf } from "../host_services";

export interface TproxyTargetOptions {
  readonly onPort: number;
  readonly onIp: number;
  readonly markValue: number;
  readonly markMask: number;
}

export const tproxyTarget: TargetDescriptor<TproxyTargetOptions> = {
  kind: "target",
  name: "TPROXY",
  target: tproxyTg,
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

/**
 * tproxy_tg4 (revision 1): an established socket on the packet's own addresses, else a listener on
 * laddr:lport (laddr = --on-ip, or the input device's first primary address, or the packet's destination;
 * lport = --on-port or the destination port). A transparent socket gets the packet: mark = (mark & ~mask) ^
 * value, skb->sk assigned, NF_ACCEPT. Anything else: NF_DROP. The packet itself is not rewritten.
 */
export function tproxyTg(o: TproxyTargetOptions, skb: Skb, par: XtActionParam): TargetVerdict {
  const host = hostOf(par.host);
  const { ip, l4 } = skb.pkt;
  if (l4.kind !== "tcp" && l4.kind !== "udp") return "DROP";
  const base = {
    protocol: l4.kind,
    saddr: ip.src,
    sport: l4.srcPort,
    ...(par.inIface !== undefined ? { inIface: par.inIface } : {}),
  };
  let sk = host.lookupSocket({ ...base, daddr: ip.dst, dport: l4.dstPort }, "established");
  const laddr =
    o.onIp !== 0
      ? o.onIp
      : ((par.inIface !== undefined ? host.ifaceAddress(par.inIface) : undefined) ?? ip.dst);
  const lport = o.onPort !== 0 ? o.onPort : l4.dstPort;
  if (!sk) sk = host.lookupSocket({ ...base, daddr: laddr, dport: lport }, "listener");
  if (sk && sk.transparent) {
    skb.mark = ((skb.mark & ~o.markMask) ^ o.markValue) >>> 0;
    skb.sk = sk;
    return "ACCEPT";
  }
  return "DROP";
}
