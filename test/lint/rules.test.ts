/**
 * Each lint rule with a positive rule set (the finding is reported, at the right line) and a negative one (it is
 * not). Static checks only; the demonstrations through HostSim are in demo.test.ts.
 */
import { describe, expect, it } from "vitest";
import { lintText } from "../../src/lint/lint";
import type { Finding } from "../../src/lint/types";

function findings(rules: string, id: string): Finding[] {
  return lintText(rules, { file: "rules.v4", only: [id] }).findings.filter((f) => f.id === id);
}

function expectOne(rules: string, id: string, line: number): Finding {
  const got = findings(rules, id);
  expect(
    got.map((f) => `${f.line}: ${f.message}`),
    `${id}: got ${got.length} findings, want 1`,
  ).toHaveLength(1);
  expect(got[0].line, `${id}: got line ${got[0].line}, want ${line}`).toBe(line);
  expect(got[0].file).toBe("rules.v4");
  expect(got[0].explanation.length).toBeGreaterThan(20);
  expect(got[0].fix.length).toBeGreaterThan(5);
  return got[0];
}

function expectNone(rules: string, id: string): void {
  const got = findings(rules, id);
  expect(
    got.map((f) => `${f.line}: ${f.message}`),
    `${id}: want no findings`,
  ).toEqual([]);
}

const FILTER_HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
const NAT_HEAD =
  "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n";
const RAW_HEAD = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";

describe("snat-invalid-leak", () => {
  const masq = `${NAT_HEAD}-A POSTROUTING -s 10.0.0.0/8 -o eth0 -j MASQUERADE\nCOMMIT\n`;
  it("reports MASQUERADE with no INVALID drop at the MASQUERADE rule", () => {
    const f = expectOne(`${masq}${FILTER_HEAD}COMMIT\n`, "snat-invalid-leak", 6);
    expect(f.severity).toBe("warning");
    expect(f.where).toBe("nat:POSTROUTING:rule:1");
    expect(f.fix).toContain("--ctstate INVALID -j DROP");
  });
  it("reports SNAT reached through a user chain", () => {
    const rules = `${NAT_HEAD}:SNATS - [0:0]\n-A POSTROUTING -j SNATS\n-A SNATS -o eth0 -j SNAT --to-source 192.0.2.1\nCOMMIT\n`;
    expectOne(rules, "snat-invalid-leak", 8);
  });
  it("is quiet with an INVALID drop in FORWARD (conntrack or state match, direct or in a jumped-to chain)", () => {
    expectNone(
      `${masq}${FILTER_HEAD}-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n`,
      "snat-invalid-leak",
    );
    expectNone(
      `${masq}${FILTER_HEAD}-A FORWARD -m state --state INVALID -j DROP\nCOMMIT\n`,
      "snat-invalid-leak",
    );
    expectNone(
      `${masq}${FILTER_HEAD}:USER - [0:0]\n-A FORWARD -j USER\n-A USER -m conntrack --ctstate INVALID -j REJECT\nCOMMIT\n`,
      "snat-invalid-leak",
    );
  });
  it("is quiet with no SNAT at all", () => {
    expectNone(
      `${NAT_HEAD}-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080\nCOMMIT\n`,
      "snat-invalid-leak",
    );
  });
  it("reports an INVALID drop that an earlier conditional ACCEPT bypasses", () => {
    const rules = `${masq}${FILTER_HEAD}-A FORWARD -i eth1 -j ACCEPT\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n`;
    const f = expectOne(rules, "snat-invalid-leak", 6);
    expect(f.message).toContain("comes after ACCEPT rules");
    expect(f.message).toContain("line 12");
  });
  it("treats an unconditional ACCEPT before the drop as no drop", () => {
    const rules = `${masq}${FILTER_HEAD}-A FORWARD -j ACCEPT\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n`;
    expect(expectOne(rules, "snat-invalid-leak", 6).message).toContain('no "-m conntrack');
  });
  it("ignores ACCEPT rules for packets from lo (never forwarded)", () => {
    const rules = `${masq}${FILTER_HEAD}-A FORWARD -i lo -j ACCEPT\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n`;
    expectNone(rules, "snat-invalid-leak");
  });
});

