/**
 * TRACE output as the nftables-based tools print it, for `ctsim trace --format xtables-monitor|nft` (rules
 * loaded with iptables-nft: `-j TRACE` sets nftrace). Checked against the real tools on Linux 6.18.44 with
 * iptables v1.8.9 (nf_tables) and nftables v1.0.6 (test/oracle/monitor/, recordings and test).
 *
 * Kernel side (net/netfilter/nf_tables_core.c `nft_do_chain`, nf_tables_trace.c `nft_trace_notify`): one event
 * per rule that matched (type RULE, with the rule handle and its verdict, also for `return`), one POLICY event
 * at the end of a base chain; falling off the end of a user chain emits nothing. The packet headers (iif, oif,
 * link, network and the first 20 bytes of the transport header, mark) go with the first event of each base-chain
 * traversal (`packet_dumped`), and are read after the rule's expressions ran (a MARK rule's own event already
 * carries the new mark). The trace id is a siphash of the skb address with a boot-random key: random per run
 * (here a stable per-packet hash; compare with it masked).
 *
 * - `xtables-monitor --trace` (iptables 1.8.9 iptables/xtables-monitor.c `trace_cb`, `trace_print_packet`,
 *   `print_verdict`, `trace_print_rule`): `PACKET: 2 <id> IN= OUT= MACSRC= MACDST= MACPROTO= SRC= DST= LEN= TOS=
 *   TTL= ID= DF SPORT= DPORT= SYN ACK FIN RST PSH URG MARK=` (each field followed by a blank) before the event
 *   carrying it; ` TRACE: 2 <id> table:chain:rule:0x<handle>:<VERDICT>  -4 -t table -A chain <spec>`,
 *   ` TRACE: 2 <id> table:chain:policy:ACCEPT `. A `-j RETURN` rule prints nft's raw verdict 0xfffffffb.
 * - `nft monitor trace` (nftables 1.0.6 src/trace.c): `trace id <id> ip <table> <chain> packet: iif "eth0" ...`
 *   (payload of the dumped headers), `... rule <rule as nft lists it> (verdict <v>)`, `... policy accept ` with
 *   ` meta mark 0x%08x` when the mark is set.
 *
 * Rule handles: nf_tables numbers chains and rules of a table from one counter (nf_tables_alloc_handle) in the
 * order of the batch, which iptables-nft builds in command order (iptables/nft.c): a `:CHAIN` line creates its
 * chain, a rule its built-in chain if the input had not created it yet (nft_xt_builtin_init, just before the
 * rule), then the rule. Only chains that exist for iptables-nft count (`nftChainExists`: the built-in chains the
 * input never named are not created). So the handle is the rank of the rule among the table's existing chains
 * (at their creation line, `Chain.created`) and rules (at their source line); a restore file declares its
 * chains first, so there it is (number of declared chains) + (position of the rule in the table). Pass the rule
 * set in `MonitorOptions.ruleset` (without it the handle is the position in the chain). Not followed: handles
 * taken by rules deleted later (`-D`) or by anonymous sets, and `-R` keeping the old rule's handle.
 *
 * Approximations, on purpose: nft rule text is a translation of the iptables rule into what nft lists for the
 * expressions iptables-nft 1.8.9 generates, for the common matches and targets (addresses, interfaces, -p, tcp,
 * udp, icmp types, conntrack/state ctstate and ctdir, mark, MARK, verdicts, jumps, TRACE, NOTRACK, CT --notrack,
 * DNAT, SNAT, MASQUERADE, REDIRECT, REJECT); everything else prints as nft prints an xt expression
 * (`xt match NAME`, `xt target NAME`). Counters always print `packets 0 bytes 0` (nft lists the rule from its
 * cache filled at start). IPv6 and the NFPROTO= field (bridge/inet families) are left out.
 */
