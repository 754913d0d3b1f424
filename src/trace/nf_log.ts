/**
 * The kernel's LOG line format for IPv4: net/netfilter/nf_log_syslog.c (`nf_log_ip_packet`,
 * `nf_log_dump_packet_common`, `dump_mac_header`, `dump_ipv4_packet`, `nf_log_dump_tcp_header`,
 * `nf_log_dump_udp_header`, `nf_log_dump_sk_uid_gid`), and the TRACE line of net/ipv4/netfilter/ip_tables.c
 * (`trace_packet`: prefix "TRACE: table:chain:comment:rulenum " logged with `trace_loginfo`, level 4 and
 * NF_LOG_DEFAULT_MASK, so TRACE always prints SEQ/ACK and TCP/IP options). Linux 6.18 (checked line for line
 * against TRACE output of 6.18.44 in test/oracle/recordings).
 *
 * The formatter works on the datagram's wire bytes (`encodeIpv4` of the Packet value) so that every
 * `skb_header_pointer` bound of the kernel (INCOMPLETE [n bytes], OPT (TRUNCATED), the one-level recursion into
 * the packet quoted by an ICMP error) falls out the same way; `skb->len` is the datagram length.
 *
 * Returned text starts at the prefix: the syslog level (KERN_SOH + digit) is not part of it, and it keeps the
 * kernel's trailing space.
 * Leaves out on purpose: IPv6, ARP and bridge loggers (PHYSIN=/PHYSOUT=), SIT tunnels (TUNNEL=), the
 * nf_log_all_netns gate (the emulated host is always allowed to log), AH/ESP beyond their SPI (as the kernel).
 */

import type { LinkHeader, Packet } from "../wire/packet";
import { encodeIpv4 } from "../wire/ipv4";
import { formatIpv4 } from "../wire/addr";
import type { TraceComment } from "../netfilter/ip_tables";

/** include/uapi/linux/netfilter/nf_log.h */
export const NF_LOG_TCPSEQ = 0x01;
export const NF_LOG_TCPOPT = 0x02;
export const NF_LOG_IPOPT = 0x04;
export const NF_LOG_UID = 0x08;
export const NF_LOG_MACDECODE = 0x20;
/** include/net/netfilter/nf_log.h: "Log tcp sequence, tcp options, ip options and uid owning local socket". */
export const NF_LOG_DEFAULT_MASK = 0x0f;

/** struct nf_loginfo (type NF_LOG_TYPE_LOG). */
export interface NfLogInfo {
  readonly level: number;
  readonly logflags: number;
}

/** ip_tables.c trace_loginfo. */
export const TRACE_LOGINFO: NfLogInfo = { level: 4, logflags: NF_LOG_DEFAULT_MASK };

