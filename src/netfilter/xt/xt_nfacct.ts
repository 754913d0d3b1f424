/**
 * nfacct match: net/netfilter/xt_nfacct.c (`nfacct_mt`: always matches, counts into a named nfacct object;
 * checkentry fails when the object does not exist), kernel 6.17; userspace extensions/libxt_nfacct.c
 * (`nfacct_save` prints with a double space), iptables 1.8.x. Used by kube-proxy.
 *
 * Left out on purpose: nothing; the object must be known through LoadEnvironment.nfacct when that is given.
 *
 * Per packet: `nfacct_mt`; counting goes to HostServices.nfacctAdd when the host has it.
 */

import type { MatchDescriptor } from "../registry";
import { collect } from "./util";
import type { Skb, XtActionParam } from "../skb";
import type { HostServices } from "../host_services";

export const NFACCT_NAME_MAX = 32;

export interface NfacctMatchOptions {
  readonly name: string;
}

export const nfacctMatch: MatchDescriptor<NfacctMatchOptions> = {
  kind: "match",
  name: "nfacct",
  match: nfacctMt,
  kernelFile: "net/netfilter/xt_nfacct.c",
  userspaceFile: "extensions/libxt_nfacct.c",
  options: [{ name: "nfacct-name", nargs: 1 }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("nfacct-name");
    if (!o) return ctx.fail("nfacct: --nfacct-name is required");
    if (o.args[0].length >= NFACCT_NAME_MAX) return ctx.fail(`nfacct name "${o.args[0]}" is too long`, o);
    if (ctx.env.nfacct !== undefined && !ctx.env.nfacct.has(o.args[0])) {
      return ctx.fail(`nfacct object "${o.args[0]}" does not exist`, o);
    }
    return { name: o.args[0] };
  },
  save(o) {
    return `--nfacct-name  ${o.name}`;
  },
};

/** nfacct_mt: counts the packet into the named object (nfnl_acct_update) and always matches. */
export function nfacctMt(o: NfacctMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const host = par.host as HostServices | undefined;
  host?.nfacctAdd?.(o.name, skb.pkt.ip.totalLength);
  return true;
}
