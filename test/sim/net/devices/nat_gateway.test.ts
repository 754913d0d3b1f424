import { describe, expect, it } from "vitest";
import { NatGateway, NAT_GATEWAY_KIND } from "../../../../src/sim/net/devices/nat_gateway";
import { parseStaticRoute, plainDeviceContext } from "../../../../src/sim/net/devices/common";
import type { StaticRoute } from "../../../../src/sim/net/devices/common";
import { Prng } from "../../../../src/util/prng";
import { TCP_ACK, TCP_RST } from "../../../../src/wire/packet";
import { flow, iface, ip, only, pkt } from "./helpers";

const natgw = (o: Partial<ConstructorParameters<typeof NatGateway>[0]> = {}) =>
  new NatGateway({
    name: "natgw",
    interfaces: [iface("eth0", "10.0.0.7/24")],
    inside: "eth0",
    outside: "eth0",
    address: ip("10.0.0.7"),
    routes: [parseStaticRoute("default dev eth0") as StaticRoute],
    prng: new Prng(1),
    ...o,
  });

const syn = (src: string, dst: string) => pkt(`${src} > ${dst}: Flags [S], seq 100, win 512, length 0`);

describe("NAT gateway: outbound SNAT", () => {
  it("translates a SYN to its address and a port from the bottom of the range", () => {
    const g = natgw();
    const out = only(g.receive(syn("10.0.0.20.40000", "10.0.0.99.443"), "eth0", 0));
    expect(flow(out.packet), "source port is not preserved").toBe("10.0.0.7:1024 > 10.0.0.99:443");
    expect(out.packet.l4Checksum).toBe("correct");
  });

  it("reverses the mapping for the reply", () => {
    const g = natgw();
    g.receive(syn("10.0.0.20.40000", "10.0.0.99.443"), "eth0", 0);
    const back = only(
      g.receive(
        pkt("10.0.0.99.443 > 10.0.0.7.1024: Flags [S.], seq 7, ack 101, win 512, length 0"),
        "eth0",
        1,
      ),
    );
    expect(flow(back.packet)).toBe("10.0.0.99:443 > 10.0.0.20:40000");
  });

  it("reuses one port towards two destinations (seed 004: 55,000 connections per unique destination)", () => {
    const g = natgw();
    const a = only(g.receive(syn("10.0.0.20.40000", "10.0.0.98.6000"), "eth0", 0)).packet;
    const b = only(g.receive(syn("10.0.0.20.40001", "10.0.0.99.6000"), "eth0", 0)).packet;
    expect(flow(a)).toBe("10.0.0.7:1024 > 10.0.0.98:6000");
    expect(flow(b), "same public port towards another destination").toBe("10.0.0.7:1024 > 10.0.0.99:6000");
    const c = only(g.receive(syn("10.0.0.20.40002", "10.0.0.99.6000"), "eth0", 0)).packet;
    expect(flow(c), "but not twice towards the same one").toBe("10.0.0.7:1025 > 10.0.0.99:6000");
  });

  it("runs out of ports per destination (ErrorPortAllocation) and not before", () => {
    const g = natgw({ portRange: [1024, 1025] });
    g.receive(syn("10.0.0.20.1", "10.0.0.99.80"), "eth0", 0);
    g.receive(syn("10.0.0.20.2", "10.0.0.99.80"), "eth0", 0);
    const third = g.receive(syn("10.0.0.20.3", "10.0.0.99.80"), "eth0", 0);
    expect(third.sent).toHaveLength(0);
    expect(g.metrics.ErrorPortAllocation).toBe(1);
    expect(only(g.receive(syn("10.0.0.20.3", "10.0.0.98.80"), "eth0", 0)).packet.ip.dst).toBe(
      ip("10.0.0.98"),
    );
  });

  it("with random allocation stays within the range and unique per destination", () => {
    const g = natgw({ portAllocation: "random", portRange: [2000, 2099] });
    const ports = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const p = only(g.receive(syn(`10.0.0.20.${3000 + i}`, "10.0.0.99.80"), "eth0", 0)).packet;
      if (p.l4.kind !== "tcp") throw new Error("not tcp");
      expect(p.l4.srcPort).toBeGreaterThanOrEqual(2000);
      expect(p.l4.srcPort).toBeLessThanOrEqual(2099);
      ports.add(p.l4.srcPort);
    }
    expect(ports.size, "got duplicate ports towards one destination").toBe(100);
  });
});

