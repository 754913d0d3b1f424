import { describe, expect, it } from "vitest";
import type { MatchDescriptor } from "../../src/netfilter/registry";
import type { Skb, XtActionParam } from "../../src/netfilter/skb";
import { ALL_DESCRIPTORS, defaultRegistry } from "../../src/netfilter/xt/index";
import { parseIpsetSave } from "../../src/ipset/parse_save";
import {
  IPS_SRC_NAT,
  IPS_ASSURED,
  IP_CT_ESTABLISHED_REPLY,
  IP_CT_UNTRACKED,
} from "../../src/conntrack/types";
import { RECENT_TABLES } from "../../src/netfilter/xt/xt_recent";
import { user2credits } from "../../src/netfilter/xt/xt_limit";
import { FakeHost, conntrackFor, icmp, ip, packet, par, parseOpts, skbOf, tcp, udp } from "./xt_helpers";

/** Evaluates `-m NAME <text>` on skb with the descriptor's own parser and match function. */
function m(
  name: string,
  text: string,
  skb: Skb,
  p: XtActionParam = par(new FakeHost()),
  proto?: number,
): boolean {
  const d = defaultRegistry.match(name) as MatchDescriptor;
  if (!d.match) throw new Error(`${name} has no match function`);
  return d.match(parseOpts(d, text, proto), skb, p);
}

/** got/want check with a readable failure. */
function want(
  name: string,
  text: string,
  skb: Skb,
  expected: boolean,
  p?: XtActionParam,
  proto?: number,
): void {
  const got = m(name, text, skb, p, proto);
  expect(got, `-m ${name} ${text}: got ${got}, want ${expected}`).toBe(expected);
}

const SYN = packet("198.51.100.2", "203.0.113.2", tcp(40000, 80, 0x02, [{ kind: "mss", value: 1460 }]));
const ACK = packet("198.51.100.2", "203.0.113.2", tcp(40000, 80, 0x10));
const DNS = packet("198.51.100.2", "203.0.113.2", udp(5000, 53));
const PING = packet("198.51.100.2", "203.0.113.2", icmp(8, 0));

describe("registry", () => {
  it("every match descriptor has a per-packet match function", () => {
    const missing = ALL_DESCRIPTORS.filter((d) => d.kind === "match" && !("match" in d && d.match)).map(
      (d) => d.name,
    );
    expect(missing).toEqual([]);
  });
});

describe("tcp / udp (tcp_mt, udp_mt)", () => {
  it("ports and ranges, with inversion", () => {
    want("tcp", "--dport 80", skbOf(SYN), true);
    want("tcp", "--dport 81:90", skbOf(SYN), false);
    want("tcp", "! --sport 1:1024", skbOf(SYN), true);
    want("udp", "--dport 53", skbOf(DNS), true);
    want("udp", "--sport 53", skbOf(DNS), false);
  });
  it("--syn and --tcp-flags", () => {
    want("tcp", "--syn", skbOf(SYN), true);
    want("tcp", "--syn", skbOf(ACK), false);
    want("tcp", "! --syn", skbOf(ACK), true);
    want("tcp", "--tcp-flags ALL ACK", skbOf(ACK), true);
    want("tcp", "--tcp-flags SYN,ACK SYN,ACK", skbOf(SYN), false);
  });
  it("--tcp-option", () => {
    want("tcp", "--tcp-option 2", skbOf(SYN), true);
    want("tcp", "--tcp-option 8", skbOf(SYN), false);
    want("tcp", "! --tcp-option 8", skbOf(SYN), true);
  });
  it("a non-first fragment never matches; offset 1 hotdrops", () => {
    const frag = { ...SYN, ip: { ...SYN.ip, fragOffset: 1 }, l4: { kind: "other" as const } };
    const p = par(new FakeHost());
    expect(m("tcp", "! --dport 1", skbOf(frag), p)).toBe(false);
    expect(p.hotdrop, "hotdrop: got false, want true").toBe(true);
    const p2 = par(new FakeHost());
    expect(m("tcp", "--dport 80", skbOf({ ...frag, ip: { ...frag.ip, fragOffset: 2 } }), p2)).toBe(false);
    expect(p2.hotdrop).toBe(false);
  });
});

describe("icmp (icmp_match)", () => {
  it("type, type/code, names and any", () => {
    want("icmp", "--icmp-type echo-request", skbOf(PING), true);
    want("icmp", "--icmp-type 0", skbOf(PING), false);
    want("icmp", "--icmp-type any", skbOf(PING), true);
    want("icmp", "! --icmp-type echo-request", skbOf(PING), false);
    const unreach = packet("1.1.1.1", "2.2.2.2", icmp(3, 3));
    want("icmp", "--icmp-type port-unreachable", skbOf(unreach), true);
    want("icmp", "--icmp-type host-unreachable", skbOf(unreach), false);
  });
});

