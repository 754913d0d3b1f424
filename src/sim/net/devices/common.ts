/**
 * Shared pieces of the device models in this folder (not a kernel concept): static longest-prefix routes for
 * devices that are not Linux hosts, header rewriting with checksums recomputed, flow keys and a seeded flow
 * hash, hop records, and readers for a device's YAML keys that report errors through the DeviceContext.
 *
 * The flow hash is the kernel's jhash (lib/jhash.h, as in ../../../util/jhash.ts) over the 5-tuple words and a
 * per-device seed, the way `nf_conntrack_hash`/`skb_get_hash` use it; real cloud devices use hashes of their
 * own that are not published, so only the shape (deterministic per flow, uniform over targets) is modelled.
 *
 * Leaves out on purpose: ARP/neighbours (links are point-to-point or the engine delivers by address), IP options.
 */
import type { Packet } from "../../../wire/packet";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, l4ProtoName } from "../../../wire/packet";
import type { Ipv4Prefix } from "../../../wire/addr";
import { formatIpv4, inPrefix, parseIpv4, parseIpv4Prefix } from "../../../wire/addr";
import { decodeIpv4, encodeIpv4, isDecodeFailure } from "../../../wire/ipv4";
import { jhash2 } from "../../../util/jhash";
import type { HostInterface } from "../../../host/types";
import { InputError } from "../../../errors";
import type { HopRecord } from "../types";
import type { DeviceContext, KeyPath } from "../registry";

// ---------------------------------------------------------------------------------------------------------------
// Packets

export interface Rewrite {
  readonly src?: number;
  readonly dst?: number;
  readonly srcPort?: number;
  readonly dstPort?: number;
  readonly ttl?: number;
}

/** The packet with addresses/ports/TTL replaced and every checksum recomputed (as a NAT device's output). */
export function rewritePacket(p: Packet, r: Rewrite): Packet {
  let l4 = p.l4;
  if ((l4.kind === "tcp" || l4.kind === "udp") && (r.srcPort !== undefined || r.dstPort !== undefined))
    l4 = { ...l4, srcPort: r.srcPort ?? l4.srcPort, dstPort: r.dstPort ?? l4.dstPort };
  else if (l4.kind === "icmp" && r.srcPort !== undefined && isIcmpQuery(p))
    // ICMP echo: the "port" is the identifier, the high half of restOfHeader.
    l4 = { ...l4, restOfHeader: (((r.srcPort & 0xffff) << 16) | (l4.restOfHeader & 0xffff)) >>> 0 };
  const next: Packet = {
    ...p,
    ip: { ...p.ip, src: r.src ?? p.ip.src, dst: r.dst ?? p.ip.dst, ttl: r.ttl ?? p.ip.ttl },
    l4,
  };
  return refreshChecksums(next);
}

/** Re-encodes a packet so that lengths and checksums are what a sender computes. */
export function refreshChecksums(p: Packet): Packet {
  const bytes = encodeIpv4(p);
  const d = decodeIpv4(bytes, 0, bytes.length, {
    tsSec: p.tsSec,
    tsNsec: p.tsNsec,
    iface: p.iface,
    direction: p.direction,
    link: p.link,
    origin: p.origin,
  });
  if (isDecodeFailure(d)) throw new Error(`rewritten packet does not decode: ${d.failure}`);
  return d;
}

function isIcmpQuery(p: Packet): boolean {
  return p.l4.kind === "icmp" && (p.l4.type === 8 || p.l4.type === 0 || p.l4.type === 13 || p.l4.type === 14);
}

/** Source and destination "ports": TCP/UDP ports, the ICMP echo identifier on both sides, else 0. */
export function packetPorts(p: Packet): readonly [number, number] {
  const l4 = p.l4;
  if (l4.kind === "tcp" || l4.kind === "udp") return [l4.srcPort, l4.dstPort];
  if (l4.kind === "icmp" && isIcmpQuery(p)) {
    const id = l4.restOfHeader >>> 16;
    return [id, id];
  }
  return [0, 0];
}

export function protoName(protocol: number): string {
  return l4ProtoName(protocol) ?? `proto-${protocol}`;
}

