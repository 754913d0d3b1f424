/**
 * load-error: what iptables-restore itself would refuse (syntax, unknown options, bad values, missing COMMIT),
 * taken from the lenient load (src/netfilter/parse_save.ts, iptables 1.8.x `ios_restore` / `do_command4`).
 * Problems the other rules explain better (IPT_CHECKENTRY: kernel-refused, IPT_LOOP: chain-loop, IPT_NO_CHAIN:
 * missing-chain) are left to them.
 */
import type { Finding, LintContext, LintRule } from "../types";

const COVERED = new Set(["IPT_CHECKENTRY", "IPT_LOOP", "IPT_NO_CHAIN"]);

export const loadError: LintRule = {
  id: "load-error",
  severity: "error",
  description: "lines iptables-restore refuses (syntax, unknown extensions or options, bad values)",
  check(ctx: LintContext): Finding[] {
    return [...ctx.load.errors, ...ctx.load.warnings]
      .filter((d) => !COVERED.has(d.code))
      .map((d) => ({
        id: loadError.id,
        severity: d.severity === "error" ? "error" : "warning",
        ...(d.file !== undefined ? { file: d.file } : {}),
        ...(d.line !== undefined ? { line: d.line } : {}),
        ...(d.column !== undefined ? { column: d.column } : {}),
        ...(d.excerpt !== undefined ? { text: d.excerpt.trim() } : {}),
        message: `${d.message} [${d.code}]`,
        explanation:
          d.severity === "error"
            ? "iptables-restore stops at this line and loads nothing of the input."
            : "the strict loader (and `ctsim trace` without --allow-unknown) refuses this line; lint kept it so the rest can be checked, and the emulator never matches the rule.",
        fix: "correct the line (see `iptables-extensions(8)` for the extension's options)",
      }));
  },
};
