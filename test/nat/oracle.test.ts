// MASQUERADE against Linux 6.18.44: the recorded scenarios 01, 08, 10 and 11 (test/oracle/recordings) replayed
// through Conntrack + NAT on the scenarios' router (eth0 198.51.100.1/24, eth1 203.0.113.1/24, default via
// 203.0.113.254, `-A POSTROUTING -o eth1 -j MASQUERADE`). Per packet: the egress addresses/ports and the
// `conntrack -L -o extended` lines (timer masked) must equal the recording.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { formatConntrackEntry } from "../../src/conntrack/show";
import { NF_ACCEPT, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING } from "../../src/conntrack/types";
import { inPrefix, parseIpv4Prefix } from "../../src/wire/addr";
import { parseTcpdumpText } from "../../src/wire/text";
import type { Packet } from "../../src/wire/packet";
import { type NatHookState, NatState, nfNatIpv4Fn } from "../../src/nat/nf_nat_core";
import type { NatIface } from "../../src/nat/nf_nat_masquerade";
import { nfNatMasqueradeIpv4 } from "../../src/nat/nf_nat_masquerade";
import { nfNatRange } from "../../src/nat/types";
import { Conntrack } from "../../src/conntrack/core";
import { Prng } from "../../src/util/prng";
import { fmtPkt } from "./router";

interface Recording {
  packets: {
    input: { text: string; iface: string };
    egress: { iface: string; text: string }[];
    conntrack: string[];
  }[];
}

const eth0: NatIface = { name: "eth0", addresses: [parseIpv4Prefix("198.51.100.1/24")!] };
const eth1: NatIface = { name: "eth1", addresses: [parseIpv4Prefix("203.0.113.1/24")!] };
const GW = parseIpv4Prefix("203.0.113.254")!.addr;

/** Route lookup of the scenario host: connected /24s, else default via 203.0.113.254 dev eth1. */
function route(dst: number): { out: NatIface; nexthop: number } {
  for (const i of [eth0, eth1]) if (inPrefix(dst, i.addresses[0])) return { out: i, nexthop: dst };
  return { out: eth1, nexthop: GW };
}

/** "a.b.c.d.port > e.f.g.h.port" pairs of an egress line, outer first (then the quoted packet of an ICMP error). */
function egressFlows(text: string): string[] {
  const re = /\) (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))? > (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))?:/g;
  return [...text.matchAll(re)].map(
    (m) => `${m[1]}${m[2] ? `:${m[2]}` : ""} -> ${m[3]}${m[4] ? `:${m[4]}` : ""}`,
  );
}

function flowsOf(p: Packet): string[] {
  const out = [fmtPkt(p)];
  const l4 = p.l4;
  if (l4.kind === "icmp" && l4.quote) {
    const q = l4.quote;
    const ports = q.ip.protocol === 6 || q.ip.protocol === 17;
    const a = (x: number) => `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
    out.push(
      `${a(q.ip.src)}${ports ? `:${(q.l4[0] << 8) | q.l4[1]}` : ""} -> ${a(q.ip.dst)}${ports ? `:${(q.l4[2] << 8) | q.l4[3]}` : ""}`,
    );
  }
  return out;
}

const maskTimer = (line: string) => line.replace(/^(ipv4\s+2\s+\S+\s+\d+\s+)\d+/, "$1T");

describe.each([
  "01-tcp-handshake-teardown",
  "08-udp-masquerade",
  "10-icmp-echo-masquerade",
  "11-icmp-error-related",
])("recording %s", (name) => {
  it("egress packets and conntrack entries match Linux 6.18.44", () => {
    const rec: Recording = JSON.parse(
      readFileSync(new URL(`../oracle/recordings/${name}.json`, import.meta.url), "utf8"),
    );
    const ct = new Conntrack({ kernel: "6.18" });
    const nat = new NatState({ conntrack: ct, prng: new Prng(1) });
    rec.packets.forEach((rp, i) => {
      const parsed = parseTcpdumpText(rp.input.text);
      expect(parsed.errors, `packet ${i}: parse errors`).toEqual([]);
      const pkt = parsed.packets[0];
      const now = 100 + i * 0.15;
      const r = ct.in(pkt, NF_INET_PRE_ROUTING, now);
      expect(r.verdict).toBe(NF_ACCEPT);
      const pre = nfNatIpv4Fn(nat, r.ct, r.ctinfo, pkt, { hook: NF_INET_PRE_ROUTING }, now);
      expect(pre.verdict, `packet ${i}: PRE_ROUTING`).toBe(NF_ACCEPT);
      const { out, nexthop } = route(pre.pkt.ip.dst);
      const post = nfNatIpv4Fn(
        nat,
        r.ct,
        r.ctinfo,
        pre.pkt,
        {
          hook: NF_INET_POST_ROUTING,
          out: out.name,
          runChains: (_p, c) =>
            out === eth1 ? nfNatMasqueradeIpv4(nat, c, nfNatRange(), eth1, nexthop, now) : NF_ACCEPT,
        },
        now,
      );
      expect(post.verdict, `packet ${i}: POST_ROUTING`).toBe(NF_ACCEPT);
      if (r.ct) expect(ct.confirm(r.ct, now, r.ctinfo).verdict).toBe(NF_ACCEPT);

      expect(rp.egress.length, `packet ${i}: one egress frame recorded`).toBe(1);
      expect(out.name, `packet ${i}: egress interface`).toBe(rp.egress[0].iface);
      expect(flowsOf(post.pkt), `packet ${i}: egress flows`).toEqual(egressFlows(rp.egress[0].text));
      const got = ct.list(now).map((c) => maskTimer(formatConntrackEntry(c, now, { extended: true })));
      expect(got, `packet ${i}: conntrack -L`).toEqual(rp.conntrack.map(maskTimer));
    });
  });
});

describe("nf_nat_ipv4_fn with a result object in its state", () => {
  it("writes its result there (the same object every call) and decides as without it", () => {
    const rec: Recording = JSON.parse(
      readFileSync(new URL(`../oracle/recordings/08-udp-masquerade.json`, import.meta.url), "utf8"),
    );
    const run = (withResult: boolean) => {
      const ct = new Conntrack({ kernel: "6.18" });
      const nat = new NatState({ conntrack: ct, prng: new Prng(1) });
      const result = { verdict: -1, pkt: undefined as never, reason: undefined, rewritten: undefined };
      return rec.packets.map((rp, i) => {
        const pkt = parseTcpdumpText(rp.input.text).packets[0];
        const now = 100 + i * 0.15;
        const r = ct.in(pkt, NF_INET_PRE_ROUTING, now);
        const state: NatHookState = {
          hook: NF_INET_POST_ROUTING,
          out: eth1.name,
          runChains: () => nfNatMasqueradeIpv4(nat, r.ct!, nfNatRange(), eth1, 0, now),
          ...(withResult ? { result } : {}),
        };
        const post = nfNatIpv4Fn(nat, r.ct, r.ctinfo, pkt, state, now);
        if (withResult) expect(post, `packet ${i}: the state's result object`).toBe(result);
        if (r.ct) ct.confirm(r.ct, now, r.ctinfo);
        return { verdict: post.verdict, flows: flowsOf(post.pkt) };
      });
    };
    expect(run(true)).toEqual(run(false));
  });
});
