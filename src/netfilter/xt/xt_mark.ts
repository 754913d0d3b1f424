/**
 * mark match and MARK target, both in net/netfilter/xt_mark.c as in the kernel (`mark_mt`: (skb->mark & mask)
 * == mark, XOR invert; `mark_tg` revision 2: skb->mark = (mark & ~mask) ^ value), kernel 6.17; userspace
 * extensions/libxt_mark.c (revision 1: `mark_mt_parse`, `mark_mt_save`) and extensions/libxt_MARK.c
 * (`mark_tg_parse`: --set-mark v/m -> xmark v/(m|v), --and-mark, --or-mark, --xor-mark; `mark_tg_save` prints
 * --set-xmark), iptables 1.8.x. One file because xt_MARK.ts would clash with xt_mark.ts on case-insensitive
 * file systems.
 *
 * Left out on purpose: match revision 0, target revisions 0 and 1.
 *
 * Per packet: `mark_mt`, `mark_tg`.
 */

import type { Diagnostic } from "../../errors";
import type { MatchDescriptor, TargetDescriptor, XtOption, XtParseContext } from "../registry";
import { bang, collect, hex, parseMarkMask, parseUint } from "./util";
import type { Skb, TargetVerdict } from "../skb";
import { XT_CONTINUE } from "../skb";

export interface MarkMatchOptions {
  readonly mark: number;
  readonly mask: number;
  readonly invert: boolean;
}

/** print_mark of libxt_mark.c: the mask only when it is not 0xffffffff. */
export function formatMarkMask(mark: number, mask: number): string {
  return mask >>> 0 === 0xffffffff ? hex(mark) : `${hex(mark)}/${hex(mask)}`;
}

export const markMatch: MatchDescriptor<MarkMatchOptions> = {
  kind: "match",
  name: "mark",
  match: markMt,
  kernelFile: "net/netfilter/xt_mark.c",
  userspaceFile: "extensions/libxt_mark.c",
  options: [{ name: "mark", nargs: 1, invert: true }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("mark");
    if (!o) return ctx.fail("mark: --mark is required");
    const v = parseMarkMask(o.args[0]);
    if (!v) return ctx.fail(`invalid mark "${o.args[0]}" (value[/mask], 32-bit)`, o);
    return { mark: v.value, mask: v.mask, invert: o.invert };
  },
  save(o) {
    return `${bang(o.invert)}--mark ${formatMarkMask(o.mark, o.mask)}`;
  },
};

export interface XmarkOptions {
  readonly value: number;
  readonly mask: number;
}

/** The five MARK/CONNMARK spellings, all reduced to value/mask for `(old & ~mask) ^ value`. */
export function parseXmark(o: XtOption, ctx: XtParseContext): XmarkOptions | Diagnostic {
  const bad = (): Diagnostic => ctx.fail(`bad mark "${o.args[0]}" for --${o.name} (32-bit value[/mask])`, o);
  switch (o.name) {
    case "set-xmark": {
      const v = parseMarkMask(o.args[0]);
      return v ? { value: v.value, mask: v.mask } : bad();
    }
    case "set-mark": {
      const v = parseMarkMask(o.args[0]);
      return v ? { value: v.value, mask: (v.mask | v.value) >>> 0 } : bad();
    }
    case "and-mark": {
      const v = parseUint(o.args[0]);
      return v === undefined ? bad() : { value: 0, mask: ~v >>> 0 };
    }
    case "or-mark": {
      const v = parseUint(o.args[0]);
      return v === undefined ? bad() : { value: v, mask: v };
    }
    default: {
      const v = parseUint(o.args[0]);
      return v === undefined ? bad() : { value: v, mask: 0 };
    }
  }
}

export const XMARK_OPTIONS = ["set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"] as const;

export const markTarget: TargetDescriptor<XmarkOptions> = {
  kind: "target",
  name: "MARK",
  target: markTg,
  kernelFile: "net/netfilter/xt_mark.c",
  userspaceFile: "extensions/libxt_MARK.c",
  options: XMARK_OPTIONS.map((name) => ({ name, nargs: 1 as const })),
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (opts.length === 0)
      return ctx.fail(`MARK needs one of ${XMARK_OPTIONS.map((n) => `--${n}`).join(", ")}`);
    if (opts.length > 1)
      return ctx.fail(
        "MARK takes only one of --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark",
        opts[1],
      );
    if (opts[0].invert) return ctx.fail(`--${opts[0].name} cannot be inverted`, opts[0]);
    return parseXmark(opts[0], ctx);
  },
  save(o) {
    return `--set-xmark ${hex(o.value)}/${hex(o.mask)}`;
  },
};

/** mark_mt: ((skb->mark & mask) == mark) ^ invert. */
export function markMt(o: MarkMatchOptions, skb: Skb): boolean {
  return ((skb.mark & o.mask) >>> 0 === o.mark >>> 0) !== o.invert;
}

/** mark_tg (revision 2): skb->mark = (skb->mark & ~mask) ^ mark; XT_CONTINUE. */
export function markTg(o: XmarkOptions, skb: Skb): TargetVerdict {
  skb.mark = ((skb.mark & ~o.mask) ^ o.value) >>> 0;
  return XT_CONTINUE;
}
