// MASQUERADE (inet_select_addr), REDIRECT and NETMAP through a real Conntrack.
import { describe, expect, it } from "vitest";
import { NF_ACCEPT, NF_DROP, NF_INET_LOCAL_OUT, NF_INET_PRE_ROUTING } from "../../src/conntrack/types";
import { formatIpv4, parseIpv4Prefix } from "../../src/wire/addr";
import type { NatIface } from "../../src/nat/nf_nat_masquerade";
import {
  ifaList,
  inetSelectAddr,
  nfNatMasqueradeIpv4,
  RT_SCOPE_UNIVERSE,
} from "../../src/nat/nf_nat_masquerade";
import { nfNatRedirectIpv4 } from "../../src/nat/nf_nat_redirect";
import { netmapRange, netmapTg4 } from "../../src/nat/netmap";
import { natRangeFromOptions, nfNatRange } from "../../src/nat/types";
import { ip, tcp, udp } from "../conntrack/packets";
import { Router, fmtPkt } from "./router";

function iface(name: string, ...addrs: string[]): NatIface {
  return { name, addresses: addrs.map((a) => parseIpv4Prefix(a)!) };
}

describe("inet_select_addr", () => {
  const eth1 = iface("eth1", "203.0.113.1/24", "203.0.113.2/24", "198.51.100.1/24");
  it("orders primaries before secondaries (same subnet as an earlier primary = secondary)", () => {
    expect(ifaList(eth1).map((a) => `${formatIpv4(a.local)}${a.secondary ? " sec" : ""}`)).toEqual([
      "203.0.113.1",
      "198.51.100.1",
      "203.0.113.2 sec",
    ]);
  });
  it("picks the primary in the next hop's subnet, else the first primary; never a secondary", () => {
    const pick = (nh: string) => formatIpv4(inetSelectAddr(eth1, ip(nh), RT_SCOPE_UNIVERSE));
    expect(pick("198.51.100.254")).toBe("198.51.100.1");
    expect(pick("203.0.113.254")).toBe("203.0.113.1");
    expect(pick("192.0.2.1"), "no subnet match: first primary").toBe("203.0.113.1");
  });
  it("skips host-scope addresses and falls back to other devices' universe addresses", () => {
    const lo = iface("lo", "127.0.0.1/8");
    const bare = iface("eth2");
    expect(inetSelectAddr(lo, 0, RT_SCOPE_UNIVERSE)).toBe(0);
    expect(formatIpv4(inetSelectAddr(bare, ip("192.0.2.1"), RT_SCOPE_UNIVERSE, [lo, eth1]))).toBe(
      "203.0.113.1",
    );
  });
});

describe("MASQUERADE", () => {
  const eth1 = iface("eth1", "203.0.113.1/24", "198.51.100.1/24");
  const masq = (r: Router, out: NatIface, nexthop: string, hostIfaces: NatIface[] = []) => ({
    src: (_p: unknown, ct: Parameters<typeof nfNatMasqueradeIpv4>[1]) =>
      nfNatMasqueradeIpv4(r.nat, ct, nfNatRange(), out, ip(nexthop), 1, hostIfaces),
    out: out.name,
  });

  it("SNATs to the output device's address in the next hop's subnet", () => {
    const r = new Router();
    const h = r.send(udp("10.0.0.2:5000", "192.0.2.80:53"), 1, masq(r, eth1, "198.51.100.254"));
    expect(h.verdict).toBe(NF_ACCEPT);
    expect(fmtPkt(h.pkt)).toBe("198.51.100.1:5000 -> 192.0.2.80:53");
  });

  it('drops with "<dev> ate my IP address" when no address can be found', () => {
    const r = new Router();
    const h = r.send(udp("10.0.0.2:5000", "192.0.2.80:53"), 1, masq(r, iface("ppp0"), "192.0.2.1"));
    expect(h.verdict).toBe(NF_DROP);
    expect(r.logs).toEqual(["ppp0 ate my IP address"]);
    expect(r.ct.count, "the dropped packet's entry is not confirmed").toBe(0);
  });

  it("uses another device's address when the output device has none (inet_select_addr fallback)", () => {
    const r = new Router();
    const h = r.send(
      udp("10.0.0.2:5000", "192.0.2.80:53"),
      1,
      masq(r, iface("ppp0"), "192.0.2.1", [iface("lo", "127.0.0.1/8"), eth1]),
    );
    expect(h.verdict).toBe(NF_ACCEPT);
    expect(formatIpv4(h.pkt.ip.src)).toBe("203.0.113.1");
  });

  it("keeps --to-ports, and a later packet leaving by another interface kills the entry (nf_nat_oif_changed)", () => {
    const r = new Router();
    const range = natRangeFromOptions({ ports: { min: 30000, max: 30000 } });
    const src = (_p: unknown, ct: Parameters<typeof nfNatMasqueradeIpv4>[1]) =>
      nfNatMasqueradeIpv4(r.nat, ct, range, eth1, ip("203.0.113.254"), 1);
    const h = r.send(udp("10.0.0.2:5000", "192.0.2.80:53"), 1, { src, out: "eth1" });
    expect(fmtPkt(h.pkt)).toBe("203.0.113.1:30000 -> 192.0.2.80:53");
    const same = r.send(udp("10.0.0.2:5000", "192.0.2.80:53"), 2, { out: "eth1" });
    expect(same.verdict, "same interface").toBe(NF_ACCEPT);
    const moved = r.send(udp("10.0.0.2:5000", "192.0.2.80:53"), 3, { out: "eth2" });
    expect(moved.verdict, "other interface").toBe(NF_DROP);
    expect(r.ct.count, "entry killed").toBe(0);
  });

  it("leaves 0.0.0.0 sources alone", () => {
    const r = new Router();
    const h = r.send(udp("0.0.0.0:68", "255.255.255.255:67"), 1, masq(r, eth1, "203.0.113.254"));
    expect(formatIpv4(h.pkt.ip.src)).toBe("0.0.0.0");
  });
});

