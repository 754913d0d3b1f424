import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildEngine, loadTopology } from "../../../../src/sim/net/topology";
import type { HopRecord } from "../../../../src/sim/net/types";

const dir = new URL("../../../../examples/seed004-nlb-crosszone/", import.meta.url);

function run(file: string) {
  const url = new URL(file, dir);
  const topo = loadTopology(readFileSync(url, "utf8"), { file: url.pathname });
  const res = buildEngine(topo).run({ until: 10 });
  const hops: HopRecord[] = res.events.flatMap((e) => e.hops);
  return { topo, at: (node: string) => hops.filter((h) => h.node === node) };
}

describe("seed 004: NAT gateway port reuse + NLB cross-zone", () => {
  const { topo, at } = run("topology.yaml");

  it("the NAT gateway uses public port 47442 for both connections (two unique destinations)", () => {
    const snat = at("natgw").filter((h) => h.summary.includes("new entry"));
    // (a third entry follows: conn2's RST ended its entry, its retransmitted SYN gets the next port)
    expect(snat.slice(0, 2).map((h) => h.nat)).toEqual([
      "SNAT 10.1.1.50:50001 -> 34.217.253.255:47442",
      "SNAT 10.1.1.50:50002 -> 34.217.253.255:47442",
    ]);
  });

  it("both NLB nodes preserve 34.217.253.255:47442 and pick the same proxy", () => {
    expect(at("nlb-a")[0].summary).toBe(
      "tcp 34.217.253.255:47442 > 52.10.1.10:6000; new flow -> target 10.10.12.186:6000 (instance, zone a)",
    );
    expect(at("nlb-b")[0].summary).toBe(
      "tcp 34.217.253.255:47442 > 52.10.2.10:6000; new flow -> target 10.10.12.186:6000 (instance, zone a)",
    );
  });

  it("the proxy sees a SYN on its established 4-tuple and answers with a challenge ACK (RFC 5961 4.2)", () => {
    const syn = at("proxy-a").find(
      (h) => h.inIface && h.summary.includes("[S]") && h.fate.includes("ESTABLISHED"),
    );
    expect(syn?.fate).toMatch(/\(ESTABLISHED\): SYN out of window: challenge ACK/);
    expect(at("proxy-a").some((h) => h.summary.startsWith("(tcp_send_challenge_ack"))).toBe(true);
  });

  it("return_path last-forwarder: the challenge ACK reaches conn2's client, whose RST resets the proxy's conn1", () => {
    expect(at("nlb-a").some((h) => h.fate.startsWith("handed to nlb-b"))).toBe(true);
    const rst = at("locust").find((h) => h.fate.includes("unacceptable ACK: RST"));
    expect(rst, "conn2's client (SYN_SENT) answers the challenge ACK with a RST").toBeDefined();
    const reset = at("proxy-a").find((h) => h.fate.includes("RST at rcv_nxt"));
    expect(reset?.fate).toMatch(/\(ESTABLISHED -> CLOSE\): RST at rcv_nxt: connection reset \(ECONNRESET\)/);
    const proxy = topo.linux.get("proxy-a")!.tcp.connections[0];
    expect(proxy.error, `got ${proxy.history.join(" > ")}`).toBe("ECONNRESET");
    expect(topo.flows.get("conn1")?.established).toBe(0);
    expect(topo.flows.get("conn2")?.established, "conn2's retransmitted SYN finds the tuple free").toBe(2);
  });
});

describe("seed 004 with return_path same-zone (does not reproduce the report)", () => {
  it("the challenge ACK goes to conn1's client, which ignores it; conn2 never completes", () => {
    const { topo, at } = run("topology-same-zone.yaml");
    expect(at("proxy-a").some((h) => h.fate.includes("challenge ACK"))).toBe(true);
    expect(at("proxy-a").some((h) => h.fate.includes("RST at rcv_nxt"))).toBe(false);
    expect(topo.flows.get("conn2")?.established, "conn2 must not establish").toBeUndefined();
  });
});

describe("seed 004 with cross-zone off", () => {
  it("each node keeps to its zone's proxy: both connections are established", () => {
    const { topo, at } = run("topology-fixed.yaml");
    expect(at("nlb-b")[0].summary).toMatch(/-> target 10\.10\.13\.50:6000 \(instance, zone b\)$/);
    expect(topo.flows.get("conn1")?.established).toBe(0);
    expect(topo.flows.get("conn2")?.established).toBe(1);
    expect(at("proxy-a").some((h) => h.fate.includes("challenge ACK"))).toBe(false);
  });
});
