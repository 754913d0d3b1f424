/**
 * physdev match: net/netfilter/xt_physdev.c (`physdev_mt`, `physdev_mt_check`: --physdev-out and
 * --physdev-is-out need --physdev-is-bridged when reached from OUTPUT, FORWARD or POSTROUTING), kernel 6.17;
 * userspace extensions/libxt_physdev.c (`physdev_parse`, `physdev_save`), iptables 1.8.x.
 *
 * Left out on purpose: nothing of the syntax; bridging itself is not emulated.
 *
 * Per packet: the no-bridge branch of `physdev_mt` (a routed host never has bridge info).
 */

import type { MatchDescriptor } from "../registry";
import { bang, collect } from "./util";

export interface PhysdevMatchOptions {
  readonly in?: { readonly name: string; readonly invert: boolean };
  readonly out?: { readonly name: string; readonly invert: boolean };
  readonly isIn?: { readonly invert: boolean };
  readonly isOut?: { readonly invert: boolean };
  readonly isBridged?: { readonly invert: boolean };
}

export const physdevMatch: MatchDescriptor<PhysdevMatchOptions> = {
  kind: "match",
  name: "physdev",
  match: physdevMt,
  kernelFile: "net/netfilter/xt_physdev.c",
  userspaceFile: "extensions/libxt_physdev.c",
  options: [
    { name: "physdev-in", nargs: 1, invert: true },
    { name: "physdev-out", nargs: 1, invert: true },
    { name: "physdev-is-in", nargs: 0, invert: true },
    { name: "physdev-is-out", nargs: 0, invert: true },
    { name: "physdev-is-bridged", nargs: 0, invert: true },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (m.size === 0) return ctx.fail("physdev: at least one option is required");
    const out: { -readonly [K in keyof PhysdevMatchOptions]: PhysdevMatchOptions[K] } = {};
    for (const o of m.values()) {
      if (o.name === "physdev-in" || o.name === "physdev-out") {
        if (o.args[0].length > 15)
          return ctx.fail(`interface name "${o.args[0]}" is too long (at most 15)`, o);
        out[o.name === "physdev-in" ? "in" : "out"] = { name: o.args[0], invert: o.invert };
      } else if (o.name === "physdev-is-in") out.isIn = { invert: o.invert };
      else if (o.name === "physdev-is-out") out.isOut = { invert: o.invert };
      else out.isBridged = { invert: o.invert };
    }
    return out;
  },
  check(o, ctx) {
    if (
      (o.out || o.isOut) &&
      (!o.isBridged || o.isBridged.invert) &&
      (ctx.hooks.has("OUTPUT") || ctx.hooks.has("FORWARD") || ctx.hooks.has("POSTROUTING"))
    ) {
      return ctx.fail(
        "physdev: --physdev-out and --physdev-is-out are only supported with --physdev-is-bridged in OUTPUT, FORWARD and POSTROUTING",
      );
    }
    return undefined;
  },
  save(o) {
    return [
      o.isIn && `${bang(o.isIn.invert)}--physdev-is-in`,
      o.in && `${bang(o.in.invert)}--physdev-in ${o.in.name}`,
      o.isOut && `${bang(o.isOut.invert)}--physdev-is-out`,
      o.out && `${bang(o.out.invert)}--physdev-out ${o.out.name}`,
      o.isBridged && `${bang(o.isBridged.invert)}--physdev-is-bridged`,
    ]
      .filter(Boolean)
      .join(" ");
  },
};

/**
 * physdev_mt on a routed host: the packet never went through a bridge (`!nf_bridge_info_exists(skb)`), so the
 * rule matches exactly when every option it uses is inverted. Bridging is not emulated.
 */
export function physdevMt(o: PhysdevMatchOptions): boolean {
  return [o.in, o.out, o.isIn, o.isOut, o.isBridged].every((x) => x === undefined || x.invert);
}
