/**
 * TCP window tracking: struct ip_ct_tcp, option parsing and tcp_in_window().
 *
 * Mirrors net/netfilter/nf_conntrack_proto_tcp.c: segment_seq_plus_len, MAXACKWINDOW, tcp_options, tcp_sack,
 * tcp_init_sender, nf_tcp_log_invalid and tcp_in_window, and include/net/netfilter/nf_conntrack_tcp.h
 * (struct ip_ct_tcp, struct ip_ct_tcp_state) plus the IP_CT_TCP_FLAG_* bits of uapi nf_conntrack_tcp.h.
 * Kernel 6.17.0-rc3 (Kingxukai/linux @ 9b44fff6) for the default profile; the per-profile switches in
 * `tcpProfile()` follow 6.1.y (atho13/linux-6.1.y @ b3970422), 5.10.13 (Rtoax/linux-5.10.13 @ 411c0a3d),
 * CAF 3.10 (arter97/caf_msm-3.10 @ fda5cd4b) and the <=3.6 snapshot (torvalds/linux @ 011e3c63).
 * Leaves out on purpose: NAT sequence adjustment (nf_ct_seq_offset is taken as 0: no seqadj/helpers), IPv6,
 * the vendor-only `tcp_no_window_check` knobs of the 6.1.y and CAF 3.10 trees, and log rate limiting. 4.19 is
 * modelled as 5.10 (the vendor 4.19 tree was not re-read for window tracking).
 */
import type { TcpHeader } from "../wire/packet";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../wire/packet";
import type { ConntrackSysctls, CtDir } from "./types";
import { IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY } from "./types";
import { kernelAtLeast } from "./profile";
import { TCP_ACK_SET, TCP_CONNTRACK_SYN_RECV, TCP_CONNTRACK_SYN_SENT } from "../../tables/tcp_conntracks";

/** IP_CT_TCP_FLAG_* (uapi nf_conntrack_tcp.h). */
export const IP_CT_TCP_FLAG_WINDOW_SCALE = 0x01;
export const IP_CT_TCP_FLAG_SACK_PERM = 0x02;
export const IP_CT_TCP_FLAG_CLOSE_INIT = 0x04;
export const IP_CT_TCP_FLAG_BE_LIBERAL = 0x08;
export const IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10;
export const IP_CT_TCP_FLAG_MAXACK_SET = 0x20;
export const IP_CT_EXP_CHALLENGE_ACK = 0x40;
export const IP_CT_TCP_SIMULTANEOUS_OPEN = 0x80;

/** TCP_MAX_WSCALE (include/net/tcp.h). */
export const TCP_MAX_WSCALE = 14;
/** MAXACKWINCONST. */
export const MAXACKWINCONST = 66000;

/** struct ip_ct_tcp_state: one direction's window data. All sequence values are u32. */
export interface IpCtTcpState {
  td_end: number;
  td_maxend: number;
  td_maxwin: number;
  td_maxack: number;
  td_scale: number;
  flags: number;
}

export function newIpCtTcpState(): IpCtTcpState {
  return { td_end: 0, td_maxend: 0, td_maxwin: 0, td_maxack: 0, td_scale: 0, flags: 0 };
}

/* Bit layout of IpCtTcp.m (the small fields of struct ip_ct_tcp in one small integer). */
const M_DIR = 0x1; // last_dir: bit 0
const M_INDEX_SHIFT = 1; // last_index: bits 1-3
const M_RETRANS_SHIFT = 4; // retrans (u8): bits 4-11
const M_WSCALE_SHIFT = 12; // last_wscale (u8, <= 14 in practice; 8 bits kept): bits 12-19
const M_FLAGS_SHIFT = 20; // last_flags (u8): bits 20-27

/** The field of `m` at `shift` (width given by `mask`), and `m` with that field set to `v`. */
const getBits = (m: number, shift: number, mask: number): number => (m >>> shift) & mask;
const setBits = (m: number, shift: number, mask: number, v: number): number =>
  (m & ~(mask << shift)) | ((v & mask) << shift);

