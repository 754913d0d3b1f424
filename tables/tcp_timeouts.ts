/**
 * `tcp_timeouts[TCP_CONNTRACK_TIMEOUT_MAX]` with the sysctl that overrides each slot.
 *
 * Mirrors: net/netfilter/nf_conntrack_proto_tcp.c tcp_timeouts[] and nf_conntrack_tcp_init_net(); sysctl names
 * from net/netfilter/nf_conntrack_standalone.c (6.17) and the tcp_sysctl_table of CAF 3.10 (same names).
 * Values are identical in 6.17.0-rc3 (Kingxukai/linux @ 9b44fff6), 5.10.13 (Rtoax/linux-5.10.13 @ 411c0a3d)
 * and CAF 3.10 (arter97/caf_msm-3.10 @ fda5cd4b). Units: seconds (the kernel stores jiffies).
 * SYN_SENT2 has no sysctl of its own in these kernels (pre-2.6.x compat had ip_conntrack_tcp_timeout_syn_sent2).
 */

export interface TcpTimeoutSlot {
  /** Index into the kernel array (TCP_CONNTRACK_*). */
  readonly slot: number;
  readonly name: string;
  readonly seconds: number;
  /** net.netfilter.<sysctl>, when one exists. */
  readonly sysctl?: string;
}

export const tcp_timeouts: readonly TcpTimeoutSlot[] = [
  // timeouts[0] is unused by the state machine; nf_conntrack_tcp_init_net() makes it equal to SYN_SENT.
  { slot: 0, name: "NONE", seconds: 120 },
  { slot: 1, name: "SYN_SENT", seconds: 120, sysctl: "nf_conntrack_tcp_timeout_syn_sent" },
  { slot: 2, name: "SYN_RECV", seconds: 60, sysctl: "nf_conntrack_tcp_timeout_syn_recv" },
  { slot: 3, name: "ESTABLISHED", seconds: 432000, sysctl: "nf_conntrack_tcp_timeout_established" },
  { slot: 4, name: "FIN_WAIT", seconds: 120, sysctl: "nf_conntrack_tcp_timeout_fin_wait" },
  { slot: 5, name: "CLOSE_WAIT", seconds: 60, sysctl: "nf_conntrack_tcp_timeout_close_wait" },
  { slot: 6, name: "LAST_ACK", seconds: 30, sysctl: "nf_conntrack_tcp_timeout_last_ack" },
  { slot: 7, name: "TIME_WAIT", seconds: 120, sysctl: "nf_conntrack_tcp_timeout_time_wait" },
  { slot: 8, name: "CLOSE", seconds: 10, sysctl: "nf_conntrack_tcp_timeout_close" },
  { slot: 9, name: "SYN_SENT2", seconds: 120 },
  // slots 10 (MAX) and 11 (IGNORE) are not timeouts; the array skips them by designated initialisers.
  { slot: 12, name: "RETRANS", seconds: 300, sysctl: "nf_conntrack_tcp_timeout_max_retrans" },
  { slot: 13, name: "UNACK", seconds: 300, sysctl: "nf_conntrack_tcp_timeout_unacknowledged" },
];

/** Other TCP sysctls and their defaults (nf_conntrack_proto_tcp.c / nf_conntrack_standalone.c). */
export const TCP_SYSCTL_DEFAULTS = {
  nf_conntrack_tcp_loose: 1,
  nf_conntrack_tcp_be_liberal: 0,
  nf_conntrack_tcp_ignore_invalid_rst: 0,
  nf_conntrack_tcp_max_retrans: 3,
} as const;

/**
 * The timeouts array (seconds, indexed by TCP_CONNTRACK_*) for a sysctl set: each slot with a sysctl takes the
 * sysctl's value, the others keep the table default.
 */
export function tcpTimeoutsFrom(sysctl: object): number[] {
  const values = sysctl as Readonly<Record<string, number | undefined>>;
  const out: number[] = new Array(14).fill(0);
  for (const s of tcp_timeouts)
    out[s.slot] = s.sysctl !== undefined ? (values[s.sysctl] ?? s.seconds) : s.seconds;
  out[0] = out[1];
  return out;
}

/**
 * One slot of the timeouts array for a sysctl set, read straight from the sysctls: the same values as
 * `tcpTimeoutsFrom(sysctl)[slot]` without building the array (the state machine asks for up to four slots per
 * packet, and the sysctls may change between packets).
 */
export function tcpTimeout(sysctl: TcpTimeoutSysctls, slot: number): number {
  switch (slot) {
    case 0:
    case 1:
      return sysctl.nf_conntrack_tcp_timeout_syn_sent ?? 120;
    case 2:
      return sysctl.nf_conntrack_tcp_timeout_syn_recv ?? 60;
    case 3:
      return sysctl.nf_conntrack_tcp_timeout_established ?? 432000;
    case 4:
      return sysctl.nf_conntrack_tcp_timeout_fin_wait ?? 120;
    case 5:
      return sysctl.nf_conntrack_tcp_timeout_close_wait ?? 60;
    case 6:
      return sysctl.nf_conntrack_tcp_timeout_last_ack ?? 30;
    case 7:
      return sysctl.nf_conntrack_tcp_timeout_time_wait ?? 120;
    case 8:
      return sysctl.nf_conntrack_tcp_timeout_close ?? 10;
    case 9:
      return 120;
    case 12:
      return sysctl.nf_conntrack_tcp_timeout_max_retrans ?? 300;
    case 13:
      return sysctl.nf_conntrack_tcp_timeout_unacknowledged ?? 300;
    default:
      return 0;
  }
}

/** The sysctls `tcpTimeout` reads (a missing one falls back to the table default, as in tcpTimeoutsFrom). */
export interface TcpTimeoutSysctls {
  readonly nf_conntrack_tcp_timeout_syn_sent?: number;
  readonly nf_conntrack_tcp_timeout_syn_recv?: number;
  readonly nf_conntrack_tcp_timeout_established?: number;
  readonly nf_conntrack_tcp_timeout_fin_wait?: number;
  readonly nf_conntrack_tcp_timeout_close_wait?: number;
  readonly nf_conntrack_tcp_timeout_last_ack?: number;
  readonly nf_conntrack_tcp_timeout_time_wait?: number;
  readonly nf_conntrack_tcp_timeout_close?: number;
  readonly nf_conntrack_tcp_timeout_max_retrans?: number;
  readonly nf_conntrack_tcp_timeout_unacknowledged?: number;
}
