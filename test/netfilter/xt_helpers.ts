/** Packet, skb, xt_action_param and host fakes for the per-packet match/target tests. */
import { Conntrack } from "../../src/conntrack/core";
import type { NfConn } from "../../src/conntrack/core";
import type { CtInfo } from "../../src/conntrack/types";
import { parseIpv4 } from "../../src/wire/addr";
import type { IcmpHeader, L4Header, Packet, TcpHeader, TcpOption } from "../../src/wire/packet";
import { isDiagnostic, findOption } from "../../src/netfilter/registry";
import type { Descriptor, XtOption, XtParseContext } from "../../src/netfilter/registry";
import { DEFAULT_ENVIRONMENT } from "../../src/netfilter/registry";
import type { DatapathEffects, Skb, SocketRef, XtActionParam } from "../../src/netfilter/skb";
import type { HostServices, SocketQuery } from "../../src/netfilter/host_services";
import type { IpSet } from "../../src/ipset/ipset";
import type { AddrTypeName } from "../../src/netfilter/xt/xt_addrtype";
import type { Hook, TableName } from "../../src/netfilter/ruleset";

export function ip(a: string): number {
  const v = parseIpv4(a);
  if (v === undefined) throw new Error(`bad address ${a}`);
  return v;
}

export function packet(
  src: string,
  dst: string,
  l4: L4Header,
  over: Partial<Packet["ip"]> = {},
  payloadLength = 0,
): Packet {
  const protocol =
    l4.kind === "tcp" ? 6 : l4.kind === "udp" ? 17 : l4.kind === "icmp" ? 1 : (over.protocol ?? 99);
  const l4len = l4.kind === "tcp" ? l4.dataOffset : l4.kind === "udp" || l4.kind === "icmp" ? 8 : 0;
  return {
    ip: {
      ihl: 20,
      tos: 0,
      totalLength: 20 + l4len + payloadLength,
      id: 1,
      rf: false,
      df: true,
      mf: false,
      fragOffset: 0,
      ttl: 64,
      protocol,
      checksum: 0,
      src: ip(src),
      dst: ip(dst),
      options: new Uint8Array(0),
      ...over,
    },
    l4,
    payloadLength,
    payload: new Uint8Array(payloadLength),
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: "correct",
  };
}

export function tcp(
  sport: number,
  dport: number,
  flags = 0x02,
  options: TcpOption[] = [],
  seq = 1000,
  ack = 0,
): TcpHeader {
  let optLen = 0;
  for (const o of options)
    optLen +=
      o.kind === "mss"
        ? 4
        : o.kind === "nop" || o.kind === "eol"
          ? 1
          : o.kind === "wscale"
            ? 3
            : o.kind === "sackPermitted"
              ? 2
              : 10;
  return {
    kind: "tcp",
    srcPort: sport,
    dstPort: dport,
    seq,
    ack,
    dataOffset: 20 + ((optLen + 3) & ~3),
    reserved: 0,
    flags,
    window: 64240,
    checksum: 0,
    urgentPointer: 0,
    options,
  };
}

export function udp(sport: number, dport: number): L4Header {
  return { kind: "udp", srcPort: sport, dstPort: dport, length: 8, checksum: 1 };
}

export function icmp(type: number, code: number, restOfHeader = 0, quote?: IcmpHeader["quote"]): IcmpHeader {
  return quote
    ? { kind: "icmp", type, code, checksum: 0, restOfHeader, quote }
    : { kind: "icmp", type, code, checksum: 0, restOfHeader };
}

export function skbOf(pkt: Packet, over: Partial<Skb> = {}): Skb {
  return {
    pkt,
    mark: 0,
    nfTrace: false,
    untracked: false,
    priority: 0,
    local: false,
    pktType: "host",
    ...over,
  };
}

