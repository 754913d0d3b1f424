/**
 * Text output of the conntrack table: `conntrack -L [-o extended|id]`, `conntrack -E`, /proc/net/nf_conntrack,
 * and a parser for such lines so recordings can be compared field by field.
 *
 * Mirrors ct_seq_show() in net/netfilter/nf_conntrack_standalone.c (Linux 6.17, Kingxukai/linux @ 9b44fff6) for
 * the /proc format, and libnetfilter_conntrack's default snprintf as printed by conntrack-tools v1.4.7 for
 * `-L`/`-E`; the kernel side of events is ctnetlink_conntrack_event() in nf_conntrack_netlink.c (timer skipped
 * on DESTROY once it ran out; protocol state only with IPCT_PROTOINFO or on DESTROY; mark only when non-zero or
 * changed; counters only on DESTROY). Field order, spacing and prefixes were checked against recordings on Linux
 * 6.18.44 (test/conntrack/golden/).
 * Leaves out on purpose: IPv6, secctx/labels/helper names, timestamps (-o timestamp, delta-time), GRE keys other
 * than 0, -o xml, and the "[USERSPACE] portid=N" suffix of deletions made by `conntrack -D`.
 */
import { formatIpv4 } from "../wire/addr";
import type { Seconds, Tuple } from "./types";
import { IPS_ASSURED, IPS_OFFLOAD, IPS_SEEN_REPLY } from "./types";
import type { CtEvent, NfConn } from "./core";
import { IPCT_MARK, timerOf } from "./core";
import { hasPorts, icmpCodeOf, icmpTypeOf } from "./tuple";

/** Protocol names as conntrack-tools prints them; anything else is "unknown". */
const PROTO_NAMES: Record<number, string> = {
  1: "icmp",
  6: "tcp",
  17: "udp",
  33: "dccp",
  47: "gre",
  58: "icmpv6",
  132: "sctp",
  136: "udplite",
};

export function conntrackProtoName(protonum: number): string {
  return PROTO_NAMES[protonum] ?? "unknown";
}

/** `src=a dst=b ` plus the protocol words, each followed by a space. */
export function formatTuple(t: Tuple): string {
  let s = `src=${formatIpv4(t.src)} dst=${formatIpv4(t.dst)} `;
  if (t.protonum === 1) s += `type=${icmpTypeOf(t)} code=${icmpCodeOf(t)} id=${t.srcU} `;
  else if (t.protonum === 47) s += `srckey=0x${t.srcU.toString(16)} dstkey=0x${t.dstU.toString(16)} `;
  else if (hasPorts(t.protonum) || t.protonum === 33) s += `sport=${t.srcU} dport=${t.dstU} `;
  return s;
}

/** "ipv4     2 " (the -o extended / /proc layer-3 prefix). */
const L3_PREFIX = "ipv4     2 ";

function protoPrefix(protonum: number): string {
  return `${conntrackProtoName(protonum).padEnd(8)} ${protonum} `;
}

export interface EntryFormatOptions {
  /** `-o extended`: the "ipv4     2 " prefix. */
  readonly extended?: boolean;
  /**
   * `packets= bytes=` after each tuple. Default: when the entry has the acct extension (it was created while
   * nf_conntrack_acct=1), as the kernel dumps counters exactly then.
   */
  readonly counters?: boolean;
  /** `-o id`: " id=N" at the end. */
  readonly id?: boolean;
}

function stateText(ct: NfConn): string {
  return ct.l4.showState ? ct.l4.showState(ct) : "";
}

/** One line of `conntrack -L` (with `extended`: `-o extended`), without the newline. */
export function formatConntrackEntry(ct: NfConn, now: Seconds, opts: EntryFormatOptions = {}): string {
  const { orig, reply } = ct;
  let s = opts.extended ? L3_PREFIX : "";
  s += protoPrefix(orig.protonum);
  s += `${timerOf(ct, now)} `;
  s += stateText(ct);
  s += formatTuple(orig);
  const counters = opts.counters ?? ct.acct !== undefined;
  if (counters) s += `packets=${ct.origPackets} bytes=${ct.origBytes} `;
  if (!(ct.status & IPS_SEEN_REPLY)) s += "[UNREPLIED] ";
  s += formatTuple(reply);
  if (counters) s += `packets=${ct.replyPackets} bytes=${ct.replyBytes} `;
  if (ct.status & IPS_ASSURED) s += "[ASSURED] ";
  if (ct.status & IPS_OFFLOAD) s += "[OFFLOAD] ";
  s += `mark=${ct.mark} `;
  if (ct.zone) s += `zone=${ct.zone} `;
  s += "use=1";
  if (opts.id) s += ` id=${ct.id}`;
  return s;
}

