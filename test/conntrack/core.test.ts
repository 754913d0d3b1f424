// Conntrack core: packet dialogues grouped by protocol and by table behaviour (ctinfo, confirm/discard, expiry,
// table full, zones, clashes, events).
import { describe, expect, it } from "vitest";
import type { CtLookupResult } from "../../src/conntrack/core";
import { Conntrack, IPCT_REPLY } from "../../src/conntrack/core";
import { formatConntrackEntry, formatConntrackEvent } from "../../src/conntrack/show";
import type { CtInfo, NfHook } from "../../src/conntrack/types";
import {
  CTINFO_NAMES,
  IPS_ASSURED,
  IPS_NAT_CLASH,
  IPS_SEEN_REPLY,
  IP_CT_DIR_REPLY,
  IP_CT_ESTABLISHED,
  IP_CT_ESTABLISHED_REPLY,
  IP_CT_NEW,
  IP_CT_RELATED,
  IP_CT_RELATED_REPLY,
  IP_CT_UNTRACKED,
  NF_ACCEPT,
  NF_DROP,
  NF_INET_LOCAL_OUT,
  NF_INET_PRE_ROUTING,
} from "../../src/conntrack/types";
import type { Packet } from "../../src/wire/packet";
import { ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_TIME_EXCEEDED } from "../../src/wire/packet";
import { icmp, icmpError, ip, raw, tcp, udp } from "./packets";

const A = "192.0.2.2";
const B = "192.0.2.1";
const C = "192.0.2.3";

/** A namespace's conntrack with an event log; `send` runs nf_conntrack_in then nf_confirm, like a packet that
 * passes PRE_ROUTING -> LOCAL_IN. */
class Host {
  readonly ct: Conntrack;
  constructor(opts: ConstructorParameters<typeof Conntrack>[0] = {}) {
    this.ct = new Conntrack({ recordEvents: true, ...opts });
  }
  send(pkt: Packet, now: number, hook: NfHook = NF_INET_PRE_ROUTING, zone?: number): CtLookupResult {
    const r = this.ct.in(pkt, hook, now, zone === undefined ? undefined : { zone });
    if (r.ct && r.verdict === NF_ACCEPT) {
      const c = this.ct.confirm(r.ct, now, r.ctinfo);
      expect(c.verdict, `confirm verdict: got ${c.verdict}, want ${NF_ACCEPT}`).toBe(NF_ACCEPT);
    }
    return r;
  }
  lines(opts: { extended?: boolean } = {}): string[] {
    return this.ct.takeEvents().map((e) => formatConntrackEvent(e, opts));
  }
}

function expectCtinfo(r: CtLookupResult, want: CtInfo): void {
  const got = r.ctinfo === undefined ? "(none)" : CTINFO_NAMES[r.ctinfo];
  expect(got, `ctinfo: got ${got}, want ${CTINFO_NAMES[want]}`).toBe(CTINFO_NAMES[want]);
}

