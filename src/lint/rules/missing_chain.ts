/**
 * missing-chain: `-j NAME` / `-g NAME` to a chain the rule set never declares (nor a known target).
 *
 * Kernel/userspace behaviour: iptables-restore (iptables 1.8.x, libiptc `iptc_append_entry` -> "Couldn't load
 * target") refuses the whole table; under the lenient load src/netfilter/parse_save.ts records IPT_NO_CHAIN as a
 * warning and creates the chain empty, so the jump returns at once. Reported from those warnings.
 */
import type { Finding, LintContext, LintRule } from "../types";

export const missingChain: LintRule = {
  id: "missing-chain",
  severity: "error",
  description: "jumps to chains that do not exist (iptables-restore refuses the table)",
  check(ctx: LintContext): Finding[] {
    return ctx.load.warnings
      .filter((w) => w.code === "IPT_NO_CHAIN")
      .map((w) => ({
        id: missingChain.id,
        severity: missingChain.severity,
        ...(w.file !== undefined ? { file: w.file } : {}),
        ...(w.line !== undefined ? { line: w.line } : {}),
        ...(w.column !== undefined ? { column: w.column } : {}),
        ...(w.excerpt !== undefined ? { text: w.excerpt.trim() } : {}),
        message: w.message.replace(/; kept under --allow-unknown$/, "").replace(/ \(targets: .*\)$/, ""),
        explanation:
          "iptables-restore refuses the whole table when a rule jumps to a chain that is not declared (and is not a target it knows), so none of the table's rules would be loaded.",
        fix: "declare the chain in the table (`:NAME - [0:0]`) before the rules that jump to it, or fix the target's spelling",
      }));
  },
};
