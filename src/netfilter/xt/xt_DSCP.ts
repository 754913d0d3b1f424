/**
 * DSCP target: net/netfilter/xt_DSCP.c (`dscp_tg`, `dscp_tg_check`: value <= 0x3f; `.table` "mangle"),
 * kernel 6.17; userspace extensions/libxt_DSCP.c (`DSCP_parse`, `DSCP_save`) and the class table of
 * extensions/dscp_helper.c, iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 *
 * Per packet: `dscp_tg`.
 */

import type { TargetDescriptor } from "../registry";
import { collect, parseUint } from "./util";
import type { Skb, TargetVerdict } from "../skb";
import { XT_CONTINUE } from "../skb";

export const DSCP_CLASSES: ReadonlyMap<string, number> = new Map([
  ["CS0", 0x00],
  ["CS1", 0x08],
  ["CS2", 0x10],
  ["CS3", 0x18],
  ["CS4", 0x20],
  ["CS5", 0x28],
  ["CS6", 0x30],
  ["CS7", 0x38],
  ["BE", 0x00],
  ["AF11", 0x0a],
  ["AF12", 0x0c],
  ["AF13", 0x0e],
  ["AF21", 0x12],
  ["AF22", 0x14],
  ["AF23", 0x16],
  ["AF31", 0x1a],
  ["AF32", 0x1c],
  ["AF33", 0x1e],
  ["AF41", 0x22],
  ["AF42", 0x24],
  ["AF43", 0x26],
  ["EF", 0x2e],
]);

export interface DscpTargetOptions {
  readonly dscp: number;
}

export const dscpTarget: TargetDescriptor<DscpTargetOptions> = {
  kind: "target",
  name: "DSCP",
  target: dscpTg,
  kernelFile: "net/netfilter/xt_DSCP.c",
  userspaceFile: "extensions/libxt_DSCP.c",
  table: "mangle",
  options: [
    { name: "set-dscp", nargs: 1 },
    { name: "set-dscp-class", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (opts.length !== 1)
      return ctx.fail("DSCP needs exactly one of --set-dscp or --set-dscp-class", opts[1]);
    const o = opts[0];
    if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    const v = o.name === "set-dscp" ? parseUint(o.args[0], 0x3f) : DSCP_CLASSES.get(o.args[0].toUpperCase());
    if (v === undefined) return ctx.fail(`bad DSCP "${o.args[0]}"`, o);
    return { dscp: v };
  },
  save(o) {
    return `--set-dscp 0x${o.dscp.toString(16).padStart(2, "0")}`;
  },
};

/** dscp_tg: replace the six DSCP bits of the TOS byte, keeping ECN (ipv4_change_dsfield). */
export function dscpTg(o: DscpTargetOptions, skb: Skb): TargetVerdict {
  const tos = skb.pkt.ip.tos;
  if (tos >> 2 !== o.dscp) skb.pkt = { ...skb.pkt, ip: { ...skb.pkt.ip, tos: (tos & 0x03) | (o.dscp << 2) } };
  return XT_CONTINUE;
}
