import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseIpv4 } from "../../src/wire/addr";
import {
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
} from "../../src/wire/packet";
import type { Packet } from "../../src/wire/packet";
import { TEXT_DEFAULTS, TextReader, parseTcpdumpText } from "../../src/wire/text";

const fixture = (name: string) => readFileSync(new URL(`../fixtures/text/${name}`, import.meta.url), "utf8");
const ip = (s: string) => parseIpv4(s)!;

function one(text: string, opts = {}): Packet {
  const r = parseTcpdumpText(text, opts);
  expect(r.errors, `errors: ${r.errors.map((e) => e.message).join("; ")}`).toEqual([]);
  expect(r.packets.length, `got ${r.packets.length} packets, want 1`).toBe(1);
  return r.packets[0];
}

function tcp(p: Packet) {
  if (p.l4.kind !== "tcp") throw new Error(`got l4 ${p.l4.kind}, want tcp`);
  return p.l4;
}

describe("field report 001 (-v two-line pairs)", () => {
  it("reads the SNAT'd SYN pair with every printed field", () => {
    const r = parseTcpdumpText(fixture("seed001_snat_ok.txt"), { file: "seed001_snat_ok.txt" });
    expect(r.errors).toEqual([]);
    expect(r.packets).toHaveLength(2);
    const [a, b] = r.packets;
    expect(a.ip).toMatchObject({
      tos: 0,
      ttl: 64,
      id: 44608,
      df: false,
      mf: false,
      protocol: 6,
      totalLength: 40,
    });
    expect(a.ip.src).toBe(ip("192.168.100.105"));
    expect(a.ip.dst).toBe(ip("2.2.2.2"));
    expect(tcp(a)).toMatchObject({
      srcPort: 1836,
      dstPort: 80,
      flags: TCP_SYN,
      seq: 1848868094,
      window: 512,
    });
    expect(tcp(a).checksum).toBe(0x4b19);
    expect(a.l4Checksum).toBe("correct");
    expect(a.ipChecksum).toBe("correct");
    expect(a.payloadLength).toBe(0);
    expect(a.tsSec).toBe(15 * 3600 + 33 * 60 + 24);
    expect(a.tsNsec).toBe(179455000);
    expect(a.origin).toBe("seed001_snat_ok.txt:1");
    expect(b.ip.ttl).toBe(63);
    expect(b.ip.src).toBe(ip("192.168.100.104"));
    expect(tcp(b).checksum).toBe(0x4b1a);
  });

  it("strict mode: the cut-off header and the '...........' line are errors at file:line:column", () => {
    const r = parseTcpdumpText(fixture("seed001_fin_loop.txt"), { file: "fin.txt" });
    expect(r.packets.map((p) => p.ip.ttl)).toEqual([64, 63, 62]);
    for (const p of r.packets) expect(tcp(p).flags).toBe(TCP_FIN);
    expect(r.errors.map((e) => [e.line, e.column, e.code])).toEqual([
      [7, 17, "TEXT_EXPECTED_ADDRESS_LINE"],
      [8, 1, "TEXT_EXPECTED_IP"],
    ]);
    expect(r.errors[1].file).toBe("fin.txt");
    expect(r.errors[1].message).toContain("expected");
  });

  it("lenient mode skips and counts the same lines", () => {
    const r = parseTcpdumpText(fixture("seed001_fin_loop.txt"), { lenient: true });
    expect(r.errors).toEqual([]);
    expect(r.skipped).toBe(2);
    expect(r.packets).toHaveLength(3);
    const n = parseTcpdumpText(fixture("seed001_notrack_loop.txt"), { lenient: true });
    expect(n.packets.map((p) => [p.ip.ttl, p.ip.id, tcp(p).seq])).toEqual([
      [64, 41018, 1794239821],
      [63, 41018, 1794239821],
      [62, 41018, 1794239821],
    ]);
    expect(n.skipped).toBe(1);
  });
});

