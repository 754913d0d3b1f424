/**
 * Reader for packets as people paste them from `tcpdump` (IPv4 only).
 *
 * Mirrors the output format of tcpdump 4.99 (the-tcpdump-group/tcpdump): print-ip.c `ip_print` (the `-v`
 * header `IP (tos .., ttl .., id .., offset .., flags [..], proto .. (N), length ..)`), print-tcp.c
 * `tcp_print` (`Flags [S.]`, `cksum`, `seq A:B`, `ack`, `win`, `urg`, `options [..]`, `length`), print-udp.c
 * `udp_print` (`UDP, length N`, `[udp sum ok]`, application decoders ending in `(N)` or `length N`),
 * print-icmp.c `icmp_print` (echo, unreachable, redirect, time exceeded, parameter problem, with the quoted
 * packet on the following lines under `-v`), print-geneve.c / print-vxlan.c (encapsulated packet lines),
 * print-sll.c (`-i any`: `eth0  In  IP ..`), print-ether.c (`-e`: `MAC > MAC, ethertype IPv4 (0x0800), length N:`),
 * and the timestamp forms of `-t` (none), `-tt` (epoch), `-ttt` (delta), `-tttt` (date) and `-#` numbering.
 *
 * Leaves out on purpose: IPv6, ARP and other ethertypes (reported as skipped lines), IP options (the text
 * cannot be turned back into option bytes; the header is taken as 20 bytes), payload bytes, host names
 * (`-n` is required; well-known port *names* such as `https` are understood, see PORT_NAMES), relative
 * sequence numbers (tcpdump prints them without `-S`; they cannot be told apart from absolute ones and are
 * taken as absolute), and tcpdump `-q` output (`tcp 0`: no flags, reported as an error).
 *
 * Fields tcpdump did not print take the values in TEXT_DEFAULTS. No I/O: the CLI feeds text in.
 */
import type { Diagnostic } from "../errors";
import { parseIpv4, parseMac } from "./addr";
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_PARAMETERPROB,
  ICMP_REDIRECT,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_AE,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
} from "./packet";
import type {
  ChecksumStatus,
  Direction,
  IcmpHeader,
  IcmpQuote,
  Ipv4Header,
  L4Header,
  LinkHeader,
  Packet,
  TcpHeader,
  TcpOption,
} from "./packet";

/**
 * Values used for fields the text did not carry. They are what a Linux host sends by default, except where
 * noted; `ctsim read --help` prints this table.
 */
export const TEXT_DEFAULTS = {
  /** IP TTL when no `-v` header was printed (Linux net.ipv4.ip_default_ttl). */
  ttl: 64,
  tos: 0,
  id: 0,
  df: false,
  /** TCP window when the line has no `win` (only tcpdump -q output lacks it); Linux's SYN window for MSS 1460. */
  window: 64240,
  /** TCP sequence number when tcpdump did not print one (pure ACKs without payload). */
  seq: 0,
  /** Checksums not printed are "unknown" (treated as correct downstream); the checksum field itself is 0. */
  checksum: 0,
  /** Capture time when the line has no timestamp. */
  tsSec: 0,
  tsNsec: 0,
} as const;

/** Human-readable form of TEXT_DEFAULTS for help text. */
export const TEXT_DEFAULTS_HELP = [
  `Fields tcpdump did not print are filled in: ttl ${TEXT_DEFAULTS.ttl}, tos 0, id 0, DF clear,`,
  `TCP win ${TEXT_DEFAULTS.window}, seq 0 when not printed, no TCP options, checksums "unknown" (treated as`,
  `correct), time 0 when there is no timestamp (HH:MM:SS stamps count from 1970-01-01 unless a base date is`,
  `given), interface from --in. Relative seq/ack numbers (tcpdump without -S) are taken as absolute.`,
].join("\n");

/** Well-known port names tcpdump prints without `-nn` (from a typical /etc/services). */
export const PORT_NAMES: Readonly<Record<string, number>> = {
  "ftp-data": 20,
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  bootps: 67,
  bootpc: 68,
  tftp: 69,
  http: 80,
  www: 80,
  kerberos: 88,
  pop3: 110,
  sunrpc: 111,
  auth: 113,
  ntp: 123,
  "netbios-ns": 137,
  "netbios-dgm": 138,
  "netbios-ssn": 139,
  imap: 143,
  snmp: 161,
  "snmp-trap": 162,
  snmptrap: 162,
  bgp: 179,
  ldap: 389,
  https: 443,
  "microsoft-ds": 445,
  isakmp: 500,
  syslog: 514,
  submission: 587,
  ldaps: 636,
  imaps: 993,
  pop3s: 995,
  pptp: 1723,
  nfs: 2049,
  mysql: 3306,
  "ms-wbt-server": 3389,
  "ipsec-nat-t": 4500,
  postgresql: 5432,
  "http-alt": 8080,
  geneve: 6081,
};

/** TCP flag letters in tcpdump's order (print-tcp.c tcp_flag_values); ACK prints as ".", AE as "e". */
export const TCP_FLAG_LETTERS: ReadonlyArray<readonly [number, string]> = [
  [TCP_FIN, "F"],
  [TCP_SYN, "S"],
  [TCP_RST, "R"],
  [TCP_PSH, "P"],
  [TCP_ACK, "."],
  [TCP_URG, "U"],
  [TCP_ECE, "E"],
  [TCP_CWR, "W"],
  [TCP_AE, "e"],
];

/** print-icmp.c unreach2str: ICMP_DEST_UNREACH codes printed with the quoted destination address. */
export const ICMP_UNREACH_TEMPLATES: ReadonlyArray<readonly [code: number, template: string]> = [
  [0, "net %s unreachable"],
  [1, "host %s unreachable"],
  [5, "%s unreachable - source route failed"],
  [6, "net %s unreachable - unknown"],
  [7, "host %s unreachable - unknown"],
  [8, "%s unreachable - source host isolated"],
  [9, "net %s unreachable - admin prohibited"],
  [10, "host %s unreachable - admin prohibited"],
  [11, "net %s unreachable - tos prohibited"],
  [12, "host %s unreachable - tos prohibited"],
  [13, "host %s unreachable - admin prohibited filter"],
  [14, "host %s unreachable - host precedence violation"],
  [15, "host %s unreachable - precedence cutoff"],
];

/** print-icmp.c type2str: ICMP_REDIRECT codes (quoted destination, then gateway). */
export const ICMP_REDIRECT_TEMPLATES: ReadonlyArray<readonly [code: number, template: string]> = [
  [0, "redirect %s to net %s"],
  [1, "redirect %s to host %s"],
  [2, "redirect-tos %s to net %s"],
  [3, "redirect-tos %s to host %s"],
];

/** print-icmp.c icmp2str for types printed by name only. */
export const ICMP_SIMPLE_TYPES: ReadonlyArray<readonly [type: number, name: string]> = [
  [ICMP_SOURCE_QUENCH, "source quench"],
  [9, "router advertisement"],
  [10, "router solicitation"],
  [15, "information request"],
  [16, "information reply"],
  [17, "address mask request"],
];

/** Protocol names in the `-v` header (tcpdump's ipproto_values). */
export const IPPROTO_NAMES: Readonly<Record<number, string>> = {
  1: "ICMP",
  2: "IGMP",
  4: "IPIP",
  6: "TCP",
  17: "UDP",
  47: "GRE",
  50: "ESP",
  51: "AH",
  103: "PIM",
  112: "VRRP",
  132: "SCTP",
};

