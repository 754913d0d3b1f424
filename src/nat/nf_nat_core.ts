/**
 * The NAT core: binding a new connection to a NAT mapping (a unique REPLY tuple), the null binding, the
 * per-packet rewrite and the NAT hook logic.
 *
 * Mirrors net/netfilter/nf_nat_core.c — nf_nat_setup_info, get_unique_tuple, find_appropriate_src (the bysource
 * hash), same_src, nf_in_range, l4proto_in_range, find_best_ips_proto, nf_nat_used_tuple, nf_nat_used_tuple_new,
 * nf_nat_used_tuple_harder (nf_nat_may_kill, nf_seq_has_advanced), nf_nat_l4proto_unique_tuple,
 * nf_nat_alloc_null_binding, nf_nat_packet, nf_nat_inet_fn — and nf_nat_proto.c nf_nat_ipv4_fn, Linux 6.17
 * (Kingxukai/linux @ 9b44fff6). Checked against MASQUERADE recordings of Linux 6.18.44 (test/oracle/recordings).
 *
 * Kernel profiles (`NatState.kernel`), from the sources named in /work/shared/reference/KERNEL_FACTS.md §4.2:
 * - 6.x ("6.1", "6.18"): the original tuple is kept if free per nf_nat_used_tuple_new (UDP reverse clash of two
 *   non-NAT entries counts as free); the port search starts at get_random_u16() for SRC manips and RANDOM, at 0
 *   (the range minimum) for a DST manip; the last 32 attempts for a SYN_SENT TCP entry may evict a SNATed
 *   TIME_WAIT entry (nf_nat_used_tuple_harder). Whether 6.1 already had the DST offset 0 and the eviction is
 *   [UNVERIFIED]; it is treated as 6.x.
 * - 5.x ("5.10"): every search starts at prandom_u32() (DST too); no _new check, no eviction.
 * - 4.19: as 5.x (the 128/64/32/16 schedule is a stable backport); RANDOM used secure_port(), a keyed hash
 *   with a boot-time secret, which is drawn from the generator here; ICMP ids use the old `static u16 id` rover
 *   over 0..0xfffe (nf_nat_proto_icmp.c icmp_unique_tuple).
 * - 3.x ("3.10", "3.6"): ports start at a per-protocol rover that remembers the last port handed out and the
 *   whole range is searched (nf_nat_proto_common.c, pre-4.17); ICMP ids as 4.19.
 *
 * Model choices:
 * - The bysource hash is a Map keyed by a 30-bit hash of (source address, source port/id, protocol, zone), as
 *   the kernel's hash_by_src; each bucket lists its entries newest first (hlist_add_head) and, as in
 *   find_appropriate_src, the walk compares each entry's source and zone itself. Entries are validated lazily
 *   instead of being unlinked when a conntrack dies (nf_nat_cleanup_conntrack): an entry counts while it is not
 *   DYING and, once confirmed, is still the table's entry for its ORIGINAL tuple. A packet dropped after NAT
 *   setup must have its unconfirmed entry discarded (`Conntrack.discard`, which marks it DYING), as the kernel
 *   frees it with the skb.
 *   New entries wait in a queue and are hashed in when the index is next read: the walk sees what the kernel's
 *   would, and rule sets that never search it (every SNAT random-fully) never hash a connection's source.
 * - find_best_ips_proto hashes the address bytes as an x86-64 kernel does (little-endian u32 loads of the
 *   __be32; see jhash.ts leU32), so the address picked from a range matches a real x86 machine.
 * - nf_conn_nat is reduced to its masq_index (for nf_nat_oif_changed), the connection's `masqIndex`, holding
 *   the output interface name instead of an ifindex.
 * Leaves out on purpose: IPv6, helpers and expectations (nf_nat_follow_master, seqadj), GRE keys (PPTP),
 * ctnetlink NAT setup, VRF (in_vrf_postrouting), xfrm re-lookup, the route/socket side effects of
 * nf_nat_ipv4_pre_routing/local_fn/local_in (the caller compares addresses itself), offloaded entries.
 *
 * The hook callback: `NatChainRunner` is "run the nat table's chains for this hook" (the kernel walks its
 * lookup-hook entries, ipt_do_table of the nat table). It receives the packet, its conntrack entry and ctinfo
 * and the hook, and returns a verdict. A NAT target in those chains calls nfNatSetupInfo (or
 * nfNatMasqueradeIpv4, nfNatRedirectIpv4, netmapTg4) and returns what that returned; since NAT targets are
 * terminal, the first one that runs ends the traversal. NF_ACCEPT from the runner with no binding made means no
 * rule applied: the null binding is made. Any other verdict is returned as is.
 */
