import { describe, expect, it } from "vitest";
import { parseTcpdumpText } from "../../src/wire/text";
import { parseIpv4 } from "../../src/wire/addr";
import type { Packet } from "../../src/wire/packet";
import {
  AWS_GWLB_OPT_CLASS,
  GENEVE_PROTO_IPV4,
  awsGwlbOptions,
  decodeGeneve,
  encodeGeneve,
  formatGeneveHeader,
  formatGenevePacket,
  geneveDecapsulate,
  geneveEncapsulate,
  geneveHeader,
  isGeneveFailure,
  parseAwsGwlbOptions,
} from "../../src/wire/geneve";

// Seed 002 (tcpdump -nvv 'port 6081' on the appliance), the GENEVE part of the first packet:
const SEED_GENEVE =
  "Geneve, Flags [none], vni 0x0, options [class Unknown (0x108) type 0x1 len 12 data 74a11ad9 6ec49886, " +
  "class Unknown (0x108) type 0x2 len 12 data 00000000 00000000, class Unknown (0x108) type 0x3 len 8 data 39f7f1a7]";

function one(text: string): Packet {
  const r = parseTcpdumpText(text);
  if (r.packets.length !== 1)
    throw new Error(`got ${r.packets.length} packets, want 1: ${JSON.stringify(r.errors)}`);
  return r.packets[0];
}

const inner = one(
  "IP (tos 0x0, ttl 254, id 29162, offset 0, flags [DF], proto TCP (6), length 40)\n" +
    "    10.2.101.47.48354 > 52.94.212.197.443: Flags [.], seq 2388, ack 5780, win 356, length 0\n",
);

const seedMeta = { endpointId: 0x74a11ad96ec49886n, attachmentId: 0n, flowCookie: 0x39f7f1a7 };

function seedPacket(): Packet {
  return geneveEncapsulate(inner, geneveHeader({ options: awsGwlbOptions(seedMeta) }), {
    src: parseIpv4("192.168.101.247")!,
    dst: parseIpv4("192.168.101.235")!,
    srcPort: 60001,
  });
}

describe("GENEVE header codec (RFC 8926)", () => {
  it("prints the seed 002 options exactly as tcpdump -vv does", () => {
    const h = geneveHeader({ options: awsGwlbOptions(seedMeta) });
    const got = formatGeneveHeader(h);
    expect(got, `got ${got}, want ${SEED_GENEVE}`).toBe(SEED_GENEVE);
  });

  it("encodes Opt Len in 4-byte words and the option Length without its header", () => {
    const h = geneveHeader({ options: awsGwlbOptions(seedMeta) });
    const b = encodeGeneve(h, new Uint8Array(0));
    expect(b.length).toBe(8 + 32);
    expect(b[0], "ver 0, opt len 8 words").toBe(8);
    expect((b[2] << 8) | b[3], "protocol type").toBe(GENEVE_PROTO_IPV4);
    // first option: class 0x0108, type 1, length 2 words
    expect([...b.subarray(8, 12)]).toEqual([0x01, 0x08, 0x01, 0x02]);
    // third option: class 0x0108, type 3, length 1 word, data 39f7f1a7
    expect([...b.subarray(32, 40)]).toEqual([0x01, 0x08, 0x03, 0x01, 0x39, 0xf7, 0xf1, 0xa7]);
  });

  it("decodes what it encodes (VNI, flags, critical option)", () => {
    const h = geneveHeader({
      vni: 0xabcdef,
      oam: true,
      options: [{ optClass: 0x0101, type: 0x85, data: new Uint8Array([1, 2, 3, 4]) }],
    });
    expect(h.critical, "critical bit follows a critical option").toBe(true);
    const d = decodeGeneve(encodeGeneve(h, new Uint8Array([9, 9])));
    if (isGeneveFailure(d)) throw new Error(d.failure);
    expect(d.header).toEqual(h);
    expect(d.innerOffset).toBe(16);
    expect(formatGeneveHeader(d.header)).toBe(
      "Geneve, Flags [OC], vni 0xabcdef, options [class Open vSwitch (0x101) type 0x85(C) len 8 data 01020304]",
    );
  });

  it("refuses version 1, truncated options and an option past Opt Len", () => {
    const d1 = decodeGeneve(new Uint8Array([0x40, 0, 8, 0, 0, 0, 0, 0]));
    expect(isGeneveFailure(d1) && d1.failure).toBe("unknown GENEVE version 1");
    const d2 = decodeGeneve(new Uint8Array([0x02, 0, 8, 0, 0, 0, 0, 0, 1, 8, 1, 2]));
    expect(isGeneveFailure(d2) && d2.failure).toMatch(/truncated GENEVE options/);
    // opt len 1 word, but the option says 2 data words
    const d3 = decodeGeneve(new Uint8Array([0x01, 0, 8, 0, 0, 0, 0, 0, 1, 8, 1, 2]));
    expect(isGeneveFailure(d3) && d3.failure).toMatch(/runs past the options/);
  });

  it("refuses option data that is not a multiple of 4 on encode", () => {
    const h = geneveHeader({ options: [{ optClass: 1, type: 1, data: new Uint8Array(3) }] });
    expect(() => encodeGeneve(h, new Uint8Array(0))).toThrow(RangeError);
  });
});

