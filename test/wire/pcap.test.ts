import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/errors";
import { readCaptureBytes, type Frame } from "../../src/wire/capture";
import { encodeIpv4 } from "../../src/wire/ipv4";
import type { Packet } from "../../src/wire/packet";
import { OriginNames } from "../../src/wire/pcap";
import { concatBytes, ethernet, pcapFile, tcpPacket, udpPacket } from "./capture_builders";

function packets(frames: Frame[]): Packet[] {
  return frames.map((f) => {
    if (f.kind !== "packet") throw new Error(`got skipped frame ${f.origin}: ${f.reason}, want a packet`);
    return f.packet;
  });
}

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw new Error(`got ${(e as Error)?.name}: ${(e as Error)?.message}, want InputError`);
  }
  throw new Error("got no error, want InputError");
}

const SYN = encodeIpv4(tcpPacket());
const UDP = encodeIpv4(udpPacket());

describe("pcap reader", () => {
  for (const littleEndian of [true, false]) {
    for (const nsec of [false, true]) {
      it(`reads ${littleEndian ? "little" : "big"}-endian ${nsec ? "nanosecond" : "microsecond"} files`, () => {
        const file = pcapFile(1, [{ data: ethernet(SYN), tsSec: 1700000000, tsFrac: 123456 }], {
          littleEndian,
          nsec,
        });
        const [p] = packets(readCaptureBytes(file, { file: "a.pcap", defaultIface: "eth0" }));
        expect(p.tsSec).toBe(1700000000);
        expect(p.tsNsec, `got tsNsec ${p.tsNsec}`).toBe(nsec ? 123456 : 123456000);
        expect(p.iface).toBe("eth0");
        expect(p.origin).toBe("a.pcap#1");
        expect(p.link).toEqual({
          dst: "02:00:00:00:00:02",
          src: "02:00:00:00:00:01",
          ethertype: 0x800,
          vlans: [],
        });
        expect(p.l4.kind === "tcp" && p.l4.dstPort).toBe(80);
        expect([p.ipChecksum, p.l4Checksum]).toEqual(["correct", "correct"]);
      });
    }
  }

  it("unwraps 802.1Q and QinQ tags", () => {
    const file = pcapFile(1, [
      { data: ethernet(SYN, 0x0800, [[0x8100, 0x2064]]) }, // PCP 1, VID 100
      {
        data: ethernet(UDP, 0x0800, [
          [0x88a8, 10],
          [0x8100, 20],
        ]),
      },
    ]);
    const [a, b] = packets(readCaptureBytes(file));
    expect(a.link).toMatchObject({ ethertype: 0x8100, vlans: [100] });
    expect(b.link).toMatchObject({ ethertype: 0x88a8, vlans: [10, 20] });
    expect(b.l4.kind).toBe("udp");
  });

  it("names frame n of a file `file#n`, across thousands boundaries and jumps (property)", () => {
    const names = new OriginNames("c.pcap");
    for (let n = 1; n <= 3001; n++) {
      const got = names.of(n);
      if (got !== `c.pcap#${n}`) expect(got, `frame ${n}`).toBe(`c.pcap#${n}`);
    }
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), (n) => {
        expect(names.of(n), `frame ${n}`).toBe(`c.pcap#${n}`);
      }),
    );
  });

  it("formats each MAC pair once while cached, across more pairs than the cache holds (property)", () => {
    const ip = encodeIpv4(tcpPacket());
    const hex = (n: number) => n.toString(16).padStart(2, "0");
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.tuple(fc.nat({ max: 1500 }), fc.nat({ max: 3 })), { minLength: 1, maxLength: 1200 }),
          fc.array(fc.tuple(fc.nat({ max: 2 }), fc.constant(0)), { minLength: 1, maxLength: 50 }),
        ),
        (pairs) => {
          const records = pairs.map(([s, d]) => {
            const f = ethernet(ip);
            f.set([2, 0, 0, 0, 0xd0, d], 0);
            f.set([2, 0, 0, 0, s >> 8, s & 0xff], 6);
            return { data: f };
          });
          const ps = packets(readCaptureBytes(pcapFile(1, records)));
          ps.forEach((p, i) => {
            const [s, d] = pairs[i];
            const want = {
              dst: `02:00:00:00:d0:${hex(d)}`,
              src: `02:00:00:00:${hex(s >> 8)}:${hex(s & 0xff)}`,
              ethertype: 0x0800,
              vlans: [],
            };
            expect(p.link, `packet ${i}`).toEqual(want);
            // A repeated pair is a cache hit (the table empties only on a miss): the very same object.
            if (i > 0 && pairs[i - 1][0] === s && pairs[i - 1][1] === d) {
              expect(p.link, `packet ${i}: shared with packet ${i - 1}`).toBe(ps[i - 1].link);
            }
          });
        },
      ),
      { numRuns: 30 },
    );
  });

  it("reports non-IPv4 frames as skipped, numbered like the packets", () => {
    const arp = ethernet(new Uint8Array(28), 0x0806);
    const v6 = ethernet(Uint8Array.of(0x60, 0, 0, 0), 0x86dd);
    const frames = readCaptureBytes(pcapFile(1, [{ data: arp }, { data: ethernet(SYN) }, { data: v6 }]), {
      file: "m.pcap",
    });
    expect(frames.map((f) => f.kind)).toEqual(["skipped", "packet", "skipped"]);
    expect(frames[0]).toMatchObject({ origin: "m.pcap#1", reason: "ethertype 0x0806 (ARP)" });
    expect(frames[2]).toMatchObject({ origin: "m.pcap#3", reason: "ethertype 0x86dd (IPv6)" });
  });

  it("reads Linux cooked captures with their direction", () => {
    const sll = (pkttype: number, ip: Uint8Array) => {
      const h = new Uint8Array(16);
      const dv = new DataView(h.buffer);
      dv.setUint16(0, pkttype);
      dv.setUint16(2, 1);
      dv.setUint16(4, 6);
      dv.setUint16(14, 0x0800);
      return concatBytes([h, ip]);
    };
    const ps = packets(
      readCaptureBytes(pcapFile(113, [{ data: sll(0, SYN) }, { data: sll(4, UDP) }, { data: sll(1, UDP) }])),
    );
    expect(ps.map((p) => p.direction)).toEqual(["In", "Out", "In"]);
    expect(ps[0].link).toBeUndefined();
  });

  it("reads SLL2 with interface names by ifindex", () => {
    const sll2 = (ifindex: number, pkttype: number, ip: Uint8Array) => {
      const h = new Uint8Array(20);
      const dv = new DataView(h.buffer);
      dv.setUint16(0, 0x0800);
      dv.setUint32(4, ifindex);
      dv.setUint16(8, 1);
      h[10] = pkttype;
      h[11] = 6;
      return concatBytes([h, ip]);
    };
    const file = pcapFile(276, [{ data: sll2(2, 0, SYN) }, { data: sll2(3, 4, UDP) }]);
    const ps = packets(readCaptureBytes(file, { defaultIface: "any", ifaceByIndex: new Map([[2, "eth0"]]) }));
    expect(ps.map((p) => [p.iface, p.direction])).toEqual([
      ["eth0", "In"],
      ["any", "Out"],
    ]);
  });

  it("reads raw IPv4, BSD loopback (both byte orders) and PPP", () => {
    const af = (le: boolean) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, 2, le);
      return b;
    };
    for (const [lt, data] of [
      [101, SYN],
      [228, SYN],
      [0, concatBytes([af(true), SYN])],
      [0, concatBytes([af(false), SYN])],
      [108, concatBytes([af(false), SYN])],
      [9, concatBytes([Uint8Array.of(0xff, 0x03, 0x00, 0x21), SYN])],
    ] as const) {
      const [p] = packets(readCaptureBytes(pcapFile(lt, [{ data }])));
      expect(p.l4.kind, `link type ${lt}`).toBe("tcp");
    }
    const [f] = readCaptureBytes(pcapFile(147, [{ data: SYN }]));
    expect(f).toMatchObject({ kind: "skipped", reason: "unsupported link type 147" });
  });

  it("rejects a bad magic, version and captured length with offsets", () => {
    const good = pcapFile(1, [{ data: ethernet(SYN) }, { data: ethernet(UDP) }], { littleEndian: false });
    const magic = good.slice();
    magic[0] = 0x12;
    expect(inputError(() => readCaptureBytes(magic, { file: "x" })).diagnostic).toMatchObject({
      code: "CAPTURE_BAD_MAGIC",
      offset: 0,
      file: "x",
    });
    const version = good.slice();
    version[5] = 3;
    expect(inputError(() => readCaptureBytes(version)).diagnostic.code).toBe("PCAP_BAD_VERSION");
    const caplen = good.slice();
    const second = 24 + 16 + ethernet(SYN).length;
    new DataView(caplen.buffer).setUint32(second + 8, 0x7fffffff);
    expect(inputError(() => readCaptureBytes(caplen)).diagnostic).toMatchObject({
      code: "PCAP_BAD_CAPLEN",
      offset: second,
      block: "record 2",
    });
  });

  it("rejects an empty file", () => {
    expect(inputError(() => readCaptureBytes(new Uint8Array(0))).diagnostic.code).toBe("CAPTURE_TRUNCATED");
  });

  it("throws InputError with the record offset for a truncation at every offset (property)", () => {
    const recs = [{ data: ethernet(SYN) }, { data: SYN.subarray(0, 30) }, { data: ethernet(UDP) }];
    const file = pcapFile(1, recs);
    const boundaries = [24];
    for (const r of recs) boundaries.push(boundaries[boundaries.length - 1] + 16 + r.data.length);
    fc.assert(
      fc.property(fc.nat({ max: file.length - 1 }), (cut) => {
        if (boundaries.includes(cut)) {
          const frames = readCaptureBytes(file.subarray(0, cut));
          expect(frames.length).toBe(boundaries.indexOf(cut));
          return;
        }
        const d = inputError(() => readCaptureBytes(file.subarray(0, cut), { file: "t.pcap" })).diagnostic;
        expect(d.code).toMatch(/TRUNCATED$/);
        const want = cut < 24 ? 0 : Math.max(...boundaries.filter((b) => b <= cut));
        expect(d.offset, `cut at ${cut}: got offset ${d.offset}, want ${want}`).toBe(want);
        expect(d.file).toBe("t.pcap");
      }),
      { numRuns: 400 },
    );
  });
});