describe("field report 002 (Geneve over UDP, pasted without its header)", () => {
  it("reads the outer UDP packet and sizes it from the encapsulated header", () => {
    const r = parseTcpdumpText(fixture("seed002_geneve.txt"), { lenient: true });
    expect(r.packets).toHaveLength(1);
    const p = r.packets[0];
    expect(p.l4).toMatchObject({ kind: "udp", srcPort: 60001, dstPort: 6081 });
    expect(p.ip.src).toBe(ip("192.168.101.247"));
    expect(p.ip.dst).toBe(ip("192.168.101.235"));
    expect(p.l4Checksum).toBe("correct");
    // Geneve 8 + options 12+12+8 + inner Ethernet 14 + inner IP 40.
    expect(p.payloadLength).toBe(94);
    expect(p.ip.totalLength).toBe(20 + 8 + 94);
    expect(p.ip.ttl).toBe(TEXT_DEFAULTS.ttl);
    // The trailing header line has no address line.
    expect(r.skipped).toBe(1);
  });

  it("reads the encapsulated -v pair on its own (port name https)", () => {
    const lines = fixture("seed002_geneve.txt").split("\n").slice(1, 3).join("\n");
    const p = one(lines);
    expect(p.ip).toMatchObject({ ttl: 254, id: 29162, df: true, totalLength: 40, protocol: 6 });
    expect(tcp(p)).toMatchObject({
      srcPort: 48354,
      dstPort: 443,
      flags: TCP_ACK,
      seq: 2388,
      ack: 5780,
      window: 356,
    });
    expect(tcp(p).checksum).toBe(0xb792);
    expect(p.l4Checksum).toBe("correct");
  });

  it("strict mode reports the header-only last line", () => {
    const r = parseTcpdumpText(fixture("seed002_geneve.txt"));
    expect(r.errors.map((e) => [e.line, e.code])).toEqual([[4, "TEXT_EXPECTED_ADDRESS_LINE"]]);
  });
});

