/**
 * The `ctsim test` check-file format (YAML), parsed into validated values with the location of every key, so
 * that an error or a failed expectation points at file:line:column (yaml's LineCounter).
 *
 *     host: hosts/natgw.yaml            # paths are relative to the check file
 *     rules: rules/natgw.v4             # iptables-save output or a shell script of iptables commands
 *     kernel: "6.18"                    # optional: kernel profile; sysctl: {name: value}; backend: legacy|nft;
 *                                       #           seed: N; allow-unknown: true
 *     cases:
 *       - name: a FIN with no conntrack entry never leaves with a private source
 *         packets: |                    # tcpdump text, one packet per line (or two with -v)
 *           eth0 In IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F.], seq 1, ack 1, win 512, length 0
 *         expect:
 *           - packet: 1                 # 1-based; may be left out when the case has one packet
 *             ctstate: INVALID          # NEW / ESTABLISHED / RELATED / INVALID / UNTRACKED
 *             fate: dropped             # or: forwarded / local / rejected (also sent / stolen / ignored)
 *             leaves: {iface: eth0, src: 192.168.100.104}
 *
 * A case may override `rules`, `sysctl`, `kernel` and give `in: IFACE` for packets that name no interface.
 * Expectation keys (every one optional, each compared on its own):
 *   ctstate, ctinfo      the conntrack state as `-m conntrack --ctstate` sees it, the ctinfo name
 *   conntrack            the entry after the packet: `none`, a string (its words must all be in the
 *                        `conntrack -L` line), or fields {proto, state, timeout, orig: {src, dst, sport, dport},
 *                        reply: {...}, flags: [ASSURED], mark, zone}
 *   fate                 dropped / forwarded / local / rejected / sent / stolen / ignored
 *   rule                 the rule that decided: `filter:FORWARD:1`, `filter:FORWARD:rule:1`,
 *                        `filter:FORWARD:policy`, or the rule's text (`-A FORWARD ... -j DROP`)
 *   matched              rules (as for `rule`) that must all have matched
 *   nat                  the NAT'd tuple {src, dst, sport, dport, kind, by}, or `none` (not translated)
 *   leaves               `none` / [] (nothing leaves); a map: every packet that leaves has these fields; a
 *                        list: exactly these packets leave, in order. Fields: iface, proto, src, dst, sport,
 *                        dport, flags (tcpdump's `F.`), type, code, ttl, length
 *   node                 which node of a network the expectation is about (single host: its hostname)
 *
 * Networks (`topology: topology.yaml` instead of host/rules; src/check/topology.ts runs them): a case injects
 * its `packets` at `node:` (interface from the line or `in:`; packet N at N-1 seconds, `interval:` to change),
 * and/or runs the topology's own traffic (`traffic: true`, the default when the case has no packets), until the
 * network is idle or `until:` seconds. Expectations select what they are about with
 *   packet: N            what injected packet N caused (without it: the whole run)
 *   node: NAME           that node: the node keys above are about the first packet it handled (in scope)
 *   match: {fields}      the first packet arriving (at `node`, if given) with these fields (as in leaves);
 *                        the scope becomes that packet and what it caused
 *   after: SECONDS       only what happened at or after this simulated time (with match/node)
 *   flow: NAME           a `connect` flow of the topology's traffic (for `socket`)
 * and add the network keys
 *   path                 [node, ...]: the nodes the selected packet and what it caused went through, in order
 *                        (repeats collapsed); the list must be a prefix of what happened
 *   loop                 none, or {nodes: [a, b], reason: ttl-decreasing|hop-limit, crossings: N, min_ttl: N}
 *                        (a forwarding loop of a packet in scope; crossings and min_ttl compare exactly)
 *   received, sent       packets arriving at / sent by `node` in scope: none, a map (every one has these
 *                        fields), or a list (exactly these, in any order); fields as in leaves
 *   socket               a TCP socket at the end of the run (`flow:`, or `node:` plus `local`/`remote`
 *                        ADDR:PORT in the map to pick a connection of that node): its final state
 *                        (`ESTABLISHED`), or {state, error: ECONNRESET|ECONNREFUSED|ETIMEDOUT|EADDRINUSE|
 *                        EADDRNOTAVAIL|none,
 *                        established: true|false, history: [SYN_SENT, ESTABLISHED] (in order, not
 *                        necessarily adjacent), retransmissions: N (segments the socket sent again)}
 *
 * Experiments (`experiment: experiment.yaml` instead of host/rules: a `ctsim run` experiment file, today the
 * tuple-space table of seed 003, src/sim/net/experiment.ts; src/check/experiment.ts runs them): a case has only
 * `name` and `expect`; the experiment runs once per file. Expectations select table cells with
 *   mode: none|nat|tproxy  the column (LVS only, LVS + NAT-mode proxy, LVS + pure TPROXY); required
 *   clients: N | [N, ...]  the rows (client counts of the experiment; default: every row)
 * and check them with
 *   failures             the failure rate of every selected cell: a rate (`5.1%`, or a fraction 0.051) equal
 *                        within the table's rounding (0.05%), or {value, tolerance} (`{value: 5.1%, tolerance:
 *                        0.5%}`), and/or bounds {min, max}, and/or {below: MODE} / {above: MODE} (strictly
 *                        lower / higher than that column in the same row)
 *   trend                increasing / decreasing (strictly, row by row in client order) / constant, over the
 *                        selected rows
 *
 * Format: ctsim's own (issue 5). Leaves out on purpose: YAML anchors across files, per-expectation timing.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from "yaml";
import type { Node as YamlNode, Pair, Scalar, YAMLMap } from "yaml";
import type { Diagnostic, SourceLocation } from "../errors";

export type Loc = SourceLocation & { readonly line: number; readonly column: number };

/** One claim about one field, with where it was written. */
export interface FieldExpectation {
  /** ctstate, ctinfo, conntrack, fate, rule, matched, nat, leaves. */
  readonly key: ExpectKey;
  readonly want: unknown;
  readonly loc: Loc;
}

