/**
 * TRACE output as the nftables-based tools print it, for `ctsim trace --format xtables-monitor|nft`.
 *
 * - `xtables-monitor --trace` (iptables 1.8.x iptables/xtables-monitor.c `trace_cb`, `trace_print_packet`,
 *   `print_verdict`): ` TRACE: 2 <id> table:chain:rule:0x<handle>:<VERDICT> ` + the rule in save format, then
 *   `PACKET: 2 <id> IN= OUT= MACSRC= MACDST= MACPROTO= SRC= DST= LEN= TOS=0x TTL= ID=` (no space after the
 *   id: a quirk of that code) `DF SPORT= DPORT= SYN ACK ... MARK=0x`; ` TRACE: 2 <id> table:chain:policy:ACCEPT`
 *   and `...:return:` for chain ends.
 * - `nft monitor trace` (nftables src/trace.c): `trace id <id> ip <table> <chain> packet: iif "eth0" ...`, then
 *   `trace id <id> ip <table> <chain> rule <rule> (verdict <v>)` and `... policy accept`.
 *
 * The kernel dumps the packet headers with the first event of each chain traversal (nft_trace_notify's
 * packet_dumped), so the PACKET / `packet:` line appears once per table and hook.
 *
 * Approximations, on purpose: rule handles are the rule's position (nft handles are table-wide counters); rules
 * are printed in iptables syntax (iptables-nft rules use xt expressions that nft prints as `xt match "..."`);
 * the trace id is a per-packet counter, not the kernel's hash; `-j RETURN` rules print nft's raw verdict code
 * 0xfffffffb as print_verdict does.
 */
import { formatIpv4 } from "../wire/addr";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from "../wire/packet";
import { formatRuleSpec } from "../netfilter/save";
import type { PacketReport, TraceHit } from "./events";

