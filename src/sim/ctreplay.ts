/**
 * Conntrack-only replay: packets through the conntrack of one host that has no rules, hook by hook as the
 * kernel calls conntrack.
 *
 * Mirrors the IPv4 receive path of Linux 6.18 as far as conntrack sees it: ip_rcv -> NF_INET_PRE_ROUTING
 * (nf_conntrack_in, ipv4_conntrack_in, net/netfilter/nf_conntrack_proto.c) -> ip_rcv_finish/ip_route_input_slow
 * (net/ipv4/route.c: a local destination gives RTN_LOCAL -> ip_local_deliver -> NF_INET_LOCAL_IN; otherwise
 * IN_DEV_FORWARD decides between ip_forward -> NF_INET_FORWARD -> NF_INET_POST_ROUTING and `no_route`, whose
 * ip_error drops the packet silently when forwarding is off) -> nf_confirm at LOCAL_IN or POST_ROUTING
 * (the last hook, priority NF_IP_PRI_CONNTRACK_CONFIRM). Packets a capture shows leaving the host ("Out") whose
 * source is one of the host's addresses take the local output path: NF_INET_LOCAL_OUT (nf_conntrack_in) ->
 * NF_INET_POST_ROUTING (nf_confirm).
 *
 * Time comes from the packets (tsSec + tsNsec / 1e9); expired entries are reaped (`advance`) before each packet.
 *
 * Leaves out on purpose: iptables/NAT (this is the rule-less host), policy routing (`ip rule`: only table main
 * is consulted), rp_filter and martian checks, broadcast/multicast delivery, fragment reassembly, ICMP errors the
 * host itself would send, and the egress ("Out") copies of forwarded packets that `tcpdump -i any` shows: the
 * kernel's conntrack saw those packets at ingress already, so they are reported as not seen.
 */
import type { Host, Route } from "../host/types";
import { RT_TABLE_MAIN } from "../host/types";
import { connectedRoutes } from "../host/hostfile";
import { InputError } from "../errors";
import { formatIpv4, inPrefix } from "../wire/addr";
import type { Packet } from "../wire/packet";
import { Conntrack } from "../conntrack/core";
import type { CtEvent, CtLookupResult, CtState, NfConn } from "../conntrack/core";
import type { CtDir, CtInfo, CtReason, NfHook } from "../conntrack/types";
import {
  CTINFO_NAMES,
  IPS_DYING,
  IP_CT_DIR_ORIGINAL,
  IP_CT_NEW,
  NF_DROP,
  NF_INET_FORWARD,
  NF_INET_LOCAL_IN,
  NF_INET_LOCAL_OUT,
  NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING,
} from "../conntrack/types";
import { DEFAULT_KERNEL, findKernelProfile, KERNEL_PROFILES } from "../conntrack/profile";
import { SYSCTL_PREFIX, setSysctl } from "../conntrack/sysctl";
import type { NfConntrackSysctls } from "../conntrack/sysctl";
import { formatConntrackEntry, formatConntrackEvent } from "../conntrack/show";
import type { TcpL4Result } from "../conntrack/proto_tcp";

export type CtReplayDirName = "ORIGINAL" | "REPLY";

/** Where the routing decision sent the packet. */
export type CtReplayPath = "local" | "forward" | "output" | "dropped" | "not-seen";

export interface CtReplayTcpTransition {
  readonly oldState: string;
  readonly newState: string;
  /** `tcp_conntracks[ORIGINAL][syn][NONE]`, when the table decided. */
  readonly cell?: string;
}

