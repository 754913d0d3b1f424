import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildEngine, loadTopology } from "../../../../src/sim/net/topology";
import type { HopRecord } from "../../../../src/sim/net/types";

const dir = new URL("../../../../examples/seed000-nlb-natgw/", import.meta.url);

function run(file: string) {
  const url = new URL(file, dir);
  const topo = loadTopology(readFileSync(url, "utf8"), {
    file: url.pathname,
    readFile: (p) => readFileSync(new URL(p, url), "utf8"),
  });
  const res = buildEngine(topo).run({ until: 20 });
  const hops: HopRecord[] = res.events.flatMap((e) => e.hops);
  return { topo, res, hops, at: (node: string) => hops.filter((h) => h.node === node) };
}

describe("seed 000: NLB with client IP preserved, return path through the NAT gateway", () => {
  const { topo, at } = run("topology.yaml");

  it("the NAT gateway has no entry for the pod's SYN-ACK and answers with an RST posing as the client", () => {
    const natgw = at("natgw");
    expect(natgw.length, "the SYN-ACK reached the NAT gateway").toBeGreaterThan(0);
    expect(natgw[0].summary).toBe("tcp 10.0.1.20:30080 > 198.51.100.10:40000; no connection entry");
    expect(natgw[0].fate).toBe("dropped; RST sent to 10.0.1.20 as 198.51.100.10");
  });

  it("the node forwards that RST to the pod, which drops its half-open connection", () => {
    const pod = at("pod").filter((h) => h.summary.includes("[R]"));
    expect(pod.length, "got no RST at the pod").toBeGreaterThan(0);
    expect(pod[0].summary).toMatch(/^tcp 198\.51\.100\.10:40000 > 10\.244\.1\.5:80 \[R\]/);
    expect(pod[0].fate).toMatch(/RST: request dropped/);
  });

  it("the client never sees the RST or a SYN-ACK: it only retransmits its SYN and gives up", () => {
    const received = at("client").filter((h) => h.inIface !== undefined);
    expect(received, `client received: ${received.map((h) => h.summary).join("; ")}`).toHaveLength(0);
    const syns = at("client").filter((h) => h.summary.includes("[S]"));
    expect(syns.length, "first SYN + retransmissions at 1, 3, 7, 15 s").toBe(5);
    expect(topo.flows.get("c1")?.established).toBeUndefined();
  });

  it("the TCP_UDP listener carries UDP on the same port to the same node port", () => {
    const nlb = at("nlb-a").filter((h) => h.summary.startsWith("udp "));
    expect(nlb[0]?.summary).toBe(
      "udp 198.51.100.10:5353 > 203.0.113.10:7000; new flow -> target 10.0.1.20:30080 (instance, zone a)",
    );
    expect(at("pod").some((h) => h.summary.startsWith("udp 198.51.100.10:5353 > 10.244.1.5:80"))).toBe(true);
  });
});

describe("seed 000, fixed: replies return through the NLB", () => {
  const { topo, at } = run("topology-fixed.yaml");
  it("the connection is established and the NAT gateway sees nothing", () => {
    expect(topo.flows.get("c1")?.established, "c1 established at t=0").toBe(0);
    expect(topo.flows.get("c1")?.error).toBeUndefined();
    expect(at("natgw")).toHaveLength(0);
    expect(
      at("nlb-a").some((h) =>
        h.summary.startsWith("tcp 10.0.1.20:30080 > 198.51.100.10:40000; reply of flow"),
      ),
    ).toBe(true);
  });
});
