import { describe, expect, it } from "vitest";
import { InputError } from "../../src/errors";
import { formatIpv4, parseIpv4 } from "../../src/wire/addr";
import {
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
  connectedRoutes,
  parseHostFile,
  parseRouteLine,
  parseRuleLine,
} from "../../src/host/hostfile";

const NATGW = `hostname: natgw
interfaces:
  - {name: eth0, mac: "00:16:3E:00:cd:08", addresses: ["198.51.100.1/24"]}
  - name: eth1
    mac: "02:00:00:00:01:01"
    addresses: ["203.0.113.1/24", "203.0.113.9/24"]
routes: ["default via 203.0.113.254 dev eth1", "192.0.2.0/24 dev eth1 src 203.0.113.1", "local 0.0.0.0/0 dev lo table 100"]
rules: ["fwmark 100 lookup 100", "from 192.0.2.0/24 lookup 200", "priority 10 not to 198.51.100.0/24 fwmark 0x1/0xff table main"]
sysctl: {net.ipv4.ip_forward: 1, net.netfilter.nf_conntrack_tcp_loose: 0}
sockets: [{address: 0.0.0.0, port: 80, protocol: tcp, transparent: false}, {port: 53, protocol: udp}]
`;

/** Parses and returns the InputError's diagnostic, failing when nothing is thrown. */
function diag(text: string) {
  try {
    parseHostFile(text, "h.yaml");
  } catch (e) {
    if (e instanceof InputError) return e.diagnostic;
    throw e;
  }
  throw new Error(`got no error, want an InputError for:\n${text}`);
}

describe("parseHostFile: the documented example", () => {
  const host = parseHostFile(NATGW, "natgw.yaml");

  it("reads hostname and interfaces, normalising MACs", () => {
    expect(host.hostname).toBe("natgw");
    expect(host.interfaces.map((i) => i.name)).toEqual(["eth0", "eth1"]);
    expect(host.interfaces[0].mac).toBe("00:16:3e:00:cd:08");
    expect(host.interfaces[1].addresses).toEqual([
      { addr: parseIpv4("203.0.113.1"), len: 24 },
      { addr: parseIpv4("203.0.113.9"), len: 24 },
    ]);
    expect(host.interfaces[1].loc).toMatchObject({ file: "natgw.yaml", line: 4 });
  });

  it("parses route lines into values", () => {
    const [def, net, local] = host.routes;
    expect(def).toMatchObject({
      type: "unicast",
      prefix: { addr: 0, len: 0 },
      dev: "eth1",
      table: RT_TABLE_MAIN,
    });
    expect(formatIpv4(def.via!)).toBe("203.0.113.254");
    expect(net.prefix).toEqual({ addr: parseIpv4("192.0.2.0"), len: 24 });
    expect(formatIpv4(net.src!)).toBe("203.0.113.1");
    expect(net.via).toBeUndefined();
    expect(local).toMatchObject({ type: "local", prefix: { addr: 0, len: 0 }, dev: "lo", table: 100 });
  });

  it("parses ip rule lines", () => {
    expect(host.rules[0]).toMatchObject({ fwmark: { value: 100, mask: 0xffffffff }, table: 100, not: false });
    expect(host.rules[1]).toMatchObject({ from: { addr: parseIpv4("192.0.2.0"), len: 24 }, table: 200 });
    expect(host.rules[2]).toMatchObject({
      priority: 10,
      not: true,
      to: { addr: parseIpv4("198.51.100.0"), len: 24 },
      fwmark: { value: 1, mask: 0xff },
      table: RT_TABLE_MAIN,
    });
  });

  it("reads sysctls as numbers and sockets with defaults", () => {
    expect(host.sysctl).toEqual({ "net.ipv4.ip_forward": 1, "net.netfilter.nf_conntrack_tcp_loose": 0 });
    expect(host.sockets).toMatchObject([
      { address: 0, port: 80, protocol: "tcp", transparent: false },
      { address: 0, port: 53, protocol: "udp", transparent: false },
    ]);
  });

  it("derives connected routes as fib_add_ifaddr does (secondary gets no prefix route)", () => {
    const texts = connectedRoutes(host).map((r) => r.text);
    expect(texts).toEqual([
      "local 198.51.100.1 dev eth0 table local proto kernel scope host src 198.51.100.1",
      "198.51.100.0/24 dev eth0 proto kernel scope link src 198.51.100.1",
      "local 203.0.113.1 dev eth1 table local proto kernel scope host src 203.0.113.1",
      "203.0.113.0/24 dev eth1 proto kernel scope link src 203.0.113.1",
      "local 203.0.113.9 dev eth1 table local proto kernel scope host src 203.0.113.9",
    ]);
    const local = connectedRoutes(host).filter((r) => r.type === "local");
    for (const r of local)
      expect(r.table, `got table ${r.table} for ${r.text}, want local`).toBe(RT_TABLE_LOCAL);
  });
});