export class FakeHost implements HostServices {
  readonly local = new Set<number>();
  readonly broadcast = new Set<number>();
  readonly sockets: { kind: "established" | "listener"; q: Partial<SocketQuery>; sk: SocketRef }[] = [];
  readonly sets = new Map<string, IpSet>();
  readonly marks: [NfConn, number][] = [];
  readonly acct = new Map<string, number>();
  randoms: number[] = [];
  mtu = new Map<number, number>();
  ipDefaultTtl = 64;
  fwmarkReflect = false;
  ifaces = new Map<string, number>([["eth0", ip("198.51.100.1")]]);
  addrType(addr: number): AddrTypeName {
    if (this.local.has(addr)) return "LOCAL";
    if (this.broadcast.has(addr) || addr === 0xffffffff) return "BROADCAST";
    if (addr >>> 28 === 0xe) return "MULTICAST";
    return "UNICAST";
  }
  ifaceAddress(dev: string): number | undefined {
    return this.ifaces.get(dev);
  }
  lookupSocket(q: SocketQuery, kind: "established" | "listener"): SocketRef | undefined {
    for (const s of this.sockets) {
      if (s.kind !== kind || s.sk.protocol !== q.protocol) continue;
      const m = s.q;
      if (m.daddr !== undefined && m.daddr !== q.daddr && !(kind === "listener" && m.daddr === 0)) continue;
      if (m.dport !== undefined && m.dport !== q.dport) continue;
      if (m.saddr !== undefined && m.saddr !== q.saddr) continue;
      if (m.sport !== undefined && m.sport !== q.sport) continue;
      return s.sk;
    }
    return undefined;
  }
  ipset(name: string): IpSet | undefined {
    return this.sets.get(name);
  }
  randomU32(): number {
    return this.randoms.shift() ?? 0;
  }
  routeMtu(dst: number): number | undefined {
    return this.mtu.get(dst) ?? 1500;
  }
  sourceAddressFor(): number | undefined {
    return ip("198.51.100.1");
  }
  setCtMark(ct: NfConn, mark: number): void {
    this.marks.push([ct, mark]);
    ct.mark = mark;
  }
  readonly closing: NfConn[] = [];
  setCtClosing(ct: NfConn): void {
    this.closing.push(ct);
  }
  nfacctAdd(name: string, bytes: number): void {
    this.acct.set(name, (this.acct.get(name) ?? 0) + bytes);
  }
}

export interface Recorded {
  emitted: { pkt: Packet; why: string }[];
  logs: string[];
}

export function par(
  host: HostServices | undefined,
  over: {
    hook?: Hook;
    table?: TableName;
    inIface?: string;
    outIface?: string;
    now?: number;
    ruleState?: Map<object, unknown>;
  } = {},
): XtActionParam & { rec: Recorded } {
  const rec: Recorded = { emitted: [], logs: [] };
  const effects: DatapathEffects = {
    emitLocal: (pkt, why) => rec.emitted.push({ pkt, why }),
    log: (line) => rec.logs.push(line),
  };
  return {
    table: over.table ?? "filter",
    hook: over.hook ?? "INPUT",
    chain: over.hook ?? "INPUT",
    inIface: over.inIface,
    outIface: over.outIface,
    now: over.now ?? 0,
    hotdrop: false,
    effects,
    host,
    ruleState: over.ruleState ?? new Map(),
    rec,
  };
}

/** Parses option text such as `--dport 80 ! --sport 1:1024` with the descriptor's own parser. */
export function parseOpts<O>(d: Descriptor, text: string, proto?: number): O {
  const words = text.split(/\s+/).filter(Boolean);
  const opts: XtOption[] = [];
  let invert = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === "!") {
      invert = true;
      continue;
    }
    const spec = findOption(d, w.replace(/^--/, ""));
    if (!spec) throw new Error(`${d.name}: unknown option ${w}`);
    const args = words.slice(i + 1, i + 1 + spec.nargs);
    i += spec.nargs;
    opts.push({ name: spec.name, args, invert, column: 1 });
    invert = false;
  }
  const ctx: XtParseContext = {
    table: "filter",
    proto: proto === undefined ? undefined : { proto, invert: false },
    env: DEFAULT_ENVIRONMENT,
    fail: (message) => ({ code: "TEST", message }),
  } as XtParseContext;
  const o = d.parse(opts, ctx);
  if (isDiagnostic(o)) throw new Error(`${d.name}: ${o.message}`);
  return o as O;
}

/** A real conntrack entry for `pkt` (NEW, confirmed), and the ctinfo of a reply. */
export function conntrackFor(pkt: Packet, now = 0): { table: Conntrack; ct: NfConn; ctinfo: CtInfo } {
  const table = new Conntrack();
  const r = table.in(pkt, 0, now);
  if (!r.ct) throw new Error(`no conntrack: ${r.state}`);
  const c = table.confirm(r.ct, now, r.ctinfo);
  return { table, ct: c.ct!, ctinfo: r.ctinfo! };
}
