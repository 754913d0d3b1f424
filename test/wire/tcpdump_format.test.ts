import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ChecksumStatus, L4Header, Packet, TcpOption } from "../../src/wire/packet";
import { formatAddressLine, formatTcpdump } from "../../src/wire/tcpdump_format";
import { parseTcpdumpText } from "../../src/wire/text";

const fixture = (name: string) => readFileSync(new URL(`../fixtures/text/${name}`, import.meta.url), "utf8");

describe("formatTcpdump against tcpdump's own output", () => {
  // Every TCP/ICMP line tcpdump printed is reproduced up to the payload decode (which we do not print).
  for (const [name, verbose] of [
    ["tcpdump_ssh.out", false],
    ["tcpdump_e1000g.out", false],
    ["tcpdump_mpls-traceroute.out", false],
    ["tcpdump_tcp_rst_data-v.out", true],
    ["seed001_snat_ok.txt", true],
  ] as const) {
    it(name, () => {
      const text = fixture(name);
      const lines = text.split("\n");
      const r = parseTcpdumpText(text);
      expect(r.packets.length).toBeGreaterThan(0);
      for (const rec of r.records) {
        if (rec.kind !== "packet") continue;
        const src = verbose ? lines[rec.line] : lines[rec.line - 1];
        const want = src.trim().replace(/^.*?IP /, "");
        const got = formatAddressLine(rec.packet, verbose);
        expect(want.startsWith(got), `line ${rec.line}:\n got  ${got}\n want ${want}`).toBe(true);
      }
    });
  }

  it("prints the -v header and -i any columns like tcpdump", () => {
    const [p] = parseTcpdumpText(fixture("seed001_snat_ok.txt")).packets;
    expect(formatTcpdump(p, { verbose: true })).toBe(
      fixture("seed001_snat_ok.txt").split("\n").slice(0, 2).join("\n    "),
    );
    expect(formatTcpdump({ ...p, iface: "eth0", direction: "In" }, { iface: true, time: "epoch" })).toBe(
      "56004.179455 eth0  In  IP 192.168.100.105.1836 > 2.2.2.2.80: Flags [S], seq 1848868094, win 512, length 0",
    );
  });

  it("prints an ICMP error's quoted packet under -v", () => {
    const text = fixture("tcpdump_mpls-traceroute-v.out");
    const r = parseTcpdumpText(text);
    const out = formatTcpdump(r.packets[0], { verbose: true, time: "none" });
    expect(out).toBe(
      [
        "IP (tos 0x0, ttl 255, id 5014, offset 0, flags [DF], proto ICMP (1), length 168)",
        "    10.5.0.1 > 12.4.4.4: ICMP time exceeded in-transit, length 148",
        "\tIP (tos 0x0, ttl 1, id 42316, offset 0, flags [none], proto UDP (17), length 40)",
        "    12.4.4.4.42315 > 12.1.1.1.33435: UDP, length 12",
      ].join("\n"),
    );
  });
});

/* Round trip: parse(format(p)) gives back every field the text form carries. */

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const status = fc.constantFrom<ChecksumStatus>("correct", "incorrect", "unknown");

const tcpOption: fc.Arbitrary<TcpOption> = fc.oneof(
  fc.constant({ kind: "nop" as const }),
  fc.constant({ kind: "sackPermitted" as const }),
  u16.map((value) => ({ kind: "mss" as const, value })),
  fc.integer({ min: 0, max: 14 }).map((shift) => ({ kind: "wscale" as const, shift })),
  fc.tuple(u32, u32).map(([tsval, tsecr]) => ({ kind: "timestamp" as const, tsval, tsecr })),
  fc
    .array(fc.tuple(u32, u32), { minLength: 1, maxLength: 2 })
    .map((blocks) => ({ kind: "sack" as const, blocks: blocks.map(([l, r]) => [l, r] as const) })),
);

