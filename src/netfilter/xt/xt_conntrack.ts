/**
 * conntrack match: net/netfilter/xt_conntrack.c (`conntrack_mt`, `conntrack_mt_check` -> nf_ct_netns_get),
 * kernel 6.17; userspace extensions/libxt_conntrack.c (revision 3: `conntrack3_mt_parse`, `conntrack_dump`
 * with prefix "--"), iptables 1.8.x.
 *
 * Left out on purpose: IPv6 addresses in --ctorigsrc etc.; `--ctstatus` bits beyond the four iptables names.
 *
 * Per packet: `conntrack_mt` with `ct_proto_port_check_v3`; --ctexpire counts whole seconds left at the\npacket's time.
 */

import type { Diagnostic } from "../../errors";
import type { MatchDescriptor } from "../registry";
import { parseProto } from "../registry";
import {
  bang,
  collect,
  formatAddrMask,
  formatRange,
  parseAddrMask,
  parseColonRange,
  parsePort,
  parseUint,
  words,
} from "./util";
import type { Skb, XtActionParam } from "../skb";
import { ctinfoDir, ctinfoState } from "../../conntrack/core";
import {
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_DST_NAT,
  IPS_EXPECTED,
  IPS_SEEN_REPLY,
  IPS_SRC_NAT,
  IP_CT_DIR_ORIGINAL,
  IP_CT_UNTRACKED,
} from "../../conntrack/types";
import type { CtInfo } from "../../conntrack/types";

/** --ctstate words in print order (print_state of libxt_conntrack.c). */
export const CTSTATE_NAMES = [
  "INVALID",
  "NEW",
  "RELATED",
  "ESTABLISHED",
  "UNTRACKED",
  "SNAT",
  "DNAT",
] as const;
export type CtStateName = (typeof CTSTATE_NAMES)[number];

/** One bit per --ctstate word (any distinct bits do: only membership is tested). */
const CTSTATE_BIT = Object.fromEntries(CTSTATE_NAMES.map((n, i) => [n, 1 << i])) as Record<
  CtStateName,
  number
>;

/** The CTSTATE_BIT of each ctinfo value (ctinfoState's name), by ctinfo. */
const CTINFO_STATE_BIT: readonly number[] = Array.from(
  { length: IP_CT_UNTRACKED + 1 },
  (_, ctinfo) => CTSTATE_BIT[ctinfoState(ctinfo as CtInfo) as CtStateName],
);

/** --ctstatus words in print order. */
export const CTSTATUS_NAMES = ["EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"] as const;
export type CtStatusName = (typeof CTSTATUS_NAMES)[number];

interface Inv<T> {
  readonly value: T;
  readonly invert: boolean;
}

export interface ConntrackMatchOptions {
  /** The words, and `mask` their CTSTATE_BIT union (the kernel's `state_mask`). */
  readonly ctstate?: Inv<readonly CtStateName[]> & { readonly mask: number };
  readonly ctproto?: Inv<number>;
  readonly ctorigsrc?: Inv<{ addr: number; mask: number }>;
  readonly ctorigdst?: Inv<{ addr: number; mask: number }>;
  readonly ctreplsrc?: Inv<{ addr: number; mask: number }>;
  readonly ctrepldst?: Inv<{ addr: number; mask: number }>;
  readonly ctorigsrcport?: Inv<readonly [number, number]>;
  readonly ctorigdstport?: Inv<readonly [number, number]>;
  readonly ctreplsrcport?: Inv<readonly [number, number]>;
  readonly ctrepldstport?: Inv<readonly [number, number]>;
  /** Empty list = NONE. */
  readonly ctstatus?: Inv<readonly CtStatusName[]>;
  readonly ctexpire?: Inv<readonly [number, number]>;
  readonly ctdir?: "ORIGINAL" | "REPLY";
}

export function parseStateList<T extends string>(text: string, names: readonly T[]): T[] | undefined {
  const out = new Set<T>();
  for (const w of text.split(",")) {
    const up = w.toUpperCase() as T;
    if (!names.includes(up)) return undefined;
    out.add(up);
  }
  return names.filter((n) => out.has(n));
}

const ADDR_KEYS = ["ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst"] as const;
const PORT_KEYS = ["ctorigsrcport", "ctorigdstport", "ctreplsrcport", "ctrepldstport"] as const;

