/**
 * The event-driven engine of `ctsim run`: a simulated clock and a queue of events (a packet arriving at a node's
 * interface, a node's timer, a traffic action), handled in a deterministic order — by time, then by the order in
 * which they were scheduled. Nodes (./types.ts NetNode: Linux hosts, device models) answer with the packets they
 * send; the engine carries each over the link attached to the interface (point-to-point, or a shared segment
 * where the frame goes to the station whose MAC is the Ethernet destination, or that owns the next hop, or the
 * IP destination) after the link's delay.
 *
 * Not a kernel file: this is the "wire" between emulated hosts. TTL handling is the nodes' job (Linux hosts
 * decrement it in ip_forward and send ICMP time exceeded). The engine only watches for forwarding loops: the same
 * packet (IPv4 identity: addresses, protocol, IP id, ports, TCP seq/ack/flags — not TTL or checksum) sent again
 * onto a link by a node that sent it there before, with a lower TTL, is reported once with its hop list (a
 * router that hairpins a packet back out of the interface it came in on is not a loop); and a packet identity that crosses
 * links more than `hopLimit` times (a loop through devices that do not decrement the TTL) is dropped there and
 * reported, so a run always ends.
 *
 * Leaves out on purpose: link bandwidth, queueing and loss, MTU, ARP (neighbours are resolved from the topology),
 * link-layer broadcast storms (a broadcast frame reaches every other station once).
 */
import type { Packet } from "../../wire/packet";
import { formatIpv4 } from "../../wire/addr";
import type { HopRecord, NetNode, NodeOutput, SentPacket } from "./types";

export interface LinkEnd {
  readonly node: string;
  readonly iface: string;
  /** The interface's MAC (lowercase colon form), when known. */
  readonly mac?: string;
  /** The interface's addresses, for next-hop resolution on segments. */
  readonly addresses?: readonly number[];
}

export interface LinkSpec {
  readonly name: string;
  readonly ends: readonly LinkEnd[];
  /** One-way delay in seconds (default 0). */
  readonly delay?: number;
}

export interface EngineOptions {
  /** Link crossings allowed per packet identity before the engine drops it as looping (default 512). */
  readonly hopLimit?: number;
  /** Events handled before the run stops (default 50 million). */
  readonly maxEvents?: number;
  /** Keep every hop and wire crossing in the result (default true; the benchmark turns it off). */
  readonly record?: boolean;
}

/** One packet crossing a link. */
export interface WireCrossing {
  readonly time: number;
  readonly link: string;
  readonly from: { readonly node: string; readonly iface: string };
  /** Receivers (none when no station took the frame). */
  readonly to: readonly { readonly node: string; readonly iface: string }[];
  readonly packet: Packet;
  /** Id of the engine event that produced it. */
  readonly cause: number;
}

/** What one node did at one event. */
export interface HopEvent {
  /** Order of the event (0, 1, ...). */
  readonly seq: number;
  readonly time: number;
  readonly node: string;
  /** "packet": arrival over a link or an injection; "timer": a wake; "action": a traffic action. */
  readonly kind: "packet" | "timer" | "action";
  readonly link?: string;
  /** The interface a packet arrived on. */
  readonly iface?: string;
  /** For a packet that crossed a link: `seq` of the event whose output sent it (causality, for checks). */
  readonly cause?: number;
  readonly packet?: Packet;
  readonly label?: string;
  readonly hops: readonly HopRecord[];
  readonly sent: readonly SentPacket[];
}

export interface LoopCrossing {
  readonly time: number;
  readonly link: string;
  readonly from: string;
  readonly to: string;
  readonly ttl: number;
}

export interface LoopReport {
  /** packetIdentity() of the looping packet. */
  readonly id: string;
  /** `tcp 192.168.100.105:1914 > 2.2.2.2:80 [F] id 10270`. */
  readonly packet: string;
  readonly reason: "ttl-decreasing" | "hop-limit";
  /** The crossings of this packet identity, in order (up to the first 300). */
  readonly hops: readonly LoopCrossing[];
  /** Crossings in total. */
  count: number;
}