export const EXPECT_KEYS = [
  "ctstate",
  "ctinfo",
  "conntrack",
  "fate",
  "rule",
  "matched",
  "nat",
  "leaves",
] as const;
/** Keys only a network (topology) check file can use. */
export const NET_EXPECT_KEYS = ["path", "loop", "received", "sent", "socket"] as const;
/** Keys only an experiment check file can use. */
export const EXPERIMENT_EXPECT_KEYS = ["failures", "trend"] as const;
export type ExpectKey =
  (typeof EXPECT_KEYS)[number] | (typeof NET_EXPECT_KEYS)[number] | (typeof EXPERIMENT_EXPECT_KEYS)[number];

/** An experiment's column: the proxy mode behind the LVS (src/sim/net/devices/tuple_space.ts ProxyMode). */
export const EXPERIMENT_MODES = ["none", "nat", "tproxy"] as const;
export type ExperimentMode = (typeof EXPERIMENT_MODES)[number];
export const TRENDS = ["increasing", "decreasing", "constant"] as const;
export type Trend = (typeof TRENDS)[number];

/** `failures:` of an experiment expectation; rates are fractions (0.051 for 5.1%). */
export interface FailuresWant {
  readonly value?: number;
  /** With value: the allowed difference (default 0.0005, the table's rounding). */
  readonly tolerance?: number;
  readonly min?: number;
  readonly max?: number;
  readonly below?: ExperimentMode;
  readonly above?: ExperimentMode;
  /** Where each of the above was written (a diff points at the condition that failed). */
  readonly locs?: Readonly<Partial<Record<(typeof FAILURES_FIELDS)[number], Loc>>>;
}
export const FAILURES_FIELDS = ["value", "tolerance", "min", "max", "below", "above"] as const;

export interface Expectation {
  /** 1-based packet number in the case; 0 when not given (network checks: the whole run). */
  readonly packet: number;
  readonly node?: string;
  /** Network checks: the first arriving packet with these fields (LEAVE_FIELDS). */
  readonly match?: Readonly<Record<string, unknown>>;
  /** Network checks: a connect flow of the topology's traffic. */
  readonly flow?: string;
  /** Network checks: only events at or after this simulated time (seconds) are selected. */
  readonly after?: number;
  /** Experiment checks: the column and the rows (client counts; undefined: every row). */
  readonly mode?: Located<ExperimentMode>;
  readonly clients?: Located<readonly number[]>;
  readonly fields: readonly FieldExpectation[];
  readonly loc: Loc;
}

export interface CheckCase {
  readonly name: string;
  readonly loc: Loc;
  /** The packets as written. */
  readonly packets: string;
  /** Where the first packet line is in the check file, and its indentation (for error locations). */
  readonly packetsLine: number;
  readonly packetsIndent: number;
  readonly in?: string;
  readonly rules?: Located<string>;
  readonly sysctl?: Readonly<Record<string, string>>;
  readonly kernel?: string;
  /** Network checks: the node the packets are injected at, whether the topology's traffic runs, the end time. */
  readonly node?: Located<string>;
  readonly traffic?: boolean;
  readonly until?: number;
  /** Seconds between injected packets (default 1). */
  readonly interval?: number;
  readonly expect: readonly Expectation[];
}

