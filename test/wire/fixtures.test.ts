/**
 * Agreement with tcpdump on its own test captures (test/fixtures/pcap, see SOURCES.md): every capture reads
 * without error, and the fields tcpdump prints for plain IPv4 TCP/UDP/ICMP packets match the decoded Packets.
 * Two oracles: tcpdump's upstream .out files, and `*.vv-e-S.txt` recorded here with -vv -e -S (IP header
 * fields, absolute sequence numbers and checksum verdicts).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readCaptureBytes, type Frame } from "../../src/wire/capture";
import { formatIpv4 } from "../../src/wire/addr";
import { encodeIpv4 } from "../../src/wire/ipv4";
import type { Packet } from "../../src/wire/packet";
import { TCP_AE } from "../../src/wire/packet";

const DIR = join(import.meta.dirname, "../fixtures/pcap");
const CAPTURES = readdirSync(DIR)
  .filter((f) => f.endsWith(".pcap"))
  .sort();

/** Upstream expected output -> capture it was produced from. */
const OUT_FILES: Record<string, string> = {
  "LINKTYPE_RAW_ipv4.out": "LINKTYPE_RAW_ipv4.pcap",
  "accecn_handshake.out": "accecn_handshake.pcap",
  "dns_tcp.out": "dns_tcp.pcap",
  "dns_udp.out": "dns_udp.pcap",
  "geneve-gcp.out": "geneve-gcp.pcap",
  "geneve-vv.out": "geneve.pcap",
  "gso-ipv4-geneve-ipv4.out": "gso-ipv4-geneve-ipv4.pcap",
  "icmp-rfc5837.out": "icmp-rfc5837.pcap",
  "ipv4_tcp_http_xml.out": "ipv4_tcp_http_xml.pcap",
  "mpls-traceroute.out": "mpls-traceroute.pcap",
  "mpls-traceroute-v.out": "mpls-traceroute.pcap",
  "mptcp-fclose.out": "mptcp-fclose.pcap",
  "mptcp-tcprst.out": "mptcp-tcprst.pcap",
  "pptp.out": "pptp.pcap",
  "rx.out": "afs.pcap",
  "ssh.out": "ssh.pcap",
  "syslog-v.out": "syslog_udp.pcap",
  "tcp-handshake-micro.out": "tcp-handshake-nano.pcap",
  "tcp_rst_data.out": "tcp_rst_data.pcap",
  "tcp_rst_data-v.out": "tcp_rst_data.pcap",
  "tcp_rst_diag_payload.out": "tcp_rst_diag_payload.pcap",
  "tftp.out": "tftp.pcap",
};

const cache = new Map<string, Frame[]>();
function frames(capture: string): Frame[] {
  let f = cache.get(capture);
  if (!f) {
    f = readCaptureBytes(new Uint8Array(readFileSync(join(DIR, capture))), { file: capture });
    cache.set(capture, f);
  }
  return f;
}

function packetNo(capture: string, n: number): Packet {
  const f = frames(capture)[n - 1];
  if (f === undefined) throw new Error(`${capture}: no frame ${n}`);
  if (f.kind !== "packet") throw new Error(`${capture}#${n}: got skipped (${f.reason}), want an IPv4 packet`);
  return f.packet;
}

/** tcpdump's flag letters (print-tcp.c tcp_flag_values), as a sorted string. */
function flagLetters(flags: number): string {
  const table: [number, string][] = [
    [0x01, "F"],
    [0x02, "S"],
    [0x04, "R"],
    [0x08, "P"],
    [0x10, "."],
    [0x20, "U"],
    [0x40, "E"],
    [0x80, "W"],
    [0x100, "e"],
  ];
  return table
    .filter(([bit]) => flags & bit)
    .map(([, c]) => c)
    .sort()
    .join("");
}

function sorted(s: string): string {
  return [...s].sort().join("");
}

/** "a.b.c.d.port" or "a.b.c.d" */
function endpoint(text: string): { addr: string; port?: number } {
  const parts = text.split(".");
  return parts.length === 5 ? { addr: parts.slice(0, 4).join("."), port: Number(parts[4]) } : { addr: text };
}

