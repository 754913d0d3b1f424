// The flat per-entry representation (NfConn and IpCtTcp store small integers only): the kernel's field names
// still read and write the kernel's values, including u32 values above 2^31, and the table finds both
// directions of entries whose tuples no longer share a hash slot (NAT).
import { describe, expect, it } from "vitest";
import { Conntrack } from "../../src/conntrack/core";
import { IpCtTcp, newIpCtTcp } from "../../src/conntrack/tcp_window";
import { tupleHashOf } from "../../src/conntrack/tuple";
import type { Tuple } from "../../src/conntrack/types";
import { IPS_SEEN_REPLY, NF_INET_PRE_ROUTING } from "../../src/conntrack/types";
import type { Packet } from "../../src/wire/packet";
import { ip, tcp, udp } from "./packets";

function send(ct: Conntrack, p: Packet, now: number) {
  const r = ct.in(p, NF_INET_PRE_ROUTING, now);
  if (r.ct) ct.confirm(r.ct, now, r.ctinfo);
  return r;
}

/** True when every own property of `o` holds an int32 (what V8 keeps unboxed on 64-bit). */
function int32Fields(o: object, allowed: readonly string[] = []): string[] {
  const bad: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (allowed.includes(k)) continue;
    if (typeof v !== "number" || (v | 0) !== v) bad.push(`${k}=${String(v)}`);
  }
  return bad;
}

