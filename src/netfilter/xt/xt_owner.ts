/**
 * owner match: net/netfilter/xt_owner.c (`owner_mt`; `.hooks` LOCAL_OUT | POST_ROUTING), kernel 6.17;
 * userspace extensions/libxt_owner.c (revision 1: `owner_mt_parse`, `owner_mt_save`; names resolved with
 * getpwnam/getgrnam at load time), iptables 1.8.x.
 *
 * Left out on purpose: revision 0 (--pid-owner, --cmd-owner). User and group names resolve through
 * LoadEnvironment, not the host.
 *
 * Per packet: `owner_mt` from skb.owner. --suppl-groups cannot add anything: the emulated owner has no\nsupplementary groups.
 */

import type { MatchDescriptor, XtOption, XtParseContext } from "../registry";
import type { Diagnostic } from "../../errors";
import { collect, parseUint } from "./util";
import type { Skb } from "../skb";

export interface OwnerIdRange {
  readonly min: number;
  readonly max: number;
  readonly invert: boolean;
}

export interface OwnerMatchOptions {
  readonly uid?: OwnerIdRange;
  readonly gid?: OwnerIdRange;
  readonly supplGroups?: { readonly invert: boolean };
  readonly socketExists?: { readonly invert: boolean };
}

function parseIds(
  o: XtOption,
  names: ReadonlyMap<string, number>,
  ctx: XtParseContext,
): OwnerIdRange | Diagnostic {
  const text = o.args[0];
  const byName = names.get(text);
  if (byName !== undefined) return { min: byName, max: byName, invert: o.invert };
  const dash = text.indexOf("-");
  const a = parseUint(dash < 0 ? text : text.slice(0, dash));
  const b = dash < 0 ? a : parseUint(text.slice(dash + 1));
  if (a === undefined || b === undefined || a > b) {
    const kind = o.name === "uid-owner" ? "user" : "group";
    return ctx.fail(`unknown ${kind} "${text}" (give a number, a range a-b, or a name known to the host)`, o);
  }
  return { min: a, max: b, invert: o.invert };
}

export const ownerMatch: MatchDescriptor<OwnerMatchOptions> = {
  kind: "match",
  name: "owner",
  match: ownerMt,
  kernelFile: "net/netfilter/xt_owner.c",
  userspaceFile: "extensions/libxt_owner.c",
  hooks: ["OUTPUT", "POSTROUTING"],
  options: [
    { name: "uid-owner", nargs: 1, invert: true },
    { name: "gid-owner", nargs: 1, invert: true },
    { name: "suppl-groups", nargs: 0, invert: true },
    { name: "socket-exists", nargs: 0, invert: true },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (m.size === 0) return ctx.fail("owner: at least one option is required");
    const out: { -readonly [K in keyof OwnerMatchOptions]: OwnerMatchOptions[K] } = {};
    let sawGid = false;
    for (const o of opts) {
      if (o.name === "uid-owner" || o.name === "gid-owner") {
        const r = parseIds(o, o.name === "uid-owner" ? ctx.env.users : ctx.env.groups, ctx);
        if ("code" in r) return r;
        if (o.name === "uid-owner") out.uid = r;
        else {
          out.gid = r;
          sawGid = true;
        }
      } else if (o.name === "suppl-groups") {
        if (!sawGid) return ctx.fail("owner: --suppl-groups needs --gid-owner before it", o);
        if (o.invert) return ctx.fail("owner: --suppl-groups cannot be inverted", o);
        out.supplGroups = { invert: false };
      } else {
        out.socketExists = { invert: o.invert };
      }
    }
    return out;
  },
  save(o) {
    const ids = (label: string, r?: OwnerIdRange): string | undefined =>
      r && `${r.invert ? "! " : ""}--${label} ${r.min === r.max ? r.min : `${r.min}-${r.max}`}`;
    return [
      ids("uid-owner", o.uid),
      ids("gid-owner", o.gid),
      o.supplGroups && `${o.supplGroups.invert ? "! " : ""}--suppl-groups`,
      o.socketExists && `${o.socketExists.invert ? "! " : ""}--socket-exists`,
    ]
      .filter(Boolean)
      .join(" ");
  },
};

/**
 * owner_mt: without a socket (forwarded packets, kernel-made replies) the rule matches only when every given
 * option is inverted; `! --socket-exists` fails on a packet with a socket; uid/gid ranges against the socket
 * file's fsuid/fsgid (skb.owner).
 */
export function ownerMt(o: OwnerMatchOptions, skb: Skb): boolean {
  const owner = skb.owner;
  if (!owner) {
    return [o.uid, o.gid, o.socketExists].every((x) => x === undefined || x.invert);
  }
  if (o.socketExists?.invert) return false;
  if (o.uid && (owner.uid >= o.uid.min && owner.uid <= o.uid.max) === o.uid.invert) return false;
  if (o.gid && (owner.gid >= o.gid.min && owner.gid <= o.gid.max) === o.gid.invert) return false;
  return true;
}
