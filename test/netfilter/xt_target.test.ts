import { describe, expect, it } from "vitest";
import type { TargetDescriptor } from "../../src/netfilter/registry";
import type { Skb, TargetVerdict, XtActionParam } from "../../src/netfilter/skb";
import { ALL_DESCRIPTORS, defaultRegistry } from "../../src/netfilter/xt/index";
import type { TcpHeader } from "../../src/wire/packet";
import { IPCT_MARK } from "../../src/conntrack/core";
import { FakeHost, conntrackFor, icmp, ip, packet, par, parseOpts, skbOf, tcp, udp } from "./xt_helpers";

function t(
  name: string,
  text: string,
  skb: Skb,
  p: XtActionParam = par(new FakeHost()),
  proto?: number,
): TargetVerdict {
  const d = defaultRegistry.target(name) as TargetDescriptor;
  if (!d.target) throw new Error(`${name} has no target function`);
  return d.target(parseOpts(d, text, proto), skb, p);
}

const SYN = packet("198.51.100.2", "203.0.113.2", tcp(40000, 80, 0x02, [{ kind: "mss", value: 1460 }]));
const DNS = packet("198.51.100.2", "198.51.100.1", udp(5000, 9999), {}, 10);

describe("registry", () => {
  it("every target descriptor except the NAT ones (other engineer) has a target function", () => {
    const nat = ["SNAT", "DNAT", "MASQUERADE", "REDIRECT", "NETMAP"];
    const missing = ALL_DESCRIPTORS.filter(
      (d) => d.kind === "target" && !nat.includes(d.name) && !("target" in d && d.target),
    ).map((d) => d.name);
    expect(missing).toEqual([]);
  });
});

describe("MARK / CONNMARK", () => {
  it("MARK --set-xmark, --or-mark, --and-mark", () => {
    const skb = skbOf(SYN, { mark: 0xf0 });
    expect(t("MARK", "--set-xmark 0x1/0xf", skb)).toBe("CONTINUE");
    expect(skb.mark.toString(16)).toBe("f1");
    t("MARK", "--or-mark 0x100", skb);
    expect(skb.mark).toBe(0x1f1);
    t("MARK", "--and-mark 0xf", skb);
    expect(skb.mark).toBe(0x1);
  });
  it("CONNMARK set/save/restore with masks, through the conntrack API (IPCT_MARK cached)", () => {
    const host = new FakeHost();
    const { table, ct, ctinfo } = conntrackFor(SYN);
    const skb = skbOf(SYN, { ct, ctinfo, mark: 0xab });
    host.setCtMark = (c, v) => table.setMark(c, v);
    expect(t("CONNMARK", "--set-mark 0x10/0xf0", skb, par(host))).toBe("CONTINUE");
    expect(ct.mark).toBe(0x10);
    expect(ct.ecache & (1 << IPCT_MARK)).not.toBe(0);
    t("CONNMARK", "--save-mark --nfmask 0xf --ctmask 0xf", skb, par(host));
    expect(ct.mark, `ctmark: got ${ct.mark.toString(16)}, want 1b`).toBe(0x1b);
    skb.mark = 0xff00;
    t("CONNMARK", "--restore-mark --mask 0xff", skb, par(host));
    expect(skb.mark.toString(16)).toBe("ff1b");
  });
  it("CONNMARK without a conntrack does nothing", () => {
    const skb = skbOf(SYN, { mark: 5 });
    expect(t("CONNMARK", "--restore-mark", skb)).toBe("CONTINUE");
    expect(skb.mark).toBe(5);
  });
});

describe("CT / NOTRACK / TRACE", () => {
  it("CT --notrack marks UNTRACKED and continues; CT --zone sets a template", () => {
    const a = skbOf(SYN);
    expect(t("CT", "--notrack", a)).toBe("CONTINUE");
    expect(a.untracked).toBe(true);
    const b = skbOf(SYN);
    expect(t("NOTRACK", "", b)).toBe("CONTINUE");
    expect(b.untracked).toBe(true);
    const c = skbOf(SYN);
    t("CT", "--zone 7 --helper ftp", c);
    expect(c.ctTemplate?.zone).toBe(7);
    expect(c.untracked).toBe(false);
  });
  it("a packet that already has a conntrack is left alone", () => {
    const { ct, ctinfo } = conntrackFor(SYN);
    const skb = skbOf(SYN, { ct, ctinfo });
    t("CT", "--notrack", skb);
    expect(skb.untracked).toBe(false);
  });
  it("TRACE sets nf_trace", () => {
    const skb = skbOf(SYN);
    expect(t("TRACE", "", skb)).toBe("CONTINUE");
    expect(skb.nfTrace).toBe(true);
  });
});

