/** Test helpers: build IPv4 packets, pcap files and pcapng blocks byte by byte, independently of the writer. */
import type { Ipv4Header, Packet, TcpOption } from "../../src/wire/packet";
import { IPPROTO_TCP, IPPROTO_UDP, TCP_SYN } from "../../src/wire/packet";

export const ip4 = (a: number, b: number, c: number, d: number): number =>
  ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

export function ipHeader(over: Partial<Ipv4Header> = {}): Ipv4Header {
  return {
    ihl: 20,
    tos: 0,
    totalLength: 0,
    id: 0x1234,
    rf: false,
    df: true,
    mf: false,
    fragOffset: 0,
    ttl: 64,
    protocol: IPPROTO_TCP,
    checksum: 0,
    src: ip4(192, 0, 2, 1),
    dst: ip4(198, 51, 100, 7),
    options: new Uint8Array(0),
    ...over,
  };
}

export function tcpPacket(
  over: { options?: TcpOption[]; flags?: number; payload?: Uint8Array; ip?: Partial<Ipv4Header> } = {},
): Packet {
  const payload = over.payload ?? new Uint8Array(0);
  return {
    ip: ipHeader({ protocol: IPPROTO_TCP, ...over.ip }),
    l4: {
      kind: "tcp",
      srcPort: 40000,
      dstPort: 80,
      seq: 1000,
      ack: 0,
      dataOffset: 20,
      reserved: 0,
      flags: over.flags ?? TCP_SYN,
      window: 65535,
      checksum: 0,
      urgentPointer: 0,
      options: over.options ?? [{ kind: "mss", value: 1460 }, { kind: "nop" }, { kind: "wscale", shift: 7 }],
    },
    payloadLength: payload.length,
    payload,
    tsSec: 1700000000,
    tsNsec: 123456789,
    ipChecksum: "unknown",
    l4Checksum: "unknown",
  };
}

export function udpPacket(payload: Uint8Array = Uint8Array.of(1, 2, 3)): Packet {
  return {
    ip: ipHeader({ protocol: IPPROTO_UDP }),
    l4: { kind: "udp", srcPort: 5353, dstPort: 53, length: 0, checksum: 0 },
    payloadLength: payload.length,
    payload,
    tsSec: 1700000001,
    tsNsec: 0,
    ipChecksum: "unknown",
    l4Checksum: "unknown",
  };
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function ethernet(
  ip: Uint8Array,
  ethertype = 0x0800,
  tags: readonly [number, number][] = [],
): Uint8Array {
  const hdr = new Uint8Array(14 + 4 * tags.length);
  hdr.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
  const dv = new DataView(hdr.buffer);
  let o = 12;
  for (const [tpid, vid] of tags) {
    dv.setUint16(o, tpid);
    dv.setUint16(o + 2, vid);
    o += 4;
  }
  dv.setUint16(o, ethertype);
  return concatBytes([hdr, ip]);
}

export interface PcapRecord {
  readonly data: Uint8Array;
  readonly tsSec?: number;
  readonly tsFrac?: number;
  readonly origLen?: number;
}

/** A classic pcap file. */
export function pcapFile(
  linktype: number,
  records: readonly PcapRecord[],
  opts: { littleEndian?: boolean; nsec?: boolean; snaplen?: number } = {},
): Uint8Array {
  const le = opts.littleEndian ?? true;
  const parts: Uint8Array[] = [];
  const hdr = new Uint8Array(24);
  const dv = new DataView(hdr.buffer);
  dv.setUint32(0, opts.nsec ? 0xa1b23c4d : 0xa1b2c3d4, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setUint32(16, opts.snaplen ?? 65535, le);
  dv.setUint32(20, linktype, le);
  parts.push(hdr);
  for (const r of records) {
    const rh = new Uint8Array(16);
    const rv = new DataView(rh.buffer);
    rv.setUint32(0, r.tsSec ?? 1700000000, le);
    rv.setUint32(4, r.tsFrac ?? 0, le);
    rv.setUint32(8, r.data.length, le);
    rv.setUint32(12, r.origLen ?? r.data.length, le);
    parts.push(rh, r.data);
  }
  return concatBytes(parts);
}

/** A pcapng block: body (padded to 4) and options, in the given byte order. */
export function ngBlock(
  type: number,
  body: Uint8Array,
  le: boolean,
  options: readonly [number, Uint8Array][] = [],
): Uint8Array {
  const pad = (n: number) => (n + 3) & ~3;
  let optLen = options.reduce((n, [, v]) => n + 4 + pad(v.length), 0);
  if (options.length) optLen += 4;
  const len = 8 + pad(body.length) + optLen + 4;
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, le);
  dv.setUint32(4, len, le);
  b.set(body, 8);
  let o = 8 + pad(body.length);
  for (const [code, v] of options) {
    dv.setUint16(o, code, le);
    dv.setUint16(o + 2, v.length, le);
    b.set(v, o + 4);
    o += 4 + pad(v.length);
  }
  dv.setUint32(len - 4, len, le);
  return b;
}

function words(le: boolean, spec: readonly [16 | 32, number][]): Uint8Array {
  const n = spec.reduce((s, [w]) => s + w / 8, 0);
  const b = new Uint8Array(n);
  const dv = new DataView(b.buffer);
  let o = 0;
  for (const [w, v] of spec) {
    if (w === 16) dv.setUint16(o, v, le);
    else dv.setUint32(o, v >>> 0, le);
    o += w / 8;
  }
  return b;
}

export function shb(le: boolean): Uint8Array {
  return ngBlock(
    0x0a0d0d0a,
    words(le, [
      [32, 0x1a2b3c4d],
      [16, 1],
      [16, 0],
      [32, 0xffffffff],
      [32, 0xffffffff],
    ]),
    le,
  );
}

export function idb(
  le: boolean,
  linktype: number,
  opts: { name?: string; tsresol?: number; snaplen?: number } = {},
) {
  const options: [number, Uint8Array][] = [];
  if (opts.name !== undefined) options.push([2, new TextEncoder().encode(opts.name)]);
  if (opts.tsresol !== undefined) options.push([9, Uint8Array.of(opts.tsresol)]);
  return ngBlock(
    1,
    words(le, [
      [16, linktype],
      [16, 0],
      [32, opts.snaplen ?? 0],
    ]),
    le,
    options,
  );
}

export function epb(
  le: boolean,
  ifid: number,
  ts: bigint,
  data: Uint8Array,
  opts: { flags?: number } = {},
): Uint8Array {
  const head = words(le, [
    [32, ifid],
    [32, Number(ts >> 32n)],
    [32, Number(ts & 0xffffffffn)],
    [32, data.length],
    [32, data.length],
  ]);
  const options: [number, Uint8Array][] = [];
  if (opts.flags !== undefined) options.push([2, words(le, [[32, opts.flags]])]);
  return ngBlock(6, concatBytes([head, data]), le, options);
}

export function spb(le: boolean, data: Uint8Array): Uint8Array {
  return ngBlock(3, concatBytes([words(le, [[32, data.length]]), data]), le);
}
