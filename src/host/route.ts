/**
 * The emulated host's FIB: routing tables (local 255, main 254, default 253, numbered), `ip rule` policy
 * routing, longest-prefix match, and the source-address choice of `inet_select_addr`.
 *
 * Mirrors Linux 6.18:
 *   - net/ipv4/fib_rules.c `fib4_rule_match` (from/to prefixes, tos, fwmark/mask, iif/oif via fib_rule_match in
 *     net/core/fib_rules.c, `not`), the default rules of `fib_default_rules_init` (0 lookup local, 32766 lookup
 *     main, 32767 lookup default) and `fib_default_rule_pref` (a rule without priority gets the first non-zero
 *     priority minus one);
 *   - net/ipv4/fib_trie.c `fib_table_lookup` (longest prefix first; among equal prefixes the lowest priority
 *     (metric) wins), with the route types of `fib_props` (local, unicast, blackhole -EINVAL, unreachable
 *     -EHOSTUNREACH, prohibit -EACCES);
 *   - net/ipv4/fib_frontend.c `fib_add_ifaddr` for the kernel's own routes (through hostfile.ts
 *     `connectedRoutes`) and `inet_addr_type` / `__inet_dev_addr_type` for address types;
 *   - net/ipv4/devinet.c `inet_select_addr` (through src/nat/nf_nat_masquerade.ts, which ports it).
 *
 * Leaves out on purpose: IPv6, multipath, route caching/exceptions (PMTU), VRFs, suppress_prefixlength,
 * `ip rule` actions other than lookup (goto, nop, blackhole), tos in routes, rp_filter.
 */
import type { Host, HostInterface, IpRule, Route, RouteType } from "./types";
import { RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN } from "./types";
import { connectedRoutes } from "./hostfile";
import { inPrefix, prefixMask } from "../wire/addr";
import { RT_SCOPE_UNIVERSE, inetSelectAddr } from "../nat/nf_nat_masquerade";

/** What a route lookup found. */
export interface FibResult {
  /** Route type; "none" when no table had a matching route (-ENETUNREACH). */
  readonly type: RouteType | "none";
  readonly route?: Route;
  /** Table the route was found in. */
  readonly table?: number;
  /** The `ip rule` (priority) that led to it. */
  readonly rulePriority?: number;
  /** Output device. */
  readonly oif?: string;
  /** Gateway, when the route has one. */
  readonly gateway?: number;
  /** The next hop: the gateway, or the destination itself for an on-link route. */
  readonly nexthop: number;
  /** Preferred source (`src`) of the route. */
  readonly prefsrc?: number;
}

/** The flow a lookup is for (the fields of `struct flowi4` ctsim uses). */
export interface FlowKey {
  readonly dst: number;
  readonly src?: number;
  /** skb->mark (fwmark rules). */
  readonly mark?: number;
  /** Input device; "lo" for locally generated packets (flowi4_iif = LOOPBACK_IFINDEX). */
  readonly iif?: string;
  readonly oif?: string;
  readonly tos?: number;
}

/** inet_addr_type results (enum rtn_type names as iptables' addrtype prints them). */
export type AddrType =
  | "UNSPEC"
  | "UNICAST"
  | "LOCAL"
  | "BROADCAST"
  | "ANYCAST"
  | "MULTICAST"
  | "BLACKHOLE"
  | "UNREACHABLE"
  | "PROHIBIT";

/** Fib's memo grows from 2^8 to 2^17 slots, at most half full, and is emptied when full at the largest size. */
const DST_CACHE_MIN_BITS = 8;
const DST_CACHE_MAX_BITS = 17;

/** One destination in Fib's memo. */
interface DstEntry {
  /** The destination address as int32. */
  readonly key: number;
  route: FibResult | undefined;
  type: AddrType | undefined;
}

interface RuleEntry {
  readonly priority: number;
  readonly rule?: IpRule;
  readonly table: number;
}

