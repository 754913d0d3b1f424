import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildEngine, loadTopology } from "../../../../src/sim/net/topology";
import type { HopRecord } from "../../../../src/sim/net/types";
import { geneveDecapsulate, isGeneveFailure, parseAwsGwlbOptions } from "../../../../src/wire/geneve";

const url = new URL("../../../../examples/seed002-gwlb/topology.yaml", import.meta.url);

describe("seed 002: GWLB endpoint service with a Linux appliance", () => {
  const topo = loadTopology(readFileSync(url, "utf8"), { file: url.pathname });
  const engine = buildEngine(topo);
  const res = engine.run({ until: 5 });
  const hops: HopRecord[] = res.events.flatMap((e) => e.hops);
  const at = (node: string) => hops.filter((h) => h.node === node);

  it("the ping reaches the appliance inside GENEVE and its ICMP-blocking policy drops it", () => {
    const icmp = at("appliance").filter((h) => h.summary.startsWith("icmp "));
    expect(icmp).toHaveLength(1);
    expect(icmp[0].fate).toBe("dropped: dropped by filter:FORWARD:rule:2");
    expect(at("server").some((h) => h.summary.startsWith("icmp"))).toBe(false);
  });

  it("HTTPS passes the appliance both ways and is established", () => {
    expect(topo.flows.get("https")?.established).toBe(1);
    const returned = at("gwlb").filter((h) => h.summary.includes("returned by appliance"));
    expect(returned.some((h) => h.summary.startsWith("tcp 52.94.212.197:443 > 10.2.101.47:48354"))).toBe(
      true,
    );
  });

  it("the appliance's conntrack holds the inner flow, not the GENEVE tunnel's", () => {
    const ct = engine.node("appliance")!.conntrackLines!().join("\n");
    expect(ct).toMatch(/tcp +6 \d+ \S+ src=10\.2\.101\.47 dst=52\.94\.212\.197 sport=48354 dport=443/);
    expect(ct).not.toMatch(/dport=6081/);
  });

  it("GENEVE on the appliance link carries the AWS options with the endpoint id", () => {
    const w = res.wire.find((x) => x.link === "geneve");
    const f = w && geneveDecapsulate(w.packet);
    if (!f || isGeneveFailure(f)) throw new Error("no GENEVE on the appliance link");
    expect(parseAwsGwlbOptions(f.header.options)?.endpointId).toBe(0x74a11ad96ec49886n);
  });
});
