/**
 * The emulated host's IPv4 datapath: packets in, TRACE hits, conntrack/NAT decisions, generated packets and
 * egress out — one Linux host with its iptables tables, conntrack, NAT, routing and local stack.
 *
 * Mirrors Linux 6.18:
 *   - net/ipv4/ip_input.c `ip_rcv` -> NF_INET_PRE_ROUTING -> `ip_rcv_finish` (routing: net/ipv4/route.c
 *     `ip_route_input_slow`: RTN_LOCAL -> local input; forwarding off -> `no_route`; fib errors -> `ip_error`,
 *     which sends ICMP net/host unreachable or packet-filtered when forwarding is on and drops silently
 *     otherwise; a source that is one of our addresses is a martian) -> `ip_local_deliver` -> NF_INET_LOCAL_IN ->
 *     transport (`tcp_v4_rcv`: no socket -> `tcp_v4_send_reset`; `__udp4_lib_rcv`: no socket -> ICMP port
 *     unreachable; `icmp_echo` answers echo requests; `ip_protocol_deliver_rcu`: unknown protocol -> ICMP
 *     protocol unreachable);
 *   - net/ipv4/ip_forward.c `ip_forward`: TTL <= 1 -> ICMP time exceeded; `ip_decrease_ttl`; an ICMP redirect
 *     when the packet leaves by the interface it came in on and the source is on that link (`__mkroute_input`
 *     sets IPSKB_DOREDIRECT; `ip_rt_send_redirect` with its peer rate limit: the first one, then after
 *     ip_rt_redirect_load << n_redirects, at most ip_rt_redirect_number) -> NF_INET_FORWARD -> `ip_output` ->
 *     NF_INET_POST_ROUTING (in = the input device) -> the wire;
 *   - net/ipv4/ip_output.c `__ip_local_out` -> NF_INET_LOCAL_OUT (re-route after mangle when mark/addresses/tos
 *     changed, `ipt_mangle_out` + `ip_route_me_harder`; after DNAT, `nf_nat_ipv4_local_fn`) -> POST_ROUTING;
 *     a packet routed to a local address loops back through `lo` (PRE_ROUTING with its conntrack attached);
 *   - the hook order of ./hooks.ts; conntrack (src/conntrack `Conntrack.in/confirm/discard`), NAT
 *     (src/nat `nfNatIpv4Fn` running the nat table's chain for NEW/RELATED connections), and `ipt_do_table`
 *     (src/netfilter/ip_tables.ts) for the tables;
 *   - `nf_ct_attach`: ICMP errors and REJECT's packets carry the conntrack of the packet they answer, as
 *     RELATED(_REPLY) (net/ipv4/icmp.c icmp_glue_bits, nf_reject_ipv4.c), so conntrack does not look them up.
 *
 * Table presence: with the legacy backend a table's built-in chain runs whenever the rule set has that table
 * (iptables-legacy registers every built-in hook of a loaded table); with `nft` exactly the base chains
 * iptables-nft would have created run: those the input declared (`:CHAIN POLICY`) or named in `-A`/`-I`/`-P`/`-F`
 * (`nftChainExists`, src/netfilter/ruleset.ts; iptables/nft.c `nft_xt_builtin_init`). The nat hooks exist only
 * when a nat table is loaded (with `nft`: when it has a base chain; nf_nat_register_fn registers every nat hook
 * for the first one), so without one no null bindings are made.
 *
 * TRACE: when the rule set has a TRACE target, only packets it marks are traced (skb->nf_trace); otherwise, or
 * with `traceAll`, every packet is, generated ones included.
 *
 * Leaves out on purpose: IPv6, fragments/reassembly and PMTU (no frag-needed), rp_filter, ARP (neighbours are
 * given), the ip_error and icmp rate limits (only the redirect limit is modelled), TCP endpoint state (a listening
 * socket is recorded as accepting; no SYN-ACK is generated), broadcast forwarding, multicast routing, VRFs,
 * xfrm, bridge netfilter, the early-demux socket assignment.
 */
import type { L4Header, LinkHeader, Packet } from "../wire/packet";
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_REDIRECT,
  ICMP_TIME_EXCEEDED,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_RST,
  TCP_SYN,
  l4ProtoName,
} from "../wire/packet";
import { formatIpv4 } from "../wire/addr";
import type { Host, ListeningSocket } from "../host/types";
import { Fib } from "../host/route";
import type { AddrType, FibResult } from "../host/route";
import { InputError } from "../errors";
import { Conntrack, ctinfoState } from "../conntrack/core";
import type { CtEvent, CtInOptions, CtLookupResult, NfConn } from "../conntrack/core";
import type { CtInfo, NfHook } from "../conntrack/types";
import {
  CTINFO_NAMES,
  IP_CT_DIR_ORIGINAL,
  IP_CT_ESTABLISHED,
  IP_CT_ESTABLISHED_REPLY,
  IP_CT_IS_REPLY,
  IP_CT_RELATED,
  IP_CT_RELATED_REPLY,
  IP_CT_UNTRACKED,
  NF_ACCEPT,
  NF_DROP,
} from "../conntrack/types";
import type { NfConntrackSysctls } from "../conntrack/sysctl";
import { SYSCTL_PREFIX, setSysctl } from "../conntrack/sysctl";
import { DEFAULT_KERNEL, findKernelProfile, kernelAtLeast, KERNEL_PROFILES } from "../conntrack/profile";
import { formatConntrackEntry } from "../conntrack/show";
import type { TcpL4Result } from "../conntrack/proto_tcp";
import type { Hook, Ruleset, TableName } from "../netfilter/ruleset";
import { HOOKS, TABLE_NAMES, nftChainExists } from "../netfilter/ruleset";
import type { Registry } from "../netfilter/registry";
import { defaultRegistry } from "../netfilter/xt/index";
import type {
  CompiledTable,
  CompileProblem,
  DoTableContext,
  DoTableResult,
  TracePoint,
} from "../netfilter/ip_tables";
import { compileTable, hookChain, iptDoTable } from "../netfilter/ip_tables";
import type { Skb, SocketRef } from "../netfilter/skb";
import { skbOwner } from "../netfilter/skb";
import type { HostServices, SocketQuery } from "../netfilter/host_services";
import type { AddrTypeName } from "../netfilter/xt/xt_addrtype";
import type { IpSet } from "../ipset/ipset";
import type { NatTargetHost } from "../netfilter/xt/xt_nat";
import { NatState, nfNatIpv4Fn } from "../nat/nf_nat_core";
import type { NatChainRunner, NatHookResult } from "../nat/nf_nat_core";
import type { PacketWritable } from "../nat/nf_nat_proto";
import type { NatIface } from "../nat/nf_nat_masquerade";
import { csumReplace2 } from "../nat/nf_nat_proto";
import { Prng } from "../util/prng";
import type { CtSummary, Fate, NatStep, PacketJourney, PacketReport, TraceHit } from "../trace/events";
import { CtSummaryRecord, NatStepRecord, TraceHitRecord } from "../trace/records";
import { icmpSend } from "../net/icmp_send";
import { tcpV4SendReset } from "../net/tcp_reset";
import { HOOK_ORDER, hookNum } from "./hooks";
import type { HookEntry } from "./hooks";
import type { Mutable } from "../util/types";

export type Backend = "legacy" | "nft";

export interface HostSimOptions {
  readonly host: Host;
  readonly ruleset: Ruleset;
  readonly registry?: Registry;
  /** Kernel profile id (default DEFAULT_KERNEL). */
  readonly kernel?: string;
  readonly backend?: Backend;
  /** Trace every packet even when the rule set has TRACE rules. */
  readonly traceAll?: boolean;
  /** Sysctl overrides on top of the host file's, by full name (bare `nf_conntrack_*` names allowed). */
  readonly sysctl?: Readonly<Record<string, string | number>>;
  /** Seed of the run's generator (NAT port offsets, IP ids, statistic). */
  readonly seed?: number | string;
  /** MAC of the neighbour `addr` on `iface` (egress Ethernet destination); default 00:00:00:00:00:00. */
  readonly neighbourMac?: (iface: string, addr: number) => string | undefined;
  /**
   * The caller reads only fates and counts (`ctsim trace --quiet`): every decision is made as without it (the
   * same fates, egress packets, conntrack table and counters), but nothing is recorded for reading later.
   * TRACE hits are only counted (`traceHits`; `report.trace` stays empty), conntrack events are not recorded
   * (`report.events` stays empty), and journeys carry their input, fate and egress packet but no per-step
   * detail (hook labels, NAT steps, log lines, conntrack summary, a forwarded packet's route text). A forwarded
   * packet is copied once and that working copy rewritten in place (TTL, NAT, egress) instead of at every step.
   * The report `receive` returns, and the input packet's journey in it, are reused by the next `receive`: read
   * them before the next call.
   */
  readonly quiet?: boolean;
  /** ipsets by name (`-m set`). */
  readonly ipsets?: ReadonlyMap<string, IpSet>;
  /**
   * The host's socket layer for TCP (src/sim/net/tcp_endpoint.ts): called for every TCP segment delivered
   * locally after INPUT; returns what it did and its replies (sent through OUTPUT), or undefined when no socket
   * takes the segment (then tcp_v4_send_reset as without a socket layer).
   */
  readonly tcpRcv?: (
    pkt: Packet,
    now: number,
    /** skb->sk as TPROXY assigned it (tcp_v4_rcv's skb_steal_sock), if any. */
    sk?: SocketRef,
  ) => { readonly to: string; readonly replies: readonly { packet: Packet; cause: string }[] } | undefined;
  /**
   * The socket layer's own lookup (src/sim/net/tcp_endpoint.ts `TcpStack.lookup`), asked first by
   * `lookupSocket` (TPROXY, `-m socket`): connected sockets and listeners opened at run time.
   */
  readonly socketLookup?: (q: SocketQuery, kind: "established" | "listener") => SocketRef | undefined;
}