/** Named TCP options with no value we can rebuild, kept as "unknown" with their kind number. */
const TCP_OPTION_NAMES: Readonly<Record<string, number>> = {
  md5: 19,
  utoopt: 28,
  "tcp-ao": 29,
  mptcp: 30,
  tfo: 34,
};

export interface TextReaderOptions {
  /** File name for diagnostics and packet origins. */
  file?: string;
  /** Interface for lines that do not name one (`-i any` output does). */
  defaultIface?: string;
  /** Skip and count bad lines instead of reporting them as errors. */
  lenient?: boolean;
  /** Epoch seconds of the day that `HH:MM:SS` timestamps belong to (default 0, 1970-01-01 UTC). */
  baseDate?: number;
}

/** One result of reading: a packet, a line that was skipped (non-IPv4, or bad in lenient mode), or an error. */
export type TextRecord =
  | { readonly kind: "packet"; readonly packet: Packet; readonly line: number }
  | {
      readonly kind: "skipped";
      readonly line: number;
      readonly reason: string;
      readonly diagnostic?: Diagnostic;
    }
  | { readonly kind: "error"; readonly line: number; readonly diagnostic: Diagnostic };

export interface TextParseResult {
  packets: Packet[];
  /** Bad lines (strict mode only). */
  errors: Diagnostic[];
  /** Lines skipped: bad lines in lenient mode, and non-IPv4 lines in either mode. */
  skipped: number;
  records: TextRecord[];
}

/** Parses a whole text; see TextReader for the incremental form. */
export function parseTcpdumpText(text: string, opts: TextReaderOptions = {}): TextParseResult {
  const reader = new TextReader(opts);
  const records = [...reader.push(text), ...reader.end()];
  const result: TextParseResult = { packets: [], errors: [], skipped: 0, records };
  for (const r of records) {
    if (r.kind === "packet") result.packets.push(r.packet);
    else if (r.kind === "error") result.errors.push(r.diagnostic);
    else result.skipped++;
  }
  return result;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Internals                                                                                                     */

class ParseFail {
  constructor(
    readonly code: string,
    readonly message: string,
    /** 0-based index into the line. */
    readonly index: number,
  ) {}
}

function fail(code: string, message: string, index: number): never {
  throw new ParseFail(code, message, index);
}

interface LinePrefix {
  hasTs: boolean;
  tsSec: number;
  tsNsec: number;
  iface?: string;
  direction?: Direction;
  link?: LinkHeader;
  /** Index where the IP part starts (after the prefix). */
  rest: number;
  /** The line started with whitespace. */
  indented: boolean;
  /** A `-e` / cooked-capture "ethertype IPv4" prefix was read. */
  ether?: boolean;
}

interface IpText {
  tos: number;
  ttl: number;
  id: number;
  rf: boolean;
  df: boolean;
  mf: boolean;
  fragOffset: number;
  protocol: number;
  totalLength: number;
  ipChecksum: ChecksumStatus;
  checksum: number;
}

/** The transport part of an address line, before lengths are reconciled with the IP header. */
interface L4Text {
  protocol: number;
  l4: L4Header;
  /** Payload length when the line printed it. */
  payloadLength?: number;
  l4Checksum: ChecksumStatus;
  /** For TCP: header length implied by the printed options. */
  optionBytes?: number;
  /** An ICMP error: the next `IP (` line (under -v) is the quoted packet. */
  wantsQuote?: boolean;
  /** Geneve/VXLAN: bytes of encapsulation before the inner IP header, when known. */
  encapOverhead?: number;
}

interface Built {
  packet: Packet;
  line: number;
  /** True when the IP header came from a `-v` line (total length known). */
  hasHeader: boolean;
  /** The packet line had a timestamp (then lines without one belong to it). */
  hasTs: boolean;
  wantsQuote: boolean;
  encapOverhead?: number;
}

const TS_CLOCK = /^(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?=\s|$)/;
const TS_DATE = /^(\d{4})-(\d{2})-(\d{2}) (\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?=\s|$)/;
const TS_EPOCH = /^(\d{1,12})\.(\d{1,9})(?=\s|$)/;
const DIRECTIONS: Readonly<Record<string, Direction>> = { In: "In", Out: "Out", P: "In", B: "In", M: "In" };
const NON_IPV4_WORDS = new Set([
  "MPLS",
  "IP6",
  "ARP,",
  "ARP",
  "RARP",
  "LLDP",
  "STP",
  "LLC",
  "LLC,",
  "IPX",
  "CDPv2,",
]);
const UINT32_MAX = 0xffffffff;

function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

function fracToNsec(frac: string | undefined): number {
  if (!frac) return 0;
  return Number(frac.padEnd(9, "0"));
}

function parseUint(text: string, max: number, index: number, what: string): number {
  if (!/^\d{1,10}$/.test(text))
    fail("TEXT_EXPECTED_NUMBER", `expected a number for ${what}, got "${text}"`, index);
  const n = Number(text);
  if (n > max) fail("TEXT_NUMBER_RANGE", `${what} ${n} is out of range (0..${max})`, index);
  return n;
}

function parseHex(text: string, max: number, index: number, what: string): number {
  const m = /^0x([0-9a-fA-F]{1,8})$/.exec(text) ?? /^([0-9a-fA-F]{1,8})$/.exec(text);
  if (!m) fail("TEXT_EXPECTED_HEX", `expected a hexadecimal ${what}, got "${text}"`, index);
  const n = parseInt(m[1], 16);
  if (n > max) fail("TEXT_NUMBER_RANGE", `${what} 0x${n.toString(16)} is out of range`, index);
  return n;
}

/** Splits `text` at top-level ", " (outside brackets/parens); returns pieces with their start offsets. */
function splitItems(text: string, base: number): Array<{ text: string; index: number }> {
  const out: Array<{ text: string; index: number }> = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "[" || c === "(" || c === "{") depth++;
    else if ((c === "]" || c === ")" || c === "}") && depth > 0) depth--;
    else if (c === "," && depth === 0 && text[i + 1] === " ") {
      out.push({ text: text.slice(start, i), index: base + start });
      start = i + 2;
      i++;
    }
  }
  out.push({ text: text.slice(start), index: base + start });
  return out;
}

function skipSpaces(line: string, i: number): number {
  while (i < line.length && (line[i] === " " || line[i] === "\t")) i++;
  return i;
}

function nextToken(line: string, i: number): string {
  let j = i;
  while (j < line.length && line[j] !== " " && line[j] !== "\t") j++;
  return line.slice(i, j);
}

