/**
 * Validated packet values (the "Repr" layer, as in smoltcp's wire/).
 *
 * Every reader (tcpdump text, pcap, pcapng) produces these values and every writer consumes them; state code
 * (conntrack, netfilter, NAT) never sees raw bytes or strings. The shapes follow the on-wire headers of
 * RFC 791 (IPv4), RFC 9293 (TCP), RFC 768 (UDP) and RFC 792 (ICMP), with field names close to the kernel's
 * `struct iphdr`, `struct tcphdr`, `struct udphdr` and `struct icmphdr` (include/uapi/linux/ip.h, tcp.h, udp.h,
 * icmp.h).
 *
 * Addresses are unsigned 32-bit numbers in host order (0xc0000201 is 192.0.2.1); see ./addr.ts for parsing and
 * formatting. Only IPv4 is modelled.
 */

/** TCP header flag bits as they sit in byte 13 of the header; AE (formerly NS) is bit 0 of byte 12. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;
export const TCP_AE = 0x100;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** "tcp", "udp" or "icmp" for the transport protocols packets are decoded for; undefined for any other. */
export function l4ProtoName(protocol: number): "tcp" | "udp" | "icmp" | undefined {
  return protocol === IPPROTO_TCP
    ? "tcp"
    : protocol === IPPROTO_UDP
      ? "udp"
      : protocol === IPPROTO_ICMP
        ? "icmp"
        : undefined;
}

/** ICMP types used by the conntrack and reject code (include/uapi/linux/icmp.h). */
export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETERPROB = 12;
export const ICMP_TIMESTAMP = 13;
export const ICMP_TIMESTAMPREPLY = 14;
export const ICMP_INFO_REQUEST = 15;
export const ICMP_INFO_REPLY = 16;
export const ICMP_ADDRESS = 17;
export const ICMP_ADDRESSREPLY = 18;

export interface Ipv4Header {
  /** Header length in bytes (20..60); always 20 + options.length. */
  readonly ihl: number;
  /** The whole TOS byte (DSCP + ECN). */
  readonly tos: number;
  /** Total length from the header, in bytes. */
  readonly totalLength: number;
  readonly id: number;
  /** The reserved ("evil") bit, DF and MF. */
  readonly rf: boolean;
  readonly df: boolean;
  readonly mf: boolean;
  /** Fragment offset in 8-byte units, as in the header. */
  readonly fragOffset: number;
  readonly ttl: number;
  readonly protocol: number;
  /** Header checksum as carried; writers recompute it. */
  readonly checksum: number;
  readonly src: number;
  readonly dst: number;
  /** Raw option bytes (length is a multiple of 4). */
  readonly options: Uint8Array;
}

export type TcpOption =
  | { readonly kind: "eol" }
  | { readonly kind: "nop" }
  | { readonly kind: "mss"; readonly value: number }
  | { readonly kind: "wscale"; readonly shift: number }
  | { readonly kind: "sackPermitted" }
  | { readonly kind: "sack"; readonly blocks: ReadonlyArray<readonly [left: number, right: number]> }
  | { readonly kind: "timestamp"; readonly tsval: number; readonly tsecr: number }
  | { readonly kind: "unknown"; readonly type: number; readonly data: Uint8Array };

export interface TcpHeader {
  readonly kind: "tcp";
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  /** Header length in bytes (20..60). */
  readonly dataOffset: number;
  /** The three reserved bits (byte 12, bits 1..3), as `RES=` prints them shifted into place. */
  readonly reserved: number;
  /** TCP_* bits; TCP_AE for the former NS bit. */
  readonly flags: number;
  readonly window: number;
  readonly checksum: number;
  readonly urgentPointer: number;
  readonly options: readonly TcpOption[];
}

export interface UdpHeader {
  readonly kind: "udp";
  readonly srcPort: number;
  readonly dstPort: number;
  /** Length field from the header (header + payload). */
  readonly length: number;
  readonly checksum: number;
}

/** The packet quoted inside an ICMP error: the inner IP header and the first 8 bytes of its payload. */
export interface IcmpQuote {
  readonly ip: Ipv4Header;
  /** First bytes of the inner transport header (normally 8). Ports/seq/id are read from these. */
  readonly l4: Uint8Array;
}

export interface IcmpHeader {
  readonly kind: "icmp";
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  /** Bytes 4..7 of the ICMP header: echo id/sequence, redirect gateway, next-hop MTU, pointer. */
  readonly restOfHeader: number;
  /** Present for error types (3, 4, 5, 11, 12) when the quoted packet was available. */
  readonly quote?: IcmpQuote;
}

export interface OtherL4 {
  readonly kind: "other";
}

export type L4Header = TcpHeader | UdpHeader | IcmpHeader | OtherL4;

export interface LinkHeader {
  readonly dst: string; // "aa:bb:cc:dd:ee:ff"
  readonly src: string;
  /** Outer ethertype as captured (0x0800 for IPv4). */
  readonly ethertype: number;
  /** 802.1Q VLAN ids, outermost first. */
  readonly vlans: readonly number[];
}

export type Direction = "In" | "Out";

/** Whether a checksum was verified against the bytes, or only known from text. */
export type ChecksumStatus = "correct" | "incorrect" | "unknown";

export interface Packet {
  readonly ip: Ipv4Header;
  readonly l4: L4Header;
  /** Transport payload length in bytes (after the TCP/UDP/ICMP header). */
  readonly payloadLength: number;
  /** Payload bytes when known (captures); text input leaves it undefined and writers pad with zeros. */
  readonly payload?: Uint8Array;
  /** Ingress (or, with direction "Out", egress) interface name, when the input named one. */
  readonly iface?: string;
  readonly direction?: Direction;
  readonly link?: LinkHeader;
  /** Capture time: whole seconds since the epoch and nanoseconds within the second. */
  readonly tsSec: number;
  readonly tsNsec: number;
  /** Verification of the IP header and transport checksums. */
  readonly ipChecksum: ChecksumStatus;
  readonly l4Checksum: ChecksumStatus;
  /** Where it came from, for error messages and output ("capture.pcapng#17", "seed.txt:12"). */
  readonly origin?: string;
}

/** Total length the packet would have on the wire, from its headers. */
export function l4HeaderLength(l4: L4Header): number {
  switch (l4.kind) {
    case "tcp":
      return l4.dataOffset;
    case "udp":
      return 8;
    case "icmp":
      return 8 + (l4.quote ? l4.quote.ip.ihl + l4.quote.l4.length : 0);
    case "other":
      return 0;
  }
}
