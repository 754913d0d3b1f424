// `rule: table:chain:N` names the N-th rule of a chain whatever its TRACE label: the kernel labels an
// unconditional verdict rule `policy` in a built-in chain and `return` in a user chain (ip_tables.c
// get_chainname_rulenum), as it labels the chain's tail.
import { describe, expect, it } from "vitest";
import { runCheckText } from "../../src/check/run";

const HOST = `hostname: r
interfaces:
  - { name: eth0, mac: "02:00:00:00:00:01", addresses: ["198.51.100.1/24"] }
  - { name: eth1, mac: "02:00:00:00:00:02", addresses: ["203.0.113.1/24"] }
sysctl: { net.ipv4.ip_forward: 1 }
`;
const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:FWD_internal - [0:0]
-A FORWARD -i eth0 -j FWD_internal
-A FWD_internal -j ACCEPT
COMMIT
`;
const files: Record<string, string> = { "/c/host.yaml": HOST, "/c/rules.v4": RULES };
const env = {
  readFile: (p: string) =>
    files[p] ??
    (() => {
      throw new Error(`no file ${p}`);
    })(),
};

function check(rule: string) {
  const text = `host: host.yaml
rules: rules.v4
cases:
  - name: forwarded by the user chain's unconditional ACCEPT
    packets: |
      eth0 In IP 198.51.100.2.1914 > 203.0.113.2.80: Flags [S], seq 1, win 512, length 0
    expect:
      - fate: forwarded
        rule: ${rule}
`;
  return runCheckText(text, "/c/t.test.yaml", env);
}

describe("rule references", () => {
  it("table:chain:N names a rule the kernel labels return", () => {
    const r = check("filter:FWD_internal:1");
    expect(r.cases.map((c) => c.status)).toEqual(["passed"]);
  });
  it("the exact TRACE label works too, and a wrong number fails", () => {
    expect(check("filter:FWD_internal:return:1").cases.map((c) => c.status)).toEqual(["passed"]);
    expect(check("filter:FWD_internal:2").cases.map((c) => c.status)).toEqual(["failed"]);
  });
});

describe("verdict of an unconditional rule labelled policy", () => {
  it("is the rule's own target, not the chain policy", async () => {
    const { entryVerdict } = await import("../../src/trace/records");
    const { parseSave } = await import("../../src/netfilter/parse_save");
    const { ruleset } = parseSave(
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -j ACCEPT\nCOMMIT\n",
    );
    const chain = ruleset.tables.get("filter")!.chains.get("FORWARD");
    const at = (num: number) => ({
      table: "filter" as const,
      chain: "FORWARD",
      comment: "policy" as const,
      num,
    });
    expect(entryVerdict(at(1), chain)).toBe("ACCEPT");
    expect(entryVerdict(at(2), chain)).toBe("DROP");
  });
});
