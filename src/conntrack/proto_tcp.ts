/**
 * TCP connection tracking: the per-packet state machine.
 *
 * Mirrors net/netfilter/nf_conntrack_proto_tcp.c: tcp_error, tcp_new, nf_conntrack_tcp_packet,
 * nf_tcp_handle_invalid, tcp_can_early_drop, tcp_print_conntrack, nf_conntrack_tcp_established and the
 * nf_conntrack_l4proto_tcp descriptor (tuple callbacks from nf_conntrack_proto.c's port helpers).
 * Kernel 6.17.0-rc3 (Kingxukai/linux @ 9b44fff6) is the default ("6.18" profile); version differences follow
 * 6.1.y, 5.10.13, CAF 3.10 and the <=3.6 snapshot (see ./tcp_window.ts `tcpProfile` for the switches).
 * Transitions come from tables/tcp_conntracks.ts, never from if/else chains here.
 * Leaves out on purpose: SYNPROXY (nfct_synproxy is always false), per-conntrack timeout policies
 * (nf_ct_timeout_lookup: the pernet sysctl timeouts are used), ctnetlink attributes, IPv6, and event delivery
 * (events are returned as values in TcpL4Result.events for the caller to emit).
 *
 * Time: ct.timeout is written as an absolute time (ctx.now + timeout), also for unconfirmed entries.
 */
import type { Packet, TcpHeader } from "../wire/packet";
import { IPPROTO_TCP, TCP_RST } from "../wire/packet";
import type { CtDir, CtInfo, CtReason, L4Context, L4Result, L4Tracker, NfConnL4View, Tuple } from "./types";
import {
  IP_CT_DIR_ORIGINAL,
  IP_CT_DIR_REPLY,
  IPS_ASSURED,
  IPS_FIXED_TIMEOUT,
  IPS_OFFLOAD,
  IPS_SEEN_REPLY,
  NF_ACCEPT,
  NF_DROP,
  NF_INET_PRE_ROUTING,
  NF_REPEAT,
} from "./types";
import {
  TCP_ACK_SET,
  TCP_CONNTRACK_CLOSE,
  TCP_CONNTRACK_CLOSE_WAIT,
  TCP_CONNTRACK_ESTABLISHED,
  TCP_CONNTRACK_FIN_WAIT,
  TCP_CONNTRACK_IGNORE,
  TCP_CONNTRACK_LAST_ACK,
  TCP_CONNTRACK_MAX,
  TCP_CONNTRACK_NONE,
  TCP_CONNTRACK_RETRANS,
  TCP_CONNTRACK_SYN_RECV,
  TCP_CONNTRACK_SYN_SENT,
  TCP_CONNTRACK_SYN_SENT2,
  TCP_CONNTRACK_TIME_WAIT,
  TCP_CONNTRACK_UNACK,
  TCP_FIN_SET,
  TCP_INDEX_NAMES,
  TCP_NONE_SET,
  TCP_RST_SET,
  TCP_SYNACK_SET,
  TCP_SYN_SET,
  get_conntrack_index,
  tcpConntracksFor,
  tcpStateCell,
  tcpStatesOf,
  tcp_conntrack_names,
} from "../../tables/tcp_conntracks";
import type { TcpStateTable } from "../../tables/tcp_conntracks";
import { tcpFlagsValid } from "../../tables/tcp_valid_flags";
import { tcpTimeout } from "../../tables/tcp_timeouts";
import type { IpCtTcp, IpCtTcpState, TcpProfile } from "./tcp_window";
import {
  IP_CT_EXP_CHALLENGE_ACK,
  IP_CT_TCP_FLAG_BE_LIBERAL,
  IP_CT_TCP_FLAG_CLOSE_INIT,
  IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED,
  IP_CT_TCP_FLAG_MAXACK_SET,
  IP_CT_TCP_FLAG_SACK_PERM,
  IP_CT_TCP_FLAG_WINDOW_SCALE,
  IP_CT_TCP_SIMULTANEOUS_OPEN,
  before,
  loadTcpState,
  newIpCtTcp,
  newIpCtTcpState,
  segmentSeqPlusLen,
  storeTcpState,
  tcpInWindow,
  tcpOptions,
  tcpProfile,
  u32,
} from "./tcp_window";