/** What the logger reads from the skb besides the datagram. */
export interface NfLogSubject {
  readonly pkt: Packet;
  /** skb->mark */
  readonly mark: number;
  /** in/out devices of the hook (undefined = none, printed empty). */
  readonly inIface?: string;
  readonly outIface?: string;
  /**
   * The link header of the frame that brought the packet in (printed as MAC= only when there is an input
   * device). Undefined with an input device: the device had no hard header ("MAC= ").
   */
  readonly link?: LinkHeader;
  /** fsuid/fsgid of skb->sk's file, when the packet has a full user socket (`--log-uid`, TRACE). */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ESP = 50;
const IPPROTO_AH = 51;
const IPPROTO_UDPLITE = 136;

const NR_ICMP_TYPES = 18;
/** required_len[] of dump_ipv4_packet: bytes of ICMP message needed before the type-specific fields. */
const ICMP_REQUIRED_LEN: Readonly<Record<number, number>> = {
  0: 4,
  3: 28,
  4: 28,
  5: 28,
  8: 4,
  11: 28,
  12: 28,
  13: 20,
  14: 20,
  17: 12,
  18: 12,
};

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function hex2u(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** dump_mac_header. */
function dumpMacHeader(out: string[], logflags: number, link: LinkHeader | undefined): void {
  const ethertype = link ? (link.vlans.length > 0 ? 0x0800 : link.ethertype) : 0;
  if (logflags & NF_LOG_MACDECODE && link) {
    out.push(`MACSRC=${link.src} MACDST=${link.dst} `);
    // nf_log_dump_vlan: an accelerated (stripped) tag; the innermost id is what the device kept.
    if (link.vlans.length > 0) out.push(`VPROTO=8100 VID=${link.vlans[link.vlans.length - 1]} `);
    out.push(`MACPROTO=${ethertype.toString(16).padStart(4, "0")} `);
    return;
  }
  let mac = "MAC=";
  if (link) mac += `${link.dst}:${link.src}:${hex2(ethertype >> 8)}:${hex2(ethertype & 0xff)}`;
  out.push(mac + " ");
}

/** nf_log_dump_tcp_header; returns true when the caller must stop (the kernel's `return 1`). */
function dumpTcpHeader(
  out: string[],
  b: Uint8Array,
  fragment: boolean,
  offset: number,
  logflags: number,
): boolean {
  out.push("PROTO=TCP ");
  if (fragment) return false;
  if (offset + 20 > b.length) {
    out.push(`INCOMPLETE [${b.length - offset} bytes] `);
    return true;
  }
  out.push(`SPT=${u16(b, offset)} DPT=${u16(b, offset + 2)} `);
  if (logflags & NF_LOG_TCPSEQ) out.push(`SEQ=${u32(b, offset + 4)} ACK=${u32(b, offset + 8)} `);
  out.push(`WINDOW=${u16(b, offset + 14)} `);
  const b12 = b[offset + 12];
  const fl = b[offset + 13];
  // TCP_RESERVED_BITS is 0x0E000000 since AE took bit 0 of byte 12 (6.x); (word & bits) >> 22.
  out.push(`RES=0x${hex2((b12 & 0x0e) << 2)} `);
  if (b12 & 0x01) out.push("AE ");
  if (fl & 0x80) out.push("CWR ");
  if (fl & 0x40) out.push("ECE ");
  if (fl & 0x20) out.push("URG ");
  if (fl & 0x10) out.push("ACK ");
  if (fl & 0x08) out.push("PSH ");
  if (fl & 0x04) out.push("RST ");
  if (fl & 0x02) out.push("SYN ");
  if (fl & 0x01) out.push("FIN ");
  out.push(`URGP=${u16(b, offset + 18)} `);
  const doff = (b12 >> 4) * 4;
  if (logflags & NF_LOG_TCPOPT && doff > 20) {
    const optsize = doff - 20;
    if (offset + 20 + optsize > b.length) {
      out.push("OPT (TRUNCATED)");
      return true;
    }
    let s = "OPT (";
    for (let i = 0; i < optsize; i++) s += hex2u(b[offset + 20 + i]);
    out.push(s + ") ");
  }
  return false;
}

/** nf_log_dump_udp_header. */
function dumpUdpHeader(
  out: string[],
  b: Uint8Array,
  proto: number,
  fragment: boolean,
  offset: number,
): boolean {
  out.push(proto === IPPROTO_UDP ? "PROTO=UDP " : "PROTO=UDPLITE ");
  if (fragment) return false;
  if (offset + 8 > b.length) {
    out.push(`INCOMPLETE [${b.length - offset} bytes] `);
    return true;
  }
  out.push(`SPT=${u16(b, offset)} DPT=${u16(b, offset + 2)} LEN=${u16(b, offset + 4)} `);
  return false;
}

/** dump_ipv4_packet; `iphoff` 0 is the packet itself, anything else the quoted one (no further recursion). */
function dumpIpv4(
  out: string[],
  b: Uint8Array,
  iphoff: number,
  logflags: number,
  subject: NfLogSubject,
): void {
  if (iphoff + 20 > b.length) {
    out.push("TRUNCATED");
    return;
  }
  const tos = b[iphoff + 1];
  const fragOff = u16(b, iphoff + 6);
  const ihl = (b[iphoff] & 0x0f) * 4;
  const proto = b[iphoff + 9];
  out.push(`SRC=${formatIpv4(u32(b, iphoff + 12))} DST=${formatIpv4(u32(b, iphoff + 16))} `);
  out.push(
    `LEN=${u16(b, iphoff + 2)} TOS=0x${hex2u(tos & 0x1e)} PREC=0x${hex2u(tos & 0xe0)} TTL=${b[iphoff + 8]} ID=${u16(b, iphoff + 4)} `,
  );
  if (fragOff & 0x8000) out.push("CE ");
  if (fragOff & 0x4000) out.push("DF ");
  if (fragOff & 0x2000) out.push("MF ");
  const offsetField = fragOff & 0x1fff;
  if (offsetField) out.push(`FRAG:${offsetField} `);
  if (logflags & NF_LOG_IPOPT && ihl > 20) {
    if (iphoff + ihl > b.length) {
      out.push("TRUNCATED");
      return;
    }
    let s = "OPT (";
    for (let i = 20; i < ihl; i++) s += hex2u(b[iphoff + i]);
    out.push(s + ") ");
  }
  const l4 = iphoff + ihl;
  const fragment = offsetField !== 0;
  switch (proto) {
    case IPPROTO_TCP:
      if (dumpTcpHeader(out, b, fragment, l4, logflags)) return;
      break;
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
      if (dumpUdpHeader(out, b, proto, fragment, l4)) return;
      break;
    case IPPROTO_ICMP: {
      out.push("PROTO=ICMP ");
      if (fragment) break;
      const avail = b.length - l4;
      if (avail < 8) {
        out.push(`INCOMPLETE [${avail} bytes] `);
        break;
      }
      const type = b[l4];
      const code = b[l4 + 1];
      out.push(`TYPE=${type} CODE=${code} `);
      const req = type <= NR_ICMP_TYPES ? ICMP_REQUIRED_LEN[type] : undefined;
      if (req && avail < req) {
        out.push(`INCOMPLETE [${avail} bytes] `);
        break;
      }
      switch (type) {
        case 0:
        case 8:
          out.push(`ID=${u16(b, l4 + 4)} SEQ=${u16(b, l4 + 6)} `);
          break;
        case 12:
          out.push(`PARAMETER=${b[l4 + 4]} `);
          break;
        case 5:
        case 3:
        case 4:
        case 11:
          if (type === 5) out.push(`GATEWAY=${formatIpv4(u32(b, l4 + 4))} `);
          if (iphoff === 0) {
            out.push("[");
            dumpIpv4(out, b, l4 + 8, logflags, subject);
            out.push("] ");
          }
          if (type === 3 && code === 4) out.push(`MTU=${u16(b, l4 + 6)} `);
          break;
      }
      break;
    }
    case IPPROTO_AH: {
      if (fragment) break;
      out.push("PROTO=AH ");
      if (l4 + 12 > b.length) {
        out.push(`INCOMPLETE [${b.length - l4} bytes] `);
        break;
      }
      out.push(`SPI=0x${u32(b, l4 + 4).toString(16)} `);
      break;
    }
    case IPPROTO_ESP: {
      out.push("PROTO=ESP ");
      if (fragment) break;
      if (l4 + 8 > b.length) {
        out.push(`INCOMPLETE [${b.length - l4} bytes] `);
        break;
      }
      out.push(`SPI=0x${u32(b, l4).toString(16)} `);
      break;
    }
    default:
      out.push(`PROTO=${proto} `);
  }
  if (logflags & NF_LOG_UID && iphoff === 0 && subject.owner) {
    out.push(`UID=${subject.owner.uid} GID=${subject.owner.gid} `);
  }
  if (iphoff === 0 && subject.mark !== 0) out.push(`MARK=0x${(subject.mark >>> 0).toString(16)} `);
}

/**
 * nf_log_ip_packet without the syslog level: `<prefix>IN=.. OUT=.. [MAC=..] SRC=... ` with the trailing space.
 */
export function nfLogPacket(prefix: string, subject: NfLogSubject, info: NfLogInfo): string {
  return prefix + nfLogBody(subject, info);
}

/** What nf_log_ip_packet prints after the prefix: `IN=.. OUT=.. [MAC=..] SRC=... `. */
export function nfLogBody(subject: NfLogSubject, info: NfLogInfo): string {
  const out: string[] = [`IN=${subject.inIface ?? ""} OUT=${subject.outIface ?? ""} `];
  if (subject.inIface !== undefined) dumpMacHeader(out, info.logflags, subject.link);
  // nf_log prints no checksum: the packet's bytes with its checksums as carried, not recomputed.
  dumpIpv4(out, encodeIpv4(subject.pkt, "carried"), 0, info.logflags, subject);
  return out.join("");
}

/**
 * The last TRACE body formatted, by the identity of what it was formatted from (Packet and LinkHeader values
 * are never mutated): consecutive TRACE entries of one packet at one hook print the same body.
 */
let lastTrace: (NfLogSubject & { readonly body: string }) | undefined;

/** One TRACE line as /dev/kmsg shows it: `TRACE: raw:PREROUTING:policy:2 IN=eth0 ...`. */
export function nfLogTrace(
  table: string,
  chain: string,
  comment: TraceComment,
  rulenum: number,
  subject: NfLogSubject,
): string {
  const m = lastTrace;
  let body: string;
  if (
    m !== undefined &&
    m.pkt === subject.pkt &&
    m.mark === subject.mark &&
    m.inIface === subject.inIface &&
    m.outIface === subject.outIface &&
    m.link === subject.link &&
    m.owner === subject.owner
  )
    body = m.body;
  else {
    body = nfLogBody(subject, TRACE_LOGINFO);
    // A literal with every field, not a spread: spreads of subjects of several shapes took V8's slow path.
    lastTrace = {
      pkt: subject.pkt,
      mark: subject.mark,
      inIface: subject.inIface,
      outIface: subject.outIface,
      link: subject.link,
      owner: subject.owner,
      body,
    };
  }
  return `TRACE: ${table}:${chain}:${comment}:${rulenum} ${body}`;
}
