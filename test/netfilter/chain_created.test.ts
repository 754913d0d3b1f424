/**
 * Which chains the input created in iptables-nft's sense (`Chain.created`, iptables 1.8.9 iptables/nft.c
 * `nft_xt_builtin_init` with a chain name), `nftChainExists`, the unchanged iptables-save output, and the
 * nf_tables rule handles that follow from creation order (src/trace/monitor.ts `nftRuleHandles`).
 */
import { describe, expect, it } from "vitest";
import { parseSave } from "../../src/netfilter/parse_save";
import { parseScript } from "../../src/netfilter/parse_script";
import type { Ruleset, TableName } from "../../src/netfilter/ruleset";
import { newTable, nftChainExists } from "../../src/netfilter/ruleset";
import { saveRuleset } from "../../src/netfilter/save";
import { nftRuleHandles } from "../../src/trace/monitor";

function load(kind: "save" | "script", text: string): Ruleset {
  const r = kind === "save" ? parseSave(text, { file: "rules" }) : parseScript(text, { file: "rules.sh" });
  expect(r.errors, "rules must load").toEqual([]);
  return r.ruleset;
}

/** `CHAIN@line:by` for every chain of the table that exists for iptables-nft, in table order. */
function existing(rs: Ruleset, table: TableName): string[] {
  const t = rs.tables.get(table);
  if (!t) throw new Error(`got no table ${table}, want one`);
  return [...t.chains.values()]
    .filter(nftChainExists)
    .map((c) => `${c.name}@${c.created ? `${c.created.line}:${c.created.by}` : "-"}`);
}

describe("restore input: declared and appended-to chains exist", () => {
  const text = [
    "*mangle", // 1
    ":PREROUTING ACCEPT [0:0]", // 2
    ":FORWARD - [0:0]", // 3
    ":MARKS - [0:0]", // 4
    "-A PREROUTING -j MARKS", // 5
    "-A POSTROUTING -j MARK --set-mark 1", // 6
    "COMMIT", // 7
    "*filter", // 8
    ":INPUT DROP [0:0]", // 9
    "COMMIT", // 10
  ].join("\n");
  const rs = load("save", text);
  it("records the declaration line of built-ins (also with policy -) and user chains", () => {
    expect(existing(rs, "mangle")).toEqual([
      "PREROUTING@2:declaration",
      "FORWARD@3:declaration",
      "POSTROUTING@6:rule",
      "MARKS@4:declaration",
    ]);
    expect(existing(rs, "filter")).toEqual(["INPUT@9:declaration"]);
  });
  it("keeps every built-in chain in the model (iptables-legacy semantics)", () => {
    expect([...rs.tables.get("mangle")!.chains.keys()].sort()).toEqual(
      ["FORWARD", "INPUT", "MARKS", "OUTPUT", "POSTROUTING", "PREROUTING"].sort(),
    );
    expect(rs.tables.get("mangle")!.chains.get("INPUT")!.created).toBeUndefined();
  });
  it("iptables-save output is unchanged: every built-in chain of the table is printed", () => {
    expect(saveRuleset(rs)).toBe(
      [
        "*mangle",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":MARKS - [0:0]",
        "-A PREROUTING -j MARKS",
        "-A POSTROUTING -j MARK --set-xmark 0x1/0xffffffff",
        "COMMIT",
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        "COMMIT",
        "",
      ].join("\n"),
    );
  });
  it("a new *table line (no --noflush) forgets what an earlier one created", () => {
    const again = load("save", `${text}\n*mangle\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n`);
    expect(existing(again, "mangle")).toEqual(["OUTPUT@12:declaration"]);
  });
});

describe("shell scripts: the commands that create a built-in chain in iptables-nft", () => {
  it("-t nat -A POSTROUTING creates the nat table and that chain only", () => {
    const rs = load("script", "iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE\n");
    expect(existing(rs, "nat")).toEqual(["POSTROUTING@1:rule"]);
  });
  it("-P, -I and -F CHAIN create theirs; -N, -F and -Z without a chain create none", () => {
    const rs = load(
      "script",
      [
        "iptables -N LOGDROP", // 1
        "iptables -F", // 2
        "iptables -Z", // 3
        "iptables -P FORWARD DROP", // 4
        "iptables -I INPUT -i lo -j ACCEPT", // 5
        "iptables -F OUTPUT", // 6
      ].join("\n"),
    );
    expect(existing(rs, "filter")).toEqual([
      "INPUT@5:rule",
      "FORWARD@4:policy",
      "OUTPUT@6:flush",
      "LOGDROP@1:new-chain",
    ]);
  });
  it("-X without a chain deletes the empty ACCEPT built-ins (iptables-nft __nft_chain_del), not the others", () => {
    const rs = load(
      "script",
      [
        "iptables -P INPUT DROP", // 1
        "iptables -A FORWARD -j ACCEPT", // 2
        "iptables -F OUTPUT", // 3
        "iptables -N USER", // 4
        "iptables -X", // 5
        "iptables -t raw -A PREROUTING -j CT --notrack", // 6
      ].join("\n"),
    );
    expect(existing(rs, "filter")).toEqual(["INPUT@1:policy", "FORWARD@2:rule"]);
    expect(existing(rs, "raw")).toEqual(["PREROUTING@6:rule"]);
  });
  it("the first creation stays: a later -A does not move the chain", () => {
    const rs = load("script", "iptables -P INPUT ACCEPT\niptables -A INPUT -j ACCEPT\n");
    expect(existing(rs, "filter")).toEqual(["INPUT@1:policy"]);
  });
});

describe("nftChainExists for rule sets built without a parser", () => {
  it("takes rules or a non-ACCEPT policy as proof that a command named the chain", () => {
    const t = newTable("filter");
    const [input, forward, output] = ["INPUT", "FORWARD", "OUTPUT"].map((n) => t.chains.get(n)!);
    forward.policy = "DROP";
    output.created = { line: 7, by: "declaration" };
    expect([input, forward, output].map(nftChainExists)).toEqual([false, true, true]);
  });
});

describe("nf_tables rule handles follow creation order", () => {
  it("a restore file: declared chains first, then rules", () => {
    const rs = load(
      "save",
      "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-mark 1\nCOMMIT\n",
    );
    const rule = rs.tables.get("mangle")!.chains.get("PREROUTING")!.rules[0];
    // Recorded with iptables-nft 1.8.9 on Linux 6.18.44 (test/oracle/monitor m1-user-chain-end): 0x2.
    expect(nftRuleHandles(rs).get(rule), "got handle, want 2 (chain 1, rule 2)").toBe(2);
  });
  it("a built-in chain created by its first rule takes the handle just before it", () => {
    const rs = load(
      "save",
      [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":USER - [0:0]",
        "-A INPUT -j USER",
        "-A FORWARD -j ACCEPT",
        "-A USER -j RETURN",
        "-A FORWARD -j DROP",
        "COMMIT",
      ].join("\n"),
    );
    const t = rs.tables.get("filter")!;
    const h = nftRuleHandles(rs);
    const got = [...t.chains.values()].flatMap((c) => c.rules.map((r) => `${c.name}:${r.num}=${h.get(r)}`));
    // INPUT 1, USER 2, rule 3, FORWARD 4, rule 5, rule 6, rule 7.
    expect(got).toEqual(["INPUT:1=3", "FORWARD:1=5", "FORWARD:2=7", "USER:1=6"]);
  });
});