describe("UDP", () => {
  it("request/reply: NEW, ESTABLISHED_REPLY with SEEN_REPLY, then ESTABLISHED; unreplied timeout 30 s", () => {
    const h = new Host();
    const r1 = h.send(udp(`${A}:47246`, `${B}:9999`), 100);
    expectCtinfo(r1, IP_CT_NEW);
    expect(r1.state).toBe("NEW");
    expect(r1.ct!.confirmed, "confirmed after confirm()").toBe(true);
    expect(r1.ct!.timeout, "timeout: got, want now+30").toBe(130);
    const r2 = h.send(udp(`${B}:9999`, `${A}:47246`), 100.1);
    expectCtinfo(r2, IP_CT_ESTABLISHED_REPLY);
    expect(r2.ct, "same entry for the reply").toBe(r1.ct);
    expect(r2.ct!.status & IPS_SEEN_REPLY, "SEEN_REPLY after the first reply").toBeTruthy();
    expect(r2.ct!.timeout, "the first reply still gets the unreplied timeout").toBeCloseTo(130.1, 6);
    const r3 = h.send(udp(`${A}:47246`, `${B}:9999`), 100.5);
    expectCtinfo(r3, IP_CT_ESTABLISHED);
    expect(r3.ct!.status & IPS_ASSURED, "no ASSURED within 2 s of the first packet (6.18)").toBe(0);
    expect(h.ct.count).toBe(1);
  });

  it("stream timing: after 2 s the stream timeout (120 s) applies and ASSURED is set, once (6.18)", () => {
    const h = new Host();
    h.send(udp(`${A}:47247`, `${B}:9999`), 0);
    h.send(udp(`${B}:9999`, `${A}:47247`), 0.01);
    const r = h.send(udp(`${A}:47247`, `${B}:9999`), 2.0);
    expect(r.ct!.status & IPS_ASSURED, "exactly 2 s is not after stream_ts").toBe(0);
    expect(r.ct!.timeout).toBe(32);
    const r2 = h.send(udp(`${A}:47247`, `${B}:9999`), 2.5);
    expect(r2.ct!.status & IPS_ASSURED, "ASSURED after 2 s").toBeTruthy();
    expect(r2.ct!.timeout).toBe(122.5);
    h.send(udp(`${B}:9999`, `${A}:47247`), 3);
    expect(h.lines()).toEqual([
      "    [NEW] udp      17 30 src=192.0.2.2 dst=192.0.2.1 sport=47247 dport=9999 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 sport=9999 dport=47247",
      " [UPDATE] udp      17 30 src=192.0.2.2 dst=192.0.2.1 sport=47247 dport=9999 src=192.0.2.1 dst=192.0.2.2 sport=9999 dport=47247",
      " [UPDATE] udp      17 120 src=192.0.2.2 dst=192.0.2.1 sport=47247 dport=9999 src=192.0.2.1 dst=192.0.2.2 sport=9999 dport=47247 [ASSURED]",
    ]);
  });

  it("older kernels (5.10): 180 s and ASSURED on the first packet after the reply, even within 2 s", () => {
    const h = new Host({ kernel: "5.10" });
    h.send(udp(`${A}:1000`, `${B}:53`), 0);
    h.send(udp(`${B}:53`, `${A}:1000`), 0.1);
    const r = h.send(udp(`${A}:1000`, `${B}:53`), 0.2);
    expect(r.ct!.status & IPS_ASSURED, "ASSURED at once").toBeTruthy();
    expect(r.ct!.timeout).toBeCloseTo(180.2, 6);
  });

  it("udp_error: bad checksum only at PRE_ROUTING and only with a checksum; malformed length", () => {
    const h = new Host();
    const bad = h.send(udp(`${A}:1`, `${B}:2`, { checksum: "incorrect" }), 0);
    expect(bad.state).toBe("INVALID");
    expect(bad.ct).toBeUndefined();
    expect(bad.reason).toEqual({ fn: "udp_error", text: "bad checksum" });
    expect(h.send(udp(`${A}:1`, `${B}:2`, { checksum: "incorrect" }), 0, NF_INET_LOCAL_OUT).state).toBe(
      "NEW",
    );
    expect(h.send(udp(`${A}:3`, `${B}:2`, { checksum: "incorrect", csumField: 0 }), 0).state).toBe("NEW");
    const trunc = h.send(udp(`${A}:4`, `${B}:2`, { udpLength: 200 }), 0);
    expect(trunc.reason?.text).toBe("truncated/malformed packet");
    h.ct.sysctl.nf_conntrack_checksum = 0;
    expect(h.send(udp(`${A}:5`, `${B}:2`, { checksum: "incorrect" }), 0).state).toBe("NEW");
  });

  it("expiry: an entry is gone at timeout <= now, on lookup (with DESTROY) and the next packet is NEW", () => {
    const h = new Host();
    const r1 = h.send(udp(`${A}:5000`, `${B}:53`), 0);
    expect(h.send(udp(`${A}:5000`, `${B}:53`), 29.9).ct, "alive at 29.9 s").toBe(r1.ct);
    const r2 = h.send(udp(`${A}:5000`, `${B}:53`), 59.9);
    expect(r2.ct).not.toBe(r1.ct);
    expectCtinfo(r2, IP_CT_NEW);
    expect(h.lines()).toEqual([
      "    [NEW] udp      17 30 src=192.0.2.2 dst=192.0.2.1 sport=5000 dport=53 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 sport=53 dport=5000",
      "[DESTROY] udp      17 src=192.0.2.2 dst=192.0.2.1 sport=5000 dport=53 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 sport=53 dport=5000",
      "    [NEW] udp      17 30 src=192.0.2.2 dst=192.0.2.1 sport=5000 dport=53 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 sport=53 dport=5000",
    ]);
  });
});

