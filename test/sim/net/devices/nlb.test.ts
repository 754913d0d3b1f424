import { describe, expect, it } from "vitest";
import { NlbNode, NLB_NODE_KIND } from "../../../../src/sim/net/devices/nlb";
import type { NlbNodeOptions } from "../../../../src/sim/net/devices/nlb";
import { parseStaticRoute, plainDeviceContext } from "../../../../src/sim/net/devices/common";
import type { StaticRoute } from "../../../../src/sim/net/devices/common";
import { Prng } from "../../../../src/util/prng";
import { flow, iface, ip, only, pkt } from "./helpers";

const targets = [
  { address: ip("10.10.12.186"), zone: "a" },
  { address: ip("10.10.13.50"), zone: "b" },
];

function node(o: Partial<NlbNodeOptions> = {}): NlbNode {
  return new NlbNode({
    name: "nlb-a",
    interfaces: [iface("eth0", "10.10.0.0/16")],
    address: ip("10.10.1.10"),
    zone: "a",
    crossZone: false,
    listeners: [{ port: 6000, protocol: "TCP_UDP", targetGroup: "proxy" }],
    targetGroups: [{ name: "proxy", type: "instance", port: 6000, targets }],
    routes: [parseStaticRoute("default dev eth0") as StaticRoute],
    ...o,
  });
}

const syn = (src: string) => pkt(`${src} > 10.10.1.10.6000: Flags [S], seq 0, win 512, length 0`);

describe("NLB node: instance targets preserve client IP:port", () => {
  it("rewrites only the destination", () => {
    const out = only(node().receive(syn("34.217.253.255.47442"), "eth0", 0));
    expect(flow(out.packet)).toBe("34.217.253.255:47442 > 10.10.12.186:6000");
  });

  it("translates the target's reply back to the listener address", () => {
    const n = node();
    n.receive(syn("34.217.253.255.47442"), "eth0", 0);
    const r = only(
      n.receive(
        pkt("10.10.12.186.6000 > 34.217.253.255.47442: Flags [S.], seq 9, ack 1, win 512, length 0"),
        "eth0",
        0,
      ),
    );
    expect(flow(r.packet)).toBe("10.10.1.10:6000 > 34.217.253.255:47442");
  });

  it("takes TCP and UDP on one TCP_UDP listener port (seed 000)", () => {
    const n = node();
    const u = only(n.receive(pkt("34.217.253.255.5000 > 10.10.1.10.6000: UDP, length 20"), "eth0", 0));
    expect(flow(u.packet)).toBe("34.217.253.255:5000 > 10.10.12.186:6000");
    const tcpOnly = node({ listeners: [{ port: 6000, protocol: "TCP", targetGroup: "proxy" }] });
    const d = tcpOnly.receive(pkt("34.217.253.255.5000 > 10.10.1.10.6000: UDP, length 20"), "eth0", 0);
    expect(d.sent).toHaveLength(0);
    expect(d.hops[0].fate).toBe("dropped: no listener for UDP port 6000");
  });
});

describe("NLB node: IP targets", () => {
  it("use the node's own address and a port of its own", () => {
    const n = node({ targetGroups: [{ name: "proxy", type: "ip", port: 6000, targets }] });
    const a = only(n.receive(syn("34.217.253.255.47442"), "eth0", 0)).packet;
    const b = only(n.receive(syn("34.217.253.255.47443"), "eth0", 0)).packet;
    expect(flow(a)).toBe("10.10.1.10:1024 > 10.10.12.186:6000");
    expect(flow(b)).toBe("10.10.1.10:1025 > 10.10.12.186:6000");
    const r = only(
      n.receive(
        pkt("10.10.12.186.6000 > 10.10.1.10.1025: Flags [S.], seq 9, ack 1, win 512, length 0"),
        "eth0",
        0,
      ),
    );
    expect(flow(r.packet)).toBe("10.10.1.10:6000 > 34.217.253.255:47443");
  });
});

describe("NLB node: cross-zone and stickiness", () => {
  it("with cross-zone off picks only its own zone's targets", () => {
    const n = node({ zone: "b" });
    for (let p = 1000; p < 1050; p++)
      expect(only(n.receive(syn(`1.2.3.4.${p}`), "eth0", 0)).packet.ip.dst).toBe(ip("10.10.13.50"));
  });

  it("with cross-zone on spreads flows over both zones, each flow sticking to its target", () => {
    const n = node({ crossZone: true, hashSeed: 7 });
    const seen = new Map<number, number>();
    for (let p = 1000; p < 1100; p++) {
      const first = only(n.receive(syn(`1.2.3.4.${p}`), "eth0", 0)).packet.ip.dst;
      const again = only(
        n.receive(
          pkt(`1.2.3.4.${p} > 10.10.1.10.6000: Flags [.], seq 1, ack 1, win 512, length 0`),
          "eth0",
          1,
        ),
      ).packet.ip.dst;
      expect(again, `flow ${p} moved`).toBe(first);
      seen.set(first, (seen.get(first) ?? 0) + 1);
    }
    expect(seen.size, "both targets used").toBe(2);
    for (const [, n2] of seen) expect(n2).toBeGreaterThan(25);
  });

  it("drops when its zone has no target and cross-zone is off", () => {
    const n = node({ zone: "c" });
    const out = n.receive(syn("1.2.3.4.1000"), "eth0", 0);
    expect(out.sent).toHaveLength(0);
    expect(out.hops[0].fate).toMatch(/no target in zone c/);
  });

  it("two nodes with cross-zone on can hand the same client IP:port to the same target (seed 004)", () => {
    const a = node({ crossZone: true, hashSeed: 1 });
    const b = node({ name: "nlb-b", zone: "b", address: ip("10.10.2.10"), crossZone: true, hashSeed: 2 });
    let collisions = 0;
    for (let p = 1024; p < 1124; p++) {
      const x = only(a.receive(syn(`34.217.253.255.${p}`), "eth0", 0)).packet;
      const y = only(
        b.receive(
          pkt(`34.217.253.255.${p} > 10.10.2.10.6000: Flags [S], seq 0, win 512, length 0`),
          "eth0",
          0,
        ),
      ).packet;
      if (flow(x) === flow(y)) collisions++;
    }
    expect(collisions, "about half the port pairs meet at one target").toBeGreaterThan(20);
  });
});

describe("NLB node: topology keys", () => {
  it("rejects a listener naming an unknown target group", () => {
    const ctx = plainDeviceContext("nlb", new Prng(1));
    const spec = { name: "nlb", kind: "aws-nlb-node", interfaces: [iface("eth0", "10.10.1.10/16")] };
    const config = {
      listeners: [{ port: 80, protocol: "TCP", target_group: "web" }],
      target_groups: { api: { type: "instance", port: 80, targets: [{ address: "10.10.12.1", zone: "a" }] } },
    };
    expect(() => NLB_NODE_KIND.create({ ...spec, config }, ctx)).toThrow(
      /listeners\.0\.target_group: no target group "web"/,
    );
    const ok = NLB_NODE_KIND.create(
      { ...spec, config: { ...config, listeners: [{ port: 80, protocol: "TCP", target_group: "api" }] } },
      ctx,
    );
    expect(
      flow(
        only(ok.receive(pkt("1.2.3.4.5 > 10.10.1.10.80: Flags [S], seq 0, win 512, length 0"), "eth0", 0))
          .packet,
      ),
    ).toBe("1.2.3.4:5 > 10.10.12.1:80");
  });
});