import { formatIpv4 } from "../wire/addr";
import { encodeIpv4 } from "../wire/ipv4";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from "../wire/packet";
import type { Packet } from "../wire/packet";
import { formatRuleSpec } from "../netfilter/save";
import type { Rule, Ruleset } from "../netfilter/ruleset";
import { nftChainExists } from "../netfilter/ruleset";
import type { PacketReport, TraceHit } from "./events";

export interface MonitorOptions {
  /** The rule set the report was made with: gives nf_tables rule handles (see the header). */
  readonly ruleset?: Ruleset;
}

function traceId(r: PacketReport, h: TraceHit): string {
  return ((((r.index + 1) * 0x100 + h.packetId) * 0x9e3779b1) >>> 0).toString(16).padStart(8, "0");
}

const handleCache = new WeakMap<Ruleset, Map<Rule, number>>();

/** nf_tables handles of every rule of a rule set loaded by one iptables-nft-restore. */
export function nftRuleHandles(rs: Ruleset): Map<Rule, number> {
  let m = handleCache.get(rs);
  if (m) return m;
  m = new Map();
  for (const t of rs.tables.values()) {
    // Creation order: by line; at one line the chain a rule created comes before the rule; otherwise stable
    // (chains in table order, rules chain by chain). A chain built without a parser has no line: first.
    const objs: { line: number; kind: 0 | 1; rule?: Rule }[] = [];
    for (const c of t.chains.values())
      if (nftChainExists(c)) objs.push({ line: c.created?.line ?? -Infinity, kind: 0 });
    for (const c of t.chains.values())
      for (const r of c.rules) objs.push({ line: r.source.line, kind: 1, rule: r });
    objs.sort((a, b) => a.line - b.line || a.kind - b.kind);
    objs.forEach((o, i) => {
      if (o.rule) m!.set(o.rule, i + 1);
    });
  }
  handleCache.set(rs, m);
  return m;
}

/** print_verdict of xtables-monitor for what the rule does. */
function nftVerdict(v: string): string {
  if (v === "ACCEPT" || v === "DROP" || v === "QUEUE" || v.startsWith("JUMP:") || v.startsWith("GOTO:"))
    return v;
  if (v === "RETURN") return "0xfffffffb";
  if (v === "REJECT") return "DROP";
  if (v === "SNAT" || v === "DNAT" || v === "MASQUERADE" || v === "REDIRECT" || v === "NETMAP")
    return "ACCEPT";
  return "CONTINUE";
}

/** nft's word for the same verdict. */
function nftVerdictWord(v: string): string {
  const x = nftVerdict(v);
  if (x === "0xfffffffb") return "return";
  if (x.startsWith("JUMP:")) return `jump ${x.slice(5)}`;
  if (x.startsWith("GOTO:")) return `goto ${x.slice(5)}`;
  return x.toLowerCase();
}

/** One kernel trace event, derived from the TRACE hits. */
interface Event {
  readonly hit: TraceHit;
  readonly kind: "rule" | "policy";
  /** The headers dumped with this event (first event of a base-chain traversal). */
  readonly dump?: { readonly pkt: Packet; readonly mark: number };
  /** The mark when the event was sent. */
  readonly mark: number;
}

/**
 * The nftrace events of a report. A TRACE hit with a rule is a rule event (whatever the legacy label), one
 * without a rule in a built-in chain a policy event; an implicit return from a user chain sends nothing.
 */
function events(r: PacketReport, opts: MonitorOptions): Event[] {
  const out: Event[] = [];
  const dumped = new Set<string>();
  const started = new Set<number>();
  const traversal = (h: TraceHit) => `${h.packetId}/${h.table}/${h.hook}`;
  r.trace.forEach((h, i) => {
    if (!started.has(h.packetId)) {
      started.add(h.packetId);
      const set = traceRuleBefore(h, opts);
      if (set) {
        dumped.add(traversal(h));
        out.push({
          hit: { ...h, rule: set, num: set.num, comment: "rule", verdict: "TRACE" },
          kind: "rule",
          dump: { pkt: h.pkt, mark: h.mark },
          mark: h.mark,
        });
      }
    }
    const kind = h.rule ? "rule" : h.comment === "policy" ? "policy" : undefined;
    if (!kind) return;
    // The event is sent after the rule ran: the next hit of the same traversal saw what it changed.
    const next = r.trace[i + 1];
    const after = next && traversal(next) === traversal(h) ? next : h;
    const key = traversal(h);
    let dump: Event["dump"];
    if (!dumped.has(key)) {
      dumped.add(key);
      dump = { pkt: after.pkt, mark: after.mark };
    }
    out.push({ hit: h, kind, dump, mark: kind === "policy" ? h.mark : after.mark });
  });
  return sendAfterGenerated(out);
}

