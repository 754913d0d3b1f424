// NAT core: packet dialogues through a real Conntrack, grouped by what decides the mapping (kept port, clash,
// port classes, ranges, address choice, bysource reuse, null binding, ICMP ids, DNAT offsets, kernel profiles).
import { describe, expect, it } from "vitest";
import {
  IPS_DST_NAT,
  IPS_DST_NAT_DONE,
  IPS_SRC_NAT,
  IPS_SRC_NAT_DONE,
  NF_ACCEPT,
  NF_DROP,
} from "../../src/conntrack/types";
import { formatIpv4 } from "../../src/wire/addr";
import { ICMP_ECHO, ICMP_ECHOREPLY } from "../../src/wire/packet";
import { findBestIpsProto, nfNatAllocNullBinding, nfNatSetupInfo } from "../../src/nat/nf_nat_core";
import {
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  natRangeFromOptions,
  nfNatRange,
} from "../../src/nat/types";
import { makeTuple } from "../../src/conntrack/tuple";
import { icmp, ip, tcp, udp } from "../conntrack/packets";
import { Router, bind, expectAccepted, fmtPkt } from "./router";

const N = "203.0.113.1"; // the router's public address
const S = "192.0.2.80"; // a server
const snatTo = (min: string, max = min, ports?: [number, number]) =>
  natRangeFromOptions({
    addrs: { min: ip(min), max: ip(max) },
    ports: ports && { min: ports[0], max: ports[1] },
  });

describe("SNAT: keeping and changing the source port", () => {
  it("keeps the port when the mapped tuple is free, and rewrites replies back", () => {
    const r = new Router();
    const src = bind(r, snatTo(N), "SRC", () => 1);
    const h = r.send(tcp("10.0.0.2:40000", `${S}:80`, "S", 1000, 0), 1, { src });
    expectAccepted(h, "SYN");
    expect(fmtPkt(h.pkt), "SYN leaves as").toBe(`${N}:40000 -> ${S}:80`);
    const ct = h.ct!;
    expect(ct.status & (IPS_SRC_NAT | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE)).toBe(
      IPS_SRC_NAT | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE,
    );
    expect(ct.status & IPS_DST_NAT, "no DST_NAT for the DST null binding").toBe(0);
    const back = r.send(tcp(`${S}:80`, `${N}:40000`, "SA", 5000, 1001), 1.1);
    expectAccepted(back, "SYN/ACK");
    expect(back.ct, "reply found the same entry").toBe(ct);
    expect(fmtPkt(back.pkt), "reply rewritten back").toBe(`${S}:80 -> 10.0.0.2:40000`);
  });

  it("a clash takes the next free port from a seeded offset: deterministic per seed", () => {
    const run = (seed: number) => {
      const r = new Router({ seed });
      const src = bind(r, snatTo(N), "SRC", () => 1);
      expectAccepted(r.send(udp("10.0.0.2:40000", `${S}:53`), 1, { src }), "first");
      const h = r.send(udp("10.0.0.3:40000", `${S}:53`), 1, { src });
      expectAccepted(h, "second");
      return h.ct!.reply.dstU;
    };
    const ports = [1, 2, 3, 4, 5].map(run);
    for (const p of ports) {
      expect(p, `remapped port ${p}: want 1024..65535 and not 40000`).toBeGreaterThanOrEqual(1024);
      expect(p).not.toBe(40000);
    }
    expect(run(3), "same seed, same port").toBe(ports[2]);
    expect(new Set(ports).size, `ports for seeds 1..5: ${ports}`).toBeGreaterThan(1);
  });

  it.each([
    [80, 1, 511],
    [700, 600, 1023],
    [5000, 1024, 65535],
  ])("port class: a clash on source port %i is remapped within %i..%i", (port, lo, hi) => {
    const r = new Router({ seed: 7 });
    const src = bind(r, snatTo(N), "SRC", () => 1);
    r.send(udp(`10.0.0.2:${port}`, `${S}:53`), 1, { src });
    const h = r.send(udp(`10.0.0.3:${port}`, `${S}:53`), 1, { src });
    const got = h.ct!.reply.dstU;
    expect(got >= lo && got <= hi && got !== port, `got ${got}, want ${lo}..${hi} except ${port}`).toBe(true);
  });

  it("a single-port range (--to-source N:5555) is never remapped, even when taken: the clash drops at confirm", () => {
    const r = new Router();
    const src = bind(r, snatTo(N, N, [5555, 5555]), "SRC", () => 1);
    const a = r.send(tcp("10.0.0.2:40000", `${S}:80`, "S", 1, 0), 1, { src });
    expectAccepted(a, "first");
    const b = r.send(tcp("10.0.0.3:40001", `${S}:80`, "S", 1, 0), 1, { src });
    expect(b.ct!.reply.dstU, "second keeps 5555").toBe(5555);
    expect(b.verdict, "second: TCP clash at confirm is NF_DROP").toBe(NF_DROP);
  });

  it("a port range remaps ports outside it and keeps ports inside it when free", () => {
    const r = new Router();
    const src = bind(r, snatTo(N, N, [20000, 20009]), "SRC", () => 1);
    const out = r.send(udp("10.0.0.2:40000", `${S}:53`), 1, { src });
    const p = out.ct!.reply.dstU;
    expect(p >= 20000 && p <= 20009, `got ${p}, want 20000..20009`).toBe(true);
    const inside = r.send(udp("10.0.0.2:20005", `${S}:53`), 1, { src });
    expect(inside.ct!.reply.dstU === 20005 || p === 20005).toBe(true);
  });

  it("all ports of a small range taken: the last candidate is used (UDP then loses at confirm as a clash)", () => {
    const r = new Router();
    const src = bind(r, snatTo(N, N, [20000, 20001]), "SRC", () => 1);
    const ports = [1, 2, 3].map((i) => r.send(udp(`10.0.0.${i}:4000`, `${S}:53`), 1, { src }).ct!.reply.dstU);
    expect(ports.slice(0, 2).sort()).toEqual([20000, 20001]);
    expect([20000, 20001]).toContain(ports[2]);
  });
});