/** Reads `-#` numbering, timestamp, `-i any` interface/direction and `-e` link prefix. */
function parsePrefix(
  line: string,
  state: { lastDaySec: number; dayOffset: number; baseDate: number },
): LinePrefix {
  let i = skipSpaces(line, 0);
  const indented = i > 0;
  const prefix: LinePrefix = { hasTs: false, tsSec: 0, tsNsec: 0, rest: i, indented };
  // `-#` packet number: digits followed by spaces, not part of a timestamp.
  const num = /^(\d+)\s+(?=\S)/.exec(line.slice(i));
  if (num && !/^\d+[.:-]/.test(line.slice(i))) i = skipSpaces(line, i + num[0].length);
  const rest = line.slice(i);
  let m: RegExpExecArray | null;
  if ((m = TS_DATE.exec(rest))) {
    const [, y, mo, d, h, mi, s, frac] = m;
    if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60 || Number(mo) > 12 || Number(d) > 31)
      fail("TEXT_BAD_TIMESTAMP", `bad timestamp "${m[0]}"`, i);
    prefix.tsSec = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000;
    prefix.tsNsec = fracToNsec(frac);
    prefix.hasTs = true;
    i += m[0].length;
  } else if ((m = TS_CLOCK.exec(rest))) {
    const [, h, mi, s, frac] = m;
    if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60)
      fail("TEXT_BAD_TIMESTAMP", `bad timestamp "${m[0]}"`, i);
    let daySec = Number(h) * 3600 + Number(mi) * 60 + Number(s);
    // A clock going back by more than 12 hours is taken as the next day.
    if (state.lastDaySec >= 0 && daySec + 43200 < state.lastDaySec) state.dayOffset += 86400;
    state.lastDaySec = daySec;
    daySec += state.dayOffset;
    prefix.tsSec = state.baseDate + daySec;
    prefix.tsNsec = fracToNsec(frac);
    prefix.hasTs = true;
    i += m[0].length;
  } else if ((m = TS_EPOCH.exec(rest))) {
    prefix.tsSec = Number(m[1]);
    prefix.tsNsec = fracToNsec(m[2]);
    prefix.hasTs = true;
    i += m[0].length;
  }
  i = skipSpaces(line, i);
  // `-i any`: "eth0  In  IP ...", or cooked capture "Out ethertype ...".
  const t1 = nextToken(line, i);
  const afterT1 = skipSpaces(line, i + t1.length);
  const t2 = nextToken(line, afterT1);
  if (own(DIRECTIONS, t1) && (t2 === "IP" || t2 === "ethertype")) {
    prefix.direction = own(DIRECTIONS, t1);
    i = afterT1;
  } else if (t1 && own(DIRECTIONS, t2) && !/^\d+\.\d+\.\d+\.\d+/.test(t1) && t1 !== "IP" && !parseMac(t1)) {
    const after2 = skipSpaces(line, afterT1 + t2.length);
    const t3 = nextToken(line, after2);
    if (
      t3 === "IP" ||
      t3 === "ethertype" ||
      t3 === "(tos" ||
      /^\d+\.\d+\.\d+\.\d+/.test(t3) ||
      NON_IPV4_WORDS.has(t3)
    ) {
      if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(t1)) fail("TEXT_BAD_IFACE", `bad interface name "${t1}"`, i);
      prefix.iface = t1;
      prefix.direction = own(DIRECTIONS, t2);
      i = after2;
    }
  }
  // `-e`: "MAC > MAC, ethertype IPv4 (0x0800), length N: " or "ethertype IPv4 (0x0800), length N: ".
  const eth =
    /^(?:([0-9a-fA-F:]{17}) > ([0-9a-fA-F:]{17}), )?ethertype (\S+) \((0x[0-9a-fA-F]{4})\), length \d+: /.exec(
      line.slice(i),
    );
  if (eth) {
    const ethertype = parseInt(eth[4], 16);
    if (ethertype !== 0x0800) throw new NotIpv4(`ethertype ${eth[3]} (${eth[4]})`);
    if (eth[1] && eth[2]) {
      const src = parseMac(eth[1]);
      const dst = parseMac(eth[2]);
      if (src === undefined || dst === undefined) fail("TEXT_BAD_MAC", "bad MAC address", i);
      prefix.link = { src, dst, ethertype, vlans: [] };
    }
    i += eth[0].length;
    prefix.ether = true;
  }
  prefix.rest = i;
  return prefix;
}

/** Thrown for lines that are tcpdump output but not IPv4 (IPv6, ARP, ...). */
class NotIpv4 {
  constructor(readonly what: string) {}
}

/** Parses `(tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 40)` starting at `(`. */
function parseIpHeader(line: string, start: number): { ip: IpText; end: number } {
  let depth = 0;
  let close = -1;
  for (let i = start; i < line.length; i++) {
    if (line[i] === "(") depth++;
    else if (line[i] === ")") {
      depth--;
      if (depth === 0) {
        close = i;
        break;
      }
    }
  }
  if (close < 0) fail("TEXT_UNTERMINATED_HEADER", 'expected ")" closing the IP header', line.length);
  const ip: IpText = {
    tos: TEXT_DEFAULTS.tos,
    ttl: 0, // tcpdump omits "ttl" only when it is 0
    id: 0,
    rf: false,
    df: false,
    mf: false,
    fragOffset: 0,
    protocol: -1,
    totalLength: -1,
    ipChecksum: "correct",
    checksum: 0,
  };
  for (const item of splitItems(line.slice(start + 1, close), start + 1)) {
    const words = item.text.split(" ");
    const key = words[0];
    const valIndex = item.index + key.length + 1;
    switch (key) {
      case "tos": {
        const [hex, ecn] = (words[1] ?? "").split(",");
        ip.tos = parseHex(hex, 0xff, valIndex, "tos");
        if (ecn !== undefined && !["ECT(0)", "ECT(1)", "CE"].includes(ecn))
          fail("TEXT_BAD_IP_FIELD", `unknown ECN mark "${ecn}"`, valIndex);
        break;
      }
      case "ttl":
        ip.ttl = parseUint(words[1] ?? "", 255, valIndex, "ttl");
        break;
      case "id":
        ip.id = parseUint(words[1] ?? "", 0xffff, valIndex, "id");
        break;
      case "offset": {
        const off = parseUint(words[1] ?? "", 0xffff, valIndex, "offset");
        if (off % 8 !== 0 || off / 8 > 0x1fff)
          fail("TEXT_BAD_IP_FIELD", `fragment offset ${off} is not a multiple of 8 below 65536`, valIndex);
        ip.fragOffset = off / 8;
        break;
      }
      case "flags": {
        const m = /^flags \[([^\]]*)\]$/.exec(item.text);
        if (!m) fail("TEXT_BAD_IP_FIELD", 'expected "flags [..]"', valIndex);
        if (m[1] !== "none") {
          for (const part of m[1].split(/,\s*/)) {
            let rest = part;
            while (rest.length) {
              if (rest.startsWith("DF")) ((ip.df = true), (rest = rest.slice(2)));
              else if (rest.startsWith("+")) ((ip.mf = true), (rest = rest.slice(1)));
              else if (rest.startsWith("rsvd")) ((ip.rf = true), (rest = rest.slice(4)));
              else fail("TEXT_BAD_IP_FIELD", `unknown IP flag "${rest}"`, valIndex);
            }
          }
        }
        break;
      }
      case "proto": {
        const m = /^proto \S+ \((\d{1,3})\)$/.exec(item.text);
        if (!m) fail("TEXT_BAD_IP_FIELD", 'expected "proto NAME (N)"', valIndex);
        ip.protocol = parseUint(m[1], 255, valIndex, "protocol");
        break;
      }
      case "length":
        ip.totalLength = parseUint(words[1] ?? "", 0xffff, valIndex, "length");
        break;
      case "bad": {
        const m = /^bad cksum ([0-9a-f]{1,4})\b/.exec(item.text);
        if (!m) fail("TEXT_BAD_IP_FIELD", 'expected "bad cksum HEX"', item.index);
        ip.ipChecksum = "incorrect";
        ip.checksum = parseInt(m[1], 16);
        break;
      }
      case "options":
        break; // IP options are not rebuilt (see header comment)
      default:
        fail("TEXT_BAD_IP_FIELD", `unknown IP header field "${key}"`, item.index);
    }
  }
  if (ip.protocol < 0) fail("TEXT_BAD_IP_FIELD", 'IP header has no "proto"', close);
  if (ip.totalLength < 0) fail("TEXT_BAD_IP_FIELD", 'IP header has no "length"', close);
  if (ip.totalLength < 20) fail("TEXT_NUMBER_RANGE", `IP length ${ip.totalLength} is below 20`, close);
  return { ip, end: close + 1 };
}