/**
 * A rule whose target sends a packet (REJECT's RST or ICMP error) has its event sent after the rule ran, so after
 * the whole traversal of the packet it sent; legacy TRACE logs the rule before its target runs. Moves such a rule
 * event behind the events of packets that first appear right after it.
 */
function sendAfterGenerated(evs: Event[]): Event[] {
  const out = [...evs];
  const seen = new Set<number>();
  for (let i = 0; i < out.length; i++) {
    const e = out[i];
    seen.add(e.hit.packetId);
    if (e.kind !== "rule") continue;
    let j = i + 1;
    const born = new Set<number>();
    while (j < out.length && out[j].hit.packetId !== e.hit.packetId) {
      const id = out[j].hit.packetId;
      if (seen.has(id) && !born.has(id)) break;
      born.add(id);
      j++;
    }
    if (j === i + 1) continue;
    out.splice(i, 1);
    out.splice(j - 1, 0, e);
    for (const id of born) seen.add(id);
    i = j - 1;
  }
  return out;
}

/**
 * The `-j TRACE` rule that set nftrace before a packet's first hit: legacy TRACE logs from the next entry on, but
 * nf_tables sends the event of the rule that set it. Taken as the last TRACE rule of the chain before the first
 * hit (an earlier TRACE rule that matched would have made a later matching one a hit of its own).
 */
function traceRuleBefore(h: TraceHit, opts: MonitorOptions): Rule | undefined {
  const chain = opts.ruleset?.tables.get(h.table)?.chains.get(h.chain);
  if (!chain) return undefined;
  const before = chain.rules.slice(0, h.num - 1);
  for (let k = before.length - 1; k >= 0; k--) {
    const t = before[k].target;
    if (t?.kind === "extension" && t.name === "TRACE") return before[k];
  }
  return undefined;
}

function handle(h: TraceHit, opts: MonitorOptions): number {
  return (opts.ruleset && h.rule ? nftRuleHandles(opts.ruleset).get(h.rule) : undefined) ?? h.num;
}

// ---- xtables-monitor ----

/** ether_ntoa's text of MAC addresses seen so far (a capture has few): no leading zeros. */
const etherTexts = new Map<string, string>();

function etherNtoa(mac: string): string {
  let t = etherTexts.get(mac);
  if (t === undefined) {
    t = mac
      .split(":")
      .map((x) => parseInt(x, 16).toString(16))
      .join(":");
    if (etherTexts.size < 4096) etherTexts.set(mac, t);
  }
  return t;
}

