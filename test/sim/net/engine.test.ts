/**
 * The engine: deterministic order, link delay, shared segments by MAC / next hop, TTL expiry by Linux hosts,
 * loop detection (TTL falling, and the hop limit for a device that never decrements it).
 */
import { describe, expect, it } from "vitest";
import { NetEngine, packetIdentity } from "../../../src/sim/net/engine";
import type { NetNode, NodeOutput } from "../../../src/sim/net/types";
import type { Packet } from "../../../src/wire/packet";
import { parseTcpdumpText } from "../../../src/wire/text";
import { ip, linuxNode, wire } from "./helpers";

function packet(text: string): Packet {
  const r = parseTcpdumpText(`${text}\n`);
  if (r.packets.length !== 1) throw new Error(`bad packet text: ${text}`);
  return r.packets[0];
}

/** A device that sends every packet back out of the other interface unchanged (no TTL decrement). */
function reflector(name: string, ifaces: [string, string]): NetNode & { seen: number } {
  const n = {
    name,
    interfaces: ifaces,
    seen: 0,
    receive(pkt: Packet, iface: string): NodeOutput {
      n.seen++;
      const out = iface === ifaces[0] ? ifaces[1] : ifaces[0];
      return {
        sent: [{ iface: out, packet: pkt }],
        hops: [{ node: name, inIface: iface, summary: "reflect", fate: `left ${out}` }],
      };
    },
  };
  return n;
}

