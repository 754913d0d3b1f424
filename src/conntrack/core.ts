/**
 * The conntrack table of one network namespace: lookup, creation, confirmation, timeouts, early drop, kill and
 * events.
 *
 * Mirrors net/netfilter/nf_conntrack_core.c — nf_conntrack_in, resolve_normal_ct, init_conntrack,
 * __nf_conntrack_alloc, early_drop/early_drop_list, __nf_conntrack_confirm, nf_ct_resolve_clash(_harder),
 * nf_conntrack_tuple_taken, nf_ct_delete, __nf_ct_refresh_acct, nf_conntrack_handle_icmp, generic_packet — and the
 * event cache of nf_conntrack_ecache.c (events cached per packet, delivered at confirm; DESTROY at once), Linux
 * 6.17 (Kingxukai/linux @ 9b44fff6). Checked against conntrack -L/-E recordings on Linux 6.18.44.
 *
 * Model choices (deliberate, deterministic):
 * - The hash table is a Map from a 30-bit hash of tuple + zone (./tuple tupleHashOf, the role of
 *   hash_conntrack_raw) to the entry; both directions are keys. The hash is symmetric, so an entry whose REPLY
 *   tuple is the inverse of its ORIGINAL (no NAT) takes one slot for both. A tuple whose slot holds another entry
 *   goes to a second Map keyed by the packed tuple (./tuple tupleKey) — the collision chain. Lookups compare the
 *   tuple. The early-drop cursor therefore meets each un-NATed entry once per pass, not twice.
 * - Entries are flat objects of small integers (see NfConn): about 370 bytes per TCP connection with its
 *   IpCtTcp and table slot (bench/conntrack.ts), no per-packet allocation beyond the result objects.
 * - Time is the caller's: `now` in seconds on every call. An entry is expired when timeout <= now
 *   (nf_ct_is_expired). Expiry is checked on lookup; `advance(now)` reaps every expired entry, in order of
 *   expiry time then id, emitting DESTROY events (the kernel's GC worker does this in bucket order, later).
 * - `count` counts confirmed entries only; an unconfirmed entry lives on the packet (the lookup result) until
 *   `confirm` or `discard`.
 * - Table full (count >= nf_conntrack_max at allocation): first every expired entry is reaped (the GC worker
 *   would have done so), then early_drop examines at most NF_CT_EVICTION_RANGE (8) connections, taken from a
 *   cursor that walks the table in insertion order and wraps around (standing in for 8 hash buckets of one entry
 *   each), and deletes the first that is not ASSURED and not dying. None: NF_DROP, "table full".
 * - Connection ids are 1, 2, 3... (the kernel's are siphash values) unless an `rng` is given.
 * - Events: nf_conntrack_events != 0 and a listener (onEvent or recordEvents). The event bits of a packet are
 *   cached on the entry and delivered by `confirm` (call it for every tracked packet at the last hook, as
 *   nf_confirm runs for every packet); DESTROY is delivered when the entry dies.
 * Leaves out on purpose: expectations and helpers (IPS_EXPECTED is never set, so RELATED comes only from ICMP
 * errors), per-conntrack timeout policies, synproxy, labels/secmark, IPv6, the random hash chain length limit,
 * zone directions, loopback re-entry (the caller keeps the entry on the packet and skips `in`).
 */
import type { Packet } from "../wire/packet";
import { IPPROTO_ICMP, IPPROTO_UDP } from "../wire/packet";
import type {
  CtDir,
  CtInfo,
  CtReason,
  L4Context,
  L4Result,
  L4Tracker,
  NfConnL4View,
  NfHook,
  Seconds,
  Tuple,
} from "./types";
import {
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_DYING,
  IPS_EXPECTED,
  IPS_FIXED_TIMEOUT,
  IPS_NAT_CLASH,
  IPS_SEEN_REPLY,
  IP_CT_DIR_ORIGINAL,
  IP_CT_DIR_REPLY,
  IP_CT_ESTABLISHED,
  IP_CT_ESTABLISHED_REPLY,
  IP_CT_IS_REPLY,
  IP_CT_NEW,
  IP_CT_RELATED,
  IP_CT_UNTRACKED,
  NF_ACCEPT,
  NF_DROP,
  NF_REPEAT,
} from "./types";
import { DEFAULT_KERNEL } from "./profile";
import type { NfConntrackSysctls } from "./sysctl";
import { defaultSysctls } from "./sysctl";
import { IPPROTO_UDPLITE, tupleEqual, tupleHashOf, tupleKeyOf } from "./tuple";
import { genericTracker } from "./proto_generic";
import { udpTracker } from "./proto_udp";
import { icmpIsErr, icmpTracker, nfConntrackInetError } from "./proto_icmp";
import { tcpTracker } from "./proto_tcp";
import type { Mutable } from "../util/types";

/** enum ip_conntrack_events (nf_conntrack_common.h), as bit numbers. */
export const IPCT_NEW = 0;
export const IPCT_RELATED = 1;
export const IPCT_DESTROY = 2;
export const IPCT_REPLY = 3;
export const IPCT_ASSURED = 4;
export const IPCT_PROTOINFO = 5;
export const IPCT_HELPER = 6;
export const IPCT_MARK = 7;
export const IPCT_SEQADJ = 8;
export const IPCT_SECMARK = 9;
export const IPCT_LABEL = 10;
export const IPCT_SYNPROXY = 11;

/** NF_CT_EVICTION_RANGE: how many buckets (here: connections) early_drop looks at. */
export const NF_CT_EVICTION_RANGE = 8;

/** Protocols with `allow_clash = true` (UDP, UDPLITE). */
const ALLOW_CLASH = new Set([IPPROTO_UDP, IPPROTO_UDPLITE]);

export type CtState = "NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED";