describe("multiport (ports_match_v1)", () => {
  it("dports, sports and ports with ranges", () => {
    want("multiport", "--dports 22,80:90", skbOf(SYN), true, undefined, 6);
    want("multiport", "--dports 22,443", skbOf(SYN), false, undefined, 6);
    want("multiport", "--ports 40000", skbOf(SYN), true, undefined, 6);
    want("multiport", "! --sports 40000", skbOf(SYN), false, undefined, 6);
  });
});

describe("conntrack / state (conntrack_mt, state_mt)", () => {
  const { ct, ctinfo } = conntrackFor(SYN);
  const tracked = skbOf(SYN, { ct, ctinfo });
  it("NEW ORIGINAL for the first packet; INVALID and UNTRACKED without a conntrack", () => {
    want("conntrack", "--ctstate NEW --ctdir ORIGINAL", tracked, true);
    want("conntrack", "--ctstate NEW --ctdir REPLY", tracked, false);
    want("conntrack", "--ctstate ESTABLISHED", tracked, false);
    want("conntrack", "--ctstate INVALID", skbOf(SYN), true);
    want("conntrack", "--ctstate UNTRACKED", skbOf(SYN, { untracked: true, ctinfo: IP_CT_UNTRACKED }), true);
    want("state", "--state NEW,ESTABLISHED", tracked, true);
    want("state", "! --state NEW", tracked, false);
    want("state", "--state INVALID", skbOf(SYN), true);
  });
  it("without a conntrack only --ctstate can match", () => {
    want("conntrack", "--ctproto tcp", skbOf(SYN), false);
    want("conntrack", "! --ctproto udp", skbOf(SYN), false);
  });
  it("tuples, protocol, ports, status, expiry and the SNAT pseudo-state", () => {
    want("conntrack", "--ctorigsrc 198.51.100.0/24 --ctorigdstport 80 --ctproto tcp", tracked, true);
    want("conntrack", "--ctreplsrc 203.0.113.2 --ctrepldstport 40000", tracked, true);
    want("conntrack", "--ctorigdst 192.0.2.0/24", tracked, false);
    want("conntrack", "--ctstatus CONFIRMED", tracked, true);
    want("conntrack", "--ctstatus ASSURED", tracked, false);
    want("conntrack", "--ctstatus NONE", tracked, false);
    const left = Math.floor(ct.timeout);
    want("conntrack", `--ctexpire ${left - 1}:${left}`, tracked, true, par(new FakeHost(), { now: 0 }));
    want("conntrack", `--ctexpire ${left - 1}:${left}`, tracked, false, par(new FakeHost(), { now: 10 }));
    want("conntrack", "--ctstate SNAT", tracked, false);
    const snat = conntrackFor(SYN);
    snat.ct.status |= IPS_SRC_NAT | IPS_ASSURED;
    want("conntrack", "--ctstate SNAT", skbOf(SYN, { ct: snat.ct, ctinfo: snat.ctinfo }), true);
    want("conntrack", "--ctdir REPLY", skbOf(SYN, { ct: snat.ct, ctinfo: IP_CT_ESTABLISHED_REPLY }), true);
  });
});

describe("mark, connmark, comment, length, ttl, iprange, mac, pkttype", () => {
  it("mark and connmark with masks", () => {
    want("mark", "--mark 0x1/0xf", skbOf(SYN, { mark: 0x31 }), true);
    want("mark", "--mark 0x1", skbOf(SYN, { mark: 0x31 }), false);
    const { ct, ctinfo } = conntrackFor(SYN);
    ct.mark = 0x200;
    want("connmark", "--mark 0x200/0xf00", skbOf(SYN, { ct, ctinfo }), true);
    want("connmark", "! --mark 0x200", skbOf(SYN, { ct, ctinfo }), false);
    want("connmark", "! --mark 0x200", skbOf(SYN), false); // no conntrack: false even inverted
  });
  it("comment always matches", () => want("comment", '--comment "x"', skbOf(SYN), true));
  it("length and ttl", () => {
    want("length", "--length 40:48", skbOf(SYN), true);
    want("length", "! --length 40:48", skbOf(SYN), false);
    want("ttl", "--ttl-eq 64", skbOf(SYN), true);
    want("ttl", "! --ttl-eq 64", skbOf(SYN), false);
    want("ttl", "--ttl-lt 64", skbOf(SYN), false);
    want("ttl", "--ttl-gt 63", skbOf(SYN), true);
  });
  it("iprange", () => {
    want("iprange", "--src-range 198.51.100.1-198.51.100.9", skbOf(SYN), true);
    want("iprange", "--dst-range 198.51.100.1-198.51.100.9", skbOf(SYN), false);
    want("iprange", "! --dst-range 198.51.100.1-198.51.100.9", skbOf(SYN), true);
  });
  it("mac needs the frame's source MAC", () => {
    const framed = {
      ...SYN,
      link: { dst: "02:00:00:00:00:01", src: "02:00:00:00:00:02", ethertype: 0x800, vlans: [] },
    };
    want("mac", "--mac-source 02:00:00:00:00:02", skbOf(framed, { inIface: "eth0" }), true);
    want("mac", "--mac-source 02:00:00:00:00:03", skbOf(framed, { inIface: "eth0" }), false);
    want("mac", "! --mac-source 02:00:00:00:00:03", skbOf(SYN, { local: true }), false);
  });
  it("pkttype", () => {
    want("pkttype", "--pkt-type unicast", skbOf(SYN), true);
    want("pkttype", "--pkt-type broadcast", skbOf(SYN, { pktType: "broadcast" }), true);
    want("pkttype", "--pkt-type multicast", skbOf(SYN), false);
  });
});

