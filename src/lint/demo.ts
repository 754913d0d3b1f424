/**
 * Demonstration packets for lint findings: picks addresses from a rule's selectors and the host's interfaces
 * and routes (src/host/route.ts `Fib`, the kernel's fib_lookup), and writes them as tcpdump text lines that
 * src/wire/text.ts reads back (`eth1 In IP 10.0.0.5.40000 > 198.51.100.10.80: Flags [F.], ...`).
 *
 * Addresses chosen when a rule leaves them open: the 6th address of a covered prefix for an inside host, a
 * TEST-NET address (RFC 5737) routed out of the right interface for an outside one. Left out on purpose: UDP
 * and ICMP demonstrations (the INVALID paths lint shows are TCP ones), IPv6.
 */
import type { Host } from "../host/types";
import { Fib } from "../host/route";
import { formatIpv4, prefixMask } from "../wire/addr";
import type { Rule } from "../netfilter/ruleset";
import type { CtSummary, PacketReport } from "../trace/events";

export interface DemoFlow {
  readonly inIface: string;
  readonly src: number;
  readonly dst: number;
  readonly sport: number;
  readonly dport: number;
}

/** One TCP packet line as `tcpdump -i any -n` prints it. */
export function tcpLine(
  iface: string,
  src: number,
  sport: number,
  dst: number,
  dport: number,
  flags: string,
  fields: string,
): string {
  return `${iface} In IP ${formatIpv4(src)}.${sport} > ${formatIpv4(dst)}.${dport}: Flags [${flags}], ${fields}`;
}

/** An address in the prefix addr/mask other than the host's own: network + 5 (or +6, ...), or the address. */
export function insidePrefix(fib: Fib, addr: number, mask: number, nth = 5): number {
  const hostBits = ~mask >>> 0;
  if (hostBits < 3) return addr >>> 0;
  for (let k = nth; k < nth + 8 && k < hostBits; k++) {
    const a = ((addr & mask) | k) >>> 0;
    if (!fib.isLocalAddress(a)) return a;
  }
  return addr >>> 0;
}

const OUTSIDE_CANDIDATES = [0xc633640a /* 198.51.100.10 */, 0xcb00710a /* 203.0.113.10 */, 0x0a000a0a];

/**
 * A destination that routes out of `oif` (any interface when undefined) and is not local, within the rule's
 * `-d` when it has one.
 */
export function outsideAddress(fib: Fib, rule: Rule, oif?: string, avoid?: number): number | undefined {
  const fits = (a: number): boolean => {
    if (fib.isLocalAddress(a) || a === avoid) return false;
    const r = fib.lookup({ dst: a });
    if (r.type !== "unicast") return false;
    return oif === undefined || r.oif === oif;
  };
  const d = rule.dst;
  if (d && !d.invert && d.mask !== 0) {
    const a = insidePrefix(fib, d.addr, d.mask, 10);
    return fits(a) || oif === undefined ? a : undefined;
  }
  const candidates = [...OUTSIDE_CANDIDATES];
  for (const i of fib.interfaces())
    for (const p of i.addresses) {
      const m = prefixMask(p.len);
      candidates.push(insidePrefix(fib, p.addr, m, 10));
    }
  for (const a of candidates) {
    if (d && d.invert && (a & d.mask) >>> 0 === d.addr >>> 0) continue;
    if (fits(a)) return a;
  }
  return undefined;
}

/** The interface the host would reach `addr` through (the input interface of packets from it). */
export function ifaceTowards(fib: Fib, addr: number): string | undefined {
  const r = fib.lookup({ dst: addr });
  return r.type === "unicast" ? r.oif : undefined;
}

/**
 * A flow a SNAT/MASQUERADE rule covers: a source inside its `-s` (or on an interface subnet other than its `-o`),
 * a destination routed out of its `-o`, the rule's destination port (80 otherwise).
 */
export function snatFlow(host: Host, rule: Rule, dport: number): DemoFlow | undefined {
  const fib = new Fib(host);
  const out =
    rule.outIface && !rule.outIface.invert && !rule.outIface.name.endsWith("+")
      ? rule.outIface.name
      : undefined;
  let src: number | undefined;
  if (rule.src && !rule.src.invert && rule.src.mask !== 0)
    src = insidePrefix(fib, rule.src.addr, rule.src.mask);
  else {
    const ifaces = fib.interfaces().filter((i) => i.name !== "lo");
    const inner = ifaces.filter((i) => i.name !== out);
    for (const i of [...inner, ...ifaces]) {
      const p = i.addresses.find((a) => a.len <= 29);
      if (p) {
        src = insidePrefix(fib, p.addr, prefixMask(p.len));
        break;
      }
    }
  }
  if (src === undefined) return undefined;
  const inRule =
    rule.inIface && !rule.inIface.invert && !rule.inIface.name.endsWith("+") ? rule.inIface.name : undefined;
  const inIface = inRule ?? ifaceTowards(fib, src) ?? fib.interfaces().find((i) => i.name !== out)?.name;
  if (!inIface) return undefined;
  const dst = outsideAddress(fib, rule, out, src);
  if (dst === undefined) return undefined;
  return { inIface, src, dst, sport: 40000, dport };
}

/** A fixed dialogue as a DemoPlan `next`. */
export function fixedPackets(
  lines: readonly string[],
): (reports: readonly PacketReport[]) => string | undefined {
  return (reports) => lines[reports.length];
}

/** `tcp_new: invalid new (tcp_conntracks[ORIGINAL][fin][NONE] = sIV)` from a packet's conntrack summary. */
export function ctReasonText(ct: CtSummary | undefined): string {
  const r = ct?.reason;
  if (!r) return "no reason recorded";
  const c = r.cell;
  const dir = c ? (typeof c.dir === "number" ? (c.dir === 0 ? "ORIGINAL" : "REPLY") : String(c.dir)) : "";
  return `${r.fn}: ${r.text}${c ? ` (tcp_conntracks[${dir}][${c.index}][${c.oldState}] = ${c.result})` : ""}`;
}
