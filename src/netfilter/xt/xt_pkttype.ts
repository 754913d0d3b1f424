/**
 * pkttype match: net/netfilter/xt_pkttype.c (`pkttype_mt`: skb->pkt_type, PACKET_LOOPBACK counts as
 * multicast/broadcast by address), kernel 6.17; userspace extensions/libxt_pkttype.c (`pkttype_parse`,
 * `pkttype_save`), iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 *
 * Per packet: `pkttype_mt`.
 */

import type { MatchDescriptor } from "../registry";
import { bang, collect } from "./util";
import type { Skb } from "../skb";

/** supported_types of libxt_pkttype.c (name -> PACKET_* value). */
export const PKTTYPE_NAMES: ReadonlyMap<string, number> = new Map([
  ["unicast", 0],
  ["broadcast", 1],
  ["multicast", 2],
  ["host", 0],
  ["otherhost", 3],
  ["outgoing", 4],
  ["loopback", 5],
]);

export interface PkttypeMatchOptions {
  readonly pktType: "unicast" | "broadcast" | "multicast" | "otherhost" | "outgoing" | "loopback";
  readonly invert: boolean;
}

export const pkttypeMatch: MatchDescriptor<PkttypeMatchOptions> = {
  kind: "match",
  name: "pkttype",
  match: pkttypeMt,
  kernelFile: "net/netfilter/xt_pkttype.c",
  userspaceFile: "extensions/libxt_pkttype.c",
  options: [{ name: "pkt-type", nargs: 1, invert: true }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("pkt-type");
    if (!o) return ctx.fail("pkttype: --pkt-type is required");
    const name = o.args[0].toLowerCase();
    if (!PKTTYPE_NAMES.has(name)) {
      return ctx.fail(
        `bad packet type "${o.args[0]}" (supported: ${[...PKTTYPE_NAMES.keys()].join(", ")})`,
        o,
      );
    }
    const canonical = name === "host" ? "unicast" : name;
    return { pktType: canonical as PkttypeMatchOptions["pktType"], invert: o.invert };
  },
  save(o) {
    return `${bang(o.invert)}--pkt-type ${o.pktType}`;
  },
};

/**
 * pkttype_mt: skb->pkt_type (PACKET_HOST for unicast and for locally generated packets); PACKET_LOOPBACK
 * reads as multicast or broadcast by the destination address (not produced by the emulator's skb).
 */
export function pkttypeMt(o: PkttypeMatchOptions, skb: Skb): boolean {
  const type = skb.pktType === "host" ? "unicast" : skb.pktType;
  return (type === o.pktType) !== o.invert;
}