function xtPacket(id: string, h: TraceHit, d: NonNullable<Event["dump"]>): string {
  const p = d.pkt;
  let s = `PACKET: 2 ${id} `;
  if (h.inIface !== undefined) s += `IN=${h.inIface} `;
  if (h.outIface !== undefined) s += `OUT=${h.outIface} `;
  if (h.inIface !== undefined && h.link) {
    s += `MACSRC=${etherNtoa(h.link.src)} MACDST=${etherNtoa(h.link.dst)} MACPROTO=${h.link.ethertype.toString(16).padStart(4, "0")} `;
  }
  const ip = p.ip;
  s += `SRC=${formatIpv4(ip.src)} DST=${formatIpv4(ip.dst)} LEN=${ip.totalLength} TOS=0x${ip.tos.toString(16)} TTL=${ip.ttl} ID=${ip.id} `;
  if (ip.rf) s += "CE ";
  if (ip.df) s += "DF ";
  if (ip.mf) s += "MF ";
  if (ip.fragOffset) s += `FRAG:${ip.fragOffset} `;
  const l4 = p.l4;
  if (l4.kind === "udp") s += `SPORT=${l4.srcPort} DPORT=${l4.dstPort} `;
  if (l4.kind === "tcp") {
    s += `SPORT=${l4.srcPort} DPORT=${l4.dstPort} `;
    for (const [bit, name] of [
      [TCP_SYN, "SYN"],
      [TCP_ACK, "ACK"],
      [TCP_FIN, "FIN"],
      [TCP_RST, "RST"],
      [TCP_PSH, "PSH"],
      [TCP_URG, "URG"],
    ] as const)
      if (l4.flags & bit) s += `${name} `;
  }
  if (d.mark) s += `MARK=0x${d.mark.toString(16)} `;
  return s;
}

/** The lines `xtables-monitor --trace` prints for one report. */
export function formatXtablesMonitor(r: PacketReport, opts: MonitorOptions = {}): string[] {
  const out: string[] = [];
  for (const e of events(r, opts)) {
    const h = e.hit;
    const id = traceId(r, h);
    if (e.dump) out.push(xtPacket(id, h, e.dump));
    const head = ` TRACE: 2 ${id} ${h.table}:${h.chain}`;
    if (e.kind === "rule")
      out.push(
        `${head}:rule:0x${handle(h, opts).toString(16)}:${nftVerdict(h.verdict)}  -4 -t ${h.table} -A ${h.chain} ${ruleSpecText(h.rule!)}`.trimEnd(),
      );
    else out.push(`${head}:policy:${h.verdict} `);
  }
  return out;
}

// ---- nft monitor trace ----

const DSCP: Record<number, string> = {
  0: "cs0",
  8: "cs1",
  10: "af11",
  12: "af12",
  14: "af13",
  16: "cs2",
  18: "af21",
  20: "af22",
  22: "af23",
  24: "cs3",
  26: "af31",
  28: "af32",
  30: "af33",
  32: "cs4",
  34: "af41",
  36: "af42",
  38: "af43",
  40: "cs5",
  46: "ef",
  48: "cs6",
  56: "cs7",
};
const ECN = ["not-ect", "ect1", "ect0", "ce"];
const ICMP_TYPE: Record<number, string> = {
  0: "echo-reply",
  3: "destination-unreachable",
  4: "source-quench",
  5: "redirect",
  8: "echo-request",
  9: "router-advertisement",
  10: "router-solicitation",
  11: "time-exceeded",
  12: "parameter-problem",
  13: "timestamp-request",
  14: "timestamp-reply",
  15: "info-request",
  16: "info-reply",
  17: "address-mask-request",
  18: "address-mask-reply",
};
const ICMP_CODE: Record<number, string> = {
  0: "net-unreachable",
  1: "host-unreachable",
  2: "prot-unreachable",
  3: "port-unreachable",
  4: "frag-needed",
  9: "net-prohibited",
  10: "host-prohibited",
  13: "admin-prohibited",
};
const TCP_FLAG_NAMES: readonly [number, string][] = [
  [TCP_FIN, "fin"],
  [TCP_SYN, "syn"],
  [TCP_RST, "rst"],
  [TCP_PSH, "psh"],
  [TCP_ACK, "ack"],
  [TCP_URG, "urg"],
];

/** `@th,64,N 0x...`: the dumped transport bytes after the first 8 that nft has no field for. */
function rawTail(p: Packet): string {
  const b = encodeIpv4(p);
  const thoff = (b[0] & 0x0f) * 4;
  const end = Math.min(b.length, thoff + 20);
  if (end <= thoff + 8) return "";
  let hex = "";
  for (let i = thoff + 8; i < end; i++) hex += b[i].toString(16).padStart(2, "0");
  hex = hex.replace(/^0+/, "") || "0";
  return ` @th,64,${(end - thoff - 8) * 8} 0x${hex}`;
}