describe("address choice from a range (find_best_ips_proto)", () => {
  const range = snatTo("203.0.113.10", "203.0.113.19");
  it("is a deterministic jhash of client and server: same pair, same address, across runs", () => {
    const pick = (client: string, server: string) => {
      const r = new Router({ seed: Math.random() });
      const h = r.send(udp(`${client}:5000`, `${server}:53`), 1, { src: bind(r, range, "SRC", () => 1) });
      return formatIpv4(h.ct!.reply.dst);
    };
    const a = pick("10.0.0.2", S);
    expect(pick("10.0.0.2", S), "same client and server").toBe(a);
    expect(ip(a) >= ip("203.0.113.10") && ip(a) <= ip("203.0.113.19"), `${a} in range`).toBe(true);
    const servers = Array.from({ length: 20 }, (_, i) => pick("10.0.0.2", `198.51.100.${i + 1}`));
    expect(new Set(servers).size, "different servers spread over the range").toBeGreaterThan(1);
  });

  it("pins the x86 value: 10.0.0.2 -> 192.0.2.80, zone 0, over .10-.19", () => {
    // jhash2({le32(10.0.0.2),0,0,0}, le32(192.0.2.80)) scaled into 10 addresses; cross-checked with a separate
    // Python transcription of lookup3 hashword + reciprocal_scale (jhash itself: jhash.test.ts vectors).
    const t = findBestIpsProto(0, makeTuple(ip("10.0.0.2"), ip(S), 17, 5000, 53), range, "SRC");
    expect(formatIpv4(t.src)).toBe("203.0.113.13");
  });

  it("--persistent ignores the server: one address per client", () => {
    const pr = nfNatRange({ ...range, flags: range.flags | NF_NAT_RANGE_PERSISTENT });
    const got = new Set<number>();
    for (let i = 1; i <= 20; i++) {
      got.add(findBestIpsProto(0, makeTuple(ip("10.0.0.2"), ip(`198.51.100.${i}`), 17, 1, 2), pr, "SRC").src);
    }
    expect(got.size, "addresses used by one client with --persistent").toBe(1);
  });

  it("the zone id enters the hash (initval = dst ^ zone)", () => {
    const picks = new Set<number>();
    for (let z = 0; z < 16; z++) {
      picks.add(findBestIpsProto(z, makeTuple(ip("10.0.0.2"), ip(S), 17, 1, 2), range, "SRC").src);
    }
    expect(picks.size).toBeGreaterThan(1);
  });
});

