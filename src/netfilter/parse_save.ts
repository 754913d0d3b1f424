/**
 * iptables-save / iptables-restore text, and the command executor shared with shell scripts.
 *
 * Mirrors iptables 1.8.x userspace: iptables/iptables-restore.c (`ios_restore`: `*table`, `:CHAIN POLICY
 * [pkts:bytes]`, `[pkts:bytes]` rule prefixes, `COMMIT`, `add_param_to_argv` double-quote handling),
 * iptables/iptables.c and iptables/xshared.c (`do_command4`, `command_default`: generic options, implicit
 * protocol matches, `!` inversion, `-c`), libiptc (chain create/delete/rename rules); and the kernel's table
 * replace checks in net/ipv4/netfilter/ip_tables.c (`translate_table`, `mark_source_chains` for the hook
 * mask of user chains and loop detection, `check_match`/`check_target`), kernel 6.17.
 *
 * Input accepted: canonical `iptables-save` (legacy and nft variants, with or without `-c` counters),
 * tool-written restore input (`* nat`, `-N`, `-I CHAIN n`, long options), `iptables -S` output (no `*table`
 * line: the table is `defaultTable`), CRLF line endings. Pre-1.4 postfix negation (`-d ! x`) is accepted
 * with a warning.
 *
 * Chain creation as iptables-nft 1.8.9 does it (iptables/nft.c `nft_xt_builtin_init` with a chain name): every
 * command that creates a chain records it in `Chain.created` (see ruleset.ts), so `--backend nft` runs only the
 * built-in chains the input declared or named.
 *
 * Left out on purpose: `--noflush` semantics beyond "do not flush the table first", hostnames in `-s`/`-d`
 * (no DNS), IPv6, `-t` inside restore input (refused, as iptables-restore does), `--wait` (ignored).
 */

import type { SourceLocation } from "../errors";
import { parseIpv4 } from "../wire/addr";
import type { Diagnostic } from "../errors";
import type {
  Descriptor,
  LoadEnvironment,
  OptionSpec,
  Registry,
  XtCheckContext,
  XtOption,
  XtParseContext,
} from "./registry";
import {
  DEFAULT_ENVIRONMENT,
  hasCheckEntry,
  isDiagnostic,
  optionWords,
  parseProto,
  xtCheckEntry,
} from "./registry";
import type {
  AddrSelector,
  Chain,
  Counters,
  Hook,
  IfaceSelector,
  LoadResult,
  MatchInstance,
  ProtoSelector,
  Rule,
  RuleSource,
  RuleTarget,
  Ruleset,
  RulesetDiagnostic,
  Table,
  TableName,
  Verdict,
} from "./ruleset";
import {
  TABLE_NAMES,
  VERDICTS,
  emptyRuleset,
  isBuiltinChain,
  isTableName,
  markCreated,
  newTable,
  newUserChain,
  renumber,
  zeroCounters,
} from "./ruleset";
import { defaultRegistry } from "./xt/index";
import { parseAddrMask } from "./xt/util";
import { formatRuleSpec } from "./save";

export interface LoadOptions {
  /** File name for diagnostics. */
  readonly file?: string;
  /** Unknown matches, targets, options and missing chains become warnings; such rules never match. */
  readonly allowUnknown?: boolean;
  /** Do not flush a table when its `*table` header is seen (iptables-restore --noflush). */
  readonly noflush?: boolean;
  /** Table for input without `*table` lines (`iptables -S` output). Default "filter". */
  readonly defaultTable?: TableName;
  readonly env?: LoadEnvironment;
  readonly registry?: Registry;
}

/** A word of a command line with the 1-based column it starts at. */
export interface Token {
  readonly text: string;
  readonly column: number;
}

/** The line a command came from. */
export interface LineInfo {
  readonly line: number;
  /** The source text (continuations joined), for excerpts and Rule.source. */
  readonly text: string;
}

/** XT_EXTENSION_MAXNAMELEN - 1 (the kernel's chain name limit). */
export const MAX_CHAIN_NAME = 28;
/** IFNAMSIZ - 1. */
export const MAX_IFACE_NAME = 15;

/** Targets iptables has that ctsim does not model: under --allow-unknown they are kept as unknown targets. */
const UNSUPPORTED_TARGETS = new Set([
  "AUDIT",
  "CLASSIFY",
  "CLUSTERIP",
  "CONNSECMARK",
  "DNPT",
  "ECN",
  "HL",
  "HMARK",
  "IDLETIMER",
  "LED",
  "MIRROR",
  "NFQUEUE",
  "RATEEST",
  "SAME",
  "SECMARK",
  "SET",
  "SNPT",
  "SYNPROXY",
  "TCPOPTSTRIP",
  "TEE",
  "TOS",
  "ULOG",
]);

/** Generic rule options: short letter -> long names. */
const GENERIC: ReadonlyMap<string, readonly string[]> = new Map([
  ["s", ["source", "src"]],
  ["d", ["destination", "dst"]],
  ["i", ["in-interface"]],
  ["o", ["out-interface"]],
  ["p", ["protocol"]],
  ["f", ["fragment"]],
  ["j", ["jump"]],
  ["g", ["goto"]],
  ["m", ["match"]],
  ["c", ["set-counters"]],
]);

/** Every spelling of an option table (`-x`, `--long-name`) -> its short letter; the first letter wins. */
function spellings(table: ReadonlyMap<string, readonly string[]>): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const [letter, longs] of table) {
    out.set(`-${letter}`, letter);
    for (const name of longs) if (!out.has(`--${name}`)) out.set(`--${name}`, letter);
  }
  return out;
}

const GENERIC_SPELLINGS = spellings(GENERIC);
const genericLetter = (word: string) => GENERIC_SPELLINGS.get(word);

/** Commands: letter -> long names. */
const COMMANDS: ReadonlyMap<string, readonly string[]> = new Map([
  ["A", ["append"]],
  ["I", ["insert"]],
  ["D", ["delete"]],
  ["R", ["replace"]],
  ["N", ["new-chain", "new"]],
  ["X", ["delete-chain"]],
  ["F", ["flush"]],
  ["P", ["policy"]],
  ["E", ["rename-chain"]],
  ["Z", ["zero"]],
  ["L", ["list"]],
  ["S", ["list-rules"]],
  ["C", ["check"]],
]);

const COMMAND_SPELLINGS = spellings(COMMANDS);
const commandLetter = (word: string) => COMMAND_SPELLINGS.get(word);

/** Options that change nothing in the rule set (`-w`, `-v`, `-n`, ...): dropped before parsing. */
const IGNORED_FLAGS = new Set(["-v", "--verbose", "-n", "--numeric", "-x", "--exact", "--line-numbers"]);
const IGNORED_WITH_OPTIONAL_NUMBER = new Set(["-w", "--wait", "-W", "--wait-interval"]);

/**
 * The words without the options that change nothing: `--opt=value` split first, then `-v`/`-n`/... dropped,
 * then `-w [seconds]` / `-W [usecs]` with their optional number. The input itself when there is none.
 */
function dropIgnoredOptions(argvIn: readonly Token[]): readonly Token[] {
  let plain = true;
  for (let i = 0; i < argvIn.length; i++) {
    if (isIgnoredOrJoined(argvIn[i].text)) {
      plain = false;
      break;
    }
  }
  if (plain) return argvIn;
  const argv = splitLongEquals(argvIn).filter((t) => !IGNORED_FLAGS.has(t.text));
  // -w [seconds], -W [usecs]
  const kept: Token[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (IGNORED_WITH_OPTIONAL_NUMBER.has(argv[i].text)) {
      if (i + 1 < argv.length && /^\d+(\.\d+)?$/.test(argv[i + 1].text)) i++;
      continue;
    }
    kept.push(argv[i]);
  }
  return kept;
}

/**
 * Whether dropIgnoredOptions has work with a word: one of IGNORED_FLAGS or IGNORED_WITH_OPTIONAL_NUMBER, or
 * `--opt=value`. The short ones are tested by their letter, so most words need no set lookup.
 */
