/**
 * The lint rule registry: one entry per file under ./rules (test/lint/registry.test.ts checks that every file is
 * listed, as typescript-eslint's rules index is checked). Order is the order findings of equal position print in.
 * A duplicate id is a broken invariant and throws at load.
 */
import type { LintRule } from "./types";
import { snatInvalidLeak } from "./rules/snat_invalid_leak";
import { dnatInvalidReset } from "./rules/dnat_invalid_reset";
import { notrackNat } from "./rules/notrack_nat";
import { kernelRefused } from "./rules/kernel_refused";
import { chainLoop } from "./rules/chain_loop";
import { missingChain } from "./rules/missing_chain";
import { loadError } from "./rules/load_error";
import { unreachableRule } from "./rules/unreachable_rule";
import { shadowedRule } from "./rules/shadowed_rule";
import { unusedChain } from "./rules/unused_chain";

export const LINT_RULES: readonly LintRule[] = [
  loadError,
  kernelRefused,
  chainLoop,
  missingChain,
  snatInvalidLeak,
  dnatInvalidReset,
  notrackNat,
  unreachableRule,
  shadowedRule,
  unusedChain,
];

const ids = new Set<string>();
for (const r of LINT_RULES) {
  if (ids.has(r.id)) throw new Error(`duplicate lint rule id "${r.id}"`);
  ids.add(r.id);
}

export function findLintRule(id: string): LintRule | undefined {
  return LINT_RULES.find((r) => r.id === id);
}