/** Per-packet state the datapath carries besides the Skb. */
export interface Flight {
  readonly skb: Skb;
  readonly journey: PacketJourney;
  /** The frame header the packet came in with (MAC= of the log line). */
  link?: LinkHeader;
  /** This packet created its (still unconfirmed) conntrack: a drop discards it. */
  ownsCt: boolean;
  /** The route chosen for it. */
  rt?: FibResult;
  /** Forwarded (ip_forward) rather than locally generated or delivered. */
  forwarded: boolean;
  /**
   * Quiet runs only: the packet value (its object and IP header) this flight made for itself and nothing else
   * references, which TTL decrement, NAT and egress then rewrite in place instead of copying; `ownL4` is its
   * layer-4 header when that is the flight's own too. Anything that keeps the packet (an emitted ICMP error
   * quoting it) gives the ownership up.
   */
  own: Packet | undefined;
  ownL4: L4Header | undefined;
}

const ZERO_MAC = "00:00:00:00:00:00";
/** Options of a conntrack.in or confirm call whose result is read at once (CtInOptions/CtConfirmOptions.reuseResult). */
const REUSE_CT_RESULT: CtInOptions = Object.freeze({ reuseResult: true });
/** One frozen empty list: the lists quiet runs do not record, and a report's lists before their first entry. */
const SHARED_EMPTY: never[] = Object.freeze([]) as never[];

/**
 * The objects of a packet in flight, with every field the datapath may set present from the start (undefined
 * until set): each kind then keeps one hidden class with all properties in-object instead of growing a property
 * store as they are assigned. Quiet runs make one set for all input packets and reset it (quietInputFlight).
 */
export function newSkb(pkt: Packet, inIface: string | undefined, local: boolean, nfTrace: boolean): Skb {
  return {
    pkt,
    mark: 0,
    nfTrace,
    ct: undefined,
    ctinfo: undefined,
    untracked: false,
    ctReason: undefined,
    ctTemplate: undefined,
    sk: undefined,
    priority: 0,
    inIface,
    outIface: undefined,
    local,
    owner: undefined,
    pktType: "host",
  };
}

/**
 * The host file's listener for a query, as `__inet_lookup_listener` picks it: a socket bound to the packet's
 * destination address first, else one bound to 0.0.0.0 (the lhash2 lookup by (daddr, port), then by
 * (INADDR_ANY, port)); file order among equals. `owner`: the uid/gid of the process holding it, when known.
 */
export function hostListener(
  host: Host,
  q: SocketQuery,
  owner?: { readonly uid: number; readonly gid: number },
): SocketRef | undefined {
  let s: ListeningSocket | undefined;
  for (const x of host.sockets) {
    if (x.protocol !== q.protocol || x.port !== q.dport) continue;
    if (x.address === q.daddr) {
      s = x;
      break;
    }
    if (x.address === 0) s ??= x;
  }
  if (!s) return undefined;
  const ref = {
    protocol: s.protocol,
    address: s.address,
    port: s.port,
    transparent: s.transparent,
    listening: true,
  };
  return owner ? { ...ref, uid: owner.uid, gid: owner.gid } : ref;
}

/**
 * A reused skb made as newSkb makes a fresh one (quiet runs: no allocation per packet). Every field of newSkb's
 * literal is set here; test/sim/host_reset.test.ts fails when one is missed.
 */
export function resetSkb(
  skb: Mutable<Skb>,
  pkt: Packet,
  inIface: string | undefined,
  local: boolean,
  nfTrace: boolean,
): void {
  skb.pkt = pkt;
  skb.mark = 0;
  skb.nfTrace = nfTrace;
  skb.ct = undefined;
  skb.ctinfo = undefined;
  skb.untracked = false;
  skb.ctReason = undefined;
  skb.ctTemplate = undefined;
  skb.sk = undefined;
  skb.priority = 0;
  skb.inIface = inIface;
  skb.outIface = undefined;
  skb.local = local;
  skb.owner = undefined;
  skb.pktType = "host";
}

/** An input packet's journey (see newSkb); quiet runs record no per-step lists. */
export function newInputJourney(
  id: number,
  pkt: Packet,
  inIface: string | undefined,
  local: boolean,
  quiet: boolean,
): Mutable<PacketJourney> {
  return {
    id,
    input: pkt,
    inIface,
    local,
    hooks: quiet ? SHARED_EMPTY : [],
    ct: undefined,
    nat: quiet ? SHARED_EMPTY : [],
    route: undefined,
    fate: undefined,
    out: undefined,
    log: quiet ? SHARED_EMPTY : [],
  };
}

/** A reused input journey made as newInputJourney makes a fresh one (see resetSkb). */
export function resetInputJourney(
  j: Mutable<PacketJourney>,
  id: number,
  pkt: Packet,
  inIface: string | undefined,
  local: boolean,
  quiet: boolean,
): void {
  j.id = id;
  j.input = pkt;
  j.inIface = inIface;
  j.local = local;
  j.hooks = quiet ? SHARED_EMPTY : [];
  j.ct = undefined;
  j.nat = quiet ? SHARED_EMPTY : [];
  j.route = undefined;
  j.fate = undefined;
  j.out = undefined;
  j.log = quiet ? SHARED_EMPTY : [];
}

export function newFlightOf(skb: Skb, journey: PacketJourney): Flight {
  return {
    skb,
    journey,
    link: undefined,
    ownsCt: false,
    rt: undefined,
    forwarded: false,
    own: undefined,
    ownL4: undefined,
  };
}

/** A reused flight made as newFlightOf makes a fresh one for its own skb and journey (see resetSkb). */
export function resetFlight(st: Flight): void {
  st.link = undefined;
  st.ownsCt = false;
  st.rt = undefined;
  st.forwarded = false;
  st.own = undefined;
  st.ownL4 = undefined;
}

/**
 * A HOOK_ORDER entry of HostSim's plan, in one object shape for every kind (so the per-packet dispatch reads
 * `kind` from a single hidden class): table entries carry their compiled table and their journey labels.
 */
interface PlannedEntry {
  readonly kind: HookEntry["kind"];
  /** `kind` as a number for the dispatch switch: 0 table, 1 conntrack, 2 nat, 3 confirm. */
  readonly op: number;
  readonly table: TableName | undefined;
  readonly compiled: CompiledTable | undefined;
  readonly labels: Record<DoTableResult["verdict"], string> | undefined;
}

const PLAN_OPS: Readonly<Record<HookEntry["kind"], number>> = { table: 0, conntrack: 1, nat: 2, confirm: 3 };

/**
 * State of one nat hook call (HostSim.natHook) and the NatHookState it hands to nf_nat_ipv4_fn: one per nesting
 * depth (a target may emit a packet that runs a nat hook of its own), reused by every call at that depth.
 */
/** nf_nat_ipv4_fn's reusable state for one nat hook call, with its result slot. */
function newNatHookState(runChains: NatChainRunner): NatCall["state"] {
  return {
    hook: 0,
    out: undefined,
    runChains,
    writable: 0,
    result: { verdict: 0, pkt: undefined as unknown as Packet, reason: undefined, rewritten: false },
  };
}

interface NatCall {
  st: Flight | undefined;
  hook: Hook;
  table: CompiledTable | undefined;
  ran: boolean;
  decided: TracePoint | undefined;
  readonly state: {
    hook: NfHook;
    out: string | undefined;
    runChains: NatChainRunner;
    writable: PacketWritable;
    /** nf_nat_ipv4_fn writes its result here (read at once, before this depth's next call). */
    result: { verdict: number; pkt: Packet; reason: string | undefined; rewritten: boolean | undefined };
  };
}