/**
 * struct ip_ct_tcp: the TCP private part of a conntrack entry (`ct.proto`), memset to 0 by `new`.
 *
 * Stored flat, one object per entry with small-integer fields only: sequence numbers as int32 (`u32 | 0`, so
 * none becomes a heap number), each direction's flags and td_scale packed as `flags | td_scale << 8`, and
 * last_dir, last_index, retrans, last_wscale and last_flags packed in `m`. The kernel's field names are
 * accessors with the kernel's (u32) values; `seen[dir]` gives a view of one direction (a fresh object per
 * read, for readers outside the per-packet path). About 150 bytes per entry instead of about 450 for nested
 * objects.
 */
export class IpCtTcp {
  /** seen[0]: td_end, td_maxend, td_maxwin, td_maxack (int32). */
  e0 = 0;
  me0 = 0;
  mw0 = 0;
  ma0 = 0;
  /** seen[1]: the same. */
  e1 = 0;
  me1 = 0;
  mw1 = 0;
  ma1 = 0;
  /** seen[0] and seen[1]: flags | td_scale << 8. */
  f0 = 0;
  f1 = 0;
  /** TCP_CONNTRACK_* (0..9). */
  state = 0;
  /** last_dir | last_index << 1 | retrans << 4 | last_wscale << 12 | last_flags << 20. */
  m = 0;
  /** last_seq, last_ack, last_end (int32). */
  ls = 0;
  la = 0;
  le = 0;
  /** u16. */
  last_win = 0;

  get last_dir(): CtDir {
    return (this.m & M_DIR) as CtDir;
  }
  set last_dir(v: CtDir) {
    this.m = (this.m & ~M_DIR) | (v & 1);
  }
  /** enum tcp_bit_set of the last packet that set it. */
  get last_index(): number {
    return getBits(this.m, M_INDEX_SHIFT, 0x7);
  }
  set last_index(v: number) {
    this.m = setBits(this.m, M_INDEX_SHIFT, 0x7, v);
  }
  get retrans(): number {
    return getBits(this.m, M_RETRANS_SHIFT, 0xff);
  }
  set retrans(v: number) {
    this.m = setBits(this.m, M_RETRANS_SHIFT, 0xff, v);
  }
  get last_wscale(): number {
    return getBits(this.m, M_WSCALE_SHIFT, 0xff);
  }
  set last_wscale(v: number) {
    this.m = setBits(this.m, M_WSCALE_SHIFT, 0xff, v);
  }
  get last_flags(): number {
    return getBits(this.m, M_FLAGS_SHIFT, 0xff);
  }
  set last_flags(v: number) {
    this.m = setBits(this.m, M_FLAGS_SHIFT, 0xff, v);
  }
  get last_seq(): number {
    return this.ls >>> 0;
  }
  set last_seq(v: number) {
    this.ls = v | 0;
  }
  get last_ack(): number {
    return this.la >>> 0;
  }
  set last_ack(v: number) {
    this.la = v | 0;
  }
  get last_end(): number {
    return this.le >>> 0;
  }
  set last_end(v: number) {
    this.le = v | 0;
  }

  /** One direction's flags (IP_CT_TCP_FLAG_*). */
  flagsOf(dir: number): number {
    return (dir === 0 ? this.f0 : this.f1) & 0xff;
  }
  setFlags(dir: number, flags: number): void {
    if (dir === 0) this.f0 = (this.f0 & ~0xff) | (flags & 0xff);
    else this.f1 = (this.f1 & ~0xff) | (flags & 0xff);
  }
  scaleOf(dir: number): number {
    return ((dir === 0 ? this.f0 : this.f1) >>> 8) & 0xff;
  }
  setScale(dir: number, scale: number): void {
    if (dir === 0) this.f0 = (this.f0 & 0xff) | ((scale & 0xff) << 8);
    else this.f1 = (this.f1 & 0xff) | ((scale & 0xff) << 8);
  }

  /** [seen[0], seen[1]] as views onto this entry (reads and writes go through to the flat fields). */
  get seen(): [IpCtTcpState, IpCtTcpState] {
    return [tcpStateView(this, 0), tcpStateView(this, 1)];
  }
}

/** Where a view reads from: hidden (non-enumerable) on each view. */
interface ViewTarget {
  readonly tcp: IpCtTcp;
  readonly dir: CtDir;
}

