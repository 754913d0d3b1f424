/**
 * Model: an AWS-style managed NAT gateway (kind `aws-nat-gateway`). It source-NATs packets from private sources to
 * its own address and reverses the mapping for replies; it is not a Linux host and has no iptables.
 *
 * Known about the real service (AWS VPC documentation, "NAT gateway basics" and "Troubleshoot NAT gateways"):
 * - it replaces the source address with its own private address (the IGW then maps that to the Elastic IP);
 * - "A NAT gateway can support up to 55,000 simultaneous connections to each unique destination": a source port
 *   is unique per destination (address, port, protocol), so one port can be in use towards several
 *   destinations at once (seed 004: port 47442 towards two NLB nodes);
 * - idle timeout 350 s; after it, "a NAT gateway returns an RST packet to any resources behind the NAT gateway
 *   that attempt to continue the connection (it does not send a FIN packet)" — seed 000's AWS answer: the
 *   return path reached the NAT gateway, which had no entry, and the RST came from it;
 * - on port exhaustion it drops new connections (CloudWatch ErrorPortAllocation).
 *
 * Assumed (not documented): connections are created only by a TCP SYN without ACK, any UDP datagram or an ICMP
 * echo request from the inside; a TCP segment from the inside with no entry (a SYN-ACK, ACK, FIN...) is answered
 * with an RST built like Linux `nf_send_reset` (source = the segment's destination, so it seems to come from the
 * remote peer; that is what seed 000's node captured); an RST with no entry is dropped. Unsolicited packets from
 * the outside are dropped silently (`rst_outside: true` answers TCP ones with an RST instead). Port allocation
 * (`port_allocation`): `sequential` (default: each destination has its own counter starting at the bottom of the range, which makes
 * the seed 004 reuse deterministic) or `random` (seeded draw, retried until free for that destination). The
 * source port is never preserved. An RST seen in either direction removes the entry; FIN does not (the entry
 * idles out). The NAT gateway's TTL handling is unknown: by default the TTL is left alone.
 *
 * Keys: `address` (SNAT address; default the first address of the outside interface), `inside`/`outside`
 * (interface names; a packet is "from outside" when it arrives on `outside` and is addressed to `address`),
 * `routes`, `idle_timeout` (350), `port_range` ([1024, 56023]: 55,000 ports), `port_allocation`, `rst_outside`.
 * Leaves out on purpose: the Elastic IP mapping (do it on the IGW side or give `address` the public address),
 * bandwidth and packet-rate limits, ICMP errors translation (only echo is mapped), fragments, TCP state beyond
 * SYN/RST, private NAT gateways' differences.
 */
import type { Packet } from "../../../wire/packet";
import {
  ICMP_ECHO,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_RST,
  TCP_SYN,
} from "../../../wire/packet";
import { formatIpv4 } from "../../../wire/addr";
import type { HostInterface } from "../../../host/types";
import { nfSendReset } from "../../../net/tcp_reset";
import type { Prng } from "../../../util/prng";
import type { DeviceKind } from "../registry";
import type { HopRecord, NetNode, NodeOutput, SentPacket } from "../types";
import type { StaticRoute } from "./common";
import {
  StaticRoutes,
  cfgAddr,
  cfgBool,
  cfgInt,
  cfgList,
  cfgNumber,
  cfgRoutes,
  cfgString,
  flowText,
  hop,
  packetPorts,
  primaryAddress,
  rewritePacket,
  tupleKey,
} from "./common";

export const NATGW_IDLE_TIMEOUT = 350;
export const NATGW_PORT_MIN = 1024;
/** 1024 + 55,000 - 1. */
export const NATGW_PORT_MAX = 56023;

export interface NatGatewayEntry {
  readonly protocol: number;
  readonly privateSrc: number;
  readonly privatePort: number;
  readonly dst: number;
  readonly dstPort: number;
  readonly publicPort: number;
  created: number;
  lastSeen: number;
}