import type { Conntrack, NfConn } from "../conntrack/core";
import { ctinfoDir } from "../conntrack/core";
import type { CtInfo, NfHook, Seconds, Tuple } from "../conntrack/types";
import {
  IPS_DST_NAT,
  IPS_DST_NAT_DONE,
  IPS_DYING,
  IPS_FIXED_TIMEOUT,
  IPS_NAT_MASK,
  IPS_OFFLOAD,
  IPS_SEQ_ADJUST,
  IPS_SRC_NAT,
  IPS_SRC_NAT_DONE,
  IP_CT_DIR_ORIGINAL,
  IP_CT_DIR_REPLY,
  IP_CT_NEW,
  IP_CT_RELATED,
  IP_CT_RELATED_REPLY,
  NF_ACCEPT,
  NF_DROP,
  NF_INET_POST_ROUTING,
} from "../conntrack/types";
import { kernelAtLeast } from "../conntrack/profile";
import { IPPROTO_SCTP, IPPROTO_UDPLITE, invertTuple, makeTuple, tupleEqual } from "../conntrack/tuple";
import type { IpCtTcp } from "../conntrack/tcp_window";
import { TCP_CONNTRACK_SYN_SENT, TCP_CONNTRACK_TIME_WAIT } from "../../tables/tcp_conntracks";
import type { Packet } from "../wire/packet";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from "../wire/packet";
import { jhash2, leU32, reciprocalScale } from "../util/jhash";
import { Prng } from "../util/prng";
import { nfNatIcmpReplyTranslation, nfNatManipPkt } from "./nf_nat_proto";
import type { PacketWritable } from "./nf_nat_proto";
import type { NfNatManipType, NfNatRange2 } from "./types";
import {
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_OFFSET,
  NF_NAT_RANGE_PROTO_RANDOM,
  NF_NAT_RANGE_PROTO_RANDOM_ALL,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  hook2manip,
  nfNatInitialized,
} from "./types";

/** NF_NAT_MAX_ATTEMPTS and NF_NAT_HARDER_THRESH. */
export const NF_NAT_MAX_ATTEMPTS = 128;
export const NF_NAT_HARDER_THRESH = NF_NAT_MAX_ATTEMPTS / 4;

const IPPROTO_GRE = 47;
const IPPROTO_DCCP = 33;

/** Which generation of the port search a kernel profile uses (see the header). */
export type NatGeneration = "6" | "5" | "4" | "3";

export function natGeneration(kernel: string): NatGeneration {
  if (kernelAtLeast(kernel, "6.0")) return "6";
  if (kernelAtLeast(kernel, "5.0")) return "5";
  if (kernelAtLeast(kernel, "4.0")) return "4";
  return "3";
}

export interface NatStateOptions {
  readonly conntrack: Conntrack;
  /** Seeded generator for port offsets; default: a generator seeded with 0. */
  readonly prng?: Prng;
  /** Kernel profile id; default: the conntrack table's. */
  readonly kernel?: string;
  /** pr_info() sink ("eth1 ate my IP address"). */
  readonly log?: (message: string) => void;
}

/** The NAT state of one network namespace. */
export class NatState {
  readonly conntrack: Conntrack;
  readonly prng: Prng;
  readonly kernel: string;
  readonly generation: NatGeneration;
  readonly log: (message: string) => void;
  /** nf_nat_bysource: key -> entries, newest first. Brought up to date from `pending` when it is read. */
  private readonly bysource = new Map<number, NfConn[]>();
  /** Entries added since the index was last read, oldest first (see addBysource). */
  private readonly pending: NfConn[] = [];
  /** Queue and index size at which addBysource next looks for dead entries. */
  private bysourceSweepAt = 4096;
  /** 3.x per-protocol port rovers (tcp_port_rover, udp_port_rover, ...) and the ICMP `static u16 id`. */
  private readonly rovers = new Map<number, number>();
  icmpIdRover = 0;

  constructor(opts: NatStateOptions) {
    this.conntrack = opts.conntrack;
    this.prng = opts.prng ?? new Prng(0);
    this.kernel = opts.kernel ?? opts.conntrack.kernel;
    this.generation = natGeneration(this.kernel);
    this.log = opts.log ?? (() => {});
  }

  rover(protonum: number): number {
    return this.rovers.get(protonum) ?? 0;
  }
  setRover(protonum: number, value: number): void {
    this.rovers.set(protonum, value & 0xffff);
  }

  // ---------------------------------------------------------------------------------------------------------
  // bysource

  /** Whether a bysource entry still stands for a live connection (see the header). */
  private alive(ct: NfConn, now: Seconds): boolean {
    if (ct.status & IPS_DYING) return false;
    if (!ct.confirmed) return true;
    return this.conntrack.lookup(ct.orig, ct.zone, now) === ct;
  }