/** PacketJourney.hooks labels (`raw:PREROUTING ACCEPT`, `conntrack PREROUTING`), built once, not per packet. */
const HOOK_LABELS = Object.fromEntries(
  TABLE_NAMES.map((t) => [
    t,
    Object.fromEntries(
      HOOKS.map((h) => [
        h,
        {
          ACCEPT: `${t}:${h} ACCEPT`,
          DROP: `${t}:${h} DROP`,
          STOLEN: `${t}:${h} STOLEN`,
          QUEUE: `${t}:${h} QUEUE`,
        },
      ]),
    ),
  ]),
) as Record<TableName, Record<Hook, Record<DoTableResult["verdict"], string>>>;
/** The step of a nat hook that neither ran the chains nor changed the packet: immutable, one per hook. */
const NONE_STEPS = Object.fromEntries(
  HOOKS.map((h) => [
    h,
    new NatStepRecord(
      h,
      h === "POSTROUTING" || h === "INPUT" ? "SRC" : "DST",
      "none",
      undefined,
      undefined,
      undefined,
    ),
  ]),
) as Record<Hook, NatStepRecord>;
const CT_LABELS = Object.fromEntries(HOOKS.map((h) => [h, `conntrack ${h}`])) as Record<Hook, string>;
const MAX_DEPTH = 6;
/** net/ipv4/route.c: ip_rt_redirect_number, ip_rt_redirect_load (HZ/50), ip_rt_redirect_silence. */
const REDIRECT_NUMBER = 9;
const REDIRECT_LOAD = 0.02;
const REDIRECT_SILENCE = REDIRECT_LOAD * (1 << (REDIRECT_NUMBER + 1));

const ICMP_NET_UNREACH = 0;
const ICMP_HOST_UNREACH = 1;
const ICMP_PROT_UNREACH = 2;
const ICMP_PORT_UNREACH = 3;
const ICMP_PKT_FILTERED = 13;
const ICMP_REDIR_HOST = 1;
const ICMP_EXC_TTL = 0;

/** `a.b.c.d:port > e.f.g.h:port` (ports for TCP/UDP, id for ICMP queries). */
export function flowText(p: Packet): string {
  const l4 = p.l4;
  if (l4.kind === "tcp" || l4.kind === "udp")
    return `${formatIpv4(p.ip.src)}:${l4.srcPort} > ${formatIpv4(p.ip.dst)}:${l4.dstPort}`;
  return `${formatIpv4(p.ip.src)} > ${formatIpv4(p.ip.dst)}`;
}

function protoName(p: Packet): string {
  return l4ProtoName(p.ip.protocol) ?? `proto ${p.ip.protocol}`;
}

export class HostSim implements HostServices, NatTargetHost {
  readonly host: Host;
  readonly fib: Fib;
  /** hostIfaceName's pairs: an input name as given, then the host file's string for it. */
  private readonly ifaceNames: string[] = [];
  readonly conntrack: Conntrack;
  readonly nat: NatState;
  readonly prng: Prng;
  readonly kernel: string;
  readonly backend: Backend;
  /** Rules whose match or target has no packet evaluation (they are evaluated without it). */
  readonly problems: readonly CompileProblem[];
  readonly ipDefaultTtl: number;
  readonly fwmarkReflect: boolean;
  readonly forwarding: boolean;
  /** Sysctls given that the emulator does not model, by full name. */
  readonly ignoredSysctls: readonly string[];
  private readonly tables = new Map<TableName, CompiledTable>();
  private readonly traceByDefault: boolean;
  private readonly ruleState = new Map<object, unknown>();
  /** The nat hook being run (see natHook), and the pool of NatCall by depth. */
  private natCall?: NatCall;
  /** The compiled nat table (undefined: iptable_nat not loaded, no NAT hooks registered). */
  private readonly natTable: CompiledTable | undefined;
  private readonly natCalls: NatCall[] = [];
  private natDepth = 0;
  /** nf_nat_ipv4_fn's state for ESTABLISHED packets, which never run the nat chains (see natHook). */
  private readonly natEstablished = newNatHookState(() => {
    throw new Error("internal: the nat chains ran for an ESTABLISHED packet");
  });
  private readonly natRunChains = (pkt: Packet): number => {
    const c = this.natCall!;
    const st = c.st!;
    const table = c.table!;
    c.ran = true;
    st.skb.pkt = pkt;
    if (!this.chainRuns(table, c.hook)) return NF_ACCEPT;
    const r = this.doTable(table, c.hook, st);
    if (!this.quiet) st.journey.hooks.push(HOOK_LABELS.nat[c.hook][r.verdict]);
    c.decided = r.decidedBy;
    return r.verdict === "ACCEPT" ? NF_ACCEPT : NF_DROP;
  };
  /** The packet whose tables are being traversed (nested for packets a target emits mid-traversal). */
  private curFlight?: Flight;
  /** One ipt_do_table context for every traversal (no per-packet closures); effects go to `curFlight`. */
  private readonly tableCtx: DoTableContext & { now: number; traceHits: number } = {
    now: 0,
    traceHits: 0,
    host: this,
    ruleState: this.ruleState,
    effects: {
      emitLocal: (pkt: Packet, why: string) => this.emitLocal(pkt, why, this.curFlight!, true),
      log: (line: string) => this.noteLog(this.curFlight!, line),
    },
    trace: (point: TracePoint, skb: Skb, hook: Hook) => this.traceHit(point, skb, hook, this.curFlight!),
  };
  private readonly neighbourMac?: (iface: string, addr: number) => string | undefined;
  private readonly ipsets: ReadonlyMap<string, IpSet>;
  private readonly tcpRcv?: HostSimOptions["tcpRcv"];
  private readonly socketLookup?: HostSimOptions["socketLookup"];
  private readonly sendRedirects: boolean;
  private readonly echoIgnoreAll: boolean;
  private readonly redirectPeers = new Map<number, { n: number; last: number }>();
  /**
   * The latest packet time. Declared without a value and set to 0 in the constructor, so the field first holds
   * `undefined` and V8 stores it tagged: each packet's time is then boxed once, when stored, and handed as that
   * same box to conntrack and NAT. (A field that only ever held numbers is stored unboxed, and every call that
   * passes it on boxed it again: four heap numbers a packet.)
   */
  private now!: number;
  /**
   * Whether this namespace's conntrack hooks are registered. Since Linux 4.10 they are registered on demand
   * (nf_ct_netns_get) by the rules that need conntrack; with none, packets are never tracked (recording 66).
   */
  private readonly ctInUse: boolean;
  /**
   * HOOK_ORDER with the tables resolved, by hook number (hookNum): a table entry stays only when its chain for the hook runs
   * (which tables exist and the backend are fixed at construction), carrying its compiled table.
   */
  private readonly hookPlan: readonly (readonly PlannedEntry[])[];
  /** With `--backend nft`: whether the nat table has a base chain (then every nat hook is registered). */
  private readonly natHooksNft: boolean;
  /** ip_output passes the input device to POST_ROUTING (Linux >= 4.4; see postRouting). */
  private readonly postRoutingHasIn: boolean;
  private natIfaceList?: readonly NatIface[];
  /**
   * Per egress interface: its link header when no neighbourMac function is given (it is then constant) and its
   * `left on IFACE` fate (immutable, shared by every packet that leaves there). A short list scanned by name.
   */
  private readonly egressIfaces: { name: string; link: LinkHeader | undefined; fate: Fate }[] = [];
  private report?: PacketReport;
  /** TRACE hits so far (every packet's, records built or not). */
  get traceHits(): number {
    return this.tableCtx.traceHits;
  }
  private readonly quiet: boolean;
  private depth = 0;
  private index = 0;
  /** Quiet runs: the report, the input packet's journey, skb and flight, and its egress entry, reused by every receive. */
  private readonly quietReport: Mutable<PacketReport> = {
    index: 0,
    origin: undefined,
    time: 0,
    packets: SHARED_EMPTY,
    trace: SHARED_EMPTY as TraceHit[],
    egress: SHARED_EMPTY,
    events: SHARED_EMPTY as CtEvent[],
  };
  private readonly quietJourney = newInputJourney(0, undefined as unknown as Packet, undefined, false, true);
  private readonly quietJourneys: PacketJourney[] = [this.quietJourney];
  private readonly quietEgress: Mutable<PacketReport["egress"][number]> = {
    iface: "",
    packet: undefined as unknown as Packet,
    packetId: 0,
  };
  private readonly quietEgressList: PacketReport["egress"] = [this.quietEgress];
  private readonly quietSkb = newSkb(undefined as unknown as Packet, undefined, false, false);
  private readonly quietFlight = newFlightOf(this.quietSkb, this.quietJourney);

