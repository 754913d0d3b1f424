/**
 * Static reasoning over rules shared by the lint rules: which conntrack states a rule selects, whether one
 * rule's selectors cover (or may overlap) another's, which targets end traversal, the jump graph, and the
 * search for an INVALID drop on a path. Mirrors the per-packet semantics of net/ipv4/netfilter/ip_tables.c
 * (`ip_packet_match`, `ipt_do_table`) and net/netfilter/xt_conntrack.c / xt_state.c, Linux 6.18, read
 * statically.
 *
 * Conservative on purpose: a match these functions do not understand makes `covers` false and `mayOverlap`
 * true, so a lint rule never claims a shadow or a miss it cannot prove. Left out: inversions beyond "equal
 * inverted selectors", match options other than those named below.
 */
import type { Chain, Hook, MatchInstance, Rule, Ruleset, Table, TableName } from "../netfilter/ruleset";
import type { ConntrackMatchOptions } from "../netfilter/xt/xt_conntrack";
import type { StateMatchOptions } from "../netfilter/xt/xt_state";
import type { TcpMatchOptions, UdpMatchOptions } from "../netfilter/xt/xt_tcpudp";

export const CT_STATES = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED"] as const;
export type CtState = (typeof CT_STATES)[number];

/** Matches that never restrict a packet. */
const NEUTRAL_MATCHES = new Set(["comment", "nfacct"]);

/** Targets after which traversal of the chain ends for the packet (NF_ACCEPT/NF_DROP/NF_STOLEN/XT_RETURN). */
const TERMINAL_TARGETS = new Set([
  "REJECT",
  "DNAT",
  "SNAT",
  "MASQUERADE",
  "REDIRECT",
  "NETMAP",
  "TPROXY",
  "NFQUEUE",
  "SYNPROXY",
]);

export function isTerminal(rule: Rule): boolean {
  const t = rule.target;
  if (!t) return false;
  if (t.kind === "verdict") return true;
  if (t.kind === "jump") return t.goto;
  return TERMINAL_TARGETS.has(t.name);
}

/** The target as a word: ACCEPT, DROP, MASQUERADE, `-j CHAIN`, `-g CHAIN`, or "(none)". */
export function targetName(rule: Rule): string {
  const t = rule.target;
  if (!t) return "(none)";
  if (t.kind === "verdict") return t.verdict;
  if (t.kind === "jump") return `${t.goto ? "-g" : "-j"} ${t.chain}`;
  return t.name;
}

export function isDropLike(rule: Rule): boolean {
  const t = rule.target;
  return (t?.kind === "verdict" && t.verdict === "DROP") || (t?.kind === "extension" && t.name === "REJECT");
}

export function isExtension(rule: Rule, ...names: string[]): boolean {
  return rule.target?.kind === "extension" && names.includes(rule.target.name);
}

/**
 * The conntrack states a rule admits, from `-m conntrack --ctstate` and `-m state --state` (intersected when
 * both are present). `all` when it has neither; undefined when another conntrack option restricts it in a way
 * these helpers do not follow.
 */
export function ruleCtStates(rule: Rule): Set<CtState> | undefined {
  let states = new Set<CtState>(CT_STATES);
  for (const m of rule.matches) {
    if (m.unknown) return undefined;
    let list: readonly string[] | undefined;
    let invert = false;
    if (m.name === "conntrack") {
      const o = m.options as ConntrackMatchOptions;
      const keys = Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
      if (keys.some((k) => k !== "ctstate")) return undefined;
      if (!o.ctstate) continue;
      // SNAT/DNAT are conntrack-status words, not states: a rule naming them is not followed.
      if (o.ctstate.value.some((s) => s === "SNAT" || s === "DNAT")) return undefined;
      list = o.ctstate.value;
      invert = o.ctstate.invert;
    } else if (m.name === "state") {
      const o = m.options as StateMatchOptions;
      list = o.states;
      invert = o.invert;
    } else continue;
    const sel = new Set(CT_STATES.filter((s) => list.includes(s) !== invert));
    states = new Set([...states].filter((s) => sel.has(s)));
  }
  return states;
}

/** Whether the rule's only restriction is a conntrack state (no addresses, interfaces, protocol or others). */
export function onlyCtState(rule: Rule): boolean {
  if (rule.src || rule.dst || rule.inIface || rule.outIface || rule.proto || rule.fragment) return false;
  return rule.matches.every(
    (m) =>
      NEUTRAL_MATCHES.has(m.name) ||
      m.name === "state" ||
      (m.name === "conntrack" && ruleCtStates({ ...rule, matches: [m] }) !== undefined),
  );
}