/** One u32 field of a direction: getter/setter pair over the entry's int32 fields. */
function seqAccessor(f0: "e0" | "me0" | "mw0" | "ma0", f1: "e1" | "me1" | "mw1" | "ma1"): PropertyDescriptor {
  return {
    enumerable: true,
    get(this: { _t: ViewTarget }): number {
      const { tcp, dir } = this._t;
      return (dir === 0 ? tcp[f0] : tcp[f1]) >>> 0;
    },
    set(this: { _t: ViewTarget }, v: number) {
      const { tcp, dir } = this._t;
      if (dir === 0) tcp[f0] = v | 0;
      else tcp[f1] = v | 0;
    },
  };
}

/** Own enumerable accessors, so a view compares and prints like the plain struct (toEqual, JSON). */
const VIEW_PROPERTIES: PropertyDescriptorMap = {
  td_end: seqAccessor("e0", "e1"),
  td_maxend: seqAccessor("me0", "me1"),
  td_maxwin: seqAccessor("mw0", "mw1"),
  td_maxack: seqAccessor("ma0", "ma1"),
  td_scale: {
    enumerable: true,
    get(this: { _t: ViewTarget }): number {
      return this._t.tcp.scaleOf(this._t.dir);
    },
    set(this: { _t: ViewTarget }, v: number) {
      this._t.tcp.setScale(this._t.dir, v);
    },
  },
  flags: {
    enumerable: true,
    get(this: { _t: ViewTarget }): number {
      return this._t.tcp.flagsOf(this._t.dir);
    },
    set(this: { _t: ViewTarget }, v: number) {
      this._t.tcp.setFlags(this._t.dir, v);
    },
  },
};

/**
 * A view of one direction of an IpCtTcp with the kernel's field names and u32 values: reads and writes go
 * through to the entry. For readers outside the per-packet path (NAT, tests, traces).
 */
function tcpStateView(tcp: IpCtTcp, dir: CtDir): IpCtTcpState {
  const v = Object.defineProperty({}, "_t", { value: { tcp, dir } satisfies ViewTarget, enumerable: false });
  return Object.defineProperties(v, VIEW_PROPERTIES) as IpCtTcpState;
}

/** memset(&ct->proto.tcp, 0, ...). */
export function newIpCtTcp(): IpCtTcp {
  return new IpCtTcp();
}

/** Copies one direction of `tcp` into `s` (u32 values). */
export function loadTcpState(tcp: IpCtTcp, dir: number, s: IpCtTcpState): void {
  if (dir === 0) {
    s.td_end = tcp.e0 >>> 0;
    s.td_maxend = tcp.me0 >>> 0;
    s.td_maxwin = tcp.mw0 >>> 0;
    s.td_maxack = tcp.ma0 >>> 0;
    s.td_scale = (tcp.f0 >>> 8) & 0xff;
    s.flags = tcp.f0 & 0xff;
  } else {
    s.td_end = tcp.e1 >>> 0;
    s.td_maxend = tcp.me1 >>> 0;
    s.td_maxwin = tcp.mw1 >>> 0;
    s.td_maxack = tcp.ma1 >>> 0;
    s.td_scale = (tcp.f1 >>> 8) & 0xff;
    s.flags = tcp.f1 & 0xff;
  }
}

/** Writes `s` back as direction `dir` of `tcp`. */
export function storeTcpState(tcp: IpCtTcp, dir: number, s: IpCtTcpState): void {
  const f = (s.flags & 0xff) | ((s.td_scale & 0xff) << 8);
  if (dir === 0) {
    tcp.e0 = s.td_end | 0;
    tcp.me0 = s.td_maxend | 0;
    tcp.mw0 = s.td_maxwin | 0;
    tcp.ma0 = s.td_maxack | 0;
    tcp.f0 = f;
  } else {
    tcp.e1 = s.td_end | 0;
    tcp.me1 = s.td_maxend | 0;
    tcp.mw1 = s.td_maxwin | 0;
    tcp.ma1 = s.td_maxack | 0;
    tcp.f1 = f;
  }
}

/**
 * Behaviour switches per kernel profile. Each is one difference found in the sources, keyed on the oldest
 * profile that has it.
 */
