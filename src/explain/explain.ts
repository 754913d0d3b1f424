/**
 * `ctsim explain`: a plain-language account of what one emulated host did with a packet, with the evidence and
 * the kernel function behind each step, and "what would change the outcome": candidate fixes, each one tried by
 * re-running the same packets in the emulator with the change, never suggested untested.
 *
 * Built from HostSim's PacketReport (src/trace/events.ts). The kernel functions named (Linux 6.18):
 *   - conntrack: net/netfilter/nf_conntrack_core.c nf_conntrack_in (resolve_normal_ct, init_conntrack);
 *     net/netfilter/nf_conntrack_proto_tcp.c tcp_error (tcp_valid_flags), tcp_new, nf_conntrack_tcp_packet
 *     (tcp_conntracks[dir][index][old state]), tcp_in_window; nf_conntrack_proto_udp.c / _icmp.c;
 *   - NAT: net/netfilter/nf_nat_core.c nf_nat_inet_fn (no conntrack -> NF_ACCEPT without the nat table;
 *     a NEW/RELATED connection runs the nat chain; nf_nat_alloc_null_binding when no rule bound it),
 *     nf_nat_setup_info / get_unique_tuple (bindings), nf_nat_packet (rewrites by an existing binding),
 *     nf_nat_masquerade.c nf_nat_masquerade_ipv4;
 *   - rules: net/ipv4/netfilter/ip_tables.c ipt_do_table; routing and forwarding: net/ipv4/route.c
 *     ip_route_input_slow, net/ipv4/ip_forward.c ip_forward, ip_input.c ip_local_deliver.
 * Seed 001's bare FIN: tcp_error refuses FIN without ACK (not in tcp_valid_flags) before tcp_new looks at the
 * table; the `tcp_conntracks[ORIGINAL][fin][NONE] = sIV` cell that write-ups cite is what a FIN|ACK with no
 * entry hits. explain says which one decided and runs the FIN|ACK counterpart to show the other.
 *
 * Leaves out on purpose: fixes that need new topology (routes, interfaces), and multi-host networks.
 */
import type { Packet } from "../wire/packet";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../wire/packet";
import { formatTcpdump } from "../wire/tcpdump_format";
import { tcpConntracksFor } from "../../tables/tcp_conntracks";
import { tcpFlagsValid } from "../../tables/tcp_valid_flags";
import type { NfConntrackSysctls } from "../conntrack/sysctl";
import type { CtReason } from "../conntrack/types";
import type { HostSim } from "../sim/host";
import type { Ruleset } from "../netfilter/ruleset";
import type { CtSummary, NatStep, PacketJourney, PacketReport, TraceHit } from "../trace/events";
import { packetBrief } from "../trace/summary";
import { formatSummary } from "../trace/summary";
import type { HostScenario, Observation } from "../check/subject";
import { HostSubject, hitLabel, observeReport } from "../check/subject";

export interface KernelRef {
  readonly file: string;
  readonly fn: string;
}

export interface ExplainSection {
  readonly title: string;
  readonly kernel: readonly KernelRef[];
  readonly lines: readonly string[];
}

export interface SysctlEvidence {
  readonly name: string;
  readonly value: number;
  /** Why it mattered, or why it did not. */
  readonly note: string;
}

export interface FixTrial {
  readonly kind: "rule" | "sysctl";
  /** What a user would run: `iptables -I FORWARD 1 -m conntrack --ctstate INVALID -j DROP`, `sysctl -w ...`. */
  readonly change: string;
  readonly why: string;
  /** Outcome of this packet with the change, in words. */
  readonly after: string;
  /** What changed (empty: nothing did). */
  readonly effects: readonly string[];
  readonly changesOutcome: boolean;
}