/** One line of /proc/net/nf_conntrack (ct_seq_show): always zone=, and use=2 (the reader holds a reference). */
export function formatProcEntry(ct: NfConn, now: Seconds, opts: { counters?: boolean } = {}): string {
  const counters = opts.counters ?? ct.acct !== undefined;
  const { orig, reply } = ct;
  let s = L3_PREFIX + protoPrefix(orig.protonum);
  s += `${timerOf(ct, now)} `;
  s += stateText(ct);
  s += formatTuple(orig);
  if (counters) s += `packets=${ct.origPackets} bytes=${ct.origBytes} `;
  if (!(ct.status & IPS_SEEN_REPLY)) s += "[UNREPLIED] ";
  s += formatTuple(reply);
  if (counters) s += `packets=${ct.replyPackets} bytes=${ct.replyBytes} `;
  if (ct.status & IPS_OFFLOAD) s += "[OFFLOAD] ";
  else if (ct.status & IPS_ASSURED) s += "[ASSURED] ";
  s += `mark=${ct.mark} zone=${ct.zone} use=2`;
  return s;
}

/** The event type column: right-aligned in 9 characters ("    [NEW]", " [UPDATE]", "[DESTROY]"). */
export function eventPrefix(type: CtEvent["type"]): string {
  return `[${type}]`.padStart(9);
}

/** One line of `conntrack -E` (with `extended`: `-E -o extended`; `id`: `-E -o id`). */
export function formatConntrackEvent(ev: CtEvent, opts: EntryFormatOptions = {}): string {
  let s = `${eventPrefix(ev.type)} `;
  if (opts.extended) s += L3_PREFIX;
  s += protoPrefix(ev.orig.protonum);
  if (ev.timer !== undefined) s += `${ev.timer} `;
  if (ev.protoState) s += ev.protoState;
  s += formatTuple(ev.orig);
  if (ev.counters) s += `packets=${ev.counters[0]} bytes=${ev.counters[1]} `;
  if (!(ev.status & IPS_SEEN_REPLY)) s += "[UNREPLIED] ";
  s += formatTuple(ev.reply);
  if (ev.counters) s += `packets=${ev.counters[2]} bytes=${ev.counters[3]} `;
  if (ev.status & IPS_ASSURED) s += "[ASSURED] ";
  if (ev.status & IPS_OFFLOAD) s += "[OFFLOAD] ";
  if (ev.mark || ev.events & (1 << IPCT_MARK)) s += `mark=${ev.mark} `;
  if (ev.zone) s += `zone=${ev.zone} `;
  if (opts.id) s += `id=${ev.id} `;
  return s.trimEnd();
}

// -------------------------------------------------------------------------------------------------------------
// Parsing

/** Keys of a tuple group (with the counters that follow it), by protocol name. */
const COMMON_TUPLE_KEYS = ["src", "dst", "packets", "bytes"];
const PROTO_TUPLE_KEYS: Record<string, readonly string[]> = {
  icmp: ["type", "code", "id"],
  gre: ["srckey", "dstkey"],
  unknown: [],
};
const PORT_KEYS = ["sport", "dport"];

function tupleKeysFor(proto: string): ReadonlySet<string> {
  return new Set([...COMMON_TUPLE_KEYS, ...(PROTO_TUPLE_KEYS[proto] ?? PORT_KEYS)]);
}

export interface ParsedConntrackLine {
  /** From `conntrack -E`. */
  readonly event?: "NEW" | "UPDATE" | "DESTROY";
  /** "ipv4" and 2 with -o extended and in /proc. */
  readonly l3?: string;
  readonly l3num?: number;
  readonly proto: string;
  readonly protonum: number;
  readonly timer?: number;
  /** Protocol state word (TCP), e.g. "ESTABLISHED". */
  readonly state?: string;
  readonly orig: Readonly<Record<string, string>>;
  readonly reply: Readonly<Record<string, string>>;
  /** Bracketed flags without brackets, in order: "UNREPLIED", "ASSURED", "OFFLOAD", "USERSPACE". */
  readonly flags: readonly string[];
  /** Everything after the reply tuple: mark, zone, use, id, secctx, portid... */
  readonly fields: Readonly<Record<string, string>>;
}

export class ConntrackLineError extends Error {
  constructor(
    readonly line: string,
    readonly column: number,
    message: string,
  ) {
    super(`column ${column}: ${message}`);
    this.name = "ConntrackLineError";
  }
}

/**
 * Parses a `conntrack -L`/`-E` line (any -o extended/id form) or a /proc/net/nf_conntrack line. Throws
 * ConntrackLineError (with a 1-based column) when the line does not have that shape.
 */
