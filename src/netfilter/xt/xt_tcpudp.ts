/**
 * tcp and udp matches: net/netfilter/xt_tcpudp.c (`tcp_mt`, `udp_mt`, `.proto` IPPROTO_TCP/UDP), kernel 6.17;
 * userspace extensions/libxt_tcp.c and extensions/libxt_udp.c (`tcp_parse`, `tcp_save`, `print_tcpf`),
 * iptables 1.8.x.
 *
 * Per packet: `tcp_mt`, `udp_mt` (fragment and hotdrop rules included). `--tcp-option` looks through the
 * parsed option list, which stops at EOL where the kernel would keep walking (a packet with options after EOL
 * can differ).
 *
 * Left out on purpose: nothing else.
 */

import type { Diagnostic } from "../../errors";
import type { MatchDescriptor, XtOption, XtParseContext } from "../registry";
import type { Skb, XtActionParam } from "../skb";
import type { TcpHeader } from "../../wire/packet";
import { bang, collect, formatRange, parseColonRange, parsePort, parseUint, words } from "./util";

export interface PortRangeOption {
  readonly range: readonly [number, number];
  readonly invert: boolean;
}

/**
 * The port ranges once more as plain numbers, as the kernel's struct xt_tcp/xt_udp holds them (`spts[2]`,
 * `dpts[2]`, the invert flags): the per-packet match reads them from the options object itself.
 */
interface PortBounds {
  readonly sptLo: number;
  readonly sptHi: number;
  readonly sptInv: boolean;
  readonly dptLo: number;
  readonly dptHi: number;
  readonly dptInv: boolean;
}

export interface TcpMatchOptions extends PortBounds {
  readonly sport: PortRangeOption;
  readonly dport: PortRangeOption;
  /** `--tcp-flags MASK COMP` (`--syn` is FIN,SYN,RST,ACK SYN). */
  readonly flags?: { readonly mask: number; readonly comp: number; readonly invert: boolean };
  readonly option?: { readonly value: number; readonly invert: boolean };
}

export interface UdpMatchOptions extends PortBounds {
  readonly sport: PortRangeOption;
  readonly dport: PortRangeOption;
}

const FULL: PortRangeOption = { range: [0, 0xffff], invert: false };

/** tcp_flag_names of libxt_tcp.c, in print order. */
export const TCP_FLAG_NAMES: readonly (readonly [string, number])[] = [
  ["FIN", 0x01],
  ["SYN", 0x02],
  ["RST", 0x04],
  ["PSH", 0x08],
  ["ACK", 0x10],
  ["URG", 0x20],
];

function parseTcpFlags(text: string): number | undefined {
  let v = 0;
  for (const part of text.split(",")) {
    const up = part.toUpperCase();
    if (up === "ALL") v |= 0x3f;
    else if (up === "NONE") continue;
    else {
      const f = TCP_FLAG_NAMES.find(([n]) => n === up);
      if (!f) return undefined;
      v |= f[1];
    }
  }
  return v;
}

export function formatTcpFlags(flags: number): string {
  if (flags === 0) return "NONE";
  return TCP_FLAG_NAMES.filter(([, bit]) => flags & bit)
    .map(([n]) => n)
    .join(",");
}

function parsePorts(opts: Map<string, XtOption>, ctx: XtParseContext): UdpMatchOptions | Diagnostic {
  const out: Record<string, PortRangeOption> = { sport: FULL, dport: FULL };
  for (const key of ["sport", "dport"]) {
    const o = opts.get(key);
    if (!o) continue;
    const r = parseColonRange(o.args[0], parsePort, 0xffff);
    if (!r) return ctx.fail(`invalid port or port range "${o.args[0]}" for --${key}`, o);
    out[key] = { range: r, invert: o.invert };
  }
  const { sport, dport } = out;
  return {
    sport,
    dport,
    sptLo: sport.range[0],
    sptHi: sport.range[1],
    sptInv: sport.invert,
    dptLo: dport.range[0],
    dptHi: dport.range[1],
    dptInv: dport.invert,
  };
}

function savePort(name: string, p: PortRangeOption): string | undefined {
  if (p.range[0] === 0 && p.range[1] === 0xffff && !p.invert) return undefined;
  return `${bang(p.invert)}--${name} ${formatRange(p.range)}`;
}