export interface NatGatewayOptions {
  readonly name: string;
  readonly interfaces: readonly HostInterface[];
  readonly inside: string;
  readonly outside: string;
  readonly address: number;
  readonly routes?: readonly StaticRoute[];
  readonly idleTimeout?: number;
  readonly portRange?: readonly [number, number];
  readonly portAllocation?: "sequential" | "random";
  readonly rstOutside?: boolean;
  readonly prng: Prng;
}

export class NatGateway implements NetNode {
  readonly name: string;
  readonly interfaces: readonly string[];
  readonly address: number;
  readonly idleTimeout: number;
  /** Counters, as the CloudWatch metrics name them. */
  readonly metrics = { ErrorPortAllocation: 0, IdleTimeoutCount: 0, PacketsDropCount: 0, RstSent: 0 };
  private readonly o: NatGatewayOptions;
  private readonly routes: StaticRoutes;
  private readonly portMin: number;
  private readonly portMax: number;
  /** Outbound key (proto, private src, sport, dst, dport) -> entry. */
  private readonly byPrivate = new Map<string, NatGatewayEntry>();
  /** Inbound key (proto, dst, dport, address, public port) -> entry. */
  private readonly byPublic = new Map<string, NatGatewayEntry>();
  /** Per destination (proto, dst, dport): the next sequential port. */
  private readonly nextPort = new Map<string, number>();

  constructor(o: NatGatewayOptions) {
    this.o = o;
    this.name = o.name;
    this.interfaces = o.interfaces.map((i) => i.name);
    this.address = o.address;
    this.idleTimeout = o.idleTimeout ?? NATGW_IDLE_TIMEOUT;
    this.routes = new StaticRoutes(o.interfaces, o.routes ?? []);
    [this.portMin, this.portMax] = o.portRange ?? [NATGW_PORT_MIN, NATGW_PORT_MAX];
  }

  /** Live entries, oldest first (for output and tests). */
  entries(now: number): NatGatewayEntry[] {
    this.expire(now);
    return [...this.byPrivate.values()];
  }

  /** Entries as one line each: `tcp 10.0.1.5:40000 > 203.0.113.9:443 via 10.0.0.7:1024 idle 3s`. */
  conntrackLines(): readonly string[] {
    return [...this.byPrivate.values()].map(
      (e) =>
        `${proto(e.protocol)} ${formatIpv4(e.privateSrc)}:${e.privatePort} > ${formatIpv4(e.dst)}:${e.dstPort} ` +
        `via ${formatIpv4(this.address)}:${e.publicPort}`,
    );
  }

  receive(pkt: Packet, iface: string, now: number): NodeOutput {
    this.expire(now);
    const inbound = iface === this.o.outside && pkt.ip.dst === this.address;
    return inbound ? this.fromOutside(pkt, iface, now) : this.fromInside(pkt, iface, now);
  }

