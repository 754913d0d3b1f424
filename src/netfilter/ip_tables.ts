/**
 * Rule traversal of one table at one hook: the kernel's `ipt_do_table` with `ip_packet_match` and the legacy
 * TRACE bookkeeping of `trace_packet` / `get_chainname_rulenum`.
 *
 * Mirrors net/ipv4/netfilter/ip_tables.c (Linux 6.17): ip_packet_match (addresses under mask, interfaces with `+`
 * wildcards, protocol, -f), the jump stack (jump pushes the calling entry, goto does not; RETURN pops, or falls to
 * the built-in chain's policy entry when the stack is empty), matches in order with hotdrop, per-rule counters,
 * and TRACE lines for every entry that matched while skb->nf_trace is set, printed before the target runs:
 * `TRACE: <table>:<chain>:<rule|return|policy>:<n> `. An unconditional rule (no selectors, no matches) whose
 * target is a standard verdict is labelled `policy` in a built-in chain and `return` in a user chain, exactly as
 * the kernel labels the chain tails (so `-A FORWARD -j ACCEPT` traces as `policy`).
 *
 * The table is compiled once (`compileTable`) into arrays with the descriptors resolved, so a packet never looks
 * anything up by name.
 *
 * Dispatch index (an emulator device, not a kernel one: the kernel walks every entry, and iptables-nft would use
 * a set/verdict map for the same effect): a chain with many rules whose only discriminating selector is an exact
 * destination (`-d a.b.c.d/32`, optionally with `-p tcp|udp` and one `--dport P`, the shape of kube-proxy's
 * KUBE-SERVICES) gets a hash index from (destination[, protocol, port]) to the positions of the rules that can
 * match. The walk then visits only those positions merged in order with the positions of the rules the index
 * cannot place, so the first matching rule in chain order still wins and every rule the linear walk would have
 * evaluated with an observable effect (counters, hotdrop, stateful matches such as statistic, recent or limit,
 * TRACE) is still evaluated. A rule is left out of a packet's candidates only when the linear walk would have
 * rejected it with no effect: `ip_packet_match` fails on the destination or protocol, or the tcp/udp match
 * fails on the destination port of an unfragmented packet with a readable header, with only side-effect-free
 * matches (comment, mark, conntrack, ...) before it. The candidate list is recomputed when a target rewrites the
 * packet and continues, and when the walk comes back to a chain.
 *
 * Leaves out: the jump-stack size limit (loops are refused at load), per-CPU counters, the IPT_F_GOTO
 * "next entry" optimisation (same result), the nft backend's different trace format (src/trace).
 */

import type { Packet } from "../wire/packet";
import type { Chain, Hook, Rule, Table, TableName } from "./ruleset";
import type { Registry } from "./registry";
import type { DatapathEffects, MatchFn, Skb, TargetFn, TargetVerdict, XtActionParam } from "./skb";
import { XT_CONTINUE, XT_RETURN } from "./skb";

export type TraceComment = "rule" | "return" | "policy";

/** Where a TRACE line points: what `TRACE: table:chain:comment:num ` prints. */
export interface TracePoint {
  readonly table: TableName;
  readonly chain: string;
  readonly comment: TraceComment;
  readonly num: number;
}

/** A compiled rule's action (CompiledRule.kind). */
const STEP_NONE = 0;
const STEP_VERDICT = 1;
const STEP_JUMP = 2;
const STEP_GOTO = 3;
const STEP_TARGET = 4;
const STEP_RETURN = 5;

/**
 * A chain tail's action: the policy of a built-in chain or the implicit RETURN of a user chain. Both kinds have
 * both fields, so all tails share one hidden class.
 */
type Step =
  | { readonly kind: "verdict"; readonly verdict: "ACCEPT" | "DROP" | "QUEUE" }
  | { readonly kind: "return"; readonly verdict: undefined };

interface CompiledMatch {
  readonly name: string;
  readonly fn: MatchFn<unknown>;
  readonly options: unknown;
}

/**
 * A rule as the walk reads it. Its fields are created in the order the walk reads them (selectors, matches,
 * action, counters; then what only output and indexing read), so a rule met for the first time costs as few
 * cache lines as possible: a new connection's walk through a large rule set meets mostly cold memory.
 */
