/**
 * Model: one node of an AWS Network Load Balancer (kind `aws-nlb-node`; an NLB has one node per enabled availability
 * zone, each with its own address and its own flow table). Layer 4 only: it rewrites headers, it does not
 * terminate TCP.
 *
 * Known about the real service (Elastic Load Balancing documentation, "Network Load Balancers", "Target groups";
 * seed 000 and seed 004):
 * - listeners are TCP, UDP, TLS or TCP_UDP; a TCP_UDP listener takes both protocols on one port (seed 000);
 * - instance targets: "the source IP addresses of the clients are preserved" (client IP and port reach the
 *   target unchanged); IP targets: "the source IP addresses are the private IP addresses of the load balancer
 *   nodes" (the node's private address and a port of its own);
 * - cross-zone load balancing is off by default: a node then sends only to targets in its own zone; with it on,
 *   to any registered target (seed 004: two nodes picked the same target for the same client IP:port);
 * - a flow (5-tuple) sticks to one target for its life; the TCP idle timeout is 350 s, UDP 120 s.
 *
 * Assumed: the target is chosen by a seeded jhash of the 5-tuple modulo the eligible targets (the real hash is
 * not published; only stickiness and uniformity are modelled); all targets are healthy; a node with no eligible
 * target drops the packet; replies are translated only if they come back through the same node (the "return
 * through the NLB path" of seed 000's fix); ports for IP targets are allocated sequentially per target from
 * 1024 (not documented); a TCP RST in either direction ends the flow.
 *
 * Not documented, so an explicit model parameter: which node translates a target's reply (`return_path`). With
 * instance targets and client IP preserved the reply is addressed to the client, and AWS does not say how it finds
 * its way back into the load balancer. Two models:
 * - `same-zone` (default): the node the target's route reaches (in the examples the target's own zone's node)
 *   translates the reply if it holds the flow, else drops it. Seed 004 then stops at the challenge ACK, which goes
 *   back to the first connection's client.
 * - `last-forwarder`: the nodes of one load balancer (same `load_balancer:` name) share one record of which node
 *   most recently forwarded a given (client IP:port -> target IP:port) to the target; a reply to that tuple is
 *   handed (unchanged, over the target-side segment) to that node, which translates it with its own flow. This
 *   reproduces seed 004's reset: the challenge ACK reaches the second connection's client (SYN_SENT), whose RST
 *   (seq = the ACK's ack) lands exactly at the first connection's rcv_nxt on the target.
 *
 * Keys: `address` (the node's address: listeners and, for IP targets, the source), `zone`, `cross_zone`,
 * `load_balancer` (name shared by the nodes of one NLB, default "nlb"), `return_path` (same-zone | last-forwarder),
 * `listeners: [{port, protocol: TCP|UDP|TCP_UDP, target_group}]`, `target_groups: {NAME: {type: instance|ip,
 * port, targets: [{address, zone, port?}]}}`, `routes`, `idle_timeout` ({tcp: 350, udp: 120}), `hash_seed`.
 * Leaves out on purpose: health checks, TLS listeners, proxy protocol, client IP preservation switched off for
 * instance targets, connection draining, deregistration delay, DNS-level zone selection (which node a client
 * reaches is decided by the topology's routes), per-node limits.
 */
import type { Packet } from "../../../wire/packet";
import { IPPROTO_TCP, IPPROTO_UDP, TCP_RST } from "../../../wire/packet";
import { formatIpv4 } from "../../../wire/addr";
import type { HostInterface } from "../../../host/types";
import type { DeviceContext, DeviceKind } from "../registry";
import type { NetNode, NodeOutput } from "../types";
import type { StaticRoute } from "./common";
import {
  StaticRoutes,
  at,
  cfgAddr,
  cfgBool,
  cfgInt,
  cfgList,
  cfgNumber,
  cfgRoutes,
  cfgString,
  flowHash,
  flowText,
  hop,
  packetPorts,
  primaryAddress,
  rewritePacket,
  tupleKey,
} from "./common";

