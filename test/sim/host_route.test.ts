import { describe, expect, it } from "vitest";
import { parseHostFile } from "../../src/host/hostfile";
import { Fib } from "../../src/host/route";
import { formatIpv4, parseIpv4 } from "../../src/wire/addr";

const ip = (s: string) => parseIpv4(s)!;

const HOST = parseHostFile(
  `hostname: pbr
interfaces:
  - {name: eth0, mac: "02:00:00:00:00:01", addresses: ["198.51.100.1/24", "198.51.100.9/24"]}
  - {name: eth1, mac: "02:00:00:00:01:01", addresses: ["203.0.113.1/24"]}
routes:
  - default via 198.51.100.254 dev eth0
  - 192.0.2.0/24 via 203.0.113.254
  - 192.0.2.128/25 via 198.51.100.253 metric 10
  - blackhole 10.66.0.0/16
  - default via 203.0.113.254 dev eth1 table 100
  - local 0.0.0.0/0 dev lo table 200
rules:
  - fwmark 0x1/0xff lookup 100
  - from 198.51.100.7 lookup 200
`,
  "pbr.yaml",
);

describe("Fib: tables, longest prefix match, ip rules", () => {
  const fib = new Fib(HOST);

  it("longest prefix wins; a gateway route without dev takes the device of its gateway", () => {
    const a = fib.lookup({ dst: ip("192.0.2.10") });
    expect([a.type, a.oif, formatIpv4(a.nexthop)]).toEqual(["unicast", "eth1", "203.0.113.254"]);
    const b = fib.lookup({ dst: ip("192.0.2.200") });
    expect([b.oif, formatIpv4(b.nexthop)], "got the /24, want the /25").toEqual(["eth0", "198.51.100.253"]);
    const c = fib.lookup({ dst: ip("8.8.8.8") });
    expect([c.oif, formatIpv4(c.nexthop), c.table]).toEqual(["eth0", "198.51.100.254", 254]);
  });

  it("connected routes are on-link (next hop = destination) and local addresses are in table local", () => {
    const r = fib.lookup({ dst: ip("203.0.113.7") });
    expect([r.oif, r.gateway, formatIpv4(r.nexthop)]).toEqual(["eth1", undefined, "203.0.113.7"]);
    expect(fib.lookup({ dst: ip("198.51.100.9") })).toMatchObject({ type: "local", table: 255 });
    expect(fib.onLink("eth0", ip("198.51.100.2"))).toBe(true);
    expect(fib.onLink("eth0", ip("8.8.8.8"))).toBe(false);
  });

  it("fwmark and from rules select other tables; rules without priority count down from 32765", () => {
    expect(fib.lookup({ dst: ip("8.8.8.8"), mark: 0x101 })).toMatchObject({
      oif: "eth1",
      table: 100,
      rulePriority: 32765,
    });
    expect(fib.lookup({ dst: ip("8.8.8.8"), mark: 0x2 }).table).toBe(254);
    expect(fib.lookup({ dst: ip("8.8.8.8"), src: ip("198.51.100.7") })).toMatchObject({
      type: "local",
      table: 200,
      rulePriority: 32764,
    });
  });

  it("blackhole and missing routes", () => {
    expect(fib.lookup({ dst: ip("10.66.1.1") }).type).toBe("blackhole");
    const bare = new Fib(parseHostFile(`hostname: x\ninterfaces: []\n`, "x.yaml"));
    expect(bare.lookup({ dst: ip("8.8.8.8") }).type).toBe("none");
  });

  it("address types and inet_select_addr", () => {
    expect(fib.addrType(ip("198.51.100.1"))).toBe("LOCAL");
    expect(fib.addrType(ip("198.51.100.255"))).toBe("BROADCAST");
    expect(fib.addrType(ip("224.0.0.1"))).toBe("MULTICAST");
    expect(fib.addrType(ip("8.8.8.8"))).toBe("UNICAST");
    expect(fib.addrType(ip("203.0.113.1"), "eth0"), "limited to eth0").toBe("UNICAST");
    expect(formatIpv4(fib.inetSelectAddr("eth0", ip("198.51.100.254"))!)).toBe("198.51.100.1");
    expect(formatIpv4(fib.inetSelectAddr("eth1", ip("8.8.8.8"))!)).toBe("203.0.113.1");
  });
});

describe("Fib: the per-destination memo", () => {
  const NOPBR = parseHostFile(
    `hostname: r
interfaces:
  - {name: eth0, mac: "02:00:00:00:00:01", addresses: ["198.51.100.1/24"]}
  - {name: eth1, mac: "02:00:00:00:01:01", addresses: ["203.0.113.1/24"]}
routes:
  - default via 198.51.100.254 dev eth0
  - 192.0.2.0/25 via 203.0.113.254
  - blackhole 10.66.0.0/16
`,
    "r.yaml",
  );
  const answer = (f: Fib, dst: number) => {
    const r = f.lookupByDst(dst)!;
    return [r.type, r.oif, r.nexthop, f.addrType(dst)];
  };

  it("answers as a fresh table after growing and after being emptied (150,000 destinations)", () => {
    const fib = new Fib(NOPBR);
    // Destinations in every route (and outside all but the default), asked before, during and after the flood.
    const probes = [
      "192.0.2.1",
      "192.0.2.127",
      "192.0.2.128",
      "10.66.3.4",
      "198.51.100.1",
      "198.51.100.255",
      "203.0.113.77",
      "8.8.8.8",
    ].map(ip);
    const want = probes.map((d) => answer(new Fib(NOPBR), d));
    expect(probes.map((d) => answer(fib, d))).toEqual(want);
    for (let i = 0; i < 150_000; i++) {
      const d = (0x0a000000 + i * 7919) | 0; // spread over 10/8 and above
      fib.lookupByDst(d);
      if (i % 37_000 === 0) expect(probes.map((p) => answer(fib, p))).toEqual(want);
    }
    expect(probes.map((d) => answer(fib, d))).toEqual(want);
    // A destination met in the flood still gets its own route.
    expect(answer(fib, 0x0a420000 + 5)).toEqual(answer(new Fib(NOPBR), 0x0a420000 + 5));
  });
});