describe("NAT gateway: no entry", () => {
  it("answers a SYN-ACK from the inside with an RST that seems to come from the remote peer (seed 000)", () => {
    const g = natgw();
    const synack = pkt(
      "10.0.0.20.30080 > 198.51.100.10.40000: Flags [S.], seq 5000, ack 101, win 512, length 0",
    );
    const out = g.receive(synack, "eth0", 0);
    const rst = only(out).packet;
    expect(flow(rst), "RST from the client's address to the node").toBe(
      "198.51.100.10:40000 > 10.0.0.20:30080",
    );
    expect(rst.l4.kind === "tcp" && rst.l4.flags, "got flags, want RST only").toBe(TCP_RST);
    expect(rst.l4.kind === "tcp" && rst.l4.seq, "seq = the segment's ack").toBe(101);
    expect(out.hops[0].fate).toMatch(/RST sent to 10\.0\.0\.20 as 198\.51\.100\.10/);
    expect(g.metrics.RstSent).toBe(1);
  });

  it("drops an RST without entry instead of answering it", () => {
    const g = natgw();
    const out = g.receive(
      pkt("10.0.0.20.30080 > 198.51.100.10.40000: Flags [R], seq 5000, win 0, length 0"),
      "eth0",
      0,
    );
    expect(out.sent).toHaveLength(0);
  });

  it("drops an unsolicited packet from outside silently, or resets with rstOutside", () => {
    const p = pkt("203.0.113.5.443 > 10.0.0.7.1024: Flags [.], seq 1, ack 1, win 512, length 0");
    expect(natgw().receive(p, "eth0", 0).sent).toHaveLength(0);
    const rst = only(natgw({ rstOutside: true }).receive(p, "eth0", 0)).packet;
    expect(rst.l4.kind === "tcp" && rst.l4.flags & TCP_ACK, "RST to an ACK carries no ACK").toBe(0);
  });

  it("forgets a connection idle for 350 s and then resets the inside host that continues it", () => {
    const g = natgw();
    g.receive(syn("10.0.0.20.40000", "10.0.0.99.443"), "eth0", 0);
    const ack = pkt("10.0.0.20.40000 > 10.0.0.99.443: Flags [.], seq 101, ack 8, win 512, length 0");
    expect(flow(only(g.receive(ack, "eth0", 349)).packet)).toBe("10.0.0.7:1024 > 10.0.0.99:443");
    const late = g.receive(ack, "eth0", 349 + 350);
    expect(flow(only(late).packet), "RST back to the inside host").toBe("10.0.0.99:443 > 10.0.0.20:40000");
    expect(g.metrics.IdleTimeoutCount).toBe(1);
  });
});

describe("NAT gateway: topology keys", () => {
  it("defaults the address to the outside interface's and rejects an unknown allocation", () => {
    const ctx = plainDeviceContext("natgw", new Prng(1));
    const spec = { name: "natgw", kind: "aws-nat-gateway", interfaces: [iface("eth0", "10.0.0.7/24")] };
    const g = NAT_GATEWAY_KIND.create({ ...spec, config: {} }, ctx) as NatGateway;
    expect(g.address).toBe(ip("10.0.0.7"));
    expect(() => NAT_GATEWAY_KIND.create({ ...spec, config: { port_allocation: "lru" } }, ctx)).toThrow(
      /port_allocation/,
    );
  });
});