/** What `ctstate` a ctinfo gives (ESTABLISHED_REPLY is ESTABLISHED, RELATED_REPLY is RELATED). */
export function ctinfoState(ctinfo: CtInfo): CtState {
  if (ctinfo === IP_CT_UNTRACKED) return "UNTRACKED";
  const base = ctinfo >= IP_CT_IS_REPLY ? ctinfo - IP_CT_IS_REPLY : ctinfo;
  return base === IP_CT_NEW ? "NEW" : base === IP_CT_RELATED ? "RELATED" : "ESTABLISHED";
}

/** A raw-table CT template (CT --zone): what it contributes to a new entry. */
export interface CtTemplate {
  readonly zone?: number;
}

export interface CtInOptions {
  /** Zone for lookup and creation (CT --zone); a template's zone wins. */
  readonly zone?: number;
  readonly template?: CtTemplate;
  /** raw NOTRACK / CT --notrack: the packet is UNTRACKED and conntrack leaves it alone. */
  readonly untracked?: boolean;
  /**
   * The caller reads the result before its next call to `in` and keeps nothing of it: a found or created entry
   * is then reported in one object the table reuses (no result object per packet).
   */
  readonly reuseResult?: boolean;
}

export interface CtConfirmOptions {
  /**
   * The caller reads the result before its next call to `confirm` and keeps nothing of it: an accepted packet's
   * entry is then reported in one object the table reuses (drops still get results of their own).
   */
  readonly reuseResult?: boolean;
}

export interface CtLookupResult {
  /** The entry attached to the packet; absent for INVALID and UNTRACKED. Unconfirmed when `ct.confirmed` is false. */
  readonly ct?: NfConn;
  readonly ctinfo?: CtInfo;
  readonly state: CtState;
  readonly dir?: CtDir;
  /** Why INVALID (or why NF_DROP). */
  readonly reason?: CtReason;
  /** NF_ACCEPT, or NF_DROP (table full, tracker drop). */
  readonly verdict: number;
  /** The tracker's own result, for traces (e.g. the TCP table cell). */
  readonly l4?: L4Result;
}

/** One `conntrack -E` event: a snapshot of the entry when it was delivered. */
export interface CtEvent {
  readonly type: "NEW" | "UPDATE" | "DESTROY";
  /** IPCT_* bits that made it. */
  readonly events: number;
  readonly time: Seconds;
  readonly id: number;
  readonly orig: Tuple;
  readonly reply: Tuple;
  readonly status: number;
  readonly mark: number;
  readonly zone: number;
  /** Whole seconds left (ctnetlink_dump_timeout); absent on a DESTROY whose timer ran out. */
  readonly timer?: number;
  /** Protocol state text with trailing space ("SYN_SENT "), when the event carries protoinfo. */
  readonly protoState?: string;
  /** [origPackets, origBytes, replyPackets, replyBytes] on DESTROY when nf_conntrack_acct is on. */
  readonly counters?: readonly [number, number, number, number];
}

export interface ConntrackStats {
  found: number;
  invalid: number;
  insert: number;
  insert_failed: number;
  drop: number;
  early_drop: number;
  error: number;
  clash_resolve: number;
}

export interface ConntrackOptions {
  /** Overrides on top of the profile's defaults; the resulting object is `conntrack.sysctl` (mutable). */
  readonly sysctl?: Partial<NfConntrackSysctls>;
  readonly kernel?: string;
  /** Trackers by protocol number; defaults to TCP, UDP and ICMP. Anything else is tracked generically. */
  readonly trackers?: readonly L4Tracker[];
  /** Seeded generator in [0, 1), used for connection ids. */
  readonly rng?: () => number;
  readonly onEvent?: (ev: CtEvent) => void;
  /** Keep delivered events in `events` (drain with `takeEvents()`). */
  readonly recordEvents?: boolean;
}

/** The table's view of a tracker bound to its table: one shared object per (table, tracker), not per entry. */
interface Binding {
  readonly table: Conntrack;
  readonly l4: L4Tracker;
}

/**
 * struct nf_conn, reduced.
 *
 * Stored flat so that an entry is one object of small integers (no heap numbers, no nested tuples): addresses as
 * int32 (`u32 | 0`), each direction's protocol words packed as `srcU << 16 | dstU` (ports and ICMP id/type/code
 * are 16 bits), the two protocol numbers and the zone in one word. `orig`, `reply`, `zone`, `mark` and `id` are
 * accessors with the usual (u32) values; `orig`/`reply` build a fresh Tuple per read.
 */
export class NfConn implements NfConnL4View {
  /** ORIGINAL: src, dst (int32), srcU << 16 | dstU. */
  private os: number;
  private od: number;
  private ou: number;
  /** REPLY: the same. */
  private rs: number;
  private rd: number;
  private ru: number;
  /** ORIGINAL protonum | REPLY protonum << 8 | zone << 16. */
  private pz: number;
  status = 0;
  timeout: Seconds = 0;
  proto: unknown = undefined;
  /** The connmark (int32; `mark` reads it as u32). */
  private mk = 0;
  /** The id (int32; `id` reads it as u32). */
  private ident: number;
  /**
   * The acct extension (struct nf_conn_counter[2] as [origPackets, origBytes, replyPackets, replyBytes]): added
   * at creation only when nf_conntrack_acct is on, as nf_ct_acct_ext_add does; `conntrack -L` shows counters
   * exactly for the entries that have it.
   */
  acct: number[] | undefined = undefined;
  /** Cached IPCT_* bits not yet delivered (struct nf_conntrack_ecache.cache). */
  ecache = 0;
  /**
   * The NAT extension's masq_index (struct nf_conn_nat, the one field modelled): the output interface of a
   * MASQUERADEd connection, by name, for nf_nat_oif_changed. Set by src/nat; kept here rather than in an object
   * of its own, so the check reads no second object per packet.
   */
  masqIndex: string | undefined = undefined;
  /** When init_conntrack ran: the timer counts from confirmation, so confirm shifts timeout by the wait. */
  readonly created: Seconds;
  private readonly bind: Binding;

