// A minimal forwarding router for NAT packet dialogues: conntrack at PRE_ROUTING (or LOCAL_OUT), the NAT DST
// hook, the NAT SRC hook at POST_ROUTING, then confirm — the order of the IPv4 hooks (KERNEL_FACTS §3.1).
import { expect } from "vitest";
import type { ConntrackOptions, NfConn } from "../../src/conntrack/core";
import { Conntrack } from "../../src/conntrack/core";
import type { CtInfo, NfHook, Tuple } from "../../src/conntrack/types";
import {
  NF_ACCEPT,
  NF_INET_LOCAL_OUT,
  NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING,
} from "../../src/conntrack/types";
import { formatIpv4 } from "../../src/wire/addr";
import type { Packet } from "../../src/wire/packet";
import type { NatChainRunner } from "../../src/nat/nf_nat_core";
import { NatState, nfNatIpv4Fn, nfNatSetupInfo } from "../../src/nat/nf_nat_core";
import type { NfNatRange2 } from "../../src/nat/types";
import { Prng } from "../../src/util/prng";

export interface Hop {
  readonly verdict: number;
  readonly pkt: Packet;
  readonly ct?: NfConn;
  readonly ctinfo?: CtInfo;
  readonly reason?: string;
}

export interface SendOpts {
  /** nat PREROUTING/OUTPUT chains (DST hook). */
  readonly dst?: NatChainRunner;
  /** nat POSTROUTING chains (SRC hook). */
  readonly src?: NatChainRunner;
  readonly out?: string;
  /** Locally generated: conntrack and the DST hook run at LOCAL_OUT. */
  readonly local?: boolean;
  /** Do not confirm (the packet is held, as before a later hook). */
  readonly noConfirm?: boolean;
}

export class Router {
  readonly ct: Conntrack;
  readonly nat: NatState;
  readonly logs: string[] = [];
  constructor(opts: { kernel?: string; seed?: number | string; ct?: ConntrackOptions } = {}) {
    this.ct = new Conntrack({ kernel: opts.kernel, ...opts.ct });
    this.nat = new NatState({
      conntrack: this.ct,
      prng: new Prng(opts.seed ?? 1),
      log: (m) => this.logs.push(m),
    });
  }

  send(pkt: Packet, now: number, o: SendOpts = {}): Hop {
    const first: NfHook = o.local ? NF_INET_LOCAL_OUT : NF_INET_PRE_ROUTING;
    const r = this.ct.in(pkt, first, now);
    const ct = r.ct;
    const ctinfo = r.ctinfo;
    if (r.verdict !== NF_ACCEPT) return { verdict: r.verdict, pkt, ct, ctinfo, reason: r.reason?.text };
    const d = nfNatIpv4Fn(this.nat, ct, ctinfo, pkt, { hook: first, runChains: o.dst }, now);
    if (d.verdict !== NF_ACCEPT) {
      if (ct) this.ct.discard(ct);
      return { verdict: d.verdict, pkt: d.pkt, ct, ctinfo, reason: d.reason };
    }
    const s = nfNatIpv4Fn(
      this.nat,
      ct,
      ctinfo,
      d.pkt,
      { hook: NF_INET_POST_ROUTING, runChains: o.src, out: o.out },
      now,
    );
    if (s.verdict !== NF_ACCEPT) {
      if (ct) this.ct.discard(ct);
      return { verdict: s.verdict, pkt: s.pkt, ct, ctinfo, reason: s.reason };
    }
    if (ct && !o.noConfirm) {
      const c = this.ct.confirm(ct, now, ctinfo);
      if (c.verdict !== NF_ACCEPT) {
        this.ct.discard(ct); // the skb is freed with its unconfirmed entry (and its bysource link)
        return { verdict: c.verdict, pkt: s.pkt, ct, ctinfo, reason: c.reason?.text };
      }
      return { verdict: NF_ACCEPT, pkt: s.pkt, ct: c.ct, ctinfo };
    }
    return { verdict: NF_ACCEPT, pkt: s.pkt, ct, ctinfo };
  }
}

/** A nat chain with one rule: `range` bound with nf_nat_setup_info for every packet that reaches it. */
export function bind(
  router: Router,
  range: NfNatRange2,
  manip: "SRC" | "DST",
  now: () => number,
): NatChainRunner {
  return (_pkt, ct) => nfNatSetupInfo(router.nat, ct, range, manip, now());
}

export function fmtTuple(t: Tuple): string {
  return `${formatIpv4(t.src)}:${t.srcU} -> ${formatIpv4(t.dst)}:${t.dstU}/${t.protonum}`;
}

/** "a.b.c.d:port -> e.f.g.h:port" of a packet. */
export function fmtPkt(p: Packet): string {
  const l4 = p.l4;
  const sp = l4.kind === "tcp" || l4.kind === "udp" ? `:${l4.srcPort}` : "";
  const dp = l4.kind === "tcp" || l4.kind === "udp" ? `:${l4.dstPort}` : "";
  return `${formatIpv4(p.ip.src)}${sp} -> ${formatIpv4(p.ip.dst)}${dp}`;
}

export function expectAccepted(h: Hop, what: string): void {
  expect(h.verdict, `${what}: verdict got ${h.verdict} (${h.reason ?? ""}), want NF_ACCEPT`).toBe(NF_ACCEPT);
}