/** A rule with no selector at all (every packet matches it). */
export function unconditional(rule: Rule): boolean {
  if (rule.neverMatches) return false;
  if (rule.src || rule.dst || rule.inIface || rule.outIface || rule.fragment) return false;
  if (rule.proto && (rule.proto.proto !== 0 || rule.proto.invert)) return false;
  return rule.matches.every((m) => NEUTRAL_MATCHES.has(m.name) && !m.unknown);
}

interface Addr {
  readonly addr: number;
  readonly mask: number;
  readonly invert: boolean;
}

function addrCovers(a: Addr | undefined, b: Addr | undefined): boolean {
  if (!a || (a.mask === 0 && !a.invert)) return true;
  if (!b) return false;
  if (a.invert || b.invert) return a.invert === b.invert && a.addr === b.addr && a.mask === b.mask;
  // a's prefix contains b's: a's mask is no longer than b's and b's network lies in a's.
  return (a.mask & b.mask) >>> 0 === a.mask && (b.addr & a.mask) >>> 0 === a.addr >>> 0;
}

function addrMayOverlap(a: Addr | undefined, b: Addr | undefined): boolean {
  if (!a || !b || a.invert || b.invert) return true;
  const m = (a.mask & b.mask) >>> 0;
  return (a.addr & m) >>> 0 === (b.addr & m) >>> 0;
}

interface Iface {
  readonly name: string;
  readonly invert: boolean;
}

function ifaceCovers(a: Iface | undefined, b: Iface | undefined): boolean {
  if (!a || (a.name === "+" && !a.invert)) return true;
  if (!b) return false;
  if (a.invert || b.invert) return a.invert === b.invert && a.name === b.name;
  if (a.name.endsWith("+")) return b.name.startsWith(a.name.slice(0, -1));
  return a.name === b.name;
}

export function ifaceMayOverlap(a: Iface | undefined, b: Iface | undefined): boolean {
  if (!a || !b || a.invert || b.invert) return true;
  const pa = a.name.endsWith("+") ? a.name.slice(0, -1) : undefined;
  const pb = b.name.endsWith("+") ? b.name.slice(0, -1) : undefined;
  if (pa !== undefined) return b.name.startsWith(pa) || (pb !== undefined && pa.startsWith(pb));
  if (pb !== undefined) return a.name.startsWith(pb);
  return a.name === b.name;
}

function protoOf(rule: Rule): number {
  return rule.proto && !rule.proto.invert ? rule.proto.proto : 0;
}

type Ports = { readonly range: readonly [number, number]; readonly invert: boolean };

function portsCover(a: Ports, b: Ports): boolean {
  if (!a.invert && a.range[0] === 0 && a.range[1] === 0xffff) return true;
  if (a.invert || b.invert)
    return a.invert === b.invert && a.range[0] === b.range[0] && a.range[1] === b.range[1];
  return a.range[0] <= b.range[0] && a.range[1] >= b.range[1];
}

function portsMayOverlap(a: Ports, b: Ports): boolean {
  if (a.invert || b.invert) return true;
  return a.range[0] <= b.range[1] && b.range[0] <= a.range[1];
}

function portMatch(rule: Rule): MatchInstance | undefined {
  return rule.matches.find((m) => m.name === "tcp" || m.name === "udp");
}

/** The destination port range a rule selects (`--dport`), or undefined for any. */
export function dportRange(rule: Rule): readonly [number, number] | undefined {
  const m = portMatch(rule);
  if (!m || m.unknown) return undefined;
  const d = (m.options as TcpMatchOptions | UdpMatchOptions).dport;
  if (d.invert || (d.range[0] === 0 && d.range[1] === 0xffff)) return undefined;
  return d.range;
}

/**
 * Whether every packet that matches `b` also matches `a` (then `a`, if terminal and earlier, shadows `b`).
 * False when `a` uses a match this function does not follow.
 */
