/**
 * Generic tracking for protocols without a tracker of their own: addresses only, one timeout.
 *
 * Mirrors generic_packet() in net/netfilter/nf_conntrack_core.c and nf_conntrack_proto_generic.c
 * (nf_conntrack_generic_init_net: 600 s), Linux 6.17 (Kingxukai/linux @ 9b44fff6); the same in every tree read.
 * Leaves out on purpose: GRE keys (the kernel's GRE tracker uses 30/180 s timeouts and key tuples; here GRE is
 * tracked generically), SCTP, DCCP and UDPLITE trackers (tracked generically, with ports ignored).
 */
import type { Packet } from "../wire/packet";
import type { CtDir, CtInfo, L4Context, L4Result, L4Tracker, NfConnL4View, Tuple } from "./types";
import { IPS_FIXED_TIMEOUT, NF_ACCEPT } from "./types";

const ACCEPT: L4Result = Object.freeze({ verdict: NF_ACCEPT });

/** generic_packet(): refresh to nf_conntrack_generic_timeout. */
export function genericPacket(
  ct: NfConnL4View,
  _pkt: Packet,
  _dir: CtDir,
  _ctinfo: CtInfo,
  ctx: L4Context,
): L4Result {
  if (!(ct.status & IPS_FIXED_TIMEOUT)) ct.timeout = ctx.now + ctx.sysctl.nf_conntrack_generic_timeout;
  return ACCEPT;
}

/** The tracker the core uses for any protocol number without a registered one (l4proto 255 = "any"). */
export const genericTracker: L4Tracker = {
  l4proto: 255,
  name: "unknown",
  pktToTuple(_pkt: Packet) {
    return { srcU: 0, dstU: 0 };
  },
  invertTuple(_t: Tuple) {
    return { srcU: 0, dstU: 0 };
  },
  packet: genericPacket,
};