export interface Located<T> {
  readonly value: T;
  readonly loc: Loc;
}

/** The system-under-test keys of a check file (single host today; topology files later). */
export interface SubjectSpec {
  /** Top-level keys that are not `cases`, by name, with their locations (a SubjectKind reads them). */
  readonly keys: ReadonlyMap<string, Located<unknown>>;
}

export interface CheckFile {
  readonly file: string;
  readonly subject: SubjectSpec;
  readonly cases: readonly CheckCase[];
}

export interface CheckParseResult {
  readonly check?: CheckFile;
  readonly errors: readonly Diagnostic[];
}

export const CTSTATES = ["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"] as const;
export const FATES = ["dropped", "forwarded", "local", "rejected", "sent", "stolen", "ignored"] as const;
export const LEAVE_FIELDS = [
  "iface",
  "proto",
  "src",
  "dst",
  "sport",
  "dport",
  "flags",
  "type",
  "code",
  "ttl",
  "length",
] as const;
export const NAT_FIELDS = ["kind", "src", "dst", "sport", "dport", "by"] as const;
export const CONNTRACK_FIELDS = [
  "proto",
  "state",
  "timeout",
  "orig",
  "reply",
  "flags",
  "mark",
  "zone",
] as const;
const TUPLE_FIELDS = ["src", "dst", "sport", "dport", "type", "code", "id"] as const;
const CASE_KEYS = [
  "name",
  "packets",
  "expect",
  "in",
  "rules",
  "sysctl",
  "kernel",
  "node",
  "traffic",
  "until",
  "interval",
] as const;
export const LOOP_FIELDS = ["nodes", "reason", "crossings", "min_ttl"] as const;
export const SOCKET_FIELDS = [
  "local",
  "remote",
  "state",
  "error",
  "established",
  "history",
  "retransmissions",
] as const;
/** Top-level keys a single-host check file may have (SubjectKinds add theirs). */
export const TOP_KEYS = [
  "host",
  "rules",
  "kernel",
  "sysctl",
  "backend",
  "seed",
  "allow-unknown",
  "cases",
] as const;

class Ctx {
  readonly errors: Diagnostic[] = [];
  readonly lc = new LineCounter();
  lines: string[] = [];
  constructor(readonly file: string) {}

  loc(node: YamlNode | null | undefined, fallback?: Loc): Loc {
    const off = node?.range?.[0];
    if (off === undefined) return fallback ?? { file: this.file, line: 1, column: 1 };
    const p = this.lc.linePos(off);
    return { file: this.file, line: p.line, column: p.col };
  }

  error(code: string, message: string, loc: Loc): void {
    const excerpt = this.lines[loc.line - 1];
    this.errors.push({ ...loc, code, message, ...(excerpt !== undefined ? { excerpt } : {}) });
  }
}

/** The pairs of a map, with string keys. */
function pairs(ctx: Ctx, map: YAMLMap): { key: string; keyNode: YamlNode; value: YamlNode | null }[] {
  const out: { key: string; keyNode: YamlNode; value: YamlNode | null }[] = [];
  for (const p of map.items as Pair<YamlNode, YamlNode | null>[]) {
    const k = p.key;
    if (!isScalar(k)) {
      ctx.error("CHECK_BAD_KEY", "keys must be plain words", ctx.loc(k ?? map));
      continue;
    }
    out.push({ key: String(k.value), keyNode: k, value: p.value ?? null });
  }
  return out;
}

function unknownKey(ctx: Ctx, key: string, known: readonly string[], loc: Loc, where: string): void {
  const near = known.find((k) => editDistance(k, key) <= 2);
  ctx.error(
    "CHECK_UNKNOWN_KEY",
    `unknown key "${key}" in ${where}${near ? ` (did you mean "${near}"?)` : ""}; known: ${known.join(", ")}`,
    loc,
  );
}

function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function scalarString(ctx: Ctx, node: YamlNode | null, what: string, fallback: Loc): string | undefined {
  if (node && isScalar(node) && node.value !== null && typeof node.value !== "object")
    return String(node.value);
  ctx.error("CHECK_EXPECTED_SCALAR", `${what}: expected a single value`, ctx.loc(node, fallback));
  return undefined;
}

function sysctlMap(ctx: Ctx, node: YamlNode | null, fallback: Loc): Record<string, string> | undefined {
  if (!node || !isMap(node)) {
    ctx.error("CHECK_EXPECTED_MAP", "sysctl: expected a map of name: value", ctx.loc(node, fallback));
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const p of pairs(ctx, node)) {
    const v = scalarString(ctx, p.value, `sysctl ${p.key}`, ctx.loc(p.keyNode));
    if (v !== undefined) out[p.key] = v;
  }
  return out;
}