export interface CompiledRule {
  /**
   * ip_packet_match's address and protocol selectors flattened into numbers (an absent selector is mask 0, addr
   * 0, proto 0, which every packet passes), so the walk reads them without following pointers; RF_* bits in
   * `flags` say which are inverted and whether the rule is `slow` (interfaces, -f, `! -p all`, never-matching)
   * and goes through ipPacketMatch instead.
   */
  readonly sMask: number;
  readonly sAddr: number;
  readonly dMask: number;
  readonly dAddr: number;
  readonly proto: number;
  readonly flags: number;
  /** The first match's function and options (read without going through `matches`); undefined: no match. */
  readonly fn0: MatchFn<unknown> | undefined;
  readonly opt0: unknown;
  /** matches.length: the walk reads the rest of `matches` only when there is more than one. */
  readonly nMatches: number;
  /**
   * The rule's action, flattened into the rule so the walk follows no step object. `kind` is one of the STEP_*
   * codes; `verdict` is set for STEP_VERDICT, `jump` for STEP_JUMP/STEP_GOTO, `tfn` and `topt` (the options, or
   * what the target descriptor's `prepare` made of them) for STEP_TARGET.
   */
  readonly kind: number;
  /** Packet/byte counters as numbers (the model's bigint counters are synced by `syncCounters`). */
  packets: number;
  bytes: number;
  readonly jump: CompiledChain | undefined;
  readonly tfn: TargetFn<unknown> | undefined;
  readonly topt: unknown;
  readonly verdict: "ACCEPT" | "DROP" | "QUEUE" | undefined;
  /** The result of a standard-verdict rule, built once (results are never mutated). */
  result: DoTableResult | undefined;
  readonly trace: TracePoint;
  readonly matches: readonly CompiledMatch[];
  readonly rule: Rule;
  readonly chain: CompiledChain;
}

/** CompiledRule.flags. */
const RF_SLOW = 1;
const RF_SINV = 2;
const RF_DINV = 4;
const RF_PINV = 8;

export interface CompiledChain {
  readonly name: string;
  readonly builtin?: Hook;
  rules: CompiledRule[];
  /** The tail entry: the policy of a built-in chain (ACCEPT/DROP) or the implicit RETURN of a user chain. */
  tail: {
    readonly step: Step;
    readonly trace: TracePoint;
    packets: number;
    bytes: number;
    result?: DoTableResult;
  };
  /** Dispatch index (see the header); undefined when the chain is walked linearly. */
  index?: ChainIndex;
}

/** Positions (0-based, ascending) of the rules a packet can match, by its destination, protocol and port. */
export interface ChainIndex {
  /** Rules the index cannot place: candidates for every packet. */
  readonly others: Int32Array;
  /** By exact destination address as a signed int32 (a small-integer key, which hashes fast). */
  readonly byDst: ReadonlyMap<number, DstBucket>;
  /** Number of rules placed in byDst. */
  readonly indexed: number;
}

export interface DstBucket {
  /** Every rule of this destination (for fragments and unreadable headers, where port keys do not apply). */
  readonly all: Int32Array;
  /** Rules of this destination without a port key. */
  readonly generic: Int32Array;
  /** `proto * 65536 + dport` -> generic rules merged with that key's rules. */
  readonly byPort: ReadonlyMap<number, Int32Array>;
}

export interface CompileOptions {
  /** Build dispatch indexes (default true). */
  readonly index?: boolean;
  /** Smallest number of indexable rules for a chain to get an index (default 16). */
  readonly indexMinRules?: number;
}

export interface CompiledTable {
  readonly name: TableName;
  readonly chains: ReadonlyMap<string, CompiledChain>;
  /** The built-in chain of each hook, by `hookSlot` (the lookup ipt_do_table makes per packet, without a Map). */
  readonly hookChains: readonly (CompiledChain | undefined)[];
  readonly source: Table;
}

/** The built-in chain `table` has for `hook`, if any (what ipt_do_table starts from). */
export function hookChain(table: CompiledTable, hook: Hook): CompiledChain | undefined {
  return table.hookChains[hookSlot(hook)];
}