describe("tcpdump's own test outputs", () => {
  it("ssh.out (-# -tttt -n): 54 TCP packets, no errors", () => {
    const r = parseTcpdumpText(fixture("tcpdump_ssh.out"));
    expect(r.errors).toEqual([]);
    expect(r.packets).toHaveLength(54);
    const syn = r.packets[0];
    expect(syn.tsSec).toBe(Date.UTC(2018, 11, 23, 10, 50, 9) / 1000);
    expect(tcp(syn).options).toEqual([
      { kind: "mss", value: 1460 },
      { kind: "nop" },
      { kind: "wscale", shift: 6 },
      { kind: "nop" },
      { kind: "nop" },
      { kind: "timestamp", tsval: 1948436430, tsecr: 0 },
      { kind: "sackPermitted" },
      { kind: "eol" },
    ]);
    expect(tcp(syn).dataOffset).toBe(44);
    const data = r.packets[3]; // seq 1:22 ... length 21: SSH: ...
    expect(tcp(data).flags).toBe(TCP_PSH | TCP_ACK);
    expect(tcp(data).seq).toBe(1);
    expect(data.payloadLength).toBe(21);
  });

  it("ssh -vv -e: link addresses and TCP header length from the IP length", () => {
    const r = parseTcpdumpText(fixture("tcpdump_ssh-vv-e.txt"));
    expect(r.errors).toEqual([]);
    expect(r.packets).toHaveLength(54);
    expect(r.packets[0].link).toEqual({
      src: "8c:85:90:3f:77:dd",
      dst: "d4:ca:6d:2e:7f:67",
      ethertype: 0x0800,
      vlans: [],
    });
    expect(r.packets[1].ip.tos).toBe(0x48);
    for (const p of r.packets) {
      const t = tcp(p);
      expect(20 + t.dataOffset + p.payloadLength, `${p.origin}`).toBe(p.ip.totalLength);
    }
  });

  it("cooked capture -e: Out/In direction", () => {
    const r = parseTcpdumpText(fixture("tcpdump_tcp-handshake-nano-vv-e.txt"));
    expect(r.errors).toEqual([]);
    expect(r.packets.map((p) => p.direction)).toEqual(["Out", "In", "Out"]);
    expect(r.packets.map((p) => tcp(p).flags)).toEqual([TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK]);
  });

  it("accecn -v: [SEWe], (incorrect -> 0x..), unknown option kept as a kind", () => {
    const r = parseTcpdumpText(fixture("tcpdump_accecn_handshake.out"));
    expect(r.errors).toEqual([]);
    const p = r.packets[0];
    expect(tcp(p).flags).toBe(TCP_SYN | TCP_ECE | TCP_CWR | 0x100);
    expect(p.l4Checksum).toBe("incorrect");
    expect(tcp(p).checksum).toBe(0x209c);
    expect(tcp(r.packets[1]).options.some((o) => o.kind === "unknown" && o.type === 254)).toBe(true);
  });

  it("mpls-traceroute -v: ICMP errors take their quoted packet from the following lines", () => {
    const r = parseTcpdumpText(fixture("tcpdump_mpls-traceroute-v.out"));
    expect(r.errors).toEqual([]);
    expect(r.packets).toHaveLength(9);
    expect(r.skipped).toBe(9); // MPLS-labelled probes
    const te = r.packets[0];
    expect(te.l4).toMatchObject({ kind: "icmp", type: 11, code: 0 });
    if (te.l4.kind !== "icmp" || !te.l4.quote) throw new Error("want a quote");
    expect(te.l4.quote.ip).toMatchObject({ ttl: 1, id: 42316, protocol: 17, totalLength: 40 });
    expect(te.l4.quote.ip.src).toBe(ip("12.4.4.4"));
    expect(Array.from(te.l4.quote.l4)).toEqual([0xa5, 0x4b, 0x82, 0x9b, 0, 20, 0, 0]); // 42315 > 33435, len 20
    const pu = r.packets[6];
    expect(pu.l4).toMatchObject({ kind: "icmp", type: 3, code: 3 });
    expect(pu.payloadLength).toBe(0);
  });

  it("mpls-traceroute (no -v): port unreachable builds the quote from the line", () => {
    const r = parseTcpdumpText(fixture("tcpdump_mpls-traceroute.out"));
    const pu = r.packets.find((p) => p.l4.kind === "icmp" && p.l4.type === 3)!;
    if (pu.l4.kind !== "icmp" || !pu.l4.quote) throw new Error("want a quote");
    expect(pu.l4.quote.ip.dst).toBe(ip("12.1.1.1"));
    expect(pu.l4.quote.ip.src).toBe(pu.ip.dst);
    expect(pu.l4.quote.ip.protocol).toBe(17);
    expect((pu.l4.quote.l4[2] << 8) | pu.l4.quote.l4[3]).toBe(33441);
  });

  it("e1000g, rx, dns, tftp, pptp, geneve -vv: all lines read", () => {
    const counts: Array<[string, number]> = [
      ["tcpdump_e1000g.out", 20],
      ["tcpdump_rx_head60.out", 60],
      ["tcpdump_dns_udp.out", 2],
      ["tcpdump_tftp.out", 7],
      ["tcpdump_pptp.out", 23],
      ["tcpdump_geneve-vv.out", 39],
      ["tcpdump_syslog-v.out", 4],
      ["tcpdump_tcp_rst_data-v.out", 1],
    ];
    for (const [name, want] of counts) {
      const r = parseTcpdumpText(fixture(name));
      expect(r.errors, name).toEqual([]);
      expect(r.packets.length, `${name}: got ${r.packets.length} packets, want ${want}`).toBe(want);
    }
    const echo = parseTcpdumpText(fixture("tcpdump_e1000g.out")).packets[0];
    expect(echo.l4).toMatchObject({ kind: "icmp", type: 8, code: 0, restOfHeader: (6901 << 16) | 0 });
    expect(echo.payloadLength).toBe(56);
    const dns = parseTcpdumpText(fixture("tcpdump_dns_udp.out")).packets[0];
    expect(dns.payloadLength).toBe(56); // "(56)" at the end of the DNS decode
    const rx = parseTcpdumpText(fixture("tcpdump_rx_head60.out")).packets;
    const unreach = rx.find((p) => p.l4.kind === "icmp")!;
    expect(unreach.payloadLength).toBe(448 - 8 - 28);
    const gre = parseTcpdumpText(fixture("tcpdump_pptp.out")).packets.find((p) => p.ip.protocol === 47);
    expect(gre?.l4.kind).toBe("other");
  });
});

