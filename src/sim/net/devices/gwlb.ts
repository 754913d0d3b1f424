/**
 * Model: AWS Gateway Load Balancer (kind `aws-gwlb`), its endpoint (kind `aws-gwlb-endpoint`) and a Linux appliance
 * behind it (kind `gwlb-appliance`), for seed 002 (a GWLB endpoint service inspecting an application subnet's
 * traffic with geneve-proxy on the appliance).
 *
 * Known about the real service (Elastic Load Balancing "Gateway Load Balancers" documentation and seed 002):
 * - a GWLB listens for all IP packets on all ports and sends them to a target group of appliances inside GENEVE
 *   on UDP 6081 (RFC 8926, ../../../wire/geneve.ts), which the appliance must listen on; seed 002's capture shows
 *   VNI 0, no flags, three options of class 0x0108 (types 1, 2, 3) and the inner IPv4 packet unchanged;
 * - flow stickiness: a flow (5-tuple by default) goes to one appliance, both directions to the same one;
 * - the appliance returns the packet inside GENEVE to the GWLB, with the same options; a packet it does not
 *   return is dropped (that is how a policy blocks a protocol: geneve-proxy's `blocked_transport_protocols`);
 * - traffic reaches the GWLB through a GWLB endpoint that route tables point at (application subnet: 0/0 via
 *   the endpoint; IGW edge route table: the application subnet via the endpoint), and after inspection leaves
 *   the endpoint towards its original destination, routed by the endpoint subnet's route table.
 *
 * Assumed: the endpoint -> GWLB leg (PrivateLink, invisible to customers) is modelled as GENEVE too, carrying the
 * endpoint id option only; the GWLB picks the appliance by a seeded symmetric jhash of the inner 5-tuple; the
 * flow cookie is drawn per flow from the seeded generator; the outer UDP source port is derived from the flow
 * hash (stable per flow), the outer TTL is 64 and the inner TTL is not changed by GWLB or endpoint (seed 002
 * shows inner TTL 254 at the appliance, a value set before the endpoint); appliances are all healthy; the GWLB
 * drops a returned packet whose flow cookie it does not know.
 *
 * The appliance decapsulates, hands the inner packet to its own HostSim (a Linux datapath with iptables and
 * conntrack) as arriving on its tunnel interface (`tunnel_iface`, default `gwlb0`; give the host a route that
 * sends everything back out of it and ip_forward=1), and re-encapsulates what HostSim sends out of that interface
 * with the received options, outer addresses swapped. So the appliance's conntrack sees the inner flows and its
 * FORWARD rules decide what passes.
 *
 * Leaves out on purpose: health checks, target failover and rebalancing, 350 s flow idle timeout, appliance
 * modes where the appliance answers (NAT on the appliance), IPv6, MTU (8500 with GENEVE overhead), cross-zone,
 * the 5-tuple/3-tuple/2-tuple stickiness settings (5-tuple only).
 */
import type { Packet } from "../../../wire/packet";
import { formatIpv4 } from "../../../wire/addr";
import type { HostInterface } from "../../../host/types";
import type { AwsGwlbMetadata, GeneveFrame, GeneveHeader } from "../../../wire/geneve";
import {
  AWS_GWLB_OPT_CLASS,
  AWS_GWLB_OPT_ENDPOINT_ID,
  GENEVE_UDP_PORT,
  awsGwlbOptions,
  geneveDecapsulate,
  geneveEncapsulate,
  geneveHeader,
  isGeneveFailure,
  isGenevePacket,
  parseAwsGwlbOptions,
} from "../../../wire/geneve";
import type { HostSim } from "../../host";
import { formatFate, formatSummary, formatCt } from "../../../trace/summary";
import type { Prng } from "../../../util/prng";
import type { DeviceContext, DeviceKind } from "../registry";
import type { HopRecord, NetNode, NodeOutput, SentPacket } from "../types";
import type { StaticRoute } from "./common";
import {
  StaticRoutes,
  cfgAddr,
  cfgList,
  cfgRoutes,
  cfgString,
  flowHash,
  flowText,
  hop,
  packetKey,
  primaryAddress,
} from "./common";

