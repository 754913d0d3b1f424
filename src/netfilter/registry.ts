/**
 * One registry of match and target descriptors by name, after the kernel's x_tables registry
 * (net/netfilter/x_tables.c: `xt_register_match`, `xt_register_target`, `xt_check_match`, `xt_check_target`,
 * kernel 6.17) and iptables' userspace extension list (libxtables/xtables.c `xtables_register_match`,
 * `xtables_find_match`, iptables 1.8.x).
 *
 * A descriptor joins the two halves: the option table and `parse`/`save` of `extensions/libxt_NAME.c`, and the
 * `.table`, `.hooks`, `.proto` fields and `checkentry` of `net/netfilter/xt_NAME.c`. The generic checks
 * (table, hook mask, protocol) are done here once, as `xt_check_match`/`xt_check_target` do them; a
 * descriptor's own `check` is its checkentry.
 *
 * Registering a duplicate name throws: that is a broken invariant, not bad input.
 *
 * Per-packet behaviour: `match` / `target` functions with the contract of ./skb.ts.
 *
 * Left out on purpose: revisions (each descriptor implements the newest revision iptables 1.8 saves), IPv6
 * families.
 */

import type { Diagnostic } from "../errors";
import type { Hook, ProtoSelector, Rule, TableName } from "./ruleset";
import type { MatchFn, TargetFn } from "./skb";

/** One option in a descriptor's table, like a `struct xt_option_entry`. */
export interface OptionSpec {
  /** Long name without dashes: "dport". */
  readonly name: string;
  /** Other spellings accepted on input ("destination-port"); saved under `name`. */
  readonly aliases?: readonly string[];
  /** Number of argument words (0, 1 or 2: `--tcp-flags MASK COMP`, `--match-set NAME FLAGS`). */
  readonly nargs: 0 | 1 | 2;
  /** Whether `! --opt` is allowed (XTOPT_INVERT). */
  readonly invert?: boolean;
}

/** One option occurrence as written in a rule. `name` is the canonical name from the spec. */
export interface XtOption {
  readonly name: string;
  readonly args: readonly string[];
  readonly invert: boolean;
  /** 1-based column of the option word in the source line. */
  readonly column: number;
}

/** User and group names and ipset names the loader resolves against (the emulated host's /etc/passwd etc.). */
export interface LoadEnvironment {
  readonly users: ReadonlyMap<string, number>;
  readonly groups: ReadonlyMap<string, number>;
  /** Known ipset names; undefined means any name is accepted. */
  readonly ipsets?: ReadonlySet<string>;
  /** Known nfacct object names; undefined means any name is accepted. */
  readonly nfacct?: ReadonlySet<string>;
}

export const DEFAULT_ENVIRONMENT: LoadEnvironment = {
  users: new Map([["root", 0]]),
  groups: new Map([["root", 0]]),
};

export interface XtParseContext {
  readonly table: TableName;
  /** The rule's `-p`, wherever it was written in the rule. */
  readonly proto?: ProtoSelector;
  readonly env: LoadEnvironment;
  /** Builds a diagnostic located at `at` (or at the extension's name). */
  fail(message: string, at?: XtOption): Diagnostic;
}

export interface XtCheckContext {
  readonly table: TableName;
  readonly chain: string;
  /** Hooks the chain is reachable from (empty for an unreachable user chain: no hook checks apply). */
  readonly hooks: ReadonlySet<Hook>;
  readonly rule: Rule;
  fail(message: string): Diagnostic;
}

