/**
 * An emulated Linux host as a node of a network (./types.ts NetNode): HostSim (src/sim/host.ts: netfilter,
 * conntrack, NAT, routing, local delivery, ICMP errors, resets) with a TCP socket layer (./tcp_endpoint.ts)
 * attached to its local delivery (`tcpRcv`) and output path (segments the sockets originate go through OUTPUT
 * and POSTROUTING like any locally generated packet). What the host sends out of an interface (its egress)
 * is what the node sends; the Ethernet destination comes from the topology's neighbours (no ARP).
 *
 * Mirrors the same kernel paths as HostSim (Linux 6.18). One HopRecord per packet the host handled because of
 * the event (the input and every packet it generated: RSTs, ICMP errors, socket replies), with the summary line
 * of `ctsim trace` (src/trace/summary.ts) and the TRACE lines of that packet.
 *
 * Leaves out on purpose: UDP sockets beyond what HostSim does (port unreachable / delivered), ARP, the
 * transmit queue.
 */
import type { Packet } from "../../wire/packet";
import { HostSim } from "../host";
import type { HostSimOptions } from "../host";
import type { PacketReport } from "../../trace/events";
import { formatCt, formatFate, formatNat, formatSummary } from "../../trace/summary";
import { Prng } from "../../util/prng";
import { TcpStack } from "./tcp_endpoint";
import type { TcpOutput, TcpSysctls } from "./tcp_endpoint";
import type { HopRecord, NetNode, NodeOutput, SentPacket } from "./types";

export interface LinuxNodeOptions extends Omit<HostSimOptions, "tcpRcv" | "socketLookup"> {
  /** Node name in the topology (default: the host's hostname). */
  readonly name?: string;
  /** TCP sysctls of the socket layer. */
  readonly tcp?: Partial<TcpSysctls>;
}

export class LinuxNode implements NetNode {
  readonly name: string;
  readonly interfaces: readonly string[];
  readonly sim: HostSim;
  readonly tcp: TcpStack;

  constructor(opts: LinuxNodeOptions) {
    this.name = opts.name ?? opts.host.hostname;
    this.interfaces = opts.host.interfaces.map((i) => i.name).filter((n) => n !== "lo");
    let stack: TcpStack | undefined;
    this.sim = new HostSim({
      ...opts,
      tcpRcv: (pkt, now, sk) => stack!.rcv(pkt, now, sk),
      socketLookup: (q, kind) => stack!.lookup(q, kind),
    });
    const sim = this.sim;
    stack = new TcpStack({
      prng: new Prng(`${String(opts.seed ?? 0)}/${this.name}/tcp`),
      sysctl: opts.tcp,
      ttl: sim.ipDefaultTtl,
      sourceFor: (dst) => sim.sourceAddressFor(dst),
      isLocal: (a) => sim.fib.isLocalAddress(a),
    });
    this.tcp = stack;
    for (const s of opts.host.sockets)
      if (s.protocol === "tcp")
        stack.listen({ address: s.address, port: s.port, transparent: s.transparent });
  }

  /** The report of the last packet that arrived (receive), for checks that look inside one hop. */
  lastReceived?: PacketReport;

  receive(pkt: Packet, iface: string, now: number): NodeOutput {
    const r = this.sim.receive({ ...pkt, iface, direction: "In" }, { iface, time: now });
    this.lastReceived = r;
    const out = this.collect(r, [], []);
    return this.originate(this.tcp.takeOutput(), now, out);
  }

  nextWake(): number | undefined {
    return this.tcp.nextWake();
  }

  wake(now: number): NodeOutput {
    this.tcp.wake(now);
    return this.originate(this.tcp.takeOutput(), now, { sent: [], hops: [] });
  }

  /** Runs a socket action (connect, send, close, abort) now and sends what the sockets queued. */
  act(now: number, fn: (stack: TcpStack, now: number) => void): NodeOutput {
    fn(this.tcp, now);
    return this.originate(this.tcp.takeOutput(), now, { sent: [], hops: [] });
  }

  conntrackLines(): readonly string[] {
    return this.sim.conntrackLines();
  }

  /** Packets the sockets originated go out through ip_local_out. */
  private originate(
    outputs: readonly TcpOutput[],
    now: number,
    acc: { sent: SentPacket[]; hops: HopRecord[] },
  ): NodeOutput {
    for (const o of outputs) {
      const r = this.sim.receive({ ...o.packet, direction: "Out" }, { time: now, local: o.cause });
      this.collect(r, acc.sent, acc.hops);
    }
    return acc;
  }

  private collect(
    r: PacketReport,
    sent: SentPacket[],
    hops: HopRecord[],
  ): { sent: SentPacket[]; hops: HopRecord[] } {
    for (const j of r.packets) {
      const trace = r.trace.filter((t) => t.packetId === j.id).map((t) => t.line.trimEnd());
      const nat = formatNat(j.nat);
      const summary = formatSummary(j).replace(/^\s*(=> #0|\+#\d+)\s*/, "");
      hops.push({
        node: this.name,
        ...(j.id === 0 && j.inIface !== undefined ? { inIface: j.inIface } : {}),
        summary: j.cause && j.id !== 0 ? summary : summary,
        ...(j.ct ? { ctstate: formatCt(j.ct).replace(/^ct /, "") } : {}),
        ...(nat.startsWith("nat ") ? { nat } : {}),
        fate: formatFate(j.fate),
        ...(trace.length ? { trace } : {}),
      });
    }
    for (const e of r.egress) sent.push({ iface: e.iface, packet: e.packet });
    return { sent, hops };
  }
}