export interface Explanation {
  /** 1-based position in the input. */
  readonly packet: number;
  readonly origin?: string;
  readonly brief: string;
  readonly line: string;
  /** One-sentence outcome. */
  readonly outcome: string;
  readonly conntrack: ExplainSection & {
    readonly sysctls: readonly SysctlEvidence[];
    readonly cell?: string;
  };
  readonly nat: ExplainSection;
  readonly rules: ExplainSection & {
    readonly matched: readonly { readonly label: string; readonly text: string; readonly verdict: string }[];
  };
  readonly route: ExplainSection;
  readonly fate: ExplainSection;
  readonly fixes: readonly FixTrial[];
  /** Counterfactual runs of a variant packet (the FIN|ACK of a bare FIN). */
  readonly notes: readonly string[];
  readonly summary: readonly string[];
}

const TCP_FILE = "net/netfilter/nf_conntrack_proto_tcp.c";
const CORE_FILE = "net/netfilter/nf_conntrack_core.c";
const NAT_FILE = "net/netfilter/nf_nat_core.c";

const SHORT: Record<string, string> = {
  NONE: "sNO",
  SYN_SENT: "sSS",
  SYN_RECV: "sSR",
  ESTABLISHED: "sES",
  FIN_WAIT: "sFW",
  CLOSE_WAIT: "sCW",
  LAST_ACK: "sLA",
  TIME_WAIT: "sTW",
  CLOSE: "sCL",
  SYN_SENT2: "sS2",
};
const INDEX: Record<string, number> = { syn: 0, synack: 1, fin: 2, ack: 3, rst: 4, none: 5 };
const STATE_NUM: Record<string, number> = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
  SYN_SENT2: 9,
};

/**
 * The TCP state-table cell an INVALID verdict names (CtReason.cell): a line saying which cell decided, and its
 * expression; undefined when the reason names no cell the table has.
 */
function decidingCell(kernel: string, reason: CtReason | undefined, lines: string[]): string | undefined {
  const cell = reason?.cell;
  if (!cell) return undefined;
  const c = tcpCell(kernel, cell.dir === 0 ? "ORIGINAL" : "REPLY", cell.index, cell.oldState);
  if (!c) return undefined;
  lines.push(
    `The state table cell that decided: ${c.expr}${c.comment ? ` (kernel comment: "${c.comment}")` : ""}.`,
  );
  return c.expr;
}

/** `tcp_conntracks[ORIGINAL][fin][NONE] = sIV` and the kernel's comment on that cell. */
export function tcpCell(
  kernel: string,
  dir: "ORIGINAL" | "REPLY",
  index: string,
  oldState: string,
): { expr: string; to: string; comment?: string } | undefined {
  const d = dir === "ORIGINAL" ? 0 : 1;
  const i = INDEX[index];
  const o = STATE_NUM[oldState];
  if (i === undefined || o === undefined) return undefined;
  const cell = tcpConntracksFor(kernel)[d][i][o];
  return {
    expr: `tcp_conntracks[${dir}][${index}][${oldState}] = ${cell.to}`,
    to: cell.to,
    ...(cell.comment ? { comment: cell.comment } : {}),
  };
}

function kernelFileOf(fn: string): string {
  if (fn.startsWith("tcp") || fn.includes("tcp_")) return TCP_FILE;
  if (fn.includes("udp")) return "net/netfilter/nf_conntrack_proto_udp.c";
  if (fn.includes("icmp")) return "net/netfilter/nf_conntrack_proto_icmp.c";
  return CORE_FILE;
}

function flagWords(flags: number): string {
  const w: string[] = [];
  if (flags & TCP_SYN) w.push("SYN");
  if (flags & TCP_FIN) w.push("FIN");
  if (flags & TCP_RST) w.push("RST");
  if (flags & TCP_ACK) w.push("ACK");
  if (flags & 0x20) w.push("URG");
  if (flags & 0x08) w.push("PSH");
  return w.length ? w.join("|") : "no flags";
}

function sysctl(s: NfConntrackSysctls, name: keyof NfConntrackSysctls, note: string): SysctlEvidence {
  return { name: `net.netfilter.${name}`, value: Number(s[name] ?? 0), note };
}