export * from "./tcp_window";

/** Conntrack events the tracker would cache (nf_conntrack_event_cache). */
export type TcpEvent = "IPCT_PROTOINFO" | "IPCT_ASSURED";

/** L4Result plus what a trace wants to show. (Optional extension of the contract in ./types.) */
export interface TcpL4Result extends L4Result {
  /** State names before and after ("SYN_SENT" -> "SYN_RECV"); absent when tcp_error/tcp_new rejected. */
  readonly oldState?: string;
  readonly newState?: string;
  /** Table row used ("syn", "synack", "fin", "ack", "rst", "none"). */
  readonly index?: string;
  readonly events?: readonly TcpEvent[];
  /** True when the tracker killed the entry (RST before any reply, or re-open). */
  readonly killed?: boolean;
}

function tcpHeader(pkt: Packet): TcpHeader | undefined {
  return pkt.l4.kind === "tcp" ? pkt.l4 : undefined;
}

/** tcp_error(): header length, checksum (PRE_ROUTING only, when nf_conntrack_checksum=1), flag combination. */
export function tcpError(pkt: Packet, ctx: L4Context): CtReason | undefined {
  const th = tcpHeader(pkt);
  if (!th) return { fn: "tcp_error", text: oldTexts(ctx) ? "short packet" : "truncated packet" };
  const tcplen = pkt.ip.totalLength > 0 ? pkt.ip.totalLength - pkt.ip.ihl : th.dataOffset + pkt.payloadLength;
  if (th.dataOffset < 20 || tcplen < th.dataOffset)
    return { fn: "tcp_error", text: oldTexts(ctx) ? "truncated/malformed packet" : "truncated packet" };
  if (ctx.sysctl.nf_conntrack_checksum && ctx.hook === NF_INET_PRE_ROUTING && pkt.l4Checksum === "incorrect")
    return { fn: "tcp_error", text: oldTexts(ctx) ? "bad TCP checksum" : "bad checksum" };
  if (!tcpFlagsValid(th.flags))
    return {
      fn: "tcp_error",
      text: oldTexts(ctx) ? "invalid TCP flag combination" : "invalid tcp flag combination",
    };
  return undefined;
}

function oldTexts(ctx: L4Context): boolean {
  return !kernelHasNewLogTexts(ctx.kernel);
}

function kernelHasNewLogTexts(kernel: string): boolean {
  return tcpProfile(kernel).logTexts !== "3";
}

/** Scratch record for tcpNew (one direction, u32 values; copied into the entry before returning). */
const NEW_SCRATCH: IpCtTcpState = newIpCtTcpState();

/* The numeric transition table of the last profile asked for (tables/tcp_conntracks.ts tcpStatesOf). */
let statesKernel: string | undefined;
let states: TcpStateTable = tcpStatesOf(tcpConntracksFor("6.18"));

function stateTable(kernel: string): TcpStateTable {
  if (kernel !== statesKernel) {
    states = tcpStatesOf(tcpConntracksFor(kernel));
    statesKernel = kernel;
  }
  return states;
}

/**
 * tcp_new(): first packet of an unconfirmed entry. Initialises `ct.proto` and returns undefined, or returns the
 * reason the entry must be dropped (the packet is then INVALID).
 */
