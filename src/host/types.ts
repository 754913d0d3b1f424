/**
 * Validated values describing one emulated host: interfaces, addresses, routes, policy-routing rules, sysctls and
 * listening sockets. Produced by ./hostfile.ts from the project's YAML host file.
 *
 * The shapes follow what iproute2 prints and the kernel keeps: `struct fib_config` fields for routes
 * (include/net/ip_fib.h: fc_dst/fc_dst_len, fc_gw4, fc_oif, fc_prefsrc, fc_table, fc_type, fc_priority) and
 * `struct fib_rule` / `struct fib4_rule` for rules (include/net/fib_rules.h, net/ipv4/fib_rules.c). Kernel 6.18.
 * Leaves out: IPv6, multipath routes, route metrics other than the priority, rule actions other than lookup.
 */
import type { Ipv4Prefix } from "../wire/addr";
import type { SourceLocation } from "../errors";

/** Routing table ids (include/uapi/linux/rtnetlink.h enum rt_class_t). */
export const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

/** Route types the host file accepts (enum rtn_type, a subset). */
export type RouteType = "unicast" | "local" | "blackhole" | "unreachable" | "prohibit";

/** Route scopes (enum rt_scope_t): universe 0, link 253, host 254. */
export type RouteScope = "universe" | "link" | "host";

export interface HostInterface {
  readonly name: string;
  /** Lowercase colon form. */
  readonly mac: string;
  readonly addresses: readonly Ipv4Prefix[];
  readonly loc?: SourceLocation;
}

export interface Route {
  readonly type: RouteType;
  /** Destination prefix; `default` is 0.0.0.0/0. */
  readonly prefix: Ipv4Prefix;
  /** Gateway (`via`). */
  readonly via?: number;
  readonly dev?: string;
  /** Preferred source address (`src`). */
  readonly src?: number;
  /** Table id; main (254) unless given. */
  readonly table: number;
  readonly metric?: number;
  readonly scope?: RouteScope;
  /** `proto kernel` for routes the kernel derives from addresses; "static" for the host file's own lines. */
  readonly proto?: string;
  /** The line as written, for messages. */
  readonly text: string;
  readonly loc?: SourceLocation;
}

export interface IpRule {
  /** `priority`/`pref`; undefined means "let the kernel choose" (the next free number below the last). */
  readonly priority?: number;
  readonly not: boolean;
  readonly from?: Ipv4Prefix;
  readonly to?: Ipv4Prefix;
  readonly fwmark?: { readonly value: number; readonly mask: number };
  readonly iif?: string;
  readonly oif?: string;
  readonly tos?: number;
  /** Table to look up. */
  readonly table: number;
  readonly text: string;
  readonly loc?: SourceLocation;
}

export interface ListeningSocket {
  readonly address: number;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** IP_TRANSPARENT set on the socket. */
  readonly transparent: boolean;
  readonly loc?: SourceLocation;
}

export interface Host {
  readonly hostname: string;
  readonly interfaces: readonly HostInterface[];
  /** Routes as written in the host file; see connectedRoutes() for the ones the kernel adds itself. */
  readonly routes: readonly Route[];
  readonly rules: readonly IpRule[];
  /** Sysctl values by full dotted name ("net.ipv4.ip_forward"). */
  readonly sysctl: Readonly<Record<string, number | string>>;
  readonly sockets: readonly ListeningSocket[];
}