export type NlbProtocol = "TCP" | "UDP" | "TCP_UDP";

export interface NlbTarget {
  readonly address: number;
  readonly zone: string;
  /** Port on the target; default the target group's port. */
  readonly port?: number;
}

export interface NlbTargetGroup {
  readonly name: string;
  readonly type: "instance" | "ip";
  readonly port: number;
  readonly targets: readonly NlbTarget[];
}

export interface NlbListener {
  readonly port: number;
  readonly protocol: NlbProtocol;
  readonly targetGroup: string;
}

export interface NlbNodeOptions {
  readonly name: string;
  readonly interfaces: readonly HostInterface[];
  readonly address: number;
  readonly zone: string;
  readonly crossZone: boolean;
  readonly listeners: readonly NlbListener[];
  readonly targetGroups: readonly NlbTargetGroup[];
  readonly routes?: readonly StaticRoute[];
  readonly hashSeed?: number;
  readonly idleTimeout?: { readonly tcp: number; readonly udp: number };
  /** Which node translates a target's reply (see the header); default same-zone. */
  readonly returnPath?: NlbReturnPath;
  /** State shared by the nodes of one load balancer (default: this node's own). */
  readonly group?: NlbGroup;
}

export type NlbReturnPath = "same-zone" | "last-forwarder";

/** What the nodes of one NLB share: who last forwarded each target-side tuple. */
export class NlbGroup {
  /** Target-side tuple key (proto, target, tport, srcSeen, sportSeen) -> node that forwarded it last. */
  readonly lastForwarder = new Map<string, NlbNode>();
}

export interface NlbFlow {
  readonly protocol: number;
  readonly client: number;
  readonly clientPort: number;
  readonly listenerPort: number;
  readonly target: number;
  readonly targetPort: number;
  /** Source the target sees (client for instance targets, this node for IP targets). */
  readonly srcSeen: number;
  readonly srcPortSeen: number;
  readonly group: string;
  lastSeen: number;
}

export class NlbNode implements NetNode {
  readonly name: string;
  readonly interfaces: readonly string[];
  readonly address: number;
  private readonly o: NlbNodeOptions;
  private readonly routes: StaticRoutes;
  private readonly groups = new Map<string, NlbTargetGroup>();
  /** Client side key (proto, client, cport, address, lport) -> flow. */
  private readonly byClient = new Map<string, NlbFlow>();
  /** Target side key of replies (proto, target, tport, srcSeen, sportSeen) -> flow. */
  private readonly byTarget = new Map<string, NlbFlow>();
  private readonly nextPort = new Map<number, number>();
  private readonly group: NlbGroup;

  constructor(o: NlbNodeOptions) {
    this.o = o;
    this.name = o.name;
    this.interfaces = o.interfaces.map((i) => i.name);
    this.address = o.address;
    this.routes = new StaticRoutes(o.interfaces, o.routes ?? []);
    for (const g of o.targetGroups) this.groups.set(g.name, g);
    this.group = o.group ?? new NlbGroup();
  }

  /** Targets this node may choose for a group: its zone's only, unless cross-zone is on. */
  eligibleTargets(group: string): readonly NlbTarget[] {
    const g = this.groups.get(group);
    if (!g) return [];
    return this.o.crossZone ? g.targets : g.targets.filter((t) => t.zone === this.o.zone);
  }

  flows(): readonly NlbFlow[] {
    return [...this.byClient.values()];
  }

  conntrackLines(): readonly string[] {
    return this.flows().map(
      (f) =>
        `${f.protocol === IPPROTO_TCP ? "tcp" : "udp"} ${formatIpv4(f.client)}:${f.clientPort} > ${formatIpv4(this.address)}:${f.listenerPort} ` +
        `-> ${formatIpv4(f.srcSeen)}:${f.srcPortSeen} > ${formatIpv4(f.target)}:${f.targetPort} (${f.group})`,
    );
  }

