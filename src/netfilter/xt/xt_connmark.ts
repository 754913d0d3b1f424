/**
 * connmark match and CONNMARK target, both in net/netfilter/xt_connmark.c as in the kernel (`connmark_mt`;
 * `connmark_tg` revision 1: SET ctmark = (ctmark & ~ctmask) ^ value; SAVE ctmark = (ctmark & ~ctmask) ^
 * (skb->mark & nfmask); RESTORE the reverse; checkentry -> nf_ct_netns_get), kernel 6.17; userspace
 * extensions/libxt_connmark.c (`connmark_mt_parse`, `connmark_mt_save`) and extensions/libxt_CONNMARK.c
 * (`connmark_tg_parse`, `connmark_tg_save`), iptables 1.8.x. One file because xt_CONNMARK.ts would clash with
 * xt_connmark.ts on case-insensitive file systems.
 *
 * Left out on purpose: CONNMARK revision 2 shift options.
 *
 * Per packet: `connmark_mt`, `connmark_tg_shift` (the ct mark written through HostServices.setCtMark).
 */

import type { MatchDescriptor, TargetDescriptor } from "../registry";
import { bang, collect, hex, parseMarkMask, parseUint } from "./util";
import { XMARK_OPTIONS, formatMarkMask, parseXmark } from "./xt_mark";
import type { Skb, TargetVerdict, XtActionParam } from "../skb";
import { XT_CONTINUE } from "../skb";
import { hostOf } from "../host_services";

export interface ConnmarkMatchOptions {
  readonly mark: number;
  readonly mask: number;
  readonly invert: boolean;
}

export const connmarkMatch: MatchDescriptor<ConnmarkMatchOptions> = {
  kind: "match",
  name: "connmark",
  match: connmarkMt,
  kernelFile: "net/netfilter/xt_connmark.c",
  userspaceFile: "extensions/libxt_connmark.c",
  options: [{ name: "mark", nargs: 1, invert: true }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("mark");
    if (!o) return ctx.fail("connmark: --mark is required");
    const v = parseMarkMask(o.args[0]);
    if (!v) return ctx.fail(`invalid mark "${o.args[0]}" (value[/mask], 32-bit)`, o);
    return { mark: v.value, mask: v.mask, invert: o.invert };
  },
  save(o) {
    return `${bang(o.invert)}--mark ${formatMarkMask(o.mark, o.mask)}`;
  },
};

export type ConnmarkTargetOptions =
  | { readonly mode: "set"; readonly ctmark: number; readonly ctmask: number }
  | { readonly mode: "save" | "restore"; readonly nfmask: number; readonly ctmask: number };

export const connmarkTarget: TargetDescriptor<ConnmarkTargetOptions> = {
  kind: "target",
  name: "CONNMARK",
  target: connmarkTg,
  kernelFile: "net/netfilter/xt_connmark.c",
  userspaceFile: "extensions/libxt_CONNMARK.c",
  options: [
    ...XMARK_OPTIONS.map((name) => ({ name, nargs: 1 as const })),
    { name: "save-mark", nargs: 0 },
    { name: "restore-mark", nargs: 0 },
    { name: "mask", nargs: 1 },
    { name: "nfmask", nargs: 1 },
    { name: "ctmask", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
    const actions = opts.filter(
      (o) =>
        (XMARK_OPTIONS as readonly string[]).includes(o.name) ||
        o.name === "save-mark" ||
        o.name === "restore-mark",
    );
    if (actions.length === 0)
      return ctx.fail(
        "CONNMARK needs --set-xmark, --set-mark, --save-mark or --restore-mark (or --and/--or/--xor-mark)",
      );
    if (actions.length > 1) return ctx.fail("CONNMARK takes only one action", actions[1]);
    const a = actions[0];
    const masks: Record<string, number> = {};
    for (const key of ["mask", "nfmask", "ctmask"]) {
      const o = m.get(key);
      if (!o) continue;
      const v = parseUint(o.args[0]);
      if (v === undefined) return ctx.fail(`bad --${key} "${o.args[0]}"`, o);
      masks[key] = v;
    }
    if (a.name === "save-mark" || a.name === "restore-mark") {
      const both = masks.mask ?? 0xffffffff;
      return {
        mode: a.name === "save-mark" ? "save" : "restore",
        nfmask: masks.nfmask ?? both,
        ctmask: masks.ctmask ?? both,
      };
    }
    if (m.has("mask") || m.has("nfmask") || m.has("ctmask")) {
      return ctx.fail(
        "CONNMARK: --mask/--nfmask/--ctmask go with --save-mark or --restore-mark",
        m.get("mask") ?? m.get("nfmask") ?? m.get("ctmask"),
      );
    }
    const x = parseXmark(a, ctx);
    if ("code" in x) return x;
    return { mode: "set", ctmark: x.value, ctmask: x.mask };
  },
  save(o) {
    if (o.mode === "set") return `--set-xmark ${hex(o.ctmark)}/${hex(o.ctmask)}`;
    return `--${o.mode}-mark --nfmask ${hex(o.nfmask)} --ctmask ${hex(o.ctmask)}`;
  },
};

/** connmark_mt: no conntrack never matches (even inverted); else ((ct->mark & mask) == mark) ^ invert. */
export function connmarkMt(o: ConnmarkMatchOptions, skb: Skb): boolean {
  if (!skb.ct) return false;
  return ((skb.ct.mark & o.mask) >>> 0 === o.mark >>> 0) !== o.invert;
}

/**
 * connmark_tg_shift (revision 1, shifts 0): SET ctmark = (ctmark & ~ctmask) ^ ctmark-value; SAVE ctmark =
 * (ctmark & ~ctmask) ^ (skb->mark & nfmask); RESTORE skb->mark = (skb->mark & ~nfmask) ^ (ctmark & ctmask).
 * The conntrack mark changes through the host (Conntrack.setMark caches IPCT_MARK only on a change, as the
 * kernel's `if (ct->mark != newmark)` does). No conntrack: nothing happens. Always XT_CONTINUE.
 */
export function connmarkTg(o: ConnmarkTargetOptions, skb: Skb, par: XtActionParam): TargetVerdict {
  const ct = skb.ct;
  if (!ct) return XT_CONTINUE;
  switch (o.mode) {
    case "set": {
      const m = ((ct.mark & ~o.ctmask) ^ o.ctmark) >>> 0;
      if (m !== ct.mark) hostOf(par.host).setCtMark(ct, m);
      break;
    }
    case "save": {
      const m = ((ct.mark & ~o.ctmask) ^ (skb.mark & o.nfmask)) >>> 0;
      if (m !== ct.mark) hostOf(par.host).setCtMark(ct, m);
      break;
    }
    case "restore":
      skb.mark = ((skb.mark & ~o.nfmask) ^ (ct.mark & o.ctmask)) >>> 0;
      break;
  }
  return XT_CONTINUE;
}