describe("dnat-invalid-reset", () => {
  const dnat = `${NAT_HEAD}-A PREROUTING -d 192.0.2.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.5:8080\nCOMMIT\n`;
  it("reports DNAT with no INVALID drop", () => {
    const f = expectOne(`${dnat}${FILTER_HEAD}COMMIT\n`, "dnat-invalid-reset", 6);
    expect(f.message).toContain("DNAT");
  });
  it("is quiet with kube-proxy's KUBE-FORWARD INVALID drop", () => {
    const filter = `${FILTER_HEAD}:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\n-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n`;
    expectNone(`${dnat}${filter}`, "dnat-invalid-reset");
  });
  it("reports it when the chain holding the INVALID drop is never jumped to", () => {
    const filter = `${FILTER_HEAD}:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n`;
    expectOne(`${dnat}${filter}`, "dnat-invalid-reset", 6);
  });
});

describe("notrack-nat", () => {
  it("reports a DNAT whose traffic raw PREROUTING marks NOTRACK", () => {
    const rules = `${RAW_HEAD}-A PREROUTING -p tcp --dport 80 -j NOTRACK\nCOMMIT\n${NAT_HEAD}-A PREROUTING -d 192.0.2.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.5\nCOMMIT\n`;
    const f = expectOne(rules, "notrack-nat", 11);
    expect(f.message).toContain("raw:PREROUTING:rule:1");
  });
  it("reports CT --notrack too", () => {
    const rules = `${RAW_HEAD}-A PREROUTING -s 10.0.0.0/8 -j CT --notrack\nCOMMIT\n${NAT_HEAD}-A POSTROUTING -s 10.1.0.0/16 -j MASQUERADE\nCOMMIT\n`;
    expectOne(rules, "notrack-nat", 11);
  });
  it("is quiet when the selectors cannot overlap (other port, other subnet, other protocol)", () => {
    const nat = `${NAT_HEAD}-A PREROUTING -d 192.0.2.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.5\nCOMMIT\n`;
    expectNone(`${RAW_HEAD}-A PREROUTING -p tcp --dport 53 -j NOTRACK\nCOMMIT\n${nat}`, "notrack-nat");
    expectNone(`${RAW_HEAD}-A PREROUTING -d 198.51.100.0/24 -j NOTRACK\nCOMMIT\n${nat}`, "notrack-nat");
    expectNone(`${RAW_HEAD}-A PREROUTING -p udp -j NOTRACK\nCOMMIT\n${nat}`, "notrack-nat");
  });
  it("is quiet for raw OUTPUT NOTRACK against nat PREROUTING", () => {
    const nat = `${NAT_HEAD}-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.1.0.5\nCOMMIT\n`;
    expectNone(`${RAW_HEAD}-A OUTPUT -p tcp -j NOTRACK\nCOMMIT\n${nat}`, "notrack-nat");
  });
});

