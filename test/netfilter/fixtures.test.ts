/**
 * Real rule sets (kube-proxy, Docker, Istio, libvirt, ufw, firewalld, ferm, Tails, Iptables_Semantics,
 * upstream iptables test dumps; see test/fixtures/iptables/SOURCES.md) load, and load -> save -> load is a
 * fixed point.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRuleset } from "../../src/netfilter/parse_script";
import type { LoadRulesetOptions } from "../../src/netfilter/parse_script";
import { ruleCount } from "../../src/netfilter/ruleset";
import { saveRuleset } from "../../src/netfilter/save";

const DIR = join(__dirname, "../fixtures/iptables");

/** Save text split into per-table blocks, sorted, so table order does not matter. */
function byTable(text: string): string[] {
  return text
    .split(/^COMMIT$/m)
    .map((b) => b.trim())
    .filter(Boolean)
    .sort();
}

interface FixtureCase {
  path: string;
  /** Minimum number of rules expected (guards against silently loading nothing). */
  minRules: number;
  options?: LoadRulesetOptions;
  /** Warnings expected (codes), in lenient mode. */
  warnings?: number;
}

const ISTIO_ENV = {
  users: new Map([["root", 0]]),
  groups: new Map([
    ["root", 0],
    ["java", 1001],
  ]),
};

const CASES: FixtureCase[] = [
  { path: "kubernetes/kube-proxy-TestOverallIPTablesRules.iptables-save", minRules: 60 },
  { path: "docker/docker-usernet-portmap.iptables-save", minRules: 20 },
  { path: "docker/docker-swarm-portmap.iptables-save", minRules: 20 },
  { path: "docker/docker-usernet-portmap-routed.iptables-save", minRules: 20 },
  { path: "docker/usernet-portmap.filter.S.txt", minRules: 15 },
  { path: "docker/usernet-portmap.nat.S.txt", minRules: 3, options: { defaultTable: "nat" } },
  { path: "istio/tproxy.v4.iptables-restore", minRules: 20 },
  { path: "istio/dns-uid-gid.v4.iptables-restore", minRules: 10 },
  { path: "istio/drop-invalid.v4.iptables-restore", minRules: 10 },
  {
    path: "istio/ipv6-dns-outbound-owner-groups.v4.iptables-restore",
    minRules: 10,
    options: { env: ISTIO_ENV },
  },
  { path: "libvirt/libvirt-nat-many-ips.iptables-restore", minRules: 20 },
  { path: "libvirt/base.iptables.cmds", minRules: 7, warnings: 17 },
  { path: "ufw/user.rules", minRules: 3 },
  { path: "ufw/before.rules", minRules: 20, options: { allowUnknown: true }, warnings: 1 },
  { path: "ufw/after.rules", minRules: 7, options: { allowUnknown: true }, warnings: 1 },
  { path: "netfilter-iptables/ipt-save-fedora27-iptables", minRules: 50 },
  { path: "netfilter-iptables/firewalld-restore-ipt-save-completed.txt", minRules: 50 },
  { path: "netfilter-iptables/ipt-save-ipt-save-filter.txt", minRules: 1 },
  { path: "netfilter-iptables/ipt-save-policy-drop.txt", minRules: 0 },
  { path: "netfilter-iptables/ipt-save-wireless.txt", minRules: 10 },
  { path: "netfilter-iptables/ipt-restore-iptables.dump", minRules: 5 },
  { path: "netfilter-iptables/nft-only-0010-iptables-nft-save.txt", minRules: 10 },
  { path: "net-network/ferm-dmz_router.iptables-save", minRules: 10 },
  { path: "net-network/ferm-dsl_router.iptables-save", minRules: 5 },
  { path: "net-network/ferm-webserver.iptables-save", minRules: 5 },
  { path: "net-network/serverfault-758088-docker.iptables-save", minRules: 10 },
  { path: "net-network/serverfault-769294.iptables-save", minRules: 10 },
  { path: "net-network/tails-1.4.1.iptables-save", minRules: 10 },
  { path: "net-network/tails-1.5.iptables-save", minRules: 10 },
  { path: "iptables_semantics/topos-factory.by-linux-kernel.iptables-save", minRules: 10 },
  {
    path: "iptables_semantics/contrived.iptables-save",
    minRules: 5,
    options: { allowUnknown: true },
    warnings: 1,
  },
];

