import { describe, expect, it } from "vitest";
import { explainPackets, tcpCell, withRuleCommand } from "../../src/explain/explain";
import { formatExplanation } from "../../src/explain/format";
import { parseHostFile } from "../../src/host/hostfile";
import { parseTcpdumpText } from "../../src/wire/text";
import type { HostScenario } from "../../src/check/subject";
import { loadScenarioRules } from "../../src/check/subject";
import { HOST, RULES, RULES_FIXED } from "../check/fixtures";

const scenario: HostScenario = {
  host: parseHostFile(HOST, "host.yaml"),
  rulesText: RULES,
  rulesFile: "rules.v4",
};

function explain(lines: string[], index = lines.length - 1, s: HostScenario = scenario) {
  const packets = parseTcpdumpText(lines.join("\n")).packets;
  return explainPackets({ scenario: s, packets }, [index])[0];
}

const SYN = "eth0 In IP 192.168.100.105.1836 > 2.2.2.2.80: Flags [S], seq 1848868094, win 512, length 0";
const BARE_FIN = "eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F], seq 1374184646, win 512, length 0";
const FIN_ACK = "eth0 In IP 192.168.100.105.1915 > 2.2.2.2.80: Flags [F.], seq 1, ack 1, win 512, length 0";

describe("explain: seed 001's bare FIN", () => {
  const e = explain([SYN, BARE_FIN]);

  it("the reason is tcp_error's flag check, not the state table", () => {
    expect(e.packet).toBe(2);
    expect(e.conntrack.kernel.map((k) => k.fn)).toEqual(["nf_conntrack_in", "tcp_error"]);
    expect(e.conntrack.lines).toContain('Decided by tcp_error(): "invalid tcp flag combination".');
    expect(e.conntrack.cell, "no table cell decided").toBeUndefined();
    const text = e.conntrack.lines.join("\n");
    expect(text).toContain("a bare FIN never reaches tcp_conntracks[ORIGINAL][fin][NONE] = sIV");
    expect(e.conntrack.sysctls.map((s) => `${s.name}=${s.value}`)).toEqual([
      "net.netfilter.nf_conntrack_tcp_loose=1",
      "net.netfilter.nf_conntrack_tcp_be_liberal=0",
    ]);
  });

  it("the FIN|ACK counterpart is run and shows the cell the article blames", () => {
    expect(e.notes).toHaveLength(1);
    expect(e.notes[0]).toContain(
      'INVALID by tcp_new(): "invalid new" at tcp_conntracks[ORIGINAL][fin][NONE] = sIV',
    );
  });

  it("no conntrack, so the nat table and its MASQUERADE are skipped", () => {
    expect(e.nat.lines.filter((l) => l.includes("skipped"))).toHaveLength(2);
    expect(e.nat.lines).toContain("  never evaluated: nat:POSTROUTING:rule:1  -A POSTROUTING -j MASQUERADE");
    expect(e.outcome).toBe("INVALID; not NATed (nat table skipped); forwarded (left on eth0)");
  });

  it("fixes are tried: the INVALID drop changes the outcome, be_liberal and loose do not", () => {
    expect(e.fixes.map((f) => [f.change, f.changesOutcome])).toEqual([
      ["iptables -I FORWARD 1 -m conntrack --ctstate INVALID -j DROP", true],
      ["sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1", false],
      ["sysctl -w net.netfilter.nf_conntrack_tcp_loose=0", false],
    ]);
    expect(e.fixes[0].effects).toEqual([
      "fate forwarded (filter:FORWARD:policy:1) -> dropped (filter:FORWARD:rule:1)",
      "no longer leaves: eth0: IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F], seq 1374184646, win 512, length 0",
    ]);
  });

  it("text output has the headings and the kernel functions", () => {
    const t = formatExplanation(e);
    for (const h of [
      "Conntrack  [",
      "NAT  [",
      "Rules (TRACE order)",
      "Route  [",
      "Fate",
      "What would change the outcome",
    ])
      expect(t, h).toContain(h);
    expect(t).toContain("net/netfilter/nf_conntrack_proto_tcp.c tcp_error()");
    expect(t).toContain("tried: changes the outcome");
  });
});

describe("explain: other decisions", () => {
  it("a FIN|ACK with no entry: the tcp_new cell decided", () => {
    const e = explain([FIN_ACK]);
    expect(e.conntrack.cell).toBe("tcp_conntracks[ORIGINAL][fin][NONE] = sIV");
    expect(e.notes).toEqual([]);
  });

  it("the SYN: NEW by the syn/NONE cell, a MASQUERADE binding, every matched rule", () => {
    const e = explain([SYN]);
    expect(e.conntrack.cell).toBe("tcp_conntracks[ORIGINAL][syn][NONE] = sSS");
    expect(
      e.nat.lines.some((l) =>
        l.startsWith("POSTROUTING (source NAT): new binding by nat:POSTROUTING:rule:1"),
      ),
    ).toBe(true);
    expect(e.rules.matched).toEqual([
      { label: "nat:POSTROUTING:rule:1", text: "-A POSTROUTING -j MASQUERADE", verdict: "MASQUERADE" },
    ]);
    expect(e.fixes).toEqual([]);
  });

  it("a packet dropped by a rule: removing the rule is tried", () => {
    const e = explain([FIN_ACK], 0, { ...scenario, rulesText: RULES_FIXED });
    expect(e.outcome).toContain("dropped by filter:FORWARD:rule:1");
    expect(e.fixes.map((f) => f.change)).toContain("iptables -t filter -D FORWARD 1");
    const del = e.fixes.find((f) => f.change.includes("-D"))!;
    expect(del.changesOutcome).toBe(true);
  });

  it("a mid-stream ACK picked up by loose: turning loose off is tried and makes it INVALID", () => {
    const e = explain([
      "eth0 In IP 192.168.100.105.2000 > 2.2.2.2.80: Flags [.], seq 5, ack 9, win 512, length 0",
    ]);
    expect(e.conntrack.cell).toBe("tcp_conntracks[ORIGINAL][ack][NONE] = sES");
    const loose = e.fixes.find((f) => f.change.includes("tcp_loose=0"))!;
    expect(loose.changesOutcome).toBe(true);
    expect(loose.effects[0]).toBe("ctstate NEW -> INVALID");
  });

  it("rule changes are applied to save files with --noflush semantics and to scripts as commands", () => {
    const s = withRuleCommand(scenario, "filter", "-I FORWARD 1 -j DROP");
    const chain = loadScenarioRules(s).ruleset.tables.get("filter")!.chains.get("FORWARD")!;
    expect(chain.rules.map((r) => r.source.text)).toEqual(["-I FORWARD 1 -j DROP"]);
    expect(loadScenarioRules(s).ruleset.tables.get("nat")!.chains.get("POSTROUTING")!.rules).toHaveLength(1);
    const script = withRuleCommand(
      { ...scenario, rulesText: "iptables -t nat -A POSTROUTING -j MASQUERADE\n" },
      "filter",
      "-A FORWARD -j DROP",
    );
    expect(script.rulesText.endsWith("iptables -t filter -A FORWARD -j DROP\n")).toBe(true);
    expect(loadScenarioRules(script).errors).toEqual([]);
  });

  it("tcpCell reads the kernel table with its comment", () => {
    expect(tcpCell("6.18", "REPLY", "syn", "TIME_WAIT")?.to).toBe("sSS");
    expect(tcpCell("3.10", "REPLY", "syn", "TIME_WAIT")?.to).toBe("sIV");
  });
});