export function covers(a: Rule, b: Rule): boolean {
  if (a.neverMatches) return false;
  if (!addrCovers(a.src, b.src) || !addrCovers(a.dst, b.dst)) return false;
  if (!ifaceCovers(a.inIface, b.inIface) || !ifaceCovers(a.outIface, b.outIface)) return false;
  if (a.fragment && (!b.fragment || a.fragment.invert !== b.fragment.invert)) return false;
  if (a.proto) {
    if (a.proto.invert) {
      if (!b.proto || !b.proto.invert || b.proto.proto !== a.proto.proto) return false;
    } else if (a.proto.proto !== 0 && protoOf(b) !== a.proto.proto) return false;
  }
  const aStates = ruleCtStates(a);
  const bStates = ruleCtStates(b);
  if (!aStates) return false;
  if (aStates.size < CT_STATES.length) {
    if (!bStates || [...bStates].some((s) => !aStates.has(s))) return false;
  }
  for (const m of a.matches) {
    if (NEUTRAL_MATCHES.has(m.name) || m.name === "conntrack" || m.name === "state") continue;
    if (m.unknown) return false;
    if (m.name === "tcp" || m.name === "udp") {
      const ao = m.options as TcpMatchOptions;
      const bm = b.matches.find((x) => x.name === m.name);
      const bo = bm?.options as TcpMatchOptions | undefined;
      const anyPorts: Ports = { range: [0, 0xffff], invert: false };
      if (!portsCover(ao.sport, bo?.sport ?? anyPorts) || !portsCover(ao.dport, bo?.dport ?? anyPorts))
        return false;
      if (ao.flags || ao.option) {
        if (!bo) return false;
        if (JSON.stringify(ao.flags) !== JSON.stringify(bo.flags)) return false;
        if (JSON.stringify(ao.option) !== JSON.stringify(bo.option)) return false;
      }
      continue;
    }
    // Any other match: covered only by an identical one on b.
    const same = b.matches.find((x) => x.name === m.name && JSON.stringify(x.raw) === JSON.stringify(m.raw));
    if (!same) return false;
  }
  return true;
}

/** Whether some packet may match both rules (false only when selectors provably exclude each other). */
export function mayOverlap(a: Rule, b: Rule, opts: { ignoreIfaces?: boolean } = {}): boolean {
  if (!addrMayOverlap(a.src, b.src) || !addrMayOverlap(a.dst, b.dst)) return false;
  if (!opts.ignoreIfaces) {
    if (!ifaceMayOverlap(a.inIface, b.inIface) || !ifaceMayOverlap(a.outIface, b.outIface)) return false;
  }
  const pa = protoOf(a);
  const pb = protoOf(b);
  if (pa !== 0 && pb !== 0 && pa !== pb) return false;
  const ma = portMatch(a);
  const mb = portMatch(b);
  if (ma && mb && !ma.unknown && !mb.unknown && ma.name === mb.name) {
    const ao = ma.options as TcpMatchOptions;
    const bo = mb.options as TcpMatchOptions;
    if (!portsMayOverlap(ao.sport, bo.sport) || !portsMayOverlap(ao.dport, bo.dport)) return false;
  }
  return true;
}

/** The chains a rule set's table jumps to from `chain`, in rule order (existing chains only). */
export function jumpsFrom(table: Table, chain: Chain): { rule: Rule; to: Chain }[] {
  const out: { rule: Rule; to: Chain }[] = [];
  for (const r of chain.rules) {
    if (r.target?.kind !== "jump") continue;
    const to = table.chains.get(r.target.chain);
    if (to) out.push({ rule: r, to });
  }
  return out;
}

/** A rule and where it sits. */
export interface Located {
  readonly table: TableName;
  readonly chain: Chain;
  readonly rule: Rule;
}

/** Message and fix of an INVALID-drop finding: none at all, or one that ACCEPT rules may bypass. */
export function invalidDropAdvice(search: InvalidDropSearch): { problem: string; fix: string } {
  const fix = "iptables -t filter -I FORWARD 1 -m conntrack --ctstate INVALID -j DROP";
  if (!search.drop)
    return { problem: 'no "-m conntrack --ctstate INVALID -j DROP" on the forwarding path', fix };
  const lines = [...new Set(search.bypass.map((b) => b.rule.source.line))];
  return {
    problem: `the INVALID drop at line ${search.drop.rule.source.line} comes after ACCEPT rules that may take INVALID packets first (line${lines.length === 1 ? "" : "s"} ${lines.join(", ")})`,
    fix: `${fix}   (before line ${lines[0]})`,
  };
}

/** Every rule of the rule set with its table and chain. */
export function* allRules(ruleset: Ruleset): Generator<Located> {
  for (const t of ruleset.tables.values())
    for (const c of t.chains.values()) for (const rule of c.rules) yield { table: t.name, chain: c, rule };
}

/** Rules with one of the named extension targets in chains reachable from `hook` of `table`. */
export function targetRules(ruleset: Ruleset, table: TableName, names: string[], hook?: Hook): Located[] {
  const out: Located[] = [];
  for (const l of allRules(ruleset)) {
    if (l.table !== table || !isExtension(l.rule, ...names)) continue;
    if (hook && !l.chain.hooks.includes(hook)) continue;
    if (l.rule.neverMatches) continue;
    out.push(l);
  }
  return out;
}

/** What a walk of the forwarding path found about INVALID packets. */
export interface InvalidDropSearch {
  /** The first rule that drops INVALID packets, if any. */
  readonly drop?: Located;
  /** ACCEPT rules before it that may accept INVALID packets first (conditional ones; empty when none). */
  readonly bypass: readonly Located[];
}

