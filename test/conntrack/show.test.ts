// conntrack -L / -E / /proc output checked against lines recorded on Linux 6.18.44 (test/conntrack/golden/):
// the recorded traffic is replayed through the emulated table and the printed lines compared.
import { describe, expect, it } from "vitest";
import type { NfConn } from "../../src/conntrack/core";
import { Conntrack } from "../../src/conntrack/core";
import {
  diffConntrackLines,
  formatConntrackEntry,
  formatConntrackEvent,
  formatProcEntry,
  parseConntrackLine,
  ConntrackLineError,
} from "../../src/conntrack/show";
import { NF_ACCEPT, NF_INET_LOCAL_OUT, NF_INET_PRE_ROUTING } from "../../src/conntrack/types";
import type { Packet } from "../../src/wire/packet";
import { ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY } from "../../src/wire/packet";
import { goldenSections, section } from "./golden";
import { icmp, icmpError, raw, tcp, udp } from "./packets";

const A = "192.0.2.2";
const B = "192.0.2.1";

/** The first recorded run, seen from ctse-b (192.0.2.1): packets from A arrive at PRE_ROUTING, B's own packets
 * leave through LOCAL_OUT; every packet is confirmed at its last hook. Times are seconds from the start. */
function replayFirstRun(ct: Conntrack): number {
  let now = 0;
  const send = (p: Packet, dt: number) => {
    now += dt;
    const fromB = p.ip.src === 0xc0000201;
    const r = ct.in(p, fromB ? NF_INET_LOCAL_OUT : NF_INET_PRE_ROUTING, now);
    expect(r.verdict, `verdict for packet at ${now}: got ${r.verdict}, want ${NF_ACCEPT}`).toBe(NF_ACCEPT);
    if (r.ct) ct.confirm(r.ct, now, r.ctinfo);
    return r;
  };
  // udp1: unreplied, answered by a port unreachable.
  const u1 = udp(`${A}:47245`, `${B}:9998`);
  send(u1, 0);
  expect(send(icmpError(B, A, ICMP_DEST_UNREACH, 3, u1), 0.001).state).toBe("RELATED");
  // udp2: one exchange.
  send(udp(`${A}:47246`, `${B}:9999`), 0.05);
  send(udp(`${B}:9999`, `${A}:47246`, { len: 4 }), 0.001);
  // udp3: two exchanges 2.5 s apart.
  send(udp(`${A}:47247`, `${B}:9999`), 0.05);
  send(udp(`${B}:9999`, `${A}:47247`, { len: 4 }), 0.001);
  send(udp(`${A}:47247`, `${B}:9999`), 2.5);
  send(udp(`${B}:9999`, `${A}:47247`, { len: 4 }), 0.001);
  // tcp 40000: open, "hello", "hi", server closes, client closes.
  const c = `${A}:40000`;
  const s = `${B}:8080`;
  send(tcp(c, s, "S", 1000, 0), 0.05);
  send(tcp(s, c, "SA", 5000, 1001), 0.001);
  send(tcp(c, s, "A", 1001, 5001), 0.001);
  send(tcp(c, s, "PA", 1001, 5001, 5), 0.001);
  send(tcp(s, c, "A", 5001, 1006), 0.001);
  send(tcp(s, c, "PA", 5001, 1006, 2), 0.001);
  send(tcp(c, s, "A", 1006, 5003), 0.001);
  send(tcp(s, c, "FA", 5003, 1006), 0.2);
  send(tcp(c, s, "A", 1006, 5004), 0.001);
  send(tcp(c, s, "FA", 1006, 5004), 0.5);
  send(tcp(s, c, "A", 5004, 1007), 0.001);
  // icmp echo id 0x1234.
  send(icmp(A, B, ICMP_ECHO, 0x1234), 0.1);
  send(icmp(B, A, ICMP_ECHOREPLY, 0x1234), 0.001);
  // tcp 40001: open, data, server closes, client stays.
  const c2 = `${A}:40001`;
  send(tcp(c2, s, "S", 2000, 0), 0.1);
  send(tcp(s, c2, "SA", 7000, 2001), 0.001);
  send(tcp(c2, s, "A", 2001, 7001), 0.001);
  send(tcp(c2, s, "PA", 2001, 7001, 5), 0.001);
  send(tcp(s, c2, "A", 7001, 2006), 0.001);
  send(tcp(s, c2, "PA", 7001, 2006, 2), 0.001);
  send(tcp(c2, s, "A", 2006, 7003), 0.001);
  send(tcp(s, c2, "FA", 7003, 2006), 0.2);
  send(tcp(c2, s, "A", 2006, 7004), 0.001);
  return now;
}

