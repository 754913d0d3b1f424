/**
 * UDP connection tracking.
 *
 * Mirrors net/netfilter/nf_conntrack_proto_udp.c (udp_error, nf_conntrack_udp_packet, udp_timeouts), Linux 6.17
 * (Kingxukai/linux @ 9b44fff6) for the 6.18 and 6.1 profiles: 30 s until a reply, then 30 s while within 2 s of
 * the first packet (stream_ts), then nf_conntrack_udp_timeout_stream (120 s) and ASSURED — never ASSURED for a
 * clash-resolved IPS_NAT_CLASH entry. Profiles 5.10 and older follow the pre-2022 code (as in 4.19/5.10.13 trees):
 * every packet after a reply refreshes to the stream timeout (180 s by default) and sets ASSURED at once.
 * Checked against recordings on Linux 6.18.44 (test/conntrack/golden/events-6.18.txt).
 * Leaves out on purpose: UDPLITE (tracked generically), per-conntrack timeout policies (CT --timeout), flow
 * offload timeouts, and late 5.10.y stable trees that took the 2 s rule but still set ASSURED at once.
 */
import type { Packet } from "../wire/packet";
import type { CtDir, CtInfo, CtReason, L4Context, L4Result, L4Tracker, NfConnL4View, Tuple } from "./types";
import {
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_FIXED_TIMEOUT,
  IPS_NAT_CLASH,
  IPS_SEEN_REPLY,
  NF_ACCEPT,
} from "./types";
import { IPPROTO_UDP } from "../wire/packet";
import { NF_INET_PRE_ROUTING } from "./types";
import { kernelAtLeast } from "./profile";

/** Seconds a reply must follow the first packet by, before the stream timeout applies (2 * HZ). */
export const UDP_STREAM_DELAY = 2;

const ACCEPT: L4Result = Object.freeze({ verdict: NF_ACCEPT });

/** udp_error(): length checks, then the checksum (only when non-zero, at PRE_ROUTING, with nf_conntrack_checksum). */
export function udpError(pkt: Packet, ctx: L4Context): CtReason | undefined {
  const l4 = pkt.l4;
  if (l4.kind !== "udp") return { fn: "udp_error", text: "short packet" };
  const udplen = 8 + pkt.payloadLength;
  if (l4.length > udplen || l4.length < 8) return { fn: "udp_error", text: "truncated/malformed packet" };
  if (l4.checksum === 0) return undefined;
  if (
    ctx.hook === NF_INET_PRE_ROUTING &&
    ctx.sysctl.nf_conntrack_checksum &&
    pkt.l4Checksum === "incorrect"
  ) {
    return { fn: "udp_error", text: "bad checksum" };
  }
  return undefined;
}

/**
 * nf_conntrack_udp_packet(). `ct.proto` holds stream_ts (absolute seconds) once the first packet was seen.
 * The caller (the core) sets SEEN_REPLY after the first reply-direction packet returns, so that packet itself
 * still gets the unreplied timeout.
 */
export function nfConntrackUdpPacket(
  ct: NfConnL4View,
  _pkt: Packet,
  _dir: CtDir,
  _ctinfo: CtInfo,
  ctx: L4Context,
): L4Result {
  const s = ctx.sysctl;
  const status = ct.status;
  if (!streamRule(ctx.kernel)) {
    if (status & IPS_SEEN_REPLY) {
      refresh(ct, ctx.now + s.nf_conntrack_udp_timeout_stream);
      if (!(status & IPS_NAT_CLASH)) ct.status |= IPS_ASSURED;
    } else {
      refresh(ct, ctx.now + s.nf_conntrack_udp_timeout);
    }
    return ACCEPT;
  }
  if ((status & IPS_CONFIRMED) === 0) ct.proto = ctx.now + UDP_STREAM_DELAY;
  if (status & IPS_SEEN_REPLY) {
    let extra = s.nf_conntrack_udp_timeout;
    let stream = false;
    // time_after(jiffies, stream_ts): strictly later.
    if (ctx.now > (ct.proto as number)) {
      extra = s.nf_conntrack_udp_timeout_stream;
      stream = (status & IPS_ASSURED) === 0;
    }
    refresh(ct, ctx.now + extra);
    if (status & IPS_NAT_CLASH) return ACCEPT;
    if (stream) ct.status |= IPS_ASSURED;
  } else {
    refresh(ct, ctx.now + s.nf_conntrack_udp_timeout);
  }
  return ACCEPT;
}

const STREAM_RULE = new Map<string, boolean>();
/** Whether the profile has the 2022 "only extend timeout to stream mode after 2s" code (memoised per profile). */
function streamRule(kernel: string): boolean {
  let v = STREAM_RULE.get(kernel);
  if (v === undefined) STREAM_RULE.set(kernel, (v = kernelAtLeast(kernel, "6.1")));
  return v;
}

/** nf_ct_refresh_acct() without the accounting (the core counts): a FIXED_TIMEOUT entry keeps its timer. */
function refresh(ct: NfConnL4View, expires: number): void {
  if (!(ct.status & IPS_FIXED_TIMEOUT)) ct.timeout = expires;
}

export const udpTracker: L4Tracker = {
  l4proto: IPPROTO_UDP,
  name: "udp",
  pktToTuple(pkt: Packet) {
    return pkt.l4.kind === "udp" ? { srcU: pkt.l4.srcPort, dstU: pkt.l4.dstPort } : undefined;
  },
  invertTuple(t: Tuple) {
    return { srcU: t.dstU, dstU: t.srcU };
  },
  error: udpError,
  packet: nfConntrackUdpPacket,
};
