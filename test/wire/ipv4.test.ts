import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeIpv4,
  encodeEthernet,
  encodeIpv4,
  isDecodeFailure,
  type DecodeMeta,
} from "../../src/wire/ipv4";
import type { Packet, TcpOption } from "../../src/wire/packet";
import { IPPROTO_ICMP, IPPROTO_UDP, TCP_ACK, TCP_AE, TCP_SYN } from "../../src/wire/packet";
import { foldChecksum, onesComplementSum, pseudoHeaderSum } from "../../src/wire/checksum";
import { ip4, ipHeader, tcpPacket, udpPacket } from "./capture_builders";

const META: DecodeMeta = { tsSec: 1700000000, tsNsec: 123456789, origin: "t#1" };

function decodeOk(bytes: Uint8Array, length = bytes.length): Packet {
  const r = decodeIpv4(bytes, 0, length, META);
  if (isDecodeFailure(r)) throw new Error(`decode failed: ${r.failure}`);
  return r;
}

function failure(bytes: Uint8Array, length = bytes.length): string {
  const r = decodeIpv4(bytes, 0, length, META);
  if (!isDecodeFailure(r)) throw new Error(`got a packet, want a failure`);
  return r.failure;
}

/** An ICMP port unreachable (outer header `outer`) quoting `inner`'s header as `quoteIp` and 8 transport bytes. */
function portUnreachable(inner: Uint8Array, quoteIp: Packet["ip"], outer: Packet["ip"]): Packet {
  return {
    ...udpPacket(),
    ip: outer,
    l4: {
      kind: "icmp",
      type: 3,
      code: 3,
      checksum: 0,
      restOfHeader: 0,
      quote: { ip: quoteIp, l4: inner.slice(20, 28) },
    },
    payloadLength: 0,
    payload: new Uint8Array(0),
  };
}

/** The fields a round trip must keep: everything but carried checksums and recomputed lengths. */
function essence(p: Packet) {
  const l4 =
    p.l4.kind === "tcp" || p.l4.kind === "icmp"
      ? { ...p.l4, checksum: 0 }
      : p.l4.kind === "udp"
        ? { ...p.l4, checksum: 0, length: 0 }
        : p.l4;
  return {
    ...p,
    ip: { ...p.ip, checksum: 0, totalLength: 0 },
    l4,
    ipChecksum: "-",
    l4Checksum: "-",
    origin: "-",
  };
}

