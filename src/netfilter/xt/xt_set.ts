/**
 * set match: net/netfilter/xt_set.c (revision 4: `set_match_v4`, `set_match_v1_checkentry` looks the set up
 * by name and fails when it does not exist), kernel 6.17; userspace extensions/libxt_set.c (`set_parse_v4`,
 * `set_save_v4`), iptables 1.8.x.
 *
 * Left out on purpose: the counter options (--packets-eq, --bytes-gt, ...) and --update-counters flags.
 * The set must be known through LoadEnvironment.ipsets when that is given.
 *
 * Per packet: `set_match_v4` through HostServices.ipset and src/ipset `ipsetTest`.
 */

import type { MatchDescriptor } from "../registry";
import { bang, collect } from "./util";
import type { Skb, XtActionParam } from "../skb";
import { hostOf } from "../host_services";
import { ipsetTest } from "../../ipset/ipset";

export const IPSET_MAXNAMELEN = 32;
export const IPSET_DIM_MAX = 6;

export interface SetMatchOptions {
  readonly name: string;
  /** One entry per dimension: true = src, false = dst. */
  readonly flags: readonly ("src" | "dst")[];
  readonly invert: boolean;
  readonly returnNomatch: boolean;
}

export const setMatch: MatchDescriptor<SetMatchOptions> = {
  kind: "match",
  name: "set",
  match: setMt,
  kernelFile: "net/netfilter/xt_set.c",
  userspaceFile: "extensions/libxt_set.c",
  options: [
    { name: "match-set", aliases: ["set"], nargs: 2, invert: true },
    { name: "return-nomatch", nargs: 0 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("match-set");
    if (!o) return ctx.fail("set: --match-set NAME FLAGS is required");
    const [name, flagText] = o.args;
    if (name.length >= IPSET_MAXNAMELEN) return ctx.fail(`set name "${name}" is too long`, o);
    const flags = flagText.split(",");
    if (flags.length > IPSET_DIM_MAX || flags.some((f) => f !== "src" && f !== "dst")) {
      return ctx.fail(`bad set flags "${flagText}" (comma-separated src/dst, at most ${IPSET_DIM_MAX})`, o);
    }
    if (ctx.env.ipsets !== undefined && !ctx.env.ipsets.has(name)) {
      return ctx.fail(`set "${name}" does not exist`, o);
    }
    return {
      name,
      flags: flags as ("src" | "dst")[],
      invert: o.invert,
      returnNomatch: m.has("return-nomatch"),
    };
  },
  save(o) {
    return `${bang(o.invert)}--match-set ${o.name} ${o.flags.join(",")}${o.returnNomatch ? " --return-nomatch" : ""}`;
  },
};

/**
 * set_match_v4 / match_set / ip_set_test: the set's kadt test on the packet with the src/dst flags. A hit on
 * a `nomatch` element is no match, unless --return-nomatch, which reverses it: nomatch elements match, plain
 * elements do not. `!` inverts the outcome. An unknown set never matches (checkentry would have refused it).
 */
export function setMt(o: SetMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const host = hostOf(par.host);
  const set = host.ipset(o.name);
  let hit = false;
  if (set) {
    const r = ipsetTest(set, skb.pkt, o.flags, par.now, (n) => host.ipset(n));
    hit = o.returnNomatch ? r === "nomatch-element" : r === "match";
  }
  return hit !== o.invert;
}