describe("engine", () => {
  it("orders events by time, then by scheduling order, and applies link delay", () => {
    const a = reflector("a", ["x", "y"]);
    const b = reflector("b", ["x", "y"]);
    const eng = new NetEngine(
      [a, b],
      [
        {
          name: "ab",
          ends: [
            { node: "a", iface: "y" },
            { node: "b", iface: "x" },
          ],
          delay: 0.25,
        },
      ],
      { hopLimit: 3 },
    );
    eng.inject(1, "a", "x", packet("IP 192.0.2.1.1000 > 192.0.2.2.80: Flags [S], seq 1, win 512, length 0"));
    eng.schedule(1, "b", "noop", () => ({ sent: [], hops: [] }));
    const r = eng.run();
    expect(r.events.map((e) => `${e.time}:${e.node}:${e.kind}`)).toEqual([
      "1:a:packet",
      "1:b:action",
      "1.25:b:packet",
    ]);
    expect(r.stoppedBy).toBe("idle");
  });

  it("stops a loop through devices that never decrement the TTL at the hop limit and reports it", () => {
    const a = reflector("a", ["x", "y"]);
    const b = reflector("b", ["x", "y"]);
    const eng = new NetEngine(
      [a, b],
      [
        {
          name: "l1",
          ends: [
            { node: "a", iface: "y" },
            { node: "b", iface: "x" },
          ],
        },
        {
          name: "l2",
          ends: [
            { node: "b", iface: "y" },
            { node: "a", iface: "x" },
          ],
        },
      ],
      { hopLimit: 10 },
    );
    eng.inject(0, "a", "x", packet("IP 192.0.2.1.1000 > 192.0.2.2.80: Flags [S], seq 1, win 512, length 0"));
    const r = eng.run();
    expect(r.loops.length).toBe(1);
    expect(r.loops[0].reason).toBe("hop-limit");
    expect(r.loops[0].hops.length, "hop list").toBe(11);
    expect(a.seen + b.seen, "deliveries: the injection plus 10 crossings").toBe(11);
  });

  it("detects a forwarding loop between two Linux routers and lets TTL expiry end it with ICMP time exceeded", () => {
    const hosts = [
      {
        name: "src",
        ifaces: [{ name: "eth0", mac: "02:00:00:00:00:01", addr: "192.0.2.1/24" }],
        routes: ["default via 192.0.2.2 dev eth0"],
      },
      {
        name: "r1",
        forward: true,
        ifaces: [
          { name: "eth0", mac: "02:00:00:00:00:02", addr: "192.0.2.2/24" },
          { name: "eth1", mac: "02:00:00:00:01:01", addr: "198.51.100.1/24" },
        ],
        routes: ["default via 198.51.100.2 dev eth1"],
      },
      {
        name: "r2",
        forward: true,
        ifaces: [{ name: "eth0", mac: "02:00:00:00:01:02", addr: "198.51.100.2/24" }],
        routes: ["default via 198.51.100.1 dev eth0", "192.0.2.0/24 via 198.51.100.1 dev eth0"],
      },
    ];
    const w = wire(hosts, [
      ["src", "eth0", "r1", "eth0"],
      ["r1", "eth1", "r2", "eth0"],
    ]);
    const nodes = hosts.map((h) => linuxNode(h, w.neighbours));
    const eng = new NetEngine(nodes, w.links);
    eng.inject(
      0,
      "r1",
      "eth0",
      packet("IP 192.0.2.1.1000 > 203.0.113.9.80: Flags [S], seq 1, win 512, length 0"),
    );
    const r = eng.run();
    expect(r.loops.length, "one loop").toBe(1);
    expect(r.loops[0].reason).toBe("ttl-decreasing");
    const ttls = r.wire
      .filter((c) => c.link === "l1" && c.packet.l4.kind === "tcp")
      .map((c) => c.packet.ip.ttl);
    expect(ttls[0]).toBe(63);
    expect(ttls.length, "crossings of the r1-r2 link until TTL ran out").toBe(63);
    expect(ttls.at(-1), "last crossing of the loop link").toBe(1);
    const icmp = r.wire.filter((c) => c.packet.l4.kind === "icmp");
    expect(icmp.length, "ICMP time exceeded sent back").toBeGreaterThan(0);
    const last = icmp.at(-1)!;
    expect(last.packet.ip.dst).toBe(ip("192.0.2.1"));
    expect(last.to.map((t) => t.node)).toEqual(["src"]);
    expect(last.packet.l4.kind === "icmp" && last.packet.l4.type).toBe(11);
  });

  it("delivers on a shared segment to the station owning the MAC or the next hop, and drops otherwise", () => {
    const sink = (name: string) => ({
      name,
      interfaces: ["e"],
      got: 0,
      receive() {
        this.got++;
        return { sent: [], hops: [] };
      },
    });
    const a = { name: "a", interfaces: ["e"], receive: () => ({ sent: [], hops: [] }) };
    const b = sink("b");
    const c = sink("c");
    const eng = new NetEngine(
      [a, b, c],
      [
        {
          name: "seg",
          ends: [
            { node: "a", iface: "e", mac: "02:00:00:00:00:0a" },
            { node: "b", iface: "e", mac: "02:00:00:00:00:0b", addresses: [ip("192.0.2.11")] },
            { node: "c", iface: "e", mac: "02:00:00:00:00:0c", addresses: [ip("192.0.2.12")] },
          ],
        },
      ],
    );
    const p = packet("IP 192.0.2.10.1 > 203.0.113.1.2: Flags [S], seq 1, win 1, length 0");
    eng.schedule(0, "a", "send", () => ({
      sent: [
        {
          iface: "e",
          packet: {
            ...p,
            link: { src: "02:00:00:00:00:0a", dst: "02:00:00:00:00:0c", ethertype: 0x800, vlans: [] },
          },
        },
        { iface: "e", packet: p, nexthop: ip("192.0.2.11") },
        { iface: "e", packet: p },
      ],
      hops: [],
    }));
    const r = eng.run();
    expect([b.got, c.got]).toEqual([1, 1]);
    expect(r.wire.map((w) => w.to.map((t) => t.node).join(","))).toEqual(["c", "b", ""]);
  });

  it("packet identity ignores TTL and checksum", () => {
    const p = packet("IP 192.0.2.1.1 > 192.0.2.2.2: Flags [F], seq 5, win 1, length 0");
    expect(packetIdentity({ ...p, ip: { ...p.ip, ttl: 3, checksum: 99 } })).toBe(packetIdentity(p));
    expect(packetIdentity({ ...p, ip: { ...p.ip, id: 7 } })).not.toBe(packetIdentity(p));
  });
});
