import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { packetsOf, readCaptureBytes } from "../../src/wire/capture";
import type { Packet } from "../../src/wire/packet";
import { PcapngWriter, timestampWords, writePcapng } from "../../src/wire/pcapng_writer";
import { tcpPacket, udpPacket } from "./capture_builders";

const FIXTURES = join(import.meta.dirname, "../fixtures/pcap");
// Includes captures whose checksums are wrong on the wire (syslog_udp, accecn_handshake, print-flags): the
// writer must emit correct ones.
const SOURCES = [
  "ssh.pcap",
  "dns_udp.pcap",
  "syslog_udp.pcap",
  "accecn_handshake.pcap",
  "print-flags.pcap",
  "tcp-handshake-nano.pcap",
  "afs.pcap",
  "mpls-traceroute.pcap",
  "tcp_rst_diag_payload.pcap",
];

function fixturePackets(): Packet[] {
  return SOURCES.flatMap((f) =>
    packetsOf(
      readCaptureBytes(new Uint8Array(readFileSync(join(FIXTURES, f))), { file: f, defaultIface: "eth0" }),
    ),
  );
}

/** Packet fields a rewrite keeps: carried checksums, their verdicts and the origin may differ. */
function essence(p: Packet) {
  const l4 = p.l4.kind === "other" ? p.l4 : { ...p.l4, checksum: 0 };
  return { ...p, ip: { ...p.ip, checksum: 0 }, l4, ipChecksum: "-", l4Checksum: "-", origin: "-" };
}

const TCPDUMP = ["/usr/sbin/tcpdump", "/usr/bin/tcpdump"].find((p) => existsSync(p));

describe("PcapngWriter", () => {
  it("writes a file that reads back to the same packets", () => {
    const packets = fixturePackets();
    expect(packets.length).toBeGreaterThan(600);
    // ssh.pcap comes first, so the file is Ethernet; cooked/PPP/loopback packets get zero MACs.
    const back = packetsOf(readCaptureBytes(writePcapng(packets), { file: "w.pcapng" }));
    expect(back.length, `got ${back.length} packets back, want ${packets.length}`).toBe(packets.length);
    const zero = { dst: "00:00:00:00:00:00", src: "00:00:00:00:00:00", ethertype: 0x800, vlans: [] };
    for (let i = 0; i < packets.length; i++) {
      expect(essence(back[i]), `packet ${i} (${packets[i].origin})`).toEqual(
        essence({ ...packets[i], link: packets[i].link ?? zero }),
      );
      expect([back[i].ipChecksum, back[i].l4Checksum], `${packets[i].origin}`).toEqual(
        packets[i].l4.kind === "other" || packets[i].ip.mf ? ["correct", "unknown"] : ["correct", "correct"],
      );
    }
  });

  it("drops MACs in raw mode and keeps everything else", () => {
    const packets = fixturePackets().slice(0, 60);
    const back = packetsOf(readCaptureBytes(writePcapng(packets, { linkType: "raw" })));
    expect(back.map(essence)).toEqual(packets.map((p) => essence({ ...p, link: undefined })));
  });

  it("emits one SHB, one IDB per interface and the direction flags", () => {
    const w = new PcapngWriter();
    const a = { ...tcpPacket(), iface: "eth0", direction: "In" as const };
    const b = { ...udpPacket(), iface: "eth1", direction: "Out" as const };
    const chunks = [w.write(a), w.write(b), w.write(a), w.finish()];
    const blockTypes = (bytes: Uint8Array) => {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const types: number[] = [];
      for (let o = 0; o < bytes.length; o += dv.getUint32(o + 4, true)) types.push(dv.getUint32(o, true));
      return types;
    };
    expect(chunks.map(blockTypes)).toEqual([[0x0a0d0d0a, 1, 6], [1, 6], [6], []]);
    const back = packetsOf(readCaptureBytes(Uint8Array.from(chunks.flatMap((c) => Array.from(c)))));
    expect(back.map((p) => [p.iface, p.direction, p.tsSec, p.tsNsec])).toEqual([
      ["eth0", "In", a.tsSec, a.tsNsec],
      ["eth1", "Out", b.tsSec, b.tsNsec],
      ["eth0", "In", a.tsSec, a.tsNsec],
    ]);
    expect(readCaptureBytes(new PcapngWriter().finish())).toEqual([]);
  });

  it("timestamps: the exact 64-bit nanoseconds of BigInt, for any second below 2^32 (property) and beyond", () => {
    const viaBigInt = (sec: number, nsec: number): [number, number] => {
      const ts = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
      return [Number((ts >> 32n) & 0xffffffffn), Number(ts & 0xffffffffn)];
    };
    const words = (sec: number, nsec: number): [number, number] => {
      const dv = new DataView(new ArrayBuffer(8));
      timestampWords(sec, nsec, dv, 0);
      return [dv.getUint32(0, true), dv.getUint32(4, true)];
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 999_999_999 }),
        (sec, nsec) => {
          expect(words(sec, nsec)).toEqual(viaBigInt(sec, nsec));
        },
      ),
      { numRuns: 2000 },
    );
    for (const [sec, nsec] of [
      [0, 0],
      [0xffffffff, 999_999_999],
      [65535, 999_999_999],
      [65536, 0],
      [0x100000000, 5], // beyond 2^32 s: the BigInt path
      [1_700_000_000, 123_456_789],
    ])
      expect(words(sec, nsec), `${sec} s ${nsec} ns`).toEqual(viaBigInt(sec, nsec));
  });

  it.skipIf(!TCPDUMP)("produces a file tcpdump reads with every checksum correct", () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsim-writer-"));
    try {
      const file = join(dir, "out.pcapng");
      const packets = fixturePackets();
      writeFileSync(file, writePcapng(packets));
      const text = execFileSync(TCPDUMP!, ["-vv", "-nn", "-r", file], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 << 20,
      });
      const verdicts =
        text.match(/\((correct|incorrect)[^)]*\)|\[udp sum ok\]|\[bad udp cksum[^\]]*\]|wrong icmp cksum/g) ??
        [];
      const bad = verdicts.filter((v) => !/correct\)|sum ok/.test(v) || v.startsWith("(incorrect"));
      expect(bad, `got ${bad.length} bad checksum verdicts, want none`).toEqual([]);
      expect(text).not.toMatch(/incorrect|bad udp cksum|wrong icmp cksum/);
      // Every TCP segment and every UDP datagram with a checksum got a verdict from tcpdump.
      const tcp = packets.filter((p) => p.l4.kind === "tcp").length;
      expect(
        verdicts.length,
        `got ${verdicts.length} checksum verdicts for ${tcp} TCP segments`,
      ).toBeGreaterThanOrEqual(tcp);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  if (!TCPDUMP)
    it("tcpdump check skipped: tcpdump not found in /usr/sbin or /usr/bin", () =>
      expect(TCPDUMP).toBeUndefined());
});