describe("kernel-refused", () => {
  it("reports TRACE outside raw and TPROXY outside mangle PREROUTING as errors", () => {
    const f = expectOne(`${FILTER_HEAD}-A FORWARD -j TRACE\nCOMMIT\n`, "kernel-refused", 5);
    expect(f.severity).toBe("error");
    expect(f.message).toContain('only valid in table "raw"');
    expect(f.fix).toContain("-t raw");
    const mangle =
      "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n";
    const t = expectOne(`${mangle}-A OUTPUT -p tcp -j TPROXY --on-port 3128\nCOMMIT\n`, "kernel-refused", 7);
    expect(t.message).toContain("PREROUTING");
  });
  it("follows hook masks through user chains", () => {
    const mangle =
      "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DIVERT - [0:0]\n";
    const bad = `${mangle}-A PREROUTING -j DIVERT\n-A OUTPUT -j DIVERT\n-A DIVERT -p tcp -j TPROXY --on-port 3128\nCOMMIT\n`;
    expectOne(bad, "kernel-refused", 10);
    const good = `${mangle}-A PREROUTING -j DIVERT\n-A DIVERT -p tcp -j TPROXY --on-port 3128\nCOMMIT\n`;
    expectNone(good, "kernel-refused");
  });
  it("is quiet for TRACE in raw and MASQUERADE in nat POSTROUTING", () => {
    expectNone(
      `${RAW_HEAD}-A PREROUTING -j TRACE\nCOMMIT\n${NAT_HEAD}-A POSTROUTING -j MASQUERADE\nCOMMIT\n`,
      "kernel-refused",
    );
  });
});

describe("chain-loop", () => {
  it("reports A -> B -> A once, at the jump that closes it", () => {
    const rules = `${FILTER_HEAD}:A - [0:0]\n:B - [0:0]\n-A FORWARD -j A\n-A A -j B\n-A B -j A\nCOMMIT\n`;
    const f = expectOne(rules, "chain-loop", 9);
    expect(f.severity).toBe("error");
    expect(f.message).toBe("loop: A -> B -> A");
  });
  it("reports a self-jump, and loops in unreachable chains", () => {
    expectOne(`${FILTER_HEAD}:A - [0:0]\n-A A -j A\nCOMMIT\n`, "chain-loop", 6);
  });
  it("is quiet for a diamond (two paths to one chain)", () => {
    const rules = `${FILTER_HEAD}:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n-A FORWARD -j A\n-A FORWARD -j B\n-A A -j C\n-A B -j C\nCOMMIT\n`;
    expectNone(rules, "chain-loop");
  });
});

describe("missing-chain", () => {
  it("reports a jump to an undeclared chain at its column", () => {
    const f = expectOne(`${FILTER_HEAD}-A FORWARD -j KUBE-FORWARD\nCOMMIT\n`, "missing-chain", 5);
    expect(f.severity).toBe("error");
    expect(f.column).toBe(15);
    expect(f.message).toContain("KUBE-FORWARD");
  });
  it("is quiet when the chain is declared", () => {
    expectNone(`${FILTER_HEAD}:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\nCOMMIT\n`, "missing-chain");
  });
});

describe("load-error", () => {
  it("reports syntax errors and unknown options with their code", () => {
    const f = expectOne(`${FILTER_HEAD}-A FORWARD -p tcp --dprot 22 -j ACCEPT\nCOMMIT\n`, "load-error", 5);
    expect(f.message).toMatch(/\[IPT_[A-Z_]+\]$/);
  });
  it("is quiet for a clean rule set", () => {
    expectNone(`${FILTER_HEAD}-A FORWARD -p tcp --dport 22 -j ACCEPT\nCOMMIT\n`, "load-error");
  });
});

describe("unreachable-rule", () => {
  it("reports the rules after an unconditional DROP, once per chain", () => {
    const rules = `${FILTER_HEAD}-A INPUT -i lo -j ACCEPT\n-A INPUT -j DROP\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -p udp -j ACCEPT\nCOMMIT\n`;
    const f = expectOne(rules, "unreachable-rule", 7);
    expect(f.message).toContain("lines 7, 8");
  });
  it("is quiet when the unconditional rule is last, or has a selector", () => {
    expectNone(
      `${FILTER_HEAD}-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n`,
      "unreachable-rule",
    );
    expectNone(`${FILTER_HEAD}-A INPUT -i eth0 -j DROP\n-A INPUT -j ACCEPT\nCOMMIT\n`, "unreachable-rule");
  });
  it("does not count a plain jump (the called chain may return)", () => {
    expectNone(`${FILTER_HEAD}:A - [0:0]\n-A INPUT -j A\n-A INPUT -j DROP\nCOMMIT\n`, "unreachable-rule");
  });
});