/** What happened to one packet. */
export interface CtReplayStep {
  /** 0-based position in the input. */
  readonly index: number;
  readonly origin?: string;
  readonly packet: Packet;
  /** Packet time in seconds. */
  readonly time: number;
  /** The hooks conntrack ran at, in order ("PRE_ROUTING", "LOCAL_IN", ...). */
  readonly hooks: readonly string[];
  /** ctstate as iptables' conntrack match would see it; NOT_SEEN for egress copies conntrack never saw. */
  readonly state: CtState | "NOT_SEEN";
  /** IP_CT_NEW, IP_CT_ESTABLISHED_REPLY ...; absent for INVALID. */
  readonly ctinfo?: string;
  readonly dir?: CtReplayDirName;
  /** Why INVALID (or why dropped, or why a TCP packet was ignored): kernel text, function and table cell. */
  readonly reason?: CtReason;
  /** TCP state transition made (or refused) by nf_conntrack_tcp_packet. */
  readonly tcp?: CtReplayTcpTransition;
  readonly path: CtReplayPath;
  /** "forwarded (out eth0)", "local", "sent", "dropped: ...", "not seen: ...". */
  readonly fate: string;
  /** The packet's connection after the packet, as `conntrack -L` and `conntrack -L -o extended` print it. */
  readonly entry?: { readonly line: string; readonly extended: string; readonly id: number };
  /** The whole table after the packet (`conntrack -L` lines), when `snapshots` is set. */
  readonly table?: readonly string[];
  /** Events delivered while handling the packet (reaping before it included). */
  readonly events: readonly CtEvent[];
}

export interface CtReplayOptions {
  /** The host; default: a router with no addresses that forwards everything. */
  readonly host?: Host;
  /** Kernel profile id (default DEFAULT_KERNEL). */
  readonly kernel?: string;
  /**
   * Sysctl overrides on top of the host file's `sysctl:` map, by full name (`net.netfilter.nf_conntrack_max`,
   * `net.ipv4.ip_forward`) or by bare conntrack name (`nf_conntrack_tcp_loose`).
   */
  readonly sysctl?: Readonly<Record<string, string | number>>;
  /** Record the full table after each packet in `step.table`. */
  readonly snapshots?: boolean;
  /** Seeded generator for connection ids (default ids 1, 2, 3 ...). */
  readonly rng?: () => number;
}

const HOOK_NAMES = ["PRE_ROUTING", "LOCAL_IN", "FORWARD", "LOCAL_OUT", "POST_ROUTING"] as const;
const DIR_NAMES: readonly CtReplayDirName[] = ["ORIGINAL", "REPLY"];

/** Names of sysctls outside net.netfilter that the replay reads. */
const FORWARD_SYSCTLS = ["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"];

/** The default host: no addresses, forwarding on. */
export const CT_REPLAY_ROUTER: Host = {
  hostname: "router",
  interfaces: [],
  routes: [],
  rules: [],
  sysctl: { "net.ipv4.ip_forward": 1 },
  sockets: [],
};

export class CtReplay {
  readonly conntrack: Conntrack;
  readonly host: Host;
  readonly kernel: string;
  /** net.ipv4.ip_forward. */
  readonly forwarding: boolean;
  /** Sysctls given that the replay does not model (e.g. rp_filter), by full name. */
  readonly ignoredSysctls: readonly string[];
  private readonly local: readonly number[];
  private readonly routes: readonly Route[];
  private readonly defaultHost: boolean;
  private readonly snapshots: boolean;
  private index = 0;

