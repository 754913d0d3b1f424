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

type Step =
  | { readonly kind: "verdict"; readonly verdict: "ACCEPT" | "DROP" | "QUEUE" }
  | { readonly kind: "return" }
  | { readonly kind: "jump"; readonly chain: CompiledChain; readonly goto: boolean }
  | {
      readonly kind: "target";
      readonly fn: TargetFn<unknown>;
      readonly options: unknown;
      readonly name: string;
    }
  | { readonly kind: "none" };

interface CompiledMatch {
  readonly fn: MatchFn<unknown>;
  readonly options: unknown;
}

export interface CompiledRule {
  readonly rule: Rule;
  readonly chain: CompiledChain;
  readonly matches: readonly CompiledMatch[];
  readonly step: Step;
  readonly trace: TracePoint;
  /** Packet/byte counters as numbers (the model's bigint counters are synced by `syncCounters`). */
  packets: number;
  bytes: number;
}

export interface CompiledChain {
  readonly name: string;
  readonly builtin?: Hook;
  rules: CompiledRule[];
  /** The tail entry: the policy of a built-in chain (ACCEPT/DROP) or the implicit RETURN of a user chain. */
  tail: { readonly step: Step; readonly trace: TracePoint; packets: number; bytes: number };
}

export interface CompiledTable {
  readonly name: TableName;
  readonly chains: ReadonlyMap<string, CompiledChain>;
  readonly source: Table;
}

/** A rule the engine cannot evaluate: a match or target without a per-packet function. */
export interface CompileProblem {
  readonly rule: Rule;
  readonly what: string;
}

/** Resolves descriptors once. Rules kept under --allow-unknown (neverMatches) compile to rules that never match. */
export function compileTable(
  table: Table,
  registry: Registry,
): { table: CompiledTable; problems: CompileProblem[] } {
  const problems: CompileProblem[] = [];
  const chains = new Map<string, CompiledChain>();
  for (const chain of table.chains.values()) {
    const tailComment: TraceComment = chain.builtin ? "policy" : "return";
    chains.set(chain.name, {
      name: chain.name,
      builtin: chain.builtin,
      rules: [],
      tail: {
        step: chain.builtin ? { kind: "verdict", verdict: chain.policy ?? "ACCEPT" } : { kind: "return" },
        trace: { table: table.name, chain: chain.name, comment: tailComment, num: chain.rules.length + 1 },
        packets: 0,
        bytes: 0,
      },
    });
  }
  for (const chain of table.chains.values()) {
    const compiled = chains.get(chain.name)!;
    compiled.rules = chain.rules.map((rule) =>
      compileRule(table, chain, compiled, rule, chains, registry, problems),
    );
  }
  return { table: { name: table.name, chains, source: table }, problems };
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
    matches.push({ fn: d.match as MatchFn<unknown>, options: m.options });
  }
  let step: Step = { kind: "none" };
  const t = rule.target;
  if (t?.kind === "verdict") {
    step = t.verdict === "RETURN" ? { kind: "return" } : { kind: "verdict", verdict: t.verdict };
  } else if (t?.kind === "jump") {
    const target = chains.get(t.chain);
    if (!target) throw new Error(`rule ${chain.name}#${rule.num} jumps to missing chain ${t.chain}`);
    step = { kind: "jump", chain: target, goto: t.goto };
  } else if (t?.kind === "extension" && !t.unknown) {
    const d = registry.target(t.name);
    if (!d?.target) problems.push({ rule, what: `target "${t.name}" has no packet evaluation yet` });
    else step = { kind: "target", fn: d.target as TargetFn<unknown>, options: t.options, name: t.name };
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
  return {
    rule,
    chain: compiled,
    matches,
    step,
    trace: { table: table.name, chain: chain.name, comment, num: rule.num },
    packets: 0,
    bytes: 0,
  };
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
  const start = table.chains.get(hook);
  if (!start) return { verdict: "ACCEPT" };
  const inIface = skb.inIface ?? "";
  const outIface = skb.outIface ?? "";
  const len = skb.pkt.ip.totalLength;
  const par: XtActionParam = {
    table: table.name,
    hook,
    chain: hook,
    inIface: skb.inIface,
    outIface: skb.outIface,
    now: ctx.now,
    hotdrop: false,
    effects: ctx.effects,
    host: ctx.host,
    ruleState: ctx.ruleState,
  };
  const stack: { chain: CompiledChain; next: number }[] = [];
  let chain = start;
  let i = 0;
  for (;;) {
    if (i >= chain.rules.length) {
      // The chain's tail entry: unconditional, so it always "matches".
      const tail = chain.tail;
      tail.packets++;
      tail.bytes += len;
      if (skb.nfTrace && ctx.trace) ctx.trace(tail.trace, skb, hook);
      if (tail.step.kind === "verdict") return { verdict: tail.step.verdict, decidedBy: tail.trace };
      // Implicit RETURN of a user chain.
      const back = stack.pop();
      if (!back) return policyOf(start, skb, ctx, hook, len);
      chain = back.chain;
      i = back.next;
      continue;
    }
    const cr = chain.rules[i];
    const rule = cr.rule;
    if (rule.neverMatches || !ipPacketMatch(rule, skb.pkt, inIface, outIface)) {
      i++;
      continue;
    }
    let matched = true;
    (par as { chain: string }).chain = chain.name;
    for (const m of cr.matches) {
      if (!m.fn(m.options, skb, par)) {
        matched = false;
        break;
      }
      if (par.hotdrop) return { verdict: "DROP", decidedBy: cr.trace, hotdrop: true };
    }
    if (!matched) {
      i++;
      continue;
    }
    cr.packets++;
    cr.bytes += len;
    if (skb.nfTrace && ctx.trace) ctx.trace(cr.trace, skb, hook);
    const step = cr.step;
    switch (step.kind) {
      case "none":
        i++;
        continue;
      case "verdict":
        return { verdict: step.verdict, decidedBy: cr.trace };
      case "return": {
        const back = stack.pop();
        if (!back) return policyOf(start, skb, ctx, hook, len);
        chain = back.chain;
        i = back.next;
        continue;
      }
      case "jump":
        if (!step.goto) stack.push({ chain, next: i + 1 });
        chain = step.chain;
        i = 0;
        continue;
      case "target": {
        const v: TargetVerdict = step.fn(step.options, skb, par);
        if (par.hotdrop) return { verdict: "DROP", decidedBy: cr.trace, hotdrop: true };
        if (v === XT_CONTINUE) {
          i++;
          continue;
        }
        if (v === XT_RETURN) {
          const back = stack.pop();
          if (!back) return policyOf(start, skb, ctx, hook, len);
          chain = back.chain;
          i = back.next;
          continue;
        }
        return { verdict: v, decidedBy: cr.trace };
      }
    }
  }
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
  if (skb.nfTrace && ctx.trace) ctx.trace(tail.trace, skb, hook);
  const verdict = tail.step.kind === "verdict" ? tail.step.verdict : "ACCEPT";
  return { verdict, decidedBy: tail.trace };
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