function isBareFin(p: Packet): boolean {
  return p.l4.kind === "tcp" && (p.l4.flags & (TCP_FIN | TCP_ACK | TCP_SYN | TCP_RST)) === TCP_FIN;
}

// ---------------------------------------------------------------------------------------------------------------
// conntrack

function explainConntrack(sim: HostSim, j: PacketJourney): Explanation["conntrack"] {
  const ct: CtSummary | undefined = j.ct;
  const s = sim.conntrack.sysctl;
  const kernel = sim.kernel;
  const lines: string[] = [];
  const kernelRefs: KernelRef[] = [{ file: CORE_FILE, fn: "nf_conntrack_in" }];
  const sysctls: SysctlEvidence[] = [];
  let cellExpr: string | undefined;
  const pkt = j.input;
  const tcp = pkt.l4.kind === "tcp" ? pkt.l4 : undefined;
  if (!ct) {
    lines.push("Conntrack never saw this packet.");
    return { title: "Conntrack", kernel: kernelRefs, lines, sysctls };
  }
  if (ct.state === "UNTRACKED") {
    lines.push(
      "UNTRACKED: a raw-table NOTRACK/CT --notrack rule exempted it; conntrack kept no state and NAT is skipped.",
    );
    return {
      title: "Conntrack",
      kernel: [{ file: "net/netfilter/xt_CT.c", fn: "notrack_tg" }],
      lines,
      sysctls,
    };
  }
  if (ct.attached) {
    lines.push(
      `${ct.state} (${ct.ctinfo}): the packet carries the conntrack of the packet it answers (nf_ct_attach), no lookup.`,
    );
    return { title: "Conntrack", kernel: [{ file: CORE_FILE, fn: "nf_ct_attach" }], lines, sysctls };
  }
  const reason = ct.reason;
  if (ct.state === "INVALID") {
    const fn = reason?.fn ?? "nf_conntrack_in";
    kernelRefs.push({ file: kernelFileOf(fn), fn });
    lines.push(`INVALID: no conntrack entry is attached to the packet (ctstate INVALID).`);
    if (reason) lines.push(`Decided by ${fn}(): "${reason.text}".`);
    if (tcp && fn === "tcp_error" && !tcpFlagsValid(tcp.flags)) {
      lines.push(
        `The flag combination ${flagWords(tcp.flags)} is not valid (tcp_valid_flags allows SYN, SYN|ACK, RST, RST|ACK, FIN|ACK, ACK, each optionally with URG; PSH, ECE and CWR are ignored), so tcp_error() rejects the packet before tcp_new() or the state table is consulted.`,
      );
      if (isBareFin(pkt)) {
        const c = tcpCell(kernel, "ORIGINAL", "fin", "NONE");
        lines.push(
          `Not the state table: a bare FIN never reaches ${c?.expr ?? "tcp_conntracks[ORIGINAL][fin][NONE] = sIV"}. That cell is what a FIN|ACK with no entry hits (tcp_new: "invalid new"); write-ups that blame the cell describe FIN|ACK, not this packet. Both end INVALID with no conntrack, so the nat table is skipped either way.`,
        );
      }
      sysctls.push(
        sysctl(s, "nf_conntrack_tcp_loose", "not consulted: tcp_new() is never reached"),
        sysctl(s, "nf_conntrack_tcp_be_liberal", "not consulted: the window check is never reached"),
      );
    } else if (fn === "tcp_error") {
      sysctls.push(sysctl(s, "nf_conntrack_checksum", "checksums are verified in PREROUTING when this is 1"));
    } else if (fn === "tcp_new") {
      const c = decidingCell(kernel, reason, lines);
      if (c) {
        cellExpr = c;
        lines.push(
          "Only a SYN (-> SYN_SENT) or, with loose pickup, an ACK (-> ESTABLISHED) can create an entry; anything else with no entry is INVALID and the new conntrack is freed.",
        );
      }
      sysctls.push(
        sysctl(
          s,
          "nf_conntrack_tcp_loose",
          reason?.text.startsWith("Don't try")
            ? "0 refuses to pick up a connection from a mid-stream ACK: this decided"
            : "lets only an ACK pick up a connection; it does not apply to this packet",
        ),
      );
    } else if (fn === "tcp_in_window") {
      lines.push(`The window check failed: ${reason?.text}.`);
      sysctls.push(
        sysctl(
          s,
          "nf_conntrack_tcp_be_liberal",
          "1 turns window failures into ACCEPT (the entry stays tracked)",
        ),
      );
    } else if (fn === "nf_conntrack_tcp_packet") {
      cellExpr = decidingCell(kernel, reason, lines) ?? cellExpr;
      if (/rst/i.test(reason?.text ?? ""))
        sysctls.push(sysctl(s, "nf_conntrack_tcp_ignore_invalid_rst", "1 lets an out-of-window RST through"));
    }
    return {
      title: "Conntrack",
      kernel: kernelRefs,
      lines,
      sysctls,
      ...(cellExpr ? { cell: cellExpr } : {}),
    };
  }
  // Tracked: NEW / ESTABLISHED / RELATED
  const isNew = ct.ctinfo === "IP_CT_NEW";
  kernelRefs.push({ file: CORE_FILE, fn: isNew ? "init_conntrack" : "resolve_normal_ct" });
  lines.push(
    isNew
      ? `NEW (${ct.ctinfo}): no entry matched, so conntrack created one (unconfirmed until the packet leaves the host: __nf_conntrack_confirm).`
      : `${ct.state} (${ct.ctinfo}, ${ct.dir} direction): the packet matched an existing entry.`,
  );
  if (ct.tcp?.index && ct.tcp.oldState) {
    kernelRefs.push({ file: TCP_FILE, fn: isNew ? "tcp_new" : "nf_conntrack_tcp_packet" });
    const c = tcpCell(kernel, ct.dir ?? "ORIGINAL", ct.tcp.index, ct.tcp.oldState);
    if (c) {
      cellExpr = c.expr;
      lines.push(
        `TCP state: ${ct.tcp.oldState} -> ${ct.tcp.newState ?? "?"} by ${c.expr}${c.comment ? ` ("${c.comment}")` : ""}.`,
      );
    }
    if (isNew && ct.tcp.index === "ack") {
      lines.push(
        "A mid-stream ACK picked up the connection (loose pickup); both directions are marked BE_LIBERAL.",
      );
      sysctls.push(
        sysctl(s, "nf_conntrack_tcp_loose", "1 allows picking up a connection from an ACK: this decided"),
      );
    }
  }
  if (reason) lines.push(`Note: ${reason.fn}(): "${reason.text}" (packet accepted, state not updated).`);
  if (ct.entry) lines.push(`Entry after the packet: ${ct.entry.trim()}`);
  return { title: "Conntrack", kernel: kernelRefs, lines, sysctls, ...(cellExpr ? { cell: cellExpr } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// NAT

function natRulesOf(ruleset: Ruleset, hook: string): string[] {
  const chain = ruleset.tables.get("nat")?.chains.get(hook);
  return chain ? chain.rules.map((r) => `nat:${hook}:rule:${r.num}  ${r.source.text.trim()}`) : [];
}

function explainNat(j: PacketJourney, rulesByHook: (hook: string) => string[]): ExplainSection {
  const lines: string[] = [];
  const kernel: KernelRef[] = [{ file: NAT_FILE, fn: "nf_nat_inet_fn" }];
  const steps: readonly NatStep[] = j.nat;
  if (steps.length === 0) {
    lines.push("No nat table is loaded: iptable_nat registers no hooks, so nothing is translated.");
    return { title: "NAT", kernel, lines };
  }
  for (const st of steps) {
    const at = `${st.hook} (${st.manip === "SRC" ? "source" : "destination"} NAT)`;
    switch (st.kind) {
      case "skipped": {
        lines.push(
          `${at}: skipped. ${j.ct?.state === "UNTRACKED" ? "The packet is UNTRACKED" : "The packet has no conntrack (INVALID)"}, and nf_nat_inet_fn() returns NF_ACCEPT at once without a conntrack: the nat table is not consulted.`,
        );
        const rules = rulesByHook(st.hook);
        for (const r of rules) lines.push(`  never evaluated: ${r}`);
        if (rules.some((r) => /MASQUERADE|SNAT/.test(r)) && st.manip === "SRC")
          lines.push(
            "  so MASQUERADE/SNAT did not rewrite the source: the packet keeps its original address.",
          );
        break;
      }
      case "binding":
        kernel.push({ file: NAT_FILE, fn: "nf_nat_setup_info" });
        lines.push(`${at}: new binding by ${st.by}: ${st.from} -> ${st.to} (get_unique_tuple).`);
        if (st.from && st.to) {
          const portOf = (f: string, side: 0 | 1) => f.split(" > ")[side]?.split(":")[1];
          const side = st.manip === "SRC" ? 0 : 1;
          const a = portOf(st.from, side);
          const b = portOf(st.to, side);
          if (a && b && a !== b)
            lines.push(
              `  the port changed ${a} -> ${b}: the tuple with the original port was already taken by another entry's reply (nf_nat_used_tuple), so get_unique_tuple picked another.`,
            );
        }
        break;
      case "null-binding":
        lines.push(
          `${at}: no nat rule bound this NEW connection, so it got a null binding (nf_nat_alloc_null_binding): its addresses stay as they are for its whole life.`,
        );
        break;
      case "rewrite":
        kernel.push({ file: NAT_FILE, fn: "nf_nat_packet" });
        lines.push(
          `${at}: rewritten by the connection's existing binding ${st.from} -> ${st.to} (${j.ct?.state ?? "tracked"}: the nat table is consulted only for a connection's first packet).`,
        );
        break;
      case "none":
        lines.push(
          `${at}: nothing to do (${j.ct?.state ?? "tracked"} connection without a ${st.manip === "SRC" ? "source" : "destination"} binding; the nat table is consulted only for NEW connections).`,
        );
        break;
      case "drop":
        lines.push(`${at}: dropped (${st.why ?? "NF_DROP"}${st.by ? `, ${st.by}` : ""}).`);
        break;
    }
  }
  return { title: "NAT", kernel, lines };
}

// ---------------------------------------------------------------------------------------------------------------
// rules, route, fate

function explainRules(r: PacketReport): Explanation["rules"] {
  const hits: TraceHit[] = r.trace.filter((h) => h.packetId === 0);
  const matched = hits
    .filter((h) => h.comment === "rule")
    .map((h) => ({ label: hitLabel(h), text: h.rule?.source.text.trim() ?? "", verdict: h.verdict }));
  const lines: string[] = [];
  for (const h of hits) {
    if (h.comment === "rule")
      lines.push(`${hitLabel(h)}  ${h.rule?.source.text.trim() ?? ""}  -> ${h.verdict}`);
    else if (h.comment === "policy") lines.push(`${hitLabel(h)}  (chain policy)  -> ${h.verdict}`);
    else lines.push(`${hitLabel(h)}  (end of chain, return)`);
  }
  if (lines.length === 0) lines.push("No table with rules was traversed.");
  return {
    title: "Rules (TRACE order)",
    kernel: [{ file: "net/ipv4/netfilter/ip_tables.c", fn: "ipt_do_table" }],
    lines,
    matched,
  };
}

function explainRoute(j: PacketJourney): ExplainSection {
  const kernel: KernelRef[] = [
    { file: "net/ipv4/route.c", fn: j.local ? "ip_route_output_key" : "ip_route_input_slow" },
  ];
  if (j.route?.startsWith("forward")) kernel.push({ file: "net/ipv4/ip_forward.c", fn: "ip_forward" });
  if (j.fate?.kind === "delivered") kernel.push({ file: "net/ipv4/ip_input.c", fn: "ip_local_deliver" });
  return {
    title: "Route",
    kernel,
    lines: [j.route ?? "no routing decision (the packet ended before routing)"],
  };
}

function explainFate(r: PacketReport, j: PacketJourney): ExplainSection {
  const lines: string[] = [];
  const f = j.fate;
  if (f?.kind === "left") {
    const e = r.egress.find((x) => x.packetId === 0);
    lines.push(
      `Left on ${f.iface}${e ? ` as ${formatTcpdump(e.packet, { iface: false, time: "none" })}` : ""}.`,
    );
  } else if (f?.kind === "delivered") lines.push(`Delivered locally (${f.to}).`);
  else if (f?.kind === "dropped") lines.push(`Dropped: ${f.reason}.`);
  else if (f) lines.push(`${f.kind}: ${"reason" in f ? f.reason : ""}`);
  for (const g of r.packets.slice(1)) lines.push(`The host also sent: ${formatSummary(g).trim()}`);
  return { title: "Fate", kernel: [], lines };
}

function outcomeOf(o: Observation): string {
  const nat =
    o.nat.kind === "binding" || o.nat.kind === "rewrite"
      ? `NATed to ${o.nat.src}${o.nat.sport !== undefined ? `:${o.nat.sport}` : ""} > ${o.nat.dst}${o.nat.dport !== undefined ? `:${o.nat.dport}` : ""}`
      : o.nat.kind === "skipped"
        ? "not NATed (nat table skipped)"
        : "not NATed";
  const fate =
    o.fate === "forwarded"
      ? `forwarded (${o.fateText})`
      : o.fate === "dropped" || o.fate === "rejected"
        ? `${o.fate}${o.rule ? ` by ${o.rule}` : ""}`
        : o.fateText;
  return `${o.ctstate ?? "no conntrack"}; ${nat}; ${fate}`;
}

// ---------------------------------------------------------------------------------------------------------------
// fixes

export interface CandidateFix {
  readonly kind: "rule" | "sysctl";
  readonly change: string;
  readonly why: string;
  readonly apply: (s: HostScenario) => HostScenario;
}

function isSaveFormat(text: string): boolean {
  for (const raw of text.split(/\r?\n/)) {
    const l = raw.trim();
    if (l === "" || l.startsWith("#")) continue;
    return l.startsWith("*") || l.startsWith(":") || l.startsWith("-") || l === "COMMIT";
  }
  return true;
}

/** A rule change applied to the scenario's rule text (as the user would run it after loading the file). */
export function withRuleCommand(s: HostScenario, table: string, args: string): HostScenario {
  const save = s.rulesFormat ? s.rulesFormat === "save" : isSaveFormat(s.rulesText);
  if (save) {
    // iptables-restore --noflush semantics for the appended table section.
    const text = `${s.rulesText}\n*${table}\n${args}\nCOMMIT\n`;
    return { ...s, rulesText: text, rulesFormat: "save", noflush: true };
  }
  return { ...s, rulesText: `${s.rulesText}\niptables -t ${table} ${args}\n`, rulesFormat: "script" };
}

function withSysctl(s: HostScenario, name: string, value: number): HostScenario {
  return { ...s, sysctl: { ...(s.sysctl ?? {}), [name]: value } };
}

function candidates(sim: HostSim, j: PacketJourney, o: Observation, r: PacketReport): CandidateFix[] {
  const out: CandidateFix[] = [];
  const ct = j.ct;
  const s = sim.conntrack.sysctl;
  const chain = j.local
    ? "OUTPUT"
    : j.fate?.kind === "delivered" || j.route?.startsWith("local")
      ? "INPUT"
      : "FORWARD";
  if (ct?.state === "INVALID" && o.fate !== "dropped" && o.fate !== "rejected") {
    const args = `-I ${chain} 1 -m conntrack --ctstate INVALID -j DROP`;
    out.push({
      kind: "rule",
      change: `iptables ${args}`,
      why: "drop packets conntrack calls INVALID before they are forwarded un-NATed",
      apply: (x) => withRuleCommand(x, "filter", args),
    });
  }
  const tcp = j.input.l4.kind === "tcp";
  if (tcp && ct?.state === "INVALID") {
    out.push({
      kind: "sysctl",
      change: `sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=${s.nf_conntrack_tcp_be_liberal ? 0 : 1}`,
      why: "window checks accept everything when liberal",
      apply: (x) =>
        withSysctl(x, "net.netfilter.nf_conntrack_tcp_be_liberal", s.nf_conntrack_tcp_be_liberal ? 0 : 1),
    });
  }
  if (tcp && (ct?.state === "INVALID" || (ct?.ctinfo === "IP_CT_NEW" && ct.tcp?.index === "ack"))) {
    const v = s.nf_conntrack_tcp_loose ? 0 : 1;
    out.push({
      kind: "sysctl",
      change: `sysctl -w net.netfilter.nf_conntrack_tcp_loose=${v}`,
      why: v
        ? "let an ACK pick up a connection conntrack has no entry for"
        : "refuse to pick up connections mid-stream",
      apply: (x) => withSysctl(x, "net.netfilter.nf_conntrack_tcp_loose", v),
    });
  }
  if (ct?.reason && /rst/i.test(ct.reason.text) && "nf_conntrack_tcp_ignore_invalid_rst" in s) {
    out.push({
      kind: "sysctl",
      change: "sysctl -w net.netfilter.nf_conntrack_tcp_ignore_invalid_rst=1",
      why: "do not mark out-of-window RSTs INVALID",
      apply: (x) => withSysctl(x, "net.netfilter.nf_conntrack_tcp_ignore_invalid_rst", 1),
    });
  }
  if (ct?.reason?.fn === "tcp_error" && /checksum/i.test(ct.reason.text)) {
    out.push({
      kind: "sysctl",
      change: "sysctl -w net.netfilter.nf_conntrack_checksum=0",
      why: "do not verify checksums in conntrack",
      apply: (x) => withSysctl(x, "net.netfilter.nf_conntrack_checksum", 0),
    });
  }
  const by = j.fate?.kind === "dropped" ? j.fate.by : undefined;
  const hit = by
    ? r.trace.find((h) => h.packetId === 0 && hitLabel(h) === by && h.comment === "rule")
    : undefined;
  if (hit) {
    const args = `-D ${hit.chain} ${hit.num}`;
    out.push({
      kind: "rule",
      change: `iptables -t ${hit.table} ${args}`,
      why: `remove the rule that dropped it (${hit.rule?.source.text.trim() ?? by})`,
      apply: (x) => withRuleCommand(x, hit.table, args),
    });
  }
  return out;
}

function effectsBetween(a: Observation, b: Observation): string[] {
  const out: string[] = [];
  if (a.ctstate !== b.ctstate) out.push(`ctstate ${a.ctstate ?? "-"} -> ${b.ctstate ?? "-"}`);
  if (a.fate !== b.fate || a.rule !== b.rule)
    out.push(`fate ${a.fate}${a.rule ? ` (${a.rule})` : ""} -> ${b.fate}${b.rule ? ` (${b.rule})` : ""}`);
  const natA = `${a.nat.kind} ${a.nat.src}:${a.nat.sport ?? ""}>${a.nat.dst}:${a.nat.dport ?? ""}`;
  const natB = `${b.nat.kind} ${b.nat.src}:${b.nat.sport ?? ""}>${b.nat.dst}:${b.nat.dport ?? ""}`;
  if (natA !== natB)
    out.push(
      `nat ${a.nat.kind} -> ${b.nat.kind}${b.nat.kind === "binding" || b.nat.kind === "rewrite" ? ` (${b.nat.src}:${b.nat.sport ?? ""})` : ""}`,
    );
  const la = a.leaves.map((p) => `${p.iface}: ${p.line}`);
  const lb = b.leaves.map((p) => `${p.iface}: ${p.line}`);
  const gone = la.filter((x) => !lb.includes(x));
  const added = lb.filter((x) => !la.includes(x));
  for (const g of gone) out.push(`no longer leaves: ${g}`);
  for (const n of added) out.push(`now leaves: ${n}`);
  return out;
}

/** Runs the scenario over packets[0..index] and observes the last one. */
export function runUpTo(
  s: HostScenario,
  packets: readonly Packet[],
  index: number,
  iface?: string,
): Observation {
  const sub = new HostSubject(s);
  let last: PacketReport | undefined;
  for (let i = 0; i <= index; i++) last = sub.sim.receive(packets[i], iface ? { iface } : {});
  return observeReport(s.host.hostname, last!);
}

// ---------------------------------------------------------------------------------------------------------------

export interface ExplainInput {
  readonly scenario: HostScenario;
  readonly packets: readonly Packet[];
  /** Interface for packets whose input names none. */
  readonly iface?: string;
}

/**
 * Explains the selected packets (0-based indexes into `packets`). The scenario is run once for the account,
 * and once per candidate fix and selected packet to try the fix.
 */
export function explainPackets(input: ExplainInput, selected: readonly number[]): Explanation[] {
  const sub = new HostSubject(input.scenario);
  const sim = sub.sim;
  const want = new Set(selected);
  const out: Explanation[] = [];
  const last = Math.max(-1, ...selected);
  for (let i = 0; i <= last; i++) {
    const r = sim.receive(input.packets[i], input.iface ? { iface: input.iface } : {});
    if (!want.has(i)) continue;
    out.push(explainReport(input, sim, sub.ruleset, r, i));
  }
  return out;
}

function explainReport(
  input: ExplainInput,
  sim: HostSim,
  ruleset: Ruleset,
  r: PacketReport,
  i: number,
): Explanation {
  const j = r.packets[0];
  const o = observeReport(input.scenario.host.hostname, r);
  const rulesByHook = (hook: string) => natRulesOf(ruleset, hook);
  const notes: string[] = [];
  if (isBareFin(j.input) && j.ct?.reason?.fn === "tcp_error") {
    const l4 = j.input.l4;
    if (l4.kind === "tcp") {
      const variant: Packet = { ...j.input, l4: { ...l4, flags: l4.flags | TCP_ACK } };
      const packets = [...input.packets];
      packets[i] = variant;
      const v = runUpTo(input.scenario, packets, i, input.iface);
      const cell = v.report?.packets[0]?.ct?.reason;
      const c = cell?.cell
        ? tcpCell(sim.kernel, cell.cell.dir === 0 ? "ORIGINAL" : "REPLY", cell.cell.index, cell.cell.oldState)
        : undefined;
      notes.push(
        `Tried: the same packet as FIN|ACK ([F.]) -> ${v.ctstate ?? "-"}${cell ? ` by ${cell.fn}(): "${cell.text}"` : ""}${c ? ` at ${c.expr}` : ""}; ${v.fateText}. The table cell decides only for FIN|ACK; this bare FIN was refused earlier by tcp_error().`,
      );
    }
  }
  const fixes: FixTrial[] = candidates(sim, j, o, r).map((f) => {
    const after = runUpTo(f.apply(input.scenario), input.packets, i, input.iface);
    const effects = effectsBetween(o, after);
    return {
      kind: f.kind,
      change: f.change,
      why: f.why,
      after: outcomeOf(after),
      effects,
      changesOutcome: effects.length > 0,
    };
  });
  return {
    packet: i + 1,
    ...(r.origin ? { origin: r.origin } : {}),
    brief: packetBrief(j.input),
    line: formatTcpdump(j.input, { iface: false, time: "none" }),
    outcome: outcomeOf(o),
    conntrack: explainConntrack(sim, j),
    nat: explainNat(j, rulesByHook),
    rules: explainRules(r),
    route: explainRoute(j),
    fate: explainFate(r, j),
    fixes,
    notes,
    summary: o.summary,
  };
}
