/**
 * Types of `ctsim lint`: static checks over an iptables rule set (and optionally the host it runs on), after
 * typescript-eslint's shape (one rule per file under ./rules, one registry in ./registry.ts) and the kernel's
 * table-replace checks they extend (net/ipv4/netfilter/ip_tables.c `translate_table`, `mark_source_chains`,
 * `check_target`; net/netfilter/x_tables.c `xt_check_target`), Linux 6.18.
 *
 * A rule is a pure function of the lenient load (src/netfilter/parse_save.ts under `allowUnknown`) and the host;
 * it returns findings, and where a finding can be shown dynamically a `DemoPlan`: packets in tcpdump text that
 * ./lint.ts runs through HostSim, and a judge that reads the reports.
 *
 * Leaves out on purpose: IPv6 rule sets, nft-native rule sets, anything that needs packet contents beyond the
 * rule's own selectors (the analyses are conservative: an unknown match means "cannot tell", never a finding).
 */
import type { Host } from "../host/types";
import type { Registry } from "../netfilter/registry";
import type { Chain, LoadResult, Rule, Ruleset, TableName } from "../netfilter/ruleset";
import type { PacketReport } from "../trace/events";

export type Severity = "info" | "warning" | "error";
export const SEVERITIES: readonly Severity[] = ["info", "warning", "error"];

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** What the emulator showed when it ran a finding's demonstration packets. */
export interface DemoResult {
  /** The packets as fed to HostSim (tcpdump text, one per line, with `IFACE In` prefixes). */
  readonly packets: readonly string[];
  /** One summary line per input packet (src/trace/summary.ts). */
  readonly summaries: readonly string[];
  /** True when the run showed the problem the finding describes. */
  readonly confirmed: boolean;
  /** What happened, in words ("left on eth0 with source 10.0.0.5 (not masqueraded)"). */
  readonly outcome: string;
}

/** A packet dialogue that demonstrates a finding and a judge of the reports it produced. */
export interface DemoPlan {
  /**
   * The next packet line given the reports of the packets so far (a dialogue can answer what the host did,
   * e.g. the backend a DNAT chose); undefined ends the demonstration.
   */
  next(reports: readonly PacketReport[]): string | undefined;
  /** Sysctls on top of the host file's (e.g. net.ipv4.ip_forward=1 when the finding is about forwarding). */
  readonly sysctl?: Readonly<Record<string, string | number>>;
  judge(reports: readonly PacketReport[]): { confirmed: boolean; outcome: string };
}

export interface Finding {
  /** The rule id ("snat-invalid-leak"). */
  readonly id: string;
  readonly severity: Severity;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** `nat:POSTROUTING:rule:1`, or `filter:FOO` for a chain. */
  readonly where?: string;
  /** The rule (or chain line) as written. */
  readonly text?: string;
  /** One line: what is wrong. */
  readonly message: string;
  /** Why it matters (kernel behaviour). */
  readonly explanation: string;
  /** What to write instead. */
  readonly fix: string;
  /** Filled by the runner from `plan` when a host was given. */
  demo?: DemoResult;
  /** Set by the rule; consumed by the runner (not serialised). */
  plan?: DemoPlan;
}

/** What a rule sees. */
export interface LintContext {
  readonly ruleset: Ruleset;
  /** The lenient load: its errors and warnings are input to some rules. */
  readonly load: LoadResult;
  readonly registry: Registry;
  readonly host?: Host;
  readonly file?: string;
}

export interface LintRule {
  readonly id: string;
  /** Default severity of its findings. */
  readonly severity: Severity;
  /** One line for `ctsim lint --list`. */
  readonly description: string;
  check(ctx: LintContext): Finding[];
}

/** `table:chain:rule:N` as TRACE prints it. */
export function ruleWhere(table: TableName, chain: Chain, rule: Rule): string {
  return `${table}:${chain.name}:rule:${rule.num}`;
}

/** Location fields of a finding about `rule`. */
export function ruleLocation(
  table: TableName,
  chain: Chain,
  rule: Rule,
): Pick<Finding, "file" | "line" | "column" | "where" | "text"> {
  return {
    ...(rule.source.file !== undefined ? { file: rule.source.file } : {}),
    line: rule.source.line,
    column: rule.source.column,
    where: ruleWhere(table, chain, rule),
    text: rule.source.text.trim(),
  };
}