/** A hook's position in CompiledTable.hookChains (the kernel's NF_INET_* order). */
function hookSlot(hook: Hook): number {
  switch (hook) {
    case "PREROUTING":
      return 0;
    case "INPUT":
      return 1;
    case "FORWARD":
      return 2;
    case "OUTPUT":
      return 3;
    default:
      return 4;
  }
}

const HOOK_SLOTS: readonly Hook[] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/** A rule the engine cannot evaluate: a match or target without a per-packet function. */
export interface CompileProblem {
  readonly rule: Rule;
  readonly what: string;
}

/** Resolves descriptors once. Rules kept under --allow-unknown (neverMatches) compile to rules that never match. */
export function compileTable(
  table: Table,
  registry: Registry,
  opts: CompileOptions = {},
): { table: CompiledTable; problems: CompileProblem[] } {
  const problems: CompileProblem[] = [];
  const chains = new Map<string, CompiledChain>();
  for (const chain of table.chains.values()) {
    const tailComment: TraceComment = chain.builtin ? "policy" : "return";
    const trace: TracePoint = {
      table: table.name,
      chain: chain.name,
      comment: tailComment,
      num: chain.rules.length + 1,
    };
    const policy = chain.policy ?? "ACCEPT";
    chains.set(chain.name, {
      name: chain.name,
      builtin: chain.builtin,
      rules: [],
      tail: {
        step: chain.builtin ? { kind: "verdict", verdict: policy } : { kind: "return", verdict: undefined },
        trace,
        packets: 0,
        bytes: 0,
        // Made here, not on first use (see compileRule's `result`).
        result: chain.builtin ? { verdict: policy, decidedBy: trace } : undefined,
      },
      index: undefined,
    });
  }
  for (const chain of table.chains.values()) {
    const compiled = chains.get(chain.name)!;
    compiled.rules = chain.rules.map((rule) =>
      compileRule(table, chain, compiled, rule, chains, registry, problems),
    );
    if (opts.index ?? true) compiled.index = buildIndex(compiled.rules, opts.indexMinRules ?? 16);
  }
  const hookChains = HOOK_SLOTS.map((h) => chains.get(h));
  return { table: { name: table.name, chains, hookChains, source: table }, problems };
}

function compileRule(
  table: Table,
  chain: Chain,
  compiled: CompiledChain,
  rule: Rule,
  chains: Map<string, CompiledChain>,
  registry: Registry,
  problems: CompileProblem[],
): CompiledRule {
  const matches: CompiledMatch[] = [];
  for (const m of rule.matches) {
    if (m.unknown) continue;
    const d = registry.match(m.name);
    if (!d?.match) {
      problems.push({ rule, what: `match "${m.name}" has no packet evaluation yet` });
      continue;
    }
    // comment_mt always matches and touches nothing: leaving it out of the per-packet list changes nothing.
    if (m.name === "comment") continue;
    matches.push({ name: m.name, fn: d.match as MatchFn<unknown>, options: m.options });
  }
  let kind = STEP_NONE;
  let verdict: "ACCEPT" | "DROP" | "QUEUE" | undefined;
  let jump: CompiledChain | undefined;
  let tfn: TargetFn<unknown> | undefined;
  let topt: unknown;
  const t = rule.target;
  if (t?.kind === "verdict") {
    if (t.verdict === "RETURN") kind = STEP_RETURN;
    else {
      kind = STEP_VERDICT;
      verdict = t.verdict;
    }
  } else if (t?.kind === "jump") {
    jump = chains.get(t.chain);
    if (!jump) throw new Error(`rule ${chain.name}#${rule.num} jumps to missing chain ${t.chain}`);
    kind = t.goto ? STEP_GOTO : STEP_JUMP;
  } else if (t?.kind === "extension" && !t.unknown) {
    const d = registry.target(t.name);
    if (!d?.target) problems.push({ rule, what: `target "${t.name}" has no packet evaluation yet` });
    else {
      kind = STEP_TARGET;
      tfn = d.target as TargetFn<unknown>;
      topt = d.prepare ? d.prepare(t.options) : t.options;
    }
  }
  const unconditional =
    !rule.src &&
    !rule.dst &&
    !rule.inIface &&
    !rule.outIface &&
    !rule.proto &&
    !rule.fragment &&
    rule.matches.length === 0;
  const standardVerdict = t?.kind === "verdict";
  const comment: TraceComment =
    unconditional && standardVerdict ? (chain.builtin ? "policy" : "return") : "rule";
  const proto = rule.proto?.proto ?? 0;
  const trace: TracePoint = { table: table.name, chain: chain.name, comment, num: rule.num };
  const slow =
    rule.neverMatches === true ||
    rule.inIface !== undefined ||
    rule.outIface !== undefined ||
    rule.fragment !== undefined ||
    (proto === 0 && rule.proto?.invert === true);
  return {
    sMask: rule.src ? rule.src.mask | 0 : 0,
    sAddr: rule.src ? rule.src.addr | 0 : 0,
    dMask: rule.dst ? rule.dst.mask | 0 : 0,
    dAddr: rule.dst ? rule.dst.addr | 0 : 0,
    proto,
    flags:
      (slow ? RF_SLOW : 0) |
      (rule.src?.invert === true ? RF_SINV : 0) |
      (rule.dst?.invert === true ? RF_DINV : 0) |
      (rule.proto?.invert === true ? RF_PINV : 0),
    fn0: matches.length > 0 ? matches[0].fn : undefined,
    opt0: matches.length > 0 ? matches[0].options : undefined,
    nMatches: matches.length,
    kind,
    packets: 0,
    bytes: 0,
    jump,
    tfn,
    topt,
    verdict,
    // A standard verdict's result is made here: made on first use, its path in the walk was new to V8 after
    // the walk had been optimized (a deoptimization and a second compilation of the walk).
    result: kind === STEP_VERDICT ? { verdict: verdict!, decidedBy: trace } : undefined,
    trace,
    matches,
    rule,
    chain: compiled,
  };
}

