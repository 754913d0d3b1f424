import { describe, expect, it } from "vitest";
import { detectFormat, loadRuleset, parseScript } from "../../src/netfilter/parse_script";
import { saveRuleset } from "../../src/netfilter/save";

const SCRIPT = `#!/bin/sh
# a firewall script
IPT=/sbin/iptables
set -e
$IPT -F
$IPT -P INPUT DROP
$IPT -N LOGDROP || true
$IPT -A LOGDROP -j LOG --log-prefix 'dropped: ' \\
   --log-level info
$IPT -A LOGDROP -j DROP
$IPT -A INPUT -i lo -j ACCEPT # loopback
iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -j ACCEPT
iptables -I INPUT 2 -s 10.0.0.0/8,192.168.0.0/16 -j ACCEPT
iptables --table=filter --append INPUT --protocol=udp "--dport" "53" -j ACCEPT
ip6tables -A INPUT -j DROP
`;

describe("shell scripts of iptables commands", () => {
  it("runs variables, quoting, continuations, comments, -t, -I n and comma-separated addresses", () => {
    const r = parseScript(SCRIPT, { file: "fw.sh" });
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => `${w.line} ${w.code}`)).toEqual(["16 IPT_IPV6_SKIPPED"]);
    expect(saveRuleset(r.ruleset)).toBe(
      [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":LOGDROP - [0:0]",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -s 10.0.0.0/8 -j ACCEPT",
        "-A INPUT -s 192.168.0.0/16 -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 22 -m state --state NEW -j ACCEPT",
        "-A INPUT -p udp -m udp --dport 53 -j ACCEPT",
        '-A LOGDROP -j LOG --log-prefix "dropped: " --log-level 6',
        "-A LOGDROP -j DROP",
        "COMMIT",
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        "-A POSTROUTING -o eth0 -j MASQUERADE",
        "COMMIT",
        "",
      ].join("\n"),
    );
    const logdrop = r.ruleset.tables.get("filter")!.chains.get("LOGDROP")!;
    expect(logdrop.rules[0].source.line, "a continued command is located at its first line").toBe(8);
  });

  it("other shell commands are errors at line:column, warnings under --allow-unknown", () => {
    const text = "iptables -A INPUT -j ACCEPT\necho hello\niptables -A INPUT -j $(echo DROP)\n";
    const strict = parseScript(text, { file: "x.sh" });
    expect(strict.errors.map((e) => `${e.line}:${e.column} ${e.message}`)).toEqual([
      '2:1 "echo" is not an iptables command',
      "3:22 command substitution is not supported",
    ]);
    const lenient = parseScript(text, { file: "x.sh", allowUnknown: true });
    expect(lenient.errors).toEqual([]);
    expect(lenient.warnings).toHaveLength(2);
  });

  it("an unknown table is an error", () => {
    const r = parseScript("iptables -t natt -A POSTROUTING -j MASQUERADE\n");
    expect(r.errors.map((e) => `${e.column} ${e.code}`)).toEqual(["13 IPT_BAD_TABLE"]);
  });

  it("-D by number and by rule, -R, -E and -X keep rule numbers right", () => {
    const r = parseScript(
      [
        "iptables -N A",
        "iptables -A A -s 1.1.1.1 -j RETURN",
        "iptables -A A -s 2.2.2.2 -j RETURN",
        "iptables -A A -s 3.3.3.3 -j RETURN",
        "iptables -D A 1",
        "iptables -D A -s 3.3.3.3 -j RETURN",
        "iptables -R A 1 -s 4.4.4.4 -j ACCEPT",
        "iptables -A INPUT -j A",
        "iptables -E A B",
        "iptables -N C",
        "iptables -X C",
      ].join("\n"),
    );
    expect(r.errors).toEqual([]);
    const t = r.ruleset.tables.get("filter")!;
    expect([...t.chains.keys()]).toEqual(["INPUT", "FORWARD", "OUTPUT", "B"]);
    expect(t.chains.get("B")!.rules.map((x) => [x.num, x.src?.addr])).toEqual([[1, 0x04040404]]);
    expect(t.chains.get("INPUT")!.rules[0].target).toEqual({ kind: "jump", chain: "B", goto: false });
  });

  it("detects the format", () => {
    expect(detectFormat("# x\n*filter\nCOMMIT\n")).toBe("save");
    expect(detectFormat("-P INPUT ACCEPT\n")).toBe("save");
    expect(detectFormat("#!/bin/sh\niptables -F\n")).toBe("script");
    expect(detectFormat("iptables -F\n")).toBe("script");
    expect(
      loadRuleset("iptables -A INPUT -j DROP\n").ruleset.tables.get("filter")!.chains.get("INPUT")!.rules,
    ).toHaveLength(1);
  });

  it("detects the format from the first deciding line, whatever the line endings", () => {
    const cases: [string, string][] = [
      ["", "save"],
      ["\n\n", "save"],
      ["  # comment\r\n\r\n  COMMIT\r\n", "save"],
      ["\r\n\t[0:0] -A INPUT -j DROP", "save"],
      ["# c\r\n  \r\nIPT=iptables\r\n*filter\n", "script"],
      ["#!/bin/sh", "script"],
      ["\n\n  #!/bin/bash\n*filter\n", "script"],
      ["COMMIT\r", "save"],
      ["COMMITX\n", "script"],
    ];
    for (const [text, want] of cases) {
      const got = detectFormat(text);
      if (got !== want) expect.fail(`detectFormat(${JSON.stringify(text)}): got ${got}, want ${want}`);
    }
  });

  it("white space other than blanks separates words (a stray \\r or \\v once looped forever)", () => {
    const r = parseScript("iptables -A INPUT\x0b-p tcp\r --dport 22\f-j ACCEPT\r\r\n", { file: "fw.sh" });
    expect(r.errors).toEqual([]);
    expect(saveRuleset(r.ruleset)).toContain("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT");
  });
});