export const conntrackMatch: MatchDescriptor<ConntrackMatchOptions> = {
  kind: "match",
  name: "conntrack",
  match: conntrackMt,
  kernelFile: "net/netfilter/xt_conntrack.c",
  userspaceFile: "extensions/libxt_conntrack.c",
  options: [
    { name: "ctstate", nargs: 1, invert: true },
    { name: "ctproto", nargs: 1, invert: true },
    { name: "ctorigsrc", nargs: 1, invert: true },
    { name: "ctorigdst", nargs: 1, invert: true },
    { name: "ctreplsrc", nargs: 1, invert: true },
    { name: "ctrepldst", nargs: 1, invert: true },
    { name: "ctorigsrcport", nargs: 1, invert: true },
    { name: "ctorigdstport", nargs: 1, invert: true },
    { name: "ctreplsrcport", nargs: 1, invert: true },
    { name: "ctrepldstport", nargs: 1, invert: true },
    { name: "ctstatus", nargs: 1, invert: true },
    { name: "ctexpire", nargs: 1, invert: true },
    { name: "ctdir", nargs: 1 },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    if (m.size === 0) return ctx.fail("conntrack: at least one option is required");
    const out: { -readonly [K in keyof ConntrackMatchOptions]: ConntrackMatchOptions[K] } = {};
    for (const o of m.values()) {
      const a = o.args[0];
      const bad = (): Diagnostic => ctx.fail(`invalid value "${a}" for --${o.name}`, o);
      switch (o.name) {
        case "ctstate": {
          const v = parseStateList(a, CTSTATE_NAMES);
          if (!v) return ctx.fail(`bad ctstate "${a}" (supported: ${CTSTATE_NAMES.join(", ")})`, o);
          let mask = 0;
          for (const n of v) mask |= CTSTATE_BIT[n];
          out.ctstate = { value: v, invert: o.invert, mask };
          break;
        }
        case "ctproto": {
          const p = parseProto(a);
          if (p === undefined) return bad();
          if (p === 0) return ctx.fail("conntrack: --ctproto 0 would never match; leave it out", o);
          out.ctproto = { value: p, invert: o.invert };
          break;
        }
        case "ctstatus": {
          if (a.toUpperCase() === "NONE") out.ctstatus = { value: [], invert: o.invert };
          else {
            const v = parseStateList(a, CTSTATUS_NAMES);
            if (!v) return ctx.fail(`bad ctstatus "${a}" (supported: NONE, ${CTSTATUS_NAMES.join(", ")})`, o);
            out.ctstatus = { value: v, invert: o.invert };
          }
          break;
        }
        case "ctexpire": {
          const r = parseColonRange(a, (s) => parseUint(s), 0xffffffff);
          if (!r || a === "" || a.startsWith(":") || a.endsWith(":")) return bad();
          out.ctexpire = { value: r, invert: o.invert };
          break;
        }
        case "ctdir": {
          const up = a.toUpperCase();
          if (up !== "ORIGINAL" && up !== "REPLY") return ctx.fail(`bad ctdir "${a}" (ORIGINAL or REPLY)`, o);
          out.ctdir = up;
          break;
        }
        default: {
          if ((ADDR_KEYS as readonly string[]).includes(o.name)) {
            const v = parseAddrMask(a);
            if (!v) return bad();
            out[o.name as (typeof ADDR_KEYS)[number]] = {
              value: { addr: v.addr, mask: v.mask },
              invert: o.invert,
            };
          } else {
            const r = parseColonRange(a, parsePort, 0xffff);
            if (!r) return bad();
            out[o.name as (typeof PORT_KEYS)[number]] = { value: r, invert: o.invert };
          }
        }
      }
    }
    return out;
  },
  save(o) {
    const parts: (string | undefined)[] = [];
    if (o.ctstate) parts.push(`${bang(o.ctstate.invert)}--ctstate ${o.ctstate.value.join(",")}`);
    if (o.ctproto) parts.push(`${bang(o.ctproto.invert)}--ctproto ${o.ctproto.value}`);
    for (const k of ADDR_KEYS) {
      const v = o[k];
      if (v) parts.push(`${bang(v.invert)}--${k} ${formatAddrMask(v.value.addr, v.value.mask)}`);
    }
    for (const k of PORT_KEYS) {
      const v = o[k];
      if (v) parts.push(`${bang(v.invert)}--${k} ${formatRange(v.value)}`);
    }
    if (o.ctstatus)
      parts.push(
        `${bang(o.ctstatus.invert)}--ctstatus ${o.ctstatus.value.length ? o.ctstatus.value.join(",") : "NONE"}`,
      );
    if (o.ctexpire) parts.push(`${bang(o.ctexpire.invert)}--ctexpire ${formatRange(o.ctexpire.value)}`);
    if (o.ctdir) parts.push(`--ctdir ${o.ctdir}`);
    return words(...parts);
  },
};