export interface TcpProfile {
  /** tcp_in_window returns IGNORE/INVALID/ACCEPT (6.x) rather than a bool; new log texts; nf_tcp_handle_invalid. */
  readonly windowActions: boolean;
  /** tcp_init_sender zeroes the scales only for a REPLY SYN (6.x); <=5.10 for either direction. */
  readonly initSenderReplyOnly: boolean;
  /** Re-init on any SYN in SYN_SENT/SYN_RECV (6.x); <=5.10: (SYN_SENT, ORIGINAL) or (SYN_RECV, REPLY), any flags. */
  readonly reinitOnSyn: boolean;
  /** tcp_options() keeps BE_LIBERAL when it clears flags (6.x); older kernels clear all flags. */
  readonly optionsKeepLiberal: boolean;
  /** Mid-stream pickup: receiver td_end++ on a keep-alive reply (5.10 and later). */
  readonly keepaliveReplyFix: boolean;
  /** in_recv_win is true when the receiver window is unknown (5.10 and later). */
  readonly recvWinUnknownOk: boolean;
  /** Retransmission check compares the raw window (5.10+); 3.x compares and stores the scaled window. */
  readonly retransRawWindow: boolean;
  /** <=3.6: an empty segment is checked by its ACK only (seq = end = sender td_end). */
  readonly emptySegmentAckOnly: boolean;
  /** nf_conntrack_tcp_packet switches. */
  readonly ignoreInvalidRstSysctl: boolean;
  readonly rstSkipWhenClosing: boolean;
  readonly rstSeqZeroAndLastSynGuard: boolean;
  readonly rstExactSeq: boolean;
  readonly rstAnswersChallengeAck: boolean;
  readonly challengeAckInLastAck: boolean;
  readonly recordChallengeAckInSynSent: boolean;
  readonly simultaneousOpenFlag: boolean;
  readonly synRetransNoRenew: boolean;
  /** Timeout rules 2 (RST -> CLOSE) and 4 (zero window -> RETRANS). */
  readonly rstCloseAndZeroWindowTimeout: boolean;
  /** Picked-up ESTABLISHED without SEEN_REPLY capped at UNACK. */
  readonly unackCapOnPickup: boolean;
  /** Which family of log texts the profile prints. */
  readonly logTexts: "6" | "5" | "3";
}

function buildTcpProfile(kernel: string): TcpProfile {
  const v6 = kernelAtLeast(kernel, "6.1");
  const v4 = kernelAtLeast(kernel, "4.19");
  const v310 = kernelAtLeast(kernel, "3.10");
  return Object.freeze({
    windowActions: v6,
    initSenderReplyOnly: v6,
    reinitOnSyn: v6,
    optionsKeepLiberal: v6,
    keepaliveReplyFix: v4,
    recvWinUnknownOk: v4,
    retransRawWindow: v4,
    emptySegmentAckOnly: !v310,
    ignoreInvalidRstSysctl: v6,
    rstSkipWhenClosing: v6,
    rstSeqZeroAndLastSynGuard: v6,
    rstExactSeq: v4,
    rstAnswersChallengeAck: v6,
    challengeAckInLastAck: v4,
    recordChallengeAckInSynSent: v6,
    simultaneousOpenFlag: v4,
    synRetransNoRenew: v6,
    rstCloseAndZeroWindowTimeout: v4,
    unackCapOnPickup: v310,
    logTexts: v6 ? "6" : v4 ? "5" : "3",
  });
}

/** Profiles already resolved, by id; plus the last one asked for (one string compare per packet). */
const PROFILES = new Map<string, TcpProfile>();
let lastKernel: string | undefined;
let lastProfile: TcpProfile | undefined;

/** The switches of a kernel profile: built once per id, frozen and shared. */
export function tcpProfile(kernel: string): TcpProfile {
  if (kernel === lastKernel) return lastProfile!;
  let p = PROFILES.get(kernel);
  if (p === undefined) PROFILES.set(kernel, (p = buildTcpProfile(kernel)));
  lastKernel = kernel;
  lastProfile = p;
  return p;
}

/* u32 sequence arithmetic (include/net/tcp.h before()/after()). */
export function u32(x: number): number {
  return x >>> 0;
}
export function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function after(a: number, b: number): boolean {
  return before(b, a);
}

/** segment_seq_plus_len(): seq + payload + SYN + FIN. */
export function segmentSeqPlusLen(th: TcpHeader, payloadLength: number): number {
  return u32(th.seq + payloadLength + (th.flags & TCP_SYN ? 1 : 0) + (th.flags & TCP_FIN ? 1 : 0));
}

