/**
 * Model: a route-table router (kind `route-table`), standing in for a cloud VPC router or any static router with
 * no connection tracking. It forwards each packet by longest-prefix match over its configured routes and the
 * connected prefixes of its interfaces, and nothing else: no NAT, no state, no filtering.
 *
 * Known about the real service (AWS VPC route tables): routes are matched by longest prefix; a route's target
 * is an ENI / gateway (here: an interface whose link leads to that target); traffic to a destination without a
 * route is dropped silently. Seed 001 shows the TTL falling by one on every round trip between the self-built
 * NAT host and the VPC gateway (TTL 64 -> 63 -> 62 at the NAT host's PREROUTING), i.e. one decrement per pass
 * through the NAT host's FORWARD and one per pass through the VPC router.
 *
 * Assumed: the VPC router decrements the TTL (`decrement_ttl`, default true; seed 001 is consistent with it),
 * drops a packet whose TTL would reach 0 without sending ICMP time exceeded (`icmp_time_exceeded`, default false;
 * AWS does not document it), and sends a packet back out of the interface it came in on when the route says so
 * (no redirects).
 *
 * Keys: `routes: ["0.0.0.0/0 dev eth0", "10.0.0.0/16 via 10.0.0.1 dev eth1"]`, `decrement_ttl`, `icmp_time_exceeded`.
 * Leaves out on purpose: per-subnet route table association (one table per router node: use one node per table),
 * ICMP errors other than time exceeded, prefix lists, blackhole routes.
 */
import type { Packet } from "../../../wire/packet";
import { ICMP_TIME_EXCEEDED, IPPROTO_ICMP } from "../../../wire/packet";
import { formatIpv4 } from "../../../wire/addr";
import type { HostInterface } from "../../../host/types";
import { icmpSend } from "../../../net/icmp_send";
import type { DeviceKind } from "../registry";
import type { NetNode, NodeOutput } from "../types";
import type { StaticRoute } from "./common";
import { StaticRoutes, cfgBool, cfgRoutes, flowText, hop, primaryAddress, rewritePacket } from "./common";

export interface RouteTableRouterOptions {
  readonly name: string;
  readonly interfaces: readonly HostInterface[];
  readonly routes: readonly StaticRoute[];
  readonly decrementTtl?: boolean;
  readonly icmpTimeExceeded?: boolean;
}

export class RouteTableRouter implements NetNode {
  readonly name: string;
  readonly interfaces: readonly string[];
  readonly table: StaticRoutes;
  private readonly ifaces: readonly HostInterface[];
  private readonly decrementTtl: boolean;
  private readonly icmpTimeExceeded: boolean;

  constructor(o: RouteTableRouterOptions) {
    this.name = o.name;
    this.ifaces = o.interfaces;
    this.interfaces = o.interfaces.map((i) => i.name);
    this.table = new StaticRoutes(o.interfaces, o.routes);
    this.decrementTtl = o.decrementTtl ?? true;
    this.icmpTimeExceeded = o.icmpTimeExceeded ?? false;
  }

  receive(pkt: Packet, iface: string, now: number): NodeOutput {
    const what = flowText(pkt);
    const rt = this.table.lookup(pkt.ip.dst);
    if (!rt)
      return {
        sent: [],
        hops: [hop(this.name, iface, what, `dropped: no route to ${formatIpv4(pkt.ip.dst)}`)],
      };
    if (this.decrementTtl && pkt.ip.ttl <= 1) {
      const hops = [hop(this.name, iface, `${what} ttl ${pkt.ip.ttl}`, "dropped: TTL expired")];
      if (!this.icmpTimeExceeded || pkt.ip.protocol === IPPROTO_ICMP) return { sent: [], hops };
      const src = primaryAddress(this.ifaces, iface);
      const back = this.table.lookup(pkt.ip.src);
      if (src === undefined || !back) return { sent: [], hops };
      const built = icmpSend(pkt, ICMP_TIME_EXCEEDED, 0, 0, {
        dstType: "UNICAST",
        pktType: "host",
        sourceFor: () => src,
        ttl: 64,
        id: 0,
        tsSec: Math.floor(now),
        tsNsec: Math.round((now % 1) * 1e9),
      });
      if (!("packet" in built)) return { sent: [], hops };
      return { sent: [{ iface: back.iface, packet: built.packet }], hops };
    }
    const out = this.decrementTtl ? rewritePacket(pkt, { ttl: pkt.ip.ttl - 1 }) : pkt;
    return {
      sent: [{ iface: rt.iface, packet: out }],
      hops: [
        hop(this.name, iface, `${what} ttl ${out.ip.ttl}`, `left ${rt.iface}`, {
          details: { route: rt.text },
        }),
      ],
    };
  }
}

export const ROUTE_TABLE_KIND: DeviceKind = {
  kind: "route-table",
  summary: "static longest-prefix router without conntrack (a VPC router)",
  keys: ["routes", "decrement_ttl", "icmp_time_exceeded"],
  create(spec, ctx) {
    return new RouteTableRouter({
      name: spec.name,
      interfaces: spec.interfaces,
      routes: cfgRoutes(ctx, spec.config, ["routes"], spec.interfaces),
      decrementTtl: cfgBool(ctx, spec.config, ["decrement_ttl"], true),
      icmpTimeExceeded: cfgBool(ctx, spec.config, ["icmp_time_exceeded"], false),
    });
  },
};
