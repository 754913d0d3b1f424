// Packet builders for the conntrack core tests: UDP datagrams, ICMP queries and errors, TCP segments and raw
// protocol packets, between dotted-quad addresses.
import type { ChecksumStatus, Ipv4Header, Packet } from "../../src/wire/packet";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../src/wire/packet";
import { parseIpv4 } from "../../src/wire/addr";

export function ip(a: string): number {
  const v = parseIpv4(a);
  if (v === undefined) throw new Error(`bad address ${a}`);
  return v;
}

function ipHeader(
  src: string,
  dst: string,
  protocol: number,
  l4len: number,
  over: Partial<Ipv4Header> = {},
): Ipv4Header {
  return {
    ihl: 20,
    tos: 0,
    totalLength: 20 + l4len,
    id: 1,
    rf: false,
    df: true,
    mf: false,
    fragOffset: 0,
    ttl: 64,
    protocol,
    checksum: 0,
    src: ip(src),
    dst: ip(dst),
    options: new Uint8Array(0),
    ...over,
  };
}

export interface PktOpts {
  len?: number;
  checksum?: ChecksumStatus;
  /** UDP checksum field (0 = none). */
  csumField?: number;
  /** UDP length field override. */
  udpLength?: number;
  fragOffset?: number;
}

/** "192.0.2.2:47245" */
function hostPort(s: string): [string, number] {
  const [a, p] = s.split(":");
  return [a, Number(p)];
}

export function udp(from: string, to: string, o: PktOpts = {}): Packet {
  const [sa, sp] = hostPort(from);
  const [da, dp] = hostPort(to);
  const len = o.len ?? 1;
  return {
    ip: ipHeader(sa, da, 17, 8 + len, { fragOffset: o.fragOffset ?? 0 }),
    l4: {
      kind: "udp",
      srcPort: sp,
      dstPort: dp,
      length: o.udpLength ?? 8 + len,
      checksum: o.csumField ?? 0x1234,
    },
    payloadLength: len,
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: o.checksum ?? "correct",
  };
}

const FLAGS: Record<string, number> = { S: TCP_SYN, A: TCP_ACK, F: TCP_FIN, R: TCP_RST, P: TCP_PSH };

export function tcp(from: string, to: string, flags: string, seq: number, ack: number, len = 0): Packet {
  const [sa, sp] = hostPort(from);
  const [da, dp] = hostPort(to);
  let f = 0;
  for (const c of flags) f |= FLAGS[c];
  return {
    ip: ipHeader(sa, da, 6, 20 + len),
    l4: {
      kind: "tcp",
      srcPort: sp,
      dstPort: dp,
      seq: seq >>> 0,
      ack: ack >>> 0,
      dataOffset: 20,
      reserved: 0,
      flags: f,
      window: 64240,
      checksum: 0,
      urgentPointer: 0,
      options: [],
    },
    payloadLength: len,
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: "correct",
  };
}

/** An ICMP query or reply (type 8/0/13/14...) with an id. */
export function icmp(
  src: string,
  dst: string,
  type: number,
  id: number,
  o: { code?: number; checksum?: ChecksumStatus } = {},
): Packet {
  return {
    ip: ipHeader(src, dst, 1, 16),
    l4: { kind: "icmp", type, code: o.code ?? 0, checksum: 0xabcd, restOfHeader: ((id & 0xffff) << 16) | 1 },
    payloadLength: 8,
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: o.checksum ?? "correct",
  };
}

/** An ICMP error from `src` to `dst` quoting `quoted` (its IP header and first 8 transport bytes). */
export function icmpError(
  src: string,
  dst: string,
  type: number,
  code: number,
  quoted: Packet | undefined,
): Packet {
  let quote;
  if (quoted) {
    const b = new Uint8Array(8);
    const l4 = quoted.l4;
    if (l4.kind === "udp" || l4.kind === "tcp") {
      b[0] = l4.srcPort >> 8;
      b[1] = l4.srcPort & 0xff;
      b[2] = l4.dstPort >> 8;
      b[3] = l4.dstPort & 0xff;
    } else if (l4.kind === "icmp") {
      b[0] = l4.type;
      b[1] = l4.code;
      b[4] = (l4.restOfHeader >>> 24) & 0xff;
      b[5] = (l4.restOfHeader >>> 16) & 0xff;
    }
    quote = { ip: quoted.ip, l4: b };
  }
  return {
    ip: ipHeader(src, dst, 1, 8 + 28),
    l4: { kind: "icmp", type, code, checksum: 0xabcd, restOfHeader: 0, quote },
    payloadLength: 0,
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: "correct",
  };
}

/** A packet of a protocol without a tracker (e.g. 253, 47). */
export function raw(src: string, dst: string, protocol: number, len = 4): Packet {
  return {
    ip: ipHeader(src, dst, protocol, len),
    l4: { kind: "other" },
    payloadLength: len,
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: "unknown",
  };
}
