// Packet rewriting: incremental checksums stay right (property over real encoded packets), ICMP query ids,
// UDP without a checksum, and ICMP error translation (inner with the inverse manip, then the outer).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Tuple } from "../../src/conntrack/types";
import { IP_CT_RELATED_REPLY, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING } from "../../src/conntrack/types";
import { decodeIpv4, encodeIpv4, isDecodeFailure } from "../../src/wire/ipv4";
import { formatIpv4 } from "../../src/wire/addr";
import type { Packet } from "../../src/wire/packet";
import { ICMP_DEST_UNREACH, ICMP_ECHO } from "../../src/wire/packet";
import { csumReplace4, nfNatIcmpReplyTranslation, nfNatIpv4ManipPkt } from "../../src/nat/nf_nat_proto";
import { makeTuple } from "../../src/conntrack/tuple";
import { natRangeFromOptions } from "../../src/nat/types";
import { icmp, icmpError, ip, tcp, udp } from "../conntrack/packets";
import { Router, bind, fmtPkt } from "./router";

/** Through the real encoder and decoder: checksum fields and statuses as on the wire. */
function wire(p: Packet): Packet {
  const bytes = encodeIpv4(p);
  const d = decodeIpv4(bytes, 0, bytes.length, { tsSec: 0, tsNsec: 0 });
  if (isDecodeFailure(d)) throw new Error(d.failure);
  return d;
}

/** Encodes `p` but keeps the checksum fields `p` carries, then decodes: do those fields verify? */
function verify(p: Packet): { ip: string; l4: string } {
  const b = encodeIpv4(p);
  b[10] = p.ip.checksum >> 8;
  b[11] = p.ip.checksum & 0xff;
  const o = p.ip.ihl;
  const l4 = p.l4;
  const at = l4.kind === "tcp" ? o + 16 : l4.kind === "udp" ? o + 6 : o + 2;
  if (l4.kind !== "other") {
    b[at] = l4.checksum >> 8;
    b[at + 1] = l4.checksum & 0xff;
  }
  const d = decodeIpv4(b, 0, b.length, { tsSec: 0, tsNsec: 0 });
  if (isDecodeFailure(d)) throw new Error(d.failure);
  return { ip: d.ipChecksum, l4: d.l4Checksum };
}