  private fromInside(pkt: Packet, iface: string, now: number): NodeOutput {
    const what = flowText(pkt);
    const [sport, dport] = packetPorts(pkt);
    const key = tupleKey(pkt.ip.protocol, pkt.ip.src, sport, pkt.ip.dst, dport);
    let e = this.byPrivate.get(key);
    const created = !e;
    const hops: HopRecord[] = [];
    const isTcp = pkt.l4.kind === "tcp";
    const flags = pkt.l4.kind === "tcp" ? pkt.l4.flags : 0;
    if (!e) {
      const creates =
        (isTcp && (flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) ||
        pkt.ip.protocol === IPPROTO_UDP ||
        (pkt.l4.kind === "icmp" && pkt.l4.type === ICMP_ECHO);
      if (!creates) {
        if (isTcp && !(flags & TCP_RST)) return this.reset(pkt, iface, now, "no connection entry");
        this.metrics.PacketsDropCount++;
        return { sent: [], hops: [hop(this.name, iface, what, "dropped: no connection entry")] };
      }
      const port = this.allocate(pkt.ip.protocol, pkt.ip.dst, dport);
      if (port === undefined) {
        this.metrics.ErrorPortAllocation++;
        this.metrics.PacketsDropCount++;
        return {
          sent: [],
          hops: [
            hop(
              this.name,
              iface,
              what,
              `dropped: ErrorPortAllocation (no free port towards ${formatIpv4(pkt.ip.dst)}:${dport})`,
            ),
          ],
        };
      }
      e = {
        protocol: pkt.ip.protocol,
        privateSrc: pkt.ip.src,
        privatePort: sport,
        dst: pkt.ip.dst,
        dstPort: dport,
        publicPort: port,
        created: now,
        lastSeen: now,
      };
      this.byPrivate.set(key, e);
      this.byPublic.set(tupleKey(e.protocol, e.dst, e.dstPort, this.address, port), e);
    }
    e.lastSeen = now;
    const out = rewritePacket(pkt, { src: this.address, srcPort: e.publicPort });
    if (flags & TCP_RST) this.remove(e);
    const rt = this.routes.lookup(out.ip.dst);
    if (!rt)
      return {
        sent: [],
        hops: [hop(this.name, iface, what, `dropped: no route to ${formatIpv4(out.ip.dst)}`)],
      };
    const nat = `SNAT ${formatIpv4(pkt.ip.src)}:${sport} -> ${formatIpv4(this.address)}:${e.publicPort}`;
    hops.push(
      hop(this.name, iface, `${what}; ${created ? "new entry" : "entry"}; ${nat}`, `left ${rt.iface}`, {
        nat,
        details: { publicPort: e.publicPort },
      }),
    );
    return { sent: [{ iface: rt.iface, packet: out }], hops };
  }

  private fromOutside(pkt: Packet, iface: string, now: number): NodeOutput {
    const what = flowText(pkt);
    const [sport, dport] = packetPorts(pkt);
    const e = this.byPublic.get(tupleKey(pkt.ip.protocol, pkt.ip.src, sport, this.address, dport));
    if (!e) {
      if (this.o.rstOutside && pkt.l4.kind === "tcp" && !(pkt.l4.flags & TCP_RST))
        return this.reset(pkt, iface, now, "no connection entry (from outside)");
      this.metrics.PacketsDropCount++;
      return { sent: [], hops: [hop(this.name, iface, what, "dropped: no connection entry (from outside)")] };
    }
    e.lastSeen = now;
    const out = rewritePacket(pkt, { dst: e.privateSrc, dstPort: e.privatePort });
    if (pkt.l4.kind === "tcp" && pkt.l4.flags & TCP_RST) this.remove(e);
    const rt = this.routes.lookup(out.ip.dst);
    if (!rt)
      return {
        sent: [],
        hops: [hop(this.name, iface, what, `dropped: no route to ${formatIpv4(out.ip.dst)}`)],
      };
    const nat = `DNAT ${formatIpv4(this.address)}:${dport} -> ${formatIpv4(e.privateSrc)}:${e.privatePort}`;
    return {
      sent: [{ iface: rt.iface, packet: out }],
      hops: [hop(this.name, iface, `${what}; entry; ${nat}`, `left ${rt.iface}`, { nat })],
    };
  }

  private reset(pkt: Packet, iface: string, now: number, why: string): NodeOutput {
    const what = flowText(pkt);
    const built = nfSendReset(pkt, {
      hook: "FORWARD",
      dstType: "UNICAST",
      ttl: 64,
      tsSec: Math.floor(now),
      tsNsec: Math.round((now % 1) * 1e9),
    });
    if (!("packet" in built)) {
      this.metrics.PacketsDropCount++;
      return { sent: [], hops: [hop(this.name, iface, what, `dropped: ${why}`)] };
    }
    this.metrics.RstSent++;
    const rt = this.routes.lookup(built.packet.ip.dst);
    const sent: SentPacket[] = rt ? [{ iface: rt.iface, packet: built.packet }] : [];
    const fate = rt
      ? `dropped; RST sent to ${formatIpv4(pkt.ip.src)} as ${formatIpv4(pkt.ip.dst)}`
      : `dropped; no route for the RST to ${formatIpv4(pkt.ip.src)}`;
    return {
      sent,
      hops: [
        hop(this.name, iface, `${what}; ${why}`, fate, {
          details: { reset: flowText(built.packet) },
        }),
      ],
    };
  }

  private allocate(protocol: number, dst: number, dport: number): number | undefined {
    const span = this.portMax - this.portMin + 1;
    const used = (p: number) => this.byPublic.has(tupleKey(protocol, dst, dport, this.address, p));
    if (this.o.portAllocation === "random") {
      for (let i = 0; i < 64; i++) {
        const p = this.portMin + (this.o.prng.getRandomU32() % span);
        if (!used(p)) return p;
      }
    }
    const dkey = `${protocol}|${dst}|${dport}`;
    const start = this.nextPort.get(dkey) ?? this.portMin;
    for (let i = 0; i < span; i++) {
      const p = this.portMin + ((start - this.portMin + i) % span);
      if (!used(p)) {
        this.nextPort.set(dkey, p + 1 > this.portMax ? this.portMin : p + 1);
        return p;
      }
    }
    return undefined;
  }

  private expire(now: number): void {
    for (const e of this.byPrivate.values()) {
      if (now - e.lastSeen >= this.idleTimeout) {
        this.metrics.IdleTimeoutCount++;
        this.remove(e);
      }
    }
  }

  private remove(e: NatGatewayEntry): void {
    this.byPrivate.delete(tupleKey(e.protocol, e.privateSrc, e.privatePort, e.dst, e.dstPort));
    this.byPublic.delete(tupleKey(e.protocol, e.dst, e.dstPort, this.address, e.publicPort));
  }
}

function proto(p: number): string {
  return p === IPPROTO_TCP ? "tcp" : p === IPPROTO_UDP ? "udp" : p === IPPROTO_ICMP ? "icmp" : String(p);
}

export const NAT_GATEWAY_KIND: DeviceKind = {
  kind: "aws-nat-gateway",
  summary:
    "AWS-style NAT gateway: SNAT with per-destination port reuse, 350 s idle timeout, RST for unknown flows",
  keys: [
    "address",
    "inside",
    "outside",
    "routes",
    "idle_timeout",
    "port_range",
    "port_allocation",
    "rst_outside",
  ],
  create(spec, ctx) {
    const c = spec.config;
    const names = spec.interfaces.map((i) => i.name);
    const outside = cfgString(ctx, c, ["outside"], names[names.length - 1]);
    const inside = cfgString(ctx, c, ["inside"], names[0]);
    for (const [k, v] of [
      ["outside", outside],
      ["inside", inside],
    ] as const)
      if (!names.includes(v))
        ctx.fail([k], "DEVICE_CONFIG", `no interface "${v}" (have ${names.join(", ")})`);
    const range = cfgList(ctx, c, ["port_range"]);
    let portRange: [number, number] | undefined;
    if (range.length) {
      if (range.length !== 2) ctx.fail(["port_range"], "DEVICE_CONFIG", "expected [low, high]");
      portRange = [
        cfgInt(ctx, c, ["port_range", 0], 0, 1, 65535),
        cfgInt(ctx, c, ["port_range", 1], 0, 1, 65535),
      ];
      if (portRange[0] > portRange[1]) ctx.fail(["port_range"], "DEVICE_CONFIG", "low port above high port");
    }
    const alloc = cfgString(ctx, c, ["port_allocation"], "sequential");
    if (alloc !== "sequential" && alloc !== "random")
      ctx.fail(["port_allocation"], "DEVICE_CONFIG", `expected sequential or random, got "${alloc}"`);
    const def = primaryAddress(spec.interfaces, outside);
    return new NatGateway({
      name: spec.name,
      interfaces: spec.interfaces,
      inside,
      outside,
      address: cfgAddr(ctx, c, ["address"], def),
      routes: cfgRoutes(ctx, c, ["routes"], spec.interfaces),
      idleTimeout: cfgNumber(ctx, c, ["idle_timeout"], NATGW_IDLE_TIMEOUT),
      portRange,
      portAllocation: alloc as "sequential" | "random",
      rstOutside: cfgBool(ctx, c, ["rst_outside"], false),
      prng: ctx.prng,
    });
  },
};