export class Fib {
  readonly host: Host;
  /** Tables by id; each holds routes sorted longest prefix first, then by metric. */
  readonly tables = new Map<number, Route[]>();
  /** Policy rules in priority order (defaults included). */
  readonly rules: readonly RuleEntry[];
  private readonly ifaces = new Map<string, HostInterface>();
  private readonly localAddrs = new Map<number, string>();
  /**
   * Per-destination memo (an emulator device; the tables do not change during a run): each destination's address
   * type and, when the host has no `ip rule` of its own (so the route depends on the destination alone), its
   * route. Keyed by the address as int32 (open addressing; see dstGrow for its size).
   */
  private dstSlots: (DstEntry | undefined)[] = new Array(1 << DST_CACHE_MIN_BITS).fill(undefined);
  private dstBits = DST_CACHE_MIN_BITS;
  private dstCount = 0;
  /** The entry dstEntry returned last, and its key. */
  private lastKey = 0;
  private lastEntry: DstEntry | undefined = undefined;
  private readonly routeByDst: boolean;

  constructor(host: Host) {
    this.host = host;
    for (const i of host.interfaces) this.ifaces.set(i.name, i);
    if (!this.ifaces.has("lo")) {
      this.ifaces.set("lo", {
        name: "lo",
        mac: "00:00:00:00:00:00",
        addresses: [{ addr: 0x7f000001, len: 8 }],
      });
    }
    const loHost: Host = { ...host, interfaces: [...this.ifaces.values()] };
    for (const r of connectedRoutes(loHost)) this.add(r);
    for (const r of host.routes) this.add(this.resolveDev(r));
    for (const t of this.tables.values())
      t.sort((a, b) => b.prefix.len - a.prefix.len || (a.metric ?? 0) - (b.metric ?? 0));
    for (const i of this.ifaces.values())
      for (const a of i.addresses) if (!this.localAddrs.has(a.addr)) this.localAddrs.set(a.addr, i.name);

    const rules: RuleEntry[] = [{ priority: 0, table: RT_TABLE_LOCAL }];
    let pref = 32766;
    const user: RuleEntry[] = [];
    for (const r of host.rules) {
      // fib_default_rule_pref: one below the first rule with a non-zero priority.
      const firstNonZero = [...user, { priority: 32766, table: 0 }]
        .filter((e) => e.priority !== 0)
        .sort((a, b) => a.priority - b.priority)[0];
      const p = r.priority ?? Math.max(0, (firstNonZero?.priority ?? pref) - 1);
      pref = Math.min(pref, p);
      user.push({ priority: p, rule: r, table: r.table });
    }
    rules.push(
      ...user,
      { priority: 32766, table: RT_TABLE_MAIN },
      { priority: 32767, table: RT_TABLE_DEFAULT },
    );
    // Stable: equal priorities keep insertion order (the kernel appends after equal ones).
    this.rules = rules
      .map((r, i) => [r, i] as const)
      .sort((a, b) => a[0].priority - b[0].priority || a[1] - b[1])
      .map(([r]) => r);
    this.routeByDst = host.rules.length === 0;
  }

  /** The memo entry of `dst`, made on first use. */
  private dstEntry(dst: number): DstEntry {
    const key = dst | 0;
    // A forwarded packet asks for its route and then its destination's type: the second finds the first's entry.
    if (key === this.lastKey && this.lastEntry !== undefined) return this.lastEntry;
    // Open addressing over entries that carry their key: a probe reads the slot and the entry it returns (a Map
    // read its bucket, its entry table and then the entry).
    let e = this.dstFind(key);
    if (e === undefined) {
      if (2 * (this.dstCount + 1) > this.dstSlots.length) this.dstGrow();
      e = { key, route: undefined, type: undefined };
      this.dstPut(e);
    }
    this.lastKey = key;
    this.lastEntry = e;
    return e;
  }

