// Tests for the lazily formatted report values (src/trace/records.ts), the shared TRACE body of nf_log and the
// loop version of formatNat: each must print exactly what the eager code printed.
import { describe, expect, it } from "vitest";
import { parseTcpdumpText } from "../../src/wire/text";
import type { Packet } from "../../src/wire/packet";
import { nfLogPacket, nfLogTrace, TRACE_LOGINFO } from "../../src/trace/nf_log";
import { CtSummaryRecord, NatStepRecord, TraceHitRecord, entryVerdict } from "../../src/trace/records";
import { formatNat } from "../../src/trace/summary";
import { parseSave } from "../../src/netfilter/parse_save";
import type { NatStep } from "../../src/trace/events";

function packet(line: string): Packet {
  const { packets, errors } = parseTcpdumpText(line);
  expect(errors).toEqual([]);
  return packets[0];
}

const SYN = packet("IP 198.51.100.2.1836 > 192.0.2.80.80: Flags [S], seq 1, win 512, length 0");
const LINK = { src: "02:00:00:00:00:02", dst: "02:00:00:00:00:01", ethertype: 0x0800, vlans: [] };

const RULES = parseSave(
  "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:U - [0:0]\n" +
    "-A FORWARD -p tcp -j U\n-A FORWARD -j ACCEPT\n-A U -j MARK --set-mark 0x1\nCOMMIT\n",
  { file: "r.v4" },
).ruleset.tables.get("filter")!;

describe("TraceHitRecord", () => {
  it("formats the kernel line on read, with MAC= only when there is an input device", () => {
    const point = { table: "filter", chain: "FORWARD", comment: "rule", num: 1 } as const;
    const hit = new TraceHitRecord(
      0,
      point,
      "FORWARD",
      SYN,
      0,
      "eth0",
      "eth1",
      LINK,
      RULES.chains.get("FORWARD"),
    );
    const want = nfLogTrace("filter", "FORWARD", "rule", 1, {
      pkt: SYN,
      mark: 0,
      inIface: "eth0",
      outIface: "eth1",
      link: LINK,
    });
    expect(hit.line).toBe(want);
    expect(hit.line).toContain("MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 ");
    expect(hit.verdict).toBe("JUMP:U");
    expect(hit.rule?.num).toBe(1);
    const out = new TraceHitRecord(0, point, "OUTPUT", SYN, 0, undefined, "eth1", LINK, undefined);
    expect(out.link, "no input device: no link header").toBeUndefined();
    expect(out.line).toContain("IN= OUT=eth1 SRC=");
  });

  it("serialises to the plain object the eager code built", () => {
    const point = { table: "filter", chain: "U", comment: "return", num: 2 } as const;
    const hit = new TraceHitRecord(1, point, "FORWARD", SYN, 1, "eth0", "eth1", LINK, RULES.chains.get("U"));
    const json = JSON.parse(JSON.stringify(hit));
    expect(json.verdict).toBe("RETURN");
    expect(json.line).toBe(hit.line);
    expect(json.line.endsWith("MARK=0x1 ")).toBe(true);
    expect(Object.keys(json)).toEqual([
      "packetId",
      "table",
      "chain",
      "comment",
      "num",
      "hook",
      "line",
      "verdict",
      "pkt",
      "inIface",
      "outIface",
      "mark",
      "link",
    ]);
  });
});

describe("entryVerdict", () => {
  it("reports policies, implicit returns, jumps, targets and counting rules", () => {
    const fwd = RULES.chains.get("FORWARD");
    const u = RULES.chains.get("U");
    const at = (chain: string, comment: "rule" | "return" | "policy", num: number) =>
      ({ table: "filter", chain, comment, num }) as const;
    expect(entryVerdict(at("FORWARD", "policy", 3), fwd)).toBe("DROP");
    expect(entryVerdict(at("FORWARD", "policy", 2), fwd), "an unconditional rule traced as policy").toBe(
      "ACCEPT",
    );
    expect(entryVerdict(at("FORWARD", "rule", 1), fwd)).toBe("JUMP:U");
    expect(entryVerdict(at("U", "rule", 1), u)).toBe("MARK");
    expect(entryVerdict(at("U", "return", 2), u)).toBe("RETURN");
  });
});