export function isIgnoredOrJoined(x: string): boolean {
  if (x.charCodeAt(0) !== 0x2d /* - */) return false;
  const c = x.charCodeAt(1);
  if (c === 0x2d) return x.indexOf("=") > 2 || IGNORED_FLAGS.has(x) || IGNORED_WITH_OPTIONAL_NUMBER.has(x);
  // -v -n -x -w -W
  return x.length === 2 && (c === 0x76 || c === 0x6e || c === 0x78 || c === 0x77 || c === 0x57);
}

/** Splits `--opt=value` into two tokens, as getopt_long does. */
export function splitLongEquals(tokens: readonly Token[]): Token[] {
  const out: Token[] = [];
  for (const t of tokens) {
    const eq = t.text.indexOf("=");
    if (t.text.startsWith("--") && eq > 2) {
      out.push({ text: t.text.slice(0, eq), column: t.column });
      out.push({ text: t.text.slice(eq + 1), column: t.column + eq + 1 });
    } else out.push(t);
  }
  return out;
}

interface PendingExt {
  readonly kind: "match" | "target";
  readonly name: string;
  /** The descriptor; undefined for an unknown extension kept under --allow-unknown. */
  readonly desc: Descriptor | undefined;
  /** The descriptor's option words (optionWords); empty for an unknown extension. */
  readonly words: ReadonlyMap<string, OptionSpec>;
  readonly column: number;
  readonly implicit: boolean;
  unknown: boolean;
  readonly opts: XtOption[];
  readonly raw: string[];
}

/** A loaded extension of a rule, waiting for its options. */
function pendingExt(
  kind: "match" | "target",
  desc: Descriptor,
  column: number,
  implicit: boolean,
): PendingExt {
  return {
    kind,
    name: desc.name,
    desc,
    words: optionWords(desc),
    column,
    implicit,
    unknown: false,
    opts: [],
    raw: [],
  };
}

/** An unknown extension kept under --allow-unknown: its words are kept as written. */
function unknownExt(kind: "match" | "target", name: string, column: number): PendingExt {
  return {
    kind,
    name,
    desc: undefined,
    words: NO_WORDS,
    column,
    implicit: false,
    unknown: true,
    opts: [],
    raw: [],
  };
}

const NO_WORDS: ReadonlyMap<string, OptionSpec> = new Map();

/** `-sVALUE`-style generic options with the value attached (`/^-[sdiopjgmc]./`): the letter, else undefined. */
export function attachedGenericLetter(t: string): string | undefined {
  if (t.length < 3 || t.charCodeAt(0) !== 0x2d /* - */) return undefined;
  // "." of the regular expression: any code unit but a line terminator.
  const c = t.charCodeAt(2);
  if (c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029) return undefined;
  const letter = t[1];
  return "sdiopjgmc".includes(letter) ? letter : undefined;
}

/**
 * The XtParseContext of one extension of a rule being parsed: `fail` builds an IPT_BAD_VALUE diagnostic at the
 * option (or at the extension's name), its message prefixed with the extension's name once.
 */
class ExtParseContext implements XtParseContext {
  readonly proto: ProtoSelector | undefined;

  constructor(
    readonly table: TableName,
    proto: ProtoSelector | undefined,
    readonly env: LoadEnvironment,
    private readonly file: string | undefined,
    private readonly line: LineInfo,
    private readonly ext: PendingExt,
  ) {
    this.proto = proto;
  }

  fail(message: string, at?: XtOption): Diagnostic {
    const e = this.ext;
    return {
      ...(this.file !== undefined ? { file: this.file } : {}),
      line: this.line.line,
      column: at?.column ?? e.column,
      code: "IPT_BAD_VALUE",
      message: `${e.name}: ${message.replace(new RegExp(`^${e.name}: `), "")}`,
      excerpt: this.line.text,
    };
  }
}

/** One shape for every rule (undefined for what the rule does not say): built once per rule line. */
interface ParsedSpec {
  readonly srcs: readonly (AddrSelector | undefined)[];
  readonly dsts: readonly (AddrSelector | undefined)[];
  readonly inIface: IfaceSelector | undefined;
  readonly outIface: IfaceSelector | undefined;
  readonly proto: ProtoSelector | undefined;
  readonly fragment: { readonly invert: boolean } | undefined;
  readonly matches: readonly MatchInstance[];
  readonly target: RuleTarget | undefined;
  readonly counters: Counters | undefined;
  readonly neverMatches: boolean;
}

/** No `-s` (or `-d`): the rule is not expanded over addresses. */
const ANY_ADDRESS: readonly (AddrSelector | undefined)[] = [undefined];

/** What parseRuleSpec has read of one rule so far; the ParsedSpec once its extensions are parsed. */
class RuleSpec implements ParsedSpec {
  srcs = ANY_ADDRESS;
  dsts = ANY_ADDRESS;
  inIface: IfaceSelector | undefined = undefined;
  outIface: IfaceSelector | undefined = undefined;
  proto: ProtoSelector | undefined = undefined;
  fragment: { readonly invert: boolean } | undefined = undefined;
  matches: readonly MatchInstance[] = [];
  target: RuleTarget | undefined = undefined;
  counters: Counters | undefined = undefined;
  neverMatches = false;
  /** The matches in rule order (`-m NAME`, implicit protocol matches), options not parsed yet. */
  readonly exts: PendingExt[] = [];
  targetExt: PendingExt | undefined = undefined;
  /** A `!` waiting for the option it inverts, and its column. */
  invert = false;
  invertCol = 0;
  /** Generic options given once already, a bit per letter of "sdiopj" (-g counts as -j). */
  seen = 0;

  constructor(
    readonly tableName: TableName,
    readonly table: Table,
    readonly tokens: readonly Token[],
    readonly line: LineInfo,
  ) {}
}

/** `rest[at]` when it can be a chain name (a word that is not an option), else undefined. */
function chainWord(rest: readonly Token[], at: number): Token | undefined {
  const t = rest[at];
  return !t || (t.text.startsWith("-") && t.text.length > 1) ? undefined : t;
}

/** The XtCheckContext of one rule at the table check: `fail` locates an IPT_CHECKENTRY diagnostic at the rule. */
class RuleCheckContext implements XtCheckContext {
  constructor(
    readonly table: TableName,
    readonly chain: string,
    readonly hooks: ReadonlySet<Hook>,
    readonly rule: Rule,
  ) {}

  fail(message: string): Diagnostic {
    const s = this.rule.source;
    return {
      ...(s.file !== undefined ? { file: s.file } : {}),
      line: s.line,
      column: s.column,
      code: "IPT_CHECKENTRY",
      message,
      excerpt: s.text,
    };
  }
}

/** What the option readers of parseRuleSpec return instead of a word index: stop reading, or refuse the rule. */
const STOP = -1;
const ABORT = -2;

/** An extension option word: `--name` or `-name`, not a negative number (`-5`). */
function isExtensionOptionWord(t: string): boolean {
  const c1 = t.charCodeAt(1);
  return t.charCodeAt(0) === 0x2d /* - */ && t.length > 1 && !(c1 >= 0x30 && c1 <= 0x39);
}

/**
 * Builds a Ruleset from commands. Both the restore parser and the shell-script parser drive it; errors and
 * warnings are collected, never thrown.
 */
export class RulesetBuilder {
  readonly ruleset: Ruleset = emptyRuleset();
  readonly errors: RulesetDiagnostic[] = [];
  readonly warnings: RulesetDiagnostic[] = [];
  readonly registry: Registry;
  readonly env: LoadEnvironment;
  private readonly checked = new Set<TableName>();

  constructor(readonly options: LoadOptions = {}) {
    this.registry = options.registry ?? defaultRegistry;
    this.env = options.env ?? DEFAULT_ENVIRONMENT;
  }

  get lenient(): boolean {
    return this.options.allowUnknown === true;
  }