  private dstFind(key: number): DstEntry | undefined {
    const slots = this.dstSlots;
    const mask = slots.length - 1;
    let i = Math.imul(key, 0x9e3779b1) >>> (32 - this.dstBits);
    let e: DstEntry | undefined;
    while ((e = slots[i]) !== undefined && e.key !== key) i = (i + 1) & mask;
    return e;
  }

  private dstPut(e: DstEntry): void {
    const slots = this.dstSlots;
    const mask = slots.length - 1;
    let i = Math.imul(e.key, 0x9e3779b1) >>> (32 - this.dstBits);
    while (slots[i] !== undefined) i = (i + 1) & mask;
    slots[i] = e;
    this.dstCount++;
  }

  /** Doubles the memo (re-placing its entries), or empties it at the largest size. */
  private dstGrow(): void {
    const old = this.dstSlots;
    const grow = this.dstBits < DST_CACHE_MAX_BITS;
    if (grow) this.dstBits++;
    this.dstSlots = new Array(1 << this.dstBits).fill(undefined);
    this.dstCount = 0;
    this.lastEntry = undefined;
    if (grow) for (const e of old) if (e !== undefined) this.dstPut(e);
  }

  private add(r: Route): void {
    let t = this.tables.get(r.table);
    if (!t) this.tables.set(r.table, (t = []));
    t.push(r);
  }

  /** A route without `dev` takes the device of the connected route to its gateway (fib_check_nh). */
  private resolveDev(r: Route): Route {
    if (r.dev !== undefined) {
      // The interface's own name string: the datapath compares devices and interface names per packet, and the
      // same string object compares at once.
      const i = this.ifaces.get(r.dev);
      return i === undefined ? r : { ...r, dev: i.name };
    }
    if (r.via === undefined) return r;
    for (const i of this.ifaces.values())
      for (const a of i.addresses) if (a.len < 32 && inPrefix(r.via, a)) return { ...r, dev: i.name };
    return r;
  }

  interface(name: string): HostInterface | undefined {
    return this.ifaces.get(name);
  }

  interfaces(): HostInterface[] {
    return [...this.ifaces.values()];
  }

  /** Whether `addr` is one of the host's own addresses (a `local` route in table local). */
  isLocalAddress(addr: number): boolean {
    return this.localAddrs.has(addr) || addr >>> 24 === 127;
  }

  /** The interface an address is configured on. */
  addressDevice(addr: number): string | undefined {
    return this.localAddrs.get(addr);
  }

  /**
   * The route to `dst` when it depends on the destination alone (no policy rules beyond the default ones), else
   * undefined: the caller then asks `lookup` with the whole flow. Spares the per-packet flow object.
   */
  lookupByDst(dst: number): FibResult | undefined {
    if (!this.routeByDst) return undefined;
    const e = this.dstEntry(dst);
    return (e.route ??= this.walk({ dst }));
  }

  /** fib_rules_lookup + fib_table_lookup. */
  lookup(flow: FlowKey): FibResult {
    if (!this.routeByDst || flow.oif !== undefined) return this.walk(flow);
    // Only the default rules (local, main, default): the result depends on the destination alone.
    const e = this.dstEntry(flow.dst);
    return (e.route ??= this.walk({ dst: flow.dst }));
  }

  private walk(flow: FlowKey): FibResult {
    for (const e of this.rules) {
      if (e.rule && !ruleMatches(e.rule, flow)) continue;
      const t = this.tables.get(e.table);
      if (!t) continue;
      const r = tableLookup(t, flow);
      if (!r) continue;
      return {
        type: r.type,
        route: r,
        table: e.table,
        rulePriority: e.priority,
        oif: r.dev,
        gateway: r.via,
        nexthop: r.via ?? flow.dst,
        prefsrc: r.src,
      };
    }
    return { type: "none", nexthop: flow.dst };
  }