describe("shadowed-rule", () => {
  it("reports a rule whose packets an earlier, wider rule always takes", () => {
    const rules = `${FILTER_HEAD}-A FORWARD -s 10.0.0.0/8 -j DROP\n-A FORWARD -s 10.1.2.0/24 -p tcp --dport 443 -j ACCEPT\nCOMMIT\n`;
    const f = expectOne(rules, "shadowed-rule", 6);
    expect(f.severity).toBe("warning");
    expect(f.message).toContain("filter:FORWARD:rule:1");
  });
  it("covers port ranges, interface wildcards and conntrack states", () => {
    expectOne(
      `${FILTER_HEAD}-A FORWARD -i veth+ -p tcp -m multiport --dports 1:1024 -j DROP\n-A FORWARD -i veth+ -p tcp -m multiport --dports 1:1024 -j ACCEPT\nCOMMIT\n`,
      "shadowed-rule",
      6,
    );
    expectOne(
      `${FILTER_HEAD}-A FORWARD -i veth+ -p tcp --dport 1:1024 -j DROP\n-A FORWARD -i veth3 -p tcp --dport 80 -j ACCEPT\nCOMMIT\n`,
      "shadowed-rule",
      6,
    );
    expectOne(
      `${FILTER_HEAD}-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -m state --state ESTABLISHED -j DROP\nCOMMIT\n`,
      "shadowed-rule",
      6,
    );
  });
  it("calls a same-target shadow redundant (info)", () => {
    const rules = `${FILTER_HEAD}-A INPUT -p tcp -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n`;
    const f = expectOne(rules, "shadowed-rule", 6);
    expect(f.severity).toBe("info");
    expect(f.message).toMatch(/^redundant/);
  });
  it("is quiet when the earlier rule is narrower, not terminal, or uses a match it cannot follow", () => {
    expectNone(
      `${FILTER_HEAD}-A FORWARD -s 10.1.2.0/24 -j DROP\n-A FORWARD -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n`,
      "shadowed-rule",
    );
    expectNone(
      `${FILTER_HEAD}-A FORWARD -s 10.0.0.0/8 -j LOG\n-A FORWARD -s 10.1.0.0/16 -j ACCEPT\nCOMMIT\n`,
      "shadowed-rule",
    );
    expectNone(
      `${FILTER_HEAD}-A FORWARD -m limit --limit 5/sec -j ACCEPT\n-A FORWARD -p tcp -j DROP\nCOMMIT\n`,
      "shadowed-rule",
    );
    expectNone(
      `${FILTER_HEAD}-A FORWARD -p tcp --dport 80 -j DROP\n-A FORWARD -p tcp --dport 443 -j ACCEPT\nCOMMIT\n`,
      "shadowed-rule",
    );
  });
});

describe("unused-chain", () => {
  it("reports a chain nothing jumps to, and one only reached from it", () => {
    const rules = `${FILTER_HEAD}:OLD - [0:0]\n:OLDER - [0:0]\n-A OLD -j OLDER\n-A OLDER -j DROP\nCOMMIT\n`;
    const got = findings(rules, "unused-chain");
    expect(got.map((f) => f.where)).toEqual(["filter:OLD", "filter:OLDER"]);
    expect(got[0].message).toContain("never jumped to");
    expect(got[1].message).toContain("only jumped to from chains");
    expect(got.every((f) => f.severity === "info")).toBe(true);
  });
  it("is quiet for a chain reached from a built-in chain", () => {
    expectNone(`${FILTER_HEAD}:USER - [0:0]\n-A FORWARD -j USER\nCOMMIT\n`, "unused-chain");
  });
  it("leaves a missing chain to missing-chain", () => {
    expectNone(`${FILTER_HEAD}-A FORWARD -j NOPE\nCOMMIT\n`, "unused-chain");
  });
});
