import { describe, expect, it } from "vitest";
import { parseIpsetSave } from "../../src/ipset/parse_save";
import { ipsetTest, type IpSet } from "../../src/ipset/ipset";
import type { Packet } from "../../src/wire/packet";
import { parseIpv4 } from "../../src/wire/addr";

const SAVE = `# ipset save
create allow hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5d2c1e3f
add allow 192.0.2.1
add allow 192.0.2.9 timeout 30
create nets hash:net family inet hashsize 1024 maxelem 65536
add nets 10.0.0.0/8
add nets 10.1.0.0/16 nomatch
create svc hash:ip,port family inet hashsize 1024 maxelem 65536
add svc 192.0.2.80,tcp:80
add svc 192.0.2.80,udp:53 comment "dns server"
add svc 192.0.2.80,icmp:echo-request
create ports bitmap:port range 0-1024
add ports 20-22
create both list:set size 8
add both allow
add both nets
`;

function ip(a: string): number {
  const v = parseIpv4(a);
  if (v === undefined) throw new Error(a);
  return v;
}

function pkt(src: string, dst: string, l4: Packet["l4"], protocol = 6): Packet {
  return {
    ip: {
      ihl: 20,
      tos: 0,
      totalLength: 40,
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
    },
    l4,
    payloadLength: 0,
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: "correct",
  };
}

const tcp = (sport: number, dport: number): Packet["l4"] => ({
  kind: "tcp",
  srcPort: sport,
  dstPort: dport,
  seq: 0,
  ack: 0,
  dataOffset: 20,
  reserved: 0,
  flags: 2,
  window: 0,
  checksum: 0,
  urgentPointer: 0,
  options: [],
});
const udp = (sport: number, dport: number): Packet["l4"] => ({
  kind: "udp",
  srcPort: sport,
  dstPort: dport,
  length: 8,
  checksum: 0,
});

describe("ipset save parser", () => {
  const r = parseIpsetSave(SAVE, "sets.txt");
  const set = (n: string): IpSet => r.sets.get(n)!;
  it("reads every set and element without diagnostics", () => {
    expect(r.diagnostics).toEqual([]);
    expect([...r.sets.keys()]).toEqual(["allow", "nets", "svc", "ports", "both"]);
    expect(set("ports").elements.map((e) => e.port)).toEqual([20, 21, 22]);
    expect(set("svc").elements[1].comment).toBe("dns server");
  });
  it("locates errors by line and column", () => {
    const bad = parseIpsetSave(
      "create a hash:ip\nadd a 300.1.1.1\nadd nope 1.2.3.4\ncreate b hash:mac\n",
      "x",
    );
    expect(bad.diagnostics.map((d) => [d.line, d.column, d.code])).toEqual([
      [2, 7, "IPSET_ELEMENT"],
      [3, 5, "IPSET_UNKNOWN_SET"],
      [4, 10, "IPSET_TYPE"],
    ]);
  });
  it("refuses nomatch outside hash:net", () => {
    const bad = parseIpsetSave("create a hash:ip\nadd a 1.2.3.4 nomatch\n");
    expect(bad.diagnostics[0]?.message).toMatch(/nomatch/);
  });
});

describe("ipset membership with src/dst flags", () => {
  const { sets } = parseIpsetSave(SAVE);
  const get = (n: string): IpSet => sets.get(n)!;
  const lookup = (n: string): IpSet | undefined => sets.get(n);
  const p = pkt("192.0.2.1", "192.0.2.80", tcp(40000, 80));
  it("hash:ip tests the side the flag names", () => {
    expect(ipsetTest(get("allow"), p, ["src"], 0)).toBe("match");
    expect(ipsetTest(get("allow"), p, ["dst"], 0)).toBe("no");
  });
  it("an element with a timeout expires", () => {
    const q = pkt("192.0.2.9", "192.0.2.80", tcp(1, 2));
    expect(ipsetTest(get("allow"), q, ["src"], 29)).toBe("match");
    expect(ipsetTest(get("allow"), q, ["src"], 30)).toBe("no");
  });
  it("hash:net: the most specific prefix decides, nomatch elements answer nomatch", () => {
    expect(ipsetTest(get("nets"), pkt("10.2.3.4", "1.1.1.1", tcp(1, 2)), ["src"], 0)).toBe("match");
    expect(ipsetTest(get("nets"), pkt("10.1.3.4", "1.1.1.1", tcp(1, 2)), ["src"], 0)).toBe("nomatch-element");
    expect(ipsetTest(get("nets"), pkt("11.1.3.4", "1.1.1.1", tcp(1, 2)), ["src"], 0)).toBe("no");
  });
  it("hash:ip,port keys the port with its protocol", () => {
    expect(ipsetTest(get("svc"), p, ["dst", "dst"], 0)).toBe("match");
    expect(ipsetTest(get("svc"), p, ["dst", "src"], 0)).toBe("no");
    const dns = pkt("192.0.2.1", "192.0.2.80", udp(5000, 53), 17);
    expect(ipsetTest(get("svc"), dns, ["dst", "dst"], 0)).toBe("match");
    const tcp53 = pkt("192.0.2.1", "192.0.2.80", tcp(5000, 53));
    expect(ipsetTest(get("svc"), tcp53, ["dst", "dst"], 0)).toBe("no");
    const echo = pkt(
      "192.0.2.1",
      "192.0.2.80",
      { kind: "icmp", type: 8, code: 0, checksum: 0, restOfHeader: 0 },
      1,
    );
    expect(ipsetTest(get("svc"), echo, ["dst", "dst"], 0)).toBe("match");
  });
  it("bitmap:port", () => {
    expect(ipsetTest(get("ports"), pkt("1.1.1.1", "2.2.2.2", tcp(5, 22)), ["dst"], 0)).toBe("match");
    expect(ipsetTest(get("ports"), pkt("1.1.1.1", "2.2.2.2", tcp(5, 23)), ["dst"], 0)).toBe("no");
  });
  it("list:set: first member that matches", () => {
    expect(ipsetTest(get("both"), pkt("10.9.9.9", "2.2.2.2", tcp(5, 23)), ["src"], 0, lookup)).toBe("match");
    expect(ipsetTest(get("both"), pkt("9.9.9.9", "2.2.2.2", tcp(5, 23)), ["src"], 0, lookup)).toBe("no");
  });
});
