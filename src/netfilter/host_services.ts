/**
 * What the per-packet match and target functions need from the emulated host, reached through
 * `XtActionParam.host`. The host engine (src/sim) implements it; tests use small fakes.
 *
 * Each member names the kernel function whose answer it stands for:
 * - `addrType`: `inet_dev_addr_type(net, dev, addr)` / `inet_addr_type` (net/ipv4/fib_frontend.c) — the route
 *   type of an address in the local table (restricted to `dev` for addrtype --limit-iface-in/out).
 * - `ifaceAddress`: the first primary address of a device (`inet_select_addr`, `nf_tproxy_laddr4`).
 * - `lookupSocket`: `nf_sk_lookup_slow_v4` (net/ipv4/netfilter/nf_socket_ipv4.c) and the TPROXY lookups of
 *   net/ipv4/netfilter/nf_tproxy_ipv4.c (`nf_tproxy_get_sock_v4`, NF_TPROXY_LOOKUP_ESTABLISHED / _LISTENER):
 *   an exact established match, or a listener on daddr:dport (a listener bound to 0.0.0.0 has address 0).
 * - `ipset`: a set loaded from an `ipset save` file (src/ipset), by name.
 * - `randomU32`: `get_random_u32()` from the run's seeded generator (statistic --mode random, IP ids).
 * - `routeMtu`: `dst_mtu()` of the route to an address (TCPMSS --clamp-mss-to-pmtu, icmp_send's 576 cap).
 * - `sourceAddressFor`: the source address routing picks for a packet to `dst` (`fib_result_prefsrc`), used
 *   when icmp_send cannot use the offending packet's destination.
 * - `setCtMark`: change a connection's mark and cache the IPCT_MARK event (`Conntrack.setMark`).
 * - `ipDefaultTtl`, `fwmarkReflect`: the sysctls net.ipv4.ip_default_ttl and net.ipv4.fwmark_reflect.
 * Kernel 6.18.
 * Leaves out on purpose: network namespaces (one host), IPv6, TIME_WAIT sockets (TPROXY's
 * nf_tproxy_handle_time_wait4 is not modelled: no TIME_WAIT socket is ever found).
 */

import type { NfConn } from "../conntrack/core";
import type { IpSet } from "../ipset/ipset";
import type { SocketRef } from "./skb";
import type { AddrTypeName } from "./xt/xt_addrtype";

export interface SocketQuery {
  readonly protocol: "tcp" | "udp";
  readonly saddr: number;
  readonly sport: number;
  readonly daddr: number;
  readonly dport: number;
  /** The input device (sockets bound to a device only match packets from it). */
  readonly inIface?: string;
}

export interface HostServices {
  addrType(addr: number, dev?: string): AddrTypeName;
  ifaceAddress(dev: string): number | undefined;
  /** "established": exact 4-tuple; "listener": a listening socket on daddr:dport (or 0.0.0.0:dport). */
  lookupSocket(q: SocketQuery, kind: "established" | "listener"): SocketRef | undefined;
  ipset(name: string): IpSet | undefined;
  randomU32(): number;
  routeMtu(dst: number): number | undefined;
  sourceAddressFor(dst: number): number | undefined;
  setCtMark(ct: NfConn, mark: number): void;
  /** nf_ct_set_closing() on the entry of a packet REJECT answered with a RST (a no-op before Linux 6.3). */
  setCtClosing(ct: NfConn): void;
  /** nfacct object counters (packets, bytes), by name; optional. */
  nfacctAdd?(name: string, bytes: number): void;
  readonly ipDefaultTtl: number;
  readonly fwmarkReflect: boolean;
}

/** `par.host` as HostServices; a broken invariant (no host given to a rule that needs one) throws. */
export function hostOf(host: unknown): HostServices {
  if (host === undefined || host === null)
    throw new Error("netfilter: this match/target needs host services");
  return host as HostServices;
}

/** nf_sk_lookup_slow_v4: established first, then a listener. */
export function skLookupSlow(host: HostServices, q: SocketQuery): SocketRef | undefined {
  return host.lookupSocket(q, "established") ?? host.lookupSocket(q, "listener");
}