  private diag(
    severity: "error" | "warning",
    code: string,
    message: string,
    line: LineInfo | undefined,
    column?: number,
  ): RulesetDiagnostic {
    const loc: SourceLocation = {
      ...(this.options.file !== undefined ? { file: this.options.file } : {}),
      ...(line ? { line: line.line } : {}),
      ...(line && column !== undefined ? { column } : {}),
    };
    const d: RulesetDiagnostic = { ...loc, severity, code, message, ...(line ? { excerpt: line.text } : {}) };
    (severity === "error" ? this.errors : this.warnings).push(d);
    return d;
  }

  error(code: string, message: string, line: LineInfo | undefined, column?: number): void {
    this.diag("error", code, message, line, column);
  }

  warn(code: string, message: string, line: LineInfo | undefined, column?: number): void {
    this.diag("warning", code, message, line, column);
  }

  /** Error, or a warning under --allow-unknown. Returns true when processing may go on. */
  unknown(code: string, message: string, line: LineInfo, column?: number): boolean {
    if (this.lenient) {
      this.warn(code, `${message}; kept under --allow-unknown`, line, column);
      return true;
    }
    this.error(code, message, line, column);
    return false;
  }

  table(name: TableName): Table {
    let t = this.ruleset.tables.get(name);
    if (!t) {
      t = newTable(name);
      this.ruleset.tables.set(name, t);
    }
    return t;
  }

  /** `*table`: a fresh table unless noflush. */
  startTable(name: TableName): void {
    if (!this.options.noflush || !this.ruleset.tables.has(name))
      this.ruleset.tables.set(name, newTable(name));
    this.checked.delete(name);
  }

  /** `:CHAIN POLICY [pkts:bytes]`. */
  declareChain(
    tableName: TableName,
    name: string,
    policy: string,
    counters: Counters | undefined,
    line: LineInfo,
    column: number,
  ): void {
    const table = this.table(tableName);
    if (isBuiltinChain(tableName, name)) {
      const chain = table.chains.get(name)!;
      if (policy === "-") {
        // iptables-restore leaves the policy as it is (kube-proxy writes this); iptables-nft creates the chain.
        if (counters) chain.counters = counters;
        markCreated(chain, line.line, "declaration");
        return;
      }
      if (policy !== "ACCEPT" && policy !== "DROP") {
        this.error(
          "IPT_BAD_POLICY",
          `bad policy "${policy}" for built-in chain ${name} (ACCEPT or DROP)`,
          line,
          column,
        );
        return;
      }
      chain.policy = policy;
      if (counters) chain.counters = counters;
      markCreated(chain, line.line, "declaration");
      return;
    }
    if (policy !== "-") {
      this.error(
        "IPT_BAD_POLICY",
        `user chain ${name} cannot have a policy ("${policy}"); write "-"`,
        line,
        column,
      );
      return;
    }
    if (!this.checkChainName(tableName, name, line, column)) return;
    const existing = table.chains.get(name);
    if (existing) {
      existing.rules = [];
      if (counters) existing.counters = counters;
      return;
    }
    const chain = newUserChain(name);
    if (counters) chain.counters = counters;
    markCreated(chain, line.line, "declaration");
    table.chains.set(name, chain);
  }

  private checkChainName(tableName: TableName, name: string, line: LineInfo, column: number): boolean {
    if (name.length === 0 || name.length > MAX_CHAIN_NAME) {
      this.error(
        "IPT_BAD_CHAIN_NAME",
        `chain name "${name}" must be 1..${MAX_CHAIN_NAME} characters`,
        line,
        column,
      );
      return false;
    }
    if (name.startsWith("-") || name.startsWith("!") || /\s/.test(name)) {
      this.error("IPT_BAD_CHAIN_NAME", `invalid chain name "${name}"`, line, column);
      return false;
    }
    if ((VERDICTS as readonly string[]).includes(name) || this.registry.target(name)) {
      this.error("IPT_BAD_CHAIN_NAME", `chain name "${name}" clashes with a target name`, line, column);
      return false;
    }
    if (isBuiltinChain(tableName, name)) {
      this.error("IPT_CHAIN_EXISTS", `chain ${name} already exists in table ${tableName}`, line, column);
      return false;
    }
    return true;
  }

  /** A chain that must exist; under --allow-unknown a missing user chain is created empty. */
  private chainFor(tableName: TableName, name: Token, line: LineInfo): Chain | undefined {
    const table = this.table(tableName);
    const c = table.chains.get(name.text);
    if (c) return c;
    const msg = `chain "${name.text}" does not exist in table ${tableName} (defined elsewhere? declare it with ":${name.text} - [0:0]" or -N)`;
    if (!this.unknown("IPT_NO_CHAIN", msg, line, name.column)) return undefined;
    if (isBuiltinChain(tableName, name.text) || name.text.length > MAX_CHAIN_NAME) return undefined;
    const created = newUserChain(name.text);
    markCreated(created, line.line, "implicit");
    table.chains.set(name.text, created);
    return created;
  }

  /** Runs one iptables command (argv without the program name) against `tableName`. */
  exec(tableName: TableName, argvIn: readonly Token[], line: LineInfo, counters?: Counters): void {
    this.checked.delete(tableName);
    const argv = dropIgnoredOptions(argvIn);
    // Find the command option and its arguments.
    let cmdIndex = -1;
    let letter: string | undefined;
    let attached: Token | undefined;
    for (let i = 0; i < argv.length; i++) {
      const t = argv[i].text;
      letter = commandLetter(t);
      if (!letter && /^-[AIDRNXFPEZLSC]./.test(t) && !t.startsWith("--")) {
        letter = t[1];
        attached = { text: t.slice(2), column: argv[i].column + 2 };
      }
      if (letter) {
        cmdIndex = i;
        break;
      }
      // skip the value of a generic option so "-s -A" style values are not taken as commands
      if (genericLetter(t) && genericLetter(t) !== "f" && i + 1 < argv.length) i++;
    }
    if (cmdIndex < 0 || !letter) {
      this.error(
        "IPT_NO_COMMAND",
        "no command given (expected -A, -I, -N, -P, -F, -X, -D, -R, -E or -Z)",
        line,
        argv[0]?.column ?? 1,
      );
      return;
    }
    const cmdTok = argv[cmdIndex];
    // The words after the command are rest[at...]; rest[at] is normally the chain when the command takes one.
    const plain = cmdIndex === 0 && !attached;
    const rest = plain
      ? argv
      : [...argv.slice(0, cmdIndex), ...(attached ? [attached] : []), ...argv.slice(cmdIndex + 1)];
    let at = plain ? 1 : 0;
    this.table(tableName);
    switch (letter) {
      case "A":
      case "I":
      case "R":
      case "D":
      case "C":
        this.ruleCommand(tableName, letter, cmdTok, rest, at, line, counters);
        return;
      case "L":
      case "S":
        return;
    }
    at = this.chainCommand(tableName, letter, cmdTok, rest, at, line, counters);
    if (at >= 0 && rest.length > at)
      this.error("IPT_SYNTAX", `unexpected argument "${rest[at].text}"`, line, rest[at].column);
  }

