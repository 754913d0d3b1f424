/**
 * SNAT and DNAT targets: net/netfilter/xt_nat.c (revision 2: `xt_snat_target_v2`, `xt_dnat_target_v2`;
 * `.table` "nat", SNAT `.hooks` POST_ROUTING | LOCAL_IN, DNAT `.hooks` PRE_ROUTING | LOCAL_OUT), kernel 6.17;
 * userspace extensions/libxt_NAT.c (`parse_to`, `print_range`, `DNAT_save`/`SNAT_save`), iptables 1.8.x.
 * The range helpers here are shared with MASQUERADE and REDIRECT.
 *
 * Per packet (`xt_snat_target_v2` / `xt_dnat_target_v2`): nf_nat_setup_info() of the src/nat core for the
 * packet's conntrack with the rule's range; the verdict it returns ends the nat chain's traversal (a NAT target
 * is terminal). The NAT targets reach the host's NAT state and interfaces through `par.host`, which must
 * implement `NatTargetHost` (src/sim/host.ts does).
 *
 * Left out on purpose: IPv6 ranges, multiple --to ranges (gone since 2.6.11).
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { Diagnostic } from "../../errors";
import type { TargetDescriptor, XtOption, XtParseContext } from "../registry";
import type { Hook } from "../ruleset";
import type { Skb, TargetVerdict, XtActionParam } from "../skb";
import { PORT_PROTOCOLS, SERVICES, collect, parseUint } from "./util";
import type { NfHook } from "../../conntrack/types";
import {
  IP_CT_NEW,
  IP_CT_RELATED,
  IP_CT_RELATED_REPLY,
  NF_ACCEPT,
  NF_INET_FORWARD,
  NF_INET_LOCAL_IN,
  NF_INET_LOCAL_OUT,
  NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING,
} from "../../conntrack/types";
import type { NfConn } from "../../conntrack/core";
import type { NatState } from "../../nat/nf_nat_core";
import { nfNatSetupInfo } from "../../nat/nf_nat_core";
import type { NatIface } from "../../nat/nf_nat_masquerade";
import { natRangeFromOptions, type NfNatRange2 } from "../../nat/types";

/** `struct nf_nat_range2` flags as booleans. */
export interface NatRange {
  /** NF_NAT_RANGE_MAP_IPS. */
  readonly addrs?: { readonly min: number; readonly max: number };
  /** NF_NAT_RANGE_PROTO_SPECIFIED. */
  readonly ports?: { readonly min: number; readonly max: number };
  /** NF_NAT_RANGE_PROTO_OFFSET (revision 2 `/base`). */
  readonly base?: number;
  readonly random: boolean;
  readonly randomFully: boolean;
  readonly persistent: boolean;
}

export type NatTargetOptions = NatRange;

/** One port token: a service name or a number. */
function natPort(text: string): number | undefined {
  return SERVICES.get(text.toLowerCase()) ?? parseUint(text, 0xffff);
}

/** `port`, `port-port`, a service name (which may itself contain `-`), with `/base` when allowed. */
export function parseNatPorts(
  text: string,
  allowBase: boolean,
): { min: number; max: number; base?: number } | undefined {
  let spec = text;
  let base: number | undefined;
  const slash = text.indexOf("/");
  if (slash >= 0) {
    if (!allowBase) return undefined;
    spec = text.slice(0, slash);
    base = natPort(text.slice(slash + 1));
    if (base === undefined || base === 0) return undefined;
  }
  const svc = SERVICES.get(spec.toLowerCase());
  if (svc !== undefined) return { min: svc, max: svc, base };
  const dash = spec.indexOf("-");
  const min = parseUint(dash < 0 ? spec : spec.slice(0, dash), 0xffff);
  const max = dash < 0 ? min : parseUint(spec.slice(dash + 1), 0xffff);
  if (min === undefined || max === undefined || min > max) return undefined;
  return { min, max, base };
}

export function formatNatPorts(r: { readonly min: number; readonly max: number }): string {
  return r.min === r.max ? String(r.min) : `${r.min}-${r.max}`;
}

export function portProtoError(ctx: XtParseContext, o: XtOption): Diagnostic | undefined {
  const p = ctx.proto;
  if (!p || p.invert || !PORT_PROTOCOLS.has(p.proto)) {
    return ctx.fail("port ranges need -p tcp, udp, udplite, sctp or dccp", o);
  }
  return undefined;
}

/** `--to-ports P[-Q]` of MASQUERADE and REDIRECT: needs a port protocol; no `/base`. */
export function parseToPorts(
  tp: XtOption | undefined,
  ctx: XtParseContext,
): { min: number; max: number } | undefined | Diagnostic {
  if (!tp) return undefined;
  const bad = portProtoError(ctx, tp);
  if (bad) return bad;
  const r = parseNatPorts(tp.args[0], false);
  if (!r) return ctx.fail(`bad port or port range "${tp.args[0]}"`, tp);
  return { min: r.min, max: r.max };
}

function parseTo(o: XtOption, ctx: XtParseContext): Partial<NatRange> | Diagnostic {
  const text = o.args[0];
  const colon = text.indexOf(":");
  const addrPart = colon < 0 ? text : text.slice(0, colon);
  const out: { addrs?: NatRange["addrs"]; ports?: NatRange["ports"]; base?: number } = {};
  if (addrPart !== "") {
    const dash = addrPart.indexOf("-");
    const min = parseIpv4(dash < 0 ? addrPart : addrPart.slice(0, dash));
    const max = dash < 0 ? min : parseIpv4(addrPart.slice(dash + 1));
    if (min === undefined || max === undefined) return ctx.fail(`bad IP address "${addrPart}"`, o);
    if (min > max) return ctx.fail(`bad IP range "${addrPart}" (first address above the last)`, o);
    out.addrs = { min, max };
  }
  if (colon >= 0) {
    const bad = portProtoError(ctx, o);
    if (bad) return bad;
    const r = parseNatPorts(text.slice(colon + 1), true);
    if (!r) return ctx.fail(`bad port or port range "${text.slice(colon + 1)}"`, o);
    out.ports = { min: r.min, max: r.max };
    if (r.base !== undefined) out.base = r.base;
  }
  if (!out.addrs && !out.ports) return ctx.fail(`bad --${o.name} "${text}"`, o);
  return out;
}