/** `a.b.c.d` or `a.b.c.d.port` (port numeric or a name from PORT_NAMES). */
function parseEndpoint(text: string, index: number): { addr: number; port?: number } {
  const m = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:\.([A-Za-z0-9-]+))?$/.exec(text);
  if (!m) fail("TEXT_EXPECTED_ADDRESS", `expected an IPv4 address, got "${text}"`, index);
  const addr = parseIpv4(m[1]);
  if (addr === undefined) fail("TEXT_BAD_ADDRESS", `bad IPv4 address "${m[1]}"`, index);
  if (m[2] === undefined) return { addr };
  const portIndex = index + m[1].length + 1;
  if (/^\d+$/.test(m[2])) return { addr, port: parseUint(m[2], 0xffff, portIndex, "port") };
  const named = own(PORT_NAMES, m[2]);
  if (named === undefined)
    fail("TEXT_UNKNOWN_PORT_NAME", `unknown port name "${m[2]}" (use tcpdump -nn)`, portIndex);
  return { addr, port: named };
}

function tcpOptionBytes(o: TcpOption): number {
  switch (o.kind) {
    case "eol":
    case "nop":
      return 1;
    case "mss":
      return 4;
    case "wscale":
      return 3;
    case "sackPermitted":
      return 2;
    case "sack":
      return 2 + 8 * o.blocks.length;
    case "timestamp":
      return 10;
    case "unknown":
      return 2 + o.data.length;
  }
}