  /** `-A`, `-I`, `-R`, `-D`, `-C` with the words after the command in `rest[at...]`. */
  private ruleCommand(
    tableName: TableName,
    letter: "A" | "I" | "R" | "D" | "C",
    cmdTok: Token,
    rest: readonly Token[],
    at: number,
    line: LineInfo,
    counters: Counters | undefined,
  ): void {
    const chainTok = chainWord(rest, at);
    if (!chainTok) {
      this.error("IPT_SYNTAX", `${cmdTok.text} needs a chain name`, line, cmdTok.column);
      return;
    }
    at++;
    let index: number | undefined;
    if ((letter === "I" || letter === "R" || letter === "D") && rest[at] && /^\d+$/.test(rest[at].text)) {
      index = Number(rest[at++].text);
    }
    if (letter === "R" && index === undefined) {
      this.error("IPT_SYNTAX", "-R needs a rule number", line, cmdTok.column);
      return;
    }
    const chain = this.chainFor(tableName, chainTok, line);
    if (!chain) return;
    if (letter === "D" && index !== undefined) {
      if (rest.length > at)
        this.error("IPT_SYNTAX", "-D with a rule number takes no rule", line, rest[at].column);
      else if (index < 1 || index > chain.rules.length) {
        this.error(
          "IPT_NO_RULE",
          `-D ${chain.name} ${index}: no such rule (chain has ${chain.rules.length})`,
          line,
          cmdTok.column,
        );
      } else {
        chain.rules.splice(index - 1, 1);
        renumber(chain);
      }
      return;
    }
    const spec = this.parseRuleSpec(tableName, rest, at, line);
    if (!spec) return;
    const file = this.options.file;
    const source: RuleSource =
      file !== undefined
        ? { file, line: line.line, column: cmdTok.column, text: line.text }
        : { line: line.line, column: cmdTok.column, text: line.text };
    const rules = this.expand(spec, source, counters);
    // iptables-nft: nft_rule_append / nft_rule_insert create the built-in chain (nft_xt_builtin_init).
    if (letter === "A" || letter === "I") markCreated(chain, line.line, "rule");
    if (letter === "A") {
      // The rules already there keep their numbers: number only the new ones (renumber is O(chain)).
      const before = chain.rules.length;
      for (let k = 0; k < rules.length; k++) chain.rules.push(rules[k]);
      if (before > 0 && chain.rules[before - 1].num !== before) renumber(chain);
      else for (let k = before; k < chain.rules.length; k++) chain.rules[k].num = k + 1;
      return;
    } else if (letter === "I") {
      const at = index ?? 1;
      if (at < 1 || at > chain.rules.length + 1) {
        this.error(
          "IPT_NO_RULE",
          `-I ${chain.name} ${at}: index of insertion too big (chain has ${chain.rules.length})`,
          line,
          cmdTok.column,
        );
        return;
      }
      chain.rules.splice(at - 1, 0, ...rules);
    } else if (letter === "R") {
      if (index! < 1 || index! > chain.rules.length || rules.length !== 1) {
        this.error(
          "IPT_NO_RULE",
          `-R ${chain.name} ${index}: no such rule (chain has ${chain.rules.length})`,
          line,
          cmdTok.column,
        );
        return;
      }
      chain.rules[index! - 1] = rules[0];
    } else if (letter === "D" || letter === "C") {
      for (const r of rules) {
        const text = formatRuleSpec(r, this.registry);
        const at = chain.rules.findIndex((x) => formatRuleSpec(x, this.registry) === text);
        if (at < 0) {
          if (letter === "D") {
            this.error("IPT_NO_RULE", `-D ${chain.name}: no matching rule in the chain`, line, cmdTok.column);
          }
        } else if (letter === "D") chain.rules.splice(at, 1);
      }
    }
    renumber(chain);
  }

  /**
   * The chain commands (`-N`, `-X`, `-F`, `-Z`, `-P`, `-E`) with the words after the command in `rest[at...]`: the
   * index of the first word not used, or -1 after an error that ends the command.
   */
  private chainCommand(
    tableName: TableName,
    letter: string,
    cmdTok: Token,
    rest: readonly Token[],
    at: number,
    line: LineInfo,
    counters: Counters | undefined,
  ): number {
    const takeChain = (): Token | undefined => {
      const t = chainWord(rest, at);
      if (t) at++;
      return t;
    };
    const table = this.table(tableName);
    switch (letter) {
      case "N": {
        const chainTok = takeChain();
        if (!chainTok) {
          this.error("IPT_SYNTAX", "-N needs a chain name", line, cmdTok.column);
          return -1;
        }
        if (table.chains.has(chainTok.text)) {
          this.error(
            "IPT_CHAIN_EXISTS",
            `chain ${chainTok.text} already exists in table ${tableName}`,
            line,
            chainTok.column,
          );
          return -1;
        }
        if (!this.checkChainName(tableName, chainTok.text, line, chainTok.column)) return -1;
        const chain = newUserChain(chainTok.text);
        markCreated(chain, line.line, "new-chain");
        table.chains.set(chainTok.text, chain);
        break;
      }
      case "X": {
        const chainTok = takeChain();
        const victims = chainTok
          ? [chainTok.text]
          : [...table.chains.values()].filter((c) => !c.builtin).map((c) => c.name);
        // iptables-nft (__nft_chain_del): `-X` without a chain also deletes the built-in chains that have no rules
        // and policy ACCEPT; iptables-legacy keeps them (only `created` changes, for --backend nft).
        if (!chainTok)
          for (const c of table.chains.values())
            if (c.builtin && c.rules.length === 0 && (c.policy ?? "ACCEPT") === "ACCEPT")
              c.created = undefined;
        for (const name of victims) {
          const c = table.chains.get(name);
          if (!c) {
            this.unknown("IPT_NO_CHAIN", `-X: chain "${name}" does not exist`, line, chainTok?.column);
            continue;
          }
          if (c.builtin) {
            this.error(
              "IPT_BUILTIN_CHAIN",
              `-X: cannot delete built-in chain ${name}`,
              line,
              chainTok?.column,
            );
            continue;
          }
          if (chainTok && c.rules.length > 0) {
            this.error(
              "IPT_CHAIN_NOT_EMPTY",
              `-X: chain ${name} is not empty (flush it first)`,
              line,
              chainTok.column,
            );
            continue;
          }
          const refs = [...table.chains.values()].filter(
            (o) =>
              !victims.includes(o.name) &&
              o.rules.some((r) => r.target?.kind === "jump" && r.target.chain === name),
          );
          if (refs.length > 0) {
            this.error(
              "IPT_CHAIN_IN_USE",
              `-X: chain ${name} is still referenced from ${refs.map((r) => r.name).join(", ")}`,
              line,
              chainTok?.column,
            );
            continue;
          }
          table.chains.delete(name);
        }
        break;
      }
      case "F": {
        const chainTok = takeChain();
        if (chainTok) {
          const c = this.chainFor(tableName, chainTok, line);
          if (c) c.rules = [];
          // iptables-nft: nft_rule_flush with a chain creates it (nft_xt_builtin_init).
          if (c) markCreated(c, line.line, "flush");
        } else for (const c of table.chains.values()) c.rules = [];
        break;
      }
      case "Z": {
        const chainTok = takeChain();
        const cs = chainTok
          ? [table.chains.get(chainTok.text)].filter((c): c is Chain => !!c)
          : [...table.chains.values()];
        for (const c of cs) {
          c.counters = zeroCounters();
          for (const r of c.rules) r.counters = zeroCounters();
        }
        break;
      }
      case "P": {
        const chainTok = takeChain();
        const pol = rest[at];
        if (pol) at++;
        if (!chainTok || !pol) {
          this.error("IPT_SYNTAX", "-P needs a chain and a policy", line, cmdTok.column);
          return -1;
        }
        if (!isBuiltinChain(tableName, chainTok.text)) {
          this.error(
            "IPT_BAD_POLICY",
            `-P: ${chainTok.text} is not a built-in chain of table ${tableName}`,
            line,
            chainTok.column,
          );
          return -1;
        }
        if (pol.text !== "ACCEPT" && pol.text !== "DROP") {
          this.error("IPT_BAD_POLICY", `bad policy "${pol.text}" (ACCEPT or DROP)`, line, pol.column);
          return -1;
        }
        const c = table.chains.get(chainTok.text)!;
        c.policy = pol.text;
        if (counters) c.counters = counters;
        markCreated(c, line.line, "policy");
        break;
      }
      case "E": {
        const oldTok = takeChain();
        const newTok = takeChain();
        if (!oldTok || !newTok) {
          this.error("IPT_SYNTAX", "-E needs the old and the new chain name", line, cmdTok.column);
          return -1;
        }
        const c = table.chains.get(oldTok.text);
        if (!c || c.builtin) {
          this.error("IPT_NO_CHAIN", `-E: user chain "${oldTok.text}" does not exist`, line, oldTok.column);
          return -1;
        }
        if (table.chains.has(newTok.text)) {
          this.error("IPT_CHAIN_EXISTS", `-E: chain ${newTok.text} already exists`, line, newTok.column);
          return -1;
        }
        if (!this.checkChainName(tableName, newTok.text, line, newTok.column)) return -1;
        const renamed: Chain = { ...c, name: newTok.text };
        const entries = [...table.chains.entries()].map(([k, v]) =>
          k === oldTok.text ? ([newTok.text, renamed] as const) : ([k, v] as const),
        );
        table.chains.clear();
        for (const [k, v] of entries) table.chains.set(k, v);
        for (const ch of table.chains.values()) {
          ch.rules = ch.rules.map((r) =>
            r.target?.kind === "jump" && r.target.chain === oldTok.text
              ? { ...r, target: { ...r.target, chain: newTok.text } }
              : r,
          );
        }
        break;
      }
    }
    return at;
  }

