/**
 * The per-packet state the netfilter datapath carries (the parts of `struct sk_buff` and
 * `struct xt_action_param` that matches and targets read), and the per-packet contract of match and target
 * descriptors.
 *
 * Mirrors: include/linux/skbuff.h (mark, nf_trace, _nfct, sk, priority), include/linux/netfilter/x_tables.h
 * (struct xt_action_param: in/out devices, hook, fragoff, thoff, hotdrop; XT_CONTINUE, XT_RETURN),
 * include/linux/netfilter.h (struct nf_hook_state). Kernel 6.17.
 * Leaves out: skb data offsets (the Packet value carries parsed headers), GSO, dst cache, IPv6.
 */

import type { Packet } from "../wire/packet";
import type { CtInfo, CtReason } from "../conntrack/types";
import type { NfConn } from "../conntrack/core";
import type { Hook, TableName } from "./ruleset";

/** Packet state as conntrack left it: what `--ctstate` / `--state` see. */
export type CtStateName = "NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED";

/** A local socket the packet was assigned to (early demux / TPROXY's skb->sk), or that the socket match found. */
export interface SocketRef {
  readonly protocol: "tcp" | "udp";
  readonly address: number;
  readonly port: number;
  readonly transparent: boolean;
  readonly listening: boolean;
  /** socket mark (SO_MARK), for `--restore-skmark`. */
  readonly mark?: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface Skb {
  /** Current header values. NAT and mangling targets replace it with a rewritten value. */
  pkt: Packet;
  /** skb->mark */
  mark: number;
  /** skb->nf_trace, set by -j TRACE in raw. */
  nfTrace: boolean;
  /** skb->_nfct: the attached conntrack and ctinfo. Undefined ct with untracked false = INVALID. */
  ct?: NfConn;
  ctinfo?: CtInfo;
  untracked: boolean;
  /** Why conntrack attached nothing (the kernel reason), for output. */
  ctReason?: CtReason;
  /** A CT target template (raw `-j CT --zone N` / `--notrack`), consumed by nf_conntrack_in. */
  ctTemplate?: { readonly zone?: number; readonly notrack?: boolean };
  /** skb->sk, assigned by TPROXY or local delivery. */
  sk?: SocketRef;
  /** skb->priority (CLASSIFY); kept for completeness. */
  priority: number;
  /** Interface the packet came in on (undefined for locally generated packets). */
  inIface?: string;
  /** Interface chosen by routing (undefined before the routing decision). */
  outIface?: string;
  /** Locally generated (OUTPUT path). */
  local: boolean;
  /** Owner of a locally generated packet, for `-m owner` (OUTPUT/POSTROUTING). */
  owner?: { readonly uid: number; readonly gid: number };
  /** Link-layer packet type for `-m pkttype` (PACKET_HOST etc.) and the source MAC for `-m mac`. */
  pktType: "unicast" | "broadcast" | "multicast" | "host" | "otherhost";
}

export const XT_CONTINUE = "CONTINUE" as const;
export const XT_RETURN = "RETURN" as const;

/**
 * What a target returns: a netfilter verdict ends the traversal (ACCEPT, DROP, STOLEN after emitting its own
 * packet, QUEUE); CONTINUE goes on with the next rule (MARK, LOG, TRACE...); RETURN pops the chain.
 */
export type TargetVerdict = "ACCEPT" | "DROP" | "STOLEN" | "QUEUE" | typeof XT_CONTINUE | typeof XT_RETURN;

/** Side effects a match or target reports to the engine (emitted packets, log lines, events). */
export interface DatapathEffects {
  /** A packet the host itself sends because of this one (REJECT's RST or ICMP error). It goes through OUTPUT. */
  emitLocal(pkt: Packet, why: string): void;
  /** A LOG/NFLOG line (kernel log text without the syslog prefix). */
  log(line: string): void;
}

/**
 * struct xt_action_param plus what the emulator's descriptors need from the host. Host-level services
 * (addresses, sockets, ipsets, NAT, the seeded generator) are reached through `host`, typed by the engine.
 */
export interface XtActionParam {
  readonly table: TableName;
  readonly hook: Hook;
  /** Chain name (built-in or user) of the rule being evaluated. */
  readonly chain: string;
  readonly inIface?: string;
  readonly outIface?: string;
  /** Packet time in seconds (limit, recent, statistic timing). */
  readonly now: number;
  /** Set by a match to drop the packet at once (par->hotdrop). */
  hotdrop: boolean;
  readonly effects: DatapathEffects;
  /** The host's services; the engine defines the concrete type (src/sim). */
  readonly host: unknown;
  /** Per-rule private state (limit buckets, statistic nth counters, recent lists), keyed by the rule object. */
  readonly ruleState: Map<object, unknown>;
}

/** Per-packet function of a match descriptor (the kernel's `match`). */
export type MatchFn<O> = (options: O, skb: Skb, par: XtActionParam) => boolean;

/** Per-packet function of a target descriptor (the kernel's `target`). */
export type TargetFn<O> = (options: O, skb: Skb, par: XtActionParam) => TargetVerdict;

/**
 * The owner nf_log prints as UID=/GID= (nf_log_dump_sk_uid_gid): the packet's owner when locally generated,
 * else the uid/gid of the socket assigned to it (TPROXY, early demux).
 */
export function skbOwner(skb: Skb): { uid: number; gid: number } | undefined {
  if (skb.owner) return skb.owner;
  const sk = skb.sk;
  return sk && sk.uid !== undefined ? { uid: sk.uid, gid: sk.gid ?? 0 } : undefined;
}
