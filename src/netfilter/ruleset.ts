/**
 * The iptables rule-set model: tables -> chains -> rules, as the kernel's x_tables holds them after
 * `iptables-restore` (net/ipv4/netfilter/ip_tables.c: `struct ipt_entry` with `struct ipt_ip` for the fixed
 * selectors, a list of `xt_entry_match` and one `xt_entry_target`; the table layouts of iptable_filter.c,
 * iptable_nat.c, iptable_mangle.c, iptable_raw.c and iptable_security.c). Kernel 6.17.
 *
 * Userspace side: iptables 1.8.x `iptables/iptables.c` (struct iptables_command_state) and libiptc's chain
 * model (built-in chains with policy and counters, user chains, jump vs goto).
 *
 * iptables-nft (iptables 1.8.9 `iptables/nft.c`: `nft_xt_builtin_init(h, table, chain)`,
 * `nft_chain_builtin_init`, `nft_chain_set`, `nft_rule_append`/`nft_rule_insert`, `nft_rule_flush`,
 * `nft_chain_user_add`/`nft_chain_restore`, `__nft_chain_del`) creates a built-in chain only when a command names
 * it: a `:CHAIN POLICY` line of a restore file (`-` too), `-A`/`-I`, `-P`, or `-F CHAIN`; `-N` and user-chain
 * declarations create the table and no built-in chain; `-X` without a chain deletes the built-in chains that have
 * no rules and policy ACCEPT. The model keeps every built-in chain (iptables-legacy registers a table's whole
 * layout) and records in `Chain.created` where the input created it in that sense, so `nftChainExists` tells which
 * base chains iptables-nft would have made (HostSim's `--backend nft`, nf_tables rule handles).
 *
 * Left out on purpose: IPv6 (ip6tables), arptables/ebtables, the `-f` fragment selector's evaluation, the TOS
 * selector of very old iptables, and the kernel's blob layout (offsets, underflows); chains are plain arrays
 * and rule numbers are array positions + 1 (what TRACE prints as `rule:N`). iptables-nft's `-F -v` without a chain
 * (which creates every built-in chain of the table) is not distinguished from `-F`.
 */

import type { Diagnostic } from "../errors";

export type TableName = "raw" | "mangle" | "nat" | "filter" | "security";
export const TABLE_NAMES: readonly TableName[] = ["raw", "mangle", "nat", "filter", "security"];