describe("line forms", () => {
  it("-i any: interface and direction, P/B/M count as In", () => {
    const p = one(
      "15:33:24.100000 eth0  Out IP 10.0.0.1.1000 > 10.0.0.2.80: Flags [S], seq 5, win 64240, length 0",
    );
    expect([p.iface, p.direction]).toEqual(["eth0", "Out"]);
    const q = one(
      "15:33:24.100000 br-lan B   IP 10.0.0.1.1000 > 10.0.0.2.80: Flags [R], seq 5, win 0, length 0",
    );
    expect([q.iface, q.direction]).toEqual(["br-lan", "In"]);
    const d = one("IP 10.0.0.1.1 > 10.0.0.2.2: Flags [.], ack 1, win 5, length 0", { defaultIface: "wan0" });
    expect(d.iface).toBe("wan0");
    expect(d.direction).toBeUndefined();
  });

  it("-tt epoch, nanosecond fractions, no timestamp", () => {
    const p = one("1614000000.123456789 IP 1.2.3.4.53 > 5.6.7.8.1234: UDP, length 30");
    expect([p.tsSec, p.tsNsec]).toEqual([1614000000, 123456789]);
    expect(p.payloadLength).toBe(30);
    expect(p.l4).toMatchObject({ kind: "udp", srcPort: 53, dstPort: 1234, length: 38 });
    expect(p.ip.totalLength).toBe(58);
    const q = one("IP 1.2.3.4.53 > 5.6.7.8.1234: UDP, length 30");
    expect([q.tsSec, q.tsNsec]).toEqual([0, 0]);
  });

  it("HH:MM:SS stamps use baseDate and roll over midnight", () => {
    const r = parseTcpdumpText(
      [
        "23:59:59.900000 IP 1.1.1.1.1 > 2.2.2.2.2: UDP, length 0",
        "00:00:00.100000 IP 1.1.1.1.1 > 2.2.2.2.2: UDP, length 0",
      ].join("\n"),
      { baseDate: 86400 * 10 },
    );
    expect(r.packets.map((p) => p.tsSec)).toEqual([86400 * 10 + 86399, 86400 * 11]);
  });

  it("TCP flags, seq ranges, urg, options", () => {
    const p = one(
      "IP 1.1.1.1.1 > 2.2.2.2.2: Flags [SEW], seq 10, win 512, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
    );
    expect(tcp(p).flags).toBe(TCP_SYN | TCP_ECE | TCP_CWR);
    expect(tcp(p).dataOffset).toBe(40);
    expect(p.ip.totalLength).toBe(60);
    const q = one(
      "IP 1.1.1.1.1 > 2.2.2.2.2: Flags [FPU.], seq 100:150, ack 7, win 9, urg 3, options [sack 2 {1:2}{3:4}]",
    );
    expect(tcp(q).flags).toBe(TCP_FIN | TCP_PSH | TCP_URG | TCP_ACK);
    expect([tcp(q).seq, tcp(q).ack, tcp(q).urgentPointer, q.payloadLength]).toEqual([100, 7, 3, 50]);
    expect(tcp(q).options).toEqual([
      {
        kind: "sack",
        blocks: [
          [1, 2],
          [3, 4],
        ],
      },
    ]);
    expect(tcp(one("IP 1.1.1.1.1 > 2.2.2.2.2: Flags [R.], seq 1, ack 2, win 0, length 0")).flags).toBe(
      TCP_RST | TCP_ACK,
    );
  });

  it("-v header: DF+, MF, tos with ECN, bad IP checksum, tab-indented second line", () => {
    const p = one(
      "IP (tos 0x12,ECT(0), ttl 9, id 7, offset 8, flags [+], proto UDP (17), length 48, bad cksum 1234 (->abcd)!)\n\t1.1.1.1 > 2.2.2.2: ip-proto-17",
    );
    expect(p.ip).toMatchObject({
      tos: 0x12,
      ttl: 9,
      id: 7,
      mf: true,
      df: false,
      fragOffset: 1,
      checksum: 0x1234,
    });
    expect(p.ipChecksum).toBe("incorrect");
    expect(p.l4.kind).toBe("other"); // non-first fragment
    const q = one(
      "IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF+], proto TCP (6), length 52)\n    1.1.1.1.5 > 2.2.2.2.6: Flags [P.], cksum 0x1 (incorrect -> 0x2), seq 1:13, ack 1, win 1, length 12",
    );
    expect([q.ip.df, q.ip.mf]).toEqual([true, true]);
    expect(q.l4Checksum).toBe("incorrect");
  });

  it("ICMP forms", () => {
    const cases: Array<[string, number, number]> = [
      ["ICMP echo reply, id 7, seq 1, length 64", 0, 0],
      ["ICMP 2.2.2.2 udp port 53 unreachable, length 36", 3, 3],
      ["ICMP 2.2.2.2 tcp port http unreachable, length 48", 3, 3],
      ["ICMP host 1.2.3.4 unreachable, length 36", 3, 1],
      ["ICMP host 1.2.3.4 unreachable - admin prohibited filter, length 36", 3, 13],
      ["ICMP 1.2.3.4 unreachable - need to frag (mtu 1400), length 556", 3, 4],
      ["ICMP time exceeded in-transit, length 36", 11, 0],
      ["ICMP redirect 1.2.3.4 to host 5.6.7.8, length 36", 5, 1],
      ["ICMP parameter problem - octet 20, length 36", 12, 0],
    ];
    for (const [desc, type, code] of cases) {
      const p = one(`IP 9.9.9.9 > 8.8.8.8: ${desc}`);
      expect(p.l4, desc).toMatchObject({ kind: "icmp", type, code });
    }
    const frag = one("IP 9.9.9.9 > 8.8.8.8: ICMP 1.2.3.4 unreachable - need to frag (mtu 1400), length 556");
    expect(frag.l4.kind === "icmp" && frag.l4.restOfHeader).toBe(1400);
    const tcpUnreach = one("IP 9.9.9.9 > 8.8.8.8: ICMP 2.2.2.2 tcp port http unreachable, length 48");
    if (tcpUnreach.l4.kind !== "icmp" || !tcpUnreach.l4.quote) throw new Error("want quote");
    expect(tcpUnreach.l4.quote.ip.protocol).toBe(6);
    expect(tcpUnreach.l4.quote.l4[3]).toBe(80);
  });

  it("IPv6, ARP and MPLS lines are skipped in either mode", () => {
    const r = parseTcpdumpText(
      "10:00:00.000000 IP6 ::1.1 > ::1.2: UDP, length 1\n10:00:00.000001 ARP, Request who-has 1.2.3.4 tell 1.2.3.5, length 28",
    );
    expect([r.errors.length, r.skipped, r.packets.length]).toEqual([0, 2, 0]);
  });

  it("comments and blank lines are ignored; CRLF is accepted", () => {
    const r = parseTcpdumpText("# capture\r\n\r\nIP 1.1.1.1.1 > 2.2.2.2.2: UDP, length 0\r\n");
    expect([r.errors.length, r.packets.length]).toEqual([0, 1]);
  });
});