/**
 * Matches that may sit before a tcp/udp port match of an indexed rule: they neither change state nor hotdrop, so
 * skipping a rule whose port cannot match is invisible. (statistic, limit, recent, nfacct, multiport, icmp and
 * unknown ones are not here.)
 */
const PURE_MATCHES: ReadonlySet<string> = new Set([
  "comment",
  "mark",
  "connmark",
  "conntrack",
  "state",
  "addrtype",
  "iprange",
  "mac",
  "length",
  "ttl",
  "pkttype",
  "physdev",
  "owner",
]);

const EMPTY: Int32Array = new Int32Array(0);

/** The (destination, protocol, port) key of a rule, or undefined when the index cannot place it. */
function indexKey(cr: CompiledRule): { dst: number; port?: number } | undefined {
  const rule = cr.rule;
  const d = rule.dst;
  if (!d || d.invert || d.mask >>> 0 !== 0xffffffff) return undefined;
  const dst = d.addr | 0;
  const p = rule.proto;
  if (!p || p.invert || (p.proto !== 6 && p.proto !== 17)) return { dst };
  const want = p.proto === 6 ? "tcp" : "udp";
  for (const m of cr.matches) {
    if (m.name === want) {
      const o = m.options as { dport?: { range: readonly [number, number]; invert: boolean } };
      const r = o.dport;
      if (r && !r.invert && r.range[0] === r.range[1]) return { dst, port: p.proto * 65536 + r.range[0] };
      return { dst };
    }
    if (!PURE_MATCHES.has(m.name)) return { dst };
  }
  return { dst };
}

