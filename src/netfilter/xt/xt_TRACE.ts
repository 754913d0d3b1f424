/**
 * TRACE target: net/netfilter/xt_TRACE.c (`trace_tg` sets skb->nf_trace; `.table` "raw"), kernel 6.17;
 * userspace extensions/libxt_TRACE.c (no options), iptables 1.8.x.
 *
 * Left out on purpose: the nf_logger dependency check.
 *
 * Per packet: `trace_tg`.
 */

import type { TargetDescriptor } from "../registry";
import type { Skb, TargetVerdict } from "../skb";
import { XT_CONTINUE } from "../skb";

export type TraceTargetOptions = Record<string, never>;

export const traceTarget: TargetDescriptor<TraceTargetOptions> = {
  kind: "target",
  name: "TRACE",
  target: traceTg,
  kernelFile: "net/netfilter/xt_TRACE.c",
  userspaceFile: "extensions/libxt_TRACE.c",
  table: "raw",
  options: [],
  parse() {
    return {};
  },
  save() {
    return "";
  },
};

/** trace_tg: skb->nf_trace = 1; XT_CONTINUE. */
export function traceTg(_o: TraceTargetOptions, skb: Skb): TargetVerdict {
  skb.nfTrace = true;
  return XT_CONTINUE;
}