  constructor(opts: CtReplayOptions = {}) {
    this.kernel = opts.kernel ?? DEFAULT_KERNEL;
    if (!findKernelProfile(this.kernel)) {
      throw new InputError({
        code: "KERNEL_UNKNOWN",
        message: `unknown kernel profile "${this.kernel}" (known: ${KERNEL_PROFILES.map((p) => p.id).join(", ")})`,
      });
    }
    this.defaultHost = opts.host === undefined;
    this.host = opts.host ?? CT_REPLAY_ROUTER;
    this.snapshots = opts.snapshots ?? false;
    const all: Record<string, string | number> = { ...this.host.sysctl };
    for (const [k, v] of Object.entries(opts.sysctl ?? {})) {
      const full = k.startsWith("nf_conntrack_") ? SYSCTL_PREFIX + k : k;
      all[full] = v;
    }
    const ct: Partial<NfConntrackSysctls> = {};
    const probe = new Conntrack({ kernel: this.kernel }).sysctl;
    const ignored: string[] = [];
    let forwarding = 0;
    for (const [name, value] of Object.entries(all)) {
      if (name.startsWith(SYSCTL_PREFIX)) {
        setSysctl(probe, name, value, this.kernel);
        const short = name.slice(SYSCTL_PREFIX.length) as keyof NfConntrackSysctls;
        ct[short] = probe[short];
      } else if (FORWARD_SYSCTLS.includes(name)) {
        const v = String(value).trim();
        if (v !== "0" && v !== "1")
          throw new InputError({ code: "SYSCTL_VALUE", message: `${name}: expected 0 or 1, got "${value}"` });
        forwarding = Number(v);
      } else ignored.push(name);
    }
    this.forwarding = forwarding === 1;
    this.ignoredSysctls = ignored;
    this.conntrack = new Conntrack({
      kernel: this.kernel,
      sysctl: ct,
      recordEvents: true,
      ...(opts.rng ? { rng: opts.rng } : {}),
    });
    const local: number[] = [];
    for (const i of this.host.interfaces) for (const a of i.addresses) local.push(a.addr >>> 0);
    this.local = local;
    this.routes = [
      ...connectedRoutes(this.host).filter((r) => r.table === RT_TABLE_MAIN),
      ...this.host.routes.filter((r) => r.table === RT_TABLE_MAIN),
    ];
  }

  /** Whether `addr` is one of the host's own addresses (RTN_LOCAL), loopback included. */
  isLocal(addr: number): boolean {
    return (addr >>> 24 === 127 && !this.defaultHost) || this.local.includes(addr >>> 0);
  }

  /** Longest-prefix match in table main (lowest metric on ties); undefined when nothing matches. */
  route(dst: number): Route | undefined {
    let best: Route | undefined;
    for (const r of this.routes) {
      if (!inPrefix(dst, r.prefix)) continue;
      if (
        !best ||
        r.prefix.len > best.prefix.len ||
        (r.prefix.len === best.prefix.len && (r.metric ?? 0) < (best.metric ?? 0))
      )
        best = r;
    }
    return best;
  }

  /** Replays one packet. */
  step(pkt: Packet): CtReplayStep {
    const index = this.index++;
    const now = pkt.tsSec + pkt.tsNsec / 1e9;
    const table = this.conntrack;
    table.advance(now);
    const base = { index, origin: pkt.origin, packet: pkt, time: now };

    if (pkt.direction === "Out" && !this.isLocal(pkt.ip.src)) {
      return {
        ...base,
        hooks: [],
        state: "NOT_SEEN",
        path: "not-seen",
        fate: "not seen: egress copy of a forwarded packet (conntrack ran when it arrived)",
        events: table.takeEvents(),
      };
    }
    const output = pkt.direction === "Out";
    const firstHook: NfHook = output ? NF_INET_LOCAL_OUT : NF_INET_PRE_ROUTING;
    const hooks: string[] = [HOOK_NAMES[firstHook]];
    const res = table.in(pkt, firstHook, now);
    const common = this.describe(res);

    if (res.verdict === NF_DROP) {
      if (res.ct && !res.ct.confirmed) table.discard(res.ct);
      return {
        ...base,
        ...common,
        hooks,
        path: "dropped",
        fate: `dropped: ${res.reason ? `${res.reason.fn}: ${res.reason.text}` : "conntrack verdict NF_DROP"}`,
        events: table.takeEvents(),
      };
    }

    // Routing decision (ip_route_input_slow), or the local output path.
    let path: CtReplayPath;
    let fate: string;
    let confirmHook: NfHook | undefined;
    if (output) {
      path = "output";
      fate = "sent";
      confirmHook = NF_INET_POST_ROUTING;
    } else if (this.isLocal(pkt.ip.dst)) {
      path = "local";
      fate = "local";
      confirmHook = NF_INET_LOCAL_IN;
    } else if (!this.forwarding) {
      path = "dropped";
      fate = "dropped: not local and net.ipv4.ip_forward=0 (ip_route_input_slow -> ip_error)";
    } else {
      const r = this.defaultHost ? undefined : this.route(pkt.ip.dst);
      if (!this.defaultHost && (!r || r.type !== "unicast")) {
        path = "dropped";
        fate = r
          ? `dropped: route type ${r.type} (${r.text})`
          : `dropped: no route to ${formatIpv4(pkt.ip.dst)} (ip_route_input_slow: -ENETUNREACH)`;
      } else {
        path = "forward";
        const dev = r?.dev !== undefined ? ` out ${r.dev}` : "";
        const via = r?.via !== undefined ? ` via ${formatIpv4(r.via)}` : "";
        fate = dev || via ? `forwarded (${(dev + via).trim()})` : "forwarded";
        hooks.push(HOOK_NAMES[NF_INET_FORWARD]);
        confirmHook = NF_INET_POST_ROUTING;
      }
    }

    let ct: NfConn | undefined = res.ct;
    if (confirmHook === undefined) {
      if (ct && !ct.confirmed) table.discard(ct);
      ct = undefined;
    } else {
      hooks.push(HOOK_NAMES[confirmHook]);
      if (ct) {
        // nf_confirm(), at the last hook.
        const c = table.confirm(ct, now, (res.ctinfo ?? IP_CT_NEW) as CtInfo);
        if (c.verdict === NF_DROP) {
          path = "dropped";
          fate = `dropped: ${c.reason ? `${c.reason.fn}: ${c.reason.text}` : "nf_confirm verdict NF_DROP"}`;
          ct = undefined;
        } else ct = c.ct;
      }
    }
    const entry =
      ct && ct.confirmed && !(ct.status & IPS_DYING)
        ? {
            line: formatConntrackEntry(ct, now),
            extended: formatConntrackEntry(ct, now, { extended: true }),
            id: ct.id,
          }
        : undefined;
    return {
      ...base,
      ...common,
      hooks,
      path,
      fate,
      ...(entry ? { entry } : {}),
      ...(this.snapshots ? { table: this.list(now) } : {}),
      events: table.takeEvents(),
    };
  }