describe("ICMP", () => {
  it("echo: NEW, reply ESTABLISHED_REPLY, the entry stays for 30 s after the reply", () => {
    const h = new Host();
    const req = h.send(icmp(A, B, ICMP_ECHO, 0x1234), 10);
    expectCtinfo(req, IP_CT_NEW);
    const rep = h.send(icmp(B, A, ICMP_ECHOREPLY, 0x1234), 10.001);
    expectCtinfo(rep, IP_CT_ESTABLISHED_REPLY);
    expect(rep.ct).toBe(req.ct);
    expect(formatConntrackEntry(rep.ct!, 12)).toBe(
      "icmp     1 28 src=192.0.2.2 dst=192.0.2.1 type=8 code=0 id=4660 src=192.0.2.1 dst=192.0.2.2 type=0 code=0 id=4660 mark=0 use=1",
    );
    expect(h.ct.list(40.001).length, "expired 30 s after the reply").toBe(0);
  });

  it("an unsolicited echo reply is INVALID and leaves nothing behind", () => {
    const h = new Host();
    const r = h.send(icmp(B, A, ICMP_ECHOREPLY, 7), 0);
    expect(r.state).toBe("INVALID");
    expect(r.reason?.fn).toBe("nf_conntrack_icmp_packet");
    expect(r.reason?.text).toContain("can't create new conn with type 0");
    expect(h.ct.count).toBe(0);
  });

  it("types above 18 and non-query types without an inverse are INVALID", () => {
    const h = new Host();
    expect(h.send(icmp(A, B, 40, 1), 0).reason).toEqual({
      fn: "nf_conntrack_icmpv4_error",
      text: "invalid icmp type",
    });
    const ra = h.send(icmp(A, B, 9, 1), 0); // router advertisement
    expect(ra.state).toBe("INVALID");
    expect(ra.reason?.fn).toBe("init_conntrack");
    expect(h.send(icmp(A, B, ICMP_ECHO, 1, { checksum: "incorrect" }), 0).reason?.text).toBe(
      "bad hw icmp checksum",
    );
  });

  it("errors: port unreachable for a UDP flow is RELATED_REPLY to it; no new entry, no event", () => {
    const h = new Host();
    const out = udp(`${A}:47245`, `${B}:9998`);
    const first = h.send(out, 0);
    h.ct.takeEvents();
    const err = h.send(icmpError(B, A, ICMP_DEST_UNREACH, 3, out), 0.001, NF_INET_LOCAL_OUT);
    expectCtinfo(err, IP_CT_RELATED_REPLY);
    expect(err.state).toBe("RELATED");
    expect(err.ct).toBe(first.ct);
    expect(h.ct.count).toBe(1);
    expect(h.lines()).toEqual([]);
    expect(first.ct!.status & IPS_SEEN_REPLY, "an error does not count as a reply").toBe(0);
  });

  it("errors in the original direction are RELATED (time exceeded about a reply packet, sent to B)", () => {
    const h = new Host();
    h.send(udp(`${A}:1000`, `${B}:53`), 0);
    const back = udp(`${B}:53`, `${A}:1000`);
    h.send(back, 0.1);
    const err = h.send(icmpError(C, B, ICMP_TIME_EXCEEDED, 0, back), 0.2);
    expectCtinfo(err, IP_CT_RELATED);
  });

  it("errors whose outer destination is not the inner one are INVALID with the kernel's text", () => {
    const h = new Host();
    const out = udp(`${A}:1000`, `${B}:53`);
    h.send(out, 0);
    const err = h.send(icmpError(B, C, ICMP_DEST_UNREACH, 3, out), 0.1);
    expect(err.state).toBe("INVALID");
    expect(err.reason).toEqual({
      fn: "nf_conntrack_inet_error",
      text: "outer daddr 192.0.2.3 != inner 192.0.2.2",
    });
  });

  it("errors about unknown flows, or without a quote, are INVALID", () => {
    const h = new Host();
    const err = h.send(icmpError(B, A, ICMP_DEST_UNREACH, 3, udp(`${A}:1`, `${B}:2`)), 0);
    expect(err.state).toBe("INVALID");
    expect(err.reason?.text).toContain("no conntrack matches");
    expect(h.send(icmpError(B, A, ICMP_DEST_UNREACH, 3, undefined), 0).reason?.text).toContain("missing");
    expect(h.ct.count).toBe(0);
  });

  it("errors quoting an echo request are RELATED_REPLY to the echo entry", () => {
    const h = new Host();
    const echo = icmp(A, B, ICMP_ECHO, 99);
    h.send(echo, 0);
    expectCtinfo(h.send(icmpError(B, A, ICMP_DEST_UNREACH, 1, echo), 0.1), IP_CT_RELATED_REPLY);
  });
});

