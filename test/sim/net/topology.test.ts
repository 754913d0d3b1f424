/**
 * Topology files: examples/seed001-network end to end (the leak and loop, then the fix), and errors at
 * file:line:column.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/errors";
import { buildEngine, loadTopology } from "../../../src/sim/net/topology";
import { formatSequence } from "../../../src/trace/sequence";
import { ip } from "./helpers";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
function load(rel: string) {
  const file = resolve(root, rel);
  return loadTopology(readFileSync(file, "utf8"), {
    file: rel,
    readFile: (p) => readFileSync(resolve(dirname(file), p), "utf8"),
  });
}
function err(text: string): InputError {
  try {
    loadTopology(text, { file: "t.yaml", readFile: () => "" });
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("examples/seed001-network", () => {
  it("NATs the SYN; the FIN with no entry leaves un-NATed and loops until the TTL expires", () => {
    const topo = load("examples/seed001-network/topology.yaml");
    const r = buildEngine(topo).run();
    const syn = r.wire.find(
      (w) => w.from.node === "natgw" && w.packet.l4.kind === "tcp" && w.packet.l4.flags === 0x02,
    );
    expect(syn?.packet.ip.src, "SYN leaves natgw from 192.168.100.104").toBe(ip("192.168.100.104"));
    expect(topo.flows.get("web")!.sock!.state).toBe("ESTABLISHED");
    const fins = r.wire.filter((w) => w.packet.l4.kind === "tcp" && w.packet.l4.srcPort === 1914);
    expect(
      fins.every((w) => w.packet.ip.src === ip("192.168.100.105")),
      "FIN never NATed",
    ).toBe(true);
    expect(fins.map((w) => w.packet.ip.ttl)).toEqual(Array.from({ length: 63 }, (_, i) => 63 - i));
    expect(r.loops.length).toBe(1);
    expect(r.loops[0].reason).toBe("ttl-decreasing");
    expect(r.loops[0].packet).toContain("192.168.100.105:1914 > 2.2.2.2:80");
    const te = r.wire.find((w) => w.packet.l4.kind === "icmp" && w.packet.l4.type === 11);
    expect(te?.packet.ip.src, "time exceeded from the router").toBe(ip("192.168.100.253"));
    expect(te?.to.map((t) => t.node)).toEqual(["client"]);
    const seq = formatSequence(r.wire);
    expect(seq[0]).toMatch(/^time\s+client\s+vpc-router\s+natgw\s+internet$/);
  });

  it("the fix: the NAT host drops the INVALID FIN; nothing loops", () => {
    const topo = load("examples/seed001-network/topology-fixed.yaml");
    const r = buildEngine(topo).run();
    expect(r.loops).toEqual([]);
    expect(r.wire.filter((w) => w.packet.l4.kind === "tcp" && w.packet.l4.srcPort === 1914)).toEqual([]);
    const fin = r.events.find(
      (e) => e.node === "natgw" && e.packet?.l4.kind === "tcp" && e.packet.l4.srcPort === 1914,
    );
    expect(fin?.hops[0].fate).toMatch(/^dropped: dropped by filter:FORWARD:rule:1/);
    expect(topo.flows.get("web")!.sock!.state).toBe("ESTABLISHED");
  });
});

describe("topology errors", () => {
  it("unknown node kind at its line and column", () => {
    const e = err("nodes:\n  gw:\n    kind: warp-drive\n");
    expect(e.diagnostic).toMatchObject({ code: "TOPO_UNKNOWN_KIND", file: "t.yaml", line: 3, column: 11 });
  });
  it("bad interface address inside an inline host keeps the host parser's position", () => {
    const e = err(
      'nodes:\n  h:\n    interfaces: [{name: eth0, mac: "02:00:00:00:00:01", addresses: ["300.1.1.1/24"]}]\n',
    );
    expect(e.diagnostic).toMatchObject({ code: "HOST_BAD_CIDR", line: 3 });
  });
  it("link end naming a missing interface", () => {
    const e = err(
      'nodes:\n  h:\n    interfaces: [{name: eth0, mac: "02:00:00:00:00:01", addresses: ["192.0.2.1/24"]}]\n  g:\n    interfaces: [{name: eth0, mac: "02:00:00:00:00:02", addresses: ["192.0.2.2/24"]}]\nlinks:\n  - {ends: ["h:eth0", "g:eth9"]}\n',
    );
    expect(e.diagnostic).toMatchObject({ code: "TOPO_UNKNOWN_IFACE", line: 7, column: 23 });
  });
  it("traffic naming an unknown flow", () => {
    const e = err(
      'nodes:\n  h:\n    interfaces: [{name: eth0, mac: "02:00:00:00:00:01", addresses: ["192.0.2.1/24"]}]\ntraffic:\n  - {at: 1, abort: nope}\n',
    );
    expect(e.diagnostic).toMatchObject({ code: "TOPO_UNKNOWN_FLOW", line: 5, column: 20 });
  });
});