describe("incremental checksums (csum_replace4 / inet_proto_csum_replace)", () => {
  it("stay valid after rewriting addresses and ports of TCP, UDP and ICMP echo packets", () => {
    const addr = fc.nat({ max: 0xffffffff });
    const port = fc.integer({ min: 1, max: 65535 });
    fc.assert(
      fc.property(
        fc.constantFrom("tcp", "udp", "icmp"),
        addr,
        addr,
        port,
        port,
        fc.boolean(),
        fc.uint8Array({ minLength: 0, maxLength: 40 }),
        (kind, a, b, p1, p2, src, payload) => {
          const base =
            kind === "tcp"
              ? tcp("10.0.0.2:40000", "192.0.2.80:80", "S", 1, 0, payload.length)
              : kind === "udp"
                ? udp("10.0.0.2:40000", "192.0.2.80:53", { len: payload.length })
                : icmp("10.0.0.2", "192.0.2.80", ICMP_ECHO, 77);
          const pkt = wire(kind === "icmp" ? base : { ...base, payload });
          const proto = kind === "tcp" ? 6 : kind === "udp" ? 17 : 1;
          const target: Tuple = makeTuple(a, b, proto, p1, p2);
          const out = nfNatIpv4ManipPkt(pkt, target, src ? "SRC" : "DST");
          const v = verify(out);
          expect(v, `${kind} ${src ? "SRC" : "DST"} -> ${fmtPkt(out)}`).toEqual({
            ip: "correct",
            l4: "correct",
          });
          expect(src ? out.ip.src : out.ip.dst).toBe(src ? a : b);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("leave a UDP checksum of 0 at 0 (no checksum), and keep a wrong one wrong", () => {
    const none = wire(udp("10.0.0.2:1", "192.0.2.80:53"));
    const zero = { ...none, l4: { ...none.l4, checksum: 0 } } as Packet;
    const out = nfNatIpv4ManipPkt(zero, makeTuple(ip("203.0.113.1"), 0, 17, 999, 0), "SRC");
    expect(out.l4.kind === "udp" && out.l4.checksum).toBe(0);
    const bad = {
      ...none,
      l4: { ...none.l4, checksum: (none.l4 as { checksum: number }).checksum ^ 1 },
    } as Packet;
    const out2 = nfNatIpv4ManipPkt(bad, makeTuple(ip("203.0.113.1"), 0, 17, 999, 0), "SRC");
    expect(verify(out2).l4).toBe("incorrect");
  });

  it("csum_replace4 of a value by itself is a no-op", () => {
    expect(csumReplace4(0x1234, 0xc0000201, 0xc0000201)).toBe(0x1234);
  });
});

describe("ICMP error translation", () => {
  it("DNATed flow: an error from inside is rewritten at POST_ROUTING (inner dst back, outer src public)", () => {
    const r = new Router();
    const dnat = natRangeFromOptions({
      addrs: { min: ip("10.0.0.10"), max: ip("10.0.0.10") },
      ports: { min: 8080, max: 8080 },
    });
    const syn = r.send(udp("198.51.100.2:40000", "203.0.113.1:80", { len: 12 }), 1, {
      dst: bind(r, dnat, "DST", () => 1),
    });
    expect(fmtPkt(syn.pkt)).toBe("198.51.100.2:40000 -> 10.0.0.10:8080");
    // A router inside answers the forwarded packet with host unreachable.
    const err = wire(icmpError("10.0.0.254", "198.51.100.2", ICMP_DEST_UNREACH, 1, wire(syn.pkt)));
    const h = r.send(err, 1.1);
    expect(h.ctinfo, "RELATED_REPLY").toBe(IP_CT_RELATED_REPLY);
    expect(h.ct).toBe(syn.ct);
    const out = h.pkt;
    expect(formatIpv4(out.ip.src), "outer source").toBe("203.0.113.1");
    expect(formatIpv4(out.ip.dst), "outer destination").toBe("198.51.100.2");
    const q = out.l4.kind === "icmp" ? out.l4.quote! : undefined;
    expect(formatIpv4(q!.ip.dst), "inner destination").toBe("203.0.113.1");
    expect((q!.l4[2] << 8) | q!.l4[3], "inner destination port").toBe(80);
    expect(verify(out), "outer ICMP and IP checksums").toEqual({ ip: "correct", l4: "correct" });
    const inner = wire(out).l4;
    expect(inner.kind === "icmp" && inner.quote!.ip.checksum).toBe(q!.ip.checksum);
  });

  it("is a no-op when the direction's NAT bit is not set, and drops a bad ICMP checksum", () => {
    const ct = {
      orig: makeTuple(ip("10.0.0.2"), ip("192.0.2.80"), 17, 5000, 53),
      reply: makeTuple(ip("192.0.2.80"), ip("203.0.113.1"), 17, 53, 5000),
      status: 1 << 4, // IPS_SRC_NAT
    };
    const quoted = udp("203.0.113.1:5000", "192.0.2.80:53");
    const err = wire(icmpError("192.0.2.1", "203.0.113.1", ICMP_DEST_UNREACH, 3, wire(quoted)));
    expect(nfNatIcmpReplyTranslation(ct, IP_CT_RELATED_REPLY, NF_INET_POST_ROUTING, err)).toBe(err);
    const done = nfNatIcmpReplyTranslation(ct, IP_CT_RELATED_REPLY, NF_INET_PRE_ROUTING, err)!;
    expect(formatIpv4(done.ip.dst)).toBe("10.0.0.2");
    const bad: Packet = { ...err, l4Checksum: "incorrect" };
    expect(nfNatIcmpReplyTranslation(ct, IP_CT_RELATED_REPLY, NF_INET_PRE_ROUTING, bad)).toBeUndefined();
  });
});
