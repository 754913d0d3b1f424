/**
 * chain-loop: jumps that make a cycle of user chains.
 *
 * Kernel behaviour (net/ipv4/netfilter/ip_tables.c `mark_source_chains`, Linux 6.18): a loop is found while the
 * hook masks are propagated ("iptables: loop hook %u pos %u") and the table replace fails with ELOOP, so
 * iptables-restore reports "Too many levels of symbolic links". Found here by a depth-first walk of the jump
 * graph from every chain (loops in unreachable chains included, which the kernel also refuses).
 */
import type { Finding, LintContext, LintRule } from "../types";
import { ruleLocation } from "../types";
import type { Chain, Rule, Table } from "../../netfilter/ruleset";

export const chainLoop: LintRule = {
  id: "chain-loop",
  severity: "error",
  description: "jumps that form a loop (the kernel refuses the table with ELOOP)",
  check(ctx: LintContext): Finding[] {
    const out: Finding[] = [];
    for (const table of ctx.ruleset.tables.values()) {
      const reported = new Set<string>();
      const done = new Set<string>();
      const walk = (chain: Chain, stack: Chain[]): void => {
        if (done.has(chain.name)) return;
        for (const r of chain.rules) {
          if (r.target?.kind !== "jump") continue;
          const next = table.chains.get(r.target.chain);
          if (!next) continue;
          const at = stack.indexOf(next);
          if (at >= 0 || next === chain) {
            const cycle = [...stack.slice(at < 0 ? stack.length : at), chain, next].map((c) => c.name);
            const key = [...new Set(cycle)].sort().join(",");
            if (!reported.has(key)) {
              reported.add(key);
              out.push(finding(table, chain, r, cycle));
            }
            continue;
          }
          walk(next, [...stack, chain]);
        }
        done.add(chain.name);
      };
      for (const c of table.chains.values()) walk(c, []);
    }
    return out;
  },
};

function finding(table: Table, chain: Chain, rule: Rule, cycle: string[]): Finding {
  const path = cycle.filter((n, i) => i === 0 || n !== cycle[i - 1]).join(" -> ");
  return {
    id: chainLoop.id,
    severity: chainLoop.severity,
    ...ruleLocation(table.name, chain, rule),
    message: `loop: ${path}`,
    explanation:
      'mark_source_chains finds the cycle while it propagates hook masks and the kernel refuses the table (ELOOP, "Too many levels of symbolic links"): none of its rules would load.',
    fix: `break the cycle: remove or redirect this jump (or use RETURN in ${chain.name})`,
  };
}