  receive(pkt: Packet, iface: string, now: number): NodeOutput {
    this.expire(now);
    const what = flowText(pkt);
    if (pkt.ip.protocol !== IPPROTO_TCP && pkt.ip.protocol !== IPPROTO_UDP)
      return { sent: [], hops: [hop(this.name, iface, what, "dropped: NLB carries TCP and UDP only")] };
    const [sport, dport] = packetPorts(pkt);
    const rst = pkt.l4.kind === "tcp" && (pkt.l4.flags & TCP_RST) !== 0;

    // A reply from a target?
    const replyKey = tupleKey(pkt.ip.protocol, pkt.ip.src, sport, pkt.ip.dst, dport);
    if (this.o.returnPath === "last-forwarder") {
      const last = this.group.lastForwarder.get(replyKey);
      if (last && last !== this) return this.handOff(pkt, iface, what, last);
    }
    const back = this.byTarget.get(replyKey);
    if (back) {
      back.lastSeen = now;
      const out = rewritePacket(pkt, {
        src: this.address,
        srcPort: back.listenerPort,
        dst: back.client,
        dstPort: back.clientPort,
      });
      if (rst) this.remove(back);
      const nat = `${formatIpv4(pkt.ip.src)}:${sport} > ${formatIpv4(pkt.ip.dst)}:${dport} -> ${formatIpv4(this.address)}:${back.listenerPort} > ${formatIpv4(back.client)}:${back.clientPort}`;
      return this.send(out, iface, `${what}; reply of flow to ${formatIpv4(back.target)}`, nat);
    }

    if (pkt.ip.dst !== this.address)
      return {
        sent: [],
        hops: [hop(this.name, iface, what, "dropped: not addressed to this NLB node and no flow")],
      };
    const key = tupleKey(pkt.ip.protocol, pkt.ip.src, sport, pkt.ip.dst, dport);
    let f = this.byClient.get(key);
    let note = "flow";
    if (!f) {
      const l = this.o.listeners.find(
        (x) =>
          x.port === dport &&
          (x.protocol === "TCP_UDP" || x.protocol === (pkt.ip.protocol === IPPROTO_TCP ? "TCP" : "UDP")),
      );
      if (!l)
        return {
          sent: [],
          hops: [hop(this.name, iface, what, `dropped: no listener for ${proto(pkt)} port ${dport}`)],
        };
      const g = this.groups.get(l.targetGroup)!;
      const eligible = this.eligibleTargets(g.name);
      if (eligible.length === 0)
        return {
          sent: [],
          hops: [hop(this.name, iface, what, `dropped: no target in zone ${this.o.zone} (cross-zone off)`)],
        };
      const t = eligible[flowHash(pkt, this.o.hashSeed ?? 0) % eligible.length];
      const targetPort = t.port ?? g.port;
      let srcSeen = pkt.ip.src;
      let srcPortSeen = sport;
      if (g.type === "ip") {
        srcSeen = this.address;
        srcPortSeen = this.allocate(pkt.ip.protocol, t.address, targetPort);
      }
      f = {
        protocol: pkt.ip.protocol,
        client: pkt.ip.src,
        clientPort: sport,
        listenerPort: dport,
        target: t.address,
        targetPort,
        srcSeen,
        srcPortSeen,
        group: g.name,
        lastSeen: now,
      };
      this.byClient.set(key, f);
      const tkey = tupleKey(f.protocol, f.target, f.targetPort, f.srcSeen, f.srcPortSeen);
      // Another node-local flow already owns this target-side tuple (only possible with IP targets reusing a
      // port, which allocate() avoids); keep the first so replies stay with it.
      if (!this.byTarget.has(tkey)) this.byTarget.set(tkey, f);
      note = `new flow -> target ${formatIpv4(t.address)}:${targetPort} (${g.type}, zone ${t.zone})`;
    }
    f.lastSeen = now;
    this.group.lastForwarder.set(
      tupleKey(f.protocol, f.target, f.targetPort, f.srcSeen, f.srcPortSeen),
      this,
    );
    const out = rewritePacket(pkt, {
      src: f.srcSeen,
      srcPort: f.srcPortSeen,
      dst: f.target,
      dstPort: f.targetPort,
    });
    if (rst) this.remove(f);
    const nat = `${formatIpv4(pkt.ip.src)}:${sport} > ${formatIpv4(pkt.ip.dst)}:${dport} -> ${formatIpv4(f.srcSeen)}:${f.srcPortSeen} > ${formatIpv4(f.target)}:${f.targetPort}`;
    return this.send(out, iface, `${what}; ${note}`, nat);
  }

