/**
 * addrtype match: net/netfilter/xt_addrtype.c (revision 1: `addrtype_mt_v1`, `addrtype_mt_checkentry_v1`:
 * --limit-iface-in and --limit-iface-out exclude each other, -in is refused on OUTPUT/POSTROUTING and -out on
 * PREROUTING/INPUT), kernel 6.17; userspace extensions/libxt_addrtype.c (`addrtype_parse_v1`,
 * `addrtype_save_v1`), iptables 1.8.x.
 *
 * Left out on purpose: revision 0.
 *
 * Per packet: `addrtype_mt_v1` through HostServices.addrType.
 */

import type { MatchDescriptor } from "../registry";
import { bang, collect } from "./util";
import type { Skb, XtActionParam } from "../skb";
import { hostOf } from "../host_services";

/** RTN_* types in bit order (bit n = 1 << n), as libxt_addrtype's rtn_names. */
export const ADDRTYPE_NAMES = [
  "UNSPEC",
  "UNICAST",
  "LOCAL",
  "BROADCAST",
  "ANYCAST",
  "MULTICAST",
  "BLACKHOLE",
  "UNREACHABLE",
  "PROHIBIT",
  "THROW",
  "NAT",
  "XRESOLVE",
] as const;
export type AddrTypeName = (typeof ADDRTYPE_NAMES)[number];

export interface AddrtypeMatchOptions {
  readonly src?: { readonly types: readonly AddrTypeName[]; readonly invert: boolean };
  readonly dst?: { readonly types: readonly AddrTypeName[]; readonly invert: boolean };
  readonly limitIfaceIn: boolean;
  readonly limitIfaceOut: boolean;
}

function parseTypes(text: string): AddrTypeName[] | undefined {
  const set = new Set<string>();
  for (const w of text.split(",")) {
    const up = w.toUpperCase();
    if (!(ADDRTYPE_NAMES as readonly string[]).includes(up)) return undefined;
    set.add(up);
  }
  return ADDRTYPE_NAMES.filter((n) => set.has(n));
}

export const addrtypeMatch: MatchDescriptor<AddrtypeMatchOptions> = {
  kind: "match",
  name: "addrtype",
  match: addrtypeMt,
  kernelFile: "net/netfilter/xt_addrtype.c",
  userspaceFile: "extensions/libxt_addrtype.c",
  options: [
    { name: "src-type", nargs: 1, invert: true },
    { name: "dst-type", nargs: 1, invert: true },
    { name: "limit-iface-in", nargs: 0 },
    { name: "limit-iface-out", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const out: { -readonly [K in keyof AddrtypeMatchOptions]: AddrtypeMatchOptions[K] } = {
      limitIfaceIn: m.has("limit-iface-in"),
      limitIfaceOut: m.has("limit-iface-out"),
    };
    for (const key of ["src-type", "dst-type"] as const) {
      const o = m.get(key);
      if (!o) continue;
      const types = parseTypes(o.args[0]);
      if (!types)
        return ctx.fail(`bad address type "${o.args[0]}" (supported: ${ADDRTYPE_NAMES.join(", ")})`, o);
      out[key === "src-type" ? "src" : "dst"] = { types, invert: o.invert };
    }
    if (!out.src && !out.dst) return ctx.fail("addrtype: you must specify --src-type or --dst-type");
    if (out.limitIfaceIn && out.limitIfaceOut) {
      return ctx.fail(
        "addrtype: --limit-iface-in and --limit-iface-out are mutually exclusive",
        m.get("limit-iface-out"),
      );
    }
    return out;
  },
  check(o, ctx) {
    if (o.limitIfaceIn && (ctx.hooks.has("OUTPUT") || ctx.hooks.has("POSTROUTING"))) {
      return ctx.fail("addrtype: --limit-iface-in is not valid in OUTPUT or POSTROUTING");
    }
    if (o.limitIfaceOut && (ctx.hooks.has("PREROUTING") || ctx.hooks.has("INPUT"))) {
      return ctx.fail("addrtype: --limit-iface-out is not valid in PREROUTING or INPUT");
    }
    return undefined;
  },
  save(o) {
    const parts: string[] = [];
    if (o.src) parts.push(`${bang(o.src.invert)}--src-type ${o.src.types.join(",")}`);
    if (o.dst) parts.push(`${bang(o.dst.invert)}--dst-type ${o.dst.types.join(",")}`);
    if (o.limitIfaceIn) parts.push("--limit-iface-in");
    if (o.limitIfaceOut) parts.push("--limit-iface-out");
    return parts.join(" ");
  },
};

/**
 * addrtype_mt_v1: the route type of saddr/daddr (`inet_dev_addr_type`, restricted to the input or output
 * device with --limit-iface-in/out) must be one of the listed types, XOR the option's `!`.
 */
export function addrtypeMt(o: AddrtypeMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const host = hostOf(par.host);
  const dev = o.limitIfaceIn ? par.inIface : o.limitIfaceOut ? par.outIface : undefined;
  if (o.src && o.src.types.includes(host.addrType(skb.pkt.ip.src, dev)) === o.src.invert) return false;
  if (o.dst && o.dst.types.includes(host.addrType(skb.pkt.ip.dst, dev)) === o.dst.invert) return false;
  return true;
}