describe("decodeIpv4 / encodeIpv4", () => {
  it("round-trips a SYN with options and yields correct checksums", () => {
    const p = tcpPacket({
      options: [
        { kind: "mss", value: 1460 },
        { kind: "sackPermitted" },
        { kind: "timestamp", tsval: 0xdeadbeef, tsecr: 0 },
        { kind: "nop" },
        { kind: "wscale", shift: 7 },
      ],
    });
    const bytes = encodeIpv4(p);
    expect(bytes.length, `got length ${bytes.length}, want 20+40`).toBe(60);
    const q = decodeOk(bytes);
    expect(q.ipChecksum).toBe("correct");
    expect(q.l4Checksum).toBe("correct");
    expect(q.ip.totalLength).toBe(60);
    expect(q.l4.kind === "tcp" && q.l4.dataOffset).toBe(40);
    expect(essence(q)).toEqual(
      essence({ ...p, l4: { ...p.l4, dataOffset: 40 } as Packet["l4"], origin: "t#1" }),
    );
  });

  it("parses SACK blocks, eol and unknown options", () => {
    const options: TcpOption[] = [
      { kind: "nop" },
      { kind: "nop" },
      {
        kind: "sack",
        blocks: [
          [1, 2],
          [0xfffffff0, 5],
        ],
      },
      { kind: "unknown", type: 30, data: Uint8Array.of(1, 2, 3, 4) },
      { kind: "eol" },
    ];
    const q = decodeOk(encodeIpv4(tcpPacket({ options, flags: TCP_ACK })));
    expect(q.l4.kind === "tcp" && q.l4.options).toEqual(options);
  });

  it("stops at a malformed option length as tcp_parse_options does", () => {
    const bytes = encodeIpv4(
      tcpPacket({ options: [{ kind: "mss", value: 1 }, { kind: "nop" }, { kind: "nop" }] }),
    );
    bytes[20 + 20 + 4] = 8; // kind 8 (timestamp) ...
    bytes[20 + 20 + 5] = 40; // ... with a length past the header
    const q = decodeOk(bytes);
    expect(q.l4.kind === "tcp" && q.l4.options).toEqual([{ kind: "mss", value: 1 }]);
  });

  it("keeps the AE (ex-NS) bit and the reserved bits", () => {
    const p = tcpPacket({ flags: TCP_SYN | TCP_ACK | TCP_AE });
    const bytes = encodeIpv4({ ...p, l4: { ...p.l4, reserved: 0x0a } as Packet["l4"] });
    const q = decodeOk(bytes);
    expect(q.l4.kind === "tcp" && [q.l4.flags, q.l4.reserved]).toEqual([TCP_SYN | TCP_ACK | TCP_AE, 0x0a]);
  });

  it("flags a corrupted byte as an incorrect checksum", () => {
    const bytes = encodeIpv4(tcpPacket({ payload: Uint8Array.of(1, 2, 3, 4, 5) }));
    bytes[bytes.length - 1] ^= 0xff;
    expect(decodeOk(bytes).l4Checksum).toBe("incorrect");
    bytes[8] ^= 1; // TTL
    expect(decodeOk(bytes).ipChecksum).toBe("incorrect");
  });

  it("verifies checksums as foldChecksum does, up to 64 KiB datagrams of 0xff bytes (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("tcp", "udp", "icmp"),
        fc.oneof(fc.nat({ max: 300 }), fc.integer({ min: 65000, max: 65475 })),
        fc.constantFrom(0x00, 0xff, -1),
        fc.option(fc.nat(), { nil: undefined }),
        (kind, n, fill, flip) => {
          const payload =
            fill < 0 ? Uint8Array.from({ length: n }, (_, i) => i * 7) : new Uint8Array(n).fill(fill);
          const base = kind === "udp" ? udpPacket(payload) : tcpPacket({ payload });
          const p: Packet =
            kind === "icmp"
              ? {
                  ...base,
                  ip: { ...base.ip, protocol: IPPROTO_ICMP },
                  l4: { kind: "icmp", type: 8, code: 0, checksum: 0, restOfHeader: 0x10001 },
                }
              : base;
          const bytes = encodeIpv4(p);
          const at = flip === undefined ? -1 : flip % bytes.length;
          if (at >= 0) bytes[at] ^= 1 << (at % 8);
          // A flip of the version, lengths, fragment bits or protocol is another test's subject.
          fc.pre(![0, 1, 2, 3, 6, 7, 9, 20 + 12].includes(at));
          const got = decodeOk(bytes);
          const ihl = 20;
          const l4Len = bytes.length - ihl;
          const src = ((bytes[12] << 24) | (bytes[13] << 16) | (bytes[14] << 8) | bytes[15]) >>> 0;
          const dst = ((bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]) >>> 0;
          const pseudo = kind === "icmp" ? 0 : pseudoHeaderSum(src, dst, bytes[9], l4Len);
          const ok = (sum: number) => (foldChecksum(sum) === 0 ? "correct" : "incorrect");
          const wantIp = ok(onesComplementSum(bytes, 0, ihl));
          const carried = (bytes[ihl + 6] << 8) | bytes[ihl + 7];
          const wantL4 =
            kind === "udp" && carried === 0 ? "correct" : ok(onesComplementSum(bytes, ihl, l4Len, pseudo));
          expect([got.ipChecksum, got.l4Checksum], `${kind} of ${bytes.length} bytes`).toEqual([
            wantIp,
            wantL4,
          ]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("treats a snaplen-truncated datagram as a packet with lengths from the headers", () => {
    const bytes = encodeIpv4(tcpPacket({ payload: new Uint8Array(100).fill(7), options: [] }));
    const q = decodeOk(bytes, 50);
    expect(q.payloadLength, `got payloadLength ${q.payloadLength}, want 100`).toBe(100);
    expect(q.payload?.length, "captured payload bytes").toBe(10);
    expect(q.l4Checksum).toBe("unknown");
    expect(q.ipChecksum).toBe("correct");
  });

  it("ignores link-layer padding after the total length", () => {
    const ip = encodeIpv4(udpPacket(Uint8Array.of(9)));
    const padded = new Uint8Array(ip.length + 17);
    padded.set(ip);
    const q = decodeOk(padded);
    expect([q.payloadLength, q.payload?.length, q.l4Checksum]).toEqual([1, 1, "correct"]);
  });

  it("accepts a zero UDP checksum (not computed) and recomputes it on encode", () => {
    const bytes = encodeIpv4(udpPacket());
    bytes[26] = 0;
    bytes[27] = 0;
    const q = decodeOk(bytes);
    expect(q.l4Checksum).toBe("correct");
    const again = encodeIpv4(q);
    expect((again[26] << 8) | again[27]).not.toBe(0);
    expect(decodeOk(again).l4Checksum).toBe("correct");
  });

  it("gives non-first fragments no transport header", () => {
    const p: Packet = {
      ...udpPacket(),
      ip: ipHeader({ protocol: IPPROTO_UDP, fragOffset: 185, mf: false }),
      l4: { kind: "other" },
      payloadLength: 24,
    };
    const q = decodeOk(encodeIpv4(p));
    expect(q.l4).toEqual({ kind: "other" });
    expect(q.payloadLength).toBe(24);
    expect(q.l4Checksum).toBe("unknown");
    expect(q.ip.fragOffset).toBe(185);
  });

  it("parses the transport header of a first fragment but leaves its checksum unknown", () => {
    const p = tcpPacket({ ip: { mf: true }, payload: new Uint8Array(8) });
    const q = decodeOk(encodeIpv4(p));
    expect(q.l4.kind).toBe("tcp");
    expect(q.l4Checksum).toBe("unknown");
  });

  it("parses the quoted datagram of an ICMP error and round-trips it", () => {
    const inner = encodeIpv4(udpPacket(new Uint8Array(20)));
    const icmpErr = portUnreachable(
      inner,
      decodeOk(inner).ip,
      ipHeader({ protocol: IPPROTO_ICMP, src: ip4(203, 0, 113, 9), dst: ip4(192, 0, 2, 1) }),
    );
    const bytes = encodeIpv4(icmpErr);
    expect(bytes.length).toBe(20 + 8 + 20 + 8);
    const q = decodeOk(bytes);
    expect(q.l4Checksum).toBe("correct");
    if (q.l4.kind !== "icmp" || !q.l4.quote)
      throw new Error(`got ${q.l4.kind} without quote, want icmp error`);
    expect(q.l4.quote.ip.src).toBe(ip4(192, 0, 2, 1));
    expect(q.l4.quote.ip.totalLength).toBe(inner.length);
    expect(Array.from(q.l4.quote.l4)).toEqual(Array.from(inner.slice(20, 28)));
    expect(q.payloadLength).toBe(0);
  });

  it('encodes with checksums "carried": the same bytes but the checksums, which are the packet\'s own', () => {
    const inner = encodeIpv4(udpPacket(new Uint8Array(20)));
    const withSums = (p: Packet, ipSum: number, l4Sum: number): Packet => ({
      ...p,
      ip: { ...p.ip, checksum: ipSum },
      l4: { ...p.l4, checksum: l4Sum } as Packet["l4"],
    });
    const icmpErr = portUnreachable(
      inner,
      { ...decodeOk(inner).ip, checksum: 0x4242 },
      ipHeader({ protocol: IPPROTO_ICMP }),
    );
    const cases: [Packet, number][] = [
      [withSums(tcpPacket({ payload: new Uint8Array(40).fill(7) }), 0x1234, 0xabcd), 16],
      [withSums(udpPacket(new Uint8Array(30).fill(9)), 0x1234, 0xabcd), 6],
      [withSums(udpPacket(new Uint8Array(3)), 0x1234, 0), 6],
      [withSums(icmpErr, 0x1234, 0xabcd), 2],
    ];
    for (const [p, at] of cases) {
      const computed = encodeIpv4(p);
      const carried = encodeIpv4(p, "carried");
      const dv = new DataView(carried.buffer);
      expect(dv.getUint16(10), `${p.l4.kind}: IP header checksum as carried`).toBe(0x1234);
      expect(dv.getUint16(20 + at), `${p.l4.kind}: transport checksum as carried`).toBe(
        (p.l4 as { checksum: number }).checksum,
      );
      const skip = new Set([10, 11, 20 + at, 21 + at]);
      if (p.l4.kind === "icmp") {
        expect(dv.getUint16(28 + 10), "the quoted header's checksum as carried").toBe(0x4242);
        skip.add(38).add(39);
      }
      expect(carried.length).toBe(computed.length);
      for (let i = 0; i < computed.length; i++)
        if (!skip.has(i)) expect(carried[i], `${p.l4.kind}: byte ${i}`).toBe(computed[i]);
    }
  });

  it("leaves echo requests without a quote and keeps id/sequence", () => {
    const p: Packet = {
      ...udpPacket(),
      ip: ipHeader({ protocol: IPPROTO_ICMP }),
      l4: { kind: "icmp", type: 8, code: 0, checksum: 0, restOfHeader: 0x12340001 },
      payloadLength: 56,
      payload: undefined,
    };
    const q = decodeOk(encodeIpv4(p));
    expect(q.l4).toMatchObject({ kind: "icmp", type: 8, restOfHeader: 0x12340001 });
    expect(q.l4.kind === "icmp" && "quote" in q.l4).toBe(false);
    expect([q.payloadLength, q.l4Checksum]).toEqual([56, "correct"]);
  });

  it("keeps IP options and recomputes the header length", () => {
    const p = tcpPacket({ ip: { options: Uint8Array.of(0x94, 0x04, 0, 0) } }); // router alert
    const q = decodeOk(encodeIpv4(p));
    expect(q.ip.ihl).toBe(24);
    expect(Array.from(q.ip.options)).toEqual([0x94, 4, 0, 0]);
    expect(q.ipChecksum).toBe("correct");
  });

  it("reports malformed headers as failures, not exceptions", () => {
    const good = encodeIpv4(tcpPacket());
    expect(failure(good, 19)).toMatch(/truncated IPv4 header/);
    const v6 = good.slice();
    v6[0] = 0x60;
    expect(failure(v6)).toMatch(/not IPv4 \(version 6\)/);
    const ihl = good.slice();
    ihl[0] = 0x44;
    expect(failure(ihl)).toMatch(/bad IPv4 header length 16/);
    const tot = good.slice();
    tot[2] = 0;
    tot[3] = 10;
    expect(failure(tot)).toMatch(/total length 10/);
    const doff = good.slice();
    doff[32] = 0x40;
    expect(failure(doff)).toMatch(/bad TCP data offset 16/);
    expect(failure(good, 30)).toMatch(/truncated TCP header/);
    expect(failure(good, 41)).toMatch(/truncated TCP options/);
  });

  it("words every failure with its numbers", () => {
    const good = encodeIpv4(tcpPacket());
    const edit = (b: Uint8Array, at: number, v: number) => {
      const c = b.slice();
      c[at] = v;
      return c;
    };
    const withOpts = encodeIpv4(tcpPacket({ ip: { options: Uint8Array.of(0x94, 0x04, 0, 0) } }));
    const beyond = edit(edit(good, 2, 0), 3, 44); // total length 44: 24 bytes of TCP, data offset 28
    const udp = encodeIpv4(udpPacket());
    const icmp = encodeIpv4({
      ...udpPacket(),
      ip: ipHeader({ protocol: IPPROTO_ICMP }),
      l4: { kind: "icmp", type: 8, code: 0, checksum: 0, restOfHeader: 0 },
      payloadLength: 0,
      payload: undefined,
    });
    expect([
      failure(edit(good, 0, 0x65), 10),
      failure(good, 12),
      failure(edit(good, 0, 0x44)),
      failure(withOpts, 22),
      failure(edit(edit(good, 2, 0), 3, 10)),
      failure(good, 35),
      failure(edit(good, 32, 0x40)),
      failure(beyond),
      failure(good, 41),
      failure(udp, 25),
      failure(icmp, 27),
    ]).toEqual([
      "not IPv4 (version 6)",
      "truncated IPv4 header (12 bytes captured)",
      "bad IPv4 header length 16",
      "truncated IPv4 options (22 of 24 header bytes captured)",
      "IPv4 total length 10 below header length 20",
      "truncated TCP header (15 bytes)",
      "bad TCP data offset 16",
      "TCP data offset 28 beyond datagram (24 bytes)",
      "truncated TCP options (21 of 28 bytes)",
      "truncated UDP header (5 bytes)",
      "truncated ICMP header (7 bytes)",
    ]);
  });

  it("carries capture metadata into the packet", () => {
    const link = { dst: "02:00:00:00:00:02", src: "02:00:00:00:00:01", ethertype: 0x0800, vlans: [] };
    const r = decodeIpv4(encodeIpv4(tcpPacket()), 0, 52, {
      ...META,
      iface: "eth0",
      direction: "In",
      link,
    });
    expect(isDecodeFailure(r) ? r : { ...r, l4: undefined, ip: undefined, payload: undefined }).toMatchObject(
      {
        iface: "eth0",
        direction: "In",
        link,
        tsSec: META.tsSec,
        tsNsec: META.tsNsec,
        origin: "t#1",
      },
    );
  });

  it("frames Ethernet with QinQ tags", () => {
    const frame = encodeEthernet(udpPacket(), {
      src: "02:00:00:00:00:01",
      dst: "ff:ff:ff:ff:ff:ff",
      vlans: [100, 200],
    });
    expect(Array.from(frame.slice(0, 6))).toEqual([255, 255, 255, 255, 255, 255]);
    expect(Array.from(frame.slice(12, 22))).toEqual([0x88, 0xa8, 0, 100, 0x81, 0x00, 0, 200, 0x08, 0x00]);
    expect(decodeOk(frame.subarray(22)).l4Checksum).toBe("correct");
  });

  it("round-trips arbitrary TCP/UDP/ICMP packets (property)", () => {
    const u32 = fc.nat({ max: 0xffffffff });
    const u16 = fc.nat({ max: 0xffff });
    const option: fc.Arbitrary<TcpOption> = fc.oneof(
      fc.constant<TcpOption>({ kind: "nop" }),
      u16.map<TcpOption>((value) => ({ kind: "mss", value })),
      fc.nat({ max: 14 }).map<TcpOption>((shift) => ({ kind: "wscale", shift })),
      fc.constant<TcpOption>({ kind: "sackPermitted" }),
      fc.tuple(u32, u32).map<TcpOption>(([tsval, tsecr]) => ({ kind: "timestamp", tsval, tsecr })),
      fc
        .array(fc.tuple(u32, u32), { minLength: 1, maxLength: 3 })
        .map<TcpOption>((blocks) => ({ kind: "sack", blocks })),
    );
    const ip = fc.record({
      tos: fc.nat({ max: 255 }),
      id: u16,
      rf: fc.boolean(),
      df: fc.boolean(),
      ttl: fc.nat({ max: 255 }),
      src: u32,
      dst: u32,
    });
    const payload = fc.uint8Array({ maxLength: 64 });
    const l4 = fc.oneof(
      fc
        .record({
          srcPort: u16,
          dstPort: u16,
          seq: u32,
          ack: u32,
          flags: fc.nat({ max: 0x1ff }),
          window: u16,
          urgentPointer: u16,
          options: fc.array(option, { maxLength: 4 }).filter((o) => o.length <= 5),
        })
        .map((t) => ({ kind: "tcp" as const, reserved: 0, checksum: 0, dataOffset: 20, ...t })),
      fc
        .record({ srcPort: u16, dstPort: u16 })
        .map((u) => ({ kind: "udp" as const, length: 0, checksum: 0, ...u })),
      fc
        .record({ type: fc.constantFrom(0, 8, 13, 14), code: fc.nat({ max: 255 }), restOfHeader: u32 })
        .map((i) => ({ kind: "icmp" as const, checksum: 0, ...i })),
    );
    fc.assert(
      fc.property(ip, l4, payload, (ipf, l4f, pl) => {
        const optBytes =
          l4f.kind === "tcp"
            ? l4f.options.reduce(
                (n, o) =>
                  n +
                  (o.kind === "sack"
                    ? 2 + 8 * o.blocks.length
                    : { nop: 1, mss: 4, wscale: 3, sackPermitted: 2, timestamp: 10 }[o.kind as "nop"]),
                0,
              )
            : 0;
        fc.pre(optBytes <= 40);
        const protocol = l4f.kind === "tcp" ? 6 : l4f.kind === "udp" ? 17 : 1;
        const p: Packet = {
          ip: ipHeader({ ...ipf, protocol }),
          l4: l4f,
          payloadLength: pl.length,
          payload: pl,
          tsSec: META.tsSec,
          tsNsec: META.tsNsec,
          ipChecksum: "unknown",
          l4Checksum: "unknown",
        };
        const q = decodeOk(encodeIpv4(p));
        expect([q.ipChecksum, q.l4Checksum]).toEqual(["correct", "correct"]);
        const want = essence(p) as ReturnType<typeof essence> & { l4: { dataOffset?: number } };
        if (q.l4.kind === "tcp" && p.l4.kind === "tcp") {
          // Zero padding after the options reads back as an end-of-list option, as tcpdump prints it.
          const options = optBytes % 4 ? [...p.l4.options, { kind: "eol" }] : p.l4.options;
          want.l4 = { ...want.l4, options, dataOffset: 20 + ((optBytes + 3) & ~3) } as typeof want.l4;
        }
        expect(essence(q)).toEqual({ ...want, iface: undefined, direction: undefined, link: undefined });
        // Encoding is a fixed point once decoded.
        expect(Array.from(encodeIpv4(q))).toEqual(Array.from(encodeIpv4(p)));
      }),
      { numRuns: 300 },
    );
  });
});