/**
 * Converts an expectation value to plain data, checking its shape; maps of fields are checked against the
 * allowed field names (so a typo is an error rather than a silently ignored claim).
 */
function fieldMap(
  ctx: Ctx,
  node: YAMLMap,
  allowed: readonly string[],
  where: string,
  nested: Readonly<Record<string, readonly string[]>> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pairs(ctx, node)) {
    if (!allowed.includes(p.key)) {
      unknownKey(ctx, p.key, allowed, ctx.loc(p.keyNode), where);
      continue;
    }
    const sub = nested[p.key];
    if (sub && p.value && isMap(p.value)) out[p.key] = fieldMap(ctx, p.value, sub, `${where}.${p.key}`);
    else if (p.value && isSeq(p.value))
      out[p.key] = p.value.items.map((i) => (isScalar(i) ? String(i.value) : ""));
    else if (p.value && isScalar(p.value)) out[p.key] = p.value.value === null ? null : p.value.value;
    else if (!p.value) out[p.key] = null;
    else ctx.error("CHECK_BAD_VALUE", `${where}.${p.key}: unexpected value`, ctx.loc(p.value));
  }
  return out;
}

function isNoneWord(node: YamlNode | null): boolean {
  if (!node) return true;
  if (isScalar(node) && (node.value === null || node.value === "none" || node.value === false)) return true;
  return isSeq(node) && node.items.length === 0;
}

function parseField(ctx: Ctx, key: ExpectKey, node: YamlNode | null, keyLoc: Loc): unknown {
  const loc = ctx.loc(node, keyLoc);
  switch (key) {
    case "ctstate": {
      const v = scalarString(ctx, node, key, keyLoc)?.toUpperCase();
      if (v !== undefined && !(CTSTATES as readonly string[]).includes(v))
        ctx.error("CHECK_BAD_VALUE", `ctstate: expected one of ${CTSTATES.join(", ")}, got "${v}"`, loc);
      return v;
    }
    case "ctinfo":
      return scalarString(ctx, node, key, keyLoc);
    case "fate": {
      const v = scalarString(ctx, node, key, keyLoc)?.toLowerCase();
      if (v !== undefined && !(FATES as readonly string[]).includes(v))
        ctx.error("CHECK_BAD_VALUE", `fate: expected one of ${FATES.join(", ")}, got "${v}"`, loc);
      return v;
    }
    case "rule":
      return scalarString(ctx, node, key, keyLoc);
    case "matched": {
      if (node && isSeq(node)) return node.items.map((i) => scalarString(ctx, i as YamlNode, key, loc));
      const v = scalarString(ctx, node, key, keyLoc);
      return v === undefined ? [] : [v];
    }
    case "conntrack":
      if (isNoneWord(node)) return "none";
      if (node && isMap(node))
        return fieldMap(ctx, node, CONNTRACK_FIELDS, "conntrack", {
          orig: TUPLE_FIELDS,
          reply: TUPLE_FIELDS,
        });
      return scalarString(ctx, node, key, keyLoc);
    case "nat":
      if (isNoneWord(node)) return "none";
      if (node && isMap(node)) return fieldMap(ctx, node, NAT_FIELDS, "nat");
      ctx.error("CHECK_BAD_VALUE", "nat: expected none or a map of src, dst, sport, dport, kind, by", loc);
      return undefined;
    case "leaves":
      if (isNoneWord(node)) return [];
      if (node && isMap(node)) return { every: fieldMap(ctx, node, LEAVE_FIELDS, "leaves") };
      if (node && isSeq(node)) {
        return node.items.map((item, i) => {
          if (isMap(item)) return fieldMap(ctx, item, LEAVE_FIELDS, `leaves[${i}]`);
          ctx.error(
            "CHECK_EXPECTED_MAP",
            `leaves[${i}]: expected a map of fields`,
            ctx.loc(item as YamlNode),
          );
          return {};
        });
      }
      ctx.error("CHECK_BAD_VALUE", "leaves: expected none, a map of fields or a list of maps", loc);
      return undefined;
    case "received":
    case "sent":
      if (isNoneWord(node)) return [];
      if (node && isMap(node)) return { every: fieldMap(ctx, node, LEAVE_FIELDS, key) };
      if (node && isSeq(node))
        return node.items.map((item, i) => {
          if (isMap(item)) return fieldMap(ctx, item, LEAVE_FIELDS, `${key}[${i}]`);
          ctx.error(
            "CHECK_EXPECTED_MAP",
            `${key}[${i}]: expected a map of fields`,
            ctx.loc(item as YamlNode),
          );
          return {};
        });
      ctx.error("CHECK_BAD_VALUE", `${key}: expected none, a map of fields or a list of maps`, loc);
      return undefined;
    case "path":
      if (node && isSeq(node)) return node.items.map((i) => scalarString(ctx, i as YamlNode, "path", loc));
      ctx.error("CHECK_BAD_VALUE", "path: expected a list of node names", loc);
      return undefined;
    case "loop":
      if (isNoneWord(node)) return "none";
      if (node && isMap(node)) return fieldMap(ctx, node, LOOP_FIELDS, "loop");
      ctx.error("CHECK_BAD_VALUE", "loop: expected none or a map of nodes, reason, crossings, min_ttl", loc);
      return undefined;
    case "failures":
      return failuresWant(ctx, node, keyLoc);
    case "trend": {
      const v = scalarString(ctx, node, key, keyLoc)?.toLowerCase();
      if (v !== undefined && !(TRENDS as readonly string[]).includes(v))
        ctx.error("CHECK_BAD_VALUE", `trend: expected one of ${TRENDS.join(", ")}, got "${v}"`, loc);
      return v;
    }
    case "socket":
      if (node && isMap(node)) {
        const m = fieldMap(ctx, node, SOCKET_FIELDS, "socket");
        if (m.error === null) m.error = "none";
        return m;
      }
      {
        const v = scalarString(ctx, node, key, keyLoc);
        return v === undefined ? undefined : { state: v.toUpperCase() };
      }
  }
}