describe("generic protocols", () => {
  it("tracks by addresses with the 600 s timeout and prints as unknown", () => {
    const h = new Host();
    const r = h.send(raw(A, B, 253), 0);
    expectCtinfo(r, IP_CT_NEW);
    expect(r.ct!.timeout).toBe(600);
    expect(formatConntrackEntry(r.ct!, 0.5, { extended: true })).toBe(
      "ipv4     2 unknown  253 599 src=192.0.2.2 dst=192.0.2.1 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 mark=0 use=1",
    );
    expectCtinfo(h.send(raw(B, A, 253), 1), IP_CT_ESTABLISHED_REPLY);
    expect(h.ct.count).toBe(1);
  });
});

describe("ctinfo sequence (resolve_normal_ct)", () => {
  it("a repeated original packet before any reply is NEW again; ESTABLISHED only after a reply", () => {
    const h = new Host();
    const seq = [
      h.send(udp(`${A}:7`, `${B}:7`), 0),
      h.send(udp(`${A}:7`, `${B}:7`), 1),
      h.send(udp(`${B}:7`, `${A}:7`), 2),
      h.send(udp(`${A}:7`, `${B}:7`), 3),
      h.send(udp(`${B}:7`, `${A}:7`), 4),
    ].map((r) => CTINFO_NAMES[r.ctinfo!]);
    expect(seq).toEqual([
      "IP_CT_NEW",
      "IP_CT_NEW",
      "IP_CT_ESTABLISHED_REPLY",
      "IP_CT_ESTABLISHED",
      "IP_CT_ESTABLISHED_REPLY",
    ]);
  });

  it("reuseResult: one object per table, holding the last packet's answer; without it, one object per call", () => {
    const h = new Host();
    const reuse = { reuseResult: true };
    const first = h.ct.in(udp(`${A}:7`, `${B}:7`), NF_INET_PRE_ROUTING, 0, reuse);
    expect(first.state).toBe("NEW");
    const ct = first.ct!;
    h.ct.confirm(ct, 0, first.ctinfo);
    const second = h.ct.in(udp(`${B}:7`, `${A}:7`), NF_INET_PRE_ROUTING, 1, reuse);
    expect(second, "the same object").toBe(first);
    expect([second.ct, second.state, second.dir, second.ctinfo, second.verdict]).toEqual([
      ct,
      "ESTABLISHED",
      IP_CT_DIR_REPLY,
      IP_CT_ESTABLISHED_REPLY,
      NF_ACCEPT,
    ]);
    const a = h.ct.in(udp(`${A}:7`, `${B}:7`), NF_INET_PRE_ROUTING, 2);
    const b = h.ct.in(udp(`${A}:7`, `${B}:7`), NF_INET_PRE_ROUTING, 3);
    expect(a, "fresh objects by default").not.toBe(b);
    expect(a).not.toBe(first);
    expect(first.ctinfo, "the reused object untouched by calls without the option").toBe(
      IP_CT_ESTABLISHED_REPLY,
    );
  });

  it("confirm's reuseResult: one object for accepted packets, holding the last entry; calls without it get their own", () => {
    const h = new Host();
    const reuse = { reuseResult: true };
    const r1 = h.ct.in(udp(`${A}:7`, `${B}:7`), NF_INET_PRE_ROUTING, 0);
    const c1 = h.ct.confirm(r1.ct!, 0, r1.ctinfo, reuse);
    expect([c1.verdict, c1.ct]).toEqual([NF_ACCEPT, r1.ct]);
    expect(h.ct.count, "inserted").toBe(1);
    const r2 = h.ct.in(udp(`${A}:8`, `${B}:8`), NF_INET_PRE_ROUTING, 1);
    const c2 = h.ct.confirm(r2.ct!, 1, r2.ctinfo, reuse);
    expect(c2, "the same object").toBe(c1);
    expect(c2.ct, "now holding the second entry").toBe(r2.ct);
    const r3 = h.ct.in(udp(`${B}:7`, `${A}:7`), NF_INET_PRE_ROUTING, 2);
    const plain = h.ct.confirm(r3.ct!, 2, r3.ctinfo);
    expect(plain, "a fresh object by default").not.toBe(c1);
    expect([plain.verdict, plain.ct]).toEqual([NF_ACCEPT, r1.ct]);
    expect(c1.ct, "the reused object untouched by calls without the option").toBe(r2.ct);
  });

  it("untracked packets get IP_CT_UNTRACKED and no entry", () => {
    const h = new Host();
    const r = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0, { untracked: true });
    expect(r.state).toBe("UNTRACKED");
    expect(r.ctinfo).toBe(IP_CT_UNTRACKED);
    expect(r.ct).toBeUndefined();
    expect(h.ct.count).toBe(0);
  });

  it("non-first fragments are INVALID", () => {
    const h = new Host();
    expect(h.send(udp(`${A}:1`, `${B}:2`, { fragOffset: 100 }), 0).state).toBe("INVALID");
  });
});

