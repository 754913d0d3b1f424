/**
 * unused-chain: user chains no rule jumps to, and chains only reachable from such chains.
 *
 * Kernel behaviour (net/ipv4/netfilter/ip_tables.c `mark_source_chains`, Linux 6.18): a user chain's hook mask
 * is the set of built-in chains it is reachable from; a chain with an empty mask is loaded but never traversed.
 * (The mask is what src/netfilter/parse_save.ts `checkTable` stores in `Chain.hooks`.)
 */
import type { Finding, LintContext, LintRule } from "../types";

export const unusedChain: LintRule = {
  id: "unused-chain",
  severity: "info",
  description: "user chains that no built-in chain reaches (never traversed)",
  check(ctx: LintContext): Finding[] {
    const out: Finding[] = [];
    const implicit = new Set(
      ctx.load.warnings.filter((w) => w.code === "IPT_NO_CHAIN").map((w) => w.line ?? -1),
    );
    for (const table of ctx.ruleset.tables.values()) {
      const referenced = new Set<string>();
      for (const c of table.chains.values())
        for (const r of c.rules) if (r.target?.kind === "jump") referenced.add(r.target.chain);
      for (const chain of table.chains.values()) {
        if (chain.builtin || chain.hooks.length > 0) continue;
        // A chain created by a jump to a missing chain is missing-chain's finding.
        const first = chain.rules[0];
        if (chain.rules.length === 0 && referenced.has(chain.name) && implicit.size > 0) continue;
        const used = referenced.has(chain.name);
        out.push({
          id: unusedChain.id,
          severity: unusedChain.severity,
          ...(first?.source.file !== undefined
            ? { file: first.source.file }
            : ctx.file
              ? { file: ctx.file }
              : {}),
          ...(first
            ? { line: first.source.line, column: first.source.column, text: first.source.text.trim() }
            : {}),
          where: `${table.name}:${chain.name}`,
          message: used
            ? `chain ${chain.name} is only jumped to from chains that no built-in chain reaches`
            : `chain ${chain.name} is never jumped to`,
          explanation:
            "mark_source_chains gives this chain an empty hook mask: its rules are loaded but no packet ever traverses them.",
          fix: used
            ? `link the chain that jumps to ${chain.name} from a built-in chain, or delete both`
            : `add "-A <BUILTIN> -j ${chain.name}" where it should apply, or delete the chain (-F ${chain.name}; -X ${chain.name})`,
        });
      }
    }
    return out;
  },
};
