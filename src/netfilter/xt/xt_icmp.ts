/**
 * icmp match: net/ipv4/netfilter/ip_tables.c (`icmp_match`, `icmp_checkentry`; `.proto` IPPROTO_ICMP),
 * kernel 6.17; userspace extensions/libipt_icmp.c (`icmp_parse`, `icmp_save`) and the type table of
 * libxtables/xtables.c (`xtables_icmp_codes`), iptables 1.8.x.
 *
 * Left out on purpose: icmp6 (ip6tables).
 *
 * Per packet: `icmp_match` (fragments never match; a missing header hotdrops).
 */

import type { MatchDescriptor } from "../registry";
import { bang, collect, parseUint } from "./util";
import type { Skb, XtActionParam } from "../skb";

/** Name -> [type, code min, code max], as xtables_icmp_codes. */
export const ICMP_TYPE_NAMES: ReadonlyMap<string, readonly [number, number, number]> = new Map([
  ["any", [0xff, 0, 0xff]],
  ["echo-reply", [0, 0, 0xff]],
  ["pong", [0, 0, 0xff]],
  ["destination-unreachable", [3, 0, 0xff]],
  ["network-unreachable", [3, 0, 0]],
  ["host-unreachable", [3, 1, 1]],
  ["protocol-unreachable", [3, 2, 2]],
  ["port-unreachable", [3, 3, 3]],
  ["fragmentation-needed", [3, 4, 4]],
  ["source-route-failed", [3, 5, 5]],
  ["network-unknown", [3, 6, 6]],
  ["host-unknown", [3, 7, 7]],
  ["network-prohibited", [3, 9, 9]],
  ["host-prohibited", [3, 10, 10]],
  ["TOS-network-unreachable", [3, 11, 11]],
  ["TOS-host-unreachable", [3, 12, 12]],
  ["communication-prohibited", [3, 13, 13]],
  ["host-precedence-violation", [3, 14, 14]],
  ["precedence-cutoff", [3, 15, 15]],
  ["source-quench", [4, 0, 0xff]],
  ["redirect", [5, 0, 0xff]],
  ["network-redirect", [5, 0, 0]],
  ["host-redirect", [5, 1, 1]],
  ["TOS-network-redirect", [5, 2, 2]],
  ["TOS-host-redirect", [5, 3, 3]],
  ["echo-request", [8, 0, 0xff]],
  ["ping", [8, 0, 0xff]],
  ["router-advertisement", [9, 0, 0xff]],
  ["router-solicitation", [10, 0, 0xff]],
  ["time-exceeded", [11, 0, 0xff]],
  ["ttl-exceeded", [11, 0, 0xff]],
  ["ttl-zero-during-transit", [11, 0, 0]],
  ["ttl-zero-during-reassembly", [11, 1, 1]],
  ["parameter-problem", [12, 0, 0xff]],
  ["ip-header-bad", [12, 0, 0]],
  ["required-option-missing", [12, 1, 1]],
  ["timestamp-request", [13, 0, 0xff]],
  ["timestamp-reply", [14, 0, 0xff]],
  ["address-mask-request", [17, 0, 0xff]],
  ["address-mask-reply", [18, 0, 0xff]],
]);

export interface IcmpMatchOptions {
  readonly type: number;
  readonly code: readonly [number, number];
  readonly invert: boolean;
}

export function parseIcmpType(text: string): { type: number; code: [number, number] } | undefined {
  const named =
    ICMP_TYPE_NAMES.get(text) ??
    [...ICMP_TYPE_NAMES].find(([n]) => n.toLowerCase() === text.toLowerCase())?.[1];
  if (named) return { type: named[0], code: [named[1], named[2]] };
  const slash = text.indexOf("/");
  const type = parseUint(slash < 0 ? text : text.slice(0, slash), 255);
  if (type === undefined) return undefined;
  if (slash < 0) return { type, code: [0, 0xff] };
  const codeText = text.slice(slash + 1);
  const colon = codeText.indexOf(":");
  const lo = parseUint(colon < 0 ? codeText : codeText.slice(0, colon), 255);
  const hi = colon < 0 ? lo : parseUint(codeText.slice(colon + 1), 255);
  if (lo === undefined || hi === undefined || lo > hi) return undefined;
  return { type, code: [lo, hi] };
}

export const icmpMatch: MatchDescriptor<IcmpMatchOptions> = {
  kind: "match",
  name: "icmp",
  match: icmpMt,
  kernelFile: "net/ipv4/netfilter/ip_tables.c",
  userspaceFile: "extensions/libipt_icmp.c",
  proto: 1,
  options: [{ name: "icmp-type", nargs: 1, invert: true }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("icmp-type");
    if (!o) return ctx.fail("icmp: --icmp-type is required");
    const t = parseIcmpType(o.args[0]);
    if (!t) return ctx.fail(`invalid ICMP type "${o.args[0]}"`, o);
    return { type: t.type, code: t.code, invert: o.invert };
  },
  save(o) {
    if (o.type === 0xff && o.code[0] === 0 && o.code[1] === 0xff) return `${bang(o.invert)}--icmp-type any`;
    const code = o.code[0] !== 0 || o.code[1] !== 0xff ? `/${o.code[0]}` : "";
    return `${bang(o.invert)}--icmp-type ${o.type}${code}`;
  },
};

/** icmp_match + icmp_type_code_match of ip_tables.c: type 0xff ("any") matches every ICMP packet. */
export function icmpMt(o: IcmpMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const { ip, l4 } = skb.pkt;
  if (ip.fragOffset !== 0) return false;
  if (l4.kind !== "icmp") {
    par.hotdrop = true;
    return false;
  }
  const hit = o.type === 0xff || (l4.type === o.type && l4.code >= o.code[0] && l4.code <= o.code[1]);
  return hit !== o.invert;
}
