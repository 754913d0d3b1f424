/**
 * The per-packet summary line of `ctsim trace` (ctsim's own format, not a kernel one): for each packet of a
 * report (the input and every packet the host generated because of it) conntrack's state and ctinfo with the
 * TCP table cell or the INVALID reason, what NAT did or why it did not, and the packet's fate.
 *
 *     => #0 tcp 192.168.100.105:1836 > 2.2.2.2:80 [S]: ct NEW IP_CT_NEW ORIGINAL (tcp syn NONE -> SYN_SENT);
 *        nat SRC 192.168.100.105:1836 -> 192.168.100.104:1836 (nat:POSTROUTING:rule:1); left on eth0
 *
 * (one line; wrapped here). Vocabulary is the kernel's (ctinfo names, tcp_conntracks cells, the reason texts of
 * nf_l4proto_log_invalid). Leaves out on purpose: colour (the CLI adds it) and the conntrack entry (shown by
 * --conntrack).
 */
import type { Packet } from "../wire/packet";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "../wire/packet";
import { formatIpv4 } from "../wire/addr";
import { formatTcpFlags } from "../wire/tcpdump_format";
import type { CtSummary, Fate, NatStep, PacketJourney } from "./events";

/** `tcp 1.2.3.4:5 > 6.7.8.9:10 [S]`, `icmp 1.2.3.4 > 5.6.7.8 type 8/0`, `proto 99 1.2.3.4 > 5.6.7.8`. */
export function packetBrief(p: Packet): string {
  const src = formatIpv4(p.ip.src);
  const dst = formatIpv4(p.ip.dst);
  const l4 = p.l4;
  switch (p.ip.protocol) {
    case IPPROTO_TCP:
      if (l4.kind === "tcp")
        return `tcp ${src}:${l4.srcPort} > ${dst}:${l4.dstPort} [${formatTcpFlags(l4.flags)}]`;
      break;
    case IPPROTO_UDP:
      if (l4.kind === "udp") return `udp ${src}:${l4.srcPort} > ${dst}:${l4.dstPort}`;
      break;
    case IPPROTO_ICMP:
      if (l4.kind === "icmp") return `icmp ${src} > ${dst} type ${l4.type}/${l4.code}`;
      break;
  }
  return `proto ${p.ip.protocol} ${src} > ${dst}`;
}

export function formatCt(ct: CtSummary | undefined): string {
  if (!ct) return "ct -";
  let s = `ct ${ct.state}`;
  if (ct.state !== "INVALID" && ct.ctinfo) s += ` ${ct.ctinfo}`;
  if (ct.dir && ct.state !== "INVALID" && ct.state !== "UNTRACKED") s += ` ${ct.dir}`;
  if (ct.attached) s += " (attached from the packet it answers)";
  const cell = ct.tcp?.index
    ? `tcp ${ct.tcp.index} ${ct.tcp.oldState ?? "?"} -> ${ct.tcp.newState ?? "?"}`
    : ct.tcp?.oldState
      ? `tcp ${ct.tcp.oldState} -> ${ct.tcp.newState ?? "?"}`
      : undefined;
  const reason = ct.reason ? `${ct.reason.fn}: ${ct.reason.text}` : undefined;
  const extra = [cell, ct.state === "INVALID" ? reason : reason && `ignored: ${reason}`].filter(Boolean);
  if (extra.length) s += ` (${extra.join("; ")})`;
  return s;
}

function hostPort(flow: string | undefined, side: 0 | 1): string {
  if (flow === undefined) return "";
  const i = flow.indexOf(" > ");
  if (i < 0) return side === 0 ? flow : "";
  return side === 0 ? flow.slice(0, i) : flow.slice(i + 3);
}

export function formatNat(steps: readonly NatStep[]): string {
  // Plain loops: this runs once per packet of a trace.
  let out = "";
  let skipped: NatStep | undefined;
  let nulls = "";
  for (const s of steps) {
    if (s.kind === "skipped") skipped ??= s;
    else if (s.kind === "null-binding") nulls += nulls ? `, ${s.hook}` : s.hook;
    let text: string;
    if (s.kind === "drop") text = `nat ${s.manip} dropped (${s.why ?? "NF_DROP"}${s.by ? `, ${s.by}` : ""})`;
    else if (s.kind === "binding" || s.kind === "rewrite") {
      const from = s.from;
      const to = s.to;
      if (from === to) continue;
      const side = s.manip === "SRC" ? 0 : 1;
      const what = `${hostPort(from, side)} -> ${hostPort(to, side)}`;
      const how = s.kind === "binding" ? (s.by ? ` (${s.by})` : "") : " (existing binding)";
      text = `nat ${s.manip} ${what}${how}`;
    } else continue;
    out += out ? `, ${text}` : text;
  }
  if (out) return out;
  if (skipped) return `nat: ${skipped.why}`;
  if (steps.length === 0) return "nat: no nat table";
  return nulls ? `nat: none (null binding at ${nulls})` : "nat: none";
}

export function formatFate(f: Fate | undefined): string {
  if (!f) return "fate unknown";
  switch (f.kind) {
    case "left":
      return `left on ${f.iface}`;
    case "delivered":
      return `delivered locally (${f.to})`;
    case "dropped":
      return `dropped: ${f.reason}`;
    case "stolen":
      return `stolen by ${f.by}: ${f.reason}`;
    case "ignored":
      return `ignored: ${f.reason}`;
  }
}

/** The summary line of one packet of a report. */
export function formatSummary(j: PacketJourney): string {
  const head = j.id === 0 ? "=> #0" : `   +#${j.id} (${j.cause ?? "generated"})`;
  if (j.fate?.kind === "ignored") return `${head} ${packetBrief(j.input)}: ${formatFate(j.fate)}`;
  return `${head} ${packetBrief(j.input)}: ${formatCt(j.ct)}; ${formatNat(j.nat)}; ${formatFate(j.fate)}`;
}