  /**
   * hlist_add_head_rcu(&ct->nat_bysource, ...) in nf_nat_setup_info. The entry is queued and hashed in only when
   * the index is read (find_appropriate_src): a rule set whose SNAT rules all skip that search (random-fully,
   * as kube-proxy's MASQUERADE) never pays for hashing a connection's source.
   */
  addBysource(ct: NfConn, now: Seconds): void {
    this.pending.push(ct);
    const size = this.pending.length + this.bysource.size;
    if (size < this.bysourceSweepAt) return;
    // Only dead entries make a sweep worth its lookups: while queue and index together are smaller than twice the
    // live table (few can be dead), the next look is at twice the size.
    if (size >= 2 * this.conntrack.count) this.sweepBysource(now);
    else this.bysourceSweepAt = size * 2;
  }

  /** Hashes the queued entries in, oldest first, so that each bucket lists its entries newest first. */
  private flushBysource(): void {
    const q = this.pending;
    for (let i = 0; i < q.length; i++) {
      const ct = q[i];
      const key = bysourceKey(ct.orig, ct.zone);
      const list = this.bysource.get(key);
      if (list) {
        if (!list.includes(ct)) list.unshift(ct);
      } else this.bysource.set(key, [ct]);
    }
    q.length = 0;
  }

  /** Live entries with this original source, newest first (stale ones are dropped on the way). */
  bysourceEntries(tuple: Tuple, zone: number, now: Seconds): NfConn[] {
    if (this.pending.length > 0) this.flushBysource();
    const key = bysourceKey(tuple, zone);
    const list = this.bysource.get(key);
    if (!list) return [];
    const live = list.filter((ct) => this.alive(ct, now));
    if (live.length === 0) this.bysource.delete(key);
    else if (live.length !== list.length) this.bysource.set(key, live);
    return live;
  }

  /** Drops every stale entry of the queue and the index (amortised: see addBysource). */
  sweepBysource(now: Seconds): void {
    const q = this.pending;
    let m = 0;
    for (let i = 0; i < q.length; i++) if (this.alive(q[i], now)) q[m++] = q[i];
    q.length = m;
    for (const [key, list] of this.bysource) {
      // Compacted in place: most lists are one entry long and still live.
      let n = 0;
      for (let i = 0; i < list.length; i++) if (this.alive(list[i], now)) list[n++] = list[i];
      if (n === 0) this.bysource.delete(key);
      else list.length = n;
    }
    this.bysourceSweepAt = Math.max(4096, 2 * (q.length + this.bysource.size));
  }

  /** Number of keys in the bysource index, queued entries hashed in (for tests and memory measurements). */
  get bysourceSize(): number {
    this.flushBysource();
    return this.bysource.size;
  }
}

/**
 * hash_by_src's inputs (source address, source port/id, protocol, zone) mixed into 30 bits: a small integer, which
 * V8 keeps in a Map without allocating a number object per key.
 */
function bysourceKey(t: Tuple, zone: number): number {
  let h = Math.imul(t.src ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ ((t.srcU & 0xffff) | ((t.protonum & 0xff) << 16)), 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ (zone & 0xffff), 0x27d4eb2f);
  return (h ^ (h >>> 15)) & 0x3fffffff;
}

// ---------------------------------------------------------------------------------------------------------------
// used-tuple checks

/** nf_nat_used_tuple(): is the inverse of `tuple` some other entry's tuple? */
export function nfNatUsedTuple(nat: NatState, tuple: Tuple, ct: NfConn, now: Seconds): boolean {
  const reply = invertTuple(tuple);
  if (!reply) return false;
  return nat.conntrack.tupleTaken(reply, ct, now);
}

/** Looks a tuple up and says which direction of the found entry it is (the tuplehash's dst.dir). */
function findWithDir(nat: NatState, t: Tuple, zone: number, now: Seconds): [NfConn, number] | undefined {
  const found = nat.conntrack.lookup(t, zone, now);
  if (!found) return undefined;
  return [found, tupleEqual(found.orig, t) ? IP_CT_DIR_ORIGINAL : IP_CT_DIR_REPLY];
}

function allowClash(protonum: number): boolean {
  return protonum === IPPROTO_UDP || protonum === IPPROTO_UDPLITE;
}

/**
 * nf_nat_used_tuple_new() (6.x): as nf_nat_used_tuple, but a UDP clash with an entry for the same flow seen
 * from the other side, when neither is NATed, counts as free (clash resolution sorts it out at confirm).
 */
export function nfNatUsedTupleNew(nat: NatState, tuple: Tuple, ct: NfConn, now: Seconds): boolean {
  const usesNat = IPS_NAT_MASK | IPS_SEQ_ADJUST;
  if (!nfNatUsedTuple(nat, tuple, ct, now)) return false;
  if (!allowClash(ct.orig.protonum)) return true;
  if (ct.status & usesNat) return true;
  let hit = findWithDir(nat, tuple, ct.zone, now);
  if (!hit) {
    const reply = invertTuple(tuple);
    hit = reply && findWithDir(nat, reply, ct.zone, now);
    if (!hit) return false;
  }
  const [other, dir] = hit;
  if (dir !== IP_CT_DIR_REPLY) return true;
  if (other.status & usesNat) return true;
  if (tupleEqual(other.orig, ct.reply) && tupleEqual(other.reply, ct.orig)) return false;
  return true;
}

