/**
 * A plain TCP segment (20-byte IPv4 and TCP headers, no options, DF) as a validated Packet value, for the
 * benchmarks that generate their traffic in memory. Fields not given take bench defaults.
 */
import type { LinkHeader, Packet, TcpHeader } from "../src/wire/packet";

const NO_OPTIONS: TcpHeader["options"] = [];
const NO_IP_OPTIONS = new Uint8Array(0);

export interface SegmentSpec {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  flags: number;
  seq: number;
  ack: number;
  /** Payload length. */
  len: number;
  id?: number;
  window?: number;
  iface?: string;
  link?: LinkHeader;
  tsSec?: number;
  tsNsec?: number;
  /** "correct" for packets the reader would have verified; "unknown" as text input leaves them. */
  checksums?: "correct" | "unknown";
}

export function tcpSegment(s: SegmentSpec): Packet {
  const checks = s.checksums ?? "correct";
  return {
    ip: {
      ihl: 20,
      tos: 0,
      totalLength: 40 + s.len,
      id: s.id ?? 1,
      rf: false,
      df: true,
      mf: false,
      fragOffset: 0,
      ttl: 64,
      protocol: 6,
      checksum: 0,
      src: s.src,
      dst: s.dst,
      options: NO_IP_OPTIONS,
    },
    l4: {
      kind: "tcp",
      srcPort: s.sport,
      dstPort: s.dport,
      seq: s.seq >>> 0,
      ack: s.ack >>> 0,
      dataOffset: 20,
      reserved: 0,
      flags: s.flags,
      window: s.window ?? 64240,
      checksum: 0,
      urgentPointer: 0,
      options: NO_OPTIONS,
    },
    payloadLength: s.len,
    ...(s.iface !== undefined ? { iface: s.iface, direction: "In" as const } : {}),
    ...(s.link ? { link: s.link } : {}),
    tsSec: s.tsSec ?? 0,
    tsNsec: s.tsNsec ?? 0,
    ipChecksum: checks,
    l4Checksum: checks,
  };
}
