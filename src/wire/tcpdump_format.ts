/**
 * Packet -> tcpdump-style text (`tcpdump -nn`, and `-v` two-line form), the inverse of ./text.ts.
 *
 * Mirrors the output of tcpdump 4.99 (the-tcpdump-group/tcpdump): print-ip.c `ip_print`, print-tcp.c
 * `tcp_print`, print-udp.c `udp_print` (plain `UDP, length N` only: no application decoders), print-icmp.c
 * `icmp_print` (with the quoted packet on the following lines under -v), print-sll.c for the `-i any`
 * interface/direction columns, and the `-t`/`-tt`/default timestamp forms (UTC).
 *
 * Leaves out on purpose: port and host names (always numeric, as with -nn), application payload decoding, IP
 * options (not printed), the "correct" value in `(incorrect -> 0x..)` (the packet only knows it is wrong; `?`
 * is printed in its place), link-layer (-e) output. Where a checksum status is "unknown" but a value is
 * present, `(unverified)` is printed. No I/O.
 */
import { formatIpv4 } from "./addr";
import { ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_PARAMETERPROB, ICMP_REDIRECT } from "./packet";
import {
  ICMP_TIME_EXCEEDED,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
} from "./packet";
import type { IcmpHeader, Ipv4Header, Packet, TcpHeader, TcpOption } from "./packet";
import {
  ICMP_REDIRECT_TEMPLATES,
  ICMP_SIMPLE_TYPES,
  ICMP_UNREACH_TEMPLATES,
  IPPROTO_NAMES,
  TCP_FLAG_LETTERS,
} from "./text";