describe("find_appropriate_src: an existing mapping of the same source is reused", () => {
  it("a client whose port was remapped keeps that mapping towards a second server", () => {
    const r = new Router({ seed: 11 });
    const src = bind(r, snatTo(N), "SRC", () => 1);
    r.send(udp("10.0.0.9:40000", `${S}:53`), 1, { src }); // takes N:40000 towards S
    const first = r.send(udp("10.0.0.2:40000", `${S}:53`), 1, { src });
    const p = first.ct!.reply.dstU;
    expect(p).not.toBe(40000);
    const second = r.send(udp("10.0.0.2:40000", "198.51.100.7:53"), 2, { src });
    expect(
      second.ct!.reply.dstU,
      `towards another server: got ${second.ct!.reply.dstU}, want reused ${p}`,
    ).toBe(p);
  });

  it("a dead mapping is not reused (validated lazily against the table)", () => {
    const r = new Router({ seed: 11 });
    const src = bind(r, snatTo(N), "SRC", () => 1);
    r.send(udp("10.0.0.9:40000", `${S}:53`), 1, { src });
    const first = r.send(udp("10.0.0.2:40000", `${S}:53`), 1, { src });
    first.ct!.kill();
    const second = r.send(udp("10.0.0.2:40000", "198.51.100.7:53"), 2, { src });
    expect(second.ct!.reply.dstU, "after the entry died the original port is free again").toBe(40000);
  });

  it("a mapping made by a random-fully rule (which never searches the index) is found by a later search", () => {
    const r = new Router({ seed: 11 });
    const fully = bind(
      r,
      natRangeFromOptions({ addrs: { min: ip(N), max: ip(N) }, randomFully: true }),
      "SRC",
      () => 1,
    );
    const first = r.send(udp("10.0.0.2:40000", `${S}:53`), 1, { src: fully });
    const p = first.ct!.reply.dstU;
    expect(p, "random-fully draws the port").not.toBe(40000);
    const plain = bind(r, snatTo(N), "SRC", () => 1);
    const second = r.send(udp("10.0.0.2:40000", "198.51.100.7:53"), 2, { src: plain });
    expect(second.ct!.reply.dstU, `got ${second.ct!.reply.dstU}, want reused ${p}`).toBe(p);
  });
});

describe("null binding", () => {
  it("rewrites the source port of a local connection that clashes with a forwarded SNAT mapping", () => {
    const r = new Router({ seed: 3 });
    const src = bind(r, snatTo(N), "SRC", () => 1);
    r.send(tcp("10.0.0.2:40000", `${S}:80`, "S", 1, 0), 1, { src });
    // The router itself connects from N:40000; nat POSTROUTING has no rule for it: null binding.
    const h = r.send(tcp(`${N}:40000`, `${S}:80`, "S", 1, 0), 1, { local: true });
    expectAccepted(h, "local SYN");
    const ct = h.ct!;
    expect(ct.status & IPS_SRC_NAT, "SRC_NAT set by the null binding").toBeTruthy();
    expect(ct.reply.dstU).not.toBe(40000);
    expect(fmtPkt(h.pkt)).toBe(`${N}:${ct.reply.dstU} -> ${S}:80`);
  });

  it("with no clash binds to itself: _DONE bits set, no NAT bits, packet unchanged", () => {
    const r = new Router();
    const pkt = udp("10.0.0.2:5000", `${S}:53`);
    const h = r.send(pkt, 1);
    expect(h.pkt, "packet object unchanged").toBe(pkt);
    expect(h.ct!.status & (IPS_SRC_NAT | IPS_DST_NAT)).toBe(0);
    expect(h.ct!.status & (IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE)).toBe(IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE);
  });

  it("nf_nat_setup_info refuses a confirmed entry and a second binding of the same type", () => {
    const r = new Router();
    const h = r.send(udp("10.0.0.2:5000", `${S}:53`), 1);
    expect(nfNatSetupInfo(r.nat, h.ct!, snatTo(N), "SRC", 2), "confirmed: NF_ACCEPT, no change").toBe(
      NF_ACCEPT,
    );
    expect(h.ct!.reply.dst).toBe(ip("10.0.0.2"));
    const u = r.send(udp("10.0.0.3:5000", `${S}:53`), 3, { noConfirm: true });
    expect(nfNatAllocNullBinding(r.nat, u.ct!, 4, 3), "second SRC binding").toBe(NF_DROP);
  });
});

