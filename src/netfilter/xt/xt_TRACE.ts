/**
 * TRACE target: net/netfilter/xt_TRACE.c (`trace_tg` sets skb->nf_trace; `.table` "raw"), kernel 6.17;
 * userspace extensions/libxt_TRACE.c (no options), iptables 1.8.x.
 *
 * Left out on purpose: the nf_logger dependency check.
 */

import type { TargetDescriptor } from "../registry";

export type TraceTargetOptions = Record<string, never>;

export const traceTarget: TargetDescriptor<TraceTargetOptions> = {
  kind: "target",
  name: "TRACE",
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
