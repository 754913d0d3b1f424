/**
 * socket match: net/netfilter/xt_socket.c (revision 3: `socket_mt4_v1_v2_v3`; `.hooks` PRE_ROUTING |
 * LOCAL_IN), kernel 6.17; userspace extensions/libxt_socket.c (`socket_mt_save_v3`), iptables 1.8.x.
 *
 * Left out on purpose: revisions 0-2.
 *
 * Per packet: `socket_match` and nf_socket_ipv4.c `nf_sk_lookup_slow_v4` / `extract_icmp4_fields`\nthrough HostServices.lookupSocket.
 */

import type { MatchDescriptor } from "../registry";
import { collect } from "./util";
import type { Skb, XtActionParam } from "../skb";
import { hostOf, skLookupSlow, type SocketQuery } from "../host_services";
import { IPS_SRC_NAT_DONE, IP_CT_ESTABLISHED_REPLY, IP_CT_RELATED_REPLY } from "../../conntrack/types";

export interface SocketMatchOptions {
  readonly transparent: boolean;
  readonly nowildcard: boolean;
  readonly restoreSkmark: boolean;
}

export const socketMatch: MatchDescriptor<SocketMatchOptions> = {
  kind: "match",
  name: "socket",
  match: socketMt,
  kernelFile: "net/netfilter/xt_socket.c",
  userspaceFile: "extensions/libxt_socket.c",
  hooks: ["PREROUTING", "INPUT"],
  options: [
    { name: "transparent", nargs: 0 },
    { name: "nowildcard", nargs: 0 },
    { name: "restore-skmark", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    return {
      transparent: m.has("transparent"),
      nowildcard: m.has("nowildcard"),
      restoreSkmark: m.has("restore-skmark"),
    };
  },
  save(o) {
    return [
      o.transparent && "--transparent",
      o.nowildcard && "--nowildcard",
      o.restoreSkmark && "--restore-skmark",
    ]
      .filter(Boolean)
      .join(" ");
  },
};

/**
 * The lookup key of nf_sk_lookup_slow_v4: TCP/UDP ports, or for an ICMP error the quoted TCP/UDP packet seen
 * from our side; the reply of a SNAT-ted connection (ESTABLISHED_REPLY, or RELATED_REPLY for ICMP) looks up
 * the original source address and port. Undefined: nothing to look up (other protocols).
 */
export function socketQueryOf(skb: Skb, inIface?: string): SocketQuery | undefined {
  const { ip, l4 } = skb.pkt;
  let q: { protocol: "tcp" | "udp"; saddr: number; sport: number; daddr: number; dport: number };
  if (l4.kind === "tcp" || l4.kind === "udp") {
    q = { protocol: l4.kind, saddr: ip.src, sport: l4.srcPort, daddr: ip.dst, dport: l4.dstPort };
  } else if (l4.kind === "icmp" && l4.quote && [3, 4, 5, 11, 12].includes(l4.type)) {
    const inner = l4.quote;
    if ((inner.ip.protocol !== 6 && inner.ip.protocol !== 17) || inner.l4.length < 4) return undefined;
    const sport = (inner.l4[0] << 8) | inner.l4[1];
    const dport = (inner.l4[2] << 8) | inner.l4[3];
    q = {
      protocol: inner.ip.protocol === 6 ? "tcp" : "udp",
      saddr: inner.ip.dst,
      sport: dport,
      daddr: inner.ip.src,
      dport: sport,
    };
  } else return undefined;
  const ct = skb.ct;
  const replyCtinfo = l4.kind === "icmp" ? IP_CT_RELATED_REPLY : IP_CT_ESTABLISHED_REPLY;
  if (ct && skb.ctinfo === replyCtinfo && ct.status & IPS_SRC_NAT_DONE) {
    q = { ...q, daddr: ct.orig.src, dport: ct.orig.srcU };
  }
  return inIface !== undefined ? { ...q, inIface } : q;
}

/**
 * socket_match (revision 3): skb->sk, else nf_sk_lookup_slow_v4. A socket bound to 0.0.0.0 is ignored unless
 * --nowildcard; with --transparent it must have IP_TRANSPARENT; --restore-skmark copies sk_mark into the
 * packet mark for a socket that is not ignored.
 */
export function socketMt(o: SocketMatchOptions, skb: Skb, par: XtActionParam): boolean {
  let sk = skb.sk;
  if (!sk) {
    const q = socketQueryOf(skb, par.inIface);
    if (q) sk = skLookupSlow(hostOf(par.host), q);
  }
  if (!sk) return false;
  const wildcard = !o.nowildcard && sk.address === 0;
  const transparent = o.transparent ? sk.transparent : true;
  if (o.restoreSkmark && !wildcard && transparent) skb.mark = (sk.mark ?? 0) >>> 0;
  return !wildcard && transparent;
}
