/**
 * TCPMSS target: net/netfilter/xt_TCPMSS.c (`tcpmss_tg4`, `tcpmss_tg4_check`: --clamp-mss-to-pmtu only from
 * FORWARD, OUTPUT and POSTROUTING; the rule must carry a tcp match on SYN (`find_syn_match`); `.proto`
 * IPPROTO_TCP), kernel 6.17; userspace extensions/libxt_TCPMSS.c (`TCPMSS_parse`, `TCPMSS_save`),
 * iptables 1.8.x.
 *
 * Left out on purpose: IPv6.
 *
 * Per packet: `tcpmss_tg4` / `tcpmss_mangle_packet` (route MTUs from HostServices.routeMtu).
 */

import type { TargetDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { TcpMatchOptions } from "./xt_tcpudp";
import type { Skb, TargetVerdict, XtActionParam } from "../skb";
import { XT_CONTINUE } from "../skb";
import { hostOf } from "../host_services";

export type TcpmssTargetOptions =
  { readonly clampToPmtu: true } | { readonly clampToPmtu: false; readonly mss: number };

export const tcpmssTarget: TargetDescriptor<TcpmssTargetOptions> = {
  kind: "target",
  name: "TCPMSS",
  target: tcpmssTg,
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

/** RFC 1122 default send MSS, the cap on an MSS option TCPMSS adds (IPv4). */
export const TCP_DEFAULT_MSS = 536;

/**
 * tcpmss_tg4 / tcpmss_mangle_packet: newmss = --set-mss, or for --clamp-mss-to-pmtu min(route MTU towards the
 * destination, route MTU back to the source) - 40 (DROP when that is not above 40). An MSS option larger than
 * newmss is lowered (never raised); without one, a SYN with no payload and room in the header gets
 * min(newmss, 536) as a new first option (data offset and IP length + 4). Fragments pass untouched.
 */
export function tcpmssTg(o: TcpmssTargetOptions, skb: Skb, par: XtActionParam): TargetVerdict {
  const pkt = skb.pkt;
  if (pkt.ip.fragOffset !== 0) return XT_CONTINUE;
  const th = pkt.l4;
  if (th.kind !== "tcp") return "DROP";
  let newmss: number;
  if (o.clampToPmtu) {
    const host = hostOf(par.host);
    const out = host.routeMtu(pkt.ip.dst) ?? 1500;
    const back = host.routeMtu(pkt.ip.src) ?? 0xffffffff;
    const minMtu = Math.min(out, back);
    if (minMtu <= 40) return "DROP";
    newmss = minMtu - 40;
  } else newmss = o.mss;
  const idx = th.options.findIndex((x) => x.kind === "mss");
  if (idx >= 0) {
    const old = th.options[idx] as { kind: "mss"; value: number };
    if (old.value <= newmss) return XT_CONTINUE;
    const options = th.options.map((x, i) => (i === idx ? { kind: "mss" as const, value: newmss } : x));
    skb.pkt = { ...pkt, l4: { ...th, options } };
    return XT_CONTINUE;
  }
  if (pkt.payloadLength > 0 || th.dataOffset >= 60) return XT_CONTINUE;
  const mss = Math.min(newmss, TCP_DEFAULT_MSS);
  skb.pkt = {
    ...pkt,
    ip: { ...pkt.ip, totalLength: pkt.ip.totalLength + 4 },
    l4: { ...th, dataOffset: th.dataOffset + 4, options: [{ kind: "mss", value: mss }, ...th.options] },
  };
  return XT_CONTINUE;
}