function udpSrcPort(hash: number): number {
  // Linux udp_flow_src_port style: a port in the ephemeral range from the flow hash.
  return 32768 + (hash % 28232);
}

function endpointOption(id: bigint): GeneveHeader {
  const opts = awsGwlbOptions({ endpointId: id, attachmentId: 0n, flowCookie: 0 }).filter(
    (o) => o.type === AWS_GWLB_OPT_ENDPOINT_ID,
  );
  return geneveHeader({ options: opts });
}

function endpointIdOf(frame: GeneveFrame): bigint | undefined {
  const o = frame.header.options.find(
    (x) => x.optClass === AWS_GWLB_OPT_CLASS && x.type === AWS_GWLB_OPT_ENDPOINT_ID,
  );
  if (!o || o.data.length !== 8) return undefined;
  return new DataView(o.data.buffer, o.data.byteOffset, 8).getBigUint64(0);
}

function parseHexId(ctx: DeviceContext, c: Readonly<Record<string, unknown>>, key: string): bigint {
  const v = cfgString(ctx, c, [key]);
  const m = /^(?:vpce-|0x)?([0-9a-f]{1,16})$/i.exec(v);
  if (!m) ctx.fail([key], "DEVICE_CONFIG", `expected up to 16 hex digits (vpce-0123abcd...), got "${v}"`);
  return BigInt(`0x${m![1]}`);
}

// ---------------------------------------------------------------------------------------------------------------
// GWLB endpoint

export interface GwlbEndpointOptions {
  readonly name: string;
  readonly interfaces: readonly HostInterface[];
  readonly address: number;
  readonly gwlb: number;
  readonly endpointId: bigint;
  readonly routes?: readonly StaticRoute[];
}

export class GwlbEndpoint implements NetNode {
  readonly name: string;
  readonly interfaces: readonly string[];
  private readonly o: GwlbEndpointOptions;
  private readonly routes: StaticRoutes;

  constructor(o: GwlbEndpointOptions) {
    this.o = o;
    this.name = o.name;
    this.interfaces = o.interfaces.map((i) => i.name);
    this.routes = new StaticRoutes(o.interfaces, o.routes ?? []);
  }