/** `tcp 198.51.100.7:40000 > 203.0.113.10:7000` */
export function flowText(p: Packet): string {
  const [sp, dp] = packetPorts(p);
  const proto = protoName(p.ip.protocol);
  if (p.l4.kind === "tcp" || p.l4.kind === "udp")
    return `${proto} ${formatIpv4(p.ip.src)}:${sp} > ${formatIpv4(p.ip.dst)}:${dp}`;
  return `${proto} ${formatIpv4(p.ip.src)} > ${formatIpv4(p.ip.dst)}`;
}

/** A 5-tuple key (protocol, src, sport, dst, dport) usable in a Map. */
export function tupleKey(protocol: number, src: number, sport: number, dst: number, dport: number): string {
  return `${protocol}|${src >>> 0}|${sport}|${dst >>> 0}|${dport}`;
}

export function packetKey(p: Packet): string {
  const [sp, dp] = packetPorts(p);
  return tupleKey(p.ip.protocol, p.ip.src, sp, p.ip.dst, dp);
}

/** Seeded jhash of the 5-tuple; `symmetric` gives both directions of a flow the same hash. */
export function flowHash(p: Packet, seed: number, symmetric = false): number {
  let [sp, dp] = packetPorts(p);
  let a = p.ip.src >>> 0;
  let b = p.ip.dst >>> 0;
  if (symmetric && (a > b || (a === b && sp > dp))) {
    [a, b] = [b, a];
    [sp, dp] = [dp, sp];
  }
  return jhash2([a, b, ((sp << 16) | dp) >>> 0, p.ip.protocol], seed >>> 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Static routes

export interface StaticRoute {
  readonly prefix: Ipv4Prefix;
  readonly iface: string;
  /** Next hop, for display (the engine delivers over the link). */
  readonly via?: number;
  readonly text: string;
}

/** Longest-prefix match over connected routes (from interface addresses) and configured ones; first wins ties. */
export class StaticRoutes {
  private readonly routes: StaticRoute[];
  constructor(interfaces: readonly HostInterface[], routes: readonly StaticRoute[]) {
    const connected: StaticRoute[] = [];
    for (const i of interfaces)
      for (const a of i.addresses)
        connected.push({
          prefix: { addr: a.addr, len: a.len },
          iface: i.name,
          text: `${formatIpv4(a.addr)}/${a.len} dev ${i.name} (connected)`,
        });
    // Configured routes first so an explicit route beats a connected one of the same length.
    this.routes = [...routes, ...connected];
  }
  lookup(dst: number): StaticRoute | undefined {
    let best: StaticRoute | undefined;
    for (const r of this.routes)
      if (inPrefix(dst, r.prefix) && (!best || r.prefix.len > best.prefix.len)) best = r;
    return best;
  }
  list(): readonly StaticRoute[] {
    return this.routes;
  }
}

/** `10.0.0.0/16 dev eth0`, `default via 10.0.0.1 dev eth1`, `0.0.0.0/0 dev eth1`. */
export function parseStaticRoute(text: string): StaticRoute | string {
  const words = text.trim().split(/\s+/);
  const pfx = words[0] === "default" ? { addr: 0, len: 0 } : parseIpv4Prefix(words[0] ?? "");
  if (!pfx) return `bad destination "${words[0] ?? ""}" (want a.b.c.d/len or default)`;
  let iface: string | undefined;
  let via: number | undefined;
  for (let i = 1; i < words.length; i += 2) {
    const k = words[i];
    const v = words[i + 1];
    if (v === undefined) return `"${k}" needs a value`;
    if (k === "dev") iface = v;
    else if (k === "via") {
      via = parseIpv4(v);
      if (via === undefined) return `bad gateway "${v}"`;
    } else return `unknown route keyword "${k}" (want dev, via)`;
  }
  if (!iface) return `route "${text}" names no device (dev IFACE)`;
  return { prefix: pfx, iface, via, text: text.trim() };
}

// ---------------------------------------------------------------------------------------------------------------
// Hop records

export function hop(
  node: string,
  inIface: string | undefined,
  summary: string,
  fate: string,
  extra: Partial<Pick<HopRecord, "nat" | "details" | "ctstate">> = {},
): HopRecord {
  return { node, inIface, summary, fate, ...extra };
}

// ---------------------------------------------------------------------------------------------------------------
// Config readers (every error goes through ctx.fail with the key path)

type Cfg = Readonly<Record<string, unknown>>;

export function cfgOptional(config: Cfg, key: string): unknown {
  return config[key];
}

export function cfgString(ctx: DeviceContext, config: Cfg, path: KeyPath, def?: string): string {
  const v = at(config, path);
  if (v === undefined && def !== undefined) return def;
  if (typeof v !== "string" || v === "")
    ctx.fail(path, "DEVICE_CONFIG", `expected a string, got ${JSON.stringify(v)}`);
  return v as string;
}

export function cfgBool(ctx: DeviceContext, config: Cfg, path: KeyPath, def: boolean): boolean {
  const v = at(config, path);
  if (v === undefined) return def;
  if (typeof v !== "boolean")
    ctx.fail(path, "DEVICE_CONFIG", `expected true or false, got ${JSON.stringify(v)}`);
  return v as boolean;
}

export function cfgInt(
  ctx: DeviceContext,
  config: Cfg,
  path: KeyPath,
  def: number,
  min: number,
  max: number,
): number {
  const v = at(config, path);
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    ctx.fail(path, "DEVICE_CONFIG", `expected an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return v as number;
}

export function cfgNumber(ctx: DeviceContext, config: Cfg, path: KeyPath, def: number): number {
  const v = at(config, path);
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
    ctx.fail(path, "DEVICE_CONFIG", `expected a non-negative number, got ${JSON.stringify(v)}`);
  return v as number;
}

export function cfgAddr(ctx: DeviceContext, config: Cfg, path: KeyPath, def?: number): number {
  const v = at(config, path);
  if (v === undefined && def !== undefined) return def;
  const a = typeof v === "string" ? parseIpv4(v) : undefined;
  if (a === undefined) ctx.fail(path, "DEVICE_CONFIG", `expected an IPv4 address, got ${JSON.stringify(v)}`);
  return a as number;
}

export function cfgList(
  ctx: DeviceContext,
  config: Cfg,
  path: KeyPath,
  required = false,
): readonly unknown[] {
  const v = at(config, path);
  if (v === undefined && !required) return [];
  if (!Array.isArray(v)) ctx.fail(path, "DEVICE_CONFIG", "expected a list");
  return v as unknown[];
}

export function cfgRoutes(
  ctx: DeviceContext,
  config: Cfg,
  path: KeyPath,
  interfaces: readonly HostInterface[],
): StaticRoute[] {
  const names = new Set(interfaces.map((i) => i.name));
  return cfgList(ctx, config, path).map((item, i) => {
    if (typeof item !== "string")
      ctx.fail([...path, i], "DEVICE_CONFIG", "expected a route line (PREFIX dev IFACE)");
    const r = parseStaticRoute(item as string);
    if (typeof r === "string") ctx.fail([...path, i], "DEVICE_ROUTE", r);
    const route = r as StaticRoute;
    if (!names.has(route.iface))
      ctx.fail([...path, i], "DEVICE_ROUTE", `no interface "${route.iface}" (have ${[...names].join(", ")})`);
    return route;
  });
}

/** The value at a key path (undefined when any step is missing). */
export function at(config: Cfg, path: KeyPath): unknown {
  let v: unknown = config;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

/** First address of the interface (or of the first interface). */
export function primaryAddress(interfaces: readonly HostInterface[], iface?: string): number | undefined {
  const i = iface ? interfaces.find((x) => x.name === iface) : interfaces[0];
  return i?.addresses[0]?.addr;
}

/** A DeviceContext for tests and library callers that build devices without a topology file. */
export function plainDeviceContext(name: string, prng: DeviceContext["prng"]): DeviceContext {
  return {
    prng,
    fail(path, code, message): never {
      throw new InputError({ code, message: `${name}: ${path.join(".")}: ${message}` });
    },
    hostSim(): never {
      throw new Error(`${name}: no host sims outside a topology`);
    },
  };
}