export const tcpMatch: MatchDescriptor<TcpMatchOptions> = {
  kind: "match",
  name: "tcp",
  match: tcpMt,
  kernelFile: "net/netfilter/xt_tcpudp.c",
  userspaceFile: "extensions/libxt_tcp.c",
  proto: 6,
  options: [
    { name: "sport", aliases: ["source-port"], nargs: 1, invert: true },
    { name: "dport", aliases: ["destination-port"], nargs: 1, invert: true },
    { name: "tcp-flags", nargs: 2, invert: true },
    { name: "syn", nargs: 0, invert: true },
    { name: "tcp-option", nargs: 1, invert: true },
  ],
  parse(opts, ctx) {
    const map = collect(opts, ctx);
    if (!(map instanceof Map)) return map;
    const ports = parsePorts(map, ctx);
    if ("code" in ports) return ports;
    let flags: TcpMatchOptions["flags"];
    const tf = map.get("tcp-flags");
    const syn = map.get("syn");
    if (tf && syn) return ctx.fail("--syn and --tcp-flags cannot be combined", syn);
    if (tf) {
      const mask = parseTcpFlags(tf.args[0]);
      const comp = parseTcpFlags(tf.args[1]);
      if (mask === undefined) return ctx.fail(`unknown TCP flag in "${tf.args[0]}"`, tf);
      if (comp === undefined) return ctx.fail(`unknown TCP flag in "${tf.args[1]}"`, tf);
      flags = { mask, comp, invert: tf.invert };
    } else if (syn) {
      flags = { mask: 0x17, comp: 0x02, invert: syn.invert };
    }
    let option: TcpMatchOptions["option"];
    const to = map.get("tcp-option");
    if (to) {
      const v = parseUint(to.args[0], 255);
      if (v === undefined) return ctx.fail(`invalid TCP option "${to.args[0]}"`, to);
      option = { value: v, invert: to.invert };
    }
    // One literal with every field (absent parts undefined): every tcp rule's options share one hidden class.
    // (An object spread here gave nearly every rule its own, which made the per-packet match megamorphic.)
    return {
      sport: ports.sport,
      dport: ports.dport,
      sptLo: ports.sptLo,
      sptHi: ports.sptHi,
      sptInv: ports.sptInv,
      dptLo: ports.dptLo,
      dptHi: ports.dptHi,
      dptInv: ports.dptInv,
      flags,
      option,
    };
  },
  save(o) {
    return words(
      savePort("sport", o.sport),
      savePort("dport", o.dport),
      o.option && `${bang(o.option.invert)}--tcp-option ${o.option.value}`,
      o.flags &&
        `${bang(o.flags.invert)}--tcp-flags ${formatTcpFlags(o.flags.mask)} ${formatTcpFlags(o.flags.comp)}`,
    );
  },
};

export const udpMatch: MatchDescriptor<UdpMatchOptions> = {
  kind: "match",
  name: "udp",
  match: udpMt,
  kernelFile: "net/netfilter/xt_tcpudp.c",
  userspaceFile: "extensions/libxt_udp.c",
  proto: 17,
  options: [
    { name: "sport", aliases: ["source-port"], nargs: 1, invert: true },
    { name: "dport", aliases: ["destination-port"], nargs: 1, invert: true },
  ],
  parse(opts, ctx) {
    const m = collect(opts, ctx);
    if (!(m instanceof Map)) return m;
    return parsePorts(m, ctx);
  },
  save(o) {
    return words(savePort("sport", o.sport), savePort("dport", o.dport));
  },
};

/** port_match of xt_tcpudp.c, for both ports. */
function portsMatch(o: PortBounds, sport: number, dport: number): boolean {
  return (
    (sport >= o.sptLo && sport <= o.sptHi) !== o.sptInv && (dport >= o.dptLo && dport <= o.dptHi) !== o.dptInv
  );
}

/** TCP option kinds in header order, as tcp_find_option walks them. */
function tcpOptionKinds(options: TcpHeader["options"]): number[] {
  return options.map((o) => (o.kind === "unknown" ? o.type : TCPOPT_KIND[o.kind]));
}

const TCPOPT_KIND: Readonly<Record<Exclude<TcpHeader["options"][number]["kind"], "unknown">, number>> = {
  eol: 0,
  nop: 1,
  mss: 2,
  wscale: 3,
  sackPermitted: 4,
  sack: 5,
  timestamp: 8,
};

/**
 * tcp_mt: a fragment never matches (offset 1 is the "evil" flag-overwrite fragment: hotdrop); ports, then
 * `(byte 13 & mask) == comp` (the AE bit is outside byte 13), then the option search.
 */
export function tcpMt(o: TcpMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const { ip, l4 } = skb.pkt;
  if (ip.fragOffset !== 0) {
    if (ip.fragOffset === 1) par.hotdrop = true;
    return false;
  }
  if (l4.kind !== "tcp") {
    par.hotdrop = true; // header not readable
    return false;
  }
  if (!portsMatch(o, l4.srcPort, l4.dstPort)) return false;
  if (o.flags && ((l4.flags & 0xff & o.flags.mask) === o.flags.comp) === o.flags.invert) return false;
  if (o.option) {
    const found = tcpOptionKinds(l4.options).includes(o.option.value);
    if (found === o.option.invert) return false;
  }
  return true;
}

/** udp_mt: fragments never match; a missing header hotdrops. */
export function udpMt(o: UdpMatchOptions, skb: Skb, par: XtActionParam): boolean {
  const { ip, l4 } = skb.pkt;
  if (ip.fragOffset !== 0) return false;
  if (l4.kind !== "udp") {
    par.hotdrop = true;
    return false;
  }
  return portsMatch(o, l4.srcPort, l4.dstPort);
}