interface DescriptorBase<O> {
  readonly name: string;
  /** Extra names (`-j NOTRACK` is its own descriptor; aliases are for spellings only). */
  readonly aliases?: readonly string[];
  /** Kernel file mirrored, for messages and docs: "net/netfilter/xt_conntrack.c". */
  readonly kernelFile: string;
  /** Userspace file mirrored: "extensions/libxt_conntrack.c". */
  readonly userspaceFile: string;
  readonly options: readonly OptionSpec[];
  /** The kernel's `.table`: the only table the extension may be used in. */
  readonly table?: TableName;
  /** The kernel's `.hooks`: hooks the extension may be reached from. */
  readonly hooks?: readonly Hook[];
  /** The kernel's `.proto`: the rule must say `-p` this protocol, not inverted. */
  readonly proto?: number;
  /** Userspace parse + final_check: options or a diagnostic. */
  parse(opts: readonly XtOption[], ctx: XtParseContext): O | Diagnostic;
  /** The kernel's checkentry beyond table/hooks/proto. */
  check?(options: O, ctx: XtCheckContext): Diagnostic | undefined;
  /** Canonical option text as iptables-save prints it, without the leading `-m NAME`/`-j NAME` ("" if none). */
  save(options: O): string;
}

export interface MatchDescriptor<O = unknown> extends DescriptorBase<O> {
  readonly kind: "match";
  /** The kernel's per-packet `match` (see ./skb). Undefined: not evaluable yet, the engine refuses the rule set. */
  readonly match?: MatchFn<O>;
}

export interface TargetDescriptor<O = unknown, C = O> extends DescriptorBase<O> {
  readonly kind: "target";
  /**
   * Runs once per rule when the table is compiled (the kernel's checkentry filling its private target data):
   * `target` then gets what it returns instead of the options. Without it `target` gets the options.
   */
  readonly prepare?: (options: O) => C;
  /** The kernel's per-packet `target` (see ./skb). NAT, REJECT and TPROXY are run by the engine itself. */
  readonly target?: TargetFn<C>;
}

export type Descriptor = MatchDescriptor | TargetDescriptor;

/** Distinguishes a parse failure from parsed options (options never carry a string `code` and `message`). */
export function isDiagnostic(value: unknown): value is Diagnostic {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Diagnostic).code === "string" &&
    typeof (value as Diagnostic).message === "string"
  );
}

export class Registry {
  private readonly matches = new Map<string, MatchDescriptor>();
  private readonly targets = new Map<string, TargetDescriptor>();

  register(d: MatchDescriptor<any> | TargetDescriptor<any, any>): this {
    const map: Map<string, Descriptor> = d.kind === "match" ? this.matches : this.targets;
    for (const name of [d.name, ...(d.aliases ?? [])]) {
      if (map.has(name)) throw new Error(`duplicate ${d.kind} descriptor "${name}"`);
      map.set(name, d as Descriptor);
    }
    return this;
  }

  match(name: string): MatchDescriptor | undefined {
    return this.matches.get(name);
  }

  target(name: string): TargetDescriptor | undefined {
    return this.targets.get(name);
  }

  /** Sorted primary names (aliases left out). */
  matchNames(): string[] {
    return [...new Set([...this.matches.values()].map((d) => d.name))].sort();
  }

  targetNames(): string[] {
    return [...new Set([...this.targets.values()].map((d) => d.name))].sort();
  }

  descriptors(): Descriptor[] {
    return [...new Set<Descriptor>([...this.matches.values(), ...this.targets.values()])];
  }
}

/** Each descriptor's spellings -> spec, built on first use (descriptors are immutable values). */
const OPTION_INDEX = new WeakMap<Descriptor, ReadonlyMap<string, OptionSpec>>();

/** Finds the spec for `--name` (by name or alias): the first spec of the table that has the spelling. */
export function findOption(d: Descriptor, name: string): OptionSpec | undefined {
  let index = OPTION_INDEX.get(d);
  if (index === undefined) {
    const m = new Map<string, OptionSpec>();
    for (const o of d.options) {
      if (!m.has(o.name)) m.set(o.name, o);
      for (const a of o.aliases ?? []) if (!m.has(a)) m.set(a, o);
    }
    index = m;
    OPTION_INDEX.set(d, index);
  }
  return index.get(name);
}

/** Each descriptor's option words -> spec, built on first use. */
const OPTION_WORDS = new WeakMap<Descriptor, ReadonlyMap<string, OptionSpec>>();