  constructor(bind: Binding, orig: Tuple, reply: Tuple, zone: number, id: number, now: Seconds) {
    this.bind = bind;
    this.os = orig.src | 0;
    this.od = orig.dst | 0;
    this.ou = (orig.srcU << 16) | (orig.dstU & 0xffff);
    this.rs = reply.src | 0;
    this.rd = reply.dst | 0;
    this.ru = (reply.srcU << 16) | (reply.dstU & 0xffff);
    this.pz = (orig.protonum & 0xff) | ((reply.protonum & 0xff) << 8) | ((zone & 0xffff) << 16);
    this.ident = id | 0;
    this.created = now;
  }

  get l4(): L4Tracker {
    return this.bind.l4;
  }

  /** ORIGINAL tuple (a fresh object per read). */
  get orig(): Tuple {
    const u = this.ou;
    return {
      src: this.os >>> 0,
      dst: this.od >>> 0,
      protonum: this.pz & 0xff,
      srcU: u >>> 16,
      dstU: u & 0xffff,
    };
  }
  set orig(t: Tuple) {
    this.os = t.src | 0;
    this.od = t.dst | 0;
    this.ou = (t.srcU << 16) | (t.dstU & 0xffff);
    this.pz = (this.pz & ~0xff) | (t.protonum & 0xff);
  }

  /** REPLY tuple (a fresh object per read). */
  get reply(): Tuple {
    const u = this.ru;
    return {
      src: this.rs >>> 0,
      dst: this.rd >>> 0,
      protonum: (this.pz >>> 8) & 0xff,
      srcU: u >>> 16,
      dstU: u & 0xffff,
    };
  }
  set reply(t: Tuple) {
    this.rs = t.src | 0;
    this.rd = t.dst | 0;
    this.ru = (t.srcU << 16) | (t.dstU & 0xffff);
    this.pz = (this.pz & ~0xff00) | ((t.protonum & 0xff) << 8);
  }

  get zone(): number {
    return (this.pz >>> 16) & 0xffff;
  }
  get id(): number {
    return this.ident >>> 0;
  }
  get mark(): number {
    return this.mk >>> 0;
  }
  set mark(v: number) {
    this.mk = v | 0;
  }

  /** Whether the ORIGINAL (dir 0) or REPLY (dir 1) tuple is this one (int32 addresses, packed words). */
  isTuple(dir: CtDir, s: number, d: number, u: number, protonum: number): boolean {
    return dir === 0
      ? this.os === s && this.od === d && this.ou === u && (this.pz & 0xff) === protonum
      : this.rs === s && this.rd === d && this.ru === u && ((this.pz >>> 8) & 0xff) === protonum;
  }

  /**
   * One direction's tuple field by field, without building a Tuple (hot paths such as NAT rewriting): addresses
   * as int32 (`>>> 0` for the unsigned value), ports/ids and the protocol number as they are.
   */
  tupleSrc(dir: CtDir): number {
    return dir === 0 ? this.os : this.rs;
  }
  tupleDst(dir: CtDir): number {
    return dir === 0 ? this.od : this.rd;
  }
  tupleSrcU(dir: CtDir): number {
    return (dir === 0 ? this.ou : this.ru) >>> 16;
  }
  tupleDstU(dir: CtDir): number {
    return (dir === 0 ? this.ou : this.ru) & 0xffff;
  }
  tupleProtonum(dir: CtDir): number {
    return dir === 0 ? this.pz & 0xff : (this.pz >>> 8) & 0xff;
  }

  /** The table hash of one direction's tuple. */
  hashOf(dir: CtDir): number {
    const zone = (this.pz >>> 16) & 0xffff;
    return dir === 0
      ? tupleHashOf(this.os, this.od, this.pz & 0xff, this.ou >>> 16, this.ou & 0xffff, zone)
      : tupleHashOf(this.rs, this.rd, (this.pz >>> 8) & 0xff, this.ru >>> 16, this.ru & 0xffff, zone);
  }

  /** The collision-map key of one direction's tuple (./tuple tupleKey). */
  keyOf(dir: CtDir): string {
    const zone = (this.pz >>> 16) & 0xffff;
    return dir === 0
      ? tupleKeyOf(this.os, this.od, this.pz & 0xff, this.ou >>> 16, this.ou & 0xffff, zone)
      : tupleKeyOf(this.rs, this.rd, (this.pz >>> 8) & 0xff, this.ru >>> 16, this.ru & 0xffff, zone);
  }

  /** Same ORIGINAL and REPLY tuples as `b` (or crossed, with `crossed`), compared field by field. */
  sameTuples(b: NfConn, crossed: boolean): boolean {
    const bp = b.pz;
    const swapped = ((bp >>> 8) & 0xff) | ((bp & 0xff) << 8);
    return crossed
      ? this.os === b.rs &&
          this.od === b.rd &&
          this.ou === b.ru &&
          this.rs === b.os &&
          this.rd === b.od &&
          this.ru === b.ou &&
          (this.pz & 0xffff) === swapped
      : this.os === b.os &&
          this.od === b.od &&
          this.ou === b.ou &&
          this.rs === b.rs &&
          this.rd === b.rd &&
          this.ru === b.ru &&
          (this.pz & 0xffff) === (bp & 0xffff);
  }

  /** Same ORIGINAL tuple as `b`. */
  sameOrig(b: NfConn): boolean {
    return this.os === b.os && this.od === b.od && this.ou === b.ou && (this.pz & 0xff) === (b.pz & 0xff);
  }

  /** struct nf_conn.tuplehash, for trackers: [ORIGINAL, REPLY] (a fresh array per read). */
  get tuplehash(): readonly [Tuple, Tuple] {
    return [this.orig, this.reply];
  }

  get confirmed(): boolean {
    return (this.status & IPS_CONFIRMED) !== 0;
  }

  /** nf_ct_kill(). */
  kill(): boolean {
    return this.bind.table.kill(this);
  }

  get origPackets(): number {
    return this.acct ? this.acct[0] : 0;
  }
  get origBytes(): number {
    return this.acct ? this.acct[1] : 0;
  }
  get replyPackets(): number {
    return this.acct ? this.acct[2] : 0;
  }
  get replyBytes(): number {
    return this.acct ? this.acct[3] : 0;
  }

