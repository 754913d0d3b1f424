/**
 * What `ctsim trace` reports per input packet: the TRACE hits in kernel order, what conntrack and NAT decided,
 * the routing decision and the fate of the packet and of every packet the host generated because of it (ICMP
 * errors, redirects, RSTs, echo replies), and the packets that left the host.
 *
 * These are plain values built by src/sim/host.ts; the formatters (./summary.ts, ./json.ts, ./monitor.ts) only
 * read them. The kernel-facing part of a TRACE hit is the line `trace_packet` (net/ipv4/netfilter/ip_tables.c,
 * Linux 6.18) logs; the other fields are what `xtables-monitor --trace` and `nft monitor trace` print from the
 * nftrace netlink attributes (NFTA_TRACE_*: table, chain, rule handle, verdict, iif/oif, mark, headers).
 *
 * Leaves out on purpose: IPv6, bridge hooks, the nftrace id's kernel derivation (a per-packet counter here).
 */
import type { LinkHeader, Packet } from "../wire/packet";
import type { CtEvent } from "../conntrack/core";
import type { CtReason } from "../conntrack/types";
import type { Hook, Rule, TableName } from "../netfilter/ruleset";
import type { TraceComment } from "../netfilter/ip_tables";

/** One TRACE line: an entry that matched while skb->nf_trace was set. */
export interface TraceHit {
  /** Which packet of the report (0 = the input, 1.. = generated ones, see PacketReport.packets). */
  readonly packetId: number;
  readonly table: TableName;
  readonly chain: string;
  readonly comment: TraceComment;
  readonly num: number;
  readonly hook: Hook;
  /** The kernel line: `TRACE: raw:PREROUTING:policy:2 IN=eth0 OUT= ...` (with the kernel's trailing space). */
  readonly line: string;
  /** The matched rule (undefined for a policy / implicit return entry). */
  readonly rule?: Rule;
  /**
   * What the entry does: ACCEPT/DROP/RETURN/QUEUE, `JUMP:chain`, `GOTO:chain`, a target name (MARK, DNAT...),
   * or CONTINUE for a rule without target. For policy entries the policy.
   */
  readonly verdict: string;
  /** The packet as the hook saw it. */
  readonly pkt: Packet;
  readonly inIface?: string;
  readonly outIface?: string;
  readonly mark: number;
  readonly link?: LinkHeader;
}

/** Conntrack's view of one packet (after nf_conntrack_in). */
export interface CtSummary {
  /** ctstate as `-m conntrack --ctstate` sees it. */
  readonly state: "NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED";
  /** IP_CT_NEW ...; absent for INVALID. */
  readonly ctinfo?: string;
  readonly dir?: "ORIGINAL" | "REPLY";
  /** Why INVALID (kernel text), or why an attached conntrack was ignored. */
  readonly reason?: CtReason;
  /** TCP: the tcp_conntracks cell used (`ORIGINAL syn NONE -> SYN_SENT`). */
  readonly tcp?: { readonly index?: string; readonly oldState?: string; readonly newState?: string };
  /** The conntrack was attached by the packet this one answers (nf_ct_attach), not looked up. */
  readonly attached?: boolean;
  /** The entry, as `conntrack -L` prints it, after the packet. */
  readonly entry?: string;
}

/** One pass through a NAT hook. */
export interface NatStep {
  readonly hook: Hook;
  readonly manip: "SRC" | "DST";
  /** "binding": a nat rule bound the connection; "null-binding": none did; "rewrite": an existing binding
   * rewrote the packet; "none": nothing changed; "skipped": the nat table was not consulted. */
  readonly kind: "binding" | "null-binding" | "rewrite" | "none" | "skipped" | "drop";
  /** The rule that made the binding (`nat:POSTROUTING:rule:1`). */
  readonly by?: string;
  /** Packet addresses before and after (`198.51.100.2:1836 > 192.0.2.80:80`). */
  readonly from?: string;
  readonly to?: string;
  /** Why not / why dropped. */
  readonly why?: string;
}

export type Fate =
  | { readonly kind: "left"; readonly iface: string }
  | { readonly kind: "delivered"; readonly to: string }
  | { readonly kind: "dropped"; readonly by?: string; readonly reason: string }
  | { readonly kind: "stolen"; readonly by: string; readonly reason: string }
  /** Not processed: e.g. the egress copy of a forwarded packet in a `tcpdump -i any` capture. */
  | { readonly kind: "ignored"; readonly reason: string };

/** One packet's journey: the input packet or one the host generated. */
export interface PacketJourney {
  readonly id: number;
  /** For generated packets: what made it ("icmp_send: redirect host (ip_forward)", "tcp_v4_send_reset"). */
  readonly cause?: string;
  /** Generated packets: the id of the packet that caused it. */
  readonly parent?: number;
  readonly input: Packet;
  readonly inIface?: string;
  readonly local: boolean;
  /** Hook functions run, in order: `raw:PREROUTING ACCEPT`, `conntrack PREROUTING`, `nat:POSTROUTING ACCEPT`. */
  readonly hooks: string[];
  ct?: CtSummary;
  readonly nat: NatStep[];
  /** The routing decision, in words (`forward via 192.0.2.254 dev eth1 (table main)`). */
  route?: string;
  fate?: Fate;
  /** The packet as it left the host (left) or was delivered. */
  out?: Packet;
  /** LOG / NFLOG lines logged for this packet. */
  readonly log: string[];
}

/** Everything that happened because of one input packet. */
export interface PacketReport {
  /** 0-based position in the input. */
  readonly index: number;
  readonly origin?: string;
  /** Packet time in seconds. */
  readonly time: number;
  /** [0] is the input packet; generated packets follow in creation order. */
  readonly packets: PacketJourney[];
  /** TRACE hits of all these packets, in the order the kernel would log them. */
  readonly trace: TraceHit[];
  /** Packets that left the host, in order. */
  readonly egress: { readonly iface: string; readonly packet: Packet; readonly packetId: number }[];
  /** Conntrack events delivered while handling the packet (`conntrack -E`). */
  readonly events: CtEvent[];
}