  private expand(spec: ParsedSpec, source: RuleSource, counters?: Counters): Rule[] {
    const out: Rule[] = [];
    const c = counters ?? spec.counters;
    // Indexed loops here and below: cold code runs interpreted, where for-of pays for the iterator protocol.
    for (let k = 0; k < spec.srcs.length; k++) {
      const src = spec.srcs[k];
      for (let l = 0; l < spec.dsts.length; l++) {
        const dst = spec.dsts[l];
        // Every property present (undefined when not set), in the order of the Rule interface: all rules share
        // one hidden class. Adding only the set ones gave the rules of a big rule set several, and the loops that
        // read every rule (the table check, compileTable, lint) went megamorphic.
        out.push({
          num: 0,
          src: src || undefined,
          dst: dst || undefined,
          inIface: spec.inIface || undefined,
          outIface: spec.outIface || undefined,
          proto: spec.proto || undefined,
          fragment: spec.fragment || undefined,
          matches: spec.matches,
          target: spec.target || undefined,
          counters: c ? { packets: c.packets, bytes: c.bytes } : zeroCounters(),
          source,
          neverMatches: spec.neverMatches,
        });
      }
    }
    return out;
  }

  /** `-s ! ADDR`, `--dport ! P`: accepted with a warning, as iptables 1.8 still does. */
  private warnOldInvert(option: string, line: LineInfo, column: number): void {
    this.warn(
      "IPT_DEPRECATED_SYNTAX",
      `"${option} ! value" is pre-1.4 syntax; write "! ${option} value"`,
      line,
      column,
    );
  }

  /** Parses a rule specification (`tokens[start...]`, after `-A CHAIN`). Records errors; undefined on failure. */
  parseRuleSpec(
    tableName: TableName,
    tokens: readonly Token[],
    start: number,
    line: LineInfo,
  ): ParsedSpec | undefined {
    const errorsBefore = this.errors.length;
    const spec = new RuleSpec(tableName, this.table(tableName), tokens, line);
    for (let i = start; i < tokens.length; i++) {
      const tok = tokens[i];
      const t = tok.text;
      if (t === "!") {
        if (spec.invert) this.error("IPT_SYNTAX", "multiple ! in a row", line, tok.column);
        spec.invert = true;
        spec.invertCol = tok.column;
        continue;
      }
      let letter = genericLetter(t);
      let attached = false;
      if (letter === undefined) {
        letter = attachedGenericLetter(t);
        attached = letter !== undefined;
      }
      if (letter !== undefined) i = this.genericOption(spec, letter, attached, i);
      else if (isExtensionOptionWord(t)) i = this.extensionOption(spec, i);
      else {
        this.error("IPT_SYNTAX", `unexpected argument "${t}"`, line, tok.column);
        continue;
      }
      if (i === ABORT) return undefined;
      if (i === STOP) break;
    }
    if (spec.invert) this.error("IPT_SYNTAX", "! at the end of the rule", line, spec.invertCol);
    return this.finishRuleSpec(spec, errorsBefore);
  }

  /**
   * A generic option (`-s`, `--jump`, `-pTCP`, ...) at `tokens[i]`, with its value attached or in the next word:
   * the index of the last word it used, or STOP (no value) or ABORT (the rule is refused).
   */
  private genericOption(spec: RuleSpec, letter: string, attached: boolean, i: number): number {
    const { tokens, line } = spec;
    const tok = tokens[i];
    const t = tok.text;
    if (letter === "f") {
      spec.fragment = { invert: spec.invert };
      spec.invert = false;
      return i;
    }
    let value: Token | undefined;
    let valueInvert = false;
    if (attached) value = { text: t.slice(2), column: tok.column + 2 };
    else {
      value = tokens[++i];
      if (value && value.text === "!" && "sdiop".includes(letter)) {
        this.warnOldInvert(t, line, value.column);
        valueInvert = true;
        value = tokens[++i];
      }
    }
    if (!value) {
      this.error("IPT_SYNTAX", `option ${t} needs an argument`, line, tok.column);
      return STOP;
    }
    const inv = spec.invert || valueInvert;
    spec.invert = false;
    const once = "sdiopjg".indexOf(letter);
    if (once >= 0) {
      const bit = 1 << (letter === "g" ? 5 : once);
      if ((spec.seen & bit) !== 0) {
        this.error(
          "IPT_SYNTAX",
          `multiple ${letter === "g" || letter === "j" ? "-j/-g" : `-${letter}`} options`,
          line,
          tok.column,
        );
        return i;
      }
      spec.seen |= bit;
    }
    if (inv && "jgmc".includes(letter)) {
      this.error("IPT_SYNTAX", `${t} cannot be inverted`, line, spec.invertCol);
      return i;
    }
    switch (letter) {
      case "s":
        spec.srcs = this.addressOption(spec, value, inv);
        return i;
      case "d":
        spec.dsts = this.addressOption(spec, value, inv);
        return i;
      case "i":
      case "o":
        this.interfaceOption(spec, letter, value, inv);
        return i;
      case "p":
        this.protocolOption(spec, value, inv);
        return i;
      case "m":
        return this.matchOption(spec, value) ? i : ABORT;
      case "j":
      case "g":
        return this.targetOption(spec, letter, value) ? i : ABORT;
      case "c":
        return this.countersOption(spec, value, i);
    }
    return i;
  }

