/**
 * comment match: net/netfilter/xt_comment.c (always matches; XT_MAX_COMMENT_LEN 256 including the NUL),
 * kernel 6.17; userspace extensions/libxt_comment.c (`comment_save` via xtables_save_string), iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 */

import type { MatchDescriptor } from "../registry";
import { collect, saveString } from "./util";

export const XT_MAX_COMMENT_LEN = 256;

export interface CommentMatchOptions {
  readonly comment: string;
}

export const commentMatch: MatchDescriptor<CommentMatchOptions> = {
  kind: "match",
  name: "comment",
  match: commentMt,
  kernelFile: "net/netfilter/xt_comment.c",
  userspaceFile: "extensions/libxt_comment.c",
  options: [{ name: "comment", nargs: 1 }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    const o = m.get("comment");
    if (!o) return ctx.fail("comment: --comment is required");
    if (o.invert) return ctx.fail("comment: --comment cannot be inverted", o);
    if (utf8Length(o.args[0]) >= XT_MAX_COMMENT_LEN) {
      return ctx.fail(`comment is too long (at most ${XT_MAX_COMMENT_LEN - 1} bytes)`, o);
    }
    return { comment: o.args[0] };
  },
  save(o) {
    return `--comment ${saveString(o.comment)}`;
  },
};

/** Bytes of the UTF-8 encoding TextEncoder gives (a lone surrogate becomes U+FFFD, 3 bytes), without encoding. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** comment_mt: always true. */
export function commentMt(): boolean {
  return true;
}