/**
 * A failure rate: a fraction 0..1 (`0.051`) or a percentage string (`5.1%`). A bare number above 1 is an error
 * (is `5` 5% or 500%?).
 */
function rate(ctx: Ctx, node: YamlNode | null, what: string, fallback: Loc): number | undefined {
  const loc = ctx.loc(node, fallback);
  const v = node && isScalar(node) ? node.value : undefined;
  if (typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1) return v;
  if (typeof v === "string") {
    const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$/.exec(v);
    if (m && Number(m[1]) <= 100) return Number(m[1]) / 100;
  }
  const hint = typeof v === "number" && v > 1 ? ` (write ${v}% for a percentage)` : "";
  ctx.error(
    "CHECK_BAD_VALUE",
    `${what}: expected a rate, a percentage (5.1%) or a fraction 0..1, got ${showValue(v)}${hint}`,
    loc,
  );
  return undefined;
}

function showValue(v: unknown): string {
  return v === undefined || v === null ? "nothing" : typeof v === "string" ? `"${v}"` : String(v);
}

function modeOf(ctx: Ctx, node: YamlNode | null, what: string, fallback: Loc): ExperimentMode | undefined {
  const v = scalarString(ctx, node, what, fallback)?.toLowerCase();
  if (v === undefined) return undefined;
  if ((EXPERIMENT_MODES as readonly string[]).includes(v)) return v as ExperimentMode;
  ctx.error(
    "CHECK_BAD_VALUE",
    `${what}: expected one of ${EXPERIMENT_MODES.join(", ")} (LVS only, NAT-mode proxy, pure TPROXY), got "${v}"`,
    ctx.loc(node, fallback),
  );
  return undefined;
}

function failuresWant(ctx: Ctx, node: YamlNode | null, keyLoc: Loc): FailuresWant | undefined {
  if (!node || !isMap(node)) {
    const v = rate(ctx, node, "failures", keyLoc);
    return v === undefined ? undefined : { value: v };
  }
  const out: { -readonly [K in keyof FailuresWant]: FailuresWant[K] } = {};
  const locs: Partial<Record<(typeof FAILURES_FIELDS)[number], Loc>> = {};
  out.locs = locs;
  for (const p of pairs(ctx, node)) {
    const kl = ctx.loc(p.keyNode);
    if ((FAILURES_FIELDS as readonly string[]).includes(p.key))
      locs[p.key as (typeof FAILURES_FIELDS)[number]] = kl;
    switch (p.key) {
      case "value":
      case "tolerance":
      case "min":
      case "max":
        out[p.key] = rate(ctx, p.value, `failures.${p.key}`, kl);
        break;
      case "below":
      case "above":
        out[p.key] = modeOf(ctx, p.value, `failures.${p.key}`, kl);
        break;
      default:
        unknownKey(ctx, p.key, FAILURES_FIELDS, kl, "failures");
    }
  }
  if (out.tolerance !== undefined && out.value === undefined)
    ctx.error("CHECK_BAD_VALUE", "failures.tolerance: only with value", ctx.loc(node));
  if (out.min !== undefined && out.max !== undefined && out.min > out.max)
    ctx.error("CHECK_BAD_VALUE", "failures: min is above max", ctx.loc(node));
  if (node.items.length === 0)
    ctx.error("CHECK_EMPTY_EXPECT", "failures: give value, min, max, below or above", ctx.loc(node));
  return out;
}