describe("nf_log TRACE body sharing", () => {
  it("gives each subject its own line even when entries alternate", () => {
    const s1 = { pkt: SYN, mark: 0, inIface: "eth0", outIface: "eth1", link: LINK };
    const s2 = { ...s1, mark: 5 };
    const a = nfLogTrace("filter", "FORWARD", "rule", 1, s1);
    const b = nfLogTrace("filter", "FORWARD", "rule", 2, s2);
    const c = nfLogTrace("filter", "FORWARD", "rule", 3, s1);
    expect(b.endsWith("MARK=0x5 "), `got "${b}"`).toBe(true);
    expect(a.includes("MARK=")).toBe(false);
    expect(c).toBe(a.replace("rule:1", "rule:3"));
    expect(a).toBe(nfLogPacket("TRACE: filter:FORWARD:rule:1 ", s1, TRACE_LOGINFO));
  });
});

describe("CtSummaryRecord and NatStepRecord", () => {
  it("CtSummaryRecord without an entry serialises without one", () => {
    const s = new CtSummaryRecord(
      "NEW",
      "IP_CT_NEW",
      "ORIGINAL",
      undefined,
      undefined,
      undefined,
      undefined,
      0,
    );
    expect(s.entry).toBeUndefined();
    expect(JSON.parse(JSON.stringify(s))).toEqual({ state: "NEW", ctinfo: "IP_CT_NEW", dir: "ORIGINAL" });
  });

  it("NatStepRecord formats from/to on read and keeps the eager key order", () => {
    const after = { ...SYN, ip: { ...SYN.ip, src: 0xc0000201 } };
    const s = new NatStepRecord("POSTROUTING", "SRC", "binding", "nat:POSTROUTING:rule:1", SYN, after);
    expect(s.from).toBe("198.51.100.2:1836 > 192.0.2.80:80");
    expect(s.to).toBe("192.0.2.1:1836 > 192.0.2.80:80");
    expect(JSON.stringify(s)).toBe(
      '{"hook":"POSTROUTING","manip":"SRC","kind":"binding","by":"nat:POSTROUTING:rule:1",' +
        '"from":"198.51.100.2:1836 > 192.0.2.80:80","to":"192.0.2.1:1836 > 192.0.2.80:80"}',
    );
    expect(formatNat([s])).toBe("nat SRC 198.51.100.2:1836 -> 192.0.2.1:1836 (nat:POSTROUTING:rule:1)");
  });
});

describe("formatNat", () => {
  const step = (s: Partial<NatStep> & Pick<NatStep, "kind">): NatStep => ({
    hook: "PREROUTING",
    manip: "DST",
    ...s,
  });
  it("prints changes, drops, skips and null bindings as before", () => {
    expect(formatNat([])).toBe("nat: no nat table");
    expect(formatNat([step({ kind: "none" })])).toBe("nat: none");
    expect(formatNat([step({ kind: "skipped", why: "UNTRACKED: nat table not consulted" })])).toBe(
      "nat: UNTRACKED: nat table not consulted",
    );
    expect(
      formatNat([
        step({ kind: "null-binding", from: "a:1 > b:2", to: "a:1 > b:2" }),
        step({ kind: "null-binding", hook: "POSTROUTING", manip: "SRC", from: "a:1 > b:2", to: "a:1 > b:2" }),
      ]),
    ).toBe("nat: none (null binding at PREROUTING, POSTROUTING)");
    expect(formatNat([step({ kind: "rewrite", from: "a:1 > b:2", to: "a:1 > b:2" })])).toBe("nat: none");
    expect(
      formatNat([
        step({ kind: "rewrite", from: "1.1.1.1:1 > 2.2.2.2:2", to: "1.1.1.1:1 > 3.3.3.3:3" }),
        step({
          kind: "drop",
          hook: "POSTROUTING",
          manip: "SRC",
          by: "nat:POSTROUTING:rule:2",
          why: "NF_DROP",
        }),
      ]),
    ).toBe(
      "nat DST 2.2.2.2:2 -> 3.3.3.3:3 (existing binding), nat SRC dropped (NF_DROP, nat:POSTROUTING:rule:2)",
    );
  });
});