function nftPacket(h: TraceHit, p: Packet): string {
  const parts: string[] = [];
  if (h.inIface !== undefined) parts.push(`iif "${h.inIface}"`);
  if (h.outIface !== undefined) parts.push(`oif "${h.outIface}"`);
  if (h.inIface !== undefined && h.link) parts.push(`ether saddr ${h.link.src} ether daddr ${h.link.dst}`);
  const ip = p.ip;
  const dscp = ip.tos >> 2;
  parts.push(
    `ip saddr ${formatIpv4(ip.src)} ip daddr ${formatIpv4(ip.dst)} ip dscp ${DSCP[dscp] ?? `0x${dscp.toString(16).padStart(2, "0")}`} ip ecn ${ECN[ip.tos & 3]} ip ttl ${ip.ttl} ip id ${ip.id} ip length ${ip.totalLength}`,
  );
  const l4 = p.l4;
  if (l4.kind === "tcp") {
    const names = TCP_FLAG_NAMES.filter(([b]) => l4.flags & b).map(([, n]) => n);
    const flags = names.length === 1 ? names[0] : `0x${l4.flags.toString(16)}`;
    parts.push(
      `tcp sport ${l4.srcPort} tcp dport ${l4.dstPort} tcp flags == ${flags} tcp window ${l4.window}`,
    );
  } else if (l4.kind === "udp")
    parts.push(`udp sport ${l4.srcPort} udp dport ${l4.dstPort} udp length ${l4.length}${rawTail(p)}`);
  else if (l4.kind === "icmp") {
    const rest = l4.restOfHeader >>> 0;
    parts.push(
      `icmp type ${ICMP_TYPE[l4.type] ?? l4.type} icmp code ${ICMP_CODE[l4.code] ?? l4.code} icmp id ${rest >>> 16} icmp sequence ${rest & 0xffff}${rawTail(p)}`,
    );
  }
  return `${parts.join(" ")} `;
}

// iptables rule (save words) -> what nft lists for the expressions iptables-nft 1.8.9 generates.

const REJECT_WITH: Record<string, string> = {
  "icmp-port-unreachable": "",
  "tcp-reset": " with tcp reset",
  "icmp-net-unreachable": " with icmp type net-unreachable",
  "icmp-host-unreachable": " with icmp type host-unreachable",
  "icmp-proto-unreachable": " with icmp type prot-unreachable",
  "icmp-net-prohibited": " with icmp type net-prohibited",
  "icmp-host-prohibited": " with icmp type host-prohibited",
  "icmp-admin-prohibited": " with icmp type admin-prohibited",
};