function traceId(r: PacketReport, h: TraceHit): string {
  return ((((r.index + 1) * 0x100 + h.packetId) * 0x9e3779b1) >>> 0).toString(16).padStart(8, "0");
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

function xtPacket(id: string, h: TraceHit): string {
  const p = h.pkt;
  let s = `PACKET: 2 ${id} `;
  if (h.inIface !== undefined) s += `IN=${h.inIface} `;
  if (h.outIface !== undefined) s += `OUT=${h.outIface} `;
  if (h.inIface !== undefined && h.link) {
    const mac = (m: string) =>
      m
        .split(":")
        .map((x) => x.replace(/^0/, ""))
        .join(":");
    s += `MACSRC=${mac(h.link.src)} MACDST=${mac(h.link.dst)} MACPROTO=${h.link.ethertype.toString(16).padStart(4, "0")} `;
  }
  const ip = p.ip;
  s += `SRC=${formatIpv4(ip.src)} DST=${formatIpv4(ip.dst)} LEN=${ip.totalLength} TOS=0x${ip.tos.toString(16)} TTL=${ip.ttl} ID=${ip.id}`;
  if (ip.rf) s += "CE ";
  if (ip.df) s += "DF ";
  if (ip.mf) s += "MF ";
  if (ip.fragOffset) s += `FRAG:${ip.fragOffset} `;
  const l4 = p.l4;
  if (l4.kind === "udp") s += `SPORT=${l4.srcPort} DPORT=${l4.dstPort} `;
  if (l4.kind === "tcp") {
    s += `SPORT=${l4.srcPort} DPORT=${l4.dstPort} `;
    const f = l4.flags;
    for (const [bit, name] of [
      [TCP_SYN, "SYN"],
      [TCP_ACK, "ACK"],
      [TCP_FIN, "FIN"],
      [TCP_RST, "RST"],
      [TCP_PSH, "PSH"],
      [TCP_URG, "URG"],
    ] as const)
      if (f & bit) s += `${name} `;
  }
  if (h.mark) s += `MARK=0x${h.mark.toString(16)} `;
  return s;
}

/** The lines `xtables-monitor --trace` prints for one report. */
export function formatXtablesMonitor(r: PacketReport): string[] {
  const out: string[] = [];
  const dumped = new Set<string>();
  for (const h of r.trace) {
    const id = traceId(r, h);
    const head = ` TRACE: 2 ${id} ${h.table}:${h.chain}`;
    if (h.comment === "rule" && h.rule) {
      out.push(
        `${head}:rule:0x${h.num.toString(16)}:${nftVerdict(h.verdict)} -A ${h.chain} ${formatRuleSpec(h.rule)}`.trimEnd(),
      );
      const key = `${h.packetId}/${h.table}/${h.hook}`;
      if (!dumped.has(key)) {
        dumped.add(key);
        out.push(xtPacket(id, h));
      }
    } else if (h.comment === "return") out.push(`${head}:return:`);
    else out.push(`${head}:policy:${h.verdict} `);
  }
  return out;
}

function nftPacket(h: TraceHit): string {
  const p = h.pkt;
  const parts: string[] = [];
  if (h.inIface !== undefined) parts.push(`iif "${h.inIface}"`);
  if (h.outIface !== undefined) parts.push(`oif "${h.outIface}"`);
  if (h.inIface !== undefined && h.link) parts.push(`ether saddr ${h.link.src} ether daddr ${h.link.dst}`);
  const ip = p.ip;
  parts.push(
    `ip saddr ${formatIpv4(ip.src)} ip daddr ${formatIpv4(ip.dst)} ip dscp 0x${(ip.tos >> 2).toString(16).padStart(2, "0")} ip ecn 0x${(ip.tos & 3).toString(16).padStart(2, "0")} ip ttl ${ip.ttl} ip id ${ip.id} ip length ${ip.totalLength}`,
  );
  const l4 = p.l4;
  if (l4.kind === "tcp") {
    const names = (
      [
        [TCP_FIN, "fin"],
        [TCP_SYN, "syn"],
        [TCP_RST, "rst"],
        [TCP_PSH, "psh"],
        [TCP_ACK, "ack"],
        [TCP_URG, "urg"],
      ] as const
    )
      .filter(([b]) => l4.flags & b)
      .map(([, n]) => n);
    parts.push(
      `tcp sport ${l4.srcPort} tcp dport ${l4.dstPort} tcp flags == ${names.length > 1 ? `0x${l4.flags.toString(16)}` : (names[0] ?? "0x0")} tcp window ${l4.window}`,
    );
  } else if (l4.kind === "udp")
    parts.push(`udp sport ${l4.srcPort} udp dport ${l4.dstPort} udp length ${l4.length}`);
  else if (l4.kind === "icmp") parts.push(`icmp type ${l4.type} icmp code ${l4.code}`);
  if (h.mark) parts.push(`meta mark 0x${h.mark.toString(16).padStart(8, "0")}`);
  return parts.join(" ");
}

/** The lines `nft monitor trace` prints for one report. */
export function formatNftMonitor(r: PacketReport): string[] {
  const out: string[] = [];
  const dumped = new Set<string>();
  for (const h of r.trace) {
    const head = `trace id ${traceId(r, h)} ip ${h.table} ${h.chain}`;
    const key = `${h.packetId}/${h.table}/${h.hook}`;
    if (!dumped.has(key)) {
      dumped.add(key);
      out.push(`${head} packet: ${nftPacket(h)}`);
    }
    if (h.comment === "rule" && h.rule) {
      const v = nftVerdict(h.verdict);
      const verdict = v === "0xfffffffb" ? "return" : v.toLowerCase().replace(":", " ");
      out.push(`${head} rule ${formatRuleSpec(h.rule)} (verdict ${verdict})`);
    } else if (h.comment === "return") out.push(`${head} verdict return`);
    else out.push(`${head} policy ${h.verdict.toLowerCase()}`);
  }
  return out;
}