describe("ICMP echo ids", () => {
  it("a clashing echo id is replaced; the reply is rewritten to the original id and client", () => {
    const r = new Router({ seed: 5 });
    const src = bind(r, snatTo(N), "SRC", () => 1);
    const a = r.send(icmp("10.0.0.2", S, ICMP_ECHO, 77), 1, { src });
    expect(a.ct!.reply.srcU, "first keeps id 77").toBe(77);
    const b = r.send(icmp("10.0.0.3", S, ICMP_ECHO, 77), 1, { src });
    const id = b.ct!.reply.srcU;
    expect(id).not.toBe(77);
    const l4 = b.pkt.l4;
    expect(l4.kind === "icmp" && l4.restOfHeader >>> 16, "request leaves with the new id").toBe(id);
    const back = r.send(icmp(S, N, ICMP_ECHOREPLY, id), 1.1);
    expect(back.ct).toBe(b.ct);
    const bl4 = back.pkt.l4;
    expect(formatIpv4(back.pkt.ip.dst)).toBe("10.0.0.3");
    expect(bl4.kind === "icmp" && bl4.restOfHeader >>> 16, "reply id").toBe(77);
  });
});

describe("DNAT port offsets by kernel profile", () => {
  const dnat = natRangeFromOptions({
    addrs: { min: ip("10.0.0.10"), max: ip("10.0.0.10") },
    ports: { min: 8000, max: 8010 },
  });
  const first = (kernel: string, seed: number) => {
    const r = new Router({ kernel, seed });
    const h = r.send(tcp(`198.51.100.2:40000`, `${N}:80`, "S", 1, 0), 1, {
      dst: bind(r, dnat, "DST", () => 1),
    });
    return h.ct!.reply.srcU;
  };
  it("6.x starts a DST search at the range minimum (offset 0)", () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) expect(first("6.18", seed), `seed ${seed}`).toBe(8000);
  });
  it("5.x starts at prandom_u32() for DST too", () => {
    const got = [1, 2, 3, 4, 5, 6].map((s) => first("5.10", s));
    for (const p of got) expect(p >= 8000 && p <= 8010).toBe(true);
    expect(new Set(got).size, `ports: ${got}`).toBeGreaterThan(1);
  });
  it("a DNAT without ports never changes the destination port; replies come back from the public address", () => {
    const r = new Router();
    const d = natRangeFromOptions({ addrs: { min: ip("10.0.0.10"), max: ip("10.0.0.10") } });
    const h = r.send(tcp("198.51.100.2:40000", `${N}:80`, "S", 1, 0), 1, { dst: bind(r, d, "DST", () => 1) });
    expect(fmtPkt(h.pkt)).toBe("198.51.100.2:40000 -> 10.0.0.10:80");
    expect(h.ct!.status & IPS_DST_NAT).toBeTruthy();
    const back = r.send(tcp("10.0.0.10:80", "198.51.100.2:40000", "SA", 9, 2), 1.1);
    expect(fmtPkt(back.pkt)).toBe(`${N}:80 -> 198.51.100.2:40000`);
  });
});

describe("3.x rover", () => {
  it("clashing connections take consecutive ports from the protocol's rover", () => {
    const r = new Router({ kernel: "3.10" });
    const src = bind(r, snatTo(N), "SRC", () => 1);
    r.send(udp("10.0.0.1:40000", `${S}:53`), 1, { src });
    const got = [2, 3, 4].map((i) => r.send(udp(`10.0.0.${i}:40000`, `${S}:53`), 1, { src }).ct!.reply.dstU);
    expect(got).toEqual([1024, 1025, 1026]);
  });
});