/**
 * The option words of a descriptor as a rule writes them, `--name` and `-name` for every name and alias (getopt_long_only
 * takes both), each to the spec `findOption` gives for the name: the loader looks a word up without slicing off
 * its dashes.
 */
export function optionWords(d: Descriptor): ReadonlyMap<string, OptionSpec> {
  let words = OPTION_WORDS.get(d);
  if (words === undefined) {
    const m = new Map<string, OptionSpec>();
    for (const o of d.options) {
      for (const name of [o.name, ...(o.aliases ?? [])]) {
        if (!m.has(`--${name}`)) m.set(`--${name}`, o);
        if (!m.has(`-${name}`)) m.set(`-${name}`, o);
      }
    }
    words = m;
    OPTION_WORDS.set(d, words);
  }
  return words;
}

/** Whether xtCheckEntry can refuse anything for `d`: without any of these it never looks at its context. */
export function hasCheckEntry(d: Descriptor): boolean {
  return d.table !== undefined || d.hooks !== undefined || d.proto !== undefined || d.check !== undefined;
}

/**
 * The generic part of `xt_check_match`/`xt_check_target`: table, hook mask and protocol, then the
 * descriptor's own checkentry.
 */
export function xtCheckEntry(d: Descriptor, options: unknown, ctx: XtCheckContext): Diagnostic | undefined {
  if (d.table !== undefined && d.table !== ctx.table) {
    return ctx.fail(`${d.kind} ${d.name} is only valid in table "${d.table}", not "${ctx.table}"`);
  }
  if (d.hooks !== undefined) {
    let allowed = true;
    for (const h of ctx.hooks) if (!d.hooks.includes(h)) allowed = false;
    const bad = allowed ? [] : [...ctx.hooks].filter((h) => !d.hooks!.includes(h));
    if (bad.length > 0) {
      return ctx.fail(
        `${d.kind} ${d.name} is only valid in ${d.hooks.join("/")}, but chain ${ctx.chain} is reached from ${bad.join("/")}`,
      );
    }
  }
  if (d.proto !== undefined) {
    const p = ctx.rule.proto;
    if (p === undefined || p.proto !== d.proto || p.invert) {
      return ctx.fail(`${d.kind} ${d.name} needs "-p ${protoName(d.proto)}" (not inverted)`);
    }
  }
  return d.check
    ? (d.check as (o: unknown, c: XtCheckContext) => Diagnostic | undefined)(options, ctx)
    : undefined;
}

/** Protocol names as iptables-save prints them (getprotobynumber on a stock /etc/protocols). */
export const PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [1, "icmp"],
  [2, "igmp"],
  [4, "ipencap"],
  [6, "tcp"],
  [17, "udp"],
  [33, "dccp"],
  [41, "ipv6"],
  [47, "gre"],
  [50, "esp"],
  [51, "ah"],
  [58, "ipv6-icmp"],
  [89, "ospf"],
  [103, "pim"],
  [112, "vrrp"],
  [132, "sctp"],
  [135, "mobility-header"],
  [136, "udplite"],
]);

const PROTO_ALIASES: ReadonlyMap<string, number> = new Map([
  ["icmpv6", 58],
  ["ipv6-icmp", 58],
  ["mh", 135],
  ["ipip", 4],
  ["all", 0],
]);

export function protoName(proto: number): string {
  return PROTOCOLS.get(proto) ?? String(proto);
}

/** Protocol names and aliases -> number (an alias wins over a name). */
const PROTOCOL_NUMBERS: ReadonlyMap<string, number> = new Map([
  ...[...PROTOCOLS].map(([num, name]) => [name, num] as const),
  ...PROTO_ALIASES,
]);

/** Parses `-p` values: a name, a number 0..255, or `all`. */
export function parseProto(text: string): number | undefined {
  const lower = text.toLowerCase();
  const named = PROTOCOL_NUMBERS.get(lower);
  if (named !== undefined) return named;
  if (/^\d+$/.test(lower)) {
    const n = Number(lower);
    return n <= 255 ? n : undefined;
  }
  return undefined;
}
