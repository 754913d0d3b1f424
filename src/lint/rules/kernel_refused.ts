/**
 * kernel-refused: matches and targets in tables or chains where the kernel refuses them (TPROXY outside mangle
 * PREROUTING, TRACE/NOTRACK/CT outside raw, MASQUERADE outside nat POSTROUTING, `--dport` without `-p tcp`...).
 *
 * Kernel behaviour (net/netfilter/x_tables.c `xt_check_target` / `xt_check_match`: the extension's `.table`,
 * `.hooks` and `.proto`, then its checkentry; called from net/ipv4/netfilter/ip_tables.c `translate_table`,
 * Linux 6.18): the table replace fails with EINVAL and iptables-restore loads nothing of the table. The same
 * checks run here (src/netfilter/registry.ts `xtCheckEntry`) against each chain's hook mask, so a rule set that
 * the strict loader refuses is reported rule by rule.
 */
import type { Finding, LintContext, LintRule } from "../types";
import { ruleLocation } from "../types";
import type { Descriptor } from "../../netfilter/registry";
import { xtCheckEntry } from "../../netfilter/registry";
import type { TableName } from "../../netfilter/ruleset";
import { TABLE_BUILTIN_CHAINS } from "../../netfilter/ruleset";

export const kernelRefused: LintRule = {
  id: "kernel-refused",
  severity: "error",
  description: "matches/targets in a table, chain or protocol where the kernel's checkentry refuses them",
  check(ctx: LintContext): Finding[] {
    const out: Finding[] = [];
    for (const table of ctx.ruleset.tables.values()) {
      for (const chain of table.chains.values()) {
        const hooks = new Set(chain.hooks);
        for (const rule of chain.rules) {
          const items: Descriptor[] = [];
          const opts: unknown[] = [];
          for (const m of rule.matches) {
            const d = m.unknown ? undefined : ctx.registry.match(m.name);
            if (d) {
              items.push(d);
              opts.push(m.options);
            }
          }
          if (rule.target?.kind === "extension" && !rule.target.unknown) {
            const d = ctx.registry.target(rule.target.name);
            if (d) {
              items.push(d);
              opts.push(rule.target.options);
            }
          }
          items.forEach((d, i) => {
            const bad = xtCheckEntry(d, opts[i], {
              table: table.name,
              chain: chain.name,
              hooks,
              rule,
              fail: (message) => ({ code: "IPT_CHECKENTRY", message }),
            });
            if (!bad) return;
            out.push({
              id: kernelRefused.id,
              severity: kernelRefused.severity,
              ...ruleLocation(table.name, chain, rule),
              message: bad.message,
              explanation: `${d.kernelFile}'s checkentry (xt_check_${d.kind}) refuses this rule, so the kernel refuses the whole ${table.name} table (EINVAL) and iptables-restore loads none of it.`,
              fix: placementFix(d, table.name),
            });
          });
        }
      }
    }
    return out;
  },
};

function placementFix(d: Descriptor, table: TableName): string {
  const flag = d.kind === "match" ? `-m ${d.name}` : `-j ${d.name}`;
  if (d.table !== undefined && d.table !== table) {
    const chains = (d.hooks ?? TABLE_BUILTIN_CHAINS[d.table]).join(" or ");
    return `move the rule to table ${d.table} (iptables -t ${d.table} -A ${chains} ... ${flag})`;
  }
  if (d.hooks !== undefined) return `use ${flag} only in chains reached from ${d.hooks.join("/")}`;
  if (d.proto !== undefined)
    return `add "-p ${d.proto === 6 ? "tcp" : d.proto === 17 ? "udp" : d.proto}" to the rule`;
  return `fix the ${flag} options as ${d.userspaceFile} documents them`;
}
