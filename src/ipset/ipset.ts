/**
 * IP sets and their packet test, as the kernel's ip_set `kadt` test functions answer `-m set --match-set NAME
 * FLAGS`: net/netfilter/ipset/ip_set_hash_ip.c (`hash_ip4_kadt`), ip_set_hash_net.c (`hash_net4_kadt`: the most
 * specific prefix wins, a `nomatch` element answers "no" — `-ENOTEMPTY`, turned into a match by
 * --return-nomatch), ip_set_hash_ipport.c (`hash_ipport4_kadt`, ports keyed with their protocol,
 * `ip_set_get_ip4_port`: ICMP type/code as the port), ip_set_hash_netport.c, ip_set_bitmap_port.c
 * (`bitmap_port_kadt`), ip_set_list_set.c (`list_set_ktest`: first member set that matches), and the dimension
 * flags of ip_set_core.c (`ip_set_test`, IPSET_DIM_ONE_SRC...). Kernel 6.18.
 *
 * Leaves out on purpose: IPv6 sets, hash:mac, hash:ip,mark, hash:net,iface, hash:ip,port,ip/net, counters and
 * skbinfo extensions (parsed, not matched on), the element `timeout` is kept but measured from the time the set
 * was loaded (`loadedAt`), forceadd/maxelem limits.
 */

import type { Packet } from "../wire/packet";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "../wire/packet";
import { inPrefix } from "../wire/addr";

export type IpSetType =
  "hash:ip" | "hash:net" | "hash:ip,port" | "hash:net,port" | "bitmap:port" | "bitmap:ip" | "list:set";

export const IPSET_TYPES: readonly IpSetType[] = [
  "hash:ip",
  "hash:net",
  "hash:ip,port",
  "hash:net,port",
  "bitmap:port",
  "bitmap:ip",
  "list:set",
];

/** One element; fields by dimension. */
export interface IpSetElement {
  /** Address (hash:ip, hash:ip,port, bitmap:ip) or network address (hash:net*). */
  readonly addr?: number;
  /** Prefix length for hash:net*; 32 otherwise. */
  readonly cidr?: number;
  /** Port (or ICMP type<<8|code) with its protocol number (0 = any in hash:*,port "0:"). */
  readonly port?: number;
  readonly proto?: number;
  /** list:set member name. */
  readonly member?: string;
  readonly nomatch?: boolean;
  /** Seconds left when saved; the element expires at loadedAt + timeout. */
  readonly timeout?: number;
  readonly comment?: string;
}

export interface IpSet {
  readonly name: string;
  readonly type: IpSetType;
  /** create-line options as written (family, hashsize, maxelem, range, timeout, counters...). */
  readonly options: ReadonlyMap<string, string>;
  readonly elements: readonly IpSetElement[];
  /** Time (seconds, same clock as packets) the set was loaded. */
  readonly loadedAt: number;
}

/** Result of a test: match, no match, or a `nomatch` element hit (return-nomatch turns it into a match). */
export type IpSetTestResult = "match" | "nomatch-element" | "no";

/** Dimensions a set type has (list:set takes the flags of its members). */
export function ipsetDimensions(type: IpSetType): number {
  return type === "hash:ip,port" || type === "hash:net,port" ? 2 : 1;
}

/** ip_set_get_ip4_port: the port (or ICMP type/code) of the packet's src or dst side, with the protocol. */
export function ip4Port(pkt: Packet, src: boolean): { port: number; proto: number } | undefined {
  const l4 = pkt.l4;
  switch (l4.kind) {
    case "tcp":
    case "udp":
      return { port: src ? l4.srcPort : l4.dstPort, proto: pkt.ip.protocol };
    case "icmp":
      return { port: (l4.type << 8) | l4.code, proto: IPPROTO_ICMP };
    default:
      // Non-first fragments and protocols without ports: the kernel refuses (false), no match.
      return undefined;
  }
}

function alive(e: IpSetElement, set: IpSet, now: number): boolean {
  return e.timeout === undefined || e.timeout === 0 || now < set.loadedAt + e.timeout;
}

/**
 * ip_set_test for one packet. `flags[i]` picks the source ("src") or destination ("dst") side for dimension i;
 * missing trailing flags mean "dst" beyond the first as the kernel's flag bits default to 0 (dst).
 * `sets` resolves list:set members.
 */
export function ipsetTest(
  set: IpSet,
  pkt: Packet,
  flags: readonly ("src" | "dst")[],
  now: number,
  sets?: (name: string) => IpSet | undefined,
  depth = 0,
): IpSetTestResult {
  const side = (i: number): boolean => flags[i] === "src";
  const addr = (i: number): number => (side(i) ? pkt.ip.src : pkt.ip.dst);
  switch (set.type) {
    case "hash:ip":
    case "bitmap:ip": {
      const a = addr(0);
      return set.elements.some((e) => e.addr === a && alive(e, set, now)) ? "match" : "no";
    }
    case "hash:net": {
      const a = addr(0);
      return bestPrefix(set, now, (e) => inPrefix(a, { addr: e.addr!, len: e.cidr! }));
    }
    case "hash:ip,port":
    case "hash:net,port": {
      if (flags.length < 2) return "no";
      const a = addr(0);
      const p = ip4Port(pkt, side(1));
      if (!p) return "no";
      const portOk = (e: IpSetElement): boolean =>
        e.port === p.port && (e.proto === p.proto || (e.proto === 0 && p.proto !== IPPROTO_ICMP));
      if (set.type === "hash:ip,port") {
        return set.elements.some((e) => e.addr === a && portOk(e) && alive(e, set, now)) ? "match" : "no";
      }
      return bestPrefix(set, now, (e) => portOk(e) && inPrefix(a, { addr: e.addr!, len: e.cidr! }));
    }
    case "bitmap:port": {
      const p = ip4Port(pkt, side(0));
      if (!p || (p.proto !== IPPROTO_TCP && p.proto !== IPPROTO_UDP && p.proto !== IPPROTO_ICMP)) return "no";
      return set.elements.some((e) => e.port === p.port && alive(e, set, now)) ? "match" : "no";
    }
    case "list:set": {
      if (depth > 0) return "no"; // a list:set cannot hold a list:set
      for (const e of set.elements) {
        if (!alive(e, set, now)) continue;
        const member = sets?.(e.member!);
        if (!member) continue;
        const r = ipsetTest(member, pkt, flags, now, sets, depth + 1);
        if (r !== "no") return r;
      }
      return "no";
    }
  }
}

/** hash:net lookup: the most specific live element containing the key decides (nomatch elements included). */
function bestPrefix(set: IpSet, now: number, contains: (e: IpSetElement) => boolean): IpSetTestResult {
  let best: IpSetElement | undefined;
  for (const e of set.elements) {
    if (!alive(e, set, now) || !contains(e)) continue;
    if (!best || e.cidr! > best.cidr! || (e.cidr === best.cidr && e.nomatch && !best.nomatch)) best = e;
  }
  if (!best) return "no";
  return best.nomatch ? "nomatch-element" : "match";
}