/** Netfilter IPv4 hooks under the chain names iptables gives them (NF_INET_PRE_ROUTING ... POST_ROUTING). */
export type Hook = "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING";
export const HOOKS: readonly Hook[] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/** Built-in chains per table, in hook order (the `valid_hooks` masks of iptable_*.c). */
export const TABLE_BUILTIN_CHAINS: Readonly<Record<TableName, readonly Hook[]>> = {
  raw: ["PREROUTING", "OUTPUT"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  security: ["INPUT", "FORWARD", "OUTPUT"],
};

export function isTableName(name: string): name is TableName {
  return (TABLE_NAMES as readonly string[]).includes(name);
}

export function isBuiltinChain(table: TableName, chain: string): chain is Hook {
  return (TABLE_BUILTIN_CHAINS[table] as readonly string[]).includes(chain);
}

/** Packet and byte counters (`[pkts:bytes]`); bigint because the kernel's are u64. */
export interface Counters {
  packets: bigint;
  bytes: bigint;
}

export function zeroCounters(): Counters {
  return { packets: 0n, bytes: 0n };
}

/** `-s` / `-d`: address and mask in host order, as `struct ipt_ip` holds them (the address is pre-masked). */
export interface AddrSelector {
  readonly addr: number;
  readonly mask: number;
  readonly invert: boolean;
}

/** `-i` / `-o`: an interface name; a trailing `+` is a prefix wildcard. */
export interface IfaceSelector {
  readonly name: string;
  readonly invert: boolean;
}

/** `-p`: protocol number (0 = all) and inversion. */
export interface ProtoSelector {
  readonly proto: number;
  readonly invert: boolean;
}

/** Where a rule (or chain) came from. `text` is the source line as written (continuations joined). */
export interface RuleSource {
  readonly file?: string;
  readonly line: number;
  readonly column: number;
  readonly text: string;
}

/** One `-m NAME ...` (or an implicit protocol match). `options` is the descriptor's parsed value. */
export interface MatchInstance {
  readonly name: string;
  /** Parsed options; undefined when the match is unknown (lenient mode). */
  readonly options: unknown;
  /** The option words as written after `-m NAME`, kept for unknown matches and for messages. */
  readonly raw: readonly string[];
  /** Loaded implicitly by `-p tcp --dport 22`; printed as `-m tcp` all the same. */
  readonly implicit: boolean;
  /** Unknown match kept under --allow-unknown: the rule never matches. */
  readonly unknown: boolean;
}

export type Verdict = "ACCEPT" | "DROP" | "RETURN" | "QUEUE";
export const VERDICTS: readonly Verdict[] = ["ACCEPT", "DROP", "RETURN", "QUEUE"];

export type RuleTarget =
  | { readonly kind: "verdict"; readonly verdict: Verdict }
  /** `-j CHAIN` (goto false) or `-g CHAIN` (goto true) to a user chain of the same table. */
  | { readonly kind: "jump"; readonly chain: string; readonly goto: boolean }
  | {
      readonly kind: "extension";
      readonly name: string;
      readonly options: unknown;
      readonly raw: readonly string[];
      readonly unknown: boolean;
    };

export interface Rule {
  /** 1-based position in its chain; kept current by the builder (TRACE prints it as `rule:N`). */
  num: number;
  readonly src?: AddrSelector;
  readonly dst?: AddrSelector;
  readonly inIface?: IfaceSelector;
  readonly outIface?: IfaceSelector;
  readonly proto?: ProtoSelector;
  /** `-f` / `! -f`: second and further fragments only (or not). */
  readonly fragment?: { readonly invert: boolean };
  readonly matches: readonly MatchInstance[];
  /** No target: the rule only counts. */
  readonly target?: RuleTarget;
  counters: Counters;
  readonly source: RuleSource;
  /** True when an unknown match, target or option was kept under --allow-unknown. */
  readonly neverMatches: boolean;
}

/** How the input created a chain in iptables-nft's sense (see the header). */
export type ChainCreatedBy = "declaration" | "rule" | "policy" | "flush" | "new-chain" | "implicit";

/** Where the input created a chain: the (1-based) line of the command, and which command it was. */
export interface ChainOrigin {
  readonly line: number;
  readonly by: ChainCreatedBy;
}

export interface Chain {
  readonly name: string;
  /** The hook for a built-in chain; undefined for user chains. */
  readonly builtin?: Hook;
  /**
   * Where the input created the chain (iptables-nft semantics, see the header). Undefined for a built-in chain
   * the input never named (it exists only for iptables-legacy) and for chains built without a parser.
   */
  created?: ChainOrigin;
  /** Built-in chains only. */
  policy?: "ACCEPT" | "DROP";
  counters: Counters;
  rules: Rule[];
  /** Hooks from which the chain is reachable; filled by the table check at COMMIT. */
  hooks: Hook[];
}

export interface Table {
  readonly name: TableName;
  /** Chains in creation order; `chainOrder()` gives the canonical print order. */
  readonly chains: Map<string, Chain>;
}

export interface Ruleset {
  /** Tables in the order they first appeared in the input. */
  readonly tables: Map<TableName, Table>;
}

/** A diagnostic with a severity: parsers return every one they found instead of stopping at the first. */
export interface RulesetDiagnostic extends Diagnostic {
  readonly severity: "error" | "warning";
}

export interface LoadResult {
  readonly ruleset: Ruleset;
  readonly errors: readonly RulesetDiagnostic[];
  readonly warnings: readonly RulesetDiagnostic[];
}

export function emptyRuleset(): Ruleset {
  return { tables: new Map() };
}

/** A fresh table: its built-in chains with policy ACCEPT and zero counters, as the kernel initialises it. */
export function newTable(name: TableName): Table {
  const chains = new Map<string, Chain>();
  for (const hook of TABLE_BUILTIN_CHAINS[name]) {
    chains.set(hook, {
      name: hook,
      builtin: hook,
      policy: "ACCEPT",
      counters: zeroCounters(),
      rules: [],
      hooks: [hook],
    });
  }
  return { name, chains };
}

export function newUserChain(name: string): Chain {
  return { name, counters: zeroCounters(), rules: [], hooks: [] };
}

/**
 * Whether iptables-nft would have created this chain: user chains always; built-in chains when the input created
 * them (`created`), or, for rule sets built without a parser, when they have rules or a non-ACCEPT policy (which
 * only a command naming the chain can give them).
 */
export function nftChainExists(chain: Chain): boolean {
  if (chain.builtin === undefined || chain.created !== undefined) return true;
  return chain.rules.length > 0 || (chain.policy ?? "ACCEPT") !== "ACCEPT";
}

/** Records that a command on `line` created `chain` (iptables-nft semantics); the first creation stays. */
export function markCreated(chain: Chain, line: number, by: ChainCreatedBy): void {
  if (chain.created === undefined) chain.created = { line, by };
}

/** Byte-wise string order (C strcmp), as libiptc sorts user chains. */
export function compareChainNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Canonical chain order of `iptables-save`: built-ins in hook order, then user chains sorted by name. */
export function chainOrder(table: Table): Chain[] {
  const builtins = TABLE_BUILTIN_CHAINS[table.name]
    .map((h) => table.chains.get(h))
    .filter((c): c is Chain => c !== undefined);
  const users = [...table.chains.values()]
    .filter((c) => c.builtin === undefined)
    .sort((a, b) => compareChainNames(a.name, b.name));
  return [...builtins, ...users];
}

/** Renumbers a chain's rules 1..n after an insert or delete. */
export function renumber(chain: Chain): void {
  chain.rules.forEach((r, i) => (r.num = i + 1));
}

/** Number of rules over all tables and chains. */
export function ruleCount(ruleset: Ruleset): number {
  let n = 0;
  for (const t of ruleset.tables.values()) for (const c of t.chains.values()) n += c.rules.length;
  return n;
}
