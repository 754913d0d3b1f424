/**
 * CHECKSUM target: net/netfilter/xt_CHECKSUM.c (`checksum_tg`, `checksum_tg_check`: --checksum-fill
 * required; `.table` "mangle"), kernel 6.17; userspace extensions/libxt_CHECKSUM.c, iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 */

import type { TargetDescriptor } from "../registry";
import { collect } from "./util";

export interface ChecksumTargetOptions {
  readonly fill: true;
}

export const checksumTarget: TargetDescriptor<ChecksumTargetOptions> = {
  kind: "target",
  name: "CHECKSUM",
  kernelFile: "net/netfilter/xt_CHECKSUM.c",
  userspaceFile: "extensions/libxt_CHECKSUM.c",
  table: "mangle",
  options: [{ name: "checksum-fill", nargs: 0 }],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (!m.has("checksum-fill")) return ctx.fail("CHECKSUM needs --checksum-fill");
    return { fill: true };
  },
  save() {
    return "--checksum-fill";
  },
};