describe("LOG / NFLOG", () => {
  it("LOG writes the kernel line with the prefix and flags, and continues", () => {
    const p = par(new FakeHost(), { hook: "FORWARD", inIface: "eth0", outIface: "eth1" });
    const skb = skbOf(SYN, { mark: 3 });
    expect(t("LOG", "--log-prefix fw: --log-tcp-sequence", skb, p)).toBe("CONTINUE");
    expect(p.rec.logs).toEqual([
      "fw:IN=eth0 OUT=eth1 MAC= SRC=198.51.100.2 DST=203.0.113.2 LEN=44 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=80 SEQ=1000 ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0 MARK=0x3 ",
    ]);
  });
  it("NFLOG reports with its marker", () => {
    const p = par(new FakeHost(), { hook: "OUTPUT", outIface: "eth1" });
    expect(t("NFLOG", "--nflog-group 5 --nflog-prefix x", skbOf(SYN), p)).toBe("CONTINUE");
    expect(p.rec.logs[0]).toMatch(/^NFLOG group=5 xIN= OUT=eth1 SRC=198\.51\.100\.2 /);
  });
});

describe("REJECT", () => {
  const host = new FakeHost();
  host.local.add(ip("198.51.100.1"));
  it("default icmp-port-unreachable: emits the ICMP error and drops", () => {
    const p = par(host, { hook: "INPUT", inIface: "eth0" });
    expect(t("REJECT", "", skbOf(DNS), p)).toBe("DROP");
    expect(p.rec.emitted.length).toBe(1);
    const e = p.rec.emitted[0].pkt;
    expect([e.ip.src, e.ip.dst, e.ip.tos, e.ip.ttl]).toEqual([
      ip("198.51.100.1"),
      ip("198.51.100.2"),
      0xc0,
      64,
    ]);
    expect(e.l4.kind === "icmp" && [e.l4.type, e.l4.code]).toEqual([3, 3]);
  });
  it("every ICMP --reject-with maps to its code", () => {
    const codes: Record<string, number> = {
      "icmp-net-unreachable": 0,
      "icmp-host-unreachable": 1,
      "icmp-proto-unreachable": 2,
      "icmp-net-prohibited": 9,
      "icmp-host-prohibited": 10,
      "icmp-admin-prohibited": 13,
    };
    for (const [w, code] of Object.entries(codes)) {
      const p = par(host, { hook: "INPUT" });
      t("REJECT", `--reject-with ${w}`, skbOf(DNS), p);
      const e = p.rec.emitted[0]?.pkt;
      expect(e?.l4.kind === "icmp" && e.l4.code, `${w}: code`).toBe(code);
    }
  });
  it("tcp-reset answers a SYN with RST|ACK from the offending destination", () => {
    const p = par(host, { hook: "FORWARD" });
    expect(t("REJECT", "--reject-with tcp-reset", skbOf(SYN), p, 6)).toBe("DROP");
    const r = p.rec.emitted[0].pkt;
    expect([r.ip.src, (r.l4 as TcpHeader).flags, (r.l4 as TcpHeader).ack]).toEqual([
      ip("203.0.113.2"),
      0x14,
      1001,
    ]);
  });
  it("refusals still drop: RST for RST, ICMP error about ICMP error, fragments, bad checksums", () => {
    const rst = packet("198.51.100.2", "203.0.113.2", tcp(1, 2, 0x04));
    const err = packet("198.51.100.2", "198.51.100.1", icmp(3, 1));
    const frag = { ...DNS, ip: { ...DNS.ip, fragOffset: 8 } };
    const bad = { ...DNS, l4Checksum: "incorrect" as const };
    for (const [text, pkt] of [
      ["--reject-with tcp-reset", rst],
      ["", err],
      ["", frag],
      ["", bad],
    ] as const) {
      const p = par(host, { hook: "INPUT" });
      expect(t("REJECT", text, skbOf(pkt), p, 6)).toBe("DROP");
      expect(p.rec.emitted.length, `${text} ${pkt.ip.protocol}: emitted`).toBe(0);
    }
  });
});