export function parseConntrackLine(line: string): ParsedConntrackLine {
  const tokens: { text: string; col: number }[] = [];
  const re = /\S+/g;
  for (let m = re.exec(line); m; m = re.exec(line)) tokens.push({ text: m[0], col: m.index + 1 });
  let i = 0;
  const fail = (msg: string): never => {
    throw new ConntrackLineError(line, tokens[i]?.col ?? line.length + 1, msg);
  };
  let event: ParsedConntrackLine["event"];
  const first = tokens[i]?.text;
  if (first === "[NEW]" || first === "[UPDATE]" || first === "[DESTROY]") {
    event = first.slice(1, -1) as ParsedConntrackLine["event"];
    i++;
  }
  let l3: string | undefined;
  let l3num: number | undefined;
  if (tokens[i]?.text === "ipv4" || tokens[i]?.text === "ipv6") {
    l3 = tokens[i].text;
    i++;
    if (!/^\d+$/.test(tokens[i]?.text ?? "")) fail("expected the layer-3 protocol number");
    l3num = Number(tokens[i++].text);
  }
  const proto = tokens[i]?.text;
  if (!proto || !/^[a-z0-9]+$/.test(proto)) fail("expected a protocol name");
  i++;
  if (!/^\d+$/.test(tokens[i]?.text ?? "")) fail("expected the protocol number");
  const protonum = Number(tokens[i++].text);
  let timer: number | undefined;
  if (/^\d+$/.test(tokens[i]?.text ?? "")) timer = Number(tokens[i++].text);
  let state: string | undefined;
  if (/^[A-Z_0-9]+$/.test(tokens[i]?.text ?? "")) state = tokens[i++].text;
  const orig: Record<string, string> = {};
  const reply: Record<string, string> = {};
  const fields: Record<string, string> = {};
  const flags: string[] = [];
  const tupleKeys = tupleKeysFor(proto!);
  // 0: before the first src=, 1: original tuple, 2: reply tuple, 3: trailing fields.
  let phase = 0;
  for (; i < tokens.length; i++) {
    const t = tokens[i].text;
    if (t.startsWith("[") && t.endsWith("]")) {
      flags.push(t.slice(1, -1));
      if (phase === 2) phase = 3;
      continue;
    }
    const eq = t.indexOf("=");
    if (eq <= 0) {
      if (phase === 3) {
        fields[t] = "";
        continue;
      }
      fail(`unexpected "${t}"`);
    }
    const key = t.slice(0, eq);
    const value = t.slice(eq + 1);
    if (key === "src" && phase < 2) phase++;
    else if (phase === 0) fail(`expected src= before "${t}"`);
    else if (phase === 2 && (!tupleKeys.has(key) || key in reply)) phase = 3;
    if (phase === 1) orig[key] = value;
    else if (phase === 2) reply[key] = value;
    else fields[key] = value;
  }
  if (phase < 2) fail("expected two tuples (src= ... src= ...)");
  return { event, l3, l3num, proto: proto!, protonum, timer, state, orig, reply, flags, fields };
}

/**
 * Field-by-field differences between two parsed lines, as "what: got X, want Y" messages (`got` is `a`).
 * The timer is ignored unless `timer` is set; `use=` differs between /proc and -L and is ignored unless `use`.
 */
export function diffConntrackLines(
  a: ParsedConntrackLine,
  b: ParsedConntrackLine,
  opts: { timer?: boolean; use?: boolean } = {},
): string[] {
  const out: string[] = [];
  const cmp = (what: string, x: unknown, y: unknown) => {
    if (x !== y)
      out.push(
        `${what}: got ${x === undefined ? "(none)" : String(x)}, want ${y === undefined ? "(none)" : String(y)}`,
      );
  };
  cmp("event", a.event, b.event);
  cmp("l3", a.l3, b.l3);
  cmp("proto", a.proto, b.proto);
  cmp("protonum", a.protonum, b.protonum);
  if (opts.timer) cmp("timer", a.timer, b.timer);
  cmp("state", a.state, b.state);
  const keys = (x: Readonly<Record<string, string>>, y: Readonly<Record<string, string>>) => [
    ...new Set([...Object.keys(x), ...Object.keys(y)]),
  ];
  for (const k of keys(a.orig, b.orig)) cmp(`orig ${k}`, a.orig[k], b.orig[k]);
  for (const k of keys(a.reply, b.reply)) cmp(`reply ${k}`, a.reply[k], b.reply[k]);
  cmp("flags", a.flags.join(","), b.flags.join(","));
  for (const k of keys(a.fields, b.fields)) {
    if (k === "use" && !opts.use) continue;
    cmp(k, a.fields[k], b.fields[k]);
  }
  return out;
}