export function tcpNew(ct: NfConnL4View, pkt: Packet, ctx: L4Context): CtReason | undefined {
  const th = tcpHeader(pkt);
  if (!th) return { fn: "tcp_new", text: "invalid new" };
  const p = tcpProfile(ctx.kernel);
  const index = get_conntrack_index(th.flags);
  const newState = stateTable(ctx.kernel)[tcpStateCell(IP_CT_DIR_ORIGINAL, index, TCP_CONNTRACK_NONE)];
  if (newState >= TCP_CONNTRACK_MAX) {
    const cell = tcpConntracksFor(ctx.kernel)[IP_CT_DIR_ORIGINAL][index][TCP_CONNTRACK_NONE];
    return {
      fn: "tcp_new",
      // 6.x logs "invalid new"; older kernels only pr_debug "nf_ct_tcp: invalid new deleting.".
      text: p.windowActions ? "invalid new" : "invalid new deleting.",
      cell: { dir: IP_CT_DIR_ORIGINAL, index: TCP_INDEX_NAMES[index], oldState: "NONE", result: cell.to },
    };
  }
  const tcp = newIpCtTcp();
  const s0 = NEW_SCRATCH;
  loadTcpState(tcp, 0, s0);
  s0.td_end = segmentSeqPlusLen(th, pkt.payloadLength);
  s0.td_maxwin = th.window & 0xffff;
  if (s0.td_maxwin === 0) s0.td_maxwin = 1;
  if (newState === TCP_CONNTRACK_SYN_SENT) {
    s0.td_maxend = s0.td_end;
    tcpOptions(th, s0, p.optionsKeepLiberal);
  } else if (ctx.sysctl.nf_conntrack_tcp_loose === 0) {
    // No log line in the kernel; the text is the source comment.
    return { fn: "tcp_new", text: "Don't try to pick up connections." };
  } else {
    // We are in the middle of a connection, its history is lost for us.
    s0.td_maxend = u32(s0.td_end + s0.td_maxwin);
    // We assume SACK and liberal window checking to handle window scaling.
    s0.flags = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
    tcp.setFlags(1, IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL);
  }
  storeTcpState(tcp, 0, s0);
  tcp.last_index = TCP_NONE_SET; // tcp_packet will set them
  ct.proto = tcp;
  return undefined;
}

/** tcp_can_early_drop(). */
export function tcpCanEarlyDropState(state: number): boolean {
  return (
    state === TCP_CONNTRACK_FIN_WAIT ||
    state === TCP_CONNTRACK_LAST_ACK ||
    state === TCP_CONNTRACK_TIME_WAIT ||
    state === TCP_CONNTRACK_CLOSE ||
    state === TCP_CONNTRACK_CLOSE_WAIT
  );
}

export function canEarlyDrop(ct: NfConnL4View): boolean {
  const tcp = ct.proto as IpCtTcp | undefined;
  return tcp !== undefined && tcpCanEarlyDropState(tcp.state);
}

/** tcp_print_conntrack(): "ESTABLISHED " (nothing for offloaded entries). */
export function showState(ct: NfConnL4View): string {
  if (ct.status & IPS_OFFLOAD) return "";
  const tcp = ct.proto as IpCtTcp | undefined;
  return `${tcp_conntrack_names[tcp?.state ?? 0]} `;
}

/**
 * nf_conntrack_tcp_set_closing() (6.3+; nf_send_reset calls it through nf_ct_set_closing): a confirmed entry
 * goes to CLOSE; unless it already was CLOSE or has a fixed timeout, the timer becomes the CLOSE timeout.
 */
export function tcpSetClosing(ct: NfConnL4View, ctx: L4Context): boolean {
  const tcp = ct.proto as IpCtTcp | undefined;
  if (!ct.confirmed || !tcp) return false;
  const old = tcp.state;
  tcp.state = TCP_CONNTRACK_CLOSE;
  if (old === TCP_CONNTRACK_CLOSE || ct.status & IPS_FIXED_TIMEOUT) return old !== TCP_CONNTRACK_CLOSE;
  ct.timeout = ctx.now + tcpTimeout(ctx.sysctl, TCP_CONNTRACK_CLOSE);
  return true;
}