  /** Seconds left (may be negative once expired). */
  remaining(now: Seconds): number {
    return this.timeout - now;
  }
}

const UNTRACKED: CtLookupResult = Object.freeze({
  state: "UNTRACKED",
  ctinfo: IP_CT_UNTRACKED,
  verdict: NF_ACCEPT,
});

/** Mutable context object reused across packets (trackers must not keep it). */
interface MutableCtx {
  hook: NfHook;
  sysctl: NfConntrackSysctls;
  kernel: string;
  now: Seconds;
}

export class Conntrack {
  readonly kernel: string;
  readonly sysctl: NfConntrackSysctls;
  readonly stats: ConntrackStats = {
    found: 0,
    invalid: 0,
    insert: 0,
    insert_failed: 0,
    drop: 0,
    early_drop: 0,
    error: 0,
    clash_resolve: 0,
  };
  /** Delivered events when `recordEvents` is set. */
  readonly events: CtEvent[] = [];

  /** Tuple hash -> entry (both directions of every confirmed entry, unless the slot was taken). */
  private readonly hash = new Map<number, NfConn>();
  /** Tuples whose hash slot held another entry, by packed key. Almost always empty. */
  private readonly overflow = new Map<string, NfConn>();
  /**
   * How many overflow tuples have each hash: a lookup that misses `hash` builds a packed key only when its hash
   * is here (with a few collisions in a large table, every miss used to build and hash a string).
   */
  private readonly overflowHashes = new Map<number, number>();
  private readonly trackers: (L4Tracker | undefined)[] = new Array(256);
  /** Per tracker, the object entries share to reach this table and their tracker. */
  private readonly bindings = new Map<L4Tracker, Binding>();
  private readonly rng?: () => number;
  private readonly onEvent?: (ev: CtEvent) => void;
  private readonly recordEvents: boolean;
  private readonly ctx: MutableCtx;
  /** The result `in` hands out with CtInOptions.reuseResult (all fields present, one shape). */
  private readonly result: Mutable<CtLookupResult> = {
    ct: undefined,
    ctinfo: undefined,
    state: "NEW",
    dir: undefined,
    reason: undefined,
    verdict: NF_ACCEPT,
    l4: undefined,
  };
  /** The result `confirm` hands out with CtConfirmOptions.reuseResult (the shape of its fresh results). */
  private readonly confirmResult: { verdict: number; ct: NfConn | undefined } = {
    verdict: NF_ACCEPT,
    ct: undefined,
  };
  private nextId = 1;
  private confirmedCount = 0;
  /** Lower bound of every confirmed entry's timeout: `advance` does nothing before it. */
  private earliest = Infinity;
  private evictCursor: Iterator<NfConn> | undefined;
  /** Latest time seen, for timers of events raised from inside trackers (kill). */
  private now: Seconds = 0;

  constructor(opts: ConntrackOptions = {}) {
    this.kernel = opts.kernel ?? DEFAULT_KERNEL;
    this.sysctl = { ...defaultSysctls(this.kernel), ...opts.sysctl };
    for (const t of opts.trackers ?? [tcpTracker, udpTracker, icmpTracker]) {
      if (this.trackers[t.l4proto]) throw new Error(`conntrack: two trackers for protocol ${t.l4proto}`);
      this.trackers[t.l4proto] = t;
    }
    this.rng = opts.rng;
    this.onEvent = opts.onEvent;
    this.recordEvents = opts.recordEvents ?? false;
    this.ctx = { hook: 0, sysctl: this.sysctl, kernel: this.kernel, now: 0 };
  }

  /** Number of confirmed entries (nf_conntrack_count). */
  get count(): number {
    return this.confirmedCount;
  }

  /** The tracker used for a protocol number (generic when none is registered). */
  tracker(protonum: number): L4Tracker {
    return this.trackers[protonum] ?? genericTracker;
  }

  // ---------------------------------------------------------------------------------------------------------
  // nf_conntrack_in