  constructor(opts: HostSimOptions) {
    this.now = 0; // see the field
    this.kernel = opts.kernel ?? DEFAULT_KERNEL;
    if (!findKernelProfile(this.kernel)) {
      throw new InputError({
        code: "KERNEL_UNKNOWN",
        message: `unknown kernel profile "${this.kernel}" (known: ${KERNEL_PROFILES.map((p) => p.id).join(", ")})`,
      });
    }
    this.host = opts.host;
    // The literal itself, whatever string the caller passed: a literal compares with literals by identity, where
    // a string read from the command line took a string comparison at every packet's nat hook.
    this.backend = opts.backend === "nft" ? "nft" : "legacy";
    this.fib = new Fib(opts.host);
    this.prng = new Prng(opts.seed ?? 0);
    this.neighbourMac = opts.neighbourMac;
    this.ipsets = opts.ipsets ?? new Map();
    this.tcpRcv = opts.tcpRcv;
    this.socketLookup = opts.socketLookup;

    const all: Record<string, string | number> = { ...opts.host.sysctl };
    for (const [k, v] of Object.entries(opts.sysctl ?? {}))
      all[k.startsWith("nf_conntrack_") ? SYSCTL_PREFIX + k : k] = v;
    const ctSysctl: Partial<NfConntrackSysctls> = {};
    const probe = new Conntrack({ kernel: this.kernel }).sysctl;
    const ignored: string[] = [];
    const num = (name: string, def: number): number => {
      const v = all[name];
      if (v === undefined) return def;
      const n = Number(String(v).trim());
      if (!Number.isInteger(n))
        throw new InputError({ code: "SYSCTL_VALUE", message: `${name}: expected an integer, got "${v}"` });
      return n;
    };
    const known = new Set([
      "net.ipv4.ip_forward",
      "net.ipv4.conf.all.forwarding",
      "net.ipv4.ip_default_ttl",
      "net.ipv4.fwmark_reflect",
      "net.ipv4.conf.all.send_redirects",
      "net.ipv4.conf.default.send_redirects",
      "net.ipv4.icmp_echo_ignore_all",
    ]);
    for (const [name, value] of Object.entries(all)) {
      if (name.startsWith(SYSCTL_PREFIX)) {
        setSysctl(probe, name, value, this.kernel);
        const short = name.slice(SYSCTL_PREFIX.length) as keyof NfConntrackSysctls;
        ctSysctl[short] = probe[short];
      } else if (!known.has(name)) ignored.push(name);
    }
    this.ignoredSysctls = ignored;
    this.forwarding = num("net.ipv4.ip_forward", num("net.ipv4.conf.all.forwarding", 0)) !== 0;
    this.ipDefaultTtl = num("net.ipv4.ip_default_ttl", 64);
    this.fwmarkReflect = num("net.ipv4.fwmark_reflect", 0) !== 0;
    this.sendRedirects = num("net.ipv4.conf.all.send_redirects", 1) !== 0;
    this.echoIgnoreAll = num("net.ipv4.icmp_echo_ignore_all", 0) !== 0;

    this.quiet = opts.quiet === true;
    // Quiet runs only count TRACE hits (tableCtx.traceHits): no record, no callback per traced entry.
    if (this.quiet) this.tableCtx.trace = undefined;
    this.conntrack = new Conntrack({ kernel: this.kernel, sysctl: ctSysctl, recordEvents: !this.quiet });
    this.nat = new NatState({ conntrack: this.conntrack, prng: this.prng, kernel: this.kernel });

    const registry = opts.registry ?? defaultRegistry;
    const problems: CompileProblem[] = [];
    let hasTrace = false;
    for (const t of opts.ruleset.tables.values()) {
      const c = compileTable(t, registry);
      problems.push(...c.problems);
      this.tables.set(t.name, c.table);
      for (const ch of t.chains.values())
        for (const r of ch.rules)
          if (r.target?.kind === "extension" && r.target.name === "TRACE") hasTrace = true;
    }
    this.problems = problems;
    this.natTable = this.tables.get("nat");
    this.traceByDefault = (opts.traceAll ?? false) || !hasTrace;
    const plan: PlannedEntry[][] = [];
    for (const h of HOOKS) {
      plan[hookNum(h)] = HOOK_ORDER[h].flatMap((e): PlannedEntry[] => {
        if (e.kind !== "table")
          return [
            { kind: e.kind, op: PLAN_OPS[e.kind], table: undefined, compiled: undefined, labels: undefined },
          ];
        const t = this.tables.get(e.table);
        if (!t || !this.chainRuns(t, h)) return [];
        return [{ kind: "table", op: 0, table: e.table, compiled: t, labels: HOOK_LABELS[e.table][h] }];
      });
    }
    this.hookPlan = plan;
    const natModel = opts.ruleset.tables.get("nat");
    this.natHooksNft =
      natModel !== undefined && [...natModel.chains.values()].some((c) => c.builtin && nftChainExists(c));
    this.postRoutingHasIn = kernelAtLeast(this.kernel, "4.4");
    this.ctInUse = !kernelAtLeast(this.kernel, "4.10") || rulesetNeedsConntrack(opts.ruleset);
  }

  // -----------------------------------------------------------------------------------------------------------
  // HostServices (for matches and targets) and NatTargetHost

  addrType(addr: number, dev?: string): AddrTypeName {
    return (dev === undefined ? this.dstType(addr) : this.fib.addrType(addr, dev)) as AddrTypeName;
  }

  /** fib.addrType(addr): inet_addr_type in the host's namespace (memoised by the FIB). */
  private dstType(addr: number): AddrType {
    return this.fib.addrType(addr);
  }
  ifaceAddress(dev: string): number | undefined {
    return this.fib.inetSelectAddr(dev, 0);
  }
  lookupSocket(q: SocketQuery, kind: "established" | "listener"): SocketRef | undefined {
    const dyn = this.socketLookup?.(q, kind);
    if (dyn || kind === "established") return dyn;
    return hostListener(this.host, q);
  }
  ipset(name: string): IpSet | undefined {
    return this.ipsets.get(name);
  }
  randomU32(): number {
    return this.prng.nextU32();
  }
  routeMtu(): number | undefined {
    return 1500;
  }
  sourceAddressFor(dst: number): number | undefined {
    const r = this.fib.lookup({ dst, iif: "lo" });
    if (r.type === "local") return dst;
    return r.prefsrc ?? this.fib.inetSelectAddr(r.oif, r.nexthop);
  }
  setCtMark(ct: NfConn, mark: number): void {
    this.conntrack.setMark(ct, mark);
  }
  setCtClosing(ct: NfConn): void {
    // nf_send_reset calls nf_ct_set_closing since Linux 6.3.
    if (kernelAtLeast(this.kernel, "6.3")) this.conntrack.setClosing(ct, this.now);
  }
  routeNexthop(skb: Skb): number {
    const ip = skb.pkt.ip;
    const r =
      this.fib.lookupByDst(ip.dst) ??
      this.fib.lookup({ dst: ip.dst, src: ip.src, mark: skb.mark, iif: skb.inIface });
    return r.nexthop;
  }
  natIface(name: string | undefined): NatIface | undefined {
    return name === undefined ? undefined : this.fib.interface(name);
  }
  natIfaces(): readonly NatIface[] {
    return (this.natIfaceList ??= this.fib.natIfaces());
  }

  // -----------------------------------------------------------------------------------------------------------
  // entry points

  /**
   * One input packet: received on `iface` (or `pkt.iface`), or, when the capture shows it leaving ("Out") from
   * one of the host's addresses, sent by the host itself. Time is in seconds.
   */
  receive(
    pkt: Packet,
    opts: {
      iface?: string;
      time?: number;
      /** direction Out: sent by a local socket whatever its source (IP_TRANSPARENT) */ local?: string;
      /** Locally generated packets: the sending process's uid/gid (skb->sk owner, for -m owner and UID=/GID=). */
      owner?: { readonly uid: number; readonly gid: number };
      /**
       * The caller hands `pkt` over and will not read it again (`ctsim trace --quiet`): a quiet run then rewrites
       * it in place as its working copy instead of copying it first, so the journey's `input` ends up showing the
       * packet as it left. No effect without the quiet option.
       */
      consume?: boolean;
    } = {},
  ): PacketReport {
    const time = opts.time ?? pkt.tsSec + pkt.tsNsec / 1e9;
    if (time > this.now) this.now = time;
    this.conntrack.advance(this.now);
    let report: Mutable<PacketReport>;
    if (this.quiet) {
      // Quiet runs reuse one report (see the option): it records neither TRACE hits nor events.
      report = this.quietReport;
      report.index = this.index++;
      report.origin = pkt.origin;
      report.time = this.now;
      report.packets = SHARED_EMPTY;
      report.egress = SHARED_EMPTY;
    } else {
      report = {
        index: this.index++,
        origin: pkt.origin,
        time: this.now,
        packets: SHARED_EMPTY,
        trace: [],
        egress: SHARED_EMPTY,
        events: this.conntrack.takeEvents(),
      };
    }
    this.report = report;
    this.depth = 0;
    if (pkt.direction === "Out") {
      if (opts.local !== undefined || this.fib.isLocalAddress(pkt.ip.src)) {
        this.localOut(
          pkt,
          opts.local ?? "sent by the host (capture direction Out)",
          undefined,
          false,
          opts.owner,
        );
      } else {
        const j = this.newJourney(pkt, pkt.iface, false);
        j.fate = {
          kind: "ignored",
          reason: "egress copy (direction Out) of a forwarded packet: the host saw it when it came in",
        };
      }
    } else {
      const named = pkt.iface ?? opts.iface ?? this.soleInterface();
      const iface = named === undefined ? undefined : this.hostIfaceName(named);
      if (iface === undefined) {
        throw new InputError({
          code: "TRACE_NO_IFACE",
          message:
            named === undefined
              ? `${pkt.origin ?? "packet"}: the input does not name an interface and the host has several; use --in IFACE`
              : `${pkt.origin ?? "packet"}: interface "${named}" is not in the host file`,
        });
      }
      const st = this.quiet ? this.quietInputFlight(pkt, iface) : this.newFlight(pkt, iface, false);
      if (this.quiet && opts.consume === true) {
        st.own = pkt;
        st.ownL4 = pkt.l4;
      }
      st.link = pkt.link ?? {
        dst: this.fib.interface(iface)!.mac,
        src: ZERO_MAC,
        ethertype: 0x0800,
        vlans: [],
      };
      this.ipRcv(st);
    }
    const late = this.quiet ? SHARED_EMPTY : this.conntrack.takeEvents();
    if (late.length > 0) report.events.push(...late);
    this.report = undefined;
    return report;
  }