  /** The table as `conntrack -L` (or `-o extended`) prints it at time `now`. */
  list(now: number, opts: { extended?: boolean } = {}): string[] {
    return this.conntrack.list(now).map((ct) => formatConntrackEntry(ct, now, opts));
  }

  private describe(res: CtLookupResult): Pick<CtReplayStep, "state" | "ctinfo" | "dir" | "reason" | "tcp"> {
    const out: {
      state: CtState;
      ctinfo?: string;
      dir?: CtReplayDirName;
      reason?: CtReason;
      tcp?: CtReplayTcpTransition;
    } = { state: res.state };
    if (res.ct && res.ctinfo !== undefined) out.ctinfo = CTINFO_NAMES[res.ctinfo];
    else if (res.state === "UNTRACKED") out.ctinfo = CTINFO_NAMES[7];
    if (res.dir !== undefined) out.dir = DIR_NAMES[res.dir];
    const l4 = res.l4 as TcpL4Result | undefined;
    const reason = res.reason ?? l4?.reason;
    if (reason) out.reason = reason;
    if (l4?.oldState !== undefined && l4.newState !== undefined) {
      const cell = reason?.cell;
      const dir: CtDir = (cell?.dir ?? res.dir ?? IP_CT_DIR_ORIGINAL) as CtDir;
      const index = cell?.index ?? l4.index;
      const old = cell?.oldState ?? l4.oldState;
      out.tcp = {
        oldState: l4.oldState,
        newState: l4.newState,
        ...(index ? { cell: `tcp_conntracks[${DIR_NAMES[dir]}][${index}][${old}]` } : {}),
      };
    }
    return out;
  }
}

/** Replays a list of packets (see CtReplay.step). */
export function replayConntrack(packets: Iterable<Packet>, opts: CtReplayOptions = {}): CtReplayStep[] {
  const r = new CtReplay(opts);
  const out: CtReplayStep[] = [];
  for (const p of packets) out.push(r.step(p));
  return out;
}

/** `conntrack -E` lines of a step's events. */
export function ctReplayEventLines(step: CtReplayStep, opts: { extended?: boolean } = {}): string[] {
  return step.events.map((e) => formatConntrackEvent(e, opts));
}