function hex8(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, "0")}`;
}

function nftMatch(name: string, words: string[], proto: string | undefined): string | undefined {
  const opts = new Map<string, { v: string[]; neg: boolean }>();
  for (let i = 0; i < words.length; i++) {
    let neg = false;
    if (words[i] === "!") {
      neg = true;
      i++;
    }
    const k = words[i];
    const v: string[] = [];
    while (i + 1 < words.length && !words[i + 1].startsWith("--") && words[i + 1] !== "!") v.push(words[++i]);
    opts.set(k, { v, neg });
  }
  const ne = (o: { neg: boolean }) => (o.neg ? "!= " : "");
  const out: string[] = [];
  const take = (...keys: string[]) => [...opts.keys()].every((k) => keys.includes(k));
  if ((name === "tcp" || name === "udp") && take("--sport", "--dport", "--tcp-flags")) {
    const f = opts.get("--tcp-flags");
    if (f) {
      if (f.neg) return undefined;
      const bits = (s: string) =>
        TCP_FLAG_NAMES.filter(([, n]) => s.toLowerCase().split(",").includes(n)).map(([, n]) => n);
      const [mask, cmp] = [bits(f.v[0]), bits(f.v[1])];
      out.push(
        mask.join() === cmp.join()
          ? `tcp flags & ${mask.join("|")} == ${cmp.join("|")}`
          : `tcp flags ${cmp.join(",")} / ${mask.join(",")}`,
      );
    }
    for (const [k, f2] of [
      ["--sport", "sport"],
      ["--dport", "dport"],
    ] as const) {
      const o = opts.get(k);
      if (o) out.push(`${name} ${f2} ${ne(o)}${o.v[0].replace(":", "-")}`);
    }
    return out.join(" ");
  }
  if (name === "icmp" && take("--icmp-type")) {
    const o = opts.get("--icmp-type")!;
    if (o.v[0] === "any") return "ip protocol icmp";
    const t = ICMP_TYPE[Number(o.v[0])];
    return /^\d+$/.test(o.v[0]) && t ? `icmp type ${ne(o)}${t}` : undefined;
  }
  const states = (o: { v: string[]; neg: boolean }) => `ct state ${ne(o)}${o.v[0].toLowerCase()}`;
  if (name === "conntrack" && take("--ctstate", "--ctdir")) {
    const d = opts.get("--ctdir");
    if (d) out.push(`ct direction ${d.v[0].toLowerCase()}`);
    const s = opts.get("--ctstate");
    if (s) out.push(states(s));
    return out.join(" ");
  }
  if (name === "state" && take("--state")) return states(opts.get("--state")!);
  if (name === "mark" && take("--mark")) {
    const o = opts.get("--mark")!;
    const [v, m] = o.v[0].split("/").map(Number);
    if (m === undefined || m >>> 0 === 0xffffffff) return `meta mark ${ne(o)}${hex8(v)}`;
    return `meta mark & ${hex8(m)} ${o.neg ? "!=" : "=="} ${hex8(v)}`;
  }
  void proto;
  return undefined;
}

function nftTarget(name: string, words: string[]): string {
  const arg = (k: string) => {
    const i = words.indexOf(k);
    return i >= 0 ? words[i + 1] : undefined;
  };
  switch (name) {
    case "TRACE":
      return "meta nftrace set 1";
    case "NOTRACK":
      return "notrack";
    case "CT":
      return words.length === 1 && words[0] === "--notrack" ? "notrack" : "xt target CT";
    case "MASQUERADE": {
      const p = arg("--to-ports");
      return words.every((w) => w === "--to-ports" || w === p)
        ? `masquerade${p ? ` to :${p}` : ""}`
        : "xt target MASQUERADE";
    }
    case "REDIRECT": {
      const p = arg("--to-ports");
      return words.every((w) => w === "--to-ports" || w === p)
        ? `redirect${p ? ` to :${p}` : ""}`
        : "xt target REDIRECT";
    }
    case "DNAT":
    case "SNAT": {
      const k = name === "DNAT" ? "--to-destination" : "--to-source";
      const to = arg(k);
      return to && words.length === 2 ? `${name.toLowerCase()} to ${to}` : `xt target ${name}`;
    }
    case "REJECT": {
      const w = REJECT_WITH[arg("--reject-with") ?? "icmp-port-unreachable"];
      return w === undefined ? "xt target REJECT" : `reject${w}`;
    }
    case "MARK": {
      const x = arg("--set-xmark");
      if (!x || words.length !== 2) return "xt target MARK";
      const [v, m] = x.split("/").map((s) => Number(s) >>> 0);
      const h = (n: number) => `0x${(n >>> 0).toString(16)}`;
      if (m === 0xffffffff) return `meta mark set ${h(v)}`;
      if (v === 0) return `meta mark set mark and ${h(~m)}`;
      if (m === 0) return `meta mark set mark xor ${h(v)}`;
      if (v === m) return `meta mark set mark or ${h(v)}`;
      return `meta mark set mark and ${h(~m)} xor ${h(v)}`;
    }
    default:
      return `xt target ${name}`;
  }
}

/**
 * Rule texts by rule: a trace prints the same rule for many packets, and a loaded rule never changes (rules are
 * only built while parsing).
 */
const specTexts = new WeakMap<Rule, string>();
const nftTexts = new WeakMap<Rule, string>();

/** formatRuleSpec(rule), made once per rule. */
function ruleSpecText(rule: Rule): string {
  let t = specTexts.get(rule);
  if (t === undefined) specTexts.set(rule, (t = formatRuleSpec(rule)));
  return t;
}

/** The rule as `nft list ruleset` shows an iptables-nft rule (see the header for what is covered). */
export function nftRuleText(rule: Rule): string {
  let t = nftTexts.get(rule);
  if (t === undefined) nftTexts.set(rule, (t = nftRuleTextOf(rule)));
  return t;
}

function nftRuleTextOf(rule: Rule): string {
  const w = ruleSpecText(rule)
    .split(" ")
    .filter((x) => x !== "");
  const head: string[] = [];
  let l4: string | undefined;
  let l4neg = false;
  const addrs: string[] = [];
  const matches: string[] = [];
  let target = "";
  let payloadDep = false;
  let i = 0;
  while (i < w.length) {
    let neg = false;
    if (w[i] === "!") {
      neg = true;
      i++;
    }
    const k = w[i++];
    if (k === "-i" || k === "-o") {
      const v = w[i++].replace(/\+$/, "*");
      head.push(`${k === "-i" ? "iifname" : "oifname"} ${neg ? "!= " : ""}"${v}"`);
    } else if (k === "-s" || k === "-d") {
      const v = w[i++].replace(/\/32$/, "");
      addrs.push(`ip ${k === "-s" ? "saddr" : "daddr"} ${neg ? "!= " : ""}${v}`);
    } else if (k === "-p") {
      l4 = w[i++];
      l4neg = neg;
    } else if (k === "-m") {
      const name = w[i++];
      const words: string[] = [];
      while (i < w.length && w[i] !== "-m" && w[i] !== "-j" && w[i] !== "-g") words.push(w[i++]);
      // A trailing `!` belongs to the next option (`! -m` does not exist in save output).
      const m = nftMatch(name, words, l4);
      if ((name === "tcp" || name === "udp") && m !== undefined) payloadDep = true;
      matches.push(m ?? `xt match ${name}`);
    } else if (k === "-j" || k === "-g") {
      const name = w[i++];
      const words = w.slice(i);
      i = w.length;
      if (k === "-g") target = `goto ${name}`;
      else if (name === "ACCEPT" || name === "DROP" || name === "RETURN" || name === "QUEUE")
        target = name.toLowerCase();
      else if (/^[A-Z0-9_]+$/.test(name) && name !== name.toLowerCase() && !isUserChain(rule, name))
        target = nftTarget(name, words);
      else target = `jump ${name}`;
    } else {
      // Something the translation does not know: print the rest as nft prints xt expressions.
      matches.push(`xt match ${k}`);
    }
  }
  const out = [...head];
  if (l4 && !(payloadDep && !l4neg)) out.push(`meta l4proto ${l4neg ? "!= " : ""}${l4}`);
  out.push(...addrs, ...matches, "counter packets 0 bytes 0");
  if (target) out.push(target);
  return out.join(" ");
}

function isUserChain(rule: Rule, name: string): boolean {
  return rule.target?.kind === "jump" && rule.target.chain === name;
}

/** The lines `nft monitor trace` prints for one report. */
export function formatNftMonitor(r: PacketReport, opts: MonitorOptions = {}): string[] {
  const out: string[] = [];
  for (const e of events(r, opts)) {
    const h = e.hit;
    const head = `trace id ${traceId(r, h)} ip ${h.table} ${h.chain}`;
    if (e.dump) out.push(`${head} packet: ${nftPacket(h, e.dump.pkt)}`);
    if (e.kind === "rule")
      out.push(`${head} rule ${nftRuleText(h.rule!)} (verdict ${nftVerdictWord(h.verdict)})`);
    else out.push(`${head} policy ${h.verdict.toLowerCase()} ${e.mark ? `meta mark ${hex8(e.mark)} ` : ""}`);
  }
  return out;
}