  /** return_path last-forwarder: the reply goes, unchanged, to the node that last forwarded its tuple. */
  private handOff(pkt: Packet, iface: string, what: string, to: NlbNode): NodeOutput {
    const summary = `${what}; reply: return_path last-forwarder: ${to.name} forwarded this tuple last`;
    const mine = this.o.interfaces.find((i) => i.name === iface);
    let nexthop: number | undefined;
    for (const a of mine?.addresses ?? [])
      for (const i of to.o.interfaces)
        for (const b of i.addresses)
          if (a.len === b.len && prefixOf(a.addr, a.len) === prefixOf(b.addr, b.len)) nexthop ??= b.addr;
    if (nexthop === undefined)
      return {
        sent: [],
        hops: [hop(this.name, iface, summary, `dropped: ${to.name} is not on the segment of ${iface}`)],
      };
    return {
      sent: [{ iface, packet: pkt, nexthop }],
      hops: [hop(this.name, iface, summary, `handed to ${to.name} (${formatIpv4(nexthop)}) on ${iface}`)],
    };
  }

  private send(out: Packet, iface: string, summary: string, nat: string): NodeOutput {
    const rt = this.routes.lookup(out.ip.dst);
    if (!rt)
      return {
        sent: [],
        hops: [hop(this.name, iface, summary, `dropped: no route to ${formatIpv4(out.ip.dst)}`)],
      };
    return {
      sent: [{ iface: rt.iface, packet: out }],
      hops: [hop(this.name, iface, summary, `left ${rt.iface}`, { nat })],
    };
  }

  private allocate(protocol: number, target: number, tport: number): number {
    let p = this.nextPort.get(target) ?? 1024;
    for (let i = 0; i < 64512; i++) {
      if (!this.byTarget.has(tupleKey(protocol, target, tport, this.address, p))) break;
      p = p >= 65535 ? 1024 : p + 1;
    }
    this.nextPort.set(target, p >= 65535 ? 1024 : p + 1);
    return p;
  }

  private expire(now: number): void {
    const t = this.o.idleTimeout ?? { tcp: 350, udp: 120 };
    for (const f of this.byClient.values())
      if (now - f.lastSeen >= (f.protocol === IPPROTO_TCP ? t.tcp : t.udp)) this.remove(f);
  }

  private remove(f: NlbFlow): void {
    this.byClient.delete(tupleKey(f.protocol, f.client, f.clientPort, this.address, f.listenerPort));
    const tkey = tupleKey(f.protocol, f.target, f.targetPort, f.srcSeen, f.srcPortSeen);
    if (this.byTarget.get(tkey) === f) this.byTarget.delete(tkey);
  }
}

function prefixOf(addr: number, len: number): number {
  return len === 0 ? 0 : (addr & (~0 << (32 - len))) >>> 0;
}

function proto(p: Packet): string {
  return p.ip.protocol === IPPROTO_TCP ? "TCP" : "UDP";
}