describe("conntrack -E against the recording", () => {
  for (const [title, extended] of [
    ["conntrack -E", false],
    ["conntrack -E -o extended", true],
  ] as const) {
    it(`${title}: the replayed run prints the recorded lines`, () => {
      const ct = new Conntrack({ recordEvents: true });
      replayFirstRun(ct);
      const got = ct.takeEvents().map((e) => formatConntrackEvent(e, { extended }));
      const want = section("events-6.18.txt", title);
      for (let i = 0; i < Math.max(got.length, want.length); i++) {
        expect(got[i], `event ${i + 1}: got\n${got[i]}\nwant\n${want[i]}`).toBe(want[i]);
      }
    });
  }

  it("-o id lines differ only in the id (the kernel's are hashes)", () => {
    const ct = new Conntrack({ recordEvents: true });
    replayFirstRun(ct);
    const got = ct.takeEvents().map((e) => parseConntrackLine(formatConntrackEvent(e, { id: true })));
    const want = section("events-6.18.txt", "conntrack -E -o id").map(parseConntrackLine);
    expect(got.length).toBe(want.length);
    got.forEach((g, i) => {
      const diffs = diffConntrackLines(g, want[i], { timer: true }).filter((d) => !d.startsWith("id:"));
      expect(diffs, `event ${i + 1}`).toEqual([]);
      expect(g.fields.id, "an id is printed").toMatch(/^\d+$/);
    });
  });

  it("DESTROY on expiry has no timer; with acct it carries counters and the TCP state", () => {
    const ct = new Conntrack({ recordEvents: true, sysctl: { nf_conntrack_acct: 1 } });
    const r = ct.in(udp(`${A}:47246`, `${B}:9999`), NF_INET_PRE_ROUTING, 0);
    ct.confirm(r.ct!, 0);
    const r2 = ct.in(udp(`${B}:9999`, `${A}:47246`, { len: 4 }), NF_INET_LOCAL_OUT, 0.01);
    ct.confirm(r2.ct!, 0.01, r2.ctinfo);
    ct.takeEvents();
    ct.advance(100);
    const want = section("events-6.18.txt", "conntrack -E (acct)").find((l) => l.includes("[DESTROY] udp"));
    expect(ct.takeEvents().map((e) => formatConntrackEvent(e))).toEqual([want]);
  });

  it("zone= and mark= in events, as recorded", () => {
    const ct = new Conntrack({ recordEvents: true, sysctl: { nf_conntrack_udp_timeout: 3 } });
    const z = ct.in(udp(`${A}:41000`, `${B}:7000`), NF_INET_PRE_ROUTING, 0, { template: { zone: 5 } });
    ct.confirm(z.ct!, 0);
    const m = ct.in(udp(`${A}:41001`, `${B}:7001`), NF_INET_PRE_ROUTING, 0);
    ct.setMark(m.ct!, 0x2a);
    ct.confirm(m.ct!, 0);
    ct.advance(70);
    const got = ct.takeEvents().map((e) => formatConntrackEvent(e, { extended: true }));
    const rec = section("events-6.18.txt", "conntrack -E -o extended (zone, mark, conntrack -D)");
    const exp = section("events-6.18.txt", "conntrack -E -o extended (expiry)");
    const destroys = exp.filter((l) => l.startsWith("[DESTROY]"));
    expect(got).toEqual([rec[0], rec[1], destroys[0], destroys[1]]);
  });
});