function buildIndex(rules: readonly CompiledRule[], minRules: number): ChainIndex | undefined {
  if (rules.length < minRules) return undefined; // too few rules to index, whatever their shape
  const others: number[] = [];
  const buckets = new Map<number, { all: number[]; generic: number[]; ports: Map<number, number[]> }>();
  let indexed = 0;
  rules.forEach((cr, pos) => {
    if (cr.rule.neverMatches) return; // never matches, never counts: no candidate anywhere
    const k = indexKey(cr);
    if (!k) {
      others.push(pos);
      return;
    }
    indexed++;
    let b = buckets.get(k.dst);
    if (!b) buckets.set(k.dst, (b = { all: [], generic: [], ports: new Map() }));
    b.all.push(pos);
    if (k.port === undefined) b.generic.push(pos);
    else {
      const l = b.ports.get(k.port);
      if (l) l.push(pos);
      else b.ports.set(k.port, [pos]);
    }
  });
  if (indexed < minRules) return undefined;
  const byDst = new Map<number, DstBucket>();
  for (const [dst, b] of buckets) {
    const byPort = new Map<number, Int32Array>();
    for (const [key, l] of b.ports)
      byPort.set(key, Int32Array.from([...b.generic, ...l].sort((x, y) => x - y)));
    byDst.set(dst, { all: Int32Array.from(b.all), generic: Int32Array.from(b.generic), byPort });
  }
  return { others: Int32Array.from(others), byDst, indexed };
}

/** The index's candidate positions for the packet (besides `others`). */
function candidates(ix: ChainIndex, pkt: Packet): Int32Array {
  const ip = pkt.ip;
  const b = ix.byDst.get(ip.dst | 0);
  if (!b) return EMPTY;
  const proto = ip.protocol;
  if (proto !== 6 && proto !== 17) return b.generic;
  const l4 = pkt.l4;
  // A fragment or an unreadable header makes tcp/udp matches return false or hotdrop before looking at ports.
  if (ip.fragOffset !== 0) return b.all;
  if (l4.kind === "tcp") {
    if (proto !== 6) return b.all;
  } else if (l4.kind === "udp") {
    if (proto !== 17) return b.all;
  } else return b.all;
  return b.byPort.get(proto * 65536 + l4.dstPort) ?? b.generic;
}