export function formatNatRange(r: NatRange): string {
  let s = "";
  if (r.addrs)
    s +=
      r.addrs.min === r.addrs.max
        ? formatIpv4(r.addrs.min)
        : `${formatIpv4(r.addrs.min)}-${formatIpv4(r.addrs.max)}`;
  if (r.ports) {
    s += `:${formatNatPorts(r.ports)}`;
    if (r.base !== undefined) s += `/${r.base}`;
  }
  return s;
}

/** What the NAT targets (SNAT, DNAT, MASQUERADE, REDIRECT, NETMAP) need from the emulated host. */
export interface NatTargetHost {
  /** The namespace's NAT state (conntrack table, bysource index, seeded generator). */
  readonly nat: NatState;
  /** rt_nexthop() of the packet's route: the gateway, or the destination for an on-link route. */
  routeNexthop(skb: Skb): number;
  /** An interface by name (addresses in configuration order), undefined when unknown. */
  natIface(name: string | undefined): NatIface | undefined;
  /** Every interface of the host, loopback first (inet_select_addr's fallback walk). */
  natIfaces(): readonly NatIface[];
}

/** `par.host` as the NAT targets' services; throws when the engine did not provide them (a broken invariant). */
export function natTargetHost(par: XtActionParam): NatTargetHost {
  const h = par.host as Partial<NatTargetHost> | undefined;
  if (!h || !h.nat || typeof h.routeNexthop !== "function") {
    throw new Error("NAT target evaluated without NatTargetHost services in par.host");
  }
  return h as NatTargetHost;
}

/** enum nf_inet_hooks of an iptables hook name (xt_hooknum(par)). */
export const NAT_HOOKNUM: Readonly<Record<Hook, NfHook>> = {
  PREROUTING: NF_INET_PRE_ROUTING,
  INPUT: NF_INET_LOCAL_IN,
  FORWARD: NF_INET_FORWARD,
  OUTPUT: NF_INET_LOCAL_OUT,
  POSTROUTING: NF_INET_POST_ROUTING,
};

/**
 * The packet's conntrack when a NAT target may bind it: the kernel WARN_ONs unless ctinfo is NEW, RELATED or
 * RELATED_REPLY (the nat chains only run then), so anything else is left alone here.
 */
export function natTargetConn(skb: Skb): NfConn | undefined {
  const ct = skb.ct;
  const ci = skb.ctinfo;
  if (!ct || (ci !== IP_CT_NEW && ci !== IP_CT_RELATED && ci !== IP_CT_RELATED_REPLY)) return undefined;
  return ct;
}

/** NF_ACCEPT / NF_DROP as a target verdict. */
export function natVerdict(v: number): TargetVerdict {
  return v === NF_ACCEPT ? "ACCEPT" : "DROP";
}

function natDescriptor(kind: "SNAT" | "DNAT"): TargetDescriptor<NatTargetOptions, NfNatRange2> {
  const toName = kind === "SNAT" ? "to-source" : "to-destination";
  return {
    kind: "target",
    name: kind,
    kernelFile: "net/netfilter/xt_nat.c",
    userspaceFile: "extensions/libxt_NAT.c",
    table: "nat",
    hooks: kind === "SNAT" ? ["POSTROUTING", "INPUT"] : ["PREROUTING", "OUTPUT"],
    options: [
      { name: toName, nargs: 1 },
      { name: "random", nargs: 0 },
      ...(kind === "SNAT" ? [{ name: "random-fully", nargs: 0 as const }] : []),
      { name: "persistent", nargs: 0 },
    ],
    parse(opts, ctx) {
      const m = collect(opts, ctx);
      if (!(m instanceof Map)) return m;
      for (const o of opts) if (o.invert) return ctx.fail(`--${o.name} cannot be inverted`, o);
      const to = m.get(toName);
      if (!to) return ctx.fail(`${kind} needs --${toName}`);
      const r = parseTo(to, ctx);
      if ("code" in r) return r;
      // One literal with every field (absent parts undefined): every rule's options share one hidden class (an
      // object spread plus new keys gives each object its own, and the per-packet target goes megamorphic).
      return {
        addrs: r.addrs,
        ports: r.ports,
        base: r.base,
        random: m.has("random"),
        randomFully: m.has("random-fully"),
        persistent: m.has("persistent"),
      };
    },
    save(o) {
      return [
        `--${toName} ${formatNatRange(o)}`,
        o.random && "--random",
        o.randomFully && "--random-fully",
        o.persistent && "--persistent",
      ]
        .filter(Boolean)
        .join(" ");
    },
    prepare: natRangeFromOptions,
    target(range, skb, par) {
      const ct = natTargetConn(skb);
      if (!ct) return "ACCEPT";
      const h = natTargetHost(par);
      return natVerdict(nfNatSetupInfo(h.nat, ct, range, kind === "SNAT" ? "SRC" : "DST", par.now));
    },
  };
}

export const snatTarget = natDescriptor("SNAT");
export const dnatTarget = natDescriptor("DNAT");