describe("addrtype (inet_dev_addr_type via the host)", () => {
  const host = new FakeHost();
  host.local.add(ip("203.0.113.2"));
  it("dst LOCAL, src not LOCAL", () => {
    want("addrtype", "--dst-type LOCAL", skbOf(SYN), true, par(host));
    want("addrtype", "--src-type LOCAL", skbOf(SYN), false, par(host));
    want("addrtype", "! --src-type LOCAL", skbOf(SYN), true, par(host));
    want("addrtype", "--dst-type BROADCAST,MULTICAST", skbOf(SYN), false, par(host));
  });
});

describe("limit (xt_limit credits)", () => {
  it("lets the burst through, then one packet per period", () => {
    const d = defaultRegistry.match("limit") as MatchDescriptor;
    const o = parseOpts(d, "--limit 1/sec --limit-burst 3");
    const state = new Map<object, unknown>();
    const at = (t: number): boolean => d.match!(o, skbOf(SYN), par(undefined, { now: t, ruleState: state }));
    const got = [at(0), at(0), at(0), at(0), at(0.5), at(1.0), at(1.1)];
    expect(got).toEqual([true, true, true, false, false, true, false]);
    expect(user2credits(10000)).toBe(32000); // 1/sec: cost = HZ * CREDITS_PER_JIFFY
  });
});

describe("statistic", () => {
  it("nth: --every 3 --packet 0 matches packets 1, 4, 7", () => {
    const d = defaultRegistry.match("statistic") as MatchDescriptor;
    const o = parseOpts(d, "--mode nth --every 3 --packet 0");
    const state = new Map<object, unknown>();
    const got = Array.from({ length: 7 }, () =>
      d.match!(o, skbOf(SYN), par(undefined, { ruleState: state })),
    );
    expect(got).toEqual([true, false, false, true, false, false, true]);
  });
  it("random: (u32 & 0x7fffffff) < probability * 2^31", () => {
    const host = new FakeHost();
    host.randoms = [0x3fffffff, 0x40000001, 0xbfffffff];
    const p = par(host);
    const got = [0, 1, 2].map(() => m("statistic", "--mode random --probability 0.5", skbOf(SYN), p));
    expect(got).toEqual([true, false, true]);
  });
});

describe("set (ipset membership)", () => {
  const host = new FakeHost();
  const { sets } = parseIpsetSave(
    "create web hash:ip,port\nadd web 203.0.113.2,tcp:80\ncreate nets hash:net\nadd nets 198.51.100.0/24\nadd nets 198.51.100.0/30 nomatch\n",
  );
  for (const [k, v] of sets) host.sets.set(k, v);
  it("src/dst flags pick the sides", () => {
    want("set", "--match-set web dst,dst", skbOf(SYN), true, par(host));
    want("set", "--match-set web dst,src", skbOf(SYN), false, par(host));
    want("set", "! --match-set web dst,dst", skbOf(SYN), false, par(host));
  });
  it("nomatch elements and --return-nomatch", () => {
    want("set", "--match-set nets src", skbOf(SYN), false, par(host)); // .2 is inside the nomatch /30
    want("set", "--match-set nets src --return-nomatch", skbOf(SYN), true, par(host));
    const other = packet("198.51.100.77", "203.0.113.2", tcp(1, 80));
    want("set", "--match-set nets src", skbOf(other), true, par(host));
  });
});