function clientsOf(ctx: Ctx, node: YamlNode | null, fallback: Loc): number[] | undefined {
  const items = node && isSeq(node) ? (node.items as YamlNode[]) : [node];
  const out: number[] = [];
  for (const i of items) {
    const v = i && isScalar(i) ? i.value : undefined;
    if (typeof v === "number" && Number.isInteger(v) && v >= 1) out.push(v);
    else {
      ctx.error(
        "CHECK_BAD_VALUE",
        "clients: expected a client count or a list of them",
        ctx.loc(i, fallback),
      );
      return undefined;
    }
  }
  if (out.length === 0) ctx.error("CHECK_BAD_VALUE", "clients: empty list", ctx.loc(node, fallback));
  return out;
}

function parseExpectation(ctx: Ctx, node: YamlNode, packets: number, caseLoc: Loc): Expectation | undefined {
  const loc = ctx.loc(node, caseLoc);
  if (!isMap(node)) {
    ctx.error("CHECK_EXPECTED_MAP", "an expectation is a map (packet:, ctstate:, fate: ...)", loc);
    return undefined;
  }
  let packet: number | undefined;
  let node_: string | undefined;
  let match: Record<string, unknown> | undefined;
  let flow: string | undefined;
  let after: number | undefined;
  let mode: Located<ExperimentMode> | undefined;
  let clients: Located<readonly number[]> | undefined;
  const fields: FieldExpectation[] = [];
  const known = [
    "packet",
    "node",
    "match",
    "flow",
    "after",
    "mode",
    "clients",
    ...EXPECT_KEYS,
    ...NET_EXPECT_KEYS,
    ...EXPERIMENT_EXPECT_KEYS,
  ];
  for (const p of pairs(ctx, node)) {
    const keyLoc = ctx.loc(p.keyNode);
    if (p.key === "packet") {
      const v = p.value && isScalar(p.value) ? p.value.value : undefined;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
        ctx.error(
          "CHECK_BAD_VALUE",
          "packet: expected a packet number (1 is the first)",
          ctx.loc(p.value, keyLoc),
        );
      } else if (packets > 0 && v > packets) {
        ctx.error("CHECK_BAD_VALUE", `packet: the case has ${packets} packet(s), got ${v}`, ctx.loc(p.value));
      } else packet = v;
    } else if (p.key === "node") {
      node_ = scalarString(ctx, p.value, "node", keyLoc);
    } else if (p.key === "after") {
      const v = p.value && isScalar(p.value) ? p.value.value : undefined;
      if (typeof v === "number" && Number.isFinite(v) && v >= 0) after = v;
      else ctx.error("CHECK_BAD_VALUE", "after: expected seconds (a number >= 0)", ctx.loc(p.value, keyLoc));
    } else if (p.key === "flow") {
      flow = scalarString(ctx, p.value, "flow", keyLoc);
    } else if (p.key === "mode") {
      const v = modeOf(ctx, p.value, "mode", keyLoc);
      if (v !== undefined) mode = { value: v, loc: ctx.loc(p.value, keyLoc) };
    } else if (p.key === "clients") {
      const v = clientsOf(ctx, p.value, keyLoc);
      if (v !== undefined) clients = { value: v, loc: ctx.loc(p.value, keyLoc) };
    } else if (p.key === "match") {
      if (p.value && isMap(p.value)) match = fieldMap(ctx, p.value, LEAVE_FIELDS, "match");
      else
        ctx.error("CHECK_EXPECTED_MAP", "match: expected a map of packet fields", ctx.loc(p.value, keyLoc));
    } else if (
      (EXPECT_KEYS as readonly string[]).includes(p.key) ||
      (NET_EXPECT_KEYS as readonly string[]).includes(p.key) ||
      (EXPERIMENT_EXPECT_KEYS as readonly string[]).includes(p.key)
    ) {
      const key = p.key as ExpectKey;
      fields.push({ key, want: parseField(ctx, key, p.value, keyLoc), loc: keyLoc });
    } else unknownKey(ctx, p.key, known, keyLoc, "an expectation");
  }
  if (packet === undefined) {
    if (packets === 1) packet = 1;
    else if (
      packets === 0 ||
      flow !== undefined ||
      match !== undefined ||
      node_ !== undefined ||
      after !== undefined
    )
      packet = 0;
    else if (!ctx.errors.some((e) => e.line === loc.line)) {
      ctx.error("CHECK_NO_PACKET", "packet: which packet? (the case has several; 1 is the first)", loc);
      return undefined;
    }
  }
  if (fields.length === 0) ctx.error("CHECK_EMPTY_EXPECT", "the expectation checks nothing", loc);
  return {
    packet: packet ?? 1,
    ...(node_ !== undefined ? { node: node_ } : {}),
    ...(match !== undefined ? { match } : {}),
    ...(flow !== undefined ? { flow } : {}),
    ...(after !== undefined ? { after } : {}),
    ...(mode !== undefined ? { mode } : {}),
    ...(clients !== undefined ? { clients } : {}),
    fields,
    loc,
  };
}

