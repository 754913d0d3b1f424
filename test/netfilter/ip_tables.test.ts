// Tests for ipt_do_table: selectors, jump/goto/return, policies, counters and the TRACE labels.
// Expected TRACE labels follow net/ipv4/netfilter/ip_tables.c get_chainname_rulenum and the recordings in
// test/oracle/recordings (e.g. 02-fin-first: raw:PREROUTING:policy:2 after a -j TRACE rule).
import { describe, expect, it } from "vitest";
import { parseSave } from "../../src/netfilter/parse_save";
import { compileTable, iptDoTable, ifaceMatch, syncCounters } from "../../src/netfilter/ip_tables";
import type { TracePoint } from "../../src/netfilter/ip_tables";
import type { Skb } from "../../src/netfilter/skb";
import { Registry } from "../../src/netfilter/registry";
import { defaultRegistry } from "../../src/netfilter/xt/index";
import type { Hook } from "../../src/netfilter/ruleset";
import { parseTcpdumpText } from "../../src/wire/text";
import {
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  nfNatRange,
} from "../../src/nat/types";

function packet(line: string) {
  const { packets, errors } = parseTcpdumpText(line);
  expect(errors).toEqual([]);
  return packets[0];
}

function skbOf(line: string, inIface?: string, outIface?: string): Skb {
  return {
    pkt: packet(line),
    mark: 0,
    nfTrace: true,
    untracked: false,
    priority: 0,
    inIface,
    outIface,
    local: false,
    pktType: "host",
  };
}

function run(rules: string, table: "filter" | "raw" | "nat" | "mangle", hook: Hook, skb: Skb) {
  const { ruleset, errors } = parseSave(rules, { file: "t.v4" });
  expect(errors).toEqual([]);
  const { table: compiled, problems } = compileTable(ruleset.tables.get(table)!, defaultRegistry);
  expect(problems).toEqual([]);
  const traces: string[] = [];
  const result = iptDoTable(compiled, hook, skb, {
    now: 0,
    effects: { emitLocal: () => {}, log: () => {} },
    host: undefined,
    ruleState: new Map(),
    trace: (p: TracePoint) => traces.push(`${p.table}:${p.chain}:${p.comment}:${p.num}`),
  });
  return { result, traces, compiled };
}

const SYN = "IP 198.51.100.2.1836 > 192.0.2.80.80: Flags [S], seq 1, win 512, length 0";