describe("IpCtTcp (flat struct ip_ct_tcp)", () => {
  it("starts zeroed, as the kernel's memset", () => {
    const t = newIpCtTcp();
    expect(t).toBeInstanceOf(IpCtTcp);
    for (const s of t.seen)
      expect(s).toEqual({ td_end: 0, td_maxend: 0, td_maxwin: 0, td_maxack: 0, td_scale: 0, flags: 0 });
    expect([
      t.state,
      t.last_dir,
      t.last_index,
      t.last_seq,
      t.last_ack,
      t.last_end,
      t.last_win,
      t.last_wscale,
      t.last_flags,
      t.retrans,
    ]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("keeps u32 sequence values above 2^31 through seen[] views, stored as int32", () => {
    const t = newIpCtTcp();
    const s1 = t.seen[1];
    s1.td_end = 0xfffffff0;
    s1.td_maxend = 0x80000000;
    s1.td_maxwin = 65535 << 14;
    s1.td_maxack = 0xdeadbeef;
    t.last_end = 0xffffffff;
    t.last_seq = 0x80000001;
    t.last_ack = 0x9abcdef0;
    const again = t.seen[1];
    expect(again.td_end, "td_end").toBe(0xfffffff0);
    expect(again.td_maxend, "td_maxend").toBe(0x80000000);
    expect(again.td_maxwin, "td_maxwin").toBe(65535 << 14);
    expect(again.td_maxack, "td_maxack").toBe(0xdeadbeef);
    expect([t.last_end, t.last_seq, t.last_ack]).toEqual([0xffffffff, 0x80000001, 0x9abcdef0]);
    expect(t.seen[0].td_end, "the other direction is untouched").toBe(0);
    expect(int32Fields(t), "every stored field is an int32").toEqual([]);
  });

  it("packs the small fields without one disturbing another", () => {
    const t = newIpCtTcp();
    const values = { last_dir: 1, last_index: 5, retrans: 255, last_wscale: 14, last_flags: 0xff } as const;
    t.last_dir = values.last_dir;
    t.last_index = values.last_index;
    t.retrans = values.retrans;
    t.last_wscale = values.last_wscale;
    t.last_flags = values.last_flags;
    expect({
      last_dir: t.last_dir,
      last_index: t.last_index,
      retrans: t.retrans,
      last_wscale: t.last_wscale,
      last_flags: t.last_flags,
    }).toEqual(values);
    t.retrans = (t.retrans + 1) & 0xff; // u8 wrap, as tcp_in_window does
    t.last_flags &= ~0x40;
    expect([t.last_dir, t.last_index, t.retrans, t.last_wscale, t.last_flags]).toEqual([1, 5, 0, 14, 0xbf]);
    const s0 = t.seen[0];
    s0.flags = 0x3f;
    s0.td_scale = 14;
    t.seen[1].flags = 0x08;
    expect([t.seen[0].flags, t.seen[0].td_scale, t.seen[1].flags, t.seen[1].td_scale]).toEqual([
      0x3f, 14, 0x08, 0,
    ]);
  });
});

describe("NfConn (flat tuples)", () => {
  it("reads back both tuples, zone, mark and id with u32 values", () => {
    const ct = new Conntrack({ rng: () => 0.99 }); // ids near 2^32
    const r = send(ct, tcp("198.51.100.7:443", "203.0.113.200:65535", "S", 1, 0), 1);
    const c = r.ct!;
    const want: Tuple = {
      src: ip("198.51.100.7"),
      dst: ip("203.0.113.200"),
      protonum: 6,
      srcU: 443,
      dstU: 65535,
    };
    expect(c.orig).toEqual(want);
    expect(c.reply).toEqual({ src: want.dst, dst: want.src, protonum: 6, srcU: 65535, dstU: 443 });
    expect(c.tuplehash).toEqual([c.orig, c.reply]);
    expect(c.id).toBe(Math.floor(0.99 * 0x100000000) >>> 0);
    ct.setMark(c, 0xfffffffe);
    expect(c.mark).toBe(0xfffffffe);
    expect(c.zone).toBe(0);
  });

  it("keeps the zone apart from the protocol numbers", () => {
    const ct = new Conntrack();
    const r = ct.in(udp("10.0.0.1:5000", "10.0.0.2:53"), NF_INET_PRE_ROUTING, 1, { zone: 0xffff });
    expect(r.ct!.zone).toBe(0xffff);
    expect(r.ct!.orig.protonum).toBe(17);
    expect(r.ct!.reply.protonum).toBe(17);
  });

  it("finds a re-keyed (NATed) entry by either tuple, and neither after it dies", () => {
    const ct = new Conntrack();
    const a = send(ct, udp("10.0.0.1:5000", "192.0.2.53:53"), 1).ct!;
    const nat: Tuple = { src: ip("192.0.2.53"), dst: ip("203.0.113.1"), protonum: 17, srcU: 53, dstU: 61000 };
    ct.setReplyTuple(a, nat);
    expect(a.reply).toEqual(nat);
    expect(ct.lookup(a.orig, 0, 2), "by ORIGINAL").toBe(a);
    expect(ct.lookup(nat, 0, 2), "by the new REPLY").toBe(a);
    const back = send(ct, udp("192.0.2.53:53", "203.0.113.1:61000"), 2);
    expect(back.ct, "a reply to the NAT address belongs to the entry").toBe(a);
    expect(back.dir).toBe(1);
    expect(a.status & IPS_SEEN_REPLY).toBeTruthy();
    expect(
      ct.lookup({ src: ip("192.0.2.53"), dst: ip("10.0.0.1"), protonum: 17, srcU: 53, dstU: 5000 }, 0, 2),
      "the old reply tuple is gone",
    ).toBeUndefined();
    expect(a.kill()).toBe(true);
    expect(ct.lookup(a.orig, 0, 3)).toBeUndefined();
    expect(ct.lookup(nat, 0, 3)).toBeUndefined();
    expect(ct.count).toBe(0);
    expect(ct.list()).toEqual([]);
  });

  it("stores only int32 fields apart from its references", () => {
    const ct = new Conntrack();
    const c = send(ct, tcp("198.51.100.7:443", "203.0.113.200:80", "S", 0xfffffff0, 0), 1).ct!;
    expect(int32Fields(c, ["timeout", "created", "proto", "acct", "bind", "masqIndex"])).toEqual([]);
    expect(int32Fields(c.proto as object)).toEqual([]);
    expect((c.proto as IpCtTcp).seen[0].td_end, "SYN end = ISN + 1 wraps").toBe(0xfffffff1);
  });
});

describe("tuple hash", () => {
  it("is symmetric: a tuple and its inverse share a slot", () => {
    const pairs: Array<[number, number, number, number]> = [
      [ip("10.0.0.1"), ip("198.51.100.9"), 40000, 443],
      [ip("255.255.255.255"), ip("0.0.0.0"), 0, 65535],
      [ip("192.0.2.1"), ip("192.0.2.1"), 7, 7],
    ];
    for (const [a, b, pa, pb] of pairs) {
      for (const [proto, zone] of [
        [6, 0],
        [17, 9],
      ]) {
        const h = tupleHashOf(a, b, proto, pa, pb, zone);
        expect(tupleHashOf(b, a, proto, pb, pa, zone), `got ${h} one way`).toBe(h);
        expect(h).toBeGreaterThanOrEqual(0);
        expect(h).toBeLessThan(2 ** 30);
      }
    }
  });

  it("gives the same hash for an address as u32 or as int32", () => {
    const u = ip("203.0.113.200");
    expect(tupleHashOf(u | 0, 1, 6, 1, 2, 0)).toBe(tupleHashOf(u, 1, 6, 1, 2, 0));
  });

  it("spreads ports and zones over the slots", () => {
    const hs = new Set<number>();
    for (let p = 1; p <= 5000; p++) hs.add(tupleHashOf(ip("10.0.0.1"), ip("10.0.0.2"), 6, p, 80, 0));
    for (let z = 0; z < 1000; z++) hs.add(tupleHashOf(ip("10.0.0.1"), ip("10.0.0.2"), 6, 1, 80, z + 1));
    expect(hs.size, "distinct hashes of 6000 tuples").toBeGreaterThan(5990);
  });
});