/** MAXACKWINDOW(sender). */
export function maxAckWindow(sender: IpCtTcpState): number {
  return sender.td_maxwin > MAXACKWINCONST ? sender.td_maxwin : MAXACKWINCONST;
}

/** tcp_options(): window scale and SACK-permitted into `state`; untouched when the header has no options. */
export function tcpOptions(th: TcpHeader, state: IpCtTcpState, keepLiberal: boolean): void {
  if (th.dataOffset - 20 <= 0) return;
  state.td_scale = 0;
  state.flags = keepLiberal ? state.flags & IP_CT_TCP_FLAG_BE_LIBERAL : 0;
  for (const opt of th.options) {
    if (opt.kind === "eol") return;
    if (opt.kind === "sackPermitted") state.flags |= IP_CT_TCP_FLAG_SACK_PERM;
    else if (opt.kind === "wscale") {
      state.td_scale = Math.min(opt.shift, TCP_MAX_WSCALE);
      state.flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
    }
  }
}

/** tcp_sack(): the highest right edge of the first SACK option, or `sack` unchanged. */
export function tcpSack(th: TcpHeader, sack: number): number {
  for (const opt of th.options) {
    if (opt.kind === "eol") return sack;
    if (opt.kind === "sack" && opt.blocks.length > 0) {
      let s = sack;
      for (const [, right] of opt.blocks) if (after(right >>> 0, s)) s = right >>> 0;
      return s;
    }
  }
  return sack;
}

function tcpInitSender(
  sender: IpCtTcpState,
  receiver: IpCtTcpState,
  th: TcpHeader,
  end: number,
  win: number,
  dir: CtDir,
  p: TcpProfile,
): void {
  sender.td_end = sender.td_maxend = end;
  sender.td_maxwin = win === 0 ? 1 : win;
  tcpOptions(th, sender, p.optionsKeepLiberal);
  const both = sender.flags & IP_CT_TCP_FLAG_WINDOW_SCALE && receiver.flags & IP_CT_TCP_FLAG_WINDOW_SCALE;
  if ((!p.initSenderReplyOnly || dir === IP_CT_DIR_REPLY) && !both) {
    sender.td_scale = 0;
    receiver.td_scale = 0;
  }
}

/** Outcome of tcp_in_window (enum nf_ct_tcp_action); `text` is the kernel's log line when it logged one. */
export interface WindowResult {
  readonly action: "ACCEPT" | "INVALID" | "IGNORE";
  readonly text?: string;
  /** True when a check failed but BE_LIBERAL / nf_conntrack_tcp_be_liberal turned it into ACCEPT. */
  readonly liberal?: boolean;
}

/**
 * tcp_in_window(): validate the segment against both directions' windows and update them. `tcp.state` is the
 * entry's current (old) state. Mutates `tcp`.
 */
export function tcpInWindow(
  tcp: IpCtTcp,
  dir: CtDir,
  index: number,
  th: TcpHeader,
  payloadLength: number,
  sysctl: Readonly<ConntrackSysctls>,
  p: TcpProfile,
): WindowResult {
  // Both directions are copied into two scratch records (u32 values), checked and updated there as the kernel
  // does through its pointers, and written back: nothing is allocated per packet.
  const sender = SENDER;
  const receiver = RECEIVER;
  const other = dir === 0 ? 1 : 0;
  loadTcpState(tcp, dir, sender);
  loadTcpState(tcp, other, receiver);
  const res = tcpInWindowOn(tcp, sender, receiver, dir, index, th, payloadLength, sysctl, p);
  storeTcpState(tcp, dir, sender);
  storeTcpState(tcp, other, receiver);
  return res;
}

/**
 * 2 ** n for every td_scale value (0..255): the window scaling multiplies by it. `2 ** n` with a variable `n`
 * is a call into V8's pow routine on every packet; the table gives the same doubles.
 */
const POW2: readonly number[] = Array.from({ length: 256 }, (_, n) => 2 ** n);

