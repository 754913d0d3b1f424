/**
 * Shared conntrack vocabulary: tuples, ctinfo, status bits, the per-connection record and the contract between
 * the core and the layer-4 trackers.
 *
 * Mirrors: include/net/netfilter/nf_conntrack_tuple.h (struct nf_conntrack_tuple),
 * include/uapi/linux/netfilter/nf_conntrack_common.h (enum ip_conntrack_info, enum ip_conntrack_status),
 * include/net/netfilter/nf_conntrack.h (struct nf_conn), include/net/netfilter/nf_conntrack_l4proto.h
 * (struct nf_conntrack_l4proto). Kernel 6.17/6.18 values.
 * Leaves out: IPv6, expectations/helpers other than what RELATED needs, labels, secmark, acct and timestamps
 * extensions (counters are kept only as packets/bytes for `-o extended` output).
 */

export const IP_CT_DIR_ORIGINAL = 0;
export const IP_CT_DIR_REPLY = 1;
export type CtDir = typeof IP_CT_DIR_ORIGINAL | typeof IP_CT_DIR_REPLY;

/** enum ip_conntrack_info (nf_conntrack_common.h). */
export const IP_CT_ESTABLISHED = 0;
export const IP_CT_RELATED = 1;
export const IP_CT_NEW = 2;
export const IP_CT_IS_REPLY = 3;
export const IP_CT_ESTABLISHED_REPLY = 3;
export const IP_CT_RELATED_REPLY = 4;
export const IP_CT_UNTRACKED = 7;
export type CtInfo = 0 | 1 | 2 | 3 | 4 | 7;

export const CTINFO_NAMES: Record<CtInfo, string> = {
  0: "IP_CT_ESTABLISHED",
  1: "IP_CT_RELATED",
  2: "IP_CT_NEW",
  3: "IP_CT_ESTABLISHED_REPLY",
  4: "IP_CT_RELATED_REPLY",
  7: "IP_CT_UNTRACKED",
};

/** enum ip_conntrack_status bits. */
export const IPS_EXPECTED = 1 << 0;
export const IPS_SEEN_REPLY = 1 << 1;
export const IPS_ASSURED = 1 << 2;
export const IPS_CONFIRMED = 1 << 3;
export const IPS_SRC_NAT = 1 << 4;
export const IPS_DST_NAT = 1 << 5;
export const IPS_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT;
export const IPS_SEQ_ADJUST = 1 << 6;
export const IPS_SRC_NAT_DONE = 1 << 7;
export const IPS_DST_NAT_DONE = 1 << 8;
export const IPS_DYING = 1 << 9;
export const IPS_FIXED_TIMEOUT = 1 << 10;
export const IPS_TEMPLATE = 1 << 11;
export const IPS_UNTRACKED = 1 << 12;
/** In-kernel reuse of bit 12 for UDP clash-resolved entries. */
export const IPS_NAT_CLASH = IPS_UNTRACKED;
export const IPS_HELPER = 1 << 13;
export const IPS_OFFLOAD = 1 << 14;

/** Netfilter hooks (enum nf_inet_hooks). */
export const NF_INET_PRE_ROUTING = 0;
export const NF_INET_LOCAL_IN = 1;
export const NF_INET_FORWARD = 2;
export const NF_INET_LOCAL_OUT = 3;
export const NF_INET_POST_ROUTING = 4;
export type NfHook = 0 | 1 | 2 | 3 | 4;

/** Verdicts (include/uapi/linux/netfilter.h). */
export const NF_DROP = 0;
export const NF_ACCEPT = 1;
export const NF_REPEAT = 4;

/**
 * One direction's tuple. For TCP/UDP `src.u`/`dst.u` are ports; for ICMP `src.u` is the echo id and `dst.u`
 * packs type (high byte) and code (low byte) as the kernel's `dst.u.icmp.{type,code}`; for generic protocols both
 * are 0.
 */
export interface Tuple {
  readonly src: number;
  readonly dst: number;
  readonly protonum: number;
  readonly srcU: number;
  readonly dstU: number;
}

/** A reason attached to an INVALID or IGNORE outcome: the kernel's own text (nf_ct_l4proto_log_invalid etc.). */
export interface CtReason {
  /** Kernel function that decided ("tcp_error", "tcp_new", "tcp_in_window", "nf_conntrack_tcp_packet"). */
  readonly fn: string;
  /** Kernel's message text, e.g. "invalid tcp flag combination", "SEQ is over the upper bound ...". */
  readonly text: string;
  /** The tcp_conntracks cell that decided, when one did. */
  readonly cell?: {
    readonly dir: CtDir;
    readonly index: string;
    readonly oldState: string;
    readonly result: string;
  };
}