/** nf_conntrack_tcp_established(). */
function established(ct: NfConnL4View, tcp: IpCtTcp): boolean {
  return tcp.state === TCP_CONNTRACK_ESTABLISHED && (ct.status & IPS_ASSURED) !== 0;
}

/** nf_tcp_handle_invalid() (6.x): shorten an ASSURED entry's timeout after an invalid FIN/RST answer. */
function nfTcpHandleInvalid(ct: NfConnL4View, tcp: IpCtTcp, dir: CtDir, index: number, ctx: L4Context): void {
  if (!(ct.status & IPS_ASSURED) || ct.status & IPS_FIXED_TIMEOUT) return;
  if (index !== TCP_RST_SET && index !== TCP_FIN_SET) return;
  if (tcp.last_dir !== dir && (tcp.last_index === TCP_FIN_SET || tcp.last_index === TCP_RST_SET)) {
    const expires = ct.timeout - ctx.now;
    if (expires < 120) return;
    const timeout = tcpTimeout(ctx.sysctl, TCP_CONNTRACK_UNACK);
    if (expires > timeout) ct.timeout = ctx.now + timeout;
  } else {
    tcp.last_index = index;
    tcp.last_dir = dir;
  }
}

type RstDecision = "window" | "in_window" | "invalid" | "keep_old_state";

/** The RST sequence checks of the TCP_CONNTRACK_CLOSE case, per profile. */
function rstChecks(
  ct: NfConnL4View,
  tcp: IpCtTcp,
  th: TcpHeader,
  dir: CtDir,
  ctx: L4Context,
  p: TcpProfile,
): RstDecision[] {
  const out: RstDecision[] = [];
  if (p.rstSkipWhenClosing && tcpCanEarlyDropState(tcp.state)) return ["in_window"];
  const peer = tcp.seen[dir === 0 ? 1 : 0];
  const seq = u32(th.seq);
  if (
    peer.flags & IP_CT_TCP_FLAG_MAXACK_SET &&
    (!p.rstSeqZeroAndLastSynGuard || tcp.last_index !== TCP_SYN_SET)
  ) {
    if (p.rstSeqZeroAndLastSynGuard && seq === 0 && !established(ct, tcp)) return ["window"];
    const ignoreInvalidRst = p.ignoreInvalidRstSysctl && ctx.sysctl.nf_conntrack_tcp_ignore_invalid_rst !== 0;
    if (before(seq, peer.td_maxack) && !ignoreInvalidRst) return ["invalid"];
    if (p.rstExactSeq) {
      if (!established(ct, tcp) || seq === peer.td_maxack) return ["window"];
      if (tcp.last_index === TCP_ACK_SET && tcp.last_dir === dir && seq === tcp.last_end) return ["window"];
      out.push("keep_old_state");
    }
  }
  if (
    ((ct.status & IPS_SEEN_REPLY && tcp.last_index === TCP_SYN_SET) ||
      (!(ct.status & IPS_ASSURED) && tcp.last_index === TCP_ACK_SET)) &&
    u32(th.ack) === tcp.last_end
  )
    return [...out, "in_window"];
  if (
    p.rstAnswersChallengeAck &&
    tcp.state === TCP_CONNTRACK_SYN_SENT &&
    tcp.last_index === TCP_ACK_SET &&
    tcp.last_dir === IP_CT_DIR_REPLY &&
    seq === tcp.last_ack
  )
    return [...out, "in_window"];
  return [...out, "window"];
}

/** The cell that decided, for reasons (built only when a packet is ignored or invalid). */
function cellRefOf(
  kernel: string,
  dir: CtDir,
  index: number,
  oldState: number,
): NonNullable<CtReason["cell"]> {
  return {
    dir,
    index: TCP_INDEX_NAMES[index],
    oldState: tcp_conntrack_names[oldState],
    result: tcpConntracksFor(kernel)[dir][index][oldState].to,
  };
}