const SENDER: IpCtTcpState = newIpCtTcpState();
const RECEIVER: IpCtTcpState = newIpCtTcpState();
const ACCEPT: WindowResult = Object.freeze({ action: "ACCEPT" });
const ACCEPT_LIBERAL: WindowResult = Object.freeze({ action: "ACCEPT", liberal: true });

/** A failed check: ACCEPT when liberal, else the action with the kernel's log text. */
function fail(liberal: boolean, action: "INVALID" | "IGNORE", text: string): WindowResult {
  return liberal ? ACCEPT_LIBERAL : { action, text };
}

function tcpInWindowOn(
  tcp: IpCtTcp,
  sender: IpCtTcpState,
  receiver: IpCtTcpState,
  dir: CtDir,
  index: number,
  th: TcpHeader,
  payloadLength: number,
  sysctl: Readonly<ConntrackSysctls>,
  p: TcpProfile,
): WindowResult {
  const syn = (th.flags & TCP_SYN) !== 0;
  const ackf = (th.flags & TCP_ACK) !== 0;
  const rst = (th.flags & TCP_RST) !== 0;

  let seq = u32(th.seq);
  let ack = u32(th.ack);
  let sack = ack;
  const winRaw = th.window & 0xffff;
  let win = winRaw;
  let end = segmentSeqPlusLen(th, payloadLength);

  if (receiver.flags & IP_CT_TCP_FLAG_SACK_PERM) sack = tcpSack(th, sack);
  // nf_ct_seq_offset(): no sequence adjustment is modelled, so the receiver offset is 0.

  if (sender.td_maxwin === 0) {
    // Initialize sender data.
    if (syn) {
      tcpInitSender(sender, receiver, th, end, win, dir, p);
      if (!ackf) return ACCEPT; // Simultaneous open
    } else {
      // We are in the middle of a connection, its history is lost for us.
      sender.td_end = end;
      const swin = u32(win * POW2[sender.td_scale]);
      sender.td_maxwin = swin === 0 ? 1 : swin;
      sender.td_maxend = u32(end + sender.td_maxwin);
      if (receiver.td_maxwin === 0) {
        receiver.td_end = receiver.td_maxend = sack;
      } else if (p.keepaliveReplyFix && sack === u32(receiver.td_end + 1)) {
        receiver.td_end = u32(receiver.td_end + 1); // Likely a reply to a keepalive.
      }
    }
  } else if (p.reinitOnSyn) {
    if (
      syn &&
      after(end, sender.td_end) &&
      (tcp.state === TCP_CONNTRACK_SYN_SENT || tcp.state === TCP_CONNTRACK_SYN_RECV)
    ) {
      tcpInitSender(sender, receiver, th, end, win, dir, p);
      if (dir === IP_CT_DIR_REPLY && !ackf) return ACCEPT;
    }
  } else if (
    ((tcp.state === TCP_CONNTRACK_SYN_SENT && dir === IP_CT_DIR_ORIGINAL) ||
      (tcp.state === TCP_CONNTRACK_SYN_RECV && dir === IP_CT_DIR_REPLY)) &&
    after(end, sender.td_end)
  ) {
    // RFC 793: "if a TCP is reinitialized ... then it need not wait at all".
    sender.td_end = sender.td_maxend = end;
    sender.td_maxwin = win === 0 ? 1 : win;
    tcpOptions(th, sender, p.optionsKeepLiberal);
  }

  if (!ackf) {
    ack = sack = receiver.td_end; // If there is no ACK, just pretend it was set and OK.
  } else if (rst && ack === 0) {
    ack = sack = receiver.td_end; // Broken TCP stacks, that set ACK in RST packets as well with zero ack value.
  }

  if (p.emptySegmentAckOnly) {
    if (seq === end && (!rst || (seq === 0 && tcp.state === TCP_CONNTRACK_SYN_SENT)))
      seq = end = sender.td_end;
  } else if (rst && seq === 0 && tcp.state === TCP_CONNTRACK_SYN_SENT) {
    seq = end = sender.td_end; // RST sent answering SYN.
  }

  const liberal =
    (sender.flags & IP_CT_TCP_FLAG_BE_LIBERAL) !== 0 || sysctl.nf_conntrack_tcp_be_liberal !== 0;

  const maw = maxAckWindow(sender);
  const seqOk = before(seq, u32(sender.td_maxend + 1));
  const ackOk = after(sack, u32(receiver.td_end - maw - 1));
  const ackNotOver = before(sack, u32(receiver.td_end + 1));

  if (p.windowActions) {
    if (!seqOk) {
      const overshot = u32(end - sender.td_maxend + 1);
      const inRecvWin = receiver.td_maxwin !== 0 && after(end, u32(sender.td_end - receiver.td_maxwin - 1));
      if (inRecvWin && ackOk && overshot <= receiver.td_maxwin && ackNotOver) {
        // Work around TCPs that send more bytes than allowed by the receive window.
        sender.td_end = end;
        sender.flags |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
        return fail(liberal, "IGNORE", `${overshot} bytes more than expected`);
      }
      return fail(
        liberal,
        "INVALID",
        `SEQ is over upper bound ${u32(sender.td_maxend + 1)} (over the window of the receiver)`,
      );
    }
    if (!ackNotOver)
      return fail(
        liberal,
        "INVALID",
        `ACK is over upper bound ${u32(receiver.td_end + 1)} (ACKed data not seen yet)`,
      );
    const inRecvWin = receiver.td_maxwin === 0 || after(end, u32(sender.td_end - receiver.td_maxwin - 1));
    if (!inRecvWin)
      return fail(
        liberal,
        "IGNORE",
        `SEQ is under lower bound ${u32(sender.td_end - receiver.td_maxwin - 1)} (already ACKed data retransmitted)`,
      );
    if (!ackOk)
      return fail(
        liberal,
        "IGNORE",
        `ignored ACK under lower bound ${u32(receiver.td_end - maw - 1)} (possible overly delayed)`,
      );
  } else {
    const inRecvWin =
      (p.recvWinUnknownOk && receiver.td_maxwin === 0) ||
      after(end, u32(sender.td_end - receiver.td_maxwin - 1));
    if (!(seqOk && inRecvWin && ackNotOver && ackOk)) {
      const text = !seqOk
        ? "SEQ is over the upper bound (over the window of the receiver)"
        : !inRecvWin
          ? "SEQ is under the lower bound (already ACKed data retransmitted)"
          : !ackNotOver
            ? "ACK is over the upper bound (ACKed data not seen yet)"
            : "ACK is under the lower bound (possible overly delayed ACK)";
      return fail(liberal, "INVALID", text);
    }
  }

  // Take into account window scaling (RFC 1323).
  if (!syn) win = u32(win * POW2[sender.td_scale]);

  // Update sender data.
  const swin = u32(win + u32(sack - ack));
  if (sender.td_maxwin < swin) sender.td_maxwin = swin;
  if (after(end, sender.td_end)) {
    sender.td_end = end;
    sender.flags |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
  }
  if (ackf) {
    if (!(sender.flags & IP_CT_TCP_FLAG_MAXACK_SET)) {
      sender.td_maxack = ack;
      sender.flags |= IP_CT_TCP_FLAG_MAXACK_SET;
    } else if (after(ack, sender.td_maxack)) {
      sender.td_maxack = ack;
    }
  }

  // Update receiver data.
  if (receiver.td_maxwin !== 0 && after(end, sender.td_maxend))
    receiver.td_maxwin = u32(receiver.td_maxwin + u32(end - sender.td_maxend));
  if (after(u32(sack + win), u32(receiver.td_maxend - 1))) {
    receiver.td_maxend = u32(sack + win);
    if (win === 0) receiver.td_maxend = u32(receiver.td_maxend + 1);
  }
  if (ack === receiver.td_end) receiver.flags &= ~IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;

  // Check retransmissions.
  if (index === TCP_ACK_SET) {
    const w = p.retransRawWindow ? winRaw : win;
    if (
      tcp.last_dir === dir &&
      tcp.last_seq === seq &&
      tcp.last_ack === ack &&
      tcp.last_end === end &&
      tcp.last_win === w
    ) {
      tcp.retrans = (tcp.retrans + 1) & 0xff; // u8 retrans
    } else {
      tcp.last_dir = dir;
      tcp.last_seq = seq;
      tcp.last_ack = ack;
      tcp.last_end = end;
      tcp.last_win = w & 0xffff; // u16 last_win (3.x stores the scaled window, truncated)
      tcp.retrans = 0;
    }
  }
  return ACCEPT;
}