function checkTcpText(p: Packet, desc: string, where: string, absoluteSeq: boolean): number {
  if (p.l4.kind !== "tcp") throw new Error(`${where}: got ${p.l4.kind}, want tcp`);
  let checks = 0;
  const flags = /Flags \[([^\]]*)\]/.exec(desc);
  if (flags) {
    const want = flags[1] === "none" ? "" : sorted(flags[1]);
    // tcpdump 4.99.3 (the -S oracle) predates printing AE as "e"; upstream .out files come from a newer one.
    const got = flagLetters(absoluteSeq ? p.l4.flags & ~TCP_AE : p.l4.flags);
    expect(got, `${where}: flags`).toBe(want);
    checks++;
    const syn = flags[1].includes("S") && !flags[1].includes(".");
    const seq = /, seq (\d+)(?::(\d+))?/.exec(desc);
    if (seq && (absoluteSeq || syn)) {
      expect(p.l4.seq, `${where}: seq`).toBe(Number(seq[1]));
      if (seq[2] !== undefined)
        expect(Number(seq[2]) - Number(seq[1]), `${where}: seq range`).toBe(p.payloadLength);
      checks++;
    }
    const ack = /, ack (\d+)/.exec(desc);
    if (ack && absoluteSeq) {
      expect(p.l4.ack, `${where}: ack`).toBe(Number(ack[1]));
      checks++;
    }
    const win = /, win (\d+)/.exec(desc);
    if (win) expect(p.l4.window, `${where}: win`).toBe(Number(win[1]));
  }
  const len = /(?:, length|^tcp) (\d+)/.exec(desc);
  if (len) {
    expect(p.payloadLength, `${where}: TCP payload length`).toBe(Number(len[1]));
    checks++;
  }
  return checks;
}