/** Number of packet lines in a packets text (two-line `tcpdump -v` packets count once). */
function countPackets(text: string): number {
  let n = 0;
  for (const raw of text.split(/\r?\n/)) {
    const l = raw.trim();
    if (l === "" || l.startsWith("#")) continue;
    // A `tcpdump -v` header line ("... IP (tos ...") is followed by the address line.
    if (/\bIP \(tos /.test(l) && !/ > /.test(l)) continue;
    n++;
  }
  return n;
}

function parseCase(ctx: Ctx, node: YamlNode, i: number, fallback: Loc): CheckCase | undefined {
  const loc = ctx.loc(node, fallback);
  if (!isMap(node)) {
    ctx.error("CHECK_EXPECTED_MAP", `cases[${i}]: expected a map with name, packets and expect`, loc);
    return undefined;
  }
  let name: string | undefined;
  let packets: string | undefined;
  let packetsLine = loc.line;
  let packetsIndent = 0;
  let expectNode: YamlNode | null = null;
  let expectLoc = loc;
  let inIface: string | undefined;
  let rules: Located<string> | undefined;
  let sysctl: Record<string, string> | undefined;
  let kernel: string | undefined;
  let injectNode: Located<string> | undefined;
  let traffic: boolean | undefined;
  let until: number | undefined;
  let interval: number | undefined;
  const number = (p: { value: YamlNode | null; keyNode: YamlNode }, what: string): number | undefined => {
    const v = p.value && isScalar(p.value) ? p.value.value : undefined;
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) return v;
    ctx.error(
      "CHECK_BAD_VALUE",
      `${what}: expected seconds (a number >= 0)`,
      ctx.loc(p.value, ctx.loc(p.keyNode)),
    );
    return undefined;
  };
  for (const p of pairs(ctx, node)) {
    const keyLoc = ctx.loc(p.keyNode);
    switch (p.key) {
      case "name":
        name = scalarString(ctx, p.value, "name", keyLoc);
        break;
      case "packets": {
        packets = scalarString(ctx, p.value, "packets", keyLoc);
        const s = p.value as Scalar | null;
        const vloc = ctx.loc(s, keyLoc);
        const block = s && (s.type === "BLOCK_LITERAL" || s.type === "BLOCK_FOLDED");
        packetsLine = block ? vloc.line + 1 : vloc.line;
        const lineText = ctx.lines[packetsLine - 1] ?? "";
        const quoted = s?.type === "QUOTE_DOUBLE" || s?.type === "QUOTE_SINGLE";
        packetsIndent = block ? (/^ */.exec(lineText)?.[0].length ?? 0) : vloc.column - (quoted ? 0 : 1);
        break;
      }
      case "expect":
        expectNode = p.value;
        expectLoc = keyLoc;
        break;
      case "in":
        inIface = scalarString(ctx, p.value, "in", keyLoc);
        break;
      case "rules": {
        const v = scalarString(ctx, p.value, "rules", keyLoc);
        if (v !== undefined) rules = { value: v, loc: ctx.loc(p.value, keyLoc) };
        break;
      }
      case "sysctl":
        sysctl = sysctlMap(ctx, p.value, keyLoc);
        break;
      case "kernel":
        kernel = scalarString(ctx, p.value, "kernel", keyLoc);
        break;
      case "node": {
        const v = scalarString(ctx, p.value, "node", keyLoc);
        if (v !== undefined) injectNode = { value: v, loc: ctx.loc(p.value, keyLoc) };
        break;
      }
      case "traffic":
        if (p.value && isScalar(p.value) && typeof p.value.value === "boolean") traffic = p.value.value;
        else ctx.error("CHECK_BAD_VALUE", "traffic: expected true or false", ctx.loc(p.value, keyLoc));
        break;
      case "until":
        until = number(p, "until");
        break;
      case "interval":
        interval = number(p, "interval");
        break;
      default:
        unknownKey(ctx, p.key, CASE_KEYS, keyLoc, `cases[${i}]`);
    }
  }
  if (name === undefined) ctx.error("CHECK_MISSING_KEY", `cases[${i}]: missing name`, loc);
  // A case without packets runs the topology's traffic (network checks); the host kind reports it.
  const n = packets !== undefined ? countPackets(packets) : 0;
  const expect: Expectation[] = [];
  if (!expectNode || !isSeq(expectNode)) {
    ctx.error("CHECK_MISSING_KEY", `cases[${i}]: expect: expected a list of expectations`, expectLoc);
  } else {
    for (const e of expectNode.items) {
      const x = parseExpectation(ctx, e as YamlNode, n, loc);
      if (x) expect.push(x);
    }
  }
  if (name === undefined) return undefined;
  return {
    name,
    loc,
    packets: packets ?? "",
    packetsLine,
    packetsIndent,
    ...(inIface !== undefined ? { in: inIface } : {}),
    ...(rules ? { rules } : {}),
    ...(sysctl ? { sysctl } : {}),
    ...(kernel !== undefined ? { kernel } : {}),
    ...(injectNode ? { node: injectNode } : {}),
    ...(traffic !== undefined ? { traffic } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(interval !== undefined ? { interval } : {}),
    expect,
  };
}

/**
 * Parses a check file. `extraTopKeys` are the keys other system-under-test kinds accept (e.g. `topology`).
 * Errors are collected; `check` is undefined when there are any.
 */
export function parseCheckFile(
  text: string,
  file: string,
  extraTopKeys: readonly string[] = [],
): CheckParseResult {
  const ctx = new Ctx(file);
  ctx.lines = text.split(/\r?\n/);
  const doc = parseDocument(text, { lineCounter: ctx.lc, prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) {
    const p = e.linePos?.[0] ?? ctx.lc.linePos(e.pos[0]);
    ctx.error("CHECK_YAML", e.message.split("\n")[0], { file, line: p.line, column: p.col });
  }
  if (ctx.errors.length > 0) return { errors: ctx.errors };
  const root = doc.contents as YamlNode | null;
  if (!root || !isMap(root)) {
    ctx.error("CHECK_EXPECTED_MAP", "a check file is a map with host, rules and cases", ctx.loc(root));
    return { errors: ctx.errors };
  }
  const keys = new Map<string, Located<unknown>>();
  const known = [...new Set([...TOP_KEYS, ...extraTopKeys])];
  const cases: CheckCase[] = [];
  let sawCases = false;
  for (const p of pairs(ctx, root)) {
    const keyLoc = ctx.loc(p.keyNode);
    if (!known.includes(p.key)) {
      unknownKey(ctx, p.key, known, keyLoc, "the check file");
      continue;
    }
    if (p.key === "cases") {
      sawCases = true;
      if (!p.value || !isSeq(p.value)) {
        ctx.error("CHECK_EXPECTED_LIST", "cases: expected a list of cases", keyLoc);
        continue;
      }
      p.value.items.forEach((c, i) => {
        const x = parseCase(ctx, c as YamlNode, i, keyLoc);
        if (x) cases.push(x);
      });
      continue;
    }
    let value: unknown;
    if (p.key === "sysctl") value = sysctlMap(ctx, p.value, keyLoc);
    else if (p.value && isScalar(p.value)) value = p.value.value;
    else value = p.value?.toJSON();
    keys.set(p.key, { value, loc: ctx.loc(p.value, keyLoc) });
  }
  if (!sawCases) ctx.error("CHECK_MISSING_KEY", "missing cases", ctx.loc(root));
  if (ctx.errors.length > 0) return { errors: ctx.errors };
  return { check: { file, subject: { keys }, cases }, errors: [] };
}

/**
 * The first experiment-only key (`mode`, `clients`, `failures`, `trend`) of a check file's expectations, for the
 * kinds that are not experiments to reject at its location.
 */
export function experimentKeyIn(check: CheckFile): { key: string; loc: Loc } | undefined {
  const only = EXPERIMENT_EXPECT_KEYS as readonly string[];
  for (const c of check.cases)
    for (const x of c.expect) {
      if (x.mode) return { key: "mode", loc: x.mode.loc };
      if (x.clients) return { key: "clients", loc: x.clients.loc };
      const f = x.fields.find((y) => only.includes(y.key));
      if (f) return { key: f.key, loc: f.loc };
    }
  return undefined;
}