function parseTcpOptions(text: string, index: number): TcpOption[] {
  const out: TcpOption[] = [];
  let pos = 0;
  for (const raw of text.split(",")) {
    const at = index + pos;
    pos += raw.length + 1;
    const item = raw.trim();
    let m: RegExpExecArray | null;
    if (item === "nop") out.push({ kind: "nop" });
    else if (item === "eol") out.push({ kind: "eol" });
    else if (item === "sackOK") out.push({ kind: "sackPermitted" });
    else if ((m = /^mss (\d+)$/.exec(item)))
      out.push({ kind: "mss", value: parseUint(m[1], 0xffff, at, "mss") });
    else if ((m = /^wscale (\d+)$/.exec(item)))
      out.push({ kind: "wscale", shift: parseUint(m[1], 255, at, "wscale") });
    else if ((m = /^TS val (\d+) ecr (\d+)$/.exec(item)))
      out.push({
        kind: "timestamp",
        tsval: parseUint(m[1], UINT32_MAX, at, "TS val"),
        tsecr: parseUint(m[2], UINT32_MAX, at, "TS ecr"),
      });
    else if ((m = /^sack (\d+) ((?:\{\d+:\d+\})*)$/.exec(item))) {
      const blocks: Array<readonly [number, number]> = [];
      for (const b of m[2].matchAll(/\{(\d+):(\d+)\}/g))
        blocks.push([parseUint(b[1], UINT32_MAX, at, "sack"), parseUint(b[2], UINT32_MAX, at, "sack")]);
      if (blocks.length !== Number(m[1]) || blocks.length > 4)
        fail("TEXT_BAD_TCP_OPTION", `sack says ${m[1]} blocks, lists ${blocks.length}`, at);
      out.push({ kind: "sack", blocks });
    } else if ((m = /^unknown-(\d+)(?: 0x([0-9a-f]*))?$/.exec(item))) {
      const type = parseUint(m[1], 255, at, "option kind");
      const hex = m[2] ?? "";
      if (hex.length % 2 || hex.length > 76) fail("TEXT_BAD_TCP_OPTION", "bad option data", at);
      const data = new Uint8Array(hex.length / 2);
      for (let k = 0; k < data.length; k++) data[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
      out.push({ kind: "unknown", type, data });
    } else {
      const name = item.split(" ")[0];
      const type = own(TCP_OPTION_NAMES, name) ?? (name.startsWith("exp") ? 254 : undefined);
      if (type === undefined) fail("TEXT_BAD_TCP_OPTION", `unknown TCP option "${item}"`, at);
      out.push({ kind: "unknown", type, data: new Uint8Array(0) });
    }
  }
  return out;
}

function parseTcpFlags(text: string, index: number): number {
  if (text === "none") return 0;
  let flags = 0;
  for (let k = 0; k < text.length; k++) {
    const entry = TCP_FLAG_LETTERS.find(([, letter]) => letter === text[k]);
    if (!entry) fail("TEXT_BAD_TCP_FLAGS", `unknown TCP flag "${text[k]}"`, index + k);
    flags |= entry[0];
  }
  return flags;
}

function parseTcp(line: string, at: number, sport: number, dport: number): L4Text {
  const rest = line.slice(at);
  if (/^tcp \d+/.test(rest) || rest.startsWith("[|tcp]"))
    fail("TEXT_TCP_NO_FLAGS", "TCP line without flags (tcpdump -q or truncated); run tcpdump without -q", at);
  const fm = /^Flags \[([^\]]*)\]/.exec(rest);
  if (!fm) fail("TEXT_EXPECTED_FLAGS", 'expected "Flags [..]" after the TCP ports', at);
  const flags = parseTcpFlags(fm[1], at + 7);
  let seq: number = TEXT_DEFAULTS.seq;
  let ack = 0;
  let window: number = TEXT_DEFAULTS.window;
  let urg = 0;
  let options: TcpOption[] = [];
  let payloadLength: number | undefined;
  let seqEnd: number | undefined;
  let checksum: number = TEXT_DEFAULTS.checksum;
  let status: ChecksumStatus = "unknown";
  const items = splitItems(rest.slice(fm[0].length), at + fm[0].length);
  if (items[0].text !== "") fail("TEXT_BAD_TCP_FIELD", 'expected ", " after the flags', items[0].index);
  for (const item of items.slice(1)) {
    const words = item.text.split(" ");
    const vi = item.index + words[0].length + 1;
    switch (words[0]) {
      case "cksum": {
        checksum = parseHex(words[1] ?? "", 0xffff, vi, "checksum");
        const st = item.text.slice(words[0].length + 1 + (words[1] ?? "").length).trim();
        if (st === "(correct)") status = "correct";
        else if (/^\(incorrect\b/.test(st)) status = "incorrect";
        else if (st === "" || st === "(unverified)") status = "unknown";
        else fail("TEXT_BAD_TCP_FIELD", `unknown checksum status "${st}"`, vi);
        break;
      }
      case "seq": {
        const m = /^(\d+)(?::(\d+))?$/.exec(words[1] ?? "");
        if (!m || words.length !== 2) fail("TEXT_BAD_TCP_FIELD", 'expected "seq N" or "seq A:B"', vi);
        seq = parseUint(m[1], UINT32_MAX, vi, "seq");
        if (m[2] !== undefined) seqEnd = parseUint(m[2], UINT32_MAX, vi, "seq");
        break;
      }
      case "ack":
        if (words.length !== 2) fail("TEXT_BAD_TCP_FIELD", 'expected "ack N"', vi);
        ack = parseUint(words[1], UINT32_MAX, vi, "ack");
        break;
      case "win":
        if (words.length !== 2) fail("TEXT_BAD_TCP_FIELD", 'expected "win N"', vi);
        window = parseUint(words[1], 0xffff, vi, "win");
        break;
      case "urg":
        if (words.length !== 2) fail("TEXT_BAD_TCP_FIELD", 'expected "urg N"', vi);
        urg = parseUint(words[1], 0xffff, vi, "urg");
        break;
      case "options": {
        const m = /^options \[(.*)\]$/.exec(item.text);
        if (!m) fail("TEXT_BAD_TCP_FIELD", 'expected "options [..]"', vi);
        options = parseTcpOptions(m[1], vi + 1);
        break;
      }
      case "length": {
        const m = /^length (\d+)(?=$|[: ])/.exec(item.text);
        if (!m) fail("TEXT_BAD_TCP_FIELD", 'expected "length N"', vi);
        payloadLength = parseUint(m[1], 0xffff, vi, "length");
        break;
      }
      default:
        // Anything after "length" is payload description (HTTP, SSH, RST data...).
        if (payloadLength === undefined)
          fail("TEXT_BAD_TCP_FIELD", `unknown TCP field "${words[0]}"`, item.index);
    }
    if (payloadLength !== undefined && words[0] === "length") break;
  }
  if (payloadLength === undefined && seqEnd !== undefined) payloadLength = (seqEnd - seq) >>> 0;
  let optionBytes = 0;
  for (const o of options) optionBytes += tcpOptionBytes(o);
  if (optionBytes > 40)
    fail("TEXT_BAD_TCP_OPTION", `TCP options take ${optionBytes} bytes, more than 40`, at);
  const dataOffset = 20 + Math.ceil(optionBytes / 4) * 4;
  const l4: TcpHeader = {
    kind: "tcp",
    srcPort: sport,
    dstPort: dport,
    seq,
    ack,
    dataOffset,
    reserved: 0,
    flags,
    window,
    checksum,
    urgentPointer: urg,
    options,
  };
  return { protocol: IPPROTO_TCP, l4, payloadLength, l4Checksum: status, optionBytes: dataOffset };
}

function parseUdp(line: string, at: number, sport: number, dport: number): L4Text {
  let rest = line.slice(at);
  let status: ChecksumStatus = "unknown";
  let checksum = 0;
  let m: RegExpExecArray | null;
  if (rest.startsWith("[udp sum ok]")) {
    status = "correct";
    rest = rest.slice(12);
  } else if (rest.startsWith("[no cksum]")) {
    status = "correct";
    rest = rest.slice(10);
  } else if ((m = /^\[bad udp cksum 0x([0-9a-f]{1,4}) -> 0x[0-9a-f?]{1,4}!\]/.exec(rest))) {
    status = "incorrect";
    checksum = parseInt(m[1], 16);
    rest = rest.slice(m[0].length);
  }
  rest = rest.trimStart();
  let payloadLength: number | undefined;
  let encapOverhead: number | undefined;
  if ((m = /^(?:UDP|udp),? length:? (\d+)/.exec(rest)) || (m = /^udp (\d+)/.exec(rest)))
    payloadLength = parseUint(m[1], 0xffff, at, "length");
  else if ((m = /^[A-Za-z0-9-]+(?:v\d)?, length:? (\d+)/.exec(rest)))
    payloadLength = parseUint(m[1], 0xffff, at, "length");
  else if ((m = /\((\d+)\)$/.exec(rest))) payloadLength = parseUint(m[1], 0xffff, at, "length");
  if (rest.startsWith("Geneve")) {
    // print-geneve.c: 8-byte header plus options ("len N" is each option's full length); inner Ethernet
    // header (14 bytes, not printed without -e) unless a non-TEB "proto" was printed.
    let opts = 0;
    for (const o of rest.matchAll(/\blen (\d+) data\b/g)) opts += Number(o[1]);
    const bytes = /options \[(\d+) bytes\]/.exec(rest);
    if (bytes) opts = Number(bytes[1]);
    const proto = /, proto \S+ \((0x[0-9a-f]{4})\)/.exec(rest);
    encapOverhead = 8 + opts + (proto && proto[1] !== "0x6558" ? 0 : 14);
  } else if (rest.startsWith("VXLAN")) encapOverhead = 8 + 14;
  const l4 = {
    kind: "udp" as const,
    srcPort: sport,
    dstPort: dport,
    length: 8 + (payloadLength ?? 0),
    checksum,
  };
  return { protocol: IPPROTO_UDP, l4, payloadLength, l4Checksum: status, encapOverhead };
}

function templateRegex(template: string): RegExp {
  const body = template
    .split("%s")
    .map((s) => s.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&"))
    .join("(\\d+\\.\\d+\\.\\d+\\.\\d+)");
  return new RegExp(`^${body}$`);
}
const UNREACH_RES = ICMP_UNREACH_TEMPLATES.map(([code, t]) => [code, templateRegex(t)] as const);
const REDIRECT_RES = ICMP_REDIRECT_TEMPLATES.map(([code, t]) => [code, templateRegex(t)] as const);

function addr(text: string, index: number): number {
  const a = parseIpv4(text);
  if (a === undefined) fail("TEXT_BAD_ADDRESS", `bad IPv4 address "${text}"`, index);
  return a;
}

/** Builds the 8 quoted transport bytes for an ICMP error from what is known. */
export function quoteL4Bytes(protocol: number, sport: number, dport: number, word2: number): Uint8Array {
  const b = new Uint8Array(8);
  if (protocol === IPPROTO_ICMP) {
    b[0] = sport; // type
    b[1] = dport; // code
    b[4] = (word2 >>> 24) & 0xff;
    b[5] = (word2 >>> 16) & 0xff;
    b[6] = (word2 >>> 8) & 0xff;
    b[7] = word2 & 0xff;
    return b;
  }
  b[0] = sport >>> 8;
  b[1] = sport & 0xff;
  b[2] = dport >>> 8;
  b[3] = dport & 0xff;
  b[4] = (word2 >>> 24) & 0xff;
  b[5] = (word2 >>> 16) & 0xff;
  b[6] = (word2 >>> 8) & 0xff;
  b[7] = word2 & 0xff;
  return b;
}

function makeQuoteIp(src: number, dst: number, protocol: number, totalLength: number): Ipv4Header {
  return {
    ihl: 20,
    tos: TEXT_DEFAULTS.tos,
    totalLength,
    id: TEXT_DEFAULTS.id,
    rf: false,
    df: TEXT_DEFAULTS.df,
    mf: false,
    fragOffset: 0,
    ttl: TEXT_DEFAULTS.ttl,
    protocol,
    checksum: 0,
    src,
    dst,
    options: new Uint8Array(0),
  };
}

function parseIcmp(line: string, at: number, outerSrc: number, outerDst: number): L4Text {
  const full = line.slice(at);
  if (!full.startsWith("ICMP ")) fail("TEXT_EXPECTED_ICMP", 'expected "ICMP" after the addresses', at);
  const base = at + 5;
  let desc = full.slice(5).replace(/ \(wrong icmp cksum [0-9a-f]+ \(->[0-9a-f?]+\)!\)$/, "");
  const wrong = desc.length !== full.length - 5;
  let icmpLength: number | undefined;
  const lm = /, length (\d+)$/.exec(desc);
  if (lm) {
    icmpLength = parseUint(lm[1], 0xffff, base + lm.index + 9, "length");
    desc = desc.slice(0, lm.index);
  }
  let type = -1;
  let code = 0;
  let rest = 0;
  let quote: IcmpQuote | undefined;
  let m: RegExpExecArray | null;
  const mkQuote = (dst: number, protocol: number, dport: number) => {
    quote = {
      ip: makeQuoteIp(outerDst, dst, protocol, protocol === IPPROTO_TCP ? 40 : 28),
      l4: quoteL4Bytes(protocol, 0, dport, 0),
    };
  };
  if ((m = /^echo (request|reply), id (\d+), seq (\d+)$/.exec(desc))) {
    type = m[1] === "request" ? ICMP_ECHO : ICMP_ECHOREPLY;
    rest = ((parseUint(m[2], 0xffff, base, "id") << 16) | parseUint(m[3], 0xffff, base, "seq")) >>> 0;
  } else if ((m = /^(\S+) (udp|tcp) port (\S+) unreachable$/.exec(desc))) {
    type = ICMP_DEST_UNREACH;
    code = 3;
    const protocol = m[2] === "udp" ? IPPROTO_UDP : IPPROTO_TCP;
    const p = /^\d+$/.test(m[3]) ? parseUint(m[3], 0xffff, base, "port") : own(PORT_NAMES, m[3]);
    if (p === undefined) fail("TEXT_UNKNOWN_PORT_NAME", `unknown port name "${m[3]}"`, base);
    mkQuote(addr(m[1], base), protocol, p);
  } else if ((m = /^(\S+) protocol (\d+) port (\d+) unreachable$/.exec(desc))) {
    type = ICMP_DEST_UNREACH;
    code = 3;
    mkQuote(addr(m[1], base), parseUint(m[2], 255, base, "protocol"), parseUint(m[3], 0xffff, base, "port"));
  } else if ((m = /^(\S+) protocol (\d+) unreachable$/.exec(desc))) {
    type = ICMP_DEST_UNREACH;
    code = 2;
    mkQuote(addr(m[1], base), parseUint(m[2], 255, base, "protocol"), 0);
  } else if ((m = /^(\S+) unreachable - need to frag(?: \(mtu (\d+)\))?$/.exec(desc))) {
    type = ICMP_DEST_UNREACH;
    code = 4;
    rest = m[2] ? parseUint(m[2], 0xffff, base, "mtu") : 0;
    addr(m[1], base);
  } else if ((m = /^#(\d+) (\S+) unreachable$/.exec(desc))) {
    type = ICMP_DEST_UNREACH;
    code = parseUint(m[1], 255, base, "code");
    addr(m[2], base);
  } else if (desc === "time exceeded in-transit") type = ICMP_TIME_EXCEEDED;
  else if (desc === "ip reassembly time exceeded") ((type = ICMP_TIME_EXCEEDED), (code = 1));
  else if ((m = /^time exceeded-#(\d+)$/.exec(desc)))
    ((type = ICMP_TIME_EXCEEDED), (code = parseUint(m[1], 255, base, "code")));
  else if ((m = /^parameter problem - octet (\d+)$/.exec(desc)))
    ((type = ICMP_PARAMETERPROB), (rest = (parseUint(m[1], 255, base, "pointer") << 24) >>> 0));
  else if ((m = /^parameter problem - code (\d+)$/.exec(desc)))
    ((type = ICMP_PARAMETERPROB), (code = parseUint(m[1], 255, base, "code")));
  else if ((m = /^time stamp (query|reply) id (\d+) seq (\d+)(?: :.*)?$/.exec(desc))) {
    type = m[1] === "query" ? ICMP_TIMESTAMP : ICMP_TIMESTAMPREPLY;
    rest = ((parseUint(m[2], 0xffff, base, "id") << 16) | parseUint(m[3], 0xffff, base, "seq")) >>> 0;
  } else if ((m = /^type-#(\d+)$/.exec(desc))) type = parseUint(m[1], 255, base, "type");
  else {
    for (const [c, re] of UNREACH_RES) {
      if ((m = re.exec(desc))) {
        type = ICMP_DEST_UNREACH;
        code = c;
        addr(m[1], base);
        break;
      }
    }
    if (type < 0)
      for (const [c, re] of REDIRECT_RES) {
        if ((m = re.exec(desc))) {
          type = ICMP_REDIRECT;
          code = c;
          addr(m[1], base);
          rest = addr(m[2], base);
          break;
        }
      }
    if (type < 0)
      for (const [t, name] of ICMP_SIMPLE_TYPES) if (desc === name || desc.startsWith(name + " ")) type = t;
  }
  if (type < 0) fail("TEXT_BAD_ICMP", `unrecognised ICMP description "${desc}"`, base);
  void outerSrc;
  const isError = [
    ICMP_DEST_UNREACH,
    ICMP_SOURCE_QUENCH,
    ICMP_REDIRECT,
    ICMP_TIME_EXCEEDED,
    ICMP_PARAMETERPROB,
  ].includes(type);
  const l4: IcmpHeader = {
    kind: "icmp",
    type,
    code,
    checksum: 0,
    restOfHeader: rest,
    ...(quote ? { quote } : {}),
  };
  const headerLen = 8 + (quote ? quote.ip.ihl + quote.l4.length : 0);
  return {
    protocol: IPPROTO_ICMP,
    l4,
    payloadLength: icmpLength === undefined ? undefined : Math.max(0, icmpLength - headerLen),
    l4Checksum: wrong ? "incorrect" : "unknown",
    wantsQuote: isError,
  };
}

/** Parses `SRC > DST: ...` at `at`; `hdr` is the `-v` header when there was one. */
function parseAddressLine(
  line: string,
  at: number,
  hdr: IpText | undefined,
): { src: number; dst: number; l4: L4Text } {
  const gt = line.indexOf(" > ", at);
  if (gt < 0) fail("TEXT_EXPECTED_ADDRESS", 'expected "SRC > DST:"', at);
  const srcText = line.slice(at, gt);
  const dstStart = gt + 3;
  const colon = line.indexOf(":", dstStart);
  if (colon < 0) fail("TEXT_EXPECTED_COLON", 'expected ":" after the destination address', line.length);
  const dstText = line.slice(dstStart, colon);
  const src = parseEndpoint(srcText, at);
  const dst = parseEndpoint(dstText, dstStart);
  const after = skipSpaces(line, colon + 1);
  const desc = line.slice(after);
  let protocol = hdr?.protocol;
  if (protocol === undefined) {
    if (desc.startsWith("ICMP ")) protocol = IPPROTO_ICMP;
    else if (desc.startsWith("Flags [") || /^tcp \d/.test(desc)) protocol = IPPROTO_TCP;
    else if (src.port !== undefined && dst.port !== undefined) protocol = IPPROTO_UDP;
    else if (/^GRE/.test(desc)) protocol = 47;
    else {
      const ipp = /^ip-proto-(\d+)/.exec(desc);
      if (!ipp) fail("TEXT_UNKNOWN_PROTOCOL", "cannot tell the protocol of this line", after);
      protocol = parseUint(ipp[1], 255, after, "protocol");
    }
  }
  const needPorts = () => {
    if (src.port === undefined || dst.port === undefined)
      fail("TEXT_EXPECTED_PORT", "expected ADDRESS.PORT for TCP/UDP", src.port === undefined ? at : dstStart);
    return [src.port, dst.port] as const;
  };
  let l4: L4Text;
  if (hdr && hdr.fragOffset !== 0) {
    // Non-first fragments carry no transport header (tcpdump prints "ip-proto-N").
    l4 = { protocol, l4: { kind: "other" }, l4Checksum: "unknown" };
  } else if (protocol === IPPROTO_TCP) l4 = parseTcp(line, after, ...needPorts());
  else if (protocol === IPPROTO_UDP) l4 = parseUdp(line, after, ...needPorts());
  else if (protocol === IPPROTO_ICMP) l4 = parseIcmp(line, after, src.addr, dst.addr);
  else {
    const m = /^ip-proto-\d+ (\d+)$/.exec(desc);
    const payloadLength = m ? parseUint(m[1], 0xffff, after, "length") : undefined;
    l4 = { protocol, l4: { kind: "other" }, l4Checksum: "unknown", ...(m ? { payloadLength } : {}) };
  }
  return { src: src.addr, dst: dst.addr, l4 };
}

function l4HeaderBytes(t: L4Text): number {
  switch (t.l4.kind) {
    case "tcp":
      return t.l4.dataOffset;
    case "udp":
      return 8;
    case "icmp":
      return 8 + (t.l4.quote ? t.l4.quote.ip.ihl + t.l4.quote.l4.length : 0);
    case "other":
      return 0;
  }
}

/** Reconciles header and address line into a Packet. */
function buildPacket(
  prefix: LinePrefix,
  hdr: IpText | undefined,
  a: { src: number; dst: number; l4: L4Text },
  origin: string,
  opts: TextReaderOptions,
  index: number,
): Packet {
  const t = a.l4;
  let l4 = t.l4;
  let hlen = l4HeaderBytes(t);
  let payloadLength = t.payloadLength;
  if (hdr) {
    const avail = hdr.totalLength - 20;
    if (l4.kind === "tcp" && payloadLength !== undefined) {
      // The header carries the true TCP header length (options the text could not rebuild included).
      const doff = avail - payloadLength;
      if (doff >= 20 && doff <= 60 && doff % 4 === 0 && doff >= (t.optionBytes ?? 20)) {
        l4 = { ...l4, dataOffset: doff };
        hlen = doff;
      }
    }
    if (payloadLength === undefined) payloadLength = Math.max(0, avail - hlen);
    if (hlen + payloadLength > avail && hdr.fragOffset === 0 && !hdr.mf)
      fail(
        "TEXT_LENGTH_MISMATCH",
        `IP length ${hdr.totalLength} is too small for ${hlen} header and ${payloadLength} payload bytes`,
        index,
      );
  }
  payloadLength ??= 0;
  if (l4.kind === "udp") l4 = { ...l4, length: 8 + payloadLength };
  const totalLength = hdr ? hdr.totalLength : 20 + hlen + payloadLength;
  if (totalLength > 0xffff) fail("TEXT_NUMBER_RANGE", `packet length ${totalLength} exceeds 65535`, index);
  const ip: Ipv4Header = {
    ihl: 20,
    tos: hdr?.tos ?? TEXT_DEFAULTS.tos,
    totalLength,
    id: hdr?.id ?? TEXT_DEFAULTS.id,
    rf: hdr?.rf ?? false,
    df: hdr?.df ?? TEXT_DEFAULTS.df,
    mf: hdr?.mf ?? false,
    fragOffset: hdr?.fragOffset ?? 0,
    ttl: hdr ? hdr.ttl : TEXT_DEFAULTS.ttl,
    protocol: t.protocol,
    checksum: hdr?.checksum ?? 0,
    src: a.src,
    dst: a.dst,
    options: new Uint8Array(0),
  };
  const iface = prefix.iface ?? opts.defaultIface;
  return {
    ip,
    l4,
    payloadLength,
    ...(iface !== undefined ? { iface } : {}),
    ...(prefix.direction ? { direction: prefix.direction } : {}),
    ...(prefix.link ? { link: prefix.link } : {}),
    tsSec: prefix.hasTs ? prefix.tsSec : TEXT_DEFAULTS.tsSec,
    tsNsec: prefix.hasTs ? prefix.tsNsec : TEXT_DEFAULTS.tsNsec,
    ipChecksum: hdr ? hdr.ipChecksum : "unknown",
    l4Checksum: t.l4Checksum,
    origin,
  };
}

interface PendingHeader {
  prefix: LinePrefix;
  ip: IpText;
  line: number;
  text: string;
}

/**
 * Incremental reader: feed text chunks, get records back. A packet is returned once the next line shows it
 * is complete (a `-v` header waits for its address line, an ICMP error for its quoted packet), so the last
 * packet comes from `end()`.
 */
export class TextReader {
  private readonly opts: TextReaderOptions;
  private readonly file: string;
  private carry = "";
  private lineNo = 0;
  private header: PendingHeader | undefined;
  private packet: Built | undefined;
  /** Inner `IP (` header of the pending packet (ICMP quote or encapsulated packet). */
  private inner: { ip: IpText; line: number } | undefined;
  /** Some line had a timestamp: lines without one then continue the previous packet. */
  private sawTs = false;
  /** After a non-IPv4 line, its indented detail lines are skipped with it. */
  private skippingDetail = false;
  private readonly clock = { lastDaySec: -1, dayOffset: 0, baseDate: 0 };

  constructor(opts: TextReaderOptions = {}) {
    this.opts = opts;
    this.file = opts.file ?? "<input>";
    this.clock.baseDate = opts.baseDate ?? 0;
  }

  push(chunk: string): TextRecord[] {
    const out: TextRecord[] = [];
    const text = this.carry + chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      this.line(text.slice(start, nl), out);
      start = nl + 1;
    }
    this.carry = text.slice(start);
    return out;
  }

  end(): TextRecord[] {
    const out: TextRecord[] = [];
    if (this.carry !== "") this.line(this.carry, out);
    this.carry = "";
    this.flushHeader(out);
    this.flushPacket(out);
    return out;
  }

  private diag(code: string, message: string, line: number, text: string, index: number): Diagnostic {
    return {
      file: this.file,
      line,
      column: Math.min(Math.max(0, index), text.length) + 1,
      code,
      message,
      excerpt: text,
    };
  }

  private bad(out: TextRecord[], d: Diagnostic): void {
    if (this.opts.lenient) out.push({ kind: "skipped", line: d.line ?? 0, reason: d.message, diagnostic: d });
    else out.push({ kind: "error", line: d.line ?? 0, diagnostic: d });
  }

  private flushHeader(out: TextRecord[]): void {
    if (!this.header) return;
    const h = this.header;
    this.header = undefined;
    this.bad(
      out,
      this.diag(
        "TEXT_EXPECTED_ADDRESS_LINE",
        'IP header line is not followed by its "SRC > DST: ..." line',
        h.line,
        h.text,
        h.prefix.rest,
      ),
    );
  }

  private flushPacket(out: TextRecord[]): void {
    this.inner = undefined;
    if (!this.packet) return;
    out.push({ kind: "packet", packet: this.packet.packet, line: this.packet.line });
    this.packet = undefined;
  }

  private line(raw: string, out: TextRecord[]): void {
    this.lineNo++;
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const trimmed = text.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const lineNo = this.lineNo;
    try {
      this.parseLine(text, lineNo, out);
    } catch (e) {
      if (e instanceof ParseFail) {
        this.flushHeader(out);
        this.bad(out, this.diag(e.code, e.message, lineNo, text, e.index));
      } else if (e instanceof NotIpv4) {
        this.flushHeader(out);
        this.flushPacket(out);
        out.push({ kind: "skipped", line: lineNo, reason: `not IPv4: ${e.what}` });
        this.skippingDetail = true;
      } else throw e;
    }
  }

  private parseLine(text: string, lineNo: number, out: TextRecord[]): void {
    const prefix = parsePrefix(text, this.clock);
    if (prefix.hasTs) this.sawTs = true;
    if (this.skippingDetail && !prefix.hasTs && prefix.indented) return;
    this.skippingDetail = false;
    let i = prefix.rest;
    const word = nextToken(text, i);
    const origin = `${this.file}:${lineNo}`;

    // Lines belonging to the pending packet: its quoted/encapsulated packet, or tcpdump's detail lines.
    if (!prefix.hasTs && this.packet && !this.header) {
      const p = this.packet;
      const innerAllowed = (p.wantsQuote || p.encapOverhead !== undefined) && (prefix.indented || p.hasTs);
      if (
        innerAllowed &&
        !this.inner &&
        word === "IP" &&
        text.slice(skipSpaces(text, i + 2)).startsWith("(")
      ) {
        const { ip } = parseIpHeader(text, skipSpaces(text, i + 2));
        this.inner = { ip, line: lineNo };
        return;
      }
      if (this.inner) {
        const innerHdr = this.inner.ip;
        this.inner = undefined;
        const a = parseAddressLine(text, i, innerHdr);
        this.attachInner(innerHdr, a, prefix, origin, i);
        return;
      }
      if (prefix.indented && word !== "IP" && !/^\d+\.\d+\.\d+\.\d+/.test(word)) return; // detail line
    }

    if (word === "IP") {
      i = skipSpaces(text, i + 2);
      if (text[i] === "(") {
        const { ip, end } = parseIpHeader(text, i);
        this.flushHeader(out);
        this.flushPacket(out);
        const after = skipSpaces(text, end);
        if (after < text.length) {
          const a = parseAddressLine(text, after, ip);
          this.setPacket(buildPacket(prefix, ip, a, origin, this.opts, after), lineNo, true, a.l4);
        } else this.header = { prefix, ip, line: lineNo, text };
        return;
      }
      this.flushHeader(out);
      this.flushPacket(out);
      const a = parseAddressLine(text, i, undefined);
      this.setPacket(buildPacket(prefix, undefined, a, origin, this.opts, i), lineNo, false, a.l4);
      return;
    }
    if (text[i] === "(" && prefix.ether) {
      // `-e` output: the header follows the link prefix without "IP".
      const { ip, end } = parseIpHeader(text, i);
      this.flushHeader(out);
      this.flushPacket(out);
      const after = skipSpaces(text, end);
      if (after < text.length) {
        const a = parseAddressLine(text, after, ip);
        this.setPacket(buildPacket(prefix, ip, a, origin, this.opts, after), lineNo, true, a.l4);
      } else this.header = { prefix, ip, line: lineNo, text };
      return;
    }
    if (NON_IPV4_WORDS.has(word)) throw new NotIpv4(word.replace(/,$/, ""));
    if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/.test(word)) {
      if (this.header && !prefix.hasTs) {
        // Second line of a `-v` pair: it takes the header's timestamp and interface.
        const h = this.header;
        this.header = undefined;
        const hp: LinePrefix = { ...h.prefix, link: h.prefix.link ?? prefix.link };
        const a = parseAddressLine(text, i, h.ip);
        this.flushPacket(out);
        this.setPacket(buildPacket(hp, h.ip, a, `${this.file}:${h.line}`, this.opts, i), h.line, true, a.l4);
        return;
      }
      // A bare address line (`-v` second line pasted without its header, or `-e` one-line output).
      this.flushHeader(out);
      this.flushPacket(out);
      const a = parseAddressLine(text, i, undefined);
      this.setPacket(buildPacket(prefix, undefined, a, origin, this.opts, i), lineNo, false, a.l4);
      return;
    }
    fail(
      "TEXT_EXPECTED_IP",
      prefix.hasTs
        ? `expected "IP" or an interface name after the timestamp, got "${word}"`
        : `expected a timestamp, "IP" or an address, got "${word}"`,
      i,
    );
  }

  private setPacket(packet: Packet, line: number, hasHeader: boolean, t: L4Text): void {
    this.packet = {
      packet,
      line,
      hasHeader,
      hasTs: this.sawTs,
      wantsQuote: t.wantsQuote === true,
      ...(t.encapOverhead !== undefined ? { encapOverhead: t.encapOverhead } : {}),
    };
  }

  /** Completes the pending packet with its inner packet (ICMP quote, or Geneve/VXLAN payload). */
  private attachInner(
    innerHdr: IpText,
    a: { src: number; dst: number; l4: L4Text },
    prefix: LinePrefix,
    origin: string,
    index: number,
  ): void {
    const p = this.packet!;
    const outer = p.packet;
    if (p.wantsQuote && outer.l4.kind === "icmp") {
      const inner = buildPacket(prefix, innerHdr, a, origin, {}, index);
      let word2 = 0;
      let sport = 0;
      let dport = 0;
      if (inner.l4.kind === "tcp")
        ((sport = inner.l4.srcPort), (dport = inner.l4.dstPort), (word2 = inner.l4.seq));
      else if (inner.l4.kind === "udp")
        ((sport = inner.l4.srcPort),
          (dport = inner.l4.dstPort),
          (word2 = ((inner.l4.length & 0xffff) << 16) >>> 0));
      else if (inner.l4.kind === "icmp")
        ((sport = inner.l4.type), (dport = inner.l4.code), (word2 = inner.l4.restOfHeader));
      const quote: IcmpQuote = { ip: inner.ip, l4: quoteL4Bytes(inner.ip.protocol, sport, dport, word2) };
      const oldHeader = 8 + (outer.l4.quote ? outer.l4.quote.ip.ihl + outer.l4.quote.l4.length : 0);
      const total = oldHeader + outer.payloadLength;
      const newHeader = 8 + quote.ip.ihl + quote.l4.length;
      const payloadLength = Math.max(0, (p.hasHeader ? outer.ip.totalLength - 20 : total) - newHeader);
      const ip = p.hasHeader ? outer.ip : { ...outer.ip, totalLength: 20 + newHeader + payloadLength };
      this.packet = {
        ...p,
        packet: { ...outer, ip, l4: { ...outer.l4, quote }, payloadLength },
        wantsQuote: false,
      };
      return;
    }
    if (p.encapOverhead !== undefined && outer.l4.kind === "udp") {
      if (!p.hasHeader) {
        const payloadLength = p.encapOverhead + innerHdr.totalLength;
        this.packet = {
          ...p,
          packet: {
            ...outer,
            ip: { ...outer.ip, totalLength: 28 + payloadLength },
            l4: { ...outer.l4, length: 8 + payloadLength },
            payloadLength,
          },
        };
      }
      void a;
      this.packet = { ...this.packet!, encapOverhead: undefined };
    }
  }
}