export interface RunResult {
  readonly events: HopEvent[];
  readonly wire: WireCrossing[];
  readonly loops: LoopReport[];
  /** Simulated time of the last event handled. */
  readonly endTime: number;
  readonly eventCount: number;
  readonly stoppedBy: "idle" | "until" | "max-events";
}

type Ev =
  | {
      readonly kind: "packet";
      readonly node: string;
      readonly iface: string;
      readonly pkt: Packet;
      readonly link?: string;
      readonly cause?: number;
      readonly label?: string;
    }
  | { readonly kind: "timer"; readonly node: string }
  | {
      readonly kind: "action";
      readonly node: string;
      readonly label: string;
      readonly run: (now: number) => NodeOutput;
    };

interface Queued {
  readonly time: number;
  readonly order: number;
  readonly ev: Ev;
}

/** Binary min-heap on (time, order). */
class EventQueue {
  private readonly a: Queued[] = [];
  get size(): number {
    return this.a.length;
  }
  push(q: Queued): void {
    const a = this.a;
    a.push(q);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  peek(): Queued | undefined {
    return this.a[0];
  }
  pop(): Queued | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l], a[m])) m = l;
        if (r < a.length && less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function less(x: Queued, y: Queued): boolean {
  return x.time < y.time || (x.time === y.time && x.order < y.order);
}

const BROADCAST = "ff:ff:ff:ff:ff:ff";
const ZERO_MAC = "00:00:00:00:00:00";

/** The identity of a packet for loop detection: every header field a router does not change. */
export function packetIdentity(p: Packet): string {
  const l4 = p.l4;
  let s = `${p.ip.src}>${p.ip.dst}/${p.ip.protocol}#${p.ip.id}`;
  if (l4.kind === "tcp") s += `:${l4.srcPort}>${l4.dstPort}s${l4.seq}a${l4.ack}f${l4.flags}`;
  else if (l4.kind === "udp") s += `:${l4.srcPort}>${l4.dstPort}`;
  else if (l4.kind === "icmp") s += `:${l4.type}/${l4.code}/${l4.restOfHeader}`;
  return s;
}

function identityText(p: Packet): string {
  const l4 = p.l4;
  const a = formatIpv4(p.ip.src);
  const b = formatIpv4(p.ip.dst);
  if (l4.kind === "tcp")
    return `tcp ${a}:${l4.srcPort} > ${b}:${l4.dstPort} flags 0x${l4.flags.toString(16)} id ${p.ip.id}`;
  if (l4.kind === "udp") return `udp ${a}:${l4.srcPort} > ${b}:${l4.dstPort} id ${p.ip.id}`;
  if (l4.kind === "icmp") return `icmp ${a} > ${b} type ${l4.type}/${l4.code} id ${p.ip.id}`;
  return `proto ${p.ip.protocol} ${a} > ${b} id ${p.ip.id}`;
}

interface Seen {
  readonly ttlByLink: Map<string, number>;
  readonly hops: LoopCrossing[];
  count: number;
  loop?: LoopReport;
}

interface Link {
  readonly spec: LinkSpec;
  readonly delay: number;
}

export class NetEngine {
  private readonly nodes = new Map<string, NetNode>();
  /** `node/iface` -> link. */
  private readonly attach = new Map<string, Link>();
  private readonly queue = new EventQueue();
  private order = 0;
  private readonly wakeAt = new Map<string, number>();
  private readonly seen = new Map<string, Seen>();
  private readonly hopLimit: number;
  private readonly maxEvents: number;
  private readonly record: boolean;
  private readonly result: { events: HopEvent[]; wire: WireCrossing[]; loops: LoopReport[] } = {
    events: [],
    wire: [],
    loops: [],
  };
  private eventCount = 0;
  now = 0;

  constructor(nodes: readonly NetNode[], links: readonly LinkSpec[], opts: EngineOptions = {}) {
    this.hopLimit = opts.hopLimit ?? 512;
    this.maxEvents = opts.maxEvents ?? 50_000_000;
    this.record = opts.record ?? true;
    for (const n of nodes) {
      if (this.nodes.has(n.name)) throw new Error(`node "${n.name}" given twice`);
      this.nodes.set(n.name, n);
    }
    for (const spec of links) {
      const link: Link = { spec, delay: spec.delay ?? 0 };
      for (const e of spec.ends) {
        const node = this.nodes.get(e.node);
        if (!node) throw new Error(`link ${spec.name}: unknown node "${e.node}"`);
        if (!node.interfaces.includes(e.iface))
          throw new Error(`link ${spec.name}: node "${e.node}" has no interface "${e.iface}"`);
        const k = `${e.node}/${e.iface}`;
        if (this.attach.has(k))
          throw new Error(`link ${spec.name}: ${k} is already on link ${this.attach.get(k)!.spec.name}`);
        this.attach.set(k, link);
      }
    }
    for (const n of nodes) this.scheduleWake(n);
  }

  node(name: string): NetNode | undefined {
    return this.nodes.get(name);
  }

  /** A packet arrives at `node`'s `iface` at `time` (as if from the wire); `label` names it in the events. */
  inject(time: number, node: string, iface: string, pkt: Packet, label?: string): void {
    this.push(time, {
      kind: "packet",
      node,
      iface,
      pkt,
      link: this.attach.get(`${node}/${iface}`)?.spec.name,
      ...(label !== undefined ? { label } : {}),
    });
  }

  /** A traffic action on a node (connect, send, close, abort) at `time`; its output is sent like any other. */
  schedule(time: number, node: string, label: string, run: (now: number) => NodeOutput): void {
    this.push(time, { kind: "action", node, label, run });
  }

  /** Handles events until the queue is empty, the next event is after `until`, or maxEvents is reached. */
  run(opts: { until?: number; onEvent?: (e: HopEvent) => void } = {}): RunResult {
    let stoppedBy: RunResult["stoppedBy"] = "idle";
    for (;;) {
      const top = this.queue.peek();
      if (!top) break;
      if (opts.until !== undefined && top.time > opts.until) {
        stoppedBy = "until";
        break;
      }
      if (this.eventCount >= this.maxEvents) {
        stoppedBy = "max-events";
        break;
      }
      this.queue.pop();
      this.handle(top, opts.onEvent);
    }
    return {
      events: this.result.events,
      wire: this.result.wire,
      loops: this.result.loops,
      endTime: this.now,
      eventCount: this.eventCount,
      stoppedBy,
    };
  }

  private push(time: number, ev: Ev): void {
    this.queue.push({ time, order: this.order++, ev });
  }

  private scheduleWake(n: NetNode): void {
    const t = n.nextWake?.();
    if (t === undefined) {
      this.wakeAt.delete(n.name);
      return;
    }
    if (this.wakeAt.get(n.name) === t) return;
    this.wakeAt.set(n.name, t);
    this.push(Math.max(t, this.now), { kind: "timer", node: n.name });
  }

  private handle(q: Queued, onEvent?: (e: HopEvent) => void): void {
    const ev = q.ev;
    const node = this.nodes.get(ev.node);
    if (!node) throw new Error(`event for unknown node "${ev.node}"`);
    if (q.time > this.now) this.now = q.time;
    const now = this.now;
    let out: NodeOutput;
    if (ev.kind === "timer") {
      if (this.wakeAt.get(ev.node) !== q.time) return; // superseded
      this.wakeAt.delete(ev.node);
      if (!node.wake) return;
      out = node.wake(now);
    } else if (ev.kind === "action") out = ev.run(now);
    else out = node.receive(ev.pkt, ev.iface, now);
    const seq = this.eventCount++;
    const e: HopEvent = {
      seq,
      time: now,
      node: ev.node,
      kind: ev.kind,
      ...(ev.kind === "packet"
        ? {
            packet: ev.pkt,
            iface: ev.iface,
            ...(ev.link ? { link: ev.link } : {}),
            ...(ev.cause !== undefined ? { cause: ev.cause } : {}),
            ...(ev.label !== undefined ? { label: ev.label } : {}),
          }
        : {}),
      ...(ev.kind === "action" ? { label: ev.label } : {}),
      hops: out.hops,
      sent: out.sent,
    };
    if (this.record) this.result.events.push(e);
    onEvent?.(e);
    for (const s of out.sent) this.transmit(node, s, now, seq);
    this.scheduleWake(node);
  }

  private transmit(from: NetNode, s: SentPacket, now: number, cause: number): void {
    const link = this.attach.get(`${from.name}/${s.iface}`);
    if (!link) {
      if (this.record)
        this.result.wire.push({
          time: now,
          link: "-",
          from: { node: from.name, iface: s.iface },
          to: [],
          packet: s.packet,
          cause,
        });
      return;
    }
    const to = this.receivers(link, from.name, s);
    const name = link.spec.name;
    if (this.record)
      this.result.wire.push({
        time: now,
        link: name,
        from: { node: from.name, iface: s.iface },
        to: to.map((e) => ({ node: e.node, iface: e.iface })),
        packet: s.packet,
        cause,
      });
    for (const end of to) {
      if (!this.watch(s.packet, name, from.name, end.node, now)) continue;
      this.push(now + link.delay, {
        kind: "packet",
        node: end.node,
        iface: end.iface,
        pkt: s.packet,
        link: name,
        cause,
      });
    }
  }

  /** Who receives a frame sent on a link (see the header). */
  private receivers(link: Link, fromNode: string, s: SentPacket): LinkEnd[] {
    const ends = link.spec.ends;
    const others = ends.filter((e) => !(e.node === fromNode && e.iface === s.iface));
    const dmac = s.packet.link?.dst;
    if (dmac === BROADCAST) return others;
    if (dmac && dmac !== ZERO_MAC) {
      const m = others.find((e) => e.mac === dmac);
      if (m) return [m];
    }
    if (s.nexthop !== undefined) {
      const m = others.find((e) => e.addresses?.includes(s.nexthop!));
      if (m) return [m];
    }
    const m = others.find((e) => e.addresses?.includes(s.packet.ip.dst));
    if (m) return [m];
    return others.length === 1 ? others : [];
  }

  /** Loop watch; false when the packet must not be delivered (hop limit). */
  private watch(p: Packet, link: string, from: string, to: string, now: number): boolean {
    const id = packetIdentity(p);
    let s = this.seen.get(id);
    if (!s) {
      s = { ttlByLink: new Map(), hops: [], count: 0 };
      this.seen.set(id, s);
    }
    s.count++;
    const crossing: LoopCrossing = { time: now, link, from, to, ttl: p.ip.ttl };
    if (s.hops.length < 300 && (this.record || s.loop)) s.hops.push(crossing);
    const where = `${link}\u0000${from}`;
    const prev = s.ttlByLink.get(where);
    s.ttlByLink.set(where, p.ip.ttl);
    if (s.loop) s.loop.count = s.count;
    else if (prev !== undefined && p.ip.ttl < prev) {
      s.loop = { id, packet: identityText(p), reason: "ttl-decreasing", hops: s.hops, count: s.count };
      this.result.loops.push(s.loop);
    }
    if (s.count > this.hopLimit) {
      if (!s.loop) {
        s.loop = { id, packet: identityText(p), reason: "hop-limit", hops: s.hops, count: s.count };
        this.result.loops.push(s.loop);
      } else (s.loop as { reason: LoopReport["reason"] }).reason = "hop-limit";
      return false;
    }
    return true;
  }
}