  /**
   * nf_conntrack_in() at PRE_ROUTING or LOCAL_OUT. Returns the entry and ctinfo attached to the packet, or
   * INVALID (no entry) with the kernel's reason, or UNTRACKED. A NEW entry is unconfirmed: pass it to `confirm`
   * at the last hook, or to `discard` if the packet is dropped before.
   */
  in(pkt: Packet, hook: NfHook, now: Seconds, opts?: CtInOptions): CtLookupResult {
    if (opts?.untracked) return UNTRACKED;
    this.now = now;
    // Zones are u16 (CT --zone 0..65535); entries store them in 16 bits.
    const zone = (opts?.template?.zone ?? opts?.zone ?? 0) & 0xffff;
    const ctx = this.ctx;
    ctx.hook = hook;
    ctx.now = now;

    // ipv4_get_l4proto(): conntrack sees reassembled packets; a lone non-first fragment has no transport header.
    if (pkt.ip.fragOffset !== 0) {
      return this.invalid({
        fn: "ipv4_get_l4proto",
        text: "[silent] non-first fragment (reassembly not modelled)",
      });
    }
    const protonum = pkt.ip.protocol;
    const l4 = this.trackers[protonum] ?? genericTracker;
    if (l4.error) {
      const reason = l4.error(pkt, ctx);
      if (reason) {
        this.stats.error++;
        return this.invalid(reason);
      }
    }
    // nf_conntrack_handle_icmp(): errors attach to the connection they quote, or are INVALID.
    if (protonum === IPPROTO_ICMP && pkt.l4.kind === "icmp" && icmpIsErr(pkt.l4.type))
      return this.icmpErrorIn(pkt, zone, now);

    for (let repeat = 0; ; repeat++) {
      // resolve_normal_ct()
      let srcU: number;
      let dstU: number;
      const ph = pkt.l4;
      if ((ph.kind === "tcp" && l4 === tcpTracker) || (ph.kind === "udp" && l4 === udpTracker)) {
        // The built-in port trackers' pktToTuple, without its result object.
        srcU = ph.srcPort;
        dstU = ph.dstPort;
      } else {
        const u = l4.pktToTuple(pkt);
        if (!u)
          return this.invalid({ fn: "nf_ct_get_tuple", text: "[silent] cannot read the transport header" });
        srcU = u.srcU;
        dstU = u.dstU;
      }
      const s = pkt.ip.src | 0;
      const d = pkt.ip.dst | 0;
      const w = (srcU << 16) | (dstU & 0xffff);
      let ct = this.live(this.findFlat(s, d, w, protonum, zone), now);
      let dir: CtDir = IP_CT_DIR_ORIGINAL;
      if (ct) {
        this.stats.found++;
        if (ct.isTuple(IP_CT_DIR_REPLY, s, d, w, protonum)) dir = IP_CT_DIR_REPLY;
      } else {
        const tuple: Tuple = { src: s >>> 0, dst: d >>> 0, protonum, srcU, dstU };
        const created = this.initConntrack(l4, tuple, zone, now);
        if (!created.ct) {
          if (created.drop) {
            this.stats.drop++;
            return { state: "INVALID", reason: created.reason, verdict: NF_DROP };
          }
          return this.invalid(created.reason);
        }
        ct = created.ct;
      }
      let ctinfo: CtInfo;
      if (dir === IP_CT_DIR_REPLY) ctinfo = IP_CT_ESTABLISHED_REPLY;
      else if (ct.status & IPS_SEEN_REPLY) ctinfo = IP_CT_ESTABLISHED;
      else if (ct.status & IPS_EXPECTED) ctinfo = IP_CT_RELATED;
      else ctinfo = IP_CT_NEW;

      // nf_conntrack_handle_packet()
      const oldStatus = ct.status;
      const oldTimeout = ct.timeout;
      const watch = this.eventsOn() && l4.showState !== undefined;
      const oldState = watch && ct.confirmed ? l4.showState!(ct) : "";
      const res = l4.packet(ct, pkt, dir, ctinfo, ctx);
      if (res.verdict <= 0) {
        if (res.verdict === -NF_REPEAT && repeat < 3) continue;
        this.stats.invalid++;
        if (res.verdict === NF_DROP) this.stats.drop++;
        return {
          state: "INVALID",
          reason: res.reason ?? { fn: `${l4.name}_packet`, text: "[silent] tracker returned INVALID" },
          verdict: res.verdict === NF_DROP ? NF_DROP : -res.verdict,
          l4: res,
        };
      }
      if (ct.status & IPS_FIXED_TIMEOUT && ct.confirmed) ct.timeout = oldTimeout;
      if (!res.ignored) this.account(ct, dir, pkt);
      let ev = 0;
      if (ctinfo === IP_CT_ESTABLISHED_REPLY && !(ct.status & IPS_SEEN_REPLY)) {
        ct.status |= IPS_SEEN_REPLY;
        ev |= 1 << IPCT_REPLY;
      }
      if (ct.status & ~oldStatus & IPS_ASSURED) ev |= 1 << IPCT_ASSURED;
      if (watch && l4.showState!(ct) !== oldState) ev |= 1 << IPCT_PROTOINFO;
      const tracked = (res as { events?: readonly string[] }).events;
      if (tracked !== undefined && tracked.length !== 0 && tracked.includes("IPCT_PROTOINFO"))
        ev |= 1 << IPCT_PROTOINFO;
      ct.ecache |= ev;
      if (ct.confirmed && ct.timeout < this.earliest) this.earliest = ct.timeout;
      if (opts?.reuseResult === true) {
        const r = this.result;
        r.ct = ct;
        r.ctinfo = ctinfo;
        r.state = ctinfoState(ctinfo);
        r.dir = dir;
        r.verdict = res.verdict;
        r.l4 = res;
        return r;
      }
      return { ct, ctinfo, state: ctinfoState(ctinfo), dir, verdict: res.verdict, l4: res };
    }
  }

  /**
   * `in` for an ICMP error: the entry it quotes, as RELATED. A method of its own: the lookup closure it needs
   * would otherwise make `in` allocate a context for its locals on every packet.
   */
  private icmpErrorIn(pkt: Packet, zone: number, now: Seconds): CtLookupResult {
    const r = nfConntrackInetError(pkt, (t) => this.lookup(t, zone, now));
    if (!r.ct) {
      this.stats.error++;
      return this.invalid(r.reason);
    }
    return { ct: r.ct, ctinfo: r.ctinfo, state: "RELATED", dir: r.dir, verdict: NF_ACCEPT };
  }

  private invalid(reason: CtReason): CtLookupResult {
    this.stats.invalid++;
    return { state: "INVALID", reason, verdict: NF_ACCEPT };
  }

  /** nf_ct_acct_update(): packets and bytes (IP total length) per direction. */
  private account(ct: NfConn, dir: CtDir, pkt: Packet): void {
    const a = ct.acct;
    if (!a) return;
    const i = dir === IP_CT_DIR_ORIGINAL ? 0 : 2;
    a[i]++;
    a[i + 1] += pkt.ip.totalLength;
  }

  /** init_conntrack() + __nf_conntrack_alloc(): invert, check the limit (early drop), allocate. */
  private initConntrack(
    l4: L4Tracker,
    tuple: Tuple,
    zone: number,
    now: Seconds,
  ):
    | { ct: NfConn; reason?: undefined; drop?: undefined }
    | { ct?: undefined; reason: CtReason; drop: boolean } {
    const inv = l4.invertTuple(tuple);
    if (!inv) {
      return {
        reason: { fn: "init_conntrack", text: "[silent] nf_ct_invert_tuple: the tuple has no inverse" },
        drop: false,
      };
    }
    const max = this.sysctl.nf_conntrack_max;
    if (max && this.confirmedCount + 1 > max) {
      this.advance(now);
      if (this.confirmedCount + 1 > max && !this.earlyDrop(now)) {
        return {
          reason: { fn: "__nf_conntrack_alloc", text: "nf_conntrack: table full, dropping packet" },
          drop: true,
        };
      }
    }
    const reply: Tuple = {
      src: tuple.dst,
      dst: tuple.src,
      protonum: tuple.protonum,
      srcU: inv.srcU,
      dstU: inv.dstU,
    };
    const ct = new NfConn(this.binding(l4), tuple, reply, zone, this.allocId(), now);
    if (this.sysctl.nf_conntrack_acct) ct.acct = [0, 0, 0, 0];
    return { ct };
  }