  /** `-s` / `-d`: one selector per comma-separated address (the rule is expanded over them). */
  private addressOption(spec: RuleSpec, value: Token, inv: boolean): AddrSelector[] {
    const list: AddrSelector[] = [];
    const text = value.text;
    const parts = text.indexOf(",") < 0 ? [text] : text.split(",");
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k];
      const a = parseAddrMask(part);
      if (!a) {
        const host = /^[a-z][a-z0-9.-]*$/i.test(part) && parseIpv4(part) === undefined;
        this.error(
          "IPT_BAD_ADDRESS",
          host ? `host name "${part}" is not resolved; give an address` : `bad address "${part}"`,
          spec.line,
          value.column,
        );
        continue;
      }
      list.push({ addr: a.addr, mask: a.mask, invert: inv });
    }
    if (inv && list.length > 1)
      this.error("IPT_SYNTAX", "! cannot be used with several addresses", spec.line, spec.invertCol);
    return list;
  }

  /** `-i` / `-o`. */
  private interfaceOption(spec: RuleSpec, letter: "i" | "o", value: Token, inv: boolean): void {
    if (value.text.length > MAX_IFACE_NAME) {
      this.error(
        "IPT_BAD_INTERFACE",
        `interface name "${value.text}" is too long (at most ${MAX_IFACE_NAME})`,
        spec.line,
        value.column,
      );
      return;
    }
    if (value.text.length === 0) {
      this.error("IPT_BAD_INTERFACE", "empty interface name", spec.line, value.column);
      return;
    }
    const sel = { name: value.text, invert: inv };
    if (letter === "i") spec.inIface = sel;
    else spec.outIface = sel;
  }

  /** `-p`. */
  private protocolOption(spec: RuleSpec, value: Token, inv: boolean): void {
    const p = parseProto(value.text);
    if (p === undefined) {
      this.error("IPT_BAD_PROTOCOL", `unknown protocol "${value.text}"`, spec.line, value.column);
      return;
    }
    if (p === 0 && inv) {
      this.error("IPT_BAD_PROTOCOL", "rule would never match protocol (! -p all)", spec.line, spec.invertCol);
      return;
    }
    spec.proto = { proto: p, invert: inv };
  }

  /** `-m NAME`: false when the rule is refused (an unknown match, not --allow-unknown). */
  private matchOption(spec: RuleSpec, value: Token): boolean {
    const d = this.registry.match(value.text);
    if (d) {
      spec.exts.push(pendingExt("match", d, value.column, false));
      return true;
    }
    const ok = this.unknown(
      "IPT_UNKNOWN_MATCH",
      `unknown match "${value.text}" (supported: ${this.registry.matchNames().join(", ")})`,
      spec.line,
      value.column,
    );
    if (!ok) return false;
    spec.neverMatches = true;
    spec.exts.push(unknownExt("match", value.text, value.column));
    return true;
  }

  /** `-j NAME` / `-g CHAIN`: a verdict, a target extension or a user chain; false when the rule is refused. */
  private targetOption(spec: RuleSpec, letter: "j" | "g", value: Token): boolean {
    const { line, table, tableName } = spec;
    const name = value.text;
    // A jump names its chain by the chain's own name string (equal to the word): the table check's lookups then
    // find the map key by identity.
    if (letter === "g") {
      const c = table.chains.get(name);
      if (c && c.builtin) {
        this.error("IPT_BAD_TARGET", `-g ${name}: cannot go to a built-in chain`, line, value.column);
        return true;
      }
      const to = c ?? this.chainFor(tableName, value, line);
      if (!to) return false;
      spec.target = { kind: "jump", chain: to.name, goto: true };
      return true;
    }
    if ((VERDICTS as readonly string[]).includes(name)) {
      spec.target = { kind: "verdict", verdict: name as Verdict };
      return true;
    }
    const d = this.registry.target(name);
    if (d) {
      spec.targetExt = pendingExt("target", d, value.column, false);
      return true;
    }
    const c = table.chains.get(name);
    if (c) {
      if (c.builtin)
        this.error("IPT_BAD_TARGET", `-j ${name}: cannot jump to a built-in chain`, line, value.column);
      else spec.target = { kind: "jump", chain: c.name, goto: false };
      return true;
    }
    if (UNSUPPORTED_TARGETS.has(name)) {
      const ok = this.unknown(
        "IPT_UNKNOWN_TARGET",
        `unknown target "${name}" (supported: ${[...VERDICTS, ...this.registry.targetNames()].join(", ")}, or a user chain)`,
        line,
        value.column,
      );
      if (!ok) return false;
      spec.neverMatches = true;
      spec.targetExt = unknownExt("target", name, value.column);
      return true;
    }
    const msg = `unknown target or chain "${name}" (targets: ${[...VERDICTS, ...this.registry.targetNames()].join(", ")}; or a user chain of table ${tableName})`;
    if (!this.unknown("IPT_NO_CHAIN", msg, line, value.column)) return false;
    if (name.length > MAX_CHAIN_NAME || name.startsWith("-")) return false;
    const created = newUserChain(name);
    markCreated(created, line.line, "implicit");
    table.chains.set(name, created);
    spec.target = { kind: "jump", chain: name, goto: false };
    return true;
  }

  /** `-c PACKETS BYTES` (or `-c PACKETS,BYTES`) at `tokens[i]`: the index of the last word used. */
  private countersOption(spec: RuleSpec, value: Token, i: number): number {
    let p: string | undefined;
    let b: string | undefined;
    if (value.text.includes(",")) [p, b] = value.text.split(",", 2);
    else {
      p = value.text;
      b = spec.tokens[++i]?.text;
    }
    if (!p || !b || !/^\d+$/.test(p) || !/^\d+$/.test(b)) {
      this.error(
        "IPT_BAD_COUNTERS",
        `bad counters "${value.text}" (-c PACKETS BYTES)`,
        spec.line,
        value.column,
      );
      return i;
    }
    spec.counters = { packets: BigInt(p), bytes: BigInt(b) };
    return i;
  }

  /**
   * An option of an extension at `tokens[i]` (`--name` or `-name`): the target's first, then the matches' from the
   * most recent one, then the implicit protocol match. The index of its last word, or ABORT.
   */
  private extensionOption(spec: RuleSpec, i: number): number {
    const { tokens, line, exts, targetExt, proto } = spec;
    const tok = tokens[i];
    const t = tok.text;
    let owner: PendingExt | undefined;
    let opt: OptionSpec | undefined;
    for (let k = targetExt ? -1 : 0; k < exts.length; k++) {
      const e = k < 0 ? targetExt! : exts[exts.length - 1 - k];
      if (e.unknown) continue;
      opt = e.words.get(t);
      if (opt) {
        owner = e;
        break;
      }
    }
    if (!owner && proto && !proto.invert) {
      // command_default: implicit protocol match (`-p tcp --dport 22`).
      const pname =
        proto.proto === 6 ? "tcp" : proto.proto === 17 ? "udp" : proto.proto === 1 ? "icmp" : undefined;
      const d = pname ? this.registry.match(pname) : undefined;
      if (d && !exts.some((e) => e.name === d.name)) {
        opt = optionWords(d).get(t);
        if (opt) {
          owner = pendingExt("match", d, tok.column, true);
          exts.push(owner);
        }
      }
    }
    if (!owner || !opt) return this.unknownOption(spec, i);
    const args: string[] = [];
    let optInvert = spec.invert;
    spec.invert = false;
    for (let k = 0; k < opt.nargs; k++) {
      let v = tokens[i + 1];
      if (v && v.text === "!" && k === 0 && opt.invert) {
        this.warnOldInvert(t, line, v.column);
        optInvert = true;
        i++;
        v = tokens[i + 1];
      }
      if (!v) {
        this.error(
          "IPT_SYNTAX",
          `option ${t} needs ${opt.nargs === 2 ? "two arguments" : "an argument"}`,
          line,
          tok.column,
        );
        return ABORT;
      }
      args.push(v.text);
      i++;
    }
    if (optInvert && !opt.invert) {
      this.error("IPT_SYNTAX", `option ${t} cannot be inverted`, line, spec.invertCol);
      return i;
    }
    owner.opts.push({ name: opt.name, args, invert: optInvert, column: tok.column });
    if (optInvert) owner.raw.push("!");
    owner.raw.push(t);
    for (let k = 0; k < args.length; k++) owner.raw.push(args[k]);
    return i;
  }

  /**
   * An option word no loaded extension has: kept with its values on the last unknown extension; otherwise an
   * error naming the supported options, or under --allow-unknown kept on the most recent extension, which becomes
   * unknown. The index of the last word used, or ABORT.
   */
  private unknownOption(spec: RuleSpec, i: number): number {
    const { tokens, line, exts, targetExt, proto } = spec;
    const tok = tokens[i];
    const t = tok.text;
    const candidates = [...(targetExt ? [targetExt] : []), ...[...exts].reverse()];
    const lastUnknown = [
      ...(targetExt?.unknown ? [targetExt] : []),
      ...[...exts].reverse().filter((e) => e.unknown),
    ][0];
    if (lastUnknown) {
      if (spec.invert) lastUnknown.raw.push("!");
      lastUnknown.raw.push(t);
      while (i + 1 < tokens.length && !tokens[i + 1].text.startsWith("-") && tokens[i + 1].text !== "!") {
        lastUnknown.raw.push(tokens[++i].text);
      }
      spec.invert = false;
      return i;
    }
    const loaded = candidates.filter((e) => !e.unknown);
    const implicitName =
      proto && !proto.invert
        ? ({ 6: "tcp", 17: "udp", 1: "icmp" } as Record<number, string>)[proto.proto]
        : undefined;
    const implicitDesc = implicitName ? this.registry.match(implicitName) : undefined;
    if (implicitDesc && !loaded.some((e) => e.name === implicitName))
      loaded.push(pendingExt("match", implicitDesc, tok.column, true));
    const supported = loaded.flatMap((e) => e.desc!.options.map((o) => `--${o.name}`));
    const where = loaded.length ? ` for ${loaded.map((e) => `${e.kind} ${e.name}`).join(", ")}` : "";
    const msg = `unknown option "${t}"${where}${supported.length ? ` (supported: ${supported.join(", ")})` : ""}`;
    if (!this.unknown("IPT_UNKNOWN_OPTION", msg, line, tok.column)) return ABORT;
    // Lenient: keep the words on the most recent extension, which becomes unknown.
    const victim = candidates[0];
    spec.neverMatches = true;
    if (victim) {
      victim.unknown = true;
      if (spec.invert) victim.raw.push("!");
      victim.raw.push(t);
      while (i + 1 < tokens.length && !tokens[i + 1].text.startsWith("-") && tokens[i + 1].text !== "!") {
        victim.raw.push(tokens[++i].text);
      }
    } else {
      while (i + 1 < tokens.length && !tokens[i + 1].text.startsWith("-")) i++;
    }
    spec.invert = false;
    return i;
  }

  /** Parses each extension now that the whole rule (including a late -p) is known; undefined after any error. */
  private finishRuleSpec(spec: RuleSpec, errorsBefore: number): ParsedSpec | undefined {
    const { tableName, proto, line, exts, targetExt } = spec;
    const env = this.env;
    const file = this.options.file;
    const matches: MatchInstance[] = [];
    for (let k = 0; k < exts.length; k++) {
      const e = exts[k];
      if (e.unknown) {
        matches.push({ name: e.name, options: undefined, raw: e.raw, implicit: e.implicit, unknown: true });
        continue;
      }
      const r = e.desc!.parse(e.opts, new ExtParseContext(tableName, proto, env, file, line, e));
      if (isDiagnostic(r)) {
        this.errors.push({ ...r, severity: "error" });
        continue;
      }
      matches.push({ name: e.name, options: r, raw: e.raw.slice(), implicit: e.implicit, unknown: false });
    }
    if (targetExt) {
      if (targetExt.unknown) {
        spec.target = {
          kind: "extension",
          name: targetExt.name,
          options: undefined,
          raw: targetExt.raw,
          unknown: true,
        };
      } else {
        const d = targetExt.desc!;
        const r = d.parse(targetExt.opts, new ExtParseContext(tableName, proto, env, file, line, targetExt));
        if (isDiagnostic(r)) this.errors.push({ ...r, severity: "error" });
        else
          spec.target = {
            kind: "extension",
            name: d.name,
            options: r,
            raw: targetExt.raw.slice(),
            unknown: false,
          };
      }
    }
    if (this.errors.length > errorsBefore) return undefined;
    // Arrays kept by the rule are copied to their length (a pushed-to array keeps spare capacity).
    spec.matches = matches.slice();
    return spec;
  }

  /**
   * The kernel's table check at replace time (COMMIT): hook masks of user chains from the built-in chains
   * that reach them, loops, then each extension's table/hooks/proto and checkentry.
   */
  checkTable(tableName: TableName): void {
    if (this.checked.has(tableName)) return;
    this.checked.add(tableName);
    const table = this.ruleset.tables.get(tableName);
    if (!table) return;
    // Each chain's `hooks` collects, in the order they are found, the hooks from which it is reached.
    for (const c of table.chains.values()) c.hooks = c.builtin ? [c.builtin] : [];
    const reported = new Set<string>();
    // Depth first from each built-in chain, as a loop (recursion is slow in cold code): `path` holds the chains
    // from the built-in chain to the one being read, `next` the index of the rule to read next in each.
    const visit = (root: Chain, hook: Hook): void => {
      const path: Chain[] = [root];
      const next: number[] = [0];
      while (path.length > 0) {
        const depth = path.length - 1;
        const rules = path[depth].rules;
        let child: Chain | undefined;
        let k = next[depth];
        for (; k < rules.length && child === undefined; k++) {
          const r = rules[k];
          const t = r.target;
          if (t === undefined || t.kind !== "jump") continue;
          const c = table.chains.get(t.chain);
          if (!c) continue;
          if (path.includes(c)) {
            if (!reported.has(c.name)) {
              reported.add(c.name);
              const via = [...path, c].map((x) => x.name).join(" -> ");
              this.error(
                "IPT_LOOP",
                `loop: chain ${c.name} is reached again via ${via}`,
                { line: r.source.line, text: r.source.text },
                r.source.column,
              );
            }
            continue;
          }
          const fresh = !c.hooks.includes(hook);
          if (fresh) c.hooks.push(hook);
          if (fresh || path.length < 2) child = c;
        }
        next[depth] = k;
        if (child) {
          path.push(child);
          next.push(0);
        } else {
          path.pop();
          next.pop();
        }
      }
    };
    for (const c of table.chains.values()) if (c.builtin) visit(c, c.builtin);
    for (const c of table.chains.values()) {
      // The matches in rule order, then the target. The context (and the chain's hook set) only when a
      // descriptor has something to check.
      let hooks: ReadonlySet<Hook> | undefined;
      const rules = c.rules;
      for (let k = 0; k < rules.length; k++) {
        const r = rules[k];
        let ctx: XtCheckContext | undefined;
        for (let l = 0; l < r.matches.length; l++) {
          const m = r.matches[l];
          if (m.unknown) continue;
          const d = this.registry.match(m.name);
          if (!d || !hasCheckEntry(d)) continue;
          hooks ??= new Set(c.hooks);
          ctx ??= new RuleCheckContext(tableName, c.name, hooks, r);
          this.checkEntry(d, m.options, ctx);
        }
        const t = r.target;
        if (t?.kind === "extension" && !t.unknown) {
          const d = this.registry.target(t.name);
          if (d && hasCheckEntry(d)) {
            hooks ??= new Set(c.hooks);
            ctx ??= new RuleCheckContext(tableName, c.name, hooks, r);
            this.checkEntry(d, t.options, ctx);
          }
        }
      }
    }
  }

  private checkEntry(d: Descriptor, options: unknown, ctx: XtCheckContext): void {
    const bad = xtCheckEntry(d, options, ctx);
    if (bad) this.errors.push({ ...bad, severity: "error" });
  }

  /** Checks every table not yet checked and returns the result. */
  finish(): LoadResult {
    for (const name of TABLE_NAMES) if (this.ruleset.tables.has(name)) this.checkTable(name);
    const byPos = (a: RulesetDiagnostic, b: RulesetDiagnostic): number =>
      (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
    return {
      ruleset: this.ruleset,
      errors: [...this.errors].sort(byPos),
      warnings: [...this.warnings].sort(byPos),
    };
  }
}