describe("conntrack -L against the recording", () => {
  function byPorts(lines: string[]): Map<string, string> {
    const m = new Map<string, string>();
    for (const l of lines) {
      const p = parseConntrackLine(l);
      m.set(`${p.proto}/${p.orig.sport ?? p.orig.id ?? ""}`, l);
    }
    return m;
  }

  it("every recorded -L, -o extended and /proc line is printed field for field (timer aside)", () => {
    const ct = new Conntrack();
    const end = replayFirstRun(ct);
    const list = ct.list(end + 1);
    expect(list.length).toBe(6);
    const cases: [string, (c: NfConn) => string][] = [
      ["conntrack -L", (c) => formatConntrackEntry(c, end + 1)],
      ["conntrack -L -o extended", (c) => formatConntrackEntry(c, end + 1, { extended: true })],
      ["cat /proc/net/nf_conntrack", (c) => formatProcEntry(c, end + 1)],
    ];
    for (const [title, fmt] of cases) {
      const want = byPorts(section("list-6.18.txt", title));
      const got = byPorts(list.map(fmt));
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [k, line] of got) {
        const diffs = diffConntrackLines(parseConntrackLine(line), parseConntrackLine(want.get(k)!), {
          use: true,
        });
        expect(diffs, `${title} ${k}:\n got ${line}\nwant ${want.get(k)}`).toEqual([]);
      }
    }
  });

  it("timers, counters and zones print exactly (acct run, zone run, generic)", () => {
    const ct = new Conntrack({ sysctl: { nf_conntrack_acct: 1 } });
    const r = ct.in(udp(`${A}:47246`, `${B}:9999`), NF_INET_PRE_ROUTING, 0);
    ct.confirm(r.ct!, 0);
    const r2 = ct.in(udp(`${B}:9999`, `${A}:47246`, { len: 4 }), NF_INET_LOCAL_OUT, 0);
    ct.confirm(r2.ct!, 0, r2.ctinfo);
    const want = section("list-6.18.txt", "conntrack -L (acct)").find((l) => l.startsWith("udp"));
    expect(formatConntrackEntry(r.ct!, 0.5, { counters: true })).toBe(want);

    const z = new Conntrack({ sysctl: { nf_conntrack_udp_timeout: 3 } });
    const zr = z.in(udp(`${A}:41000`, `${B}:7000`), NF_INET_PRE_ROUTING, 0, { zone: 5 });
    z.confirm(zr.ct!, 0);
    const gen = z.in(raw(A, B, 253), NF_INET_PRE_ROUTING, 0);
    z.confirm(gen.ct!, 0);
    const zl = section("list-6.18.txt", "conntrack -L (zone, mark)");
    expect(formatConntrackEntry(zr.ct!, 0.5)).toBe(zl[0]);
    expect(formatProcEntry(zr.ct!, 0.5)).toBe(
      section("list-6.18.txt", "cat /proc/net/nf_conntrack (zone, mark)")[0],
    );
    expect(formatConntrackEntry(gen.ct!, 0.5)).toBe(
      section("list-6.18.txt", "conntrack -L (generic and gre)")[0],
    );
  });
});

describe("parseConntrackLine", () => {
  it("parses every recorded line", () => {
    let n = 0;
    for (const file of ["list-6.18.txt", "events-6.18.txt"]) {
      for (const [title, lines] of goldenSections(file)) {
        for (const l of lines) {
          const p = parseConntrackLine(l);
          expect(p.orig.src, `${file} / ${title}: ${l}`).toMatch(/^192\.0\.2\.\d$/);
          expect(p.reply.src).toMatch(/^192\.0\.2\.\d$/);
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(100);
  });

  it("splits the fields of an ICMP -o id line (tuple id vs trailing id)", () => {
    const p = parseConntrackLine(
      "icmp     1 28 src=192.0.2.2 dst=192.0.2.1 type=8 code=0 id=4660 src=192.0.2.1 dst=192.0.2.2 type=0 code=0 id=4660 mark=0 use=1 id=851128903",
    );
    expect(p.proto).toBe("icmp");
    expect(p.timer).toBe(28);
    expect(p.orig).toEqual({ src: "192.0.2.2", dst: "192.0.2.1", type: "8", code: "0", id: "4660" });
    expect(p.reply.id).toBe("4660");
    expect(p.fields).toEqual({ mark: "0", use: "1", id: "851128903" });
  });

  it("reads event, layer 3, state and flags", () => {
    const p = parseConntrackLine(
      "[DESTROY] ipv4     2 tcp      6 TIME_WAIT src=192.0.2.2 dst=192.0.2.1 sport=40000 dport=8080 packets=6 bytes=325 src=192.0.2.1 dst=192.0.2.2 sport=8080 dport=40000 packets=5 bytes=270 [ASSURED]",
    );
    expect([p.event, p.l3, p.l3num, p.proto, p.protonum, p.timer, p.state]).toEqual([
      "DESTROY",
      "ipv4",
      2,
      "tcp",
      6,
      undefined,
      "TIME_WAIT",
    ]);
    expect(p.orig.packets).toBe("6");
    expect(p.flags).toEqual(["ASSURED"]);
  });

  it("reports differences as got/want and rejects malformed lines with a column", () => {
    const a = parseConntrackLine(
      "udp      17 30 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0 use=1",
    );
    const b = parseConntrackLine(
      "udp      17 29 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=3 src=2.2.2.2 dst=1.1.1.1 sport=3 dport=1 mark=0 use=1",
    );
    expect(diffConntrackLines(a, b)).toEqual([
      "orig dport: got 2, want 3",
      "reply sport: got 2, want 3",
      "flags: got UNREPLIED, want ",
    ]);
    expect(() => parseConntrackLine("udp 17 30 sport=1")).toThrow(ConntrackLineError);
    try {
      parseConntrackLine("udp x");
    } catch (e) {
      expect((e as ConntrackLineError).column).toBe(5);
    }
  });
});
