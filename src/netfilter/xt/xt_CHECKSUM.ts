/**
 * CHECKSUM target: net/netfilter/xt_CHECKSUM.c (`checksum_tg`, `checksum_tg_check`: --checksum-fill
 * required; `.table` "mangle"), kernel 6.17; userspace extensions/libxt_CHECKSUM.c, iptables 1.8.x.
 *
 * Left out on purpose: nothing.
 *
 * Per packet: `checksum_tg` is a no-op (see checksumTg).
 */

import type { TargetDescriptor } from "../registry";
import { collect } from "./util";
import type { TargetVerdict } from "../skb";
import { XT_CONTINUE } from "../skb";

export interface ChecksumTargetOptions {
  readonly fill: true;
}

export const checksumTarget: TargetDescriptor<ChecksumTargetOptions> = {
  kind: "target",
  name: "CHECKSUM",
  target: checksumTg,
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

/**
 * checksum_tg: completes a CHECKSUM_PARTIAL checksum (skb_checksum_help). A no-op here: the emulator's
 * packets never carry a checksum left to the NIC — every packet written out gets its checksums computed
 * (src/wire/ipv4.ts encodeIpv4), so there is nothing to fill in. XT_CONTINUE.
 */
export function checksumTg(): TargetVerdict {
  return XT_CONTINUE;
}
