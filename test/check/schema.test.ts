import { describe, expect, it } from "vitest";
import { parseCheckFile } from "../../src/check/schema";

const ISSUE_EXAMPLE = `host: hosts/natgw.yaml
rules: rules/natgw.v4
cases:
  - name: a FIN with no conntrack entry never leaves with a private source
    packets: |
      eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F.], seq 1, ack 1, win 512, length 0
    expect:
      - packet: 1
        ctstate: INVALID
        fate: dropped          # or: forwarded / local / rejected
        leaves: {iface: eth0, src: 192.168.100.104}
`;

describe("check file schema", () => {
  it("parses the issue's example with a location per expectation field", () => {
    const r = parseCheckFile(ISSUE_EXAMPLE, "natgw.test.yaml");
    expect(r.errors).toEqual([]);
    const c = r.check!.cases[0];
    expect(c.name).toBe("a FIN with no conntrack entry never leaves with a private source");
    expect(c.packetsLine, "first packet line").toBe(6);
    expect(c.packetsIndent).toBe(6);
    const x = c.expect[0];
    expect(x.packet).toBe(1);
    expect(x.fields.map((f) => [f.key, f.loc.line, f.loc.column])).toEqual([
      ["ctstate", 9, 9],
      ["fate", 10, 9],
      ["leaves", 11, 9],
    ]);
    expect(x.fields[2].want).toEqual({ every: { iface: "eth0", src: "192.168.100.104" } });
    expect(r.check!.subject.keys.get("host")?.value).toBe("hosts/natgw.yaml");
  });

  it("an unknown key is an error at its line and column, with a suggestion", () => {
    const text = ISSUE_EXAMPLE.replace("        fate: dropped", "        fat: dropped");
    const r = parseCheckFile(text, "x.yaml");
    expect(r.check).toBeUndefined();
    expect(r.errors).toHaveLength(1);
    const e = r.errors[0];
    expect([e.code, e.file, e.line, e.column]).toEqual(["CHECK_UNKNOWN_KEY", "x.yaml", 10, 9]);
    expect(e.message).toContain('did you mean "fate"');
    expect(e.excerpt).toBe("        fat: dropped          # or: forwarded / local / rejected");
  });

  it("bad values: ctstate, fate, packet out of range, leaves field typo", () => {
    const text = `host: h.yaml
rules: r.v4
cases:
  - name: two packets
    packets: |
      eth0 In IP 1.1.1.1.1 > 2.2.2.2.2: Flags [S], seq 1, win 1, length 0
      eth0 In IP 1.1.1.1.1 > 2.2.2.2.2: Flags [S], seq 1, win 1, length 0
    expect:
      - packet: 3
        ctstate: BOGUS
      - packet: 1
        fate: eaten
        leaves: {srcc: 1.2.3.4}
      - ctstate: NEW
`;
    const r = parseCheckFile(text, "y.yaml");
    const got = r.errors.map((e) => `${e.line}:${e.column} ${e.code}`);
    expect(got).toEqual([
      "9:17 CHECK_BAD_VALUE",
      "10:18 CHECK_BAD_VALUE",
      "12:15 CHECK_BAD_VALUE",
      "13:18 CHECK_UNKNOWN_KEY",
      "14:9 CHECK_NO_PACKET",
    ]);
  });

  it("YAML syntax errors and missing keys point at the file", () => {
    const r = parseCheckFile("host: [a\n", "z.yaml");
    expect(r.errors[0].code).toBe("CHECK_YAML");
    expect(r.errors[0].file).toBe("z.yaml");
    const r2 = parseCheckFile("host: h\nrules: r\n", "z.yaml");
    expect(r2.errors.map((e) => e.message)).toEqual(["missing cases"]);
  });

  it("nat/conntrack/leaves accept none; conntrack fields nest", () => {
    const text = `host: h
rules: r
cases:
  - name: n
    packets: "eth0 In IP 1.1.1.1.1 > 2.2.2.2.2: Flags [S], seq 1, win 1, length 0"
    expect:
      - nat: none
        leaves: none
        conntrack: {state: SYN_SENT, reply: {dst: 1.2.3.4}, flags: [UNREPLIED]}
`;
    const r = parseCheckFile(text, "n.yaml");
    expect(r.errors).toEqual([]);
    const f = r.check!.cases[0].expect[0].fields;
    expect(f.map((x) => x.want)).toEqual([
      "none",
      [],
      { state: "SYN_SENT", reply: { dst: "1.2.3.4" }, flags: ["UNREPLIED"] },
    ]);
    expect(r.check!.cases[0].packetsLine).toBe(5);
    expect(r.check!.cases[0].packetsIndent).toBe(14);
  });

  it("an unquoted packet line with ': ' is a YAML error at its line", () => {
    const text =
      "host: h\nrules: r\ncases:\n  - name: n\n    packets: eth0 In IP 1.1.1.1.1 > 2.2.2.2.2: Flags [S]\n";
    const r = parseCheckFile(text, "q.yaml");
    expect(r.errors[0].code).toBe("CHECK_YAML");
    expect(r.errors[0].line, "line of the packets key").toBe(5);
  });
});