describe("confirm and discard", () => {
  it("an entry is invisible until confirmed; a discarded one leaves nothing", () => {
    const h = new Host();
    const r = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0);
    expect(r.ct!.confirmed).toBe(false);
    expect(h.ct.count).toBe(0);
    expect(h.ct.lookup(r.ct!.tuplehash[0], 0, 0), "unconfirmed entries are not in the table").toBeUndefined();
    h.ct.discard(r.ct!);
    const again = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 1);
    expect(again.ct).not.toBe(r.ct);
    expect(h.ct.confirm(again.ct!, 1).verdict).toBe(NF_ACCEPT);
    expect(h.ct.count).toBe(1);
    expect(h.lines().length, "only the confirmed entry produced an event").toBe(1);
  });

  it("the timer starts at confirmation", () => {
    const h = new Host();
    const r = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0);
    h.ct.confirm(r.ct!, 0.5);
    expect(r.ct!.timeout).toBe(30.5);
  });

  it("UDP clash: two unconfirmed entries for one flow merge into the first confirmed", () => {
    const h = new Host();
    const a = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0);
    const b = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0);
    expect(h.ct.confirm(a.ct!, 0).ct).toBe(a.ct);
    const c = h.ct.confirm(b.ct!, 0);
    expect(c.verdict).toBe(NF_ACCEPT);
    expect(c.ct, "the packet moves to the entry that won").toBe(a.ct);
    expect(h.ct.count).toBe(1);
    expect(h.ct.stats.clash_resolve).toBe(1);
  });

  it("UDP clash with a different reply tuple (NAT): the loser is inserted by its reply only, hidden, 1 s", () => {
    const h = new Host();
    const a = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0);
    const b = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0);
    h.ct.setReplyTuple(b.ct!, { src: ip("198.51.100.9"), dst: ip(A), protonum: 17, srcU: 2, dstU: 1 });
    h.ct.confirm(a.ct!, 0);
    const c = h.ct.confirm(b.ct!, 0);
    expect(c.ct).toBe(b.ct);
    expect(b.ct!.status & IPS_NAT_CLASH).toBeTruthy();
    expect(b.ct!.timeout).toBe(1);
    expect(h.ct.count).toBe(2);
    expect(
      h.ct.list().map((x) => x.id),
      "NAT-clash entries are hidden from the listing",
    ).toEqual([a.ct!.id]);
    const back = h.send(udp(`198.51.100.9:2`, `${A}:1`), 0.5);
    expect(back.ct, "replies to the loser's reply tuple find it").toBe(b.ct);
  });

  it("TCP clash is a drop (no allow_clash)", () => {
    const h = new Host();
    const a = h.ct.in(tcp(`${A}:1000`, `${B}:80`, "S", 1, 0), NF_INET_PRE_ROUTING, 0);
    const b = h.ct.in(tcp(`${A}:1000`, `${B}:80`, "S", 1, 0), NF_INET_PRE_ROUTING, 0);
    h.ct.confirm(a.ct!, 0);
    expect(h.ct.confirm(b.ct!, 0).verdict).toBe(NF_DROP);
    expect(h.ct.stats.insert_failed).toBe(1);
  });
});