/**
 * The first rule on the way through `hooks` (mangle, then filter, following jumps) that drops packets conntrack
 * marks INVALID, and the ACCEPT rules met before it that may take an INVALID packet first. An unconditional
 * ACCEPT (or an ACCEPT of every state) before any drop ends the walk of that chain with no drop.
 */
export function findInvalidDrop(ruleset: Ruleset, hooks: readonly Hook[]): InvalidDropSearch {
  const bypass: Located[] = [];
  for (const hook of hooks) {
    for (const tableName of ["mangle", "filter"] as const) {
      const table = ruleset.tables.get(tableName);
      const chain = table?.chains.get(hook);
      if (!table || !chain) continue;
      const found = searchChain(table, chain, new Set(), bypass);
      if (found === "accepted") return { bypass };
      if (found) return { drop: found, bypass };
    }
  }
  return { bypass };
}

function acceptsInvalid(rule: Rule): boolean {
  const states = ruleCtStates(rule);
  return (
    rule.target?.kind === "verdict" && rule.target.verdict === "ACCEPT" && (!states || states.has("INVALID"))
  );
}

function searchChain(
  table: Table,
  chain: Chain,
  seen: Set<string>,
  bypass: Located[],
): Located | "accepted" | undefined {
  if (seen.has(chain.name)) return undefined;
  seen.add(chain.name);
  for (const rule of chain.rules) {
    if (rule.neverMatches) continue;
    const states = ruleCtStates(rule);
    if (isDropLike(rule) && (!states || states.has("INVALID")) && states && states.size < CT_STATES.length)
      return { table: table.name, chain, rule };
    if (rule.target?.kind === "jump") {
      const to = table.chains.get(rule.target.chain);
      if (to && (!states || states.has("INVALID"))) {
        const inner = searchChain(table, to, seen, bypass);
        if (inner === "accepted") {
          if (unconditional(rule) && states?.size === CT_STATES.length) return "accepted";
          bypass.push({ table: table.name, chain, rule });
        } else if (inner) return inner;
      }
      if (rule.target.goto && unconditional(rule)) return "accepted";
      continue;
    }
    if (acceptsInvalid(rule)) {
      if (unconditional(rule) || onlyCtState(rule)) return "accepted";
      // Forwarded packets never come in on the loopback device (ip_route_input_slow: martian).
      if (rule.inIface && !rule.inIface.invert && rule.inIface.name === "lo") continue;
      bypass.push({ table: table.name, chain, rule });
    }
  }
  return undefined;
}

/**
 * The shortest chain of jump rules from built-in chain `hook` of `table` to `target` (empty when `target` is
 * the built-in chain itself); undefined when `target` is not reachable from it.
 */
export function jumpPath(table: Table, hook: Hook, target: Chain): Rule[] | undefined {
  const start = table.chains.get(hook);
  if (!start) return undefined;
  const prev = new Map<string, { from: Chain; rule: Rule } | null>([[start.name, null]]);
  const queue: Chain[] = [start];
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === target) {
      const path: Rule[] = [];
      for (let p = prev.get(c.name); p; p = prev.get(p.from.name)) path.unshift(p.rule);
      return path;
    }
    for (const { rule, to } of jumpsFrom(table, c)) {
      if (prev.has(to.name) || rule.neverMatches) continue;
      prev.set(to.name, { from: c, rule });
      queue.push(to);
    }
  }
  return undefined;
}

/**
 * The selectors a packet needs to reach and match `rule` through `path` (outermost first): each field from the
 * first rule that sets it, the rule's own first. Good enough to build a demonstration packet.
 */
export function effectiveSelectors(path: readonly Rule[], rule: Rule): Rule {
  const all = [rule, ...[...path].reverse()];
  const pick = <K extends "src" | "dst" | "inIface" | "outIface" | "proto">(k: K): Rule[K] =>
    all.find((r) => r[k] !== undefined && !(r[k] as { invert: boolean }).invert)?.[k];
  const ports = all.flatMap((r) => r.matches.filter((m) => m.name === "tcp" || m.name === "udp"));
  const withDport = ports.find((m) => {
    const d = (m.options as TcpMatchOptions).dport;
    return !d.invert && !(d.range[0] === 0 && d.range[1] === 0xffff);
  });
  const src = pick("src");
  const dst = pick("dst");
  const inIface = pick("inIface");
  const outIface = pick("outIface");
  const proto = pick("proto");
  return {
    ...rule,
    ...(src ? { src } : {}),
    ...(dst ? { dst } : {}),
    ...(inIface ? { inIface } : {}),
    ...(outIface ? { outIface } : {}),
    ...(proto ? { proto } : {}),
    matches: withDport ? [withDport] : [],
  };
}