/** First index of `a` whose value is >= `v`. */
function lowerBound(a: Int32Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `ip_packet_match`: the fixed selectors of struct ipt_ip. */
export function ipPacketMatch(rule: Rule, pkt: Packet, inIface: string, outIface: string): boolean {
  const ip = pkt.ip;
  if (rule.src && ((ip.src & rule.src.mask) >>> 0 !== rule.src.addr) !== rule.src.invert) return false;
  if (rule.dst && ((ip.dst & rule.dst.mask) >>> 0 !== rule.dst.addr) !== rule.dst.invert) return false;
  if (rule.inIface && !ifaceMatch(rule.inIface.name, inIface) !== rule.inIface.invert) return false;
  if (rule.outIface && !ifaceMatch(rule.outIface.name, outIface) !== rule.outIface.invert) return false;
  if (rule.proto && rule.proto.proto !== 0 && (ip.protocol !== rule.proto.proto) !== rule.proto.invert)
    return false;
  if (rule.proto && rule.proto.proto === 0 && rule.proto.invert) return false;
  if (rule.fragment && (ip.fragOffset === 0) !== rule.fragment.invert) return false;
  return true;
}

/** Interface name with iptables' `+` suffix wildcard (ifname_compare_aligned under the rule's mask). */
export function ifaceMatch(pattern: string, name: string): boolean {
  if (pattern.endsWith("+")) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

export interface DoTableContext {
  readonly now: number;
  readonly effects: DatapathEffects;
  readonly host: unknown;
  readonly ruleState: Map<object, unknown>;
  /** Called for every matched entry while skb.nfTrace is set, before its target runs. */
  trace?(point: TracePoint, skb: Skb, hook: Hook): void;
  /** When present, counts those entries (the TRACE lines the kernel would print), with or without `trace`. */
  traceHits?: number;
}

export interface DoTableResult {
  readonly verdict: "ACCEPT" | "DROP" | "STOLEN" | "QUEUE";
  /** The entry that decided (the rule whose target gave the verdict, or the policy tail). */
  readonly decidedBy?: TracePoint;
  /** Why a DROP happened when a match asked for it (hotdrop). */
  readonly hotdrop?: boolean;
}

/** `ipt_do_table`: runs `table`'s chain for `hook` over the packet. */
export function iptDoTable(table: CompiledTable, hook: Hook, skb: Skb, ctx: DoTableContext): DoTableResult {
  const start = hookChain(table, hook);
  if (start === undefined) return { verdict: "ACCEPT" };
  // A target may emit a packet that is traversed inside this traversal: one scratch frame per nesting depth.
  const frame = (FRAMES[frameDepth] ??= newFrame());
  frameDepth++;
  try {
    return traverse(frame, table, start, hook, skb, ctx);
  } finally {
    frameDepth--;
  }
}

/** The XtActionParam and the jump stack of one traversal, reused by the next one at the same depth. */
interface Frame {
  readonly par: { -readonly [K in keyof XtActionParam]: XtActionParam[K] };
  /** Jump stack: return chain and position (the kernel's jumpstack), `sp` entries in use. */
  readonly chains: CompiledChain[];
  readonly nexts: number[];
}
const FRAMES: Frame[] = [];
let frameDepth = 0;

function newFrame(): Frame {
  return {
    par: {
      table: "filter",
      hook: "INPUT",
      chain: "",
      inIface: undefined,
      outIface: undefined,
      now: 0,
      hotdrop: false,
      effects: undefined as unknown as XtActionParam["effects"],
      host: undefined,
      ruleState: undefined as unknown as XtActionParam["ruleState"],
    },
    chains: [],
    nexts: [],
  };
}

function traverse(
  frame: Frame,
  table: CompiledTable,
  start: CompiledChain,
  hook: Hook,
  skb: Skb,
  ctx: DoTableContext,
): DoTableResult {
  const inIface = skb.inIface ?? "";
  const outIface = skb.outIface ?? "";
  const len = skb.pkt.ip.totalLength;
  const par = frame.par;
  par.table = table.name;
  par.hook = hook;
  par.chain = hook;
  par.inIface = skb.inIface;
  par.outIface = skb.outIface;
  par.now = ctx.now;
  par.hotdrop = false;
  par.effects = ctx.effects;
  par.host = ctx.host;
  par.ruleState = ctx.ruleState;
  const chains = frame.chains;
  const nexts = frame.nexts;
  let sp = 0;
  let chain = start;
  let i = 0;
  // Index state of the current chain: candidate positions `cand` (merged with `ix.others`), cursors, and the
  // packet value the candidates were computed for. `enter` is set whenever the walk moves to another chain
  // (or back to one) at position `i`: the index state is then rebuilt at the top of the loop.
  let ix: ChainIndex | undefined;
  let cand: Int32Array = EMPTY;
  let ci = 0;
  let oi = 0;
  let candPkt = skb.pkt;
  let enter = true;
  for (;;) {
    if (enter) {
      enter = false;
      if ((ix = chain.index)) {
        candPkt = skb.pkt;
        cand = candidates(ix, candPkt);
        ci = lowerBound(cand, i);
        oi = lowerBound(ix.others, i);
      }
    }
    let cr: CompiledRule | undefined;
    if (ix === undefined) {
      if (i < chain.rules.length) cr = chain.rules[i];
    } else {
      if (skb.pkt !== candPkt) {
        // A target rewrote the packet and continued: its new header decides the candidates from here on.
        candPkt = skb.pkt;
        cand = candidates(ix, candPkt);
        ci = lowerBound(cand, i);
      }
      const others = ix.others;
      while (ci < cand.length && cand[ci] < i) ci++;
      while (oi < others.length && others[oi] < i) oi++;
      const a = ci < cand.length ? cand[ci] : 0x7fffffff;
      const b = oi < others.length ? others[oi] : 0x7fffffff;
      const next = a < b ? a : b;
      if (next !== 0x7fffffff) {
        i = next;
        cr = chain.rules[i];
      }
    }
    if (cr === undefined) {
      // The chain's tail entry: unconditional, so it always "matches".
      const tail = chain.tail;
      tail.packets++;
      tail.bytes += len;
      if (skb.nfTrace) traced(ctx, tail.trace, skb, hook);
      if (tail.step.kind === "verdict") return tail.result!;
      // Otherwise the implicit RETURN of a user chain (below).
    } else {
      const f = cr.flags;
      if (f & RF_SLOW) {
        if (cr.rule.neverMatches || !ipPacketMatch(cr.rule, skb.pkt, inIface, outIface)) {
          i++;
          continue;
        }
      } else {
        const ip = skb.pkt.ip;
        if (
          ((ip.src & cr.sMask) !== cr.sAddr) !== ((f & RF_SINV) !== 0) ||
          ((ip.dst & cr.dMask) !== cr.dAddr) !== ((f & RF_DINV) !== 0) ||
          (cr.proto !== 0 && (ip.protocol !== cr.proto) !== ((f & RF_PINV) !== 0))
        ) {
          i++;
          continue;
        }
      }
      const fn0 = cr.fn0;
      if (fn0 !== undefined) {
        par.chain = chain.name;
        let ok = fn0(cr.opt0, skb, par);
        // ipt_do_table tests acpar.hotdrop after every entry, matched or not (`while (!acpar.hotdrop)`).
        if (par.hotdrop) return { verdict: "DROP", decidedBy: cr.trace, hotdrop: true };
        if (ok && cr.nMatches > 1) {
          const ms = cr.matches;
          for (let k = 1; ok && k < ms.length; k++) {
            const m = ms[k];
            ok = m.fn(m.options, skb, par);
            if (par.hotdrop) return { verdict: "DROP", decidedBy: cr.trace, hotdrop: true };
          }
        }
        if (!ok) {
          i++;
          continue;
        }
      }
      cr.packets++;
      cr.bytes += len;
      if (skb.nfTrace) traced(ctx, cr.trace, skb, hook);
      const kind = cr.kind;
      if (kind === STEP_NONE) {
        i++;
        continue;
      }
      if (kind === STEP_VERDICT) return cr.result!;
      if (kind === STEP_JUMP || kind === STEP_GOTO) {
        if (kind === STEP_JUMP) {
          chains[sp] = chain;
          nexts[sp] = i + 1;
          sp++;
        }
        chain = cr.jump!;
        i = 0;
        enter = true;
        continue;
      }
      if (kind === STEP_TARGET) {
        const v: TargetVerdict = cr.tfn!(cr.topt, skb, par);
        if (par.hotdrop) return { verdict: "DROP", decidedBy: cr.trace, hotdrop: true };
        if (v === XT_CONTINUE) {
          i++;
          continue;
        }
        if (v !== XT_RETURN) {
          // Built once per rule and verdict, like the standard-verdict results.
          const res = cr.result;
          return res !== undefined && res.verdict === v
            ? res
            : (cr.result = { verdict: v, decidedBy: cr.trace });
        }
      }
      // RETURN, or a target that returned XT_RETURN (below).
    }
    // Back to the calling chain, after the rule that jumped; with an empty stack, the built-in chain's policy.
    if (sp === 0) return policyOf(start, skb, ctx, hook, len);
    sp--;
    chain = chains[sp];
    i = nexts[sp];
    enter = true;
  }
}

/** A matched entry while skb.nfTrace is set: counted, and handed to the context's trace callback. */
function traced(ctx: DoTableContext, point: TracePoint, skb: Skb, hook: Hook): void {
  if (ctx.traceHits !== undefined) ctx.traceHits++;
  if (ctx.trace) ctx.trace(point, skb, hook);
}

/** RETURN with an empty stack: the kernel continues at the hook's underflow entry, the built-in policy. */
function policyOf(
  start: CompiledChain,
  skb: Skb,
  ctx: DoTableContext,
  hook: Hook,
  len: number,
): DoTableResult {
  const tail = start.tail;
  tail.packets++;
  tail.bytes += len;
  if (skb.nfTrace) traced(ctx, tail.trace, skb, hook);
  const verdict = tail.step.kind === "verdict" ? tail.step.verdict : "ACCEPT";
  return verdict === tail.result?.verdict ? tail.result : { verdict, decidedBy: tail.trace };
}

/** Copies the compiled counters back into the rule-set model (for `iptables-save -c` style output). */
export function syncCounters(table: CompiledTable): void {
  for (const chain of table.chains.values()) {
    for (const cr of chain.rules) {
      cr.rule.counters.packets = BigInt(cr.packets);
      cr.rule.counters.bytes = BigInt(cr.bytes);
    }
    const model = table.source.chains.get(chain.name);
    if (model && chain.builtin) {
      model.counters.packets = BigInt(chain.tail.packets);
      model.counters.bytes = BigInt(chain.tail.bytes);
    }
  }
}