function readGroups(ctx: DeviceContext, c: Readonly<Record<string, unknown>>): NlbTargetGroup[] {
  const raw = at(c, ["target_groups"]);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    ctx.fail(["target_groups"], "DEVICE_CONFIG", "expected a mapping of target group names");
  return Object.keys(raw as object).map((name) => {
    const p = ["target_groups", name];
    const type = cfgString(ctx, c, [...p, "type"], "instance");
    if (type !== "instance" && type !== "ip")
      ctx.fail([...p, "type"], "DEVICE_CONFIG", `expected instance or ip, got "${type}"`);
    const port = cfgInt(ctx, c, [...p, "port"], -1, 1, 65535);
    if (port < 0) ctx.fail([...p, "port"], "DEVICE_CONFIG", "target group needs a port");
    const targets = cfgList(ctx, c, [...p, "targets"], true).map((_, i) => ({
      address: cfgAddr(ctx, c, [...p, "targets", i, "address"]),
      zone: cfgString(ctx, c, [...p, "targets", i, "zone"]),
      port:
        at(c, [...p, "targets", i, "port"]) === undefined
          ? undefined
          : cfgInt(ctx, c, [...p, "targets", i, "port"], 0, 1, 65535),
    }));
    return { name, type: type as "instance" | "ip", port, targets };
  });
}

export const NLB_NODE_KIND: DeviceKind = {
  kind: "aws-nlb-node",
  summary:
    "one zone's node of an AWS Network Load Balancer (TCP/UDP/TCP_UDP listeners, instance or IP targets)",
  keys: [
    "address",
    "zone",
    "cross_zone",
    "listeners",
    "target_groups",
    "routes",
    "idle_timeout",
    "hash_seed",
    "load_balancer",
    "return_path",
  ],
  create(spec, ctx) {
    const c = spec.config;
    const groups = readGroups(ctx, c);
    const listeners = cfgList(ctx, c, ["listeners"], true).map((_, i) => {
      const p = ["listeners", i];
      const protocol = cfgString(ctx, c, [...p, "protocol"], "TCP");
      if (protocol !== "TCP" && protocol !== "UDP" && protocol !== "TCP_UDP")
        ctx.fail([...p, "protocol"], "DEVICE_CONFIG", `expected TCP, UDP or TCP_UDP, got "${protocol}"`);
      const targetGroup = cfgString(ctx, c, [...p, "target_group"]);
      if (!groups.some((g) => g.name === targetGroup))
        ctx.fail([...p, "target_group"], "DEVICE_CONFIG", `no target group "${targetGroup}"`);
      return {
        port: cfgInt(ctx, c, [...p, "port"], 0, 1, 65535),
        protocol: protocol as NlbProtocol,
        targetGroup,
      };
    });
    const returnPath = cfgString(ctx, c, ["return_path"], "same-zone");
    if (returnPath !== "same-zone" && returnPath !== "last-forwarder")
      ctx.fail(["return_path"], "DEVICE_CONFIG", `expected same-zone or last-forwarder, got "${returnPath}"`);
    const lb = cfgString(ctx, c, ["load_balancer"], "nlb");
    return new NlbNode({
      name: spec.name,
      interfaces: spec.interfaces,
      address: cfgAddr(ctx, c, ["address"], primaryAddress(spec.interfaces)),
      zone: cfgString(ctx, c, ["zone"], "a"),
      crossZone: cfgBool(ctx, c, ["cross_zone"], false),
      listeners,
      targetGroups: groups,
      routes: cfgRoutes(ctx, c, ["routes"], spec.interfaces),
      returnPath: returnPath as NlbReturnPath,
      group: ctx.shared ? ctx.shared(`aws-nlb/${lb}`, () => new NlbGroup()) : new NlbGroup(),
      hashSeed: cfgInt(ctx, c, ["hash_seed"], ctx.prng.seed, 0, 0xffffffff),
      idleTimeout: {
        tcp: cfgNumber(ctx, c, ["idle_timeout", "tcp"], 350),
        udp: cfgNumber(ctx, c, ["idle_timeout", "udp"], 120),
      },
    });
  },
};