describe("ip_packet_match", () => {
  it("interface wildcards", () => {
    expect(ifaceMatch("eth+", "eth0")).toBe(true);
    expect(ifaceMatch("eth+", "ens3")).toBe(false);
    expect(ifaceMatch("eth0", "eth0")).toBe(true);
    expect(ifaceMatch("eth0", "eth01")).toBe(false);
    expect(ifaceMatch("eth+", "")).toBe(false);
  });

  it("addresses under mask, negation, protocol", () => {
    const rules = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -s 198.51.100.0/24 -p udp -j ACCEPT
-A FORWARD ! -s 198.51.100.0/24 -p tcp -j ACCEPT
-A FORWARD -s 198.51.100.0/24 -d 192.0.2.0/25 -i eth0 -o eth1 -p tcp -j ACCEPT
COMMIT
`;
    const { result, traces } = run(rules, "filter", "FORWARD", skbOf(SYN, "eth0", "eth1"));
    expect(result.verdict).toBe("ACCEPT");
    expect(traces).toEqual(["filter:FORWARD:rule:3"]);
    const other = run(rules, "filter", "FORWARD", skbOf(SYN, "eth1", "eth0"));
    expect(other.result.verdict).toBe("DROP");
    expect(other.traces).toEqual(["filter:FORWARD:policy:4"]);
  });
});

describe("chains: jump, goto, return", () => {
  const rules = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A FORWARD -p tcp -j A
-A FORWARD -p tcp -j DROP
-A A -s 203.0.113.0/24 -j ACCEPT
-A A -p tcp -g B
-A A -j DROP
-A B -d 192.0.2.1/32 -j ACCEPT
COMMIT
`;

  it("a goto'd chain's implicit RETURN returns to the caller of the chain that did the goto", () => {
    const { result, traces } = run(rules, "filter", "FORWARD", skbOf(SYN, "eth0", "eth1"));
    // FORWARD rule 1 jumps to A; A rule 2 goes to B; B falls off its end (return:2) back to FORWARD rule 2.
    expect(traces).toEqual([
      "filter:FORWARD:rule:1",
      "filter:A:rule:2",
      "filter:B:return:2",
      "filter:FORWARD:rule:2",
    ]);
    expect(result.verdict).toBe("DROP");
    expect(result.decidedBy).toEqual({ table: "filter", chain: "FORWARD", comment: "rule", num: 2 });
  });

  it("an unconditional verdict rule is labelled return in a user chain and policy in a built-in one", () => {
    const rules2 = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:U - [0:0]
-A FORWARD -p tcp -j U
-A FORWARD -j ACCEPT
-A U -j RETURN
COMMIT
`;
    const { result, traces } = run(rules2, "filter", "FORWARD", skbOf(SYN, "eth0", "eth1"));
    expect(traces).toEqual(["filter:FORWARD:rule:1", "filter:U:return:1", "filter:FORWARD:policy:2"]);
    expect(result.verdict).toBe("ACCEPT");
  });

  it("RETURN with an empty stack ends at the built-in chain's policy", () => {
    const rules3 = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -j RETURN
-A FORWARD -j ACCEPT
COMMIT
`;
    const { result, traces } = run(rules3, "filter", "FORWARD", skbOf(SYN, "eth0", "eth1"));
    expect(traces).toEqual(["filter:FORWARD:rule:1", "filter:FORWARD:policy:3"]);
    expect(result.verdict).toBe("DROP");
  });

  it("counts packets and bytes per rule and policy", () => {
    const { compiled } = run(rules, "filter", "FORWARD", skbOf(SYN, "eth0", "eth1"));
    syncCounters(compiled);
    const fwd = compiled.source.chains.get("FORWARD")!;
    expect(fwd.rules.map((r) => r.counters.packets)).toEqual([1n, 1n]);
    expect(fwd.rules[0].counters.bytes).toBe(40n);
  });
});

describe("TRACE only while nf_trace is set", () => {
  it("prints nothing for an untraced packet", () => {
    const skb = skbOf(SYN, "eth0");
    skb.nfTrace = false;
    const { traces } = run(
      `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n`,
      "raw",
      "PREROUTING",
      skb,
    );
    expect(traces).toEqual([]);
  });

  it("a rule without a target only counts and traversal goes on", () => {
    const { traces, result } = run(
      `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p tcp\nCOMMIT\n`,
      "raw",
      "PREROUTING",
      skbOf(SYN, "eth0"),
    );
    expect(traces).toEqual(["raw:PREROUTING:rule:1", "raw:PREROUTING:policy:2"]);
    expect(result.verdict).toBe("ACCEPT");
  });
});

describe("compile problems", () => {
  it("reports a target without packet evaluation instead of silently accepting", () => {
    const reg = new Registry();
    for (const d of defaultRegistry.descriptors())
      reg.register(d.kind === "target" ? { ...d, target: undefined } : d);
    const { ruleset } = parseSave(
      `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j LOG\nCOMMIT\n`,
      {
        registry: reg,
      },
    );
    const { problems } = compileTable(ruleset.tables.get("filter")!, reg);
    expect(problems.map((p) => p.what)).toEqual(['target "LOG" has no packet evaluation yet']);
  });
});

describe("compiled targets", () => {
  it("hands NAT targets the kernel range made once at compile (prepare), other targets their options", () => {
    const { ruleset, errors } = parseSave(
      [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        "-A PREROUTING -p tcp -j DNAT --to-destination 192.0.2.10-192.0.2.11:8080-8081",
        "-A POSTROUTING -p tcp -j MASQUERADE --to-ports 2000-2001 --random-fully",
        "-A POSTROUTING -j LOG --log-prefix nat",
        "COMMIT",
        "",
      ].join("\n"),
      { file: "t.v4" },
    );
    expect(errors).toEqual([]);
    const { table, problems } = compileTable(ruleset.tables.get("nat")!, defaultRegistry);
    expect(problems).toEqual([]);
    const [dnat] = table.chains.get("PREROUTING")!.rules;
    expect(dnat.topt).toEqual(
      nfNatRange({
        flags: NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED,
        minAddr: 0xc000020a,
        maxAddr: 0xc000020b,
        minProto: 8080,
        maxProto: 8081,
      }),
    );
    const [masq, log] = table.chains.get("POSTROUTING")!.rules;
    expect(masq.topt).toEqual(
      nfNatRange({
        flags: NF_NAT_RANGE_PROTO_SPECIFIED | NF_NAT_RANGE_PROTO_RANDOM_FULLY,
        minProto: 2000,
        maxProto: 2001,
      }),
    );
    // No prepare: the target gets the parsed options object itself.
    expect(log.topt).toBe(log.rule.target?.kind === "extension" ? log.rule.target.options : undefined);
  });
});