describe("socket (nf_sk_lookup_slow_v4)", () => {
  const host = new FakeHost();
  host.sockets.push({
    kind: "listener",
    q: { daddr: 0, dport: 80 },
    sk: { protocol: "tcp", address: 0, port: 80, transparent: false, listening: true },
  });
  host.sockets.push({
    kind: "established",
    q: { saddr: ip("198.51.100.2"), sport: 40000, daddr: ip("203.0.113.2"), dport: 80 },
    sk: {
      protocol: "tcp",
      address: ip("203.0.113.2"),
      port: 80,
      transparent: true,
      listening: false,
      mark: 7,
    },
  });
  it("an established socket matches, also --transparent, and --restore-skmark copies its mark", () => {
    const skb = skbOf(ACK);
    want("socket", "--transparent --restore-skmark", skb, true, par(host, { hook: "PREROUTING" }));
    expect(skb.mark, `mark: got ${skb.mark}, want 7`).toBe(7);
  });
  it("a wildcard listener is ignored unless --nowildcard", () => {
    const other = packet("198.51.100.9", "203.0.113.2", tcp(1234, 80));
    want("socket", "", skbOf(other), false, par(host));
    want("socket", "--nowildcard", skbOf(other), true, par(host));
    want("socket", "--nowildcard --transparent", skbOf(other), false, par(host));
  });
});

describe("owner, physdev, nfacct", () => {
  it("owner: uid/gid of a local socket; no socket matches only fully inverted rules", () => {
    const local = skbOf(SYN, { local: true, owner: { uid: 1000, gid: 100 } });
    want("owner", "--uid-owner 1000", local, true);
    want("owner", "--uid-owner 0-999", local, false);
    want("owner", "! --uid-owner 0", local, true);
    want("owner", "--uid-owner 1000", skbOf(SYN), false);
    want("owner", "! --uid-owner 1000", skbOf(SYN), true);
    want("owner", "! --socket-exists", local, false);
  });
  it("physdev never sees a bridge on a routed host", () => {
    want("physdev", "--physdev-is-bridged", skbOf(SYN), false);
    want("physdev", "! --physdev-is-bridged", skbOf(SYN), true);
  });
  it("nfacct counts and matches", () => {
    const host = new FakeHost();
    want("nfacct", "--nfacct-name web", skbOf(SYN), true, par(host));
    expect(host.acct.get("web")).toBe(SYN.ip.totalLength);
  });
});

describe("recent (shared lists by name)", () => {
  it("--set then --rcheck --seconds --hitcount, --update, --remove", () => {
    const state = new Map<object, unknown>();
    const at = (text: string, t: number, skb = skbOf(SYN)): boolean =>
      m("recent", text, skb, par(undefined, { now: t, ruleState: state }));
    expect(at("--rcheck --name ssh", 0)).toBe(false);
    expect(at("--set --name ssh", 0)).toBe(true);
    expect(at("--set --name ssh", 1)).toBe(true);
    expect(at("--rcheck --seconds 60 --hitcount 2 --name ssh", 2)).toBe(true);
    expect(at("--rcheck --seconds 60 --hitcount 3 --name ssh", 2)).toBe(false);
    expect(at("--rcheck --seconds 1 --name ssh", 5)).toBe(false);
    expect(at("--rcheck --name other", 5)).toBe(false);
    expect(at("--update --seconds 10 --name ssh", 5)).toBe(true);
    expect(at("--rcheck --seconds 1 --name ssh", 5.5)).toBe(true);
    expect(at("--rcheck --rdest --name ssh", 6)).toBe(false);
    expect(at("--remove --name ssh", 6)).toBe(true);
    expect(at("--rcheck --name ssh", 6)).toBe(false);
    expect(state.has(RECENT_TABLES)).toBe(true);
  });
  it("--rttl needs the same TTL (TTL + 1 on a forwarded packet); --reap drops the oldest stale entry", () => {
    const state = new Map<object, unknown>();
    const at = (text: string, t: number, skb: Skb, o: { outIface?: string } = {}): boolean =>
      m("recent", text, skb, par(undefined, { now: t, ruleState: state, ...o }));
    const other = skbOf(packet("192.0.2.7", "203.0.113.2", tcp(1, 80)));
    expect(at("--set --name r", 0, other)).toBe(true);
    expect(at("--set --name r", 1, skbOf(SYN))).toBe(true); // stored TTL 64
    expect(at("--rcheck --rttl --name r", 2, skbOf(SYN), { outIface: "eth1" })).toBe(false); // seen as 65
    expect(at("--rcheck --rttl --name r", 2, skbOf(SYN))).toBe(true);
    expect(at("--rcheck --seconds 5 --reap --name r", 10, skbOf(SYN))).toBe(false);
    expect(at("--rcheck --name r", 10, other)).toBe(false); // 192.0.2.7 was reaped
    expect(at("--rcheck --name r", 10, skbOf(SYN))).toBe(true);
  });
});