/**
 * Splits a restore line into words the way iptables-restore does (`add_param_to_argv`): whitespace
 * separates, double quotes group, and inside quotes a backslash escapes the next character.
 */
export function tokenizeRestoreLine(text: string): {
  tokens: Token[];
  error?: { column: number; message: string };
} {
  const tokens: Token[] = [];
  const n = text.length;
  // iptables-save separates words with single spaces: when " " is the line's only white space, an unquoted
  // word ends at the next space, found natively.
  const spaceOnly = !OTHER_WHITE_SPACE.test(text);
  let quoteAt = spaceOnly ? text.indexOf('"') : -1;
  let i = 0;
  while (i < n) {
    if (spaceOnly) {
      while (text.charCodeAt(i) === 0x20) i++;
      if (i >= n) break;
      if (quoteAt >= 0 && quoteAt < i) quoteAt = text.indexOf('"', i);
      let end = text.indexOf(" ", i);
      if (end < 0) end = n;
      if (quoteAt < 0 || quoteAt >= end) {
        tokens.push({ text: text.slice(i, end), column: i + 1 });
        i = end;
        continue;
      }
      // A quote in the word: the general path below.
    }
    while (i < n && isSpace(text.charCodeAt(i))) i++;
    if (i >= n) break;
    const start = i;
    // An unquoted word is a slice of the line.
    let c = text.charCodeAt(i);
    while (c !== 0x22 && !isSpace(c)) {
      if (++i >= n) break;
      c = text.charCodeAt(i);
    }
    if (i >= n || c !== 0x22) {
      tokens.push({ text: text.slice(start, i), column: start + 1 });
      continue;
    }
    // A double quote: the rest of the word character by character.
    let word = text.slice(start, i);
    let quoted = false;
    let openAt = 0;
    while (i < n && (quoted || !isSpace(text.charCodeAt(i)))) {
      const ch = text[i];
      if (quoted) {
        if (ch === "\\" && i + 1 < n) {
          word += text[i + 1];
          i += 2;
          continue;
        }
        if (ch === '"') {
          quoted = false;
          i++;
          continue;
        }
        word += ch;
        i++;
        continue;
      }
      if (ch === '"') {
        quoted = true;
        openAt = i;
        i++;
        continue;
      }
      word += ch;
      i++;
    }
    if (quoted) return { tokens, error: { column: openAt + 1, message: "unterminated quoted string" } };
    tokens.push({ text: word, column: start + 1 });
  }
  return { tokens };
}