describe("parseHostFile: bad input is located", () => {
  it("unknown top-level key", () => {
    const d = diag("hostname: a\ninterfaces: []\nroute: []\n");
    expect(d).toMatchObject({ code: "HOST_UNKNOWN_KEY", file: "h.yaml", line: 3, column: 1 });
  });

  it("unknown interface key", () => {
    const d = diag('interfaces:\n  - {name: eth0, mac: "02:00:00:00:00:01", adresses: []}\n');
    expect(d).toMatchObject({ code: "HOST_UNKNOWN_KEY", line: 2, column: 44 });
  });

  it("bad CIDR points inside the quoted scalar", () => {
    const d = diag('interfaces:\n  - {name: eth0, mac: "02:00:00:00:00:01", addresses: ["10.0.0.300/24"]}\n');
    expect(d).toMatchObject({ code: "HOST_BAD_CIDR", line: 2, column: 57 });
    expect(d.excerpt).toContain("10.0.0.300/24");
  });

  it("an address without a prefix length is rejected", () => {
    expect(
      diag('interfaces:\n  - {name: eth0, mac: "02:00:00:00:00:01", addresses: ["10.0.0.1"]}\n').code,
    ).toBe("HOST_BAD_CIDR");
  });

  it("bad MAC", () => {
    const d = diag('interfaces:\n  - {name: eth0, mac: "02:00:00:00:00", addresses: []}\n');
    expect(d).toMatchObject({ code: "HOST_BAD_MAC", line: 2, column: 24 });
  });

  it("bad route line: column of the offending token", () => {
    const text =
      'interfaces:\n  - {name: eth0, mac: "02:00:00:00:00:01"}\nroutes: ["default via 1.2.3 dev eth0"]\n';
    const d = diag(text);
    expect(d).toMatchObject({ code: "HOST_BAD_ROUTE", line: 3, column: 23 });
    expect(d.message).toContain("1.2.3");
  });

  it("route with host bits, unknown keyword, unknown device", () => {
    const base = 'interfaces:\n  - {name: eth0, mac: "02:00:00:00:00:01"}\nroutes: [';
    expect(diag(base + '"192.0.2.1/24 dev eth0"]\n').code).toBe("HOST_BAD_ROUTE");
    expect(diag(base + '"192.0.2.0/24 dev eth0 mtu 1400"]\n').message).toContain('"mtu"');
    const d = diag(base + '"192.0.2.0/24 dev eth9"]\n');
    expect(d).toMatchObject({ code: "HOST_UNKNOWN_IFACE", line: 3, column: 28 });
  });

  it("bad rule line", () => {
    const d = diag('interfaces: []\nrules: ["fwmark 100"]\n');
    expect(d.code).toBe("HOST_BAD_RULE");
    expect(diag('interfaces: []\nrules: ["from 1.2.3.4/33 lookup 1"]\n').code).toBe("HOST_BAD_RULE");
  });

  it("YAML syntax errors carry a location", () => {
    const d = diag("interfaces: [\n");
    expect(d.code).toBe("HOST_YAML");
    expect(d.line).toBeGreaterThan(0);
  });

  it("missing interfaces, duplicate interface, bad socket", () => {
    expect(diag("hostname: a\n").code).toBe("HOST_MISSING_KEY");
    const dup =
      'interfaces:\n  - {name: eth0, mac: "02:00:00:00:00:01"}\n  - {name: eth0, mac: "02:00:00:00:00:02"}\n';
    expect(diag(dup)).toMatchObject({ code: "HOST_DUPLICATE_IFACE", line: 3 });
    expect(diag("interfaces: []\nsockets: [{port: 80, protocol: sctp}]\n").code).toBe("HOST_BAD_SOCKET");
    expect(diag("interfaces: []\nsockets: [{port: 70000, protocol: tcp}]\n").code).toBe("HOST_BAD_NUMBER");
  });
});

describe("route and rule lines on their own", () => {
  it("blackhole and metric", () => {
    expect(parseRouteLine("blackhole 192.0.2.0/24 metric 5")).toMatchObject({ type: "blackhole", metric: 5 });
  });
  it("errors without a source still name the line", () => {
    expect(() => parseRuleLine("lookup nosuch")).toThrow(/bad table "nosuch"/);
  });
});