export interface TcpdumpFormatOptions {
  /** `-v`: the `IP (tos .., ..)` header line, checksums, and the quoted packet of ICMP errors. */
  verbose?: boolean;
  /** `-vv` (implies verbose): also the UDP checksum and `seq` on every TCP segment. */
  vv?: boolean;
  /** `-i any` columns: `eth0  In  ` (when the packet has an interface). */
  iface?: boolean;
  /** "abs": `HH:MM:SS.ffffff` (UTC, tcpdump's default); "epoch": `-tt`; "none": `-t`. Default "abs". */
  time?: "none" | "abs" | "epoch";
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

function frac(nsec: number): string {
  return nsec % 1000 === 0 ? String(nsec / 1000).padStart(6, "0") : String(nsec).padStart(9, "0");
}

export function formatTimestamp(tsSec: number, tsNsec: number, time: "none" | "abs" | "epoch"): string {
  if (time === "none") return "";
  if (time === "epoch") return `${tsSec}.${frac(tsNsec)}`;
  const day = ((tsSec % 86400) + 86400) % 86400;
  const hh = String(Math.floor(day / 3600)).padStart(2, "0");
  const mm = String(Math.floor((day % 3600) / 60)).padStart(2, "0");
  const ss = String(day % 60).padStart(2, "0");
  return `${hh}:${mm}:${ss}.${frac(tsNsec)}`;
}

export function formatTcpFlags(flags: number): string {
  let out = "";
  for (const [bit, letter] of TCP_FLAG_LETTERS) if (flags & bit) out += letter;
  return out === "" ? "none" : out;
}

export function formatTcpOption(o: TcpOption): string {
  switch (o.kind) {
    case "eol":
      return "eol";
    case "nop":
      return "nop";
    case "mss":
      return `mss ${o.value}`;
    case "wscale":
      return `wscale ${o.shift}`;
    case "sackPermitted":
      return "sackOK";
    case "sack":
      return `sack ${o.blocks.length} ${o.blocks.map(([l, r]) => `{${l}:${r}}`).join("")}`;
    case "timestamp":
      return `TS val ${o.tsval} ecr ${o.tsecr}`;
    case "unknown": {
      const data = Array.from(o.data, (b) => b.toString(16).padStart(2, "0")).join("");
      return `unknown-${o.type}${data ? ` 0x${data}` : ""}`;
    }
  }
}

/** The `-v` header in parentheses, without the leading "IP ". */
export function formatIpHeader(ip: Ipv4Header, badChecksum: boolean): string {
  let tos = `tos 0x${ip.tos.toString(16)}`;
  const ecn = ip.tos & 3;
  if (ecn) tos += [",ECT(1)", ",ECT(0)", ",CE"][ecn - 1];
  const flags =
    [ip.mf ? "+" : "", ip.df ? "DF" : "", ip.rf ? "rsvd" : ""].filter(Boolean).join(", ") || "none";
  const proto = IPPROTO_NAMES[ip.protocol] ?? "unknown";
  let out = `(${tos}`;
  if (ip.ttl >= 1) out += `, ttl ${ip.ttl}`;
  out += `, id ${ip.id}, offset ${ip.fragOffset * 8}, flags [${flags}], proto ${proto} (${ip.protocol})`;
  out += `, length ${ip.totalLength}`;
  if (badChecksum) out += `, bad cksum ${ip.checksum.toString(16)} (->?)!`;
  return out + ")";
}

function endpoint(addr: number, port: number | undefined): string {
  return port === undefined ? formatIpv4(addr) : `${formatIpv4(addr)}.${port}`;
}

function formatTcp(p: Packet, tcp: TcpHeader, verbose: boolean, vv: boolean): string {
  let out = `Flags [${formatTcpFlags(tcp.flags)}]`;
  if (verbose && (p.l4Checksum !== "unknown" || tcp.checksum !== 0)) {
    out += `, cksum 0x${hex4(tcp.checksum)}`;
    out +=
      p.l4Checksum === "correct"
        ? " (correct)"
        : p.l4Checksum === "incorrect"
          ? " (incorrect -> 0x?)"
          : " (unverified)";
  }
  const len = p.payloadLength;
  if (vv || len > 0 || tcp.flags & (TCP_SYN | TCP_FIN | TCP_RST)) {
    out += `, seq ${tcp.seq}`;
    if (len > 0) out += `:${(tcp.seq + len) >>> 0}`;
  }
  if (tcp.flags & TCP_ACK) out += `, ack ${tcp.ack}`;
  out += `, win ${tcp.window}`;
  if (tcp.flags & TCP_URG) out += `, urg ${tcp.urgentPointer}`;
  if (tcp.options.length) out += `, options [${tcp.options.map(formatTcpOption).join(",")}]`;
  return `${out}, length ${len}`;
}

function fill(template: string, ...values: string[]): string {
  let k = 0;
  return template.replace(/%s/g, () => values[k++] ?? "");
}

/** The quoted packet's destination and ports, read from the quote bytes. */
function quoteInfo(icmp: IcmpHeader): { dst: string; proto: number; dport: number } | undefined {
  const q = icmp.quote;
  if (!q) return undefined;
  const dport = q.l4.length >= 4 ? (q.l4[2] << 8) | q.l4[3] : 0;
  return { dst: formatIpv4(q.ip.dst), proto: q.ip.protocol, dport };
}

export function formatIcmpDescription(icmp: IcmpHeader, icmpLength: number): string {
  const q = quoteInfo(icmp);
  const qdst = q?.dst ?? "0.0.0.0";
  let desc: string;
  const rest = icmp.restOfHeader >>> 0;
  switch (icmp.type) {
    case ICMP_ECHO:
    case ICMP_ECHOREPLY:
      desc = `echo ${icmp.type === ICMP_ECHO ? "request" : "reply"}, id ${rest >>> 16}, seq ${rest & 0xffff}`;
      break;
    case ICMP_DEST_UNREACH:
      if (icmp.code === 3) {
        if (q?.proto === IPPROTO_UDP) desc = `${qdst} udp port ${q.dport} unreachable`;
        else if (q?.proto === IPPROTO_TCP) desc = `${qdst} tcp port ${q.dport} unreachable`;
        else desc = `${qdst} protocol ${q?.proto ?? 0} port ${q?.dport ?? 0} unreachable`;
      } else if (icmp.code === 2) desc = `${qdst} protocol ${q?.proto ?? 0} unreachable`;
      else if (icmp.code === 4) {
        const mtu = rest & 0xffff;
        desc = mtu ? `${qdst} unreachable - need to frag (mtu ${mtu})` : `${qdst} unreachable - need to frag`;
      } else {
        const t = ICMP_UNREACH_TEMPLATES.find(([c]) => c === icmp.code);
        desc = t ? fill(t[1], qdst) : `#${icmp.code} ${qdst} unreachable`;
      }
      break;
    case ICMP_REDIRECT: {
      const t = ICMP_REDIRECT_TEMPLATES.find(([c]) => c === icmp.code);
      desc = t
        ? fill(t[1], qdst, formatIpv4(rest))
        : `redirect-#${icmp.code} ${qdst} to net ${formatIpv4(rest)}`;
      break;
    }
    case ICMP_TIME_EXCEEDED:
      desc =
        icmp.code === 0
          ? "time exceeded in-transit"
          : icmp.code === 1
            ? "ip reassembly time exceeded"
            : `time exceeded-#${icmp.code}`;
      break;
    case ICMP_PARAMETERPROB:
      desc = icmp.code ? `parameter problem - code ${icmp.code}` : `parameter problem - octet ${rest >>> 24}`;
      break;
    case ICMP_TIMESTAMP:
    case ICMP_TIMESTAMPREPLY:
      desc = `time stamp ${icmp.type === ICMP_TIMESTAMP ? "query" : "reply"} id ${rest >>> 16} seq ${rest & 0xffff}`;
      break;
    default: {
      const t = ICMP_SIMPLE_TYPES.find(([ty]) => ty === icmp.type);
      desc = t ? t[1] : `type-#${icmp.type}`;
    }
  }
  return `ICMP ${desc}, length ${icmpLength}`;
}

/** The address line (`SRC > DST: ...`) of a packet. */
export function formatAddressLine(p: Packet, verbose: boolean, vv = false): string {
  const l4 = p.l4;
  if (l4.kind === "tcp")
    return `${endpoint(p.ip.src, l4.srcPort)} > ${endpoint(p.ip.dst, l4.dstPort)}: ${formatTcp(p, l4, verbose || vv, vv)}`;
  if (l4.kind === "udp") {
    let sum = "";
    if (vv) {
      if (l4.checksum === 0 && p.l4Checksum !== "incorrect") sum = "[no cksum] ";
      else if (p.l4Checksum === "correct") sum = "[udp sum ok] ";
      else if (p.l4Checksum === "incorrect") sum = `[bad udp cksum 0x${hex4(l4.checksum)} -> 0x?!] `;
    }
    return `${endpoint(p.ip.src, l4.srcPort)} > ${endpoint(p.ip.dst, l4.dstPort)}: ${sum}UDP, length ${p.payloadLength}`;
  }
  if (l4.kind === "icmp") {
    const hl = 8 + (l4.quote ? l4.quote.ip.ihl + l4.quote.l4.length : 0);
    const wrong =
      verbose && p.l4Checksum === "incorrect" ? ` (wrong icmp cksum ${l4.checksum.toString(16)} (->?)!)` : "";
    return `${formatIpv4(p.ip.src)} > ${formatIpv4(p.ip.dst)}: ${formatIcmpDescription(l4, hl + p.payloadLength)}${wrong}`;
  }
  return `${formatIpv4(p.ip.src)} > ${formatIpv4(p.ip.dst)}: ip-proto-${p.ip.protocol} ${p.payloadLength}`;
}

/** The -v lines of an ICMP error's quoted packet, as tcpdump prints them after the ICMP line. */
function formatQuote(icmp: IcmpHeader): string {
  const q = icmp.quote!;
  const ip = q.ip;
  const b = q.l4;
  const word = (k: number) => (b.length >= k + 2 ? (b[k] << 8) | b[k + 1] : 0);
  let line: string;
  if (ip.protocol === IPPROTO_UDP)
    line = `${endpoint(ip.src, word(0))} > ${endpoint(ip.dst, word(2))}: UDP, length ${Math.max(0, word(4) - 8)}`;
  else if (ip.protocol === IPPROTO_TCP)
    line = `${endpoint(ip.src, word(0))} > ${endpoint(ip.dst, word(2))}: [|tcp]`;
  else if (ip.protocol === IPPROTO_ICMP && b.length >= 8) {
    const inner: IcmpHeader = {
      kind: "icmp",
      type: b[0],
      code: b[1],
      checksum: 0,
      restOfHeader: ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0,
    };
    line = `${formatIpv4(ip.src)} > ${formatIpv4(ip.dst)}: ${formatIcmpDescription(inner, ip.totalLength - ip.ihl)}`;
  } else line = `${formatIpv4(ip.src)} > ${formatIpv4(ip.dst)}: ip-proto-${ip.protocol}`;
  return `\n\tIP ${formatIpHeader(ip, false)}\n    ${line}`;
}

/**
 * One packet as tcpdump -nn prints it (two lines with `verbose`, three or four for ICMP errors with a quote).
 */
export function formatTcpdump(p: Packet, opts: TcpdumpFormatOptions = {}): string {
  const vv = opts.vv === true;
  const verbose = opts.verbose === true || vv;
  let out = formatTimestamp(p.tsSec, p.tsNsec, opts.time ?? "abs");
  if (out) out += " ";
  if (opts.iface && p.iface !== undefined) {
    out += `${p.iface.padEnd(5)} ${(p.direction ?? "In").padEnd(3)} `;
  }
  out += "IP ";
  if (verbose) out += `${formatIpHeader(p.ip, p.ipChecksum === "incorrect")}\n    `;
  out += formatAddressLine(p, verbose, vv);
  if (verbose && p.l4.kind === "icmp" && p.l4.quote) out += formatQuote(p.l4);
  return out;
}