describe("advance (GC)", () => {
  it("reaps expired entries oldest-expiry first with DESTROY events, and nothing before", () => {
    const h = new Host();
    h.send(udp(`${A}:1`, `${B}:2`), 0);
    h.send(raw(A, B, 253), 1);
    h.send(udp(`${A}:3`, `${B}:2`), 2);
    h.ct.takeEvents();
    h.ct.advance(31);
    expect(h.ct.count).toBe(2);
    h.ct.advance(1000);
    expect(h.ct.count).toBe(0);
    expect(h.lines()).toEqual([
      "[DESTROY] udp      17 src=192.0.2.2 dst=192.0.2.1 sport=1 dport=2 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 sport=2 dport=1",
      "[DESTROY] udp      17 src=192.0.2.2 dst=192.0.2.1 sport=3 dport=2 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 sport=2 dport=3",
      "[DESTROY] unknown  253 src=192.0.2.2 dst=192.0.2.1 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2",
    ]);
  });

  it("kill shows the time left on DESTROY", () => {
    const h = new Host();
    const r = h.send(udp(`${A}:1`, `${B}:2`), 0);
    h.ct.takeEvents();
    h.ct.advance(10);
    expect(r.ct!.kill()).toBe(true);
    expect(r.ct!.kill(), "second kill reports already dying").toBe(false);
    expect(h.lines()).toEqual([
      "[DESTROY] udp      17 20 src=192.0.2.2 dst=192.0.2.1 sport=1 dport=2 [UNREPLIED] src=192.0.2.1 dst=192.0.2.2 sport=2 dport=1",
    ]);
  });
});

describe("table full (nf_conntrack_max)", () => {
  it("early_drop evicts the oldest non-ASSURED entry", () => {
    const h = new Host({ sysctl: { nf_conntrack_max: 2 } });
    const first = h.send(udp(`${A}:1`, `${B}:2`), 0);
    h.send(udp(`${A}:3`, `${B}:2`), 0);
    h.ct.takeEvents();
    const third = h.send(udp(`${A}:5`, `${B}:2`), 1);
    expect(third.state).toBe("NEW");
    expect(h.ct.count).toBe(2);
    expect(h.ct.lookup(first.ct!.tuplehash[0], 0, 1), "the oldest entry was dropped").toBeUndefined();
    expect(h.ct.stats.early_drop).toBe(1);
    expect(h.lines()[0]).toMatch(/^\[DESTROY\] udp {6}17 29 src=192\.0\.2\.2 dst=192\.0\.2\.1 sport=1 /);
  });

  it("ASSURED entries are not evicted: the new packet is dropped with the kernel's message", () => {
    const h = new Host({ sysctl: { nf_conntrack_max: 1 } });
    h.send(udp(`${A}:1`, `${B}:2`), 0);
    h.send(udp(`${B}:2`, `${A}:1`), 0.1);
    h.send(udp(`${A}:1`, `${B}:2`), 3);
    const r = h.send(udp(`${A}:9`, `${B}:2`), 4);
    expect(r.verdict).toBe(NF_DROP);
    expect(r.reason).toEqual({
      fn: "__nf_conntrack_alloc",
      text: "nf_conntrack: table full, dropping packet",
    });
    expect(h.ct.count).toBe(1);
  });

  it("expired entries do not hold the table full", () => {
    const h = new Host({ sysctl: { nf_conntrack_max: 1 } });
    h.send(udp(`${A}:1`, `${B}:2`), 0);
    h.send(udp(`${B}:2`, `${A}:1`), 0.1);
    h.send(udp(`${A}:1`, `${B}:2`), 3);
    expect(h.send(udp(`${A}:9`, `${B}:2`), 200).state).toBe("NEW");
  });

  it("nf_conntrack_max = 0 means no limit", () => {
    const h = new Host({ sysctl: { nf_conntrack_max: 0 } });
    for (let p = 1; p <= 50; p++) h.send(udp(`${A}:${p}`, `${B}:2`), 0);
    expect(h.ct.count).toBe(50);
  });
});

