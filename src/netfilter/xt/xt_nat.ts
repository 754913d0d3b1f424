/**
 * SNAT and DNAT targets: net/netfilter/xt_nat.c (revision 2: `xt_snat_target_v2`, `xt_dnat_target_v2`;
 * `.table` "nat", SNAT `.hooks` POST_ROUTING | LOCAL_IN, DNAT `.hooks` PRE_ROUTING | LOCAL_OUT), kernel 6.17;
 * userspace extensions/libxt_NAT.c (`parse_to`, `print_range`, `DNAT_save`/`SNAT_save`), iptables 1.8.x.
 * The range helpers here are shared with MASQUERADE and REDIRECT.
 *
 * Left out on purpose: IPv6 ranges, multiple --to ranges (gone since 2.6.11).
 */

import { formatIpv4, parseIpv4 } from "../../wire/addr";
import type { Diagnostic } from "../../errors";
import type { TargetDescriptor, XtOption, XtParseContext } from "../registry";
import { PORT_PROTOCOLS, SERVICES, collect, parseUint } from "./util";

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
  if (svc !== undefined) return { min: svc, max: svc, ...(base !== undefined ? { base } : {}) };
  const dash = spec.indexOf("-");
  const min = parseUint(dash < 0 ? spec : spec.slice(0, dash), 0xffff);
  const max = dash < 0 ? min : parseUint(spec.slice(dash + 1), 0xffff);
  if (min === undefined || max === undefined || min > max) return undefined;
  return { min, max, ...(base !== undefined ? { base } : {}) };
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

function natDescriptor(kind: "SNAT" | "DNAT"): TargetDescriptor<NatTargetOptions> {
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
      return {
        ...r,
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
  };
}

export const snatTarget = natDescriptor("SNAT");
export const dnatTarget = natDescriptor("DNAT");
