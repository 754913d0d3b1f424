/**
 * The "system under test" of `ctsim test` and the scenario `ctsim explain` re-runs: something packets are sent
 * into, one Observation coming back per node that handled each packet. Today the only kind is one emulated
 * Linux host (src/sim/host.ts `HostSim`); a network of hosts (`ctsim run` topologies) plugs in by adding a
 * SubjectKind whose `create` builds a different SystemUnderTest from the check file's keys.
 *
 * An Observation is the part of a PacketReport (src/trace/events.ts) that check files make claims about, in
 * check-file vocabulary: ctstate, the conntrack entry after the packet (`conntrack -L` fields, as
 * src/conntrack/show.ts parses them), the fate (dropped / forwarded / local / rejected ...), the rule that
 * decided, the NAT'd tuple and the packets that left.
 *
 * Kernel functions behind each field: nf_conntrack_in (nf_conntrack_core.c) for ctstate and the entry,
 * nf_nat_inet_fn (nf_nat_core.c) for NAT, ipt_do_table (net/ipv4/netfilter/ip_tables.c) for the deciding rule,
 * ip_forward / ip_local_deliver / ip_output (net/ipv4) for the fate. Linux 6.18 (the emulator's default).
 *
 * Networks of hosts are a second kind, ./topology.ts (`topology:`), which reuses `observeReport` per node.
 * Leaves out on purpose: IPv6.
 */
import type { Packet } from "../wire/packet";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, l4ProtoName } from "../wire/packet";
import { formatIpv4 } from "../wire/addr";
import { formatTcpdump, formatTcpFlags } from "../wire/tcpdump_format";
import type { Host } from "../host/types";
import type { Ruleset } from "../netfilter/ruleset";
import { loadRuleset } from "../netfilter/parse_script";
import type { RulesetFormat } from "../netfilter/parse_script";
import type { RulesetDiagnostic } from "../netfilter/ruleset";
import { parseConntrackLine } from "../conntrack/show";
import { HostSim } from "../sim/host";
import type { Backend } from "../sim/host";
import type { PacketJourney, PacketReport, TraceHit } from "../trace/events";
import { formatSummary, formatFate } from "../trace/summary";

/** One emulated host with its rule set and options: what `trace`, `explain` and single-host checks run. */
export interface HostScenario {
  readonly host: Host;
  /** The rule set text as the user wrote it (kept so fixes can be tried by editing it). */
  readonly rulesText: string;
  readonly rulesFile?: string;
  readonly rulesFormat?: RulesetFormat;
  readonly kernel?: string;
  readonly backend?: Backend;
  /** Sysctl overrides by full name (or bare `nf_conntrack_*`). */
  readonly sysctl?: Readonly<Record<string, string | number>>;
  readonly seed?: number | string;
  readonly allowUnknown?: boolean;
  /** Appended table sections do not flush (iptables-restore --noflush); used to try rule changes. */
  readonly noflush?: boolean;
}

export interface LoadedScenario {
  readonly ruleset: Ruleset;
  readonly errors: readonly RulesetDiagnostic[];
  readonly warnings: readonly RulesetDiagnostic[];
}

/** Parses the scenario's rule set (errors are collected, not thrown). */
export function loadScenarioRules(s: HostScenario): LoadedScenario {
  const r = loadRuleset(s.rulesText, {
    ...(s.rulesFile !== undefined ? { file: s.rulesFile } : {}),
    ...(s.rulesFormat ? { format: s.rulesFormat } : {}),
    allowUnknown: s.allowUnknown === true,
    ...(s.noflush ? { noflush: true } : {}),
  });
  return { ruleset: r.ruleset, errors: r.errors, warnings: r.warnings };
}

