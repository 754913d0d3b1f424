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
    if (new TextEncoder().encode(o.args[0]).length >= XT_MAX_COMMENT_LEN) {
      return ctx.fail(`comment is too long (at most ${XT_MAX_COMMENT_LEN - 1} bytes)`, o);
    }
    return { comment: o.args[0] };
  },
  save(o) {
    return `--comment ${saveString(o.comment)}`;
  },
};

/** comment_mt: always true. */
export function commentMt(): boolean {
  return true;
}
