import { describe, expect, it } from "vitest";
import { RouteTableRouter, ROUTE_TABLE_KIND } from "../../../../src/sim/net/devices/route_table";
import { parseStaticRoute, plainDeviceContext } from "../../../../src/sim/net/devices/common";
import type { StaticRoute } from "../../../../src/sim/net/devices/common";
import { Prng } from "../../../../src/util/prng";
import { ICMP_TIME_EXCEEDED } from "../../../../src/wire/packet";
import { flow, iface, only, pkt } from "./helpers";

function route(text: string): StaticRoute {
  const r = parseStaticRoute(text);
  if (typeof r === "string") throw new Error(r);
  return r;
}

// Seed 001's VPC router: the default route points back at the self-built NAT host on the same subnet.
const vpc = () =>
  new RouteTableRouter({
    name: "vpc-router",
    interfaces: [iface("eth0", "192.168.100.1/24"), iface("eth1", "198.51.100.1/24")],
    routes: [route("0.0.0.0/0 dev eth0"), route("192.168.100.104/32 dev eth0")],
  });

describe("route-table router", () => {
  it("forwards by the longest prefix and decrements the TTL", () => {
    const r = vpc();
    const out = only(
      r.receive(
        pkt("198.51.100.7.80 > 192.168.100.105.1836: Flags [S.], seq 1, ack 2, win 512, length 0"),
        "eth1",
        0,
      ),
    );
    expect(out.iface, "connected /24 on eth0").toBe("eth0");
    expect(out.packet.ip.ttl, "got TTL, want 63").toBe(63);
    expect(out.packet.ipChecksum).toBe("correct");
  });

  it("sends a packet back out of the interface it came in on when the route says so (seed 001 loop)", () => {
    const r = vpc();
    const out = only(
      r.receive(pkt("192.168.100.105.1914 > 2.2.2.2.80: Flags [F], seq 1, win 512, length 0"), "eth0", 0),
    );
    expect(out.iface).toBe("eth0");
    expect(flow(out.packet)).toBe("192.168.100.105:1914 > 2.2.2.2:80");
  });

  it("drops at TTL 1 without ICMP by default, with ICMP time exceeded when asked", () => {
    const p = { ...pkt("192.168.100.105.1914 > 2.2.2.2.80: Flags [F], seq 1, win 512, length 0") };
    const low = { ...p, ip: { ...p.ip, ttl: 1 } };
    const quiet = vpc().receive(low, "eth0", 0);
    expect(quiet.sent).toHaveLength(0);
    expect(quiet.hops[0].fate).toBe("dropped: TTL expired");
    const loud = new RouteTableRouter({
      name: "r",
      interfaces: [iface("eth0", "192.168.100.1/24")],
      routes: [route("0.0.0.0/0 dev eth0")],
      icmpTimeExceeded: true,
    }).receive(low, "eth0", 0);
    const icmp = only(loud).packet;
    expect(icmp.l4.kind === "icmp" && icmp.l4.type, "got ICMP type, want time exceeded").toBe(
      ICMP_TIME_EXCEEDED,
    );
    expect(flow(icmp)).toBe("192.168.100.1:0 > 192.168.100.105:0");
  });

  it("drops what it has no route for", () => {
    const r = new RouteTableRouter({ name: "r", interfaces: [iface("eth0", "10.0.0.1/24")], routes: [] });
    const out = r.receive(pkt("10.0.0.5.1 > 8.8.8.8.53: UDP, length 10"), "eth0", 0);
    expect(out.sent).toHaveLength(0);
    expect(out.hops[0].fate).toBe("dropped: no route to 8.8.8.8");
  });

  it("is built from topology keys, and a bad route names its key", () => {
    const ctx = plainDeviceContext("r", new Prng(1));
    const spec = { name: "r", kind: "route-table", interfaces: [iface("eth0", "10.0.0.1/24")] };
    const node = ROUTE_TABLE_KIND.create({ ...spec, config: { routes: ["default dev eth0"] } }, ctx);
    expect(only(node.receive(pkt("10.0.0.5.1 > 8.8.8.8.53: UDP, length 10"), "eth0", 0)).iface).toBe("eth0");
    expect(() => ROUTE_TABLE_KIND.create({ ...spec, config: { routes: ["default dev eth9"] } }, ctx)).toThrow(
      /routes\.0: no interface "eth9"/,
    );
  });
});