/**
 * Result of an l4 tracker's `packet` callback, in the kernel's encoding: a positive verdict (NF_ACCEPT), or a
 * negated one (-NF_ACCEPT = INVALID: detach the conntrack and let the packet continue; -NF_REPEAT = the tracker
 * killed the entry, look up again), or NF_DROP.
 */
export interface L4Result {
  readonly verdict: number;
  readonly reason?: CtReason;
  /** True when the tracker returned early with "ignore" (state and timeout untouched). */
  readonly ignored?: boolean;
}

/** Time as passed in by the caller: nanoseconds would overflow doubles; seconds with fractions suffice. */
export type Seconds = number;

/** The sysctls under net.netfilter.* that conntrack reads, by kernel name without the prefix. */
export interface ConntrackSysctls {
  nf_conntrack_tcp_loose: number;
  nf_conntrack_tcp_be_liberal: number;
  nf_conntrack_tcp_ignore_invalid_rst: number;
  nf_conntrack_tcp_max_retrans: number;
  nf_conntrack_checksum: number;
  nf_conntrack_max: number;
  nf_conntrack_tcp_timeout_syn_sent: number;
  nf_conntrack_tcp_timeout_syn_recv: number;
  nf_conntrack_tcp_timeout_established: number;
  nf_conntrack_tcp_timeout_fin_wait: number;
  nf_conntrack_tcp_timeout_close_wait: number;
  nf_conntrack_tcp_timeout_last_ack: number;
  nf_conntrack_tcp_timeout_time_wait: number;
  nf_conntrack_tcp_timeout_close: number;
  nf_conntrack_tcp_timeout_max_retrans: number;
  nf_conntrack_tcp_timeout_unacknowledged: number;
  nf_conntrack_udp_timeout: number;
  nf_conntrack_udp_timeout_stream: number;
  nf_conntrack_icmp_timeout: number;
  nf_conntrack_generic_timeout: number;
}

/** Per-call context a tracker gets: which hook, the sysctls, the kernel profile and the packet's time. */
export interface L4Context {
  readonly hook: NfHook;
  readonly sysctl: Readonly<ConntrackSysctls>;
  /** Kernel profile id, e.g. "6.18", "5.10", "3.10" (see tables/). */
  readonly kernel: string;
  readonly now: Seconds;
}

/**
 * The part of struct nf_conn a layer-4 tracker may read and write. The core owns the rest (hash membership,
 * NAT, mark, zone, counters).
 */
export interface NfConnL4View {
  /** Tuples: [ORIGINAL, REPLY]. */
  readonly tuplehash: readonly [Tuple, Tuple];
  status: number;
  /** Absolute expiry time (seconds, same clock as L4Context.now); set by the tracker via its timeout choice. */
  timeout: Seconds;
  /** Protocol private state (struct ip_ct_tcp for TCP, stream_ts for UDP, ...); owned by the tracker. */
  proto: unknown;
  /** True once confirmed (IPS_CONFIRMED); trackers run their `new` logic while false. */
  readonly confirmed: boolean;
  /** Ask the core to kill this entry (nf_ct_kill); returns whether it was alive to kill. */
  kill(): boolean;
}

/** struct nf_conntrack_l4proto, reduced to what the IPv4 datapath calls. */
export interface L4Tracker {
  readonly l4proto: number;
  readonly name: string;
  /** Tuple building from the packet: ports/ids; undefined when the header cannot be read. */
  pktToTuple(pkt: import("../wire/packet").Packet): { srcU: number; dstU: number } | undefined;
  /** Inverts the per-protocol part of a tuple; undefined when it cannot be inverted (ICMP non-query types). */
  invertTuple(t: Tuple): { srcU: number; dstU: number } | undefined;
  /** Header and checksum checks before lookup (tcp_error, udp_error, icmp_error); undefined means fine. */
  error?(pkt: import("../wire/packet").Packet, ctx: L4Context): CtReason | undefined;
  /** The per-packet state machine (nf_conntrack_tcp_packet etc.). Sets ct.timeout on success. */
  packet(
    ct: NfConnL4View,
    pkt: import("../wire/packet").Packet,
    dir: CtDir,
    ctinfo: CtInfo,
    ctx: L4Context,
  ): L4Result;
  /** Text for the protocol-specific part of a `conntrack -L` line ("SYN_SENT " for TCP, "" for UDP). */
  showState?(ct: NfConnL4View): string;
  /**
   * nf_conntrack_l4proto.set_closing (nf_ct_set_closing, called by nf_send_reset when REJECT answers with a
   * RST): move a confirmed entry to its closing state. Returns true when the state changed.
   */
  setClosing?(ct: NfConnL4View, ctx: L4Context): boolean;
  /** Whether this entry may be evicted by early_drop beyond the non-ASSURED rule (tcp_can_early_drop). */
  canEarlyDrop?(ct: NfConnL4View): boolean;
}
