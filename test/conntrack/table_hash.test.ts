// The conntrack table's hash: tuples whose 30-bit hashes collide still find their own entries, in both
// directions, are listed once each, and leave each other alone when one of them dies.
import { describe, expect, it } from "vitest";
import { Conntrack } from "../../src/conntrack/core";
import { NF_INET_PRE_ROUTING } from "../../src/conntrack/types";
import { tupleHashOf } from "../../src/conntrack/tuple";
import type { Packet } from "../../src/wire/packet";
import { ip, udp } from "./packets";

/** Two client ports on 10.0.0.1 -> 192.0.2.53:53 (UDP) whose ORIGINAL tuples share a hash. */
function collidingPorts(): [number, number] {
  const seen = new Map<number, number>();
  const src = ip("10.0.0.1");
  const dst = ip("192.0.2.53");
  for (let sport = 1; sport < 65536; sport++) {
    const h = tupleHashOf(src, dst, 17, sport, 53, 0);
    const other = seen.get(h);
    if (other !== undefined) return [other, sport];
    seen.set(h, sport);
  }
  // 65535 tuples into 2^30 slots: a collision is likely (about 86%); the hash is fixed, so this is settled.
  throw new Error("no collision found");
}

function send(ct: Conntrack, p: Packet, now: number) {
  const r = ct.in(p, NF_INET_PRE_ROUTING, now);
  if (r.ct) ct.confirm(r.ct, now, r.ctinfo);
  return r;
}

describe("hash collisions", () => {
  const [p1, p2] = collidingPorts();

  it("found two colliding tuples", () => {
    const src = ip("10.0.0.1");
    const dst = ip("192.0.2.53");
    expect(p1).not.toBe(p2);
    expect(tupleHashOf(src, dst, 17, p1, 53, 0)).toBe(tupleHashOf(src, dst, 17, p2, 53, 0));
  });

  it("both entries are found in both directions and listed once each, in creation order", () => {
    const ct = new Conntrack();
    const a = send(ct, udp(`10.0.0.1:${p1}`, "192.0.2.53:53"), 1);
    const b = send(ct, udp(`10.0.0.1:${p2}`, "192.0.2.53:53"), 2);
    expect(a.state).toBe("NEW");
    expect(b.state, "the second tuple must not find the first entry").toBe("NEW");
    expect(ct.count).toBe(2);
    const ra = send(ct, udp("192.0.2.53:53", `10.0.0.1:${p1}`), 3);
    const rb = send(ct, udp("192.0.2.53:53", `10.0.0.1:${p2}`), 3);
    expect(ra.ct, "reply of the first").toBe(a.ct);
    expect(rb.ct, "reply of the second").toBe(b.ct);
    expect(ra.dir).toBe(1);
    expect(ct.list().map((c) => c.orig.srcU)).toEqual([p1, p2]);
  });

  it("when the entry holding the hash slot dies, the other stays reachable, and a new one takes the slot", () => {
    const ct = new Conntrack();
    const a = send(ct, udp(`10.0.0.1:${p1}`, "192.0.2.53:53"), 1);
    const b = send(ct, udp(`10.0.0.1:${p2}`, "192.0.2.53:53"), 20);
    ct.advance(31); // a expires (30 s unreplied), b lives until 50
    expect(ct.count).toBe(1);
    expect(ct.lookup(b.ct!.orig, 0, 31), "b after a died").toBe(b.ct);
    expect(ct.lookup(a.ct!.orig, 0, 31)).toBeUndefined();
    const a2 = send(ct, udp(`10.0.0.1:${p1}`, "192.0.2.53:53"), 32);
    expect(a2.state).toBe("NEW");
    expect(a2.ct).not.toBe(a.ct);
    expect(ct.lookup(a.ct!.orig, 0, 33)).toBe(a2.ct);
    expect(ct.lookup(b.ct!.reply, 0, 33)).toBe(b.ct);
    expect(ct.list().length).toBe(2);
    ct.advance(100);
    expect(ct.count).toBe(0);
    expect(ct.list()).toEqual([]);
  });

  it("an entry that lost the slot dies and comes back: still found, in both directions, after the slot frees", () => {
    const ct = new Conntrack();
    const a = send(ct, udp(`10.0.0.1:${p1}`, "192.0.2.53:53"), 1);
    const b = send(ct, udp(`10.0.0.1:${p2}`, "192.0.2.53:53"), 2);
    send(ct, udp("192.0.2.53:53", `10.0.0.1:${p1}`), 3); // a replied: 180 s, b stays unreplied: 30 s
    ct.advance(40);
    expect(ct.lookup(b.ct!.orig, 0, 40), "b expired").toBeUndefined();
    const b2 = send(ct, udp(`10.0.0.1:${p2}`, "192.0.2.53:53"), 41);
    expect(b2.state).toBe("NEW");
    expect(send(ct, udp("192.0.2.53:53", `10.0.0.1:${p2}`), 42).ct, "reply of the second b").toBe(b2.ct);
    ct.kill(a.ct!);
    expect(ct.lookup(b2.ct!.orig, 0, 43), "b2 once a has gone").toBe(b2.ct);
    expect(ct.lookup(b2.ct!.reply, 0, 43)).toBe(b2.ct);
    expect(ct.lookup(a.ct!.orig, 0, 43)).toBeUndefined();
  });

  it("different zones with the same tuple are different entries", () => {
    const ct = new Conntrack();
    const p = udp(`10.0.0.1:${p1}`, "192.0.2.53:53");
    const z0 = ct.in(p, NF_INET_PRE_ROUTING, 1);
    ct.confirm(z0.ct!, 1, z0.ctinfo);
    const z1 = ct.in(p, NF_INET_PRE_ROUTING, 1, { zone: 1 });
    ct.confirm(z1.ct!, 1, z1.ctinfo);
    expect(z1.state).toBe("NEW");
    expect(ct.lookup(z1.ct!.orig, 1, 2)).toBe(z1.ct);
    expect(ct.lookup(z0.ct!.orig, 0, 2)).toBe(z0.ct);
  });
});