const CTSTATUS_BITS: Readonly<Record<CtStatusName, number>> = {
  EXPECTED: IPS_EXPECTED,
  SEEN_REPLY: IPS_SEEN_REPLY,
  ASSURED: IPS_ASSURED,
  CONFIRMED: IPS_CONFIRMED,
};

function addrHit(v: Inv<{ addr: number; mask: number }> | undefined, addr: number): boolean {
  if (!v) return true;
  return ((addr & v.value.mask) >>> 0 === (v.value.addr & v.value.mask) >>> 0) !== v.invert;
}

function portHit(v: Inv<readonly [number, number]> | undefined, port: number): boolean {
  if (!v) return true;
  return (port >= v.value[0] && port <= v.value[1]) !== v.invert;
}

/**
 * conntrack_mt (revision 3): the state bits (with the SNAT/DNAT pseudo-states from IPS_SRC_NAT/IPS_DST_NAT),
 * then — only with a conntrack — direction, addresses, protocol and ports of the tuples, status and expiry.
 * Without a conntrack the match succeeds only through --ctstate.
 */
export function conntrackMt(o: ConntrackMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const ct = skb.ct;
  if (o.ctstate) {
    // The packet's states as a bit set (XT_CONNTRACK_STATE_BIT and friends); no per-packet allocation.
    let states: number;
    if (ct) {
      states = CTINFO_STATE_BIT[skb.ctinfo ?? 0];
      if (ct.status & IPS_SRC_NAT) states |= CTSTATE_BIT.SNAT;
      if (ct.status & IPS_DST_NAT) states |= CTSTATE_BIT.DNAT;
    } else states = skb.untracked ? CTSTATE_BIT.UNTRACKED : CTSTATE_BIT.INVALID;
    if (((states & o.ctstate.mask) !== 0) === o.ctstate.invert) return false;
  }
  if (!ct) return o.ctstate !== undefined;
  if (o.ctdir) {
    const dir = ctinfoDir(skb.ctinfo ?? 0) === IP_CT_DIR_ORIGINAL ? "ORIGINAL" : "REPLY";
    if (dir !== o.ctdir) return false;
  }
  // The tuples are built only for the options that read them (most rules test --ctstate alone). The checks
  // have no side effects, so their order does not matter.
  if (o.ctorigsrc || o.ctorigdst || o.ctproto || o.ctorigsrcport || o.ctorigdstport) {
    const orig = ct.orig;
    if (!addrHit(o.ctorigsrc, orig.src) || !addrHit(o.ctorigdst, orig.dst)) return false;
    if (o.ctproto && (orig.protonum === o.ctproto.value) === o.ctproto.invert) return false;
    if (!portHit(o.ctorigsrcport, orig.srcU) || !portHit(o.ctorigdstport, orig.dstU)) return false;
  }
  if (o.ctreplsrc || o.ctrepldst || o.ctreplsrcport || o.ctrepldstport) {
    const reply = ct.reply;
    if (!addrHit(o.ctreplsrc, reply.src) || !addrHit(o.ctrepldst, reply.dst)) return false;
    if (!portHit(o.ctreplsrcport, reply.srcU) || !portHit(o.ctrepldstport, reply.dstU)) return false;
  }
  if (o.ctstatus) {
    let mask = 0;
    for (const n of o.ctstatus.value) mask |= CTSTATUS_BITS[n];
    if (((mask & ct.status) !== 0) === o.ctstatus.invert) return false;
  }
  if (o.ctexpire) {
    // nf_ct_expires(ct) / HZ: whole seconds left, never negative. An unconfirmed conntrack (the first packet,
    // before POSTROUTING/INPUT confirms it) holds its timeout relative, not as a jiffies deadline, so
    // `ct->timeout - nfct_time_stamp` is negative (once jiffies passed the timeout, i.e. any uptime beyond a few
    // minutes and below ~24 days at HZ=1000) and the kernel reads 0 (oracle scenario 43-match-conntrack).
    const left = ct.status & IPS_CONFIRMED ? Math.max(0, Math.floor(ct.timeout - par.now)) : 0;
    if ((left >= o.ctexpire.value[0] && left <= o.ctexpire.value[1]) === o.ctexpire.invert) return false;
  }
  return true;
}