describe("zones", () => {
  it("the same tuple in two zones is two entries; zone= shows when non-zero", () => {
    const h = new Host();
    const z0 = h.send(udp(`${A}:41000`, `${B}:7000`), 0);
    const z5 = h.send(udp(`${A}:41000`, `${B}:7000`), 0, NF_INET_PRE_ROUTING, 5);
    expect(z5.ct).not.toBe(z0.ct);
    expect(h.ct.count).toBe(2);
    expect(h.send(udp(`${B}:7000`, `${A}:41000`), 0.1, NF_INET_PRE_ROUTING, 5).ct).toBe(z5.ct);
    expect(z0.ct!.status & IPS_SEEN_REPLY, "the zone-0 entry saw no reply").toBe(0);
    const t = h.ct.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0, { template: { zone: 9 } });
    expect(t.ct!.zone).toBe(9);
    expect(formatConntrackEntry(z5.ct!, 1)).toContain("mark=0 zone=5 use=1");
  });
});

describe("events", () => {
  it("SEEN_REPLY caches IPCT_REPLY; a mark change shows mark= on the next UPDATE", () => {
    const h = new Host();
    const r = h.send(udp(`${A}:41001`, `${B}:7001`), 0);
    h.ct.setMark(r.ct!, 42);
    h.send(udp(`${B}:7001`, `${A}:41001`), 0.1);
    const evs = h.ct.takeEvents();
    expect(evs.map((e) => e.type)).toEqual(["NEW", "UPDATE"]);
    expect(evs[1].events & (1 << IPCT_REPLY)).toBeTruthy();
    expect(formatConntrackEvent(evs[1])).toBe(
      " [UPDATE] udp      17 30 src=192.0.2.2 dst=192.0.2.1 sport=41001 dport=7001 src=192.0.2.1 dst=192.0.2.2 sport=7001 dport=41001 mark=42",
    );
  });

  it("no events without a listener or with nf_conntrack_events=0", () => {
    const quiet = new Conntrack();
    const r = quiet.in(udp(`${A}:1`, `${B}:2`), NF_INET_PRE_ROUTING, 0);
    quiet.confirm(r.ct!, 0);
    expect(quiet.events.length).toBe(0);
    const off = new Host({ sysctl: { nf_conntrack_events: 0 } });
    off.send(udp(`${A}:1`, `${B}:2`), 0);
    expect(off.ct.events.length).toBe(0);
  });

  it("onEvent receives events as they are delivered", () => {
    const got: string[] = [];
    const ct = new Conntrack({ onEvent: (e) => got.push(e.type) });
    const r = ct.in(icmp(A, B, ICMP_ECHO, 1), NF_INET_PRE_ROUTING, 0);
    ct.confirm(r.ct!, 0);
    const r2 = ct.in(icmp(B, A, ICMP_ECHOREPLY, 1), NF_INET_PRE_ROUTING, 0.1);
    ct.confirm(r2.ct!, 0.1, r2.ctinfo);
    ct.advance(100);
    expect(got).toEqual(["NEW", "UPDATE", "DESTROY"]);
  });
});

describe("counters", () => {
  it("counts packets and IP bytes per direction", () => {
    const h = new Host({ sysctl: { nf_conntrack_acct: 1 } });
    const r = h.send(udp(`${A}:47246`, `${B}:9999`, { len: 1 }), 0);
    h.send(udp(`${B}:9999`, `${A}:47246`, { len: 4 }), 0.1);
    expect([r.ct!.origPackets, r.ct!.origBytes, r.ct!.replyPackets, r.ct!.replyBytes]).toEqual([
      1, 29, 1, 32,
    ]);
    expect(formatConntrackEntry(r.ct!, 1.1, { counters: true })).toBe(
      "udp      17 29 src=192.0.2.2 dst=192.0.2.1 sport=47246 dport=9999 packets=1 bytes=29 src=192.0.2.1 dst=192.0.2.2 sport=9999 dport=47246 packets=1 bytes=32 mark=0 use=1",
    );
  });
});

describe("ids", () => {
  it("are 1, 2, 3 by default and drawn from the rng when given", () => {
    const h = new Host();
    expect([h.send(udp(`${A}:1`, `${B}:2`), 0).ct!.id, h.send(udp(`${A}:2`, `${B}:2`), 0).ct!.id]).toEqual([
      1, 2,
    ]);
    const seeded = new Host({ rng: () => 0.5 });
    expect(seeded.send(udp(`${A}:1`, `${B}:2`), 0).ct!.id).toBe(0x80000000);
  });
});