/** The oldState/newState/index part of a result; a state beyond the real ones shows as the cell (sIV, sIG). */
interface TcpNames {
  readonly oldState: string;
  readonly newState: string;
  readonly index: string;
}

function namesOf(kernel: string, dir: CtDir, cellOld: number, index: number, o: number, n: number): TcpNames {
  return {
    oldState: tcp_conntrack_names[o],
    newState:
      n < TCP_CONNTRACK_MAX ? tcp_conntrack_names[n] : tcpConntracksFor(kernel)[dir][index][cellOld].to,
    index: TCP_INDEX_NAMES[index],
  };
}

const NO_EVENTS: readonly TcpEvent[] = Object.freeze([]);
const EV_PROTOINFO: readonly TcpEvent[] = Object.freeze(["IPCT_PROTOINFO"]);
const EV_ASSURED: readonly TcpEvent[] = Object.freeze(["IPCT_ASSURED"]);
const EV_BOTH: readonly TcpEvent[] = Object.freeze(["IPCT_PROTOINFO", "IPCT_ASSURED"]);

/**
 * Accepted results are values of (old state, new state, index, events): shared frozen objects, made on first
 * use, so the per-packet path allocates nothing. Key: ((old * 10 + new) * 6 + index) * 4 + events bits.
 */
const ACCEPTED: (TcpL4Result | undefined)[] = new Array(10 * 10 * 6 * 4);

function accepted(oldState: number, newState: number, index: number, ev: number): TcpL4Result {
  const key = ((oldState * 10 + newState) * 6 + index) * 4 + ev;
  let r = ACCEPTED[key];
  if (r === undefined) {
    const events = ev === 0 ? NO_EVENTS : ev === 1 ? EV_PROTOINFO : ev === 2 ? EV_ASSURED : EV_BOTH;
    r = Object.freeze({
      verdict: NF_ACCEPT,
      events,
      oldState: tcp_conntrack_names[oldState],
      newState: tcp_conntrack_names[newState],
      index: TCP_INDEX_NAMES[index],
    });
    ACCEPTED[key] = r;
  }
  return r;
}

