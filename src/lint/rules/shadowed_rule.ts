/**
 * shadowed-rule: a rule that an earlier terminal rule of the same chain always takes first.
 *
 * Kernel behaviour (net/ipv4/netfilter/ip_tables.c `ipt_do_table`, Linux 6.18): entries of a chain are tried in
 * order and the first whose `ip_packet_match` and matches succeed with a terminal verdict ends the chain, so a
 * later rule whose selectors are a subset of an earlier terminal rule's never sees a packet.
 *
 * Only provable shadows are reported (src/lint/analysis.ts `covers`). Rules after an unconditional terminal
 * rule are unreachable-rule's, not reported here twice.
 */
import type { Finding, LintContext, LintRule } from "../types";
import { ruleLocation, ruleWhere } from "../types";
import { covers, isTerminal, targetName, unconditional } from "../analysis";

export const shadowedRule: LintRule = {
  id: "shadowed-rule",
  severity: "warning",
  description: "a rule that an earlier terminal rule of the same chain always matches first",
  check(ctx: LintContext): Finding[] {
    const out: Finding[] = [];
    for (const table of ctx.ruleset.tables.values()) {
      for (const chain of table.chains.values()) {
        const rules = chain.rules;
        const stop = rules.findIndex((r) => isTerminal(r) && unconditional(r));
        const end = stop < 0 ? rules.length : stop;
        for (let j = 1; j < end; j++) {
          const b = rules[j];
          if (b.neverMatches) continue;
          for (let i = 0; i < j; i++) {
            const a = rules[i];
            if (!isTerminal(a) || !covers(a, b)) continue;
            const same = targetName(a) === targetName(b);
            out.push({
              id: shadowedRule.id,
              severity: same ? "info" : shadowedRule.severity,
              ...ruleLocation(table.name, chain, b),
              message: same
                ? `redundant: ${ruleWhere(table.name, chain, a)} (line ${a.source.line}) already matches every packet this rule matches, with the same target`
                : `shadowed: ${ruleWhere(table.name, chain, a)} (line ${a.source.line}) matches every packet this rule matches and ends with ${targetName(a)}; this rule's ${targetName(b)} never applies`,
              explanation:
                "ipt_do_table tries a chain's rules in order; the first terminal match decides, so this rule is never reached by any packet.",
              fix: same
                ? `delete this rule, or narrow it and move it above line ${a.source.line}`
                : `move this rule above line ${a.source.line} (${a.source.text.trim()}) or narrow that rule`,
            });
            break;
          }
        }
      }
    }
    return out;
  },
};