describe("real rule sets", () => {
  for (const c of CASES) {
    it(`${c.path} loads and round-trips`, () => {
      const text = readFileSync(join(DIR, c.path), "utf8");
      const first = loadRuleset(text, { file: c.path, ...c.options });
      expect(first.errors.map((e) => `${e.line}:${e.column} ${e.message}`)).toEqual([]);
      expect(first.warnings.length, `got ${first.warnings.length} warnings, want ${c.warnings ?? 0}`).toBe(
        c.warnings ?? 0,
      );
      const n = ruleCount(first.ruleset);
      expect(n, `got ${n} rules, want at least ${c.minRules}`).toBeGreaterThanOrEqual(c.minRules);
      const saved = saveRuleset(first.ruleset, { counters: true });
      const second = loadRuleset(saved, {
        file: `${c.path} (resaved)`,
        format: "save",
        ...c.options,
        allowUnknown: c.options?.allowUnknown,
      });
      expect(second.errors).toEqual([]);
      expect(saveRuleset(second.ruleset, { counters: true })).toBe(saved);
      expect(ruleCount(second.ruleset)).toBe(n);
    });
  }

  it("libvirt's command list for a NAT network applies on top of its base commands", () => {
    const base = readFileSync(join(DIR, "libvirt/base.iptables.cmds"), "utf8");
    const nat = readFileSync(join(DIR, "libvirt/nat-many-ips-linux.iptables.cmds"), "utf8");
    const alone = loadRuleset(nat, { file: "nat-many-ips-linux.iptables.cmds" });
    expect(alone.errors[0]?.code, "the fragment alone refers to chains the base creates").toBe(
      "IPT_NO_CHAIN",
    );
    const r = loadRuleset(`${base}\n${nat}`, { file: "base+nat" });
    expect(r.errors).toEqual([]);
    const replayed = loadRuleset(
      readFileSync(join(DIR, "libvirt/libvirt-nat-many-ips.iptables-restore"), "utf8"),
    );
    expect(byTable(saveRuleset(r.ruleset))).toEqual(byTable(saveRuleset(replayed.ruleset)));
  });

  it("kube-proxy TestTracePacket is refused at its unquoted multi-word comments, as real iptables-restore does", () => {
    const text = readFileSync(join(DIR, "kubernetes/kube-proxy-TestTracePacket.iptables-save"), "utf8");
    const r = loadRuleset(text, { file: "trace.iptables-save" });
    expect(r.errors.length).toBeGreaterThan(0);
    expect(
      r.errors.every((e) => e.code === "IPT_SYNTAX" && e.message.startsWith("unexpected argument")),
    ).toBe(true);
    expect(r.errors[0].line, `got line ${r.errors[0].line}`).toBe(11);
  });

  it("Iptables_Semantics parser-test: only the lines real iptables refuses are errors", () => {
    const text = readFileSync(join(DIR, "iptables_semantics/parser-test.iptables-save"), "utf8");
    const r = loadRuleset(text, { file: "parser-test" });
    expect(r.errors.map((e) => [e.line, e.code])).toEqual([
      [12, "IPT_UNKNOWN_OPTION"],
      [40, "IPT_UNKNOWN_MATCH"],
      [41, "IPT_UNKNOWN_MATCH"],
    ]);
    const lenient = loadRuleset(text, { file: "parser-test", allowUnknown: true });
    expect(lenient.errors).toEqual([]);
    const never = [...lenient.ruleset.tables.get("filter")!.chains.values()].flatMap((c) =>
      c.rules.filter((x) => x.neverMatches),
    );
    expect(never.map((x) => x.source.line)).toEqual([12, 40, 41]);
  });

  it("ufw fragments reference chains ufw creates elsewhere: an error naming the chain unless lenient", () => {
    const text = readFileSync(join(DIR, "ufw/before.rules"), "utf8");
    const r = loadRuleset(text, { file: "before.rules" });
    expect(r.errors.map((e) => `${e.line}:${e.column}`)).toEqual(["30:55", "63:61"]);
    expect(r.errors[0].message).toContain('"ufw-logging-deny"');
  });
});