/** nf_conntrack_tcp_packet(): returns the verdict in the kernel's encoding and updates `ct`. */
export function nfConntrackTcpPacket(
  ct: NfConnL4View,
  pkt: Packet,
  dir: CtDir,
  _ctinfo: CtInfo,
  ctx: L4Context,
): TcpL4Result {
  const th = tcpHeader(pkt);
  if (!th)
    return { verdict: -NF_ACCEPT, reason: { fn: "nf_conntrack_tcp_packet", text: "truncated packet" } };
  const err = tcpError(pkt, ctx);
  if (err) return { verdict: -NF_ACCEPT, reason: err };
  if (!ct.confirmed) {
    const r = tcpNew(ct, pkt, ctx);
    if (r) return { verdict: -NF_ACCEPT, reason: r };
  }
  const tcp = ct.proto as IpCtTcp;
  const kernel = ctx.kernel;
  const p = tcpProfile(kernel);

  const cellOld = tcp.state;
  let oldState = cellOld;
  const index = get_conntrack_index(th.flags);
  let newState: number = stateTable(kernel)[tcpStateCell(dir, index, oldState)];
  const seq = u32(th.seq);
  const ackSeq = u32(th.ack);
  let skipWindow = false;

  // The switch (new_state) of the kernel, one case per block.
  let handled = false;
  if (newState === TCP_CONNTRACK_SYN_SENT && oldState >= TCP_CONNTRACK_TIME_WAIT) {
    // RFC 1122 re-open from TIME_WAIT/CLOSE, or an aborted connection restarted by the client.
    if (
      (tcp.flagsOf(dir) | tcp.flagsOf(dir === 0 ? 1 : 0)) & IP_CT_TCP_FLAG_CLOSE_INIT ||
      (tcp.last_dir === dir && tcp.last_index === TCP_RST_SET)
    ) {
      // Attempt to reopen a closed/aborted connection. Delete this connection and look up again.
      const names = namesOf(kernel, dir, cellOld, index, oldState, newState);
      if (ct.kill()) return { verdict: -NF_REPEAT, killed: true, ...names };
      return { verdict: NF_DROP, ...names };
    }
    newState = TCP_CONNTRACK_IGNORE; // fallthrough to the IGNORE case
  }
  if (newState === TCP_CONNTRACK_IGNORE) {
    handled = true;
    if (
      index === TCP_SYNACK_SET &&
      tcp.last_index === TCP_SYN_SET &&
      tcp.last_dir !== dir &&
      ackSeq === tcp.last_end
    ) {
      // b) This SYN/ACK acknowledges a SYN that we earlier ignored as invalid: get in sync from the annotations.
      oldState = TCP_CONNTRACK_SYN_SENT;
      newState = TCP_CONNTRACK_SYN_RECV;
      const s = tcp.seen[tcp.last_dir];
      s.td_end = tcp.last_end;
      s.td_maxend = tcp.last_end;
      s.td_maxwin = tcp.last_win === 0 ? 1 : tcp.last_win;
      s.td_scale = tcp.last_wscale;
      tcp.last_flags &= ~IP_CT_EXP_CHALLENGE_ACK;
      s.flags = tcp.last_flags;
      const r = tcp.seen[dir];
      const keep = p.optionsKeepLiberal ? r.flags & IP_CT_TCP_FLAG_BE_LIBERAL : 0; // nf_ct_tcp_state_reset (6.x)
      r.td_end = r.td_maxend = r.td_maxwin = r.td_maxack = r.td_scale = 0;
      r.flags = keep;
    } else {
      tcp.last_index = index;
      tcp.last_dir = dir;
      tcp.last_seq = seq;
      tcp.last_end = segmentSeqPlusLen(th, pkt.payloadLength);
      tcp.last_win = th.window & 0xffff;
      // a) A SYN in ORIGINAL: annotate its options so a SYN/ACK answer can resync us.
      if (index === TCP_SYN_SET && dir === IP_CT_DIR_ORIGINAL) {
        const seen = newIpCtTcpState();
        tcp.last_flags = tcp.last_wscale = 0;
        tcpOptions(th, seen, p.optionsKeepLiberal);
        if (seen.flags & IP_CT_TCP_FLAG_WINDOW_SCALE) {
          tcp.last_flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
          tcp.last_wscale = seen.td_scale;
        }
        if (seen.flags & IP_CT_TCP_FLAG_SACK_PERM) tcp.last_flags |= IP_CT_TCP_FLAG_SACK_PERM;
        // Mark the potential for an RFC 5961 challenge ACK (LAST_ACK: an ACK would look like the last ACK).
        if (p.challengeAckInLastAck && oldState === TCP_CONNTRACK_LAST_ACK)
          tcp.last_flags |= IP_CT_EXP_CHALLENGE_ACK;
      }
      // Possible challenge ACK reply to a SYN.
      if (
        p.recordChallengeAckInSynSent &&
        oldState === TCP_CONNTRACK_SYN_SENT &&
        index === TCP_ACK_SET &&
        dir === IP_CT_DIR_REPLY
      )
        tcp.last_ack = ackSeq;
      const text =
        p.logTexts === "6"
          ? `packet (index ${index}) in dir ${dir} ignored, state ${tcp_conntrack_names[oldState]}`
          : `invalid packet ignored in state ${tcp_conntrack_names[oldState]}`;
      return {
        verdict: NF_ACCEPT,
        ignored: true,
        reason: { fn: "nf_conntrack_tcp_packet", text, cell: cellRefOf(kernel, dir, index, cellOld) },
        ...namesOf(kernel, dir, cellOld, index, oldState, TCP_CONNTRACK_IGNORE),
      };
    }
  }
  if (!handled && newState === TCP_CONNTRACK_MAX) {
    // SYNPROXY keep-alive exception not modelled (no synproxy extension).
    const text =
      p.logTexts === "6"
        ? `packet (index ${index}) in dir ${dir} invalid, state ${tcp_conntrack_names[oldState]}`
        : "invalid state";
    return {
      verdict: -NF_ACCEPT,
      reason: { fn: "nf_conntrack_tcp_packet", text, cell: cellRefOf(kernel, dir, index, cellOld) },
      ...namesOf(kernel, dir, cellOld, index, oldState, newState),
    };
  }
  if (!handled && newState === TCP_CONNTRACK_TIME_WAIT && p.challengeAckInLastAck) {
    if (
      oldState === TCP_CONNTRACK_LAST_ACK &&
      index === TCP_ACK_SET &&
      tcp.last_dir !== dir &&
      tcp.last_index === TCP_SYN_SET &&
      tcp.last_flags & IP_CT_EXP_CHALLENGE_ACK
    ) {
      // Detected RFC 5961 challenge ACK: don't change state.
      tcp.last_flags &= ~IP_CT_EXP_CHALLENGE_ACK;
      return {
        verdict: NF_ACCEPT,
        ignored: true,
        reason: { fn: "nf_conntrack_tcp_packet", text: "challenge-ack ignored" },
        ...namesOf(kernel, dir, cellOld, index, oldState, oldState),
      };
    }
  }
  if (!handled && newState === TCP_CONNTRACK_SYN_SENT2 && p.simultaneousOpenFlag) {
    // The table is not smart enough to handle simultaneous open.
    tcp.last_flags |= IP_CT_TCP_SIMULTANEOUS_OPEN;
  }
  if (!handled && newState === TCP_CONNTRACK_SYN_RECV && p.simultaneousOpenFlag) {
    if (dir === IP_CT_DIR_REPLY && index === TCP_ACK_SET && tcp.last_flags & IP_CT_TCP_SIMULTANEOUS_OPEN)
      newState = TCP_CONNTRACK_ESTABLISHED;
  }
  if (!handled && newState === TCP_CONNTRACK_CLOSE && index === TCP_RST_SET) {
    for (const d of rstChecks(ct, tcp, th, dir, ctx, p)) {
      if (d === "invalid") {
        return {
          verdict: -NF_ACCEPT,
          reason: { fn: "nf_conntrack_tcp_packet", text: p.logTexts === "3" ? "invalid RST" : "invalid rst" },
          ...namesOf(kernel, dir, cellOld, index, oldState, newState),
        };
      }
      if (d === "keep_old_state") newState = oldState;
      if (d === "in_window") skipWindow = true;
    }
  }

  if (!skipWindow) {
    const res = tcpInWindow(tcp, dir, index, th, pkt.payloadLength, ctx.sysctl, p);
    if (res.action === "IGNORE") {
      return {
        verdict: NF_ACCEPT,
        ignored: true,
        reason: { fn: "tcp_in_window", text: res.text ?? "" },
        ...namesOf(kernel, dir, cellOld, index, oldState, newState),
      };
    }
    if (res.action === "INVALID") {
      if (p.windowActions) nfTcpHandleInvalid(ct, tcp, dir, index, ctx);
      return {
        verdict: -NF_ACCEPT,
        reason: { fn: "tcp_in_window", text: res.text ?? "" },
        ...namesOf(kernel, dir, cellOld, index, oldState, newState),
      };
    }
  }

  // in_window: from now on we have got in-window packets.
  tcp.last_index = index;
  tcp.last_dir = dir;
  tcp.state = newState;
  if (oldState !== newState && newState === TCP_CONNTRACK_FIN_WAIT)
    tcp.setFlags(dir, tcp.flagsOf(dir) | IP_CT_TCP_FLAG_CLOSE_INIT);

  const sysctl = ctx.sysctl;
  const unack = (tcp.flagsOf(0) | tcp.flagsOf(1)) & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
  const stateTimeout = tcpTimeout(sysctl, newState);
  let timeout: number;
  if (
    tcp.retrans >= sysctl.nf_conntrack_tcp_max_retrans &&
    stateTimeout > tcpTimeout(sysctl, TCP_CONNTRACK_RETRANS)
  )
    timeout = tcpTimeout(sysctl, TCP_CONNTRACK_RETRANS);
  else if (p.rstCloseAndZeroWindowTimeout && index === TCP_RST_SET)
    timeout = tcpTimeout(sysctl, TCP_CONNTRACK_CLOSE);
  else if (unack && stateTimeout > tcpTimeout(sysctl, TCP_CONNTRACK_UNACK))
    timeout = tcpTimeout(sysctl, TCP_CONNTRACK_UNACK);
  else if (
    p.rstCloseAndZeroWindowTimeout &&
    tcp.last_win === 0 &&
    stateTimeout > tcpTimeout(sysctl, TCP_CONNTRACK_RETRANS)
  )
    timeout = tcpTimeout(sysctl, TCP_CONNTRACK_RETRANS);
  else timeout = stateTimeout;

  // Events as bits: 1 = IPCT_PROTOINFO, 2 = IPCT_ASSURED.
  let ev = newState !== oldState ? 1 : 0;

  if (!(ct.status & IPS_SEEN_REPLY)) {
    // If only reply is a RST, we can consider ourselves not to have an established connection: delete it now.
    if (th.flags & TCP_RST) {
      ct.kill();
      return { ...accepted(oldState, newState, index, ev), killed: true };
    }
    // Do not renew the timeout on a SYN retransmit (port reuse could keep the entry alive forever).
    if (p.synRetransNoRenew && index === TCP_SYN_SET && oldState === TCP_CONNTRACK_SYN_SENT)
      return accepted(oldState, newState, index, ev);
    // ESTABLISHED without SEEN_REPLY (mid-connection pickup): avoid the large ESTABLISHED timeout.
    if (
      p.unackCapOnPickup &&
      newState === TCP_CONNTRACK_ESTABLISHED &&
      timeout > tcpTimeout(sysctl, TCP_CONNTRACK_UNACK)
    )
      timeout = tcpTimeout(sysctl, TCP_CONNTRACK_UNACK);
  } else if (
    !(ct.status & IPS_ASSURED) &&
    (oldState === TCP_CONNTRACK_SYN_RECV || oldState === TCP_CONNTRACK_ESTABLISHED) &&
    newState === TCP_CONNTRACK_ESTABLISHED
  ) {
    // Set ASSURED on a valid ACK in ESTABLISHED after SYN_RECV, or a valid answer for a picked-up connection.
    ct.status |= IPS_ASSURED;
    ev |= 2;
  }
  // nf_ct_refresh_acct(): a FIXED_TIMEOUT entry keeps its timer.
  if (!(ct.status & IPS_FIXED_TIMEOUT)) ct.timeout = ctx.now + timeout;
  return accepted(oldState, newState, index, ev);
}

/** struct nf_conntrack_l4proto nf_conntrack_l4proto_tcp, as the core sees it. */
export const tcpTracker: L4Tracker = {
  setClosing: tcpSetClosing,
  l4proto: IPPROTO_TCP,
  name: "tcp",
  pktToTuple(pkt: Packet) {
    const th = tcpHeader(pkt);
    return th ? { srcU: th.srcPort, dstU: th.dstPort } : undefined;
  },
  invertTuple(t: Tuple) {
    return { srcU: t.dstU, dstU: t.srcU };
  },
  error: tcpError,
  packet: nfConntrackTcpPacket,
  showState,
  canEarlyDrop,
};