  /** The table as `conntrack -L` (or `-o extended`) prints it now. */
  conntrackLines(extended = false): string[] {
    return this.conntrack.list(this.now).map((ct) => formatConntrackEntry(ct, this.now, { extended }));
  }

  /** Compiled tables (counters live there). */
  compiledTables(): ReadonlyMap<TableName, CompiledTable> {
    return this.tables;
  }

  /**
   * The host file's own string for an input interface name, undefined when the host has no such interface. A
   * capture hands every packet the same string object per interface: remembering the pairs seen spares a Map
   * lookup per packet, and later comparisons with route devices (the same strings, see Fib) are identity checks.
   */
  private hostIfaceName(name: string): string | undefined {
    const seen = this.ifaceNames;
    for (let i = 0; i < seen.length; i += 2) if (seen[i] === name) return seen[i + 1];
    const canonical = this.fib.interface(name)?.name;
    if (canonical !== undefined && seen.length < 32) seen.push(name, canonical);
    return canonical;
  }

  private soleInterface(): string | undefined {
    const real = this.host.interfaces.filter((i) => i.name !== "lo");
    return real.length === 1 ? real[0].name : undefined;
  }

  // -----------------------------------------------------------------------------------------------------------
  // packets and journeys

  private newJourney(
    pkt: Packet,
    inIface: string | undefined,
    local: boolean,
    cause?: string,
    parent?: number,
  ) {
    const report = this.report!;
    // An input packet's journey (every packet) has every field from the start, so all share one hidden class;
    // a generated packet's (rare) adds its cause and parent through spreads.
    const j: PacketJourney =
      cause === undefined && parent === undefined
        ? newInputJourney(report.packets.length, pkt, inIface, local, this.quiet)
        : {
            id: report.packets.length,
            ...(cause ? { cause } : {}),
            ...(parent !== undefined ? { parent } : {}),
            input: pkt,
            inIface,
            local,
            hooks: this.quiet ? SHARED_EMPTY : [],
            nat: this.quiet ? SHARED_EMPTY : [],
            log: this.quiet ? SHARED_EMPTY : [],
          };
    // The report starts with shared empty lists: the first entry makes a one-element array (a push onto an
    // empty array would allocate room for 17), later ones are pushed.
    if (report.packets.length === 0) (report as Mutable<PacketReport>).packets = [j];
    else report.packets.push(j);
    return j;
  }

  /** Journey notes (hook labels, NAT steps, log lines): quiet runs record none. */
  private noteHook(st: Flight, label: string): void {
    if (!this.quiet) st.journey.hooks.push(label);
  }
  private noteNat(st: Flight, step: NatStep): void {
    if (!this.quiet) st.journey.nat.push(step);
  }
  private noteLog(st: Flight, line: string): void {
    if (!this.quiet) st.journey.log.push(line);
  }

  /**
   * A quiet run's input packet (received on `inIface`): the journey, skb and flight objects of the previous input
   * packet, every field set again as newJourney and newFlight set them (no allocation per packet).
   */
  private quietInputFlight(pkt: Packet, inIface: string): Flight {
    const report = this.report as Mutable<PacketReport>;
    resetInputJourney(this.quietJourney, 0, pkt, inIface, false, true);
    if (this.quietJourneys.length !== 1) this.quietJourneys.length = 1; // a generated packet's journey was added
    report.packets = this.quietJourneys;
    resetSkb(this.quietSkb, pkt, inIface, false, this.traceByDefault);
    resetFlight(this.quietFlight);
    return this.quietFlight;
  }

  private newFlight(
    pkt: Packet,
    inIface: string | undefined,
    local: boolean,
    cause?: string,
    parent?: number,
  ): Flight {
    const journey = this.newJourney(pkt, inIface, local, cause, parent);
    return newFlightOf(newSkb(pkt, inIface, local, this.traceByDefault), journey);
  }

  private nextIpId(): number {
    return this.prng.nextU32() & 0xffff;
  }

  // -----------------------------------------------------------------------------------------------------------
  // hooks

  /** Whether a table's built-in chain for `hook` is traversed (see the header on backends). */
  private chainRuns(t: CompiledTable, hook: Hook): boolean {
    if (hookChain(t, hook) === undefined) return false;
    if (this.backend === "legacy") return true;
    const model = t.source.chains.get(hook);
    return model !== undefined && nftChainExists(model);
  }

  /** ipt_do_table for the packet in flight `st`. */
  private doTable(t: CompiledTable, hook: Hook, st: Flight): DoTableResult {
    const prev = this.curFlight;
    this.curFlight = st;
    this.tableCtx.now = this.now;
    try {
      return iptDoTable(t, hook, st.skb, this.tableCtx);
    } finally {
      this.curFlight = prev;
    }
  }

  private traceHit(point: TracePoint, skb: Skb, hook: Hook, st: Flight): void {
    // The line and verdict are formatted only when read (src/trace/records.ts).
    this.report!.trace.push(
      new TraceHitRecord(
        st.journey.id,
        point,
        hook,
        skb.pkt,
        skb.mark,
        skb.inIface,
        skb.outIface,
        st.link,
        this.tables.get(point.table)?.source.chains.get(point.chain),
        skbOwner(skb),
      ),
    );
  }

  /** Runs every function registered at `hook`; false when the packet did not survive (its fate is set). */
  private runHook(hook: Hook, st: Flight): boolean {
    const skb = st.skb;
    const plan = this.hookPlan[hookNum(hook)];
    for (let k = 0; k < plan.length; k++) {
      const e = plan[k];
      switch (e.op) {
        case 0: {
          // a table
          const t = e.compiled!;
          const mark0 = skb.mark;
          const ip0 = skb.pkt.ip;
          const r = this.doTable(t, hook, st);
          if (!this.quiet) st.journey.hooks.push(e.labels![r.verdict]);
          if (r.verdict !== "ACCEPT") return this.tableVerdict(st, r, `${e.table}:${hook}`);
          if (
            hook === "OUTPUT" &&
            e.table === "mangle" &&
            (skb.mark !== mark0 ||
              skb.pkt.ip.src !== ip0.src ||
              skb.pkt.ip.dst !== ip0.dst ||
              skb.pkt.ip.tos !== ip0.tos)
          ) {
            if (!this.routeLocal(st, "ip_route_me_harder after mangle OUTPUT")) return false;
          }
          break;
        }
        case 1: // conntrack
          if (!this.ctInUse) {
            this.noteHook(st, "conntrack not in use (no rule needs it)");
            break;
          }
          if (!this.ctIn(hook, st)) return false;
          break;
        case 2: // nat
          if (!this.natHook(hook, st)) return false;
          break;
        case 3: // confirm
          if (!this.confirm(hook, st)) return false;
          break;
      }
    }
    return true;
  }

  private tableVerdict(st: Flight, r: DoTableResult, where: string): false {
    const by = r.decidedBy
      ? `${r.decidedBy.table}:${r.decidedBy.chain}:${r.decidedBy.comment}:${r.decidedBy.num}`
      : where;
    if (r.verdict === "STOLEN") {
      st.journey.fate = { kind: "stolen", by, reason: "the target took the packet (NF_STOLEN)" };
    } else {
      const reason =
        r.verdict === "QUEUE"
          ? "queued to userspace with no listener (NF_QUEUE -> drop)"
          : r.hotdrop
            ? "a match asked for a drop (hotdrop)"
            : `dropped by ${by}`;
      this.drop(st, reason, by);
      return false;
    }
    this.releaseCt(st);
    return false;
  }