  receive(pkt: Packet, iface: string, _now: number): NodeOutput {
    if (isGenevePacket(pkt) && pkt.ip.dst === this.o.address && pkt.ip.src === this.o.gwlb) {
      const f = geneveDecapsulate(pkt);
      if (isGeneveFailure(f) || !f.inner)
        return {
          sent: [],
          hops: [hop(this.name, iface, flowText(pkt), "dropped: bad GENEVE from the GWLB")],
        };
      const inner = f.inner;
      const rt = this.routes.lookup(inner.ip.dst);
      if (!rt)
        return {
          sent: [],
          hops: [hop(this.name, iface, flowText(inner), `dropped: no route to ${formatIpv4(inner.ip.dst)}`)],
        };
      return {
        sent: [{ iface: rt.iface, packet: inner }],
        hops: [
          hop(this.name, iface, `${flowText(inner)}; back from the GWLB, decapsulated`, `left ${rt.iface}`),
        ],
      };
    }
    const outer = geneveEncapsulate(pkt, endpointOption(this.o.endpointId), {
      src: this.o.address,
      dst: this.o.gwlb,
      srcPort: udpSrcPort(flowHash(pkt, 0, true)),
    });
    const rt = this.routes.lookup(this.o.gwlb);
    if (!rt)
      return { sent: [], hops: [hop(this.name, iface, flowText(pkt), "dropped: no route to the GWLB")] };
    return {
      sent: [{ iface: rt.iface, packet: outer }],
      hops: [
        hop(
          this.name,
          iface,
          `${flowText(pkt)}; to the GWLB ${formatIpv4(this.o.gwlb)} in GENEVE`,
          `left ${rt.iface}`,
        ),
      ],
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GWLB

interface GwlbFlow {
  readonly appliance: number;
  readonly meta: AwsGwlbMetadata;
  readonly endpoint: number;
  /** The GWLB address the endpoint sent to (the source of what goes back to it). */
  readonly local: number;
  readonly srcPort: number;
}

export interface GwlbOptions {
  readonly name: string;
  readonly interfaces: readonly HostInterface[];
  readonly address: number;
  readonly appliances: readonly number[];
  readonly routes?: readonly StaticRoute[];
  readonly hashSeed?: number;
  readonly prng: Prng;
}

export class Gwlb implements NetNode {
  readonly name: string;
  readonly interfaces: readonly string[];
  private readonly o: GwlbOptions;
  private readonly routes: StaticRoutes;
  /** Inner 5-tuple key (either direction) -> flow. */
  private readonly flows = new Map<string, GwlbFlow>();
  private readonly byCookie = new Map<number, GwlbFlow>();
  private readonly own: ReadonlySet<number>;

  constructor(o: GwlbOptions) {
    this.o = o;
    this.own = new Set([o.address, ...o.interfaces.flatMap((i) => i.addresses.map((a) => a.addr))]);
    this.name = o.name;
    this.interfaces = o.interfaces.map((i) => i.name);
    this.routes = new StaticRoutes(o.interfaces, o.routes ?? []);
  }

  conntrackLines(): readonly string[] {
    const out: string[] = [];
    const seen = new Set<GwlbFlow>();
    for (const [k, f] of this.flows) {
      if (seen.has(f)) continue;
      seen.add(f);
      out.push(`${k} -> appliance ${formatIpv4(f.appliance)} cookie 0x${f.meta.flowCookie.toString(16)}`);
    }
    return out;
  }

  receive(pkt: Packet, iface: string, _now: number): NodeOutput {
    const what = flowText(pkt);
    if (!isGenevePacket(pkt) || !this.own.has(pkt.ip.dst))
      return {
        sent: [],
        hops: [hop(this.name, iface, what, "dropped: GWLB takes GENEVE to its address only")],
      };
    const f = geneveDecapsulate(pkt);
    if (isGeneveFailure(f) || !f.inner)
      return {
        sent: [],
        hops: [hop(this.name, iface, what, `dropped: ${isGeneveFailure(f) ? f.failure : "not IPv4 inside"}`)],
      };
    const inner = f.inner;
    if (this.o.appliances.includes(pkt.ip.src)) {
      // Back from an appliance: the cookie names the flow and thus the endpoint.
      const meta = parseAwsGwlbOptions(f.header.options);
      const flow = meta && this.byCookie.get(meta.flowCookie);
      if (!flow)
        return {
          sent: [],
          hops: [hop(this.name, iface, flowText(inner), "dropped: unknown flow cookie from appliance")],
        };
      return this.send(
        geneveEncapsulate(inner, endpointOption(flow.meta.endpointId), {
          src: flow.local,
          dst: flow.endpoint,
          srcPort: flow.srcPort,
        }),
        iface,
        `${flowText(inner)}; returned by appliance ${formatIpv4(pkt.ip.src)}, to endpoint ${formatIpv4(flow.endpoint)}`,
      );
    }
    const endpointId = endpointIdOf(f);
    if (endpointId === undefined)
      return { sent: [], hops: [hop(this.name, iface, flowText(inner), "dropped: no endpoint id option")] };
    if (this.o.appliances.length === 0)
      return { sent: [], hops: [hop(this.name, iface, flowText(inner), "dropped: no healthy appliance")] };
    const key = packetKey(inner);
    let flow = this.flows.get(key);
    let note = "flow";
    if (!flow) {
      const h = flowHash(inner, this.o.hashSeed ?? 0, true);
      let cookie = this.o.prng.getRandomU32();
      while (this.byCookie.has(cookie)) cookie = this.o.prng.getRandomU32();
      flow = {
        appliance: this.o.appliances[h % this.o.appliances.length],
        meta: { endpointId, attachmentId: 0n, flowCookie: cookie },
        endpoint: pkt.ip.src,
        local: pkt.ip.dst,
        srcPort: udpSrcPort(h),
      };
      this.flows.set(key, flow);
      // The reverse direction of the inner flow sticks to the same appliance.
      const [sp, dp] = [key.split("|")[2], key.split("|")[4]];
      this.flows.set(`${inner.ip.protocol}|${inner.ip.dst >>> 0}|${dp}|${inner.ip.src >>> 0}|${sp}`, flow);
      this.byCookie.set(cookie, flow);
      note = `new flow -> appliance ${formatIpv4(flow.appliance)}`;
    }
    const outer = geneveEncapsulate(inner, geneveHeader({ options: awsGwlbOptions(flow.meta) }), {
      src: this.o.address,
      dst: flow.appliance,
      srcPort: flow.srcPort,
    });
    return this.send(outer, iface, `${flowText(inner)}; ${note}`);
  }

  private send(outer: Packet, iface: string, summary: string): NodeOutput {
    const rt = this.routes.lookup(outer.ip.dst);
    if (!rt)
      return {
        sent: [],
        hops: [hop(this.name, iface, summary, `dropped: no route to ${formatIpv4(outer.ip.dst)}`)],
      };
    return {
      sent: [{ iface: rt.iface, packet: outer }],
      hops: [hop(this.name, iface, summary, `left ${rt.iface} in GENEVE`)],
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Appliance

export interface GwlbApplianceOptions {
  readonly name: string;
  /** The appliance's Linux datapath; its interfaces are the node's. */
  readonly sim: HostSim;
  /** Interface GENEVE arrives on (the appliance's ENI). */
  readonly iface?: string;
  /** HostSim interface the inner packets enter and leave by. */
  readonly tunnelIface?: string;
}

export class GwlbAppliance implements NetNode {
  readonly name: string;
  readonly interfaces: readonly string[];
  readonly sim: HostSim;
  private readonly eni: string;
  private readonly tunnel: string;
  private readonly address: number;
  /** Counters: GENEVE in, inner packets returned, inner packets the datapath dropped. */
  readonly counters = { received: 0, returned: 0, dropped: 0 };

  constructor(o: GwlbApplianceOptions) {
    this.name = o.name;
    this.sim = o.sim;
    this.tunnel = o.tunnelIface ?? "gwlb0";
    const names = o.sim.host.interfaces.map((i) => i.name).filter((n) => n !== "lo" && n !== this.tunnel);
    this.interfaces = names;
    this.eni = o.iface ?? names[0];
    const a = primaryAddress(o.sim.host.interfaces, this.eni);
    if (a === undefined) throw new Error(`${o.name}: interface ${this.eni} has no address`);
    this.address = a;
  }

  conntrackLines(): readonly string[] {
    return this.sim.conntrackLines();
  }

  /** The Linux datapath's report of the last packet received (the inner packet for GENEVE), for checks. */
  lastReceived?: ReturnType<HostSim["receive"]>;

  receive(pkt: Packet, iface: string, now: number): NodeOutput {
    if (!isGenevePacket(pkt) || pkt.ip.dst !== this.address || pkt.l4.kind !== "udp") {
      // Anything else (health checks, management) goes to the Linux datapath as it is.
      this.lastReceived = this.sim.receive({ ...pkt, iface, direction: "In" }, { iface, time: now });
      return this.collect(this.lastReceived, iface, undefined);
    }
    const f = geneveDecapsulate(pkt);
    if (isGeneveFailure(f) || !f.inner)
      return { sent: [], hops: [hop(this.name, iface, flowText(pkt), "dropped: bad GENEVE")] };
    this.counters.received++;
    const inner = { ...f.inner, iface: this.tunnel, direction: "In" as const };
    const report = this.sim.receive(inner, { iface: this.tunnel, time: now });
    this.lastReceived = report;
    return this.collect(report, iface, { outer: pkt, header: f.header, srcPort: pkt.l4.srcPort });
  }

  private collect(
    r: ReturnType<HostSim["receive"]>,
    iface: string,
    tunnel: { outer: Packet; header: GeneveHeader; srcPort: number } | undefined,
  ): NodeOutput {
    const hops: HopRecord[] = [];
    const sent: SentPacket[] = [];
    for (const j of r.packets) {
      const summary = formatSummary(j).replace(/^\s*(=> #0|\+#\d+)\s*/, "");
      hops.push({
        node: this.name,
        ...(j.id === 0 ? { inIface: tunnel ? `${iface} (GENEVE) -> ${this.tunnel}` : iface } : {}),
        summary,
        ...(j.ct ? { ctstate: formatCt(j.ct).replace(/^ct /, "") } : {}),
        fate: formatFate(j.fate),
      });
    }
    let returned = 0;
    for (const e of r.egress) {
      if (e.iface === this.tunnel) {
        if (!tunnel) continue;
        const back = geneveEncapsulate(e.packet, tunnel.header, {
          src: this.address,
          dst: tunnel.outer.ip.src,
          srcPort: tunnel.srcPort,
          dstPort: GENEVE_UDP_PORT,
        });
        sent.push({ iface, packet: back });
        returned++;
      } else sent.push({ iface: e.iface, packet: e.packet });
    }
    if (tunnel) {
      if (returned) this.counters.returned += returned;
      else this.counters.dropped++;
    }
    return { sent, hops };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kinds

export const GWLB_ENDPOINT_KIND: DeviceKind = {
  kind: "aws-gwlb-endpoint",
  summary: "AWS GWLB endpoint: hands traffic to its GWLB and routes what comes back",
  keys: ["address", "gwlb", "endpoint_id", "routes"],
  create(spec, ctx) {
    const c = spec.config;
    const gwlb = cfgAddr(ctx, c, ["gwlb"]);
    const routes = cfgRoutes(ctx, c, ["routes"], spec.interfaces);
    // Default source: the address of the interface that leads to the GWLB.
    const towards = new StaticRoutes(spec.interfaces, routes).lookup(gwlb)?.iface;
    return new GwlbEndpoint({
      name: spec.name,
      interfaces: spec.interfaces,
      address: cfgAddr(ctx, c, ["address"], primaryAddress(spec.interfaces, towards)),
      gwlb,
      endpointId: parseHexId(ctx, c, "endpoint_id"),
      routes,
    });
  },
};

export const GWLB_KIND: DeviceKind = {
  kind: "aws-gwlb",
  summary: "AWS Gateway Load Balancer: GENEVE (UDP 6081) to appliances with the AWS TLVs, 5-tuple stickiness",
  keys: ["address", "appliances", "routes", "hash_seed"],
  create(spec, ctx) {
    const c = spec.config;
    const appliances = cfgList(ctx, c, ["appliances"], true).map((_, i) =>
      cfgAddr(ctx, c, ["appliances", i]),
    );
    return new Gwlb({
      name: spec.name,
      interfaces: spec.interfaces,
      address: cfgAddr(ctx, c, ["address"], primaryAddress(spec.interfaces)),
      appliances,
      routes: cfgRoutes(ctx, c, ["routes"], spec.interfaces),
      hashSeed: ctx.prng.seed,
      prng: ctx.prng,
    });
  },
};

export const GWLB_APPLIANCE_KIND: DeviceKind = {
  kind: "gwlb-appliance",
  summary: "Linux appliance behind a GWLB: decapsulates GENEVE, runs the inner packet through its netfilter",
  keys: ["linux", "tunnel_iface", "eni"],
  create(spec, ctx) {
    const c = spec.config;
    const sim = ctx.hostSim(["linux"]);
    return new GwlbAppliance({
      name: spec.name,
      sim,
      iface: c.eni === undefined ? undefined : cfgString(ctx, c, ["eni"]),
      tunnelIface: cfgString(ctx, c, ["tunnel_iface"], "gwlb0"),
    });
  },
};