describe("REDIRECT", () => {
  it("PRE_ROUTING: to the incoming device's first address, with --to-ports", () => {
    const r = new Router();
    const range = natRangeFromOptions({ ports: { min: 3128, max: 3128 } });
    const eth0 = iface("eth0", "198.51.100.1/24", "198.51.100.9/24");
    const dst = (_p: unknown, ct: Parameters<typeof nfNatRedirectIpv4>[1]) =>
      nfNatRedirectIpv4(r.nat, ct, range, NF_INET_PRE_ROUTING, eth0, 1);
    const h = r.send(tcp("198.51.100.2:40000", "192.0.2.80:80", "S", 1, 0), 1, { dst });
    expect(fmtPkt(h.pkt)).toBe("198.51.100.2:40000 -> 198.51.100.1:3128");
    const back = r.send(tcp("198.51.100.1:3128", "198.51.100.2:40000", "SA", 7, 2), 1.1);
    expect(fmtPkt(back.pkt), "replies come from the original destination").toBe(
      "192.0.2.80:80 -> 198.51.100.2:40000",
    );
  });
  it("LOCAL_OUT: to 127.0.0.1; a device without addresses: NF_DROP", () => {
    const r = new Router();
    const dst = (_p: unknown, ct: Parameters<typeof nfNatRedirectIpv4>[1]) =>
      nfNatRedirectIpv4(r.nat, ct, nfNatRange(), NF_INET_LOCAL_OUT, undefined, 1);
    const h = r.send(tcp("198.51.100.1:40000", "192.0.2.80:80", "S", 1, 0), 1, { dst, local: true });
    expect(fmtPkt(h.pkt)).toBe("198.51.100.1:40000 -> 127.0.0.1:80");
    const r2 = new Router();
    const none = (_p: unknown, ct: Parameters<typeof nfNatRedirectIpv4>[1]) =>
      nfNatRedirectIpv4(r2.nat, ct, nfNatRange(), NF_INET_PRE_ROUTING, iface("eth9"), 1);
    expect(r2.send(tcp("198.51.100.2:1", "192.0.2.80:80", "S", 1, 0), 1, { dst: none }).verdict).toBe(
      NF_DROP,
    );
  });
});

describe("NETMAP", () => {
  it("maps the prefix and keeps the host part: DST at PRE_ROUTING, SRC at POST_ROUTING", () => {
    const r = new Router();
    const to = netmapRange(ip("192.168.5.0"), 0xffffff00);
    const dst = (p: Parameters<typeof netmapTg4>[4], ct: Parameters<typeof netmapTg4>[1]) =>
      netmapTg4(r.nat, ct, to, NF_INET_PRE_ROUTING, p, 1);
    const h = r.send(udp("198.51.100.2:5000", "10.0.0.7:53"), 1, { dst });
    expect(fmtPkt(h.pkt)).toBe("198.51.100.2:5000 -> 192.168.5.7:53");
    const src = (p: Parameters<typeof netmapTg4>[4], ct: Parameters<typeof netmapTg4>[1]) =>
      netmapTg4(r.nat, ct, netmapRange(ip("203.0.113.0"), 0xffffff00), 4, p, 1);
    const o = r.send(udp("10.1.2.33:5000", "192.0.2.80:53"), 2, { src });
    expect(fmtPkt(o.pkt)).toBe("203.0.113.33:5000 -> 192.0.2.80:53");
  });
});