describe("TPROXY", () => {
  it("assigns a transparent listener on --on-port, sets the mark, accepts", () => {
    const host = new FakeHost();
    host.sockets.push({
      kind: "listener",
      q: { daddr: 0, dport: 3128 },
      sk: { protocol: "tcp", address: 0, port: 3128, transparent: true, listening: true },
    });
    const skb = skbOf(SYN, { mark: 0xf0 });
    const p = par(host, { hook: "PREROUTING", table: "mangle", inIface: "eth0" });
    expect(t("TPROXY", "--on-port 3128 --tproxy-mark 0x1/0x1", skb, p, 6)).toBe("ACCEPT");
    expect([skb.mark, skb.sk?.port]).toEqual([0xf1, 3128]);
    expect(skb.pkt).toBe(SYN); // not rewritten
  });
  it("drops without a transparent socket", () => {
    const host = new FakeHost();
    host.sockets.push({
      kind: "listener",
      q: { daddr: 0, dport: 3128 },
      sk: { protocol: "tcp", address: 0, port: 3128, transparent: false, listening: true },
    });
    const p = par(host, { hook: "PREROUTING", table: "mangle", inIface: "eth0" });
    expect(t("TPROXY", "--on-port 3128", skbOf(SYN), p, 6)).toBe("DROP");
  });
});

describe("TCPMSS, TTL, DSCP, CHECKSUM", () => {
  it("--set-mss lowers a larger MSS option, never raises", () => {
    const skb = skbOf(SYN);
    t("TCPMSS", "--set-mss 1400", skb);
    expect((skb.pkt.l4 as TcpHeader).options).toEqual([{ kind: "mss", value: 1400 }]);
    t("TCPMSS", "--set-mss 1450", skb);
    expect((skb.pkt.l4 as TcpHeader).options).toEqual([{ kind: "mss", value: 1400 }]);
  });
  it("--clamp-mss-to-pmtu uses the smaller route MTU minus 40; adds 536 at most when the SYN has none", () => {
    const host = new FakeHost();
    host.mtu.set(ip("203.0.113.2"), 1400);
    const skb = skbOf(SYN);
    t("TCPMSS", "--clamp-mss-to-pmtu", skb, par(host, { hook: "FORWARD" }));
    expect((skb.pkt.l4 as TcpHeader).options).toEqual([{ kind: "mss", value: 1360 }]);
    const bare = skbOf(packet("198.51.100.2", "203.0.113.2", tcp(1, 80)));
    t("TCPMSS", "--clamp-mss-to-pmtu", bare, par(host, { hook: "FORWARD" }));
    expect((bare.pkt.l4 as TcpHeader).options).toEqual([{ kind: "mss", value: 536 }]);
    expect([bare.pkt.ip.totalLength, (bare.pkt.l4 as TcpHeader).dataOffset]).toEqual([44, 24]);
    host.mtu.set(ip("203.0.113.2"), 40);
    expect(t("TCPMSS", "--clamp-mss-to-pmtu", skbOf(SYN), par(host))).toBe("DROP");
  });
  it("TTL set/inc/dec saturate", () => {
    const skb = skbOf(SYN);
    t("TTL", "--ttl-dec 100", skb);
    expect(skb.pkt.ip.ttl).toBe(0);
    t("TTL", "--ttl-inc 255", skb);
    expect(skb.pkt.ip.ttl).toBe(255);
    t("TTL", "--ttl-set 9", skb);
    expect(skb.pkt.ip.ttl).toBe(9);
  });
  it("DSCP keeps the ECN bits", () => {
    const skb = skbOf({ ...SYN, ip: { ...SYN.ip, tos: 0x03 } });
    t("DSCP", "--set-dscp-class EF", skb);
    expect(skb.pkt.ip.tos).toBe((0x2e << 2) | 0x03);
  });
  it("CHECKSUM leaves the packet alone", () => {
    const skb = skbOf(SYN);
    expect(t("CHECKSUM", "--checksum-fill", skb)).toBe("CONTINUE");
    expect(skb.pkt).toBe(SYN);
  });
});