  private binding(l4: L4Tracker): Binding {
    let b = this.bindings.get(l4);
    if (b === undefined) this.bindings.set(l4, (b = Object.freeze({ table: this, l4 })));
    return b;
  }

  private allocId(): number {
    if (this.rng) return Math.floor(this.rng() * 0x100000000) >>> 0;
    return this.nextId++;
  }

  /**
   * early_drop(): look at up to NF_CT_EVICTION_RANGE connections from the eviction cursor (table insertion
   * order, wrapping) and delete the first confirmed one that is neither ASSURED nor dying. Expired entries met on
   * the way are reaped but do not count as a drop (as in early_drop_list).
   */
  private earlyDrop(now: Seconds): boolean {
    const seen = new Set<NfConn>();
    let wrapped = false;
    while (seen.size < NF_CT_EVICTION_RANGE) {
      if (!this.evictCursor) this.evictCursor = this.slots();
      const next = this.evictCursor.next();
      if (next.done) {
        this.evictCursor = undefined;
        if (wrapped || this.hash.size + this.overflow.size === 0) return false;
        wrapped = true;
        continue;
      }
      const ct = next.value;
      if (seen.has(ct)) continue;
      seen.add(ct);
      if (ct.timeout <= now) {
        this.expire(ct, now);
        continue;
      }
      if (ct.status & (IPS_ASSURED | IPS_DYING) || !ct.confirmed) continue;
      if (this.deleteCt(ct, now)) {
        this.stats.early_drop++;
        return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------------------------------------------------
  // table

  /** ____nf_conntrack_find(): confirmed entry by tuple and zone; an expired entry met here is reaped. */
  lookup(tuple: Tuple, zone: number, now: Seconds): NfConn | undefined {
    return this.live(this.find(tuple, zone), now);
  }

  /** The entry holding this tuple in this zone, expired or not. */
  private find(t: Tuple, zone: number): NfConn | undefined {
    return this.findFlat(t.src | 0, t.dst | 0, (t.srcU << 16) | (t.dstU & 0xffff), t.protonum, zone & 0xffff);
  }

  /** `find` on the flat form: int32 addresses, `srcU << 16 | dstU`. */
  private findFlat(s: number, d: number, w: number, protonum: number, zone: number): NfConn | undefined {
    // `| 0`: typed as a small integer even when tupleHashOf is not inlined, V8 inlines the Map probe.
    const h = tupleHashOf(s, d, protonum, w >>> 16, w & 0xffff, zone) | 0;
    const ct = this.hash.get(h);
    if (ct !== undefined && ct.zone === zone) {
      if (ct.isTuple(IP_CT_DIR_REPLY, s, d, w, protonum)) return ct;
      // A NAT-clash entry is in the table by its reply tuple only.
      if (ct.isTuple(IP_CT_DIR_ORIGINAL, s, d, w, protonum) && !(ct.status & IPS_NAT_CLASH)) return ct;
    }
    // Asked for every miss (never skipped while the overflow is empty): V8 optimizes the lookups before the first
    // collision, and a path first taken then would throw that code away.
    if (!this.overflowHashes.has(h)) return undefined;
    return this.overflow.get(tupleKeyOf(s, d, protonum, w >>> 16, w & 0xffff, zone));
  }

  /** The entry holding direction `dir` of `ct`'s tuples (the entry itself or another). */
  private findOf(ct: NfConn, dir: CtDir): NfConn | undefined {
    const t = dir === IP_CT_DIR_ORIGINAL ? ct.orig : ct.reply;
    return this.find(t, ct.zone);
  }

  /**
   * Adds direction `dir` of `ct` to the table. Both directions of an entry usually share one hash (the hash is
   * symmetric), so the second `put` finds the entry already in its slot and adds nothing.
   */
  private put(ct: NfConn, dir: CtDir): void {
    const h = ct.hashOf(dir);
    const cur = this.hash.get(h);
    if (cur === undefined) this.hash.set(h, ct);
    else if (cur !== ct) {
      const key = ct.keyOf(dir);
      if (!this.overflow.has(key)) this.overflowHashes.set(h, (this.overflowHashes.get(h) ?? 0) + 1);
      this.overflow.set(key, ct);
    }
    // cur === ct: the other direction has the same hash and `find` compares both tuples.
  }

  /** Removes direction `dir` of `ct` from the table (call for both directions together). */
  private remove(ct: NfConn, dir: CtDir): void {
    const h = ct.hashOf(dir);
    if (this.hash.get(h) === ct) this.hash.delete(h);
    else if (this.overflow.size !== 0) {
      const key = ct.keyOf(dir);
      if (this.overflow.get(key) === ct) {
        this.overflow.delete(key);
        const n = this.overflowHashes.get(h)!;
        if (n > 1) this.overflowHashes.set(h, n - 1);
        else this.overflowHashes.delete(h);
      }
    }
  }

  /** Every table slot's entry (entries appear once per direction). */
  private *slots(): IterableIterator<NfConn> {
    yield* this.hash.values();
    yield* this.overflow.values();
  }

  private live(ct: NfConn | undefined, now: Seconds): NfConn | undefined {
    if (ct && ct.timeout <= now) {
      this.expire(ct, now);
      return undefined;
    }
    return ct;
  }

  /**
   * nf_conntrack_tuple_taken(): whether another entry already uses `tuple` (for NAT's unique-tuple search),
   * ignoring `ignored` and any entry with the same ORIGINAL tuple (clash resolution deals with that).
   */
  tupleTaken(tuple: Tuple, ignored: NfConn, now: Seconds): boolean {
    const ct = this.lookup(tuple, ignored.zone, now);
    if (!ct || ct === ignored) return false;
    if (ignored.sameOrig(ct)) return false;
    return true;
  }

  /**
   * For NAT (nf_conntrack_alter_reply): give the entry a new REPLY tuple. A confirmed entry is re-keyed (the
   * kernel only allows this before confirmation; re-keying here serves callers that rebind).
   */
  setReplyTuple(ct: NfConn, tuple: Tuple): void {
    if (ct.confirmed) {
      const clash = (ct.status & IPS_NAT_CLASH) !== 0;
      if (!clash) this.remove(ct, IP_CT_DIR_ORIGINAL);
      this.remove(ct, IP_CT_DIR_REPLY);
      ct.reply = tuple;
      if (!clash) this.put(ct, IP_CT_DIR_ORIGINAL);
      this.put(ct, IP_CT_DIR_REPLY);
    } else {
      ct.reply = tuple;
    }
  }

  /** Changes the connmark (CONNMARK / ct mark set), caching IPCT_MARK when it changes. */
  setMark(ct: NfConn, mark: number): void {
    const m = mark >>> 0;
    if (ct.mark !== m) {
      ct.mark = m;
      ct.ecache |= 1 << IPCT_MARK;
    }
  }

  /**
   * nf_ct_set_closing(): the tracker's set_closing (TCP: CLOSE with the CLOSE timeout), an IPCT_PROTOINFO event
   * cached for the next confirm. Used by REJECT --reject-with tcp-reset (nf_send_reset, Linux 6.3 and later).
   */
  setClosing(ct: NfConn, now: Seconds): void {
    const l4 = this.trackers[ct.orig.protonum];
    if (!l4?.setClosing) return;
    const ctx = this.ctx;
    ctx.now = now;
    if (l4.setClosing(ct, ctx)) ct.ecache |= 1 << IPCT_PROTOINFO;
    if (ct.confirmed && ct.timeout < this.earliest) this.earliest = ct.timeout;
  }

  /** Confirmed, visible entries in table order (as `conntrack -L` would list them; NAT-clash entries hidden). */
  list(now?: Seconds): NfConn[] {
    if (now !== undefined) this.advance(now);
    const out: NfConn[] = [];
    for (const [h, ct] of this.hash) {
      if (ct.status & IPS_NAT_CLASH) continue;
      if (h === ct.hashOf(IP_CT_DIR_ORIGINAL)) out.push(ct);
    }
    for (const [key, ct] of this.overflow) {
      if (ct.status & IPS_NAT_CLASH) continue;
      if (key === ct.keyOf(IP_CT_DIR_ORIGINAL)) out.push(ct);
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------------------
  // confirm, discard, kill, expiry

  /**
   * nf_confirm() / nf_conntrack_confirm() at the last hook (POST_ROUTING, LOCAL_IN). Inserts an unconfirmed
   * entry (ORIGINAL-direction packets only), resolving clashes for UDP; then delivers the entry's cached events.
   * Returns the verdict and the entry now attached to the packet (clash resolution may swap it).
   */
  confirm(
    ct: NfConn,
    now: Seconds,
    ctinfo: CtInfo = IP_CT_NEW,
    opts?: CtConfirmOptions,
  ): { verdict: number; ct?: NfConn; reason?: CtReason } {
    this.now = now;
    let cur: NfConn = ct;
    if (!ct.confirmed) {
      const isReply = ctinfo >= IP_CT_IS_REPLY && ctinfo !== IP_CT_UNTRACKED;
      if (isReply) return { verdict: NF_ACCEPT, ct };
      const r = this.insert(ct, now);
      if (r.verdict !== NF_ACCEPT) return r;
      cur = r.ct!;
    }
    this.deliverCached(cur, now);
    if (opts?.reuseResult === true) {
      const r = this.confirmResult;
      r.ct = cur;
      return r;
    }
    return { verdict: NF_ACCEPT, ct: cur };
  }

  /** __nf_conntrack_confirm(): the insertion proper. */
  private insert(ct: NfConn, now: Seconds): { verdict: number; ct?: NfConn; reason?: CtReason } {
    if (ct.status & IPS_DYING) {
      this.stats.insert_failed++;
      return {
        verdict: NF_DROP,
        reason: { fn: "__nf_conntrack_confirm", text: "[silent] entry died before confirm" },
      };
    }
    // An expired entry still in the table would clash in the kernel until GC reaps it; it is reaped here first.
    const h =
      this.live(this.findOf(ct, IP_CT_DIR_ORIGINAL), now) ?? this.live(this.findOf(ct, IP_CT_DIR_REPLY), now);
    if (h) return this.resolveClash(ct, h, now);
    // The timer starts at confirmation.
    ct.timeout += now - ct.created;
    ct.status |= IPS_CONFIRMED;
    this.put(ct, IP_CT_DIR_ORIGINAL);
    this.put(ct, IP_CT_DIR_REPLY);
    this.confirmedCount++;
    this.stats.insert++;
    if (ct.timeout < this.earliest) this.earliest = ct.timeout;
    ct.ecache |= 1 << IPCT_NEW;
    return { verdict: NF_ACCEPT, ct };
  }

  /** nf_ct_resolve_clash(): merge with an identical entry, or insert a UDP loser by its reply tuple only. */
  private resolveClash(
    loser: NfConn,
    h: NfConn,
    now: Seconds,
  ): { verdict: number; ct?: NfConn; reason?: CtReason } {
    const drop = () => {
      this.stats.drop++;
      this.stats.insert_failed++;
      return {
        verdict: NF_DROP,
        reason: { fn: "__nf_conntrack_confirm", text: "[silent] insert_failed: tuple clash at confirm" },
      };
    };
    if (!ALLOW_CLASH.has(h.orig.protonum)) return drop();
    if (this.canMerge(h, loser)) return this.merge(h, loser);
    // nf_ct_resolve_clash_harder(): the reply direction must be unique.
    const r = this.findOf(loser, IP_CT_DIR_REPLY);
    if (r) return this.canMerge(r, loser) ? this.merge(r, loser) : drop();
    loser.timeout = now + 1;
    loser.status |= IPS_FIXED_TIMEOUT | IPS_NAT_CLASH | IPS_CONFIRMED;
    this.put(loser, IP_CT_DIR_REPLY);
    this.confirmedCount++;
    this.stats.clash_resolve++;
    if (loser.timeout < this.earliest) this.earliest = loser.timeout;
    return { verdict: NF_ACCEPT, ct: loser };
  }

  /** nf_ct_match() || nf_ct_match_reverse(). */
  private canMerge(a: NfConn, b: NfConn): boolean {
    if (a.zone !== b.zone) return false;
    return a.sameTuples(b, false) || a.sameTuples(b, true);
  }

  /** __nf_ct_resolve_clash() success: the packet moves to the winner, its bytes merged (nf_ct_acct_merge). */
  private merge(winner: NfConn, loser: NfConn): { verdict: number; ct: NfConn } {
    if (winner.acct && loser.acct) {
      winner.acct[0] += loser.acct[0];
      winner.acct[1] += loser.acct[1];
    }
    loser.status |= IPS_DYING;
    this.stats.clash_resolve++;
    return { verdict: NF_ACCEPT, ct: winner };
  }

  /** The packet holding an unconfirmed entry was dropped before confirm: the entry is freed, nothing remains. */
  discard(ct: NfConn): void {
    if (!ct.confirmed) ct.status |= IPS_DYING;
  }

  /** nf_ct_kill() / nf_ct_delete(): DESTROY event (timer shown if any is left), removal. False if already dying. */
  kill(ct: NfConn): boolean {
    return this.deleteCt(ct, this.now);
  }

  private deleteCt(ct: NfConn, now: Seconds): boolean {
    if (ct.status & IPS_DYING) return false;
    ct.status |= IPS_DYING;
    if (!ct.confirmed) return true;
    if (this.eventsOn()) this.emit(this.snapshot(ct, "DESTROY", 1 << IPCT_DESTROY, now));
    if (!(ct.status & IPS_NAT_CLASH)) this.remove(ct, IP_CT_DIR_ORIGINAL);
    this.remove(ct, IP_CT_DIR_REPLY);
    this.confirmedCount--;
    return true;
  }

  private expire(ct: NfConn, now: Seconds): void {
    this.deleteCt(ct, now);
  }

  /**
   * Reaps every entry whose timer ran out by `now` (timeout <= now), oldest expiry first (ties by id), with
   * DESTROY events. Cheap when nothing can have expired.
   */
  advance(now: Seconds): void {
    if (now > this.now) this.now = now;
    if (now < this.earliest) return;
    const dead: NfConn[] = [];
    let earliest = Infinity;
    for (const ct of this.slots()) {
      if (ct.timeout <= now) {
        if (!(ct.status & IPS_DYING)) dead.push(ct);
      } else if (ct.timeout < earliest) earliest = ct.timeout;
    }
    // Each entry appears under two keys.
    const unique = [...new Set(dead)].sort((a, b) => a.timeout - b.timeout || a.id - b.id);
    for (const ct of unique) this.expire(ct, now);
    this.earliest = earliest;
  }

  // ---------------------------------------------------------------------------------------------------------
  // events

  private eventsOn(): boolean {
    return (this.onEvent !== undefined || this.recordEvents) && this.sysctl.nf_conntrack_events !== 0;
  }

  /** nf_ct_deliver_cached_events(). */
  private deliverCached(ct: NfConn, now: Seconds): void {
    const ev = ct.ecache;
    if (!ev) return;
    ct.ecache = 0;
    if (!this.eventsOn() || !ct.confirmed || ct.status & IPS_DYING) return;
    const type = ev & ((1 << IPCT_NEW) | (1 << IPCT_RELATED)) ? "NEW" : "UPDATE";
    this.emit(this.snapshot(ct, type, ev, now));
  }

  private snapshot(ct: NfConn, type: CtEvent["type"], events: number, now: Seconds): CtEvent {
    const left = timerOf(ct, now);
    const destroy = type === "DESTROY";
    const showState = ct.l4.showState;
    const withState = showState && (destroy || events & (1 << IPCT_PROTOINFO) || events & (1 << IPCT_NEW));
    return {
      type,
      events,
      time: now,
      id: ct.id,
      orig: ct.orig,
      reply: ct.reply,
      status: ct.status,
      mark: ct.mark,
      zone: ct.zone,
      timer: destroy && left === 0 ? undefined : left,
      protoState: withState ? showState(ct) : undefined,
      counters: destroy && ct.acct ? [ct.acct[0], ct.acct[1], ct.acct[2], ct.acct[3]] : undefined,
    };
  }

  private emit(ev: CtEvent): void {
    if (this.recordEvents) this.events.push(ev);
    this.onEvent?.(ev);
  }

  /** Returns and clears the recorded events. */
  takeEvents(): CtEvent[] {
    return this.events.length === 0 ? [] : this.events.splice(0, this.events.length);
  }
}

/** The reply tuple init_conntrack would compute with tracker `l4` (nf_ct_invert_tuple); for NAT and tests. */
export function replyTupleOf(tuple: Tuple, l4: L4Tracker): Tuple | undefined {
  const inv = l4.invertTuple(tuple);
  if (!inv) return undefined;
  return { src: tuple.dst, dst: tuple.src, protonum: tuple.protonum, srcU: inv.srcU, dstU: inv.dstU };
}

/**
 * Whole seconds left, as nf_ct_expires()/HZ: never negative, rounded down. A microsecond of slack absorbs the
 * rounding of `(now + t) - now` in floating point (the kernel counts integer jiffies).
 */
export function timerOf(ct: { readonly timeout: Seconds }, now: Seconds): number {
  return Math.max(0, Math.floor(ct.timeout - now + 1e-6));
}

/** CTINFO2DIR. */
export function ctinfoDir(ctinfo: CtInfo): CtDir {
  return ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
}