/** White space other than " " (`/\s/` without the space). */
const OTHER_WHITE_SPACE = /[^\S ]/;

/** Whether a UTF-16 code unit is what `/\s/` matches (ECMAScript WhiteSpace and LineTerminator). */
function isSpace(c: number): boolean {
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) return true;
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

const COUNTER_RE = /^\[(\d+):(\d+)\]$/;

/** `-t`, `--table` or `-tNAME` (`/^-t\w/`). */
function isTableOption(x: Token): boolean {
  const t = x.text;
  if (t.charCodeAt(0) !== 0x2d || t.charCodeAt(1) === 0x2d) return t === "--table";
  if (t.charCodeAt(1) !== 0x74 /* t */) return false;
  if (t.length === 2) return true;
  const c = t.charCodeAt(2);
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

/** A command line of restore input (`-A ...`): refused when it names a table, else run. */
function restoreCommand(
  b: RulesetBuilder,
  table: TableName,
  argv: readonly Token[],
  line: LineInfo,
  counters: Counters | undefined,
): void {
  for (let k = 0; k < argv.length; k++) {
    const t = argv[k];
    if (isTableOption(t)) {
      b.error("IPT_SYNTAX", "-t cannot be used inside restore input; use a *table line", line, t.column);
      return;
    }
  }
  b.exec(table, argv, line, counters);
}

/**
 * Parses iptables-save / iptables-restore text (and `iptables -S` output). Never throws on bad input: every
 * problem is in `errors` (or `warnings`), located at file:line:column.
 */
export function parseSave(text: string, options: LoadOptions = {}): LoadResult {
  const b = new RulesetBuilder(options);
  const lines = text.split("\n");
  const last = lines.length - 1;
  let current: TableName | undefined;
  let currentLine: LineInfo | undefined;
  let sawTableHeader = false;
  for (let n = 0; n < lines.length; n++) {
    // The lines of split(/\r?\n/), then one more trailing \r removed.
    let raw = lines[n];
    if (n < last && raw.charCodeAt(raw.length - 1) === 0x0d) raw = raw.slice(0, -1);
    if (raw.charCodeAt(raw.length - 1) === 0x0d) raw = raw.slice(0, -1);
    const line: LineInfo = { line: n + 1, text: raw };
    // A line that starts with "-" (every rule of iptables-save output) is a command: no trimming needed.
    if (raw.charCodeAt(0) === 0x2d /* - */ && current) {
      const { tokens, error } = tokenizeRestoreLine(raw);
      if (error) b.error("IPT_SYNTAX", error.message, line, error.column);
      else restoreCommand(b, current, tokens, line, undefined);
      continue;
    }
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.charCodeAt(0) === 0x23 /* # */) continue;
    const lead = raw.length - raw.trimStart().length;
    if (trimmed.startsWith("*")) {
      if (current)
        b.error(
          "IPT_MISSING_COMMIT",
          `table ${current} was not committed before *${trimmed.slice(1).trim()}`,
          line,
          lead + 1,
        );
      const name = trimmed.slice(1).trim();
      if (!isTableName(name)) {
        b.error(
          "IPT_BAD_TABLE",
          `unknown table "${name}" (supported: ${TABLE_NAMES.join(", ")})`,
          line,
          lead + 2,
        );
        current = undefined;
        continue;
      }
      current = name;
      currentLine = line;
      sawTableHeader = true;
      b.startTable(name);
      continue;
    }
    if (trimmed === "COMMIT") {
      if (!current) {
        if (!sawTableHeader) b.error("IPT_SYNTAX", "COMMIT without a table", line, lead + 1);
        continue;
      }
      b.checkTable(current);
      current = undefined;
      continue;
    }
    const { tokens, error } = tokenizeRestoreLine(raw);
    if (error) {
      b.error("IPT_SYNTAX", error.message, line, error.column);
      continue;
    }
    let table = current;
    if (!table) {
      if (sawTableHeader) {
        b.error("IPT_NO_TABLE", "command outside a table (expected *table first)", line, lead + 1);
        continue;
      }
      // `iptables -S` output: no table header.
      table = options.defaultTable ?? "filter";
      b.table(table);
    }
    if (trimmed.startsWith(":")) {
      const [head, policy, ctr] = tokens;
      const name = head.text.slice(1);
      let counters: Counters | undefined;
      if (ctr) {
        const m = COUNTER_RE.exec(ctr.text);
        if (!m) {
          b.error("IPT_BAD_COUNTERS", `bad counters "${ctr.text}" ([packets:bytes])`, line, ctr.column);
          continue;
        }
        counters = { packets: BigInt(m[1]), bytes: BigInt(m[2]) };
      }
      if (!policy) {
        b.error(
          "IPT_SYNTAX",
          `chain line needs a policy (":${name} ACCEPT [0:0]" or ":${name} - [0:0]")`,
          line,
          head.column,
        );
        continue;
      }
      if (tokens.length > 3)
        b.error(
          "IPT_SYNTAX",
          `unexpected "${tokens[3].text}" after the chain counters`,
          line,
          tokens[3].column,
        );
      b.declareChain(table, name, policy.text, counters, line, head.column + 1);
      continue;
    }
    let counters: Counters | undefined;
    let argv = tokens;
    const m = argv.length > 0 ? COUNTER_RE.exec(argv[0].text) : null;
    if (m) {
      counters = { packets: BigInt(m[1]), bytes: BigInt(m[2]) };
      argv = argv.slice(1);
    }
    if (argv.length === 0 || !argv[0].text.startsWith("-")) {
      const t = argv.find(isTableOption);
      if (t) {
        b.error("IPT_SYNTAX", "-t cannot be used inside restore input; use a *table line", line, t.column);
        continue;
      }
      b.error(
        "IPT_SYNTAX",
        `unexpected line "${trimmed.slice(0, 40)}" (expected *table, :CHAIN, a command or COMMIT)`,
        line,
        argv[0]?.column ?? lead + 1,
      );
      continue;
    }
    restoreCommand(b, table, argv, line, counters);
  }
  if (current) {
    const msg = `table ${current} has no COMMIT`;
    if (b.lenient) b.warn("IPT_MISSING_COMMIT", msg, currentLine, 1);
    else b.error("IPT_MISSING_COMMIT", msg, currentLine, 1);
  }
  return b.finish();
}