/** A HostSim for the scenario; every packet is traced so every matching rule is reported. */
export function hostSimOf(s: HostScenario, ruleset?: Ruleset): HostSim {
  const rs = ruleset ?? loadScenarioRules(s).ruleset;
  return new HostSim({
    host: s.host,
    ruleset: rs,
    traceAll: true,
    ...(s.kernel ? { kernel: s.kernel } : {}),
    ...(s.backend ? { backend: s.backend } : {}),
    ...(s.sysctl ? { sysctl: s.sysctl } : {}),
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Observations

/** `conntrack -L` fields of an entry. */
export interface ConntrackFields {
  readonly proto: string;
  readonly state?: string;
  readonly timeout?: number;
  readonly orig: Readonly<Record<string, string>>;
  readonly reply: Readonly<Record<string, string>>;
  /** UNREPLIED, ASSURED, ... */
  readonly flags: readonly string[];
  readonly mark?: string;
  readonly zone?: string;
  /** The whole line. */
  readonly line: string;
}

/** A packet that left the node. */
export interface LeftPacket {
  readonly iface: string;
  readonly proto: string;
  readonly src: string;
  readonly dst: string;
  readonly sport?: number;
  readonly dport?: number;
  /** TCP flags as tcpdump prints them inside `Flags [...]` (`S`, `F.`, `R.`). */
  readonly flags?: string;
  readonly type?: number;
  readonly code?: number;
  readonly ttl: number;
  readonly length: number;
  /** tcpdump -nn line. */
  readonly line: string;
}

/** The translated tuple (after every NAT step that changed the packet). */
export interface NatTuple {
  readonly kind: "binding" | "rewrite" | "null-binding" | "skipped" | "none" | "drop";
  readonly src: string;
  readonly dst: string;
  readonly sport?: number;
  readonly dport?: number;
  /** Rule that made the binding. */
  readonly by?: string;
}

export type FateWord = "dropped" | "forwarded" | "local" | "rejected" | "sent" | "stolen" | "ignored";

/** What one node did with one input packet, in check-file vocabulary. */
export interface Observation {
  /** Node name (the host's hostname). */
  readonly node: string;
  readonly ctstate?: string;
  readonly ctinfo?: string;
  /** The entry after the packet; null when the packet has no conntrack (INVALID, UNTRACKED). */
  readonly conntrack: ConntrackFields | null;
  readonly fate: FateWord;
  /** The fate in words (`dropped: dropped by filter:FORWARD:rule:1`). */
  readonly fateText: string;
  /** The rule (or policy) that decided, as `table:chain:rule:N` / `table:chain:policy:N`. */
  readonly rule?: string;
  readonly ruleText?: string;
  /** Every rule that matched (policies excluded), in order. */
  readonly matched: readonly { readonly label: string; readonly text: string; readonly verdict: string }[];
  readonly nat: NatTuple;
  readonly leaves: readonly LeftPacket[];
  /** trace summary lines of the report (for messages). */
  readonly summary: readonly string[];
  /** The report itself, for explain and JSON. */
  readonly report?: PacketReport;
}

/** Something packets are sent into. */
export interface SystemUnderTest {
  /** Node names (for `node:` in expectations). */
  readonly nodes: readonly string[];
  /** One input packet; one observation per node that handled it (the first is the entry node). */
  send(pkt: Packet): Observation[];
}

export function hitLabel(h: Pick<TraceHit, "table" | "chain" | "comment" | "num">): string {
  return `${h.table}:${h.chain}:${h.comment}:${h.num}`;
}

/** Verdicts that end a chain traversal (as opposed to JUMP/GOTO/RETURN and non-terminal targets). */
const NON_TERMINAL = new Set([
  "CONTINUE",
  "RETURN",
  "LOG",
  "NFLOG",
  "MARK",
  "CONNMARK",
  "TRACE",
  "TTL",
  "DSCP",
  "TCPMSS",
  "CHECKSUM",
  "CT",
]);

function isTerminal(verdict: string): boolean {
  return !NON_TERMINAL.has(verdict) && !verdict.startsWith("JUMP:") && !verdict.startsWith("GOTO:");
}

/**
 * The rule that decided packet 0's fate: the dropping rule for a drop, otherwise the last terminal entry
 * (rule or policy) of the filter table, otherwise of any table.
 */
export function decidingHit(r: PacketReport): TraceHit | undefined {
  const j = r.packets[0];
  const hits = r.trace.filter((h) => h.packetId === 0);
  const by = j?.fate && (j.fate.kind === "dropped" || j.fate.kind === "stolen") ? j.fate.by : undefined;
  if (by) {
    const h = [...hits].reverse().find((x) => hitLabel(x) === by);
    if (h) return h;
  }
  const terminal = hits.filter((h) => isTerminal(h.verdict));
  return [...terminal].reverse().find((h) => h.table === "filter") ?? terminal[terminal.length - 1];
}

function protoWord(p: Packet): string {
  return l4ProtoName(p.ip.protocol) ?? String(p.ip.protocol);
}

export function leftPacket(iface: string, p: Packet): LeftPacket {
  const l4 = p.l4;
  return {
    iface,
    proto: protoWord(p),
    src: formatIpv4(p.ip.src),
    dst: formatIpv4(p.ip.dst),
    ...(l4.kind === "tcp" || l4.kind === "udp" ? { sport: l4.srcPort, dport: l4.dstPort } : {}),
    ...(l4.kind === "tcp" ? { flags: formatTcpFlags(l4.flags) } : {}),
    ...(l4.kind === "icmp" ? { type: l4.type, code: l4.code } : {}),
    ttl: p.ip.ttl,
    length: p.ip.totalLength,
    line: formatTcpdump(p, { iface: false, time: "none" }),
  };
}

function splitFlow(flow: string): { src: string; dst: string; sport?: number; dport?: number } {
  const [a = "", b = ""] = flow.split(" > ");
  const side = (x: string) => {
    const m = /^([\d.]+)(?::(\d+))?$/.exec(x.trim());
    return m ? { addr: m[1], port: m[2] !== undefined ? Number(m[2]) : undefined } : { addr: x };
  };
  const s = side(a);
  const d = side(b);
  return {
    src: s.addr,
    dst: d.addr,
    ...(s.port !== undefined ? { sport: s.port } : {}),
    ...(d.port !== undefined ? { dport: d.port } : {}),
  };
}

/** The packet's tuple after NAT, and what kind of NAT decided it. */
export function natTupleOf(j: PacketJourney): NatTuple {
  const input = leftPacket("", j.input);
  const base = {
    src: input.src,
    dst: input.dst,
    ...(input.sport !== undefined ? { sport: input.sport, dport: input.dport } : {}),
  };
  const steps = j.nat;
  const drop = steps.find((s) => s.kind === "drop");
  if (drop) return { kind: "drop", ...base, ...(drop.by ? { by: drop.by } : {}) };
  const changed = steps.filter(
    (s) => (s.kind === "binding" || s.kind === "rewrite") && s.from !== s.to && s.to,
  );
  if (changed.length > 0) {
    const last = changed[changed.length - 1];
    const byStep = changed.find((s) => s.by);
    return {
      kind: changed.some((s) => s.kind === "binding") ? "binding" : "rewrite",
      ...splitFlow(last.to!),
      ...(byStep?.by ? { by: byStep.by } : {}),
    };
  }
  if (steps.some((s) => s.kind === "skipped")) return { kind: "skipped", ...base };
  if (steps.some((s) => s.kind === "null-binding")) return { kind: "null-binding", ...base };
  return { kind: "none", ...base };
}

function fateOf(r: PacketReport, j: PacketJourney, decided: TraceHit | undefined): FateWord {
  const f = j.fate;
  if (!f) return "ignored";
  switch (f.kind) {
    case "left":
      return j.local ? "sent" : "forwarded";
    case "delivered":
      return "local";
    case "dropped":
      if (decided?.rule?.target?.kind === "extension" && decided.rule.target.name === "REJECT")
        return "rejected";
      return r.packets.some((p) => p.parent === 0 && /reject|reset/i.test(p.cause ?? "")) &&
        decided?.verdict === "REJECT"
        ? "rejected"
        : "dropped";
    case "stolen":
      return "stolen";
    case "ignored":
      return "ignored";
  }
}

function fateText(j: PacketJourney): string {
  return j.fate ? formatFate(j.fate) : "unknown";
}

export function conntrackFieldsOf(line: string): ConntrackFields {
  const p = parseConntrackLine(line);
  return {
    proto: p.proto,
    ...(p.state !== undefined ? { state: p.state } : {}),
    ...(p.timer !== undefined ? { timeout: p.timer } : {}),
    orig: p.orig,
    reply: p.reply,
    flags: p.flags,
    ...(p.fields.mark !== undefined ? { mark: p.fields.mark } : {}),
    ...(p.fields.zone !== undefined ? { zone: p.fields.zone } : {}),
    line: line.trim(),
  };
}

/** An Observation of one host's report. */
export function observeReport(node: string, r: PacketReport): Observation {
  const j = r.packets[0];
  const decided = decidingHit(r);
  const entry = j?.ct?.entry;
  return {
    node,
    ...(j?.ct ? { ctstate: j.ct.state } : {}),
    ...(j?.ct?.ctinfo ? { ctinfo: j.ct.ctinfo } : {}),
    conntrack: entry ? conntrackFieldsOf(entry) : null,
    fate: j ? fateOf(r, j, decided) : "ignored",
    fateText: j ? fateText(j) : "no packet",
    ...(decided ? { rule: hitLabel(decided) } : {}),
    ...(decided?.rule ? { ruleText: decided.rule.source.text } : {}),
    matched: r.trace
      .filter((h) => h.packetId === 0 && h.rule !== undefined)
      .map((h) => ({ label: hitLabel(h), text: h.rule?.source.text ?? "", verdict: h.verdict })),
    nat: j ? natTupleOf(j) : { kind: "none", src: "", dst: "" },
    leaves: r.egress.map((e) => leftPacket(e.iface, e.packet)),
    summary: r.packets.map((p) => formatSummary(p)),
    report: r,
  };
}

/** The single-host system under test. */
export class HostSubject implements SystemUnderTest {
  readonly sim: HostSim;
  readonly ruleset: Ruleset;
  readonly nodes: readonly string[];
  constructor(
    readonly scenario: HostScenario,
    ruleset?: Ruleset,
  ) {
    this.ruleset = ruleset ?? loadScenarioRules(scenario).ruleset;
    this.sim = hostSimOf(scenario, this.ruleset);
    this.nodes = [scenario.host.hostname];
  }
  send(pkt: Packet): Observation[] {
    return [observeReport(this.scenario.host.hostname, this.sim.receive(pkt))];
  }
}
