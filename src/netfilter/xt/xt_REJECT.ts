/**
 * REJECT target: net/ipv4/netfilter/ipt_REJECT.c (`reject_tg`, `reject_tg_check`: tcp-reset needs -p tcp,
 * echo-reply refused; `.table` "filter", `.hooks` LOCAL_IN | FORWARD | LOCAL_OUT), kernel 6.17; userspace
 * extensions/libipt_REJECT.c (`REJECT_parse`, `REJECT_save`, default icmp-port-unreachable), iptables 1.8.x.
 *
 * Left out on purpose: IPv6 reject types.
 */

import type { TargetDescriptor } from "../registry";
import { collect } from "./util";

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
