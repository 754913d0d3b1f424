/**
 * HostSim `backend: "nft"` traverses exactly the base chains iptables-nft would have created (declared or named
 * by a command, src/netfilter/ruleset.ts `nftChainExists`); `legacy` every built-in chain of a loaded table.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseHostFile } from "../../src/host/hostfile";
import { loadRuleset } from "../../src/netfilter/parse_script";
import { HostSim } from "../../src/sim/host";
import type { Backend } from "../../src/sim/host";
import { parseTcpdumpText } from "../../src/wire/text";

const SEED = join(__dirname, "../../examples/seed001");
const host = parseHostFile(readFileSync(join(SEED, "host.yaml"), "utf8"), "host.yaml");

// Forwarded out of the interface it came in on: the gateway also sends an ICMP redirect (mangle OUTPUT).
const SYN = parseTcpdumpText(
  `15:33:24.179455 IP (tos 0x0, ttl 64, id 44608, offset 0, flags [none], proto TCP (6), length 40)
192.168.100.105.1836 > 2.2.2.2.80: Flags [S], cksum 0x4b19 (correct), seq 1848868094, win 512, length 0
`,
  { file: "packets.txt", defaultIface: "eth0" },
).packets[0];

function run(rules: string, backend: Backend) {
  const loaded = loadRuleset(rules, { file: "rules.v4" });
  expect(loaded.errors).toEqual([]);
  const r = new HostSim({ host, ruleset: loaded.ruleset, backend }).receive(SYN, { iface: "eth0", time: 1 });
  return {
    labels: r.trace.map((h) => /^TRACE: (\S+) /.exec(h.line)![1]),
    nat: r.packets[0].nat.map((s) => `${s.hook}:${s.kind}`),
  };
}

describe("--backend nft: only the chains that exist run", () => {
  // mangle declares only PREROUTING (empty, ACCEPT), filter only FORWARD; nat POSTROUTING exists by its rule.
  const RULES =
    "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n" +
    "*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n";
  it("nft: a declared empty ACCEPT chain runs (policy trace), an undeclared built-in does not", () => {
    expect(run(RULES, "nft").labels).toEqual([
      "mangle:PREROUTING:policy:1",
      "filter:FORWARD:policy:1",
      "nat:POSTROUTING:rule:1",
    ]);
  });
  it("legacy: every built-in chain of the three tables runs", () => {
    expect(run(RULES, "legacy").labels).toEqual([
      "mangle:PREROUTING:policy:1",
      "nat:PREROUTING:policy:1",
      "mangle:OUTPUT:policy:1",
      "mangle:FORWARD:policy:1",
      "filter:FORWARD:policy:1",
      "mangle:POSTROUTING:policy:1",
      "nat:POSTROUTING:rule:1",
    ]);
  });
  it("nft: one nat base chain registers every nat hook (null binding at PREROUTING)", () => {
    expect(run(RULES, "nft").nat).toEqual(["PREROUTING:null-binding", "POSTROUTING:binding"]);
  });
  it("nft: a nat table with no chain registers no nat hook; legacy's iptable_nat does", () => {
    const rules = "*nat\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n";
    expect(run(rules, "nft")).toEqual({ labels: ["filter:FORWARD:policy:1"], nat: [] });
    expect(run(rules, "legacy").nat).toEqual(["PREROUTING:null-binding", "POSTROUTING:null-binding"]);
  });
});