describe("errors", () => {
  const cases: Array<[string, string, number]> = [
    ["15:33:24.1 foo bar", "TEXT_EXPECTED_IP", 12],
    ["IP 1.1.1.1.1 > 2.2.2.2.2: Flags [X], win 1, length 0", "TEXT_BAD_TCP_FLAGS", 34],
    ["IP 1.1.1.1.1 > 2.2.2.2.99999: UDP, length 0", "TEXT_NUMBER_RANGE", 24],
    ["IP 1.1.1.300.1 > 2.2.2.2.2: UDP, length 0", "TEXT_BAD_ADDRESS", 4],
    ["IP 1.1.1.1.1 > 2.2.2.2.2: Flags [S], seq 1, bogus 3, length 0", "TEXT_BAD_TCP_FIELD", 45],
    ["IP 1.1.1.1.1 > 2.2.2.2.2: tcp 0", "TEXT_TCP_NO_FLAGS", 27],
  ];
  for (const [line, code, column] of cases) {
    it(`${code} at column ${column}: ${line}`, () => {
      const r = parseTcpdumpText(line, { file: "x.txt" });
      expect(r.packets).toEqual([]);
      expect(r.errors).toHaveLength(1);
      const d = r.errors[0];
      expect([d.code, d.line, d.column], d.message).toEqual([code, 1, column]);
      expect(d.excerpt).toBe(line);
    });
  }
});

