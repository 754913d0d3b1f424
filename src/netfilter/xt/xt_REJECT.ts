/**
 * REJECT target: net/ipv4/netfilter/ipt_REJECT.c (`reject_tg`, `reject_tg_check`: tcp-reset needs -p tcp,
 * echo-reply refused; `.table` "filter", `.hooks` LOCAL_IN | FORWARD | LOCAL_OUT), kernel 6.17; userspace
 * extensions/libipt_REJECT.c (`REJECT_parse`, `REJECT_save`, default icmp-port-unreachable), iptables 1.8.x.
 *
 * Left out on purpose: IPv6 reject types.
 *
 * Per packet: `reject_tg` with src/net/icmp_send.ts and src/net/tcp_reset.ts.
 */

import type { TargetDescriptor } from "../registry";
import { collect } from "./util";
import type { Skb, TargetVerdict, XtActionParam } from "../skb";
import type { Packet } from "../../wire/packet";
import { hostOf } from "../host_services";
import { icmpSend } from "../../net/icmp_send";
import { nfSendReset } from "../../net/tcp_reset";

export const REJECT_TYPES = [
  "icmp-net-unreachable",
  "icmp-host-unreachable",
  "icmp-port-unreachable",
  "icmp-proto-unreachable",
  "icmp-net-prohibited",
  "icmp-host-prohibited",
  "icmp-admin-prohibited",
  "tcp-reset",
] as const;
export type RejectWith = (typeof REJECT_TYPES)[number];

const ALIASES: ReadonlyMap<string, RejectWith> = new Map([
  ["net-unreach", "icmp-net-unreachable"],
  ["host-unreach", "icmp-host-unreachable"],
  ["port-unreach", "icmp-port-unreachable"],
  ["proto-unreach", "icmp-proto-unreachable"],
  ["net-prohib", "icmp-net-prohibited"],
  ["host-prohib", "icmp-host-prohibited"],
  ["admin-prohib", "icmp-admin-prohibited"],
  ["tcp-rst", "tcp-reset"],
]);

export interface RejectTargetOptions {
  readonly with: RejectWith;
}

export const rejectTarget: TargetDescriptor<RejectTargetOptions> = {
  kind: "target",
  name: "REJECT",
  target: rejectTg,
  kernelFile: "net/ipv4/netfilter/ipt_REJECT.c",
  userspaceFile: "extensions/libipt_REJECT.c",
  table: "filter",
  hooks: ["INPUT", "FORWARD", "OUTPUT"],
  options: [{ name: "reject-with", nargs: 1 }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("reject-with");
    if (!o) return { with: "icmp-port-unreachable" };
    const v = (REJECT_TYPES as readonly string[]).includes(o.args[0])
      ? (o.args[0] as RejectWith)
      : ALIASES.get(o.args[0]);
    if (!v) return ctx.fail(`bad --reject-with "${o.args[0]}" (supported: ${REJECT_TYPES.join(", ")})`, o);
    return { with: v };
  },
  check(o, ctx) {
    const p = ctx.rule.proto;
    if (o.with === "tcp-reset" && (!p || p.proto !== 6 || p.invert)) {
      return ctx.fail("REJECT --reject-with tcp-reset needs -p tcp");
    }
    return undefined;
  },
  save(o) {
    return `--reject-with ${o.with}`;
  },
};

/** ICMP codes of ipt_REJECT.c's switch (ICMP_NET_UNREACH ... ICMP_PKT_FILTERED). */
export const REJECT_ICMP_CODES: Readonly<Record<Exclude<RejectWith, "tcp-reset">, number>> = {
  "icmp-net-unreachable": 0,
  "icmp-host-unreachable": 1,
  "icmp-proto-unreachable": 2,
  "icmp-port-unreachable": 3,
  "icmp-net-prohibited": 9,
  "icmp-host-prohibited": 10,
  "icmp-admin-prohibited": 13,
};

/** Protocols whose checksum nf_send_unreach verifies first (nf_reject_verify_csum). */
function verifiesChecksum(pkt: Packet): boolean {
  const p = pkt.ip.protocol;
  if (p === 17) return pkt.l4.kind === "udp" && pkt.l4.checksum !== 0;
  return ![47, 50, 51, 132, 136, 33].includes(p);
}

/**
 * reject_tg: nf_send_unreach (ICMP) or nf_send_reset (RST), then NF_DROP. The answer goes out through
 * effects.emitLocal (it traverses OUTPUT like any locally generated packet). The builders refuse what the
 * kernel refuses (fragments, RST for RST, ICMP errors about ICMP errors, broadcasts); nf_send_unreach also
 * sends nothing for a packet with a bad checksum outside LOCAL_OUT. After a RST, the rejected packet's entry
 * goes to CLOSE (nf_ct_set_closing, Linux 6.3+). The RST's mark (IP4_REPLY_MARK) is not
 * carried: emitLocal takes a packet only.
 */
export function rejectTg(o: RejectTargetOptions, skb: Skb, par: XtActionParam): TargetVerdict {
  const host = hostOf(par.host);
  const pkt = skb.pkt;
  const dstType = host.addrType(pkt.ip.dst);
  if (o.with === "tcp-reset") {
    const r = nfSendReset(pkt, { dstType, ttl: host.ipDefaultTtl, hook: par.hook });
    if ("packet" in r) {
      par.effects.emitLocal(r.packet, "REJECT --reject-with tcp-reset");
      // nf_send_reset: nf_ct_set_closing(skb_nfct(oldskb)) once the RST is on its way.
      if (skb.ct) host.setCtClosing(skb.ct);
    }
    return "DROP";
  }
  const csumBad = par.hook !== "OUTPUT" && verifiesChecksum(pkt) && pkt.l4Checksum === "incorrect";
  if (pkt.ip.fragOffset === 0 && !csumBad) {
    const r = icmpSend(pkt, 3, REJECT_ICMP_CODES[o.with], 0, {
      dstType,
      pktType: skb.local ? "host" : skb.pktType,
      sourceFor: (d) => host.sourceAddressFor(d),
      mtu: host.routeMtu(pkt.ip.src),
      ttl: host.ipDefaultTtl,
      id: host.randomU32() & 0xffff,
    });
    if ("packet" in r) par.effects.emitLocal(r.packet, `REJECT --reject-with ${o.with}`);
  }
  return "DROP";
}
