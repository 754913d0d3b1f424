import { describe, expect, it } from "vitest";
import { runCheckFiles, runCheckText, resolveFrom } from "../../src/check/run";
import type { SubjectKind } from "../../src/check/run";
import { formatFile } from "../../src/check/format";
import { runJson } from "../../src/check/json";
import { HOST, RULES, RULES_FIXED, memEnv } from "./fixtures";

const FIN = "eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F.], seq 1, ack 1, win 512, length 0";
const SYN = "eth0 In IP 192.168.100.105.1836 > 2.2.2.2.80: Flags [S], seq 100, win 512, length 0";

function check(rules: string, expectYaml: string, packets = FIN): string {
  return `host: ../hosts/natgw.yaml
rules: ${rules}
cases:
  - name: the case
    packets: |
      ${packets.split("\n").join("\n      ")}
    expect:
${expectYaml}`;
}

const FILES = { "/c/hosts/natgw.yaml": HOST, "/c/checks/r.v4": RULES, "/c/checks/fixed.v4": RULES_FIXED };

function run(text: string, extra: Record<string, string> = {}) {
  return runCheckText(text, "/c/checks/t.yaml", memEnv({ ...FILES, ...extra }));
}

describe("ctsim test runner: the FIN of seed 001", () => {
  it("paths are relative to the check file", () => {
    expect(resolveFrom("/c/checks/t.yaml", "../hosts/natgw.yaml")).toBe("/c/hosts/natgw.yaml");
    expect(resolveFrom("/c/checks/t.yaml", "/abs/r.v4")).toBe("/abs/r.v4");
    expect(resolveFrom("t.yaml", "r.v4")).toBe("r.v4");
  });

  it("the reported behaviour passes against the original rules", () => {
    const r = run(
      check(
        "r.v4",
        `      - ctstate: INVALID
        conntrack: none
        fate: forwarded
        rule: filter:FORWARD:policy
        nat: none
        leaves: [{proto: icmp, type: 5}, {iface: eth0, src: 192.168.100.105, flags: F.}]
`,
      ),
    );
    expect(r.errors).toEqual([]);
    expect(r.cases[0].status, JSON.stringify(r.cases[0].diffs)).toBe("passed");
  });

  it("the issue's expectation fails on the original rules and names exactly fate and leaves[*].src", () => {
    const r = run(
      check(
        "r.v4",
        `      - packet: 1
        ctstate: INVALID
        fate: dropped
        leaves: {iface: eth0, src: 192.168.100.104}
`,
      ),
    );
    const c = r.cases[0];
    expect(c.status).toBe("failed");
    // ctstate matched, so it is not in the diff; the FIN leaves with the private source (the ICMP redirect
    // leaves from the gateway's own address, so it satisfies the src claim).
    expect(c.diffs.map((d) => [d.field, d.want, d.loc.line])).toEqual([
      ["fate", "dropped", 10],
      ["leaves[1].src", "192.168.100.104", 11],
    ]);
    expect(c.diffs[0].got).toBe("forwarded (left on eth0)");
    expect(c.diffs[1].got).toMatch(
      /^192\.168\.100\.105 \(eth0: IP 192\.168\.100\.105\.1914 > 2\.2\.2\.2\.80/,
    );
    const text = formatFile(r);
    expect(text).toContain(
      "/c/checks/t.yaml:10:9  fate\n            want: dropped\n            got:  forwarded",
    );
  });

  it("the same expectation passes against the fixed rules", () => {
    const r = run(
      check(
        "fixed.v4",
        `      - packet: 1
        ctstate: INVALID
        fate: dropped
        rule: -A FORWARD -m conntrack --ctstate INVALID -j DROP
        matched: [filter:FORWARD:1]
        leaves: {iface: eth0, src: 192.168.100.104}
`,
      ),
    );
    expect(r.cases[0].status, JSON.stringify(r.cases[0].diffs)).toBe("passed");
  });

  it("conntrack entry fields, nat tuple and ctinfo are compared field by field", () => {
    const r = run(
      check(
        "r.v4",
        `      - packet: 1
        conntrack: {state: SYN_SENT, reply: {dst: 192.168.100.104, dport: 1836}, flags: [UNREPLIED]}
        nat: {kind: binding, src: 192.168.100.104, sport: 1836, by: nat:POSTROUTING:rule:1}
        ctinfo: IP_CT_NEW
      - packet: 2
        conntrack: {state: ESTABLISHED, reply: {dst: 192.168.100.99}}
        nat: {src: 192.168.100.1}
        ctinfo: IP_CT_ESTABLISHED
`,
        `${SYN}\neth0 In IP 2.2.2.2.80 > 192.168.100.104.1836: Flags [S.], seq 500, ack 101, win 512, length 0`,
      ),
    );
    const c = r.cases[0];
    expect(c.diffs.map((d) => `${d.packet} ${d.field}: want ${d.want}`)).toEqual([
      "2 conntrack.state: want ESTABLISHED",
      "2 conntrack.reply.dst: want 192.168.100.99",
      "2 nat.src: want 192.168.100.1",
      "2 ctinfo: want IP_CT_ESTABLISHED",
    ]);
    expect(c.diffs[0].got).toBe("SYN_RECV");
    expect(c.diffs[3].got).toBe("IP_CT_ESTABLISHED_REPLY");
    expect(c.packetLines, "packet lines in the check file").toEqual([6, 7]);
  });

  it("a bad packet line is an error at its check-file line and column; other cases still run", () => {
    const text = `host: ../hosts/natgw.yaml
rules: r.v4
cases:
  - name: bad
    packets: |
      eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [Q], seq 1, win 512, length 0
    expect:
      - fate: dropped
  - name: good
    packets: |
      ${SYN}
    expect:
      - fate: forwarded
`;
    const r = run(text);
    expect(r.cases.map((c) => c.status)).toEqual(["error", "passed"]);
    const e = r.cases[0].error!;
    expect([e.file, e.line]).toEqual(["/c/checks/t.yaml", 6]);
    expect(e.column, "column inside the check file").toBeGreaterThan(6);
    expect(e.excerpt?.startsWith("      eth0 In IP")).toBe(true);
  });

  it("a missing rules file is a load error at the rules key", () => {
    const r = run(check("nope.v4", "      - fate: dropped\n"));
    expect(r.cases).toEqual([]);
    expect(r.errors[0].code).toBe("CHECK_READ");
    expect(r.errors[0].line).toBe(2);
    expect(r.errors[0].message).toContain("/c/checks/nope.v4");
  });

  it("exit codes: 0 all pass, 1 a failure, 2 an error", () => {
    const env = memEnv({
      ...FILES,
      "/c/checks/pass.yaml": check("r.v4", "      - fate: forwarded\n"),
      "/c/checks/fail.yaml": check("r.v4", "      - fate: dropped\n"),
      "/c/checks/bad.yaml": "host: [\n",
    });
    expect(runCheckFiles(["/c/checks/pass.yaml"], env).exitCode).toBe(0);
    const f = runCheckFiles(["/c/checks/pass.yaml", "/c/checks/fail.yaml"], env);
    expect([f.exitCode, f.passed, f.failed, f.errors]).toEqual([1, 1, 1, 0]);
    const b = runCheckFiles(["/c/checks/fail.yaml", "/c/checks/bad.yaml", "/c/checks/missing.yaml"], env);
    expect([b.exitCode, b.failed, b.errors]).toEqual([2, 1, 2]);
  });

  it("JSON output carries the diff with its line", () => {
    const env = memEnv({ ...FILES, "/c/checks/fail.yaml": check("r.v4", "      - fate: dropped\n") });
    const j = runJson(runCheckFiles(["/c/checks/fail.yaml"], env)) as {
      exitCode: number;
      files: {
        cases: { diffs: { field: string; line: number }[]; packets: { nodes: { fate: string }[] }[] }[];
      }[];
    };
    expect(j.exitCode).toBe(1);
    expect(j.files[0].cases[0].diffs).toMatchObject([{ field: "fate", line: 8 }]);
    expect(j.files[0].cases[0].packets[0].nodes[0].fate).toBe("forwarded");
  });

  it("the system under test is pluggable: a kind claiming `topology:` gets the cases", () => {
    const seen: string[] = [];
    const kind: SubjectKind = {
      name: "fake",
      keys: ["topology"],
      claims: (c) => c.subject.keys.has("topology"),
      prepare: () => ({
        warnings: [],
        forCase: () => ({
          nodes: ["a", "b"],
          send: (p) => {
            seen.push(String(p.ip.ttl));
            const base = {
              conntrack: null,
              fate: "forwarded" as const,
              fateText: "left",
              matched: [],
              nat: { kind: "none" as const, src: "", dst: "" },
              leaves: [],
              summary: [],
            };
            return [
              { ...base, node: "a", ctstate: "NEW" },
              { ...base, node: "b", ctstate: "INVALID" },
            ];
          },
        }),
      }),
    };
    const text = `topology: net.yaml
cases:
  - name: two nodes
    packets: |
      ${SYN}
    expect:
      - ctstate: NEW
      - node: b
        ctstate: NEW
`;
    const r = runCheckText(text, "t.yaml", { ...memEnv({}), subjectKinds: [kind] });
    expect(seen).toEqual(["64"]);
    expect(r.cases[0].diffs.map((d) => [d.node, d.field, d.got])).toEqual([["b", "ctstate", "INVALID"]]);
  });
});