const VALID_LINES = [
  ...fixture("seed001_snat_ok.txt").split("\n"),
  "15:33:24.100000 eth0  Out IP 10.0.0.1.1000 > 10.0.0.2.80: Flags [S.], seq 5, ack 9, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
  "1614000000.123456 IP 1.2.3.4.53 > 5.6.7.8.1234: UDP, length 30",
  "IP 9.9.9.9 > 8.8.8.8: ICMP 2.2.2.2 udp port 53 unreachable, length 36",
  ...fixture("seed002_geneve.txt").split("\n"),
].filter((l) => l.trim() !== "");

describe("properties", () => {
  it("random mutations of valid lines parse or give a Diagnostic inside the line, never throw", () => {
    const mutation = fc.record({
      line: fc.constantFrom(...VALID_LINES),
      pos: fc.nat(),
      del: fc.nat({ max: 6 }),
      ins: fc.string({ maxLength: 6, unit: fc.constantFrom(..."0123456789.:,[]() >-xSFAIPa\tz".split("")) }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (muts) => {
        const lines = muts.map(({ line, pos, del, ins }) => {
          const at = pos % (line.length + 1);
          return line.slice(0, at) + ins + line.slice(at + del);
        });
        for (const lenient of [false, true]) {
          const r = parseTcpdumpText(lines.join("\n"), { lenient });
          for (const d of r.errors) {
            const text = lines[d.line! - 1];
            expect(d.line).toBeGreaterThanOrEqual(1);
            expect(d.line).toBeLessThanOrEqual(lines.length);
            expect(d.column).toBeGreaterThanOrEqual(1);
            expect(d.column!).toBeLessThanOrEqual(text.length + 1);
            expect(d.code).toMatch(/^TEXT_/);
          }
          if (lenient) expect(r.errors).toEqual([]);
          for (const p of r.packets) {
            expect(p.ip.totalLength).toBeGreaterThanOrEqual(20);
            expect(p.ip.totalLength).toBeLessThanOrEqual(0xffff);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it("TextReader gives the same records for any chunking", () => {
    const text = fixture("tcpdump_mpls-traceroute-v.out") + fixture("seed001_fin_loop.txt");
    const whole = parseTcpdumpText(text).records;
    fc.assert(
      fc.property(fc.array(fc.nat({ max: text.length }), { maxLength: 8 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const reader = new TextReader();
        const got = [];
        let prev = 0;
        for (const c of points) {
          got.push(...reader.push(text.slice(prev, c)));
          prev = c;
        }
        got.push(...reader.push(text.slice(prev)), ...reader.end());
        expect(got).toEqual(whole);
      }),
      { numRuns: 50 },
    );
  });
});