  private drop(st: Flight, reason: string, by?: string): false {
    st.journey.fate = { kind: "dropped", ...(by ? { by } : {}), reason };
    this.releaseCt(st);
    return false;
  }

  /** A packet that ends before confirm frees the conntrack it created (nf_conntrack_put of an unconfirmed ct). */
  private releaseCt(st: Flight): void {
    const ct = st.skb.ct;
    if (st.ownsCt && ct && !ct.confirmed) this.conntrack.discard(ct);
    st.ownsCt = false;
  }

  // -----------------------------------------------------------------------------------------------------------
  // conntrack, NAT, confirm

  private ctIn(hook: Hook, st: Flight): boolean {
    const skb = st.skb;
    if (!this.quiet) st.journey.hooks.push(CT_LABELS[hook]);
    if (skb.ct) {
      if (!this.quiet) st.journey.ct ??= this.ctSummary(skb.ct, skb.ctinfo!, undefined, true);
      return true;
    }
    if (skb.untracked || skb.ctTemplate?.notrack) {
      skb.untracked = true;
      skb.ctinfo = IP_CT_UNTRACKED;
      if (!this.quiet) st.journey.ct = { state: "UNTRACKED", ctinfo: CTINFO_NAMES[IP_CT_UNTRACKED] };
      return true;
    }
    const zone = skb.ctTemplate?.zone;
    // The result is read here and not kept: the table may hand out the same object every time.
    const r = this.conntrack.in(
      skb.pkt,
      hookNum(hook),
      this.now,
      zone !== undefined ? { zone, reuseResult: true } : REUSE_CT_RESULT,
    );
    skb.ct = r.ct;
    skb.ctinfo = r.ctinfo;
    skb.ctReason = r.reason;
    st.ownsCt = r.ct !== undefined && !r.ct.confirmed;
    if (!this.quiet) st.journey.ct = this.ctSummaryOf(r);
    if (r.verdict === NF_DROP) {
      return this.drop(st, `conntrack dropped it: ${r.reason?.text ?? "nf_conntrack_in returned NF_DROP"}`);
    }
    return true;
  }

  private ctSummaryOf(r: CtLookupResult): CtSummary {
    const l4 = r.l4 as TcpL4Result | undefined;
    const tcp =
      l4 && (l4.oldState !== undefined || l4.newState !== undefined)
        ? { index: l4.index, oldState: l4.oldState, newState: l4.newState }
        : undefined;
    if (!r.ct || r.ctinfo === undefined) {
      return {
        state: r.state === "UNTRACKED" ? "UNTRACKED" : "INVALID",
        ...(r.reason ? { reason: r.reason } : {}),
        ...(tcp ? { tcp } : {}),
      };
    }
    return this.ctSummary(r.ct, r.ctinfo, r.reason, false, tcp);
  }

  private ctSummary(
    ct: NfConn,
    ctinfo: CtInfo,
    reason: CtLookupResult["reason"],
    attached: boolean,
    tcp?: CtSummary["tcp"],
  ): CtSummary {
    // The `conntrack -L` text of the entry is formatted only when read (JSON output, tests): most runs never ask.
    return new CtSummaryRecord(
      ctinfoState(ctinfo),
      CTINFO_NAMES[ctinfo],
      ctinfo >= IP_CT_IS_REPLY && ctinfo !== IP_CT_UNTRACKED ? "REPLY" : "ORIGINAL",
      reason,
      tcp,
      attached || undefined,
      ct,
      this.now,
    );
  }

  private natHook(hook: Hook, st: Flight): boolean {
    const natTable = this.natTable;
    if (!natTable) return true; // iptable_nat not loaded: no NAT hooks registered
    if (this.backend === "nft" && !this.natHooksNft) return true; // no nat base chain: none registered
    const skb = st.skb;
    const manip = hook === "POSTROUTING" || hook === "INPUT" ? "SRC" : "DST";
    const before = skb.pkt;
    const dst0 = before.ip.dst;
    const ownedBefore = before === st.own;
    const from0 = this.quiet ? undefined : before;
    if (!skb.ct) {
      this.noteNat(st, {
        hook,
        manip,
        kind: "skipped",
        why: skb.untracked
          ? "UNTRACKED: nat table not consulted"
          : "no conntrack (INVALID): nat table not consulted",
      });
      return true;
    }
    const ctinfo = skb.ctinfo;
    if (ctinfo === IP_CT_ESTABLISHED || ctinfo === IP_CT_ESTABLISHED_REPLY) {
      // nf_nat_inet_fn runs no chains for an established packet (only the oif check and nf_nat_packet): no
      // runner state to set up, nothing emitted, nothing nested.
      const state = this.natEstablished;
      state.hook = hookNum(hook);
      state.out = skb.outIface;
      state.writable = ownedBefore ? (before.l4 === st.ownL4 ? 2 : 1) : 0;
      return this.natDone(
        hook,
        st,
        manip,
        before,
        from0,
        dst0,
        nfNatIpv4Fn(this.nat, skb.ct, ctinfo, before, state, this.now),
        false,
        undefined,
      );
    }
    // The nat table runs through one runner (no per-packet closure); `natCall` is this call's state, saved and
    // restored because a target may emit a packet that goes through a nat hook of its own.
    const saved = this.natCall;
    const call = (this.natCalls[this.natDepth] ??= {
      st: undefined,
      hook,
      table: undefined,
      ran: false,
      decided: undefined,
      state: newNatHookState(this.natRunChains),
    });
    call.st = st;
    call.hook = hook;
    call.table = natTable;
    call.ran = false;
    call.decided = undefined;
    const state = call.state;
    state.hook = hookNum(hook);
    state.out = skb.outIface;
    state.writable = ownedBefore ? (before.l4 === st.ownL4 ? 2 : 1) : 0;
    this.natCall = call;
    this.natDepth++;
    let res;
    try {
      res = nfNatIpv4Fn(this.nat, skb.ct, skb.ctinfo, skb.pkt, state, this.now);
    } finally {
      this.natCall = saved;
      this.natDepth--;
      call.st = undefined;
      call.table = undefined;
    }
    // (read back through the interface: the assignments above narrowed them for the compiler)
    const { ran, decided } = call as NatCall;
    return this.natDone(hook, st, manip, before, from0, dst0, res, ran, decided);
  }

  /** natHook's second half: the packet nf_nat_ipv4_fn returned, the drop or the re-route, the NAT step record. */
  private natDone(
    hook: Hook,
    st: Flight,
    manip: "SRC" | "DST",
    before: Packet,
    from0: Packet | undefined,
    dst0: number,
    res: NatHookResult,
    ran: boolean,
    decided: TracePoint | undefined,
  ): boolean {
    const skb = st.skb;
    skb.pkt = res.pkt;
    const changed = res.pkt !== before || res.rewritten === true;
    if (this.quiet) {
      // A rewrite copies the packet and its IP header: the copy is this flight's own from here on. Quiet runs
      // record no NAT step.
      if (res.pkt !== before) {
        st.own = res.pkt;
        st.ownL4 = res.pkt.l4 !== before.l4 ? res.pkt.l4 : undefined;
      }
      if (res.verdict !== NF_ACCEPT) {
        const by = decided && `${decided.table}:${decided.chain}:${decided.comment}:${decided.num}`;
        return this.drop(st, `NAT: ${res.reason ?? "dropped"}`, by);
      }
      if (hook === "OUTPUT" && dst0 !== res.pkt.ip.dst)
        return this.routeLocal(st, "re-routed after DNAT (nf_nat_ipv4_local_fn)");
      return true;
    }
    // from/to texts are formatted only when read (src/trace/records.ts).
    const keep = ran || changed;
    const from = keep ? from0 : undefined;
    const to = !keep ? undefined : res.pkt;
    const by = decided ? `${decided.table}:${decided.chain}:${decided.comment}:${decided.num}` : undefined;
    let step: NatStepRecord;
    if (res.verdict !== NF_ACCEPT) {
      step = new NatStepRecord(hook, manip, "drop", by, undefined, undefined, res.reason ?? "NF_DROP");
    } else if (ran) {
      const bound = decided?.comment === "rule";
      step = new NatStepRecord(
        hook,
        manip,
        bound ? "binding" : "null-binding",
        bound ? by : undefined,
        from,
        to,
      );
    } else step = changed ? new NatStepRecord(hook, manip, "rewrite", undefined, from, to) : NONE_STEPS[hook];
    this.noteNat(st, step);
    if (res.verdict !== NF_ACCEPT) return this.drop(st, `NAT: ${res.reason ?? "dropped"}`, by);
    if (hook === "OUTPUT" && dst0 !== res.pkt.ip.dst) {
      if (!this.routeLocal(st, "re-routed after DNAT (nf_nat_ipv4_local_fn)")) return false;
    }
    return true;
  }