  /**
   * inet_addr_type_dev_table / __inet_dev_addr_type: LOCAL for the host's addresses, BROADCAST for 255.255.255.255
   * and the directed broadcast of a configured subnet, MULTICAST for 224/4, UNSPEC for 0.0.0.0, else the type of
   * the route in table local/main (UNICAST).
   */
  addrType(addr: number, dev?: string): AddrType {
    if (dev !== undefined) return this.addrTypeOf(addr, dev);
    const e = this.dstEntry(addr);
    return (e.type ??= this.addrTypeOf(addr, undefined));
  }

  private addrTypeOf(addr: number, dev: string | undefined): AddrType {
    if (addr === 0) return "UNSPEC";
    if (addr >>> 28 === 0xe) return "MULTICAST";
    if (addr === 0xffffffff) return "BROADCAST";
    const ifs =
      dev !== undefined ? [this.ifaces.get(dev)].filter((x): x is HostInterface => !!x) : this.interfaces();
    for (const i of ifs)
      for (const a of i.addresses) {
        if (a.addr === addr) return "LOCAL";
        if (a.len < 31) {
          const m = prefixMask(a.len);
          if (((a.addr & m) | ~m) >>> 0 === addr) return "BROADCAST";
        }
      }
    if (dev === undefined && addr >>> 24 === 127) return "LOCAL";
    const r = this.lookup({ dst: addr });
    switch (r.type) {
      case "blackhole":
        return "BLACKHOLE";
      case "unreachable":
        return "UNREACHABLE";
      case "prohibit":
        return "PROHIBIT";
      default:
        return "UNICAST";
    }
  }

  /**
   * inet_select_addr(dev, dst, RT_SCOPE_UNIVERSE) (src/nat/nf_nat_masquerade.ts has the kernel's walk): a primary
   * address of `dev` in the subnet of `dst`, else its first primary address, else another device's. Undefined
   * when the host has no usable address.
   */
  inetSelectAddr(dev: string | undefined, dst: number): number | undefined {
    const i = dev !== undefined ? this.ifaces.get(dev) : undefined;
    const a = inetSelectAddr(i, dst >>> 0, RT_SCOPE_UNIVERSE, this.natIfaces());
    return a === 0 ? undefined : a;
  }

  /** Interfaces in the order inet_select_addr walks them: loopback first. */
  natIfaces(): HostInterface[] {
    const lo = this.ifaces.get("lo");
    return [...(lo ? [lo] : []), ...[...this.ifaces.values()].filter((i) => i.name !== "lo")];
  }

  /**
   * Whether `addr` is directly on-link for `dev` (a main-table route without gateway through `dev` covers it):
   * the test __mkroute_input applies to the source before it flags an ICMP redirect.
   */
  onLink(dev: string, addr: number): boolean {
    const r = this.lookup({ dst: addr });
    return r.type === "unicast" && r.oif === dev && r.gateway === undefined;
  }
}

function ruleMatches(r: IpRule, f: FlowKey): boolean {
  let ok = true;
  if (r.from && !(f.src !== undefined && inPrefix(f.src, r.from))) ok = false;
  if (ok && r.to && !inPrefix(f.dst, r.to)) ok = false;
  if (ok && r.fwmark && ((f.mark ?? 0) & r.fwmark.mask) >>> 0 !== (r.fwmark.value & r.fwmark.mask) >>> 0)
    ok = false;
  if (ok && r.iif !== undefined && r.iif !== (f.iif ?? "lo")) ok = false;
  if (ok && r.oif !== undefined && r.oif !== f.oif) ok = false;
  if (ok && r.tos !== undefined && r.tos !== (f.tos ?? 0)) ok = false;
  return r.not ? !ok : ok;
}

function tableLookup(t: readonly Route[], f: FlowKey): Route | undefined {
  for (const r of t) {
    if (!inPrefix(f.dst, r.prefix)) continue;
    if (f.oif !== undefined && r.dev !== undefined && r.dev !== f.oif && r.type === "unicast") continue;
    return r;
  }
  return undefined;
}
