/**
 * Networks of hosts (`ctsim run`): the contract between the event-driven engine (./engine.ts) and the nodes it
 * moves packets between — emulated Linux hosts (HostSim with its sockets) and device models (NAT gateway, NLB,
 * GWLB, ... in ./devices/).
 *
 * A node is a pure state machine over packets and time, like smoltcp's `poll(timestamp)`: the engine hands it a
 * packet that arrived on one of its interfaces, or wakes it at a time it asked for, and the node answers with
 * the packets it sends and a record of what it did. Nodes never read a clock and never call each other.
 */
import type { Packet } from "../../wire/packet";

/** What a node did with one packet (or at one timer): one line of the hop-by-hop path. */
export interface HopRecord {
  readonly node: string;
  /** Interface the packet came in on; undefined for packets the node originated. */
  readonly inIface?: string;
  /** Short account: "ct NEW SYN_SENT; SNAT 10.0.0.5:40000 -> 203.0.113.1:40000; left on eth1". */
  readonly summary: string;
  /** conntrack state seen by rules, when the node is a Linux host. */
  readonly ctstate?: string;
  /** NAT done, old -> new tuple. */
  readonly nat?: string;
  /** Where the packet went: "left eth1", "delivered to tcp 0.0.0.0:80 (LISTEN)", "dropped: ...". */
  readonly fate: string;
  /** Kernel TRACE lines, for Linux hosts with tracing on. */
  readonly trace?: readonly string[];
  /** Model-specific details as key/value text, for JSON output. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

export interface SentPacket {
  readonly iface: string;
  readonly packet: Packet;
  /**
   * Next-hop address on a shared segment, for nodes that do not fill the Ethernet header (device models): the
   * engine hands the frame to the station owning this address. Optional; added by the engine's author.
   */
  readonly nexthop?: number;
}

export interface NodeOutput {
  readonly sent: readonly SentPacket[];
  readonly hops: readonly HopRecord[];
}

export interface NetNode {
  readonly name: string;
  /** Interface names, each attached to one link by the topology. */
  readonly interfaces: readonly string[];
  /** A packet arrived on `iface` at time `now` (seconds). */
  receive(pkt: Packet, iface: string, now: number): NodeOutput;
  /** The earliest time this node wants `wake` called (retransmission, TIME_WAIT, proxy delays), if any. */
  nextWake?(): number | undefined;
  wake?(now: number): NodeOutput;
  /** Current conntrack table as `conntrack -L` lines (Linux hosts), for output and tests. */
  conntrackLines?(): readonly string[];
}

export const EMPTY_OUTPUT: NodeOutput = Object.freeze({ sent: [], hops: [] });
