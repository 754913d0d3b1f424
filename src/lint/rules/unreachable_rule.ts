/**
 * unreachable-rule: rules after an unconditional terminal rule (`-j ACCEPT`, `-j DROP`, `-g CHAIN`, `-j DNAT`
 * with no selector) in the same chain.
 *
 * Kernel behaviour (net/ipv4/netfilter/ip_tables.c `ipt_do_table`, Linux 6.18): the unconditional rule ends the
 * chain for every packet, so no later entry is ever evaluated. One finding per chain, at the first unreachable
 * rule.
 */
import type { Finding, LintContext, LintRule } from "../types";
import { ruleLocation, ruleWhere } from "../types";
import { isTerminal, targetName, unconditional } from "../analysis";

export const unreachableRule: LintRule = {
  id: "unreachable-rule",
  severity: "warning",
  description: "rules after an unconditional ACCEPT/DROP/REJECT/goto in the same chain",
  check(ctx: LintContext): Finding[] {
    const out: Finding[] = [];
    for (const table of ctx.ruleset.tables.values()) {
      for (const chain of table.chains.values()) {
        const stop = chain.rules.findIndex((r) => isTerminal(r) && unconditional(r));
        if (stop < 0 || stop === chain.rules.length - 1) continue;
        const a = chain.rules[stop];
        const dead = chain.rules.slice(stop + 1);
        out.push({
          id: unreachableRule.id,
          severity: unreachableRule.severity,
          ...ruleLocation(table.name, chain, dead[0]),
          message: `unreachable: ${ruleWhere(table.name, chain, a)} (line ${a.source.line}) ends the chain with ${targetName(a)} for every packet; ${dead.length} later rule${dead.length === 1 ? "" : "s"} (lines ${dead.map((r) => r.source.line).join(", ")}) never run`,
          explanation:
            "A rule with no selector matches every packet; with a terminal target it ends the chain, so ipt_do_table never evaluates the entries after it.",
          fix: `move the rules before line ${a.source.line}, or give that rule a selector`,
        });
      }
    }
    return out;
  },
};