describe("AWS GWLB options (class 0x0108 types 1, 2, 3)", () => {
  it("round-trip endpoint id, attachment id and flow cookie", () => {
    const opts = awsGwlbOptions(seedMeta);
    expect(opts.every((o) => o.optClass === AWS_GWLB_OPT_CLASS)).toBe(true);
    expect(parseAwsGwlbOptions(opts)).toEqual(seedMeta);
  });
  it("are missing when the flow cookie is absent", () => {
    expect(parseAwsGwlbOptions(awsGwlbOptions(seedMeta).slice(0, 2))).toBeUndefined();
  });
});

describe("encapsulation in UDP 6081", () => {
  it("builds the seed's outer packet: 88 bytes of UDP around a 40-byte inner segment", () => {
    const p = seedPacket();
    if (p.l4.kind !== "udp") throw new Error("not udp");
    expect(p.l4.dstPort).toBe(6081);
    expect(p.l4.srcPort).toBe(60001);
    expect(p.ip.totalLength, "20 IP + 8 UDP + 8 GENEVE + 32 options + 40 inner").toBe(108);
    expect(p.l4Checksum).toBe("correct");
  });

  it("decapsulates to the same inner packet", () => {
    const f = geneveDecapsulate(seedPacket());
    if (isGeneveFailure(f)) throw new Error(f.failure);
    expect(f.inner?.ip.src).toBe(inner.ip.src);
    expect(f.inner?.ip.ttl).toBe(254);
    expect(f.inner?.l4).toMatchObject({ kind: "tcp", srcPort: 48354, dstPort: 443, seq: 2388, ack: 5780 });
    expect(parseAwsGwlbOptions(f.header.options)).toEqual(seedMeta);
  });

  it("prints as the seed's tcpdump -nvv lines (ports numeric, as with -nn)", () => {
    const text = formatGenevePacket(seedPacket());
    const lines = text.split("\n");
    expect(lines[1]).toBe(`    192.168.101.247.60001 > 192.168.101.235.6081: [udp sum ok] ${SEED_GENEVE}`);
    expect(lines[2]).toBe(
      "\tIP (tos 0x0, ttl 254, id 29162, offset 0, flags [DF], proto TCP (6), length 40)",
    );
    expect(lines[3]).toMatch(
      /^ {4}10\.2\.101\.47\.48354 > 52\.94\.212\.197\.443: Flags \[\.\], cksum 0x[0-9a-f]{4} \(correct\), seq 2388, ack 5780, win 356, length 0$/,
    );
  });
});