describe("6.x: evicting a SNATed TIME_WAIT entry in the last attempts (nf_nat_used_tuple_harder)", () => {
  /** Two connections through a two-port range, both closed into TIME_WAIT. */
  function twoTimeWait(kernel: string) {
    const r = new Router({ kernel, seed: 9 });
    const src = bind(r, snatTo(N, N, [1000, 1001]), "SRC", () => 1);
    for (const c of ["10.0.0.1:5000", "10.0.0.2:5000"]) {
      const syn = r.send(tcp(c, `${S}:80`, "S", 100, 0), 1, { src });
      const port = syn.ct!.reply.dstU;
      const pub = `${N}:${port}`;
      r.send(tcp(`${S}:80`, pub, "SA", 900, 101), 1);
      r.send(tcp(c, `${S}:80`, "A", 101, 901), 1);
      r.send(tcp(c, `${S}:80`, "FA", 101, 901), 1);
      r.send(tcp(`${S}:80`, pub, "FA", 901, 102), 1);
      r.send(tcp(c, `${S}:80`, "A", 102, 902), 1);
    }
    return { r, src };
  }
  it("6.18: a new SYN with a higher sequence evicts one and takes its port", () => {
    const { r, src } = twoTimeWait("6.18");
    expect(r.ct.count).toBe(2);
    const h = r.send(tcp("10.0.0.3:5000", `${S}:80`, "S", 1_000_000, 0), 2, { src });
    expectAccepted(h, "third SYN");
    expect([1000, 1001]).toContain(h.ct!.reply.dstU);
    expect(r.ct.count, "one TIME_WAIT entry evicted, the new one inserted").toBe(2);
  });
  it("5.10: no eviction; the taken port clashes at confirm", () => {
    const { r, src } = twoTimeWait("5.10");
    const h = r.send(tcp("10.0.0.3:5000", `${S}:80`, "S", 1_000_000, 0), 2, { src });
    expect(h.verdict).toBe(NF_DROP);
    expect(r.ct.count).toBe(2);
  });
});

describe("range flags", () => {
  it("natRangeFromOptions maps rule options to nf_nat_range2 flags", () => {
    const r = natRangeFromOptions({
      addrs: { min: 1, max: 2 },
      ports: { min: 10, max: 20 },
      persistent: true,
    });
    expect(r.flags).toBe(NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED | NF_NAT_RANGE_PERSISTENT);
    expect([r.minAddr, r.maxAddr, r.minProto, r.maxProto]).toEqual([1, 2, 10, 20]);
  });
});

describe("the bysource index over a long run", () => {
  // With a plain range every new connection searches the index (find_appropriate_src); with random-fully none
  // does, and the entries wait in the queue until the size is read.
  it.each([
    ["searched by every new connection", snatTo(N)],
    [
      "never searched (random-fully)",
      natRangeFromOptions({ addrs: { min: ip(N), max: ip(N) }, randomFully: true }),
    ],
  ])("keeps its entries while their connections live, and drops dead ones (%s)", (_, range) => {
    const r = new Router();
    let now = 0;
    const src = bind(r, range, "SRC", () => now);
    const open = (i: number) =>
      expectAccepted(
        r.send(udp(`10.0.${(i >> 8) & 0xff}.${i & 0xff}:40000`, `${S}:53`), now, { src }),
        `flow ${i}`,
      );
    // 10,000 live flows: every one stays in the index (each is found again by its source).
    for (let i = 0; i < 10_000; i++) open(i);
    expect(r.ct.count).toBe(10_000);
    expect(r.nat.bysourceSize).toBe(10_000);
    // They expire (UDP unreplied: 30 s); 10,000 new flows from other sources come in batches.
    for (let b = 0; b < 10; b++) {
      now += 40;
      r.ct.advance(now); // as the host does before each packet
      for (let i = 0; i < 1000; i++) open(20_000 + b * 1000 + i);
    }
    expect(r.ct.count, "only the last batch lives").toBe(1000);
    expect(r.nat.bysourceSize, "dead entries were swept").toBeLessThan(5000);
    expect(r.nat.bysourceSize).toBeGreaterThanOrEqual(1000);
  });
});