  private confirm(hook: Hook, st: Flight): boolean {
    const skb = st.skb;
    const ct = skb.ct;
    if (!ct || skb.ctinfo === undefined) return true;
    // The result is read here and not kept: the table may hand out the same object every time.
    const r = this.conntrack.confirm(ct, this.now, skb.ctinfo, REUSE_CT_RESULT);
    st.ownsCt = false;
    if (r.verdict !== NF_ACCEPT) {
      this.noteHook(st, `confirm ${hook} DROP`);
      return this.drop(st, `conntrack confirm dropped it: ${r.reason?.text ?? "insert failed"}`);
    }
    if (r.ct) skb.ct = r.ct;
    return true;
  }

  // -----------------------------------------------------------------------------------------------------------
  // receive path

  private ipRcv(st: Flight): void {
    if (!this.runHook("PREROUTING", st)) return;
    const skb = st.skb;
    const ip = skb.pkt.ip;
    const iif = skb.inIface!;
    const rt =
      this.fib.lookupByDst(ip.dst) ??
      this.fib.lookup({ dst: ip.dst, src: ip.src, mark: skb.mark, iif, tos: ip.tos });
    st.rt = rt;
    const type = rt.type === "local" ? "local" : this.dstType(ip.dst) === "BROADCAST" ? "broadcast" : rt.type;
    if (type === "local" || type === "broadcast") {
      if (iif !== "lo" && this.fib.isLocalAddress(ip.src)) {
        this.drop(st, `martian source ${formatIpv4(ip.src)} (one of the host's own addresses) from ${iif}`);
        return;
      }
      st.journey.route = `local delivery (${type === "local" ? `local route, table ${tableName(rt.table)}` : "broadcast"})`;
      this.localDeliver(st);
      return;
    }
    if (!this.forwarding) {
      st.journey.route = "not local and net.ipv4.ip_forward=0";
      this.drop(st, "not for this host and forwarding is off (ip_error drops it silently)");
      return;
    }
    switch (type) {
      case "unicast":
        if (!this.quiet) st.journey.route = routeText(rt);
        this.ipForward(st, rt);
        return;
      case "blackhole":
        st.journey.route = "blackhole route";
        this.drop(st, "blackhole route (ip_error: -EINVAL, no ICMP)");
        return;
      default: {
        const code =
          type === "unreachable"
            ? ICMP_HOST_UNREACH
            : type === "prohibit"
              ? ICMP_PKT_FILTERED
              : ICMP_NET_UNREACH;
        st.journey.route = type === "none" ? "no route" : `${type} route`;
        this.icmpError(
          st,
          ICMP_DEST_UNREACH,
          code,
          0,
          `ip_error: ${type === "none" ? "no route" : `${type} route`}`,
        );
        this.drop(st, `no route (ip_error sent ICMP destination unreachable code ${code})`);
      }
    }
  }

  private ipForward(st: Flight, rt: FibResult): void {
    const skb = st.skb;
    st.forwarded = true;
    const iif = skb.inIface!;
    skb.outIface = rt.oif;
    if (skb.pkt.ip.ttl <= 1) {
      this.icmpError(st, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0, "ip_forward: TTL exceeded");
      this.drop(st, `TTL ${skb.pkt.ip.ttl} would reach 0 (ip_forward sent ICMP time exceeded)`);
      return;
    }
    if (!this.quiet) skb.pkt = decreaseTtl(skb.pkt);
    else if (skb.pkt === st.own) decreaseTtlInPlace(skb.pkt);
    else {
      skb.pkt = st.own = decreaseTtl(skb.pkt);
      st.ownL4 = undefined;
    }
    if (rt.oif === iif && this.sendRedirects && this.fib.onLink(iif, skb.pkt.ip.src))
      this.maybeRedirect(st, rt);
    if (!this.runHook("FORWARD", st)) return;
    this.postRouting(st, rt);
  }

  /** ip_rt_send_redirect with its per-peer backoff. */
  private maybeRedirect(st: Flight, rt: FibResult): void {
    const src = st.skb.pkt.ip.src;
    let peer = this.redirectPeers.get(src);
    if (!peer) this.redirectPeers.set(src, (peer = { n: 0, last: -Infinity }));
    if (this.now - peer.last > REDIRECT_SILENCE) peer.n = 0;
    if (peer.n >= REDIRECT_NUMBER) return;
    if (peer.n === 0 || this.now > peer.last + REDIRECT_LOAD * (1 << peer.n)) {
      peer.last = this.now;
      peer.n++;
      this.icmpError(
        st,
        ICMP_REDIRECT,
        ICMP_REDIR_HOST,
        rt.nexthop,
        "ip_forward: ICMP redirect (ip_rt_send_redirect)",
      );
    }
  }

  private localDeliver(st: Flight): void {
    const skb = st.skb;
    skb.outIface = undefined;
    if (!this.runHook("INPUT", st)) return;
    const pkt = skb.pkt;
    const l4 = pkt.l4;
    st.journey.out = pkt;
    const ownAddr = this.dstType(pkt.ip.dst) === "LOCAL";
    if (l4.kind === "tcp") {
      const rcv = this.tcpRcv?.(pkt, this.now, skb.sk);
      if (rcv) {
        st.journey.fate = { kind: "delivered", to: rcv.to };
        for (const r of rcv.replies) this.localOut(r.packet, r.cause, st, false);
        return;
      }
      const sk = this.lookupSocket(
        { protocol: "tcp", saddr: pkt.ip.src, sport: l4.srcPort, daddr: pkt.ip.dst, dport: l4.dstPort },
        "listener",
      );
      if (sk) {
        st.journey.fate = {
          kind: "delivered",
          to: `tcp socket ${formatIpv4(sk.address)}:${sk.port} (LISTEN)`,
        };
        return;
      }
      st.journey.fate = { kind: "delivered", to: "tcp_v4_rcv: no socket" };
      if (!(l4.flags & TCP_RST) && ownAddr) this.tcpReset(st);
      return;
    }
    if (l4.kind === "udp") {
      const sk = this.lookupSocket(
        { protocol: "udp", saddr: pkt.ip.src, sport: l4.srcPort, daddr: pkt.ip.dst, dport: l4.dstPort },
        "listener",
      );
      if (sk) {
        st.journey.fate = { kind: "delivered", to: `udp socket ${formatIpv4(sk.address)}:${sk.port}` };
        return;
      }
      st.journey.fate = { kind: "delivered", to: "__udp4_lib_rcv: no socket" };
      if (ownAddr) this.icmpError(st, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, "udp: port unreachable");
      return;
    }
    if (l4.kind === "icmp") {
      st.journey.fate = { kind: "delivered", to: "icmp_rcv" };
      if (l4.type === ICMP_ECHO && !this.echoIgnoreAll && ownAddr) this.echoReply(st);
      return;
    }
    st.journey.fate = { kind: "delivered", to: `no handler for protocol ${pkt.ip.protocol}` };
    if (ownAddr)
      this.icmpError(st, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0, "ip_local_deliver: protocol unreachable");
  }

  // -----------------------------------------------------------------------------------------------------------
  // output path

  /** The host sends `pkt` itself (ip_local_out). */
  private localOut(
    pkt: Packet,
    cause: string,
    parent?: Flight,
    attachCt = false,
    owner?: { readonly uid: number; readonly gid: number },
  ): void {
    if (this.depth >= MAX_DEPTH) return;
    this.depth++;
    try {
      const st = this.newFlight(pkt, undefined, true, cause, parent?.journey.id);
      // A process's packet carries its socket's owner; the kernel's own replies (RST, ICMP errors) do not.
      if (owner) st.skb.owner = owner;
      if (attachCt && parent?.skb.ct && parent.skb.ctinfo !== undefined) {
        // nf_conntrack_attach: RELATED_REPLY when the original was in the ORIGINAL direction.
        const dir = parent.skb.ctinfo >= IP_CT_IS_REPLY ? 1 : IP_CT_DIR_ORIGINAL;
        st.skb.ct = parent.skb.ct;
        st.skb.ctinfo = dir === IP_CT_DIR_ORIGINAL ? IP_CT_RELATED_REPLY : IP_CT_RELATED;
      }
      if (!this.routeLocal(st, undefined)) return;
      if (!this.runHook("OUTPUT", st)) return;
      this.postRouting(st, st.rt!);
    } finally {
      this.depth--;
    }
  }

  /** Output route (ip_route_output_key / ip_route_me_harder). */
  private routeLocal(st: Flight, why: string | undefined): boolean {
    const skb = st.skb;
    const ip = skb.pkt.ip;
    const rt = this.fib.lookup({ dst: ip.dst, src: ip.src, mark: skb.mark, iif: "lo", tos: ip.tos });
    if (rt.type === "local") {
      st.rt = { ...rt, oif: "lo", nexthop: ip.dst };
      skb.outIface = "lo";
      st.journey.route = `local destination: loopback${why ? ` (${why})` : ""}`;
      return true;
    }
    if (rt.type !== "unicast") {
      st.journey.route = `no route for a locally generated packet${why ? ` (${why})` : ""}`;
      return this.drop(
        st,
        `no output route to ${formatIpv4(ip.dst)} (${rt.type === "none" ? "-ENETUNREACH" : rt.type})`,
      );
    }
    st.rt = rt;
    skb.outIface = rt.oif;
    if (!this.quiet) st.journey.route = `${routeText(rt)}${why ? ` (${why})` : ""}`;
    return true;
  }