const l4Arb: fc.Arbitrary<L4Header> = fc.oneof(
  fc
    .record({
      srcPort: u16,
      dstPort: u16,
      seq: u32,
      ack: u32,
      flags: fc.integer({ min: 0, max: 0x1ff }),
      window: u16,
      checksum: u16,
      urgentPointer: u16,
      options: fc.array(tcpOption, { maxLength: 3 }),
    })
    .filter((t) => t.options.filter((o) => o.kind === "sack").length <= 1)
    .map((t) => {
      let bytes = 0;
      for (const o of t.options)
        bytes +=
          o.kind === "sack"
            ? 2 + 8 * o.blocks.length
            : { nop: 1, sackPermitted: 2, mss: 4, wscale: 3, timestamp: 10 }[o.kind as "nop"];
      return { kind: "tcp" as const, ...t, reserved: 0, dataOffset: 20 + Math.ceil(bytes / 4) * 4 };
    }),
  fc
    .record({ srcPort: u16, dstPort: u16 })
    .map((u) => ({ kind: "udp" as const, ...u, length: 0, checksum: 0 })),
  fc.record({ id: u16, seq: u16, reply: fc.boolean() }).map((e) => ({
    kind: "icmp" as const,
    type: e.reply ? 0 : 8,
    code: 0,
    checksum: 0,
    restOfHeader: ((e.id << 16) | e.seq) >>> 0,
  })),
);

const packetArb: fc.Arbitrary<Packet> = fc
  .record({
    l4: l4Arb,
    payloadLength: fc.integer({ min: 0, max: 1400 }),
    tos: fc.integer({ min: 0, max: 255 }),
    ttl: fc.integer({ min: 1, max: 255 }),
    id: u16,
    df: fc.boolean(),
    src: u32,
    dst: u32,
    tsSec: fc.integer({ min: 0, max: 86399 }),
    tsNsec: fc.integer({ min: 0, max: 999_999_999 }),
    l4Checksum: status,
    iface: fc.option(fc.constantFrom("eth0", "wg0", "br-lan"), { nil: undefined }),
    direction: fc.constantFrom<"In" | "Out">("In", "Out"),
  })
  .map((r) => {
    const hl = r.l4.kind === "tcp" ? r.l4.dataOffset : 8;
    const l4 = r.l4.kind === "udp" ? { ...r.l4, length: 8 + r.payloadLength } : r.l4;
    const protocol = l4.kind === "tcp" ? 6 : l4.kind === "udp" ? 17 : 1;
    const p: Packet = {
      ip: {
        ihl: 20,
        tos: r.tos,
        totalLength: 20 + hl + r.payloadLength,
        id: r.id,
        rf: false,
        df: r.df,
        mf: false,
        fragOffset: 0,
        ttl: r.ttl,
        protocol,
        checksum: 0,
        src: r.src,
        dst: r.dst,
        options: new Uint8Array(0),
      },
      l4,
      payloadLength: r.payloadLength,
      ...(r.iface ? { iface: r.iface, direction: r.direction } : {}),
      tsSec: r.tsSec,
      tsNsec: r.tsNsec,
      ipChecksum: "correct",
      l4Checksum: l4.kind === "tcp" ? r.l4Checksum : "unknown",
    };
    return p;
  });

/** What survives the text form: tcpdump prints seq/ack/urg only when they mean something. */
function textView(p: Packet, verbose: boolean): unknown {
  const l4 = p.l4;
  let t: unknown = l4;
  if (l4.kind === "tcp") {
    const seqShown = p.payloadLength > 0 || (l4.flags & 0x07) !== 0;
    t = {
      ...l4,
      seq: seqShown ? l4.seq : 0,
      ack: l4.flags & 0x10 ? l4.ack : 0,
      urgentPointer: l4.flags & 0x20 ? l4.urgentPointer : 0,
      checksum: verbose && (p.l4Checksum !== "unknown" || l4.checksum !== 0) ? l4.checksum : 0,
    };
  }
  return {
    ip: verbose ? p.ip : { ...p.ip, tos: 0, ttl: 64, id: 0, df: false },
    l4: t,
    payloadLength: p.payloadLength,
    iface: p.iface,
    direction: p.direction,
    tsSec: p.tsSec,
    tsNsec: p.tsNsec,
    l4Checksum:
      verbose && l4.kind === "tcp" && (p.l4Checksum !== "unknown" || l4.checksum !== 0)
        ? p.l4Checksum
        : "unknown",
  };
}

describe("round trip", () => {
  for (const verbose of [false, true]) {
    it(`parse(format(p)) keeps every printed field (verbose: ${verbose})`, () => {
      fc.assert(
        fc.property(packetArb, (p) => {
          const text = formatTcpdump(p, { verbose, iface: true });
          const r = parseTcpdumpText(text);
          expect(r.errors, text).toEqual([]);
          expect(r.packets, text).toHaveLength(1);
          const got = r.packets[0];
          const want = textView(p, verbose) as Record<string, unknown>;
          const have = textView(got, verbose) as Record<string, unknown>;
          expect(have, text).toEqual(want);
          if (!verbose) expect(got.ipChecksum).toBe("unknown");
        }),
        { numRuns: 300 },
      );
    });
  }
});