describe("tcpdump fixture captures", () => {
  it("copies a representative set", () => {
    expect(CAPTURES.length, `got ${CAPTURES.length} captures`).toBeGreaterThanOrEqual(20);
  });

  for (const capture of CAPTURES) {
    it(`${capture} reads without error and every frame is accounted for`, () => {
      const fs = frames(capture);
      expect(fs.length).toBeGreaterThan(0);
      fs.forEach((f, i) => {
        const origin = f.kind === "packet" ? f.packet.origin : f.origin;
        expect(origin).toBe(`${capture}#${i + 1}`);
      });
    });
  }

  for (const [out, capture] of Object.entries(OUT_FILES)) {
    it(`agrees with ${out} on addresses, ports, flags and lengths`, () => {
      let compared = 0;
      const lines = readFileSync(join(DIR, out), "utf8").split("\n");
      // With -v the endpoints move to the line after the IP header: join the two.
      for (let i = 0; i + 1 < lines.length; i++) {
        const v = /^(\s*\d+\s+\S+ \S+) IP \(tos .*\)$/.exec(lines[i]);
        if (v && /^\s+\S+ > \S+: /.test(lines[i + 1])) lines[i] = `${v[1]} IP ${lines[i + 1].trim()}`;
      }
      for (const line of lines) {
        const m = /^\s*(\d+)\s+(?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d+ IP (\S+) > (\S+): (.*)$/.exec(line);
        if (!m) continue;
        const n = Number(m[1]);
        const where = `${out} frame ${n}`;
        const p = packetNo(capture, n);
        const src = endpoint(m[2]);
        const dst = endpoint(m[3].replace(/:$/, ""));
        expect(formatIpv4(p.ip.src), `${where}: src`).toBe(src.addr);
        expect(formatIpv4(p.ip.dst), `${where}: dst`).toBe(dst.addr);
        if (src.port !== undefined) {
          if (p.l4.kind !== "tcp" && p.l4.kind !== "udp")
            throw new Error(`${where}: got ${p.l4.kind}, want ports`);
          expect([p.l4.srcPort, p.l4.dstPort], `${where}: ports`).toEqual([src.port, dst.port]);
        }
        const desc = m[4];
        if (/^(Flags \[|tcp \d)/.test(desc)) checkTcpText(p, desc, where, false);
        else if (/^ICMP /.test(desc)) expect(p.l4.kind, `${where}: l4`).toBe("icmp");
        else if (/^UDP, length (\d+)/.test(desc)) {
          expect(p.payloadLength, `${where}: UDP payload length`).toBe(Number(/length (\d+)/.exec(desc)![1]));
        }
        compared++;
      }
      expect(compared, `${out}: no plain IPv4 line compared`).toBeGreaterThan(0);
    });
  }

  for (const capture of CAPTURES) {
    const oracle = capture.replace(/\.pcap$/, ".vv-e-S.txt");
    it(`agrees with tcpdump -vv -e -S on ${capture} (IP header, seq/ack, checksum verdicts)`, () => {
      const text = readFileSync(join(DIR, oracle), "utf8");
      const records = text.split(/\n(?=\s*\d+\s+\d{4}-\d\d-\d\d )/);
      let compared = 0;
      for (const rec of records) {
        const head = /^\s*(\d+)\s+\S+ \S+ (.*)/.exec(rec);
        if (!head) continue;
        const n = Number(head[1]);
        const where = `${oracle} frame ${n}`;
        const f = frames(capture)[n - 1];
        const ip =
          /\(tos (0x[0-9a-f]+)(?:,[^,]*)?, ttl (\d+), id (\d+), offset (\d+), flags \[([^\]]*)\], proto (\S+) \((\d+)\), length (\d+)/.exec(
            rec,
          );
        // Frames tcpdump decodes as something other than IPv4 (IPv6, ARP, MPLS) must be skipped, not dropped.
        if (
          !ip ||
          !/ethertype IPv4|^IP |^ip: |AF IPv4|Out ethertype IPv4|In ethertype IPv4|IP \(0x0021\)/.test(
            head[2],
          )
        ) {
          expect(f?.kind, `${where}: non-IPv4 frame`).toBe("skipped");
          continue;
        }
        const p = packetNo(capture, n);
        expect(
          [p.ip.tos, p.ip.ttl, p.ip.id, p.ip.fragOffset * 8, p.ip.protocol, p.ip.totalLength],
          `${where}: IP header`,
        ).toEqual([
          parseInt(ip[1], 16),
          Number(ip[2]),
          Number(ip[3]),
          Number(ip[4]),
          Number(ip[7]),
          Number(ip[8]),
        ]);
        expect([p.ip.df, p.ip.mf], `${where}: DF/MF`).toEqual([ip[5].includes("DF"), ip[5].includes("+")]);
        const body = rec.slice(ip.index + ip[0].length);
        const l4 = /\n\s+(\S+) > (\S+): (.*)/.exec(body);
        if (!l4) continue;
        expect(formatIpv4(p.ip.src), `${where}: src`).toBe(endpoint(l4[1]).addr);
        const desc = l4[3];
        if (p.l4.kind === "tcp") {
          checkTcpText(p, desc, where, true);
          const ck = /cksum 0x[0-9a-f]+ \((correct|incorrect)/.exec(desc);
          if (ck) expect(p.l4Checksum, `${where}: TCP checksum verdict`).toBe(ck[1]);
        } else if (p.l4.kind === "udp") {
          if (desc.includes("[udp sum ok]")) expect(p.l4Checksum, `${where}: UDP checksum`).toBe("correct");
          if (desc.includes("[bad udp cksum"))
            expect(p.l4Checksum, `${where}: UDP checksum`).toBe("incorrect");
        } else if (p.l4.kind === "icmp") {
          if (p.l4Checksum !== "unknown") {
            expect(p.l4Checksum === "incorrect", `${where}: ICMP checksum`).toBe(
              desc.includes("wrong icmp cksum"),
            );
          }
        }
        compared++;
      }
      if (capture !== "icmpv6.pcap") expect(compared, `${oracle}: no IPv4 frame compared`).toBeGreaterThan(0);
    });
  }

  it("re-encodes every fully captured, checksum-correct packet to the captured bytes", () => {
    let compared = 0;
    for (const capture of CAPTURES) {
      const bytes = new Uint8Array(readFileSync(join(DIR, capture)));
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (dv.getUint32(0, true) !== 0xa1b2c3d4 || dv.getUint32(20, true) !== 1) continue; // LE usec Ethernet only
      let o = 24;
      for (const f of frames(capture)) {
        const caplen = dv.getUint32(o + 8, true);
        const data = bytes.subarray(o + 16, o + 16 + caplen);
        o += 16 + caplen;
        if (f.kind !== "packet") continue;
        const p = f.packet;
        if (p.ipChecksum !== "correct" || p.l4Checksum !== "correct" || p.link?.vlans.length) continue;
        if ((p.payload?.length ?? 0) !== p.payloadLength) continue;
        if (p.l4.kind === "udp" && (p.l4.checksum === 0 || p.l4.length !== p.ip.totalLength - p.ip.ihl))
          continue;
        const want = data.subarray(14, 14 + p.ip.totalLength);
        const got = encodeIpv4(p);
        expect(Buffer.from(got).toString("hex"), `${p.origin}: re-encoded bytes`).toBe(
          Buffer.from(want).toString("hex"),
        );
        compared++;
      }
    }
    expect(compared, `got ${compared} packets compared`).toBeGreaterThan(450);
  });
});