  private postRouting(st: Flight, rt: FibResult): void {
    const skb = st.skb;
    // ip_output passes the input device to NF_INET_POST_ROUTING (`indev = skb->dev`) since the 4.4-era rework
    // of its signature; older kernels passed NULL, so their POSTROUTING TRACE/LOG lines print `IN=` and no MAC
    // (seed 001 was recorded on such a kernel).
    const inIface = skb.inIface;
    if (!this.postRoutingHasIn) skb.inIface = undefined;
    const survived = this.runHook("POSTROUTING", st);
    skb.inIface = inIface;
    if (!survived) return;
    const out = skb.outIface ?? rt.oif ?? "lo";
    if (out === "lo") {
      // dev_loopback_xmit -> netif_rx: the packet comes back in on lo with its conntrack attached.
      this.noteHook(st, "loopback");
      skb.inIface = "lo";
      skb.outIface = undefined;
      st.link = { dst: ZERO_MAC, src: ZERO_MAC, ethertype: 0x0800, vlans: [] };
      this.ipRcv(st);
      return;
    }
    const eg = this.egressIface(out);
    let link = eg.link;
    if (!link) {
      link = {
        src: this.fib.interface(out)?.mac ?? ZERO_MAC,
        dst: this.neighbourMac?.(out, rt.nexthop) ?? ZERO_MAC,
        ethertype: 0x0800,
        vlans: [],
      };
      if (!this.neighbourMac) eg.link = link;
    }
    let pkt: Packet;
    if (this.quiet && skb.pkt === st.own) {
      // The flight ends here: its own packet becomes the egress packet (the same keys in the same order).
      const w = skb.pkt as Mutable<Packet>;
      w.link = link;
      w.iface = out;
      w.direction = "Out";
      pkt = w;
      st.own = st.ownL4 = undefined;
    } else pkt = { ...skb.pkt, link, iface: out, direction: "Out" };
    st.journey.out = pkt;
    st.journey.fate = eg.fate;
    const report = this.report!;
    if (st === this.quietFlight && report.egress.length === 0) {
      // A quiet run's input packet leaving: the reused entry and list (see quietInputFlight).
      const e = this.quietEgress;
      e.iface = out;
      e.packet = pkt;
      e.packetId = st.journey.id;
      if (this.quietEgressList.length !== 1) this.quietEgressList.length = 1;
      (report as Mutable<PacketReport>).egress = this.quietEgressList;
      return;
    }
    const e = { iface: out, packet: pkt, packetId: st.journey.id };
    if (report.egress.length === 0) (report as Mutable<PacketReport>).egress = [e];
    else report.egress.push(e);
  }

  private egressIface(out: string): { name: string; link: LinkHeader | undefined; fate: Fate } {
    const list = this.egressIfaces;
    for (let k = 0; k < list.length; k++) if (list[k].name === out) return list[k];
    const e = { name: out, link: undefined, fate: Object.freeze({ kind: "left" as const, iface: out }) };
    list.push(e);
    return e;
  }

  // -----------------------------------------------------------------------------------------------------------
  // the host's own answers

  /** A target (REJECT) emits a packet: it goes through OUTPUT at once (nf_send_reset / icmp_send). */
  private emitLocal(pkt: Packet, why: string, parent: Flight, attach: boolean): void {
    parent.own = parent.ownL4 = undefined;
    this.localOut(pkt, why, parent, attach);
  }

  /** icmp_send (src/net/icmp_send.ts) about the packet in flight; the error carries its conntrack. */
  private icmpError(st: Flight, type: number, code: number, info: number, cause: string): void {
    st.own = st.ownL4 = undefined; // the error quotes the packet
    const pkt = st.skb.pkt;
    const r = icmpSend(pkt, type, code, info, {
      dstType: this.dstType(pkt.ip.dst),
      pktType: st.skb.pktType,
      sourceFor: (dst) => this.sourceAddressFor(dst),
      ttl: this.ipDefaultTtl,
      id: this.nextIpId(),
    });
    if ("refused" in r) {
      this.noteLog(st, `(${cause}: icmp_send sends nothing: ${r.refused})`);
      return;
    }
    this.localOut(r.packet, `icmp_send: ${cause}`, st, true);
  }

  /** tcp_v4_send_reset (src/net/tcp_reset.ts) for a segment no socket took. */
  private tcpReset(st: Flight): void {
    st.own = st.ownL4 = undefined;
    const pkt = st.skb.pkt;
    const r = tcpV4SendReset(pkt, { dstType: this.dstType(pkt.ip.dst), ttl: this.ipDefaultTtl });
    if ("refused" in r) {
      this.noteLog(st, `(tcp_v4_send_reset sends nothing: ${r.refused})`);
      return;
    }
    this.localOut(r.packet, "tcp_v4_send_reset: no socket", st, false);
  }

  /** icmp_echo -> icmp_reply: same id, sequence and payload; source = the address pinged. */
  private echoReply(st: Flight): void {
    st.own = st.ownL4 = undefined;
    const req = st.skb.pkt;
    if (req.l4.kind !== "icmp") return;
    const reply: Packet = {
      ...req,
      ip: {
        ...req.ip,
        src: req.ip.dst,
        dst: req.ip.src,
        ttl: this.ipDefaultTtl,
        id: this.nextIpId(),
        df: false,
        mf: false,
        rf: false,
        fragOffset: 0,
        options: new Uint8Array(0),
        ihl: 20,
        totalLength: req.ip.totalLength - (req.ip.ihl - 20),
      },
      l4: { ...req.l4, type: ICMP_ECHOREPLY },
      ipChecksum: "unknown",
      l4Checksum: "unknown",
      link: undefined,
      iface: undefined,
      direction: undefined,
    };
    this.localOut(reply, "icmp_echo: echo reply", st, false);
  }
}

/** ip_decrease_ttl: TTL - 1 with the header checksum updated incrementally. */
/** decreaseTtl on a packet the caller owns (Flight.own): its IP header is rewritten in place. */
function decreaseTtlInPlace(pkt: Packet): void {
  const ip = pkt.ip as Mutable<Packet["ip"]>;
  const from = (ip.ttl << 8) | ip.protocol;
  const to = ((ip.ttl - 1) << 8) | ip.protocol;
  ip.ttl = ip.ttl - 1;
  ip.checksum = csumReplace2(ip.checksum, from, to);
}

export function decreaseTtl(pkt: Packet): Packet {
  const ip = pkt.ip;
  const from = (ip.ttl << 8) | ip.protocol;
  const to = ((ip.ttl - 1) << 8) | ip.protocol;
  return { ...pkt, ip: { ...ip, ttl: ip.ttl - 1, checksum: csumReplace2(ip.checksum, from, to) } };
}

function tableName(id: number | undefined): string {
  return id === 255 ? "local" : id === 254 ? "main" : id === 253 ? "default" : String(id);
}

function routeText(rt: FibResult): string {
  const via = rt.gateway !== undefined ? `via ${formatIpv4(rt.gateway)} ` : "";
  return `forward ${via}dev ${rt.oif ?? "?"} (table ${tableName(rt.table)}${
    rt.rulePriority !== undefined && rt.rulePriority !== 0 && rt.rulePriority !== 32766
      ? `, ip rule ${rt.rulePriority}`
      : ""
  })`;
}

export { protoName as packetProtoName };

/**
 * Extensions whose checkentry calls nf_ct_netns_get (net/netfilter/xt_conntrack.c, xt_state.c, xt_connmark.c,
 * xt_CT.c, xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c, xt_CONNSECMARK.c ...), and the nat table,
 * whose registration (nf_nat_register_fn) does too.
 */
const CONNTRACK_USERS = new Set([
  "conntrack",
  "state",
  "connmark",
  "CONNMARK",
  "CT",
  "NOTRACK",
  "SNAT",
  "DNAT",
  "MASQUERADE",
  "REDIRECT",
  "NETMAP",
  "helper",
  "connbytes",
  "connlimit",
  "connlabel",
  "CONNSECMARK",
]);

/** True when loading `ruleset` would register the namespace's conntrack hooks. */
export function rulesetNeedsConntrack(ruleset: Ruleset): boolean {
  if (ruleset.tables.has("nat")) return true;
  for (const t of ruleset.tables.values())
    for (const ch of t.chains.values())
      for (const r of ch.rules) {
        if (r.matches.some((m) => CONNTRACK_USERS.has(m.name))) return true;
        if (r.target?.kind === "extension" && CONNTRACK_USERS.has(r.target.name)) return true;
      }
  return false;
}