/** nf_nat_may_kill(). */
function nfNatMayKill(victim: NfConn, flags: number): boolean {
  const tcp = victim.proto as IpCtTcp | undefined;
  if (!tcp || tcp.state < TCP_CONNTRACK_TIME_WAIT) return false;
  if (flags & (IPS_FIXED_TIMEOUT | IPS_DYING)) return false;
  return (flags & IPS_SRC_NAT) === IPS_SRC_NAT;
}

/** nf_seq_has_advanced(): (s32)(new.seen[0].td_end - old.seen[0].td_end) > 0. */
function nfSeqHasAdvanced(old: NfConn, neu: NfConn): boolean {
  const o = (old.proto as IpCtTcp).seen[0].td_end;
  const n = (neu.proto as IpCtTcp).seen[0].td_end;
  return ((n - o) | 0) > 0;
}

/**
 * nf_nat_used_tuple_harder() (6.x): in the last NF_NAT_HARDER_THRESH attempts for a TCP entry in SYN_SENT,
 * a colliding SNATed entry in TIME_WAIT or later whose sequence space the new connection has passed is killed
 * and its tuple reused.
 */
export function nfNatUsedTupleHarder(
  nat: NatState,
  tuple: Tuple,
  ct: NfConn,
  attemptsLeft: number,
  now: Seconds,
): boolean {
  const reply = invertTuple(tuple);
  if (!reply) return false;
  const tcp = ct.proto as IpCtTcp | undefined;
  if (
    attemptsLeft > NF_NAT_HARDER_THRESH ||
    tuple.protonum !== IPPROTO_TCP ||
    !tcp ||
    tcp.state !== TCP_CONNTRACK_SYN_SENT
  ) {
    return nat.conntrack.tupleTaken(reply, ct, now);
  }
  const hit = findWithDir(nat, reply, ct.zone, now);
  if (!hit) return false;
  const [victim, dir] = hit;
  if (dir === IP_CT_DIR_ORIGINAL) return true;
  if (victim === ct) return true;
  const flags = victim.status;
  if (!nfNatMayKill(victim, flags)) return true;
  if (!nfSeqHasAdvanced(victim, ct)) return true;
  if (victim.kill()) return (flags & IPS_OFFLOAD) !== 0;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// ranges

/** l4proto_in_range(). */
export function l4protoInRange(
  tuple: Tuple,
  maniptype: NfNatManipType,
  min: number,
  max: number,
  generation: NatGeneration = "6",
): boolean {
  const p = tuple.protonum;
  if (p === IPPROTO_ICMP) return tuple.srcU >= min && tuple.srcU <= max;
  // DCCP left the kernel in 6.16; older l4proto_in_range lists it with the port protocols.
  const ported =
    p === IPPROTO_GRE ||
    p === IPPROTO_TCP ||
    p === IPPROTO_UDP ||
    p === IPPROTO_UDPLITE ||
    p === IPPROTO_SCTP ||
    (p === IPPROTO_DCCP && generation !== "6");
  if (!ported) return true;
  const port = maniptype === "SRC" ? tuple.srcU : tuple.dstU;
  return port >= min && port <= max;
}

/** nf_in_range() (in_range before 6.2): would a SRC mapping to `tuple` meet the range? */
export function nfInRange(tuple: Tuple, range: NfNatRange2, generation: NatGeneration = "6"): boolean {
  if (range.flags & NF_NAT_RANGE_MAP_IPS) {
    if (tuple.src < range.minAddr || tuple.src > range.maxAddr) return false;
  }
  if (!(range.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) return true;
  return l4protoInRange(tuple, "SRC", range.minProto, range.maxProto, generation);
}

/** same_src(): same protocol, source address and source port/id in the ORIGINAL direction. */
function sameSrc(ct: NfConn, tuple: Tuple): boolean {
  const t = ct.orig;
  return t.protonum === tuple.protonum && t.src === tuple.src && t.srcU === tuple.srcU;
}

/**
 * find_appropriate_src(): an existing connection from the same source (bysource) whose mapping, applied to this
 * tuple, is within the range. Returns the mapped tuple or undefined.
 */
export function findAppropriateSrc(
  nat: NatState,
  zone: number,
  tuple: Tuple,
  range: NfNatRange2,
  now: Seconds,
): Tuple | undefined {
  for (const ct of nat.bysourceEntries(tuple, zone, now)) {
    if (!sameSrc(ct, tuple) || ct.zone !== zone) continue;
    const inv = invertTuple(ct.reply);
    if (!inv) continue;
    const result = makeTuple(inv.src, tuple.dst, tuple.protonum, inv.srcU, tuple.dstU);
    if (nfInRange(result, range, nat.generation)) return result;
  }
  return undefined;
}

/**
 * find_best_ips_proto(): with MAP_IPS, the address from the range — the only one, or one picked by
 * jhash2(source address, initval = destination address ^ zone id; 0 with PERSISTENT) scaled into the range.
 */
export function findBestIpsProto(
  zone: number,
  tuple: Tuple,
  range: NfNatRange2,
  maniptype: NfNatManipType,
): Tuple {
  if (!(range.flags & NF_NAT_RANGE_MAP_IPS)) return tuple;
  if (range.minAddr === range.maxAddr) return withAddr(tuple, maniptype, range.minAddr);
  // union nf_inet_addr is four u32 words; an IPv4 tuple has the address in the first and zeros after.
  const initval = range.flags & NF_NAT_RANGE_PERSISTENT ? 0 : (leU32(tuple.dst) ^ (zone & 0xffff)) >>> 0;
  const j = jhash2([leU32(tuple.src), 0, 0, 0], initval);
  const minip = range.minAddr >>> 0;
  const dist = (range.maxAddr - minip + 1) >>> 0;
  return withAddr(tuple, maniptype, (minip + reciprocalScale(j, dist)) >>> 0);
}

/** `tuple` with the address the manip changes set to `addr` (a function, not a closure: no context per call). */
function withAddr(tuple: Tuple, maniptype: NfNatManipType, addr: number): Tuple {
  return maniptype === "SRC"
    ? makeTuple(addr >>> 0, tuple.dst, tuple.protonum, tuple.srcU, tuple.dstU)
    : makeTuple(tuple.src, addr >>> 0, tuple.protonum, tuple.srcU, tuple.dstU);
}

// ---------------------------------------------------------------------------------------------------------------
// the port / id search

/**
 * `tuple` with one protocol word replaced. Built by makeTuple, not by an object spread: spread copies with a new
 * value get hidden classes of their own, and every function reading tuples goes megamorphic.
 */
function withU(tuple: Tuple, key: "srcU" | "dstU", value: number): Tuple {
  return key === "srcU"
    ? makeTuple(tuple.src, tuple.dst, tuple.protonum, value, tuple.dstU)
    : makeTuple(tuple.src, tuple.dst, tuple.protonum, tuple.srcU, value);
}

/** Which protocol word a manip changes, or undefined when the protocol has none (nf_nat_l4proto_unique_tuple). */
function keyOf(tuple: Tuple, maniptype: NfNatManipType, gen: NatGeneration): "srcU" | "dstU" | undefined {
  switch (tuple.protonum) {
    case IPPROTO_ICMP:
      return "srcU";
    case IPPROTO_DCCP:
      if (gen === "6") return undefined; // DCCP left the kernel in 6.16
      return maniptype === "SRC" ? "srcU" : "dstU";
    case IPPROTO_TCP:
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
    case IPPROTO_SCTP:
      return maniptype === "SRC" ? "srcU" : "dstU";
    default:
      return undefined; // GRE without a PPTP master, and everything else: unchanged
  }
}

/**
 * nf_nat_l4proto_unique_tuple(): pick a free port (ICMP id) in the range or the port's class, starting at an
 * offset, trying min(range, 128) consecutive values, then halving the window at a fresh random offset down to
 * 16 (128+64+32+16 tries at most). If everything is taken the last candidate is used. See the header for the
 * older generations.
 */
export function nfNatL4protoUniqueTuple(
  nat: NatState,
  tuple: Tuple,
  range: NfNatRange2,
  maniptype: NfNatManipType,
  ct: NfConn,
  now: Seconds,
): Tuple {
  const gen = nat.generation;
  const key = keyOf(tuple, maniptype, gen);
  if (!key) return tuple;
  let min: number;
  let rangeSize: number;
  if (tuple.protonum === IPPROTO_ICMP) {
    if (gen === "3" || gen === "4") return icmpUniqueTupleRover(nat, tuple, range, ct, now);
    if (!(range.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
      min = 0;
      rangeSize = 65536;
    } else {
      min = range.minProto;
      rangeSize = ((range.maxProto - range.minProto) & 0xffff) + 1;
    }
  } else if (!(range.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
    if (maniptype === "DST") return tuple; // a DST manip never changes the port by itself
    const port = tuple[key];
    if (port < 1024) {
      // Loose convention: >> 512 is credential passing.
      if (port < 512) {
        min = 1;
        rangeSize = 511 - min + 1;
      } else {
        min = 600;
        rangeSize = 1023 - min + 1;
      }
    } else {
      min = 1024;
      rangeSize = 65535 - 1024 + 1;
    }
  } else {
    let lo = range.minProto;
    let hi = range.maxProto;
    if (hi < lo) [lo, hi] = [hi, lo];
    min = lo;
    rangeSize = hi - lo + 1;
  }

  if (gen === "3") return roverSearch(nat, tuple, key, min, rangeSize, range, ct, now);

  let off: number;
  if (range.flags & NF_NAT_RANGE_PROTO_OFFSET) off = (tuple[key] - range.baseProto) & 0xffff;
  else if (gen !== "6" || range.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL || maniptype !== "DST")
    off = randomOffset(nat, gen);
  else off = 0;

  let attempts = Math.min(rangeSize, NF_NAT_MAX_ATTEMPTS);
  let cand = tuple;
  for (;;) {
    for (let i = 0; i < attempts; i++, off = (off + 1) & 0xffff) {
      cand = withU(tuple, key, (min + (off % rangeSize)) & 0xffff);
      const used =
        gen === "6"
          ? nfNatUsedTupleHarder(nat, cand, ct, attempts - i, now)
          : nfNatUsedTuple(nat, cand, ct, now);
      if (!used) return cand;
    }
    if (attempts >= rangeSize || attempts < 16) return cand;
    attempts = Math.floor(attempts / 2);
    off = randomOffset(nat, gen);
  }
}

/** The port search's random offset: get_random_u16() since 6.x, prandom_u32() before. */
function randomOffset(nat: NatState, gen: NatGeneration): number {
  return gen === "6" ? nat.prng.getRandomU16() : nat.prng.prandomU32() & 0xffff;
}

/** 3.x: start at the protocol's rover (or a random/secure offset), search the whole range, remember the port. */
function roverSearch(
  nat: NatState,
  tuple: Tuple,
  key: "srcU" | "dstU",
  min: number,
  rangeSize: number,
  range: NfNatRange2,
  ct: NfConn,
  now: Seconds,
): Tuple {
  let off: number;
  if (range.flags & NF_NAT_RANGE_PROTO_RANDOM)
    off = nat.prng.prandomU32() & 0xffff; // secure_port()
  else if (range.flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) off = nat.prng.prandomU32() & 0xffff;
  else off = nat.rover(tuple.protonum);
  for (let i = 0; ; off = (off + 1) & 0xffff) {
    const cand = withU(tuple, key, (min + (off % rangeSize)) & 0xffff);
    if (++i !== rangeSize && nfNatUsedTuple(nat, cand, ct, now)) continue;
    if (!(range.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) nat.setRover(tuple.protonum, off);
    return cand;
  }
}

/** ≤4.19 icmp_unique_tuple(): a global `static u16 id` rover over range_size ids (0xFFFF without a range). */
function icmpUniqueTupleRover(
  nat: NatState,
  tuple: Tuple,
  range: NfNatRange2,
  ct: NfConn,
  now: Seconds,
): Tuple {
  let rangeSize = ((range.maxProto - range.minProto) & 0xffff) + 1;
  if (!(range.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) rangeSize = 0xffff;
  const min = range.flags & NF_NAT_RANGE_PROTO_SPECIFIED ? range.minProto : 0;
  for (let i = 0; ; nat.icmpIdRover = (nat.icmpIdRover + 1) & 0xffff) {
    const cand = withU(tuple, "srcU", (min + (nat.icmpIdRover % rangeSize)) & 0xffff);
    if (++i === rangeSize || !nfNatUsedTuple(nat, cand, ct, now)) return cand;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// get_unique_tuple, nf_nat_setup_info

/**
 * get_unique_tuple(): the tuple the connection will look like after this manip. For SRC manips without
 * RANDOM: the original if in range and free, else an existing mapping of the same source (bysource). Then the
 * address from the range (find_best_ips_proto), the port kept if free (or if a single-port range was given),
 * else searched.
 */
export function getUniqueTuple(
  nat: NatState,
  origTuple: Tuple,
  range: NfNatRange2,
  ct: NfConn,
  maniptype: NfNatManipType,
  now: Seconds,
): Tuple {
  const zone = ct.zone;
  const gen = nat.generation;
  if (maniptype === "SRC" && !(range.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) {
    if (nfInRange(origTuple, range, gen)) {
      const used =
        gen === "6" ? nfNatUsedTupleNew(nat, origTuple, ct, now) : nfNatUsedTuple(nat, origTuple, ct, now);
      if (!used) return origTuple;
    } else {
      const mapped = findAppropriateSrc(nat, zone, origTuple, range, now);
      if (mapped && !nfNatUsedTuple(nat, mapped, ct, now)) return mapped;
    }
  }

  const tuple = findBestIpsProto(zone, origTuple, range, maniptype);

  if (!(range.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) {
    if (range.flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
      if (
        !(range.flags & NF_NAT_RANGE_PROTO_OFFSET) &&
        l4protoInRange(tuple, maniptype, range.minProto, range.maxProto, gen) &&
        (range.minProto === range.maxProto || !nfNatUsedTuple(nat, tuple, ct, now))
      ) {
        return tuple;
      }
    } else if (!nfNatUsedTuple(nat, tuple, ct, now)) {
      return tuple;
    }
  }
  return nfNatL4protoUniqueTuple(nat, tuple, range, maniptype, ct, now);
}

/**
 * nf_nat_setup_info(): bind an unconfirmed connection for one manip type. Sets the new REPLY tuple
 * (nf_conntrack_alter_reply) and IPS_SRC_NAT/IPS_DST_NAT when the tuple changes, links SRC bindings into the
 * bysource index, and sets the _DONE bit. A confirmed entry is left alone (NF_ACCEPT); a second binding of the
 * same type is NF_DROP (the kernel's WARN_ON).
 */
export function nfNatSetupInfo(
  nat: NatState,
  ct: NfConn,
  range: NfNatRange2,
  maniptype: NfNatManipType,
  now: Seconds,
): number {
  if (ct.confirmed) return NF_ACCEPT;
  if (nfNatInitialized(ct, maniptype)) return NF_DROP;

  // What we've got will look like the inverse of the reply (earlier manips included).
  const curr = invertTuple(ct.reply);
  if (!curr) return NF_DROP;
  const neu = getUniqueTuple(nat, curr, range, ct, maniptype, now);
  if (!tupleEqual(neu, curr)) {
    const reply = invertTuple(neu);
    if (!reply) return NF_DROP;
    nat.conntrack.setReplyTuple(ct, reply);
    ct.status |= maniptype === "SRC" ? IPS_SRC_NAT : IPS_DST_NAT;
  }
  if (maniptype === "SRC") nat.addBysource(ct, now);
  ct.status |= maniptype === "DST" ? IPS_DST_NAT_DONE : IPS_SRC_NAT_DONE;
  return NF_ACCEPT;
}

/**
 * nf_nat_alloc_null_binding(): no rule bound this manip: bind to the current address with no port range, so the
 * port may still change if the tuple is taken (SRC).
 */
export function nfNatAllocNullBinding(nat: NatState, ct: NfConn, hook: NfHook, now: Seconds): number {
  const manip = hook2manip(hook);
  const ip = manip === "SRC" ? ct.reply.dst : ct.reply.src;
  return nfNatSetupInfo(
    nat,
    ct,
    { flags: NF_NAT_RANGE_MAP_IPS, minAddr: ip, maxAddr: ip, minProto: 0, maxProto: 0, baseProto: 0 },
    manip,
    now,
  );
}

/**
 * nf_nat_packet(): rewrite the packet when the connection is NATed in the direction this hook handles — the
 * SRC_NAT bit at SRC hooks, DST_NAT at DST hooks, swapped for reply packets.
 */
export function nfNatPacket(
  ct: { readonly orig: Tuple; readonly reply: Tuple; readonly status: number },
  ctinfo: CtInfo,
  hook: NfHook,
  pkt: Packet,
  writable: PacketWritable = 0,
): Packet {
  const mtype = hook2manip(hook);
  const dir = ctinfoDir(ctinfo);
  let statusbit = mtype === "SRC" ? IPS_SRC_NAT : IPS_DST_NAT;
  if (dir === IP_CT_DIR_REPLY) statusbit ^= IPS_NAT_MASK;
  if (ct.status & statusbit) return nfNatManipPkt(pkt, ct, mtype, dir, writable);
  return pkt;
}

/** Whether nf_nat_packet rewrites in this hook (the status bit for the manip type XOR the direction). */
function nfNatPacketApplies(ct: { readonly status: number }, ctinfo: CtInfo, hook: NfHook): boolean {
  let statusbit = hook2manip(hook) === "SRC" ? IPS_SRC_NAT : IPS_DST_NAT;
  if (ctinfoDir(ctinfo) === IP_CT_DIR_REPLY) statusbit ^= IPS_NAT_MASK;
  return (ct.status & statusbit) !== 0;
}

// ---------------------------------------------------------------------------------------------------------------
// the hook

/** "Run the nat table's chains for this hook" (see the header). Returns a verdict. */
export type NatChainRunner = (pkt: Packet, ct: NfConn, ctinfo: CtInfo, hook: NfHook) => number;

export interface NatHookState {
  readonly hook: NfHook;
  /** Output interface name (POST_ROUTING, LOCAL_OUT), for nf_nat_oif_changed. */
  readonly out?: string;
  /** The nat table's chains; undefined when no nat table is registered (straight to the null binding). */
  readonly runChains?: NatChainRunner;
  /**
   * The caller owns the packet it passes (a working copy nothing else references; see PacketWritable):
   * nf_nat_packet then rewrites it in place and the result says `rewritten`. ICMP error translation copies.
   */
  readonly writable?: PacketWritable;
  /**
   * Where to write the result instead of allocating one: the caller reads it before its next call with this
   * state (HostSim keeps one state per nesting depth). Without it every call returns a fresh object.
   */
  readonly result?: { -readonly [K in keyof NatHookResult]: NatHookResult[K] };
}

export interface NatHookResult {
  readonly verdict: number;
  /** The packet as it leaves the hook (the input itself when unchanged). */
  readonly pkt: Packet;
  /** Why the hook dropped, for traces. */
  readonly reason?: string;
  /** `pkt` is the input object, rewritten in place (NatHookState.writable). */
  readonly rewritten?: boolean;
}

/** A hook result with every field (one hidden class for the caller's reads), in `state.result` when given. */
function natResult(
  state: NatHookState,
  verdict: number,
  pkt: Packet,
  rewritten = false,
  reason?: string,
): NatHookResult {
  const r = state.result;
  if (r === undefined) return { verdict, pkt, reason, rewritten };
  r.verdict = verdict;
  r.pkt = pkt;
  r.reason = reason;
  r.rewritten = rewritten;
  return r;
}

/** nf_nat_oif_changed(): a MASQUERADEd connection's original-direction packet leaving by another interface. */
function nfNatOifChanged(nat: NatState, hook: NfHook, ctinfo: CtInfo, ct: NfConn, out?: string): boolean {
  // The hook and direction first: the extension is read only for original-direction packets leaving.
  if (hook !== NF_INET_POST_ROUTING || ctinfoDir(ctinfo) !== IP_CT_DIR_ORIGINAL || out === undefined)
    return false;
  const masqIndex = ct.masqIndex;
  return masqIndex !== undefined && masqIndex !== out;
}

/** The nf_nat_oif_changed drop: the entry is killed (nf_ct_kill_acct). Module level: no per-call closure. */
function oifChanged(nat: NatState, ct: NfConn, pkt: Packet, state: NatHookState): NatHookResult {
  nat.conntrack.kill(ct);
  return natResult(
    state,
    NF_DROP,
    pkt,
    false,
    "nf_nat_oif_changed: masqueraded connection changed interface",
  );
}

/**
 * nf_nat_inet_fn(): no conntrack -> ACCEPT untouched. NEW, RELATED and RELATED_REPLY with this manip not yet
 * bound run the chains (null binding if none bound it); ESTABLISHED only checks the MASQUERADE interface; then
 * nf_nat_packet.
 */
export function nfNatInetFn(
  nat: NatState,
  ct: NfConn | undefined,
  ctinfo: CtInfo | undefined,
  pkt: Packet,
  state: NatHookState,
  now: Seconds,
): NatHookResult {
  if (!ct || ctinfo === undefined) return natResult(state, NF_ACCEPT, pkt);
  const maniptype = hook2manip(state.hook);
  if (ctinfo === IP_CT_RELATED || ctinfo === IP_CT_RELATED_REPLY || ctinfo === IP_CT_NEW) {
    if (!nfNatInitialized(ct, maniptype)) {
      let bound = false;
      if (state.runChains) {
        const ret = state.runChains(pkt, ct, ctinfo, state.hook);
        if (ret !== NF_ACCEPT) return natResult(state, ret, pkt, false, "nat table verdict");
        bound = nfNatInitialized(ct, maniptype);
      }
      if (!bound) {
        const ret = nfNatAllocNullBinding(nat, ct, state.hook, now);
        if (ret !== NF_ACCEPT) return natResult(state, ret, pkt, false, "nf_nat_alloc_null_binding");
      }
    } else if (nfNatOifChanged(nat, state.hook, ctinfo, ct, state.out)) {
      return oifChanged(nat, ct, pkt, state);
    }
  } else if (nfNatOifChanged(nat, state.hook, ctinfo, ct, state.out)) {
    return oifChanged(nat, ct, pkt, state);
  }
  const writable = state.writable ?? 0;
  if (writable !== 0 && nfNatPacketApplies(ct, ctinfo, state.hook)) {
    const out = nfNatPacket(ct, ctinfo, state.hook, pkt, writable);
    return natResult(state, NF_ACCEPT, out, out === pkt);
  }
  return natResult(state, NF_ACCEPT, nfNatPacket(ct, ctinfo, state.hook, pkt));
}

/**
 * nf_nat_ipv4_fn(): RELATED ICMP errors are translated (nf_nat_icmp_reply_translation; failure drops) and
 * never reach the chains; everything else goes through nf_nat_inet_fn. This is the function each IPv4 NAT hook
 * (pre_routing, out, local_fn, local_in) runs.
 */
export function nfNatIpv4Fn(
  nat: NatState,
  ct: NfConn | undefined,
  ctinfo: CtInfo | undefined,
  pkt: Packet,
  state: NatHookState,
  now: Seconds,
): NatHookResult {
  if (!ct || ctinfo === undefined) return natResult(state, NF_ACCEPT, pkt);
  if ((ctinfo === IP_CT_RELATED || ctinfo === IP_CT_RELATED_REPLY) && pkt.ip.protocol === IPPROTO_ICMP) {
    const out = nfNatIcmpReplyTranslation(ct, ctinfo, state.hook, pkt);
    if (!out) return natResult(state, NF_DROP, pkt, false, "nf_nat_icmp_reply_translation failed");
    return natResult(state, NF_ACCEPT, out);
  }
  return nfNatInetFn(nat, ct, ctinfo, pkt, state, now);
}
