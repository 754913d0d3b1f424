/**
 * state match: net/netfilter/xt_state.c (`state_mt`, `state_mt_check` -> nf_ct_netns_get), kernel 6.17;
 * userspace extensions/libxt_state.c (`state_parse`, `state_save`), iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 *
 * Per packet: `state_mt` from skb.ct/ctinfo/untracked.
 */

import type { MatchDescriptor } from "../registry";
import { parseStateList } from "./xt_conntrack";
import { bang, collect } from "./util";
import type { Skb } from "../skb";
import { ctinfoState } from "../../conntrack/core";

export const STATE_NAMES = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED"] as const;
export type StateName = (typeof STATE_NAMES)[number];

export interface StateMatchOptions {
  readonly states: readonly StateName[];
  readonly invert: boolean;
}

export const stateMatch: MatchDescriptor<StateMatchOptions> = {
  kind: "match",
  name: "state",
  match: stateMt,
  kernelFile: "net/netfilter/xt_state.c",
  userspaceFile: "extensions/libxt_state.c",
  options: [{ name: "state", nargs: 1, invert: true }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("state");
    if (!o) return ctx.fail("state: --state is required");
    const v = parseStateList(o.args[0], STATE_NAMES);
    if (!v) return ctx.fail(`bad state "${o.args[0]}" (supported: ${STATE_NAMES.join(", ")})`, o);
    return { states: v, invert: o.invert };
  },
  save(o) {
    return `${bang(o.invert)}--state ${o.states.join(",")}`;
  },
};

/** state_mt: the ctinfo's state bit (or INVALID / UNTRACKED without a conntrack) in the mask; `!` complements. */
export function stateMt(o: StateMatchOptions, skb: Skb): boolean {
  const state: StateName = skb.ct ? ctinfoState(skb.ctinfo ?? 0) : skb.untracked ? "UNTRACKED" : "INVALID";
  return o.states.includes(state) !== o.invert;
}
