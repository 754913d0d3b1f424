/**
 * Model: the tuple-space collapse of seed 003 ("TPROXY之殇": a NAT-mode LVS, a "cone" device, in front of a
 * TPROXY login proxy, the "inverted cone" deployment), computed at the level of 4-tuples rather than packets, so
 * that thousands of clients and minutes of traffic run in milliseconds.
 *
 * What the seed says (and the kernel confirms):
 * - a cone device (NAT, NAT-mode load balancer) maps many client addresses onto one address and tells flows
 *   apart by source port; it only needs (its address, port, server address, server port) to be unique, so the
 *   same source port is used towards different servers at the same time (nf_nat_core `nf_nat_used_tuple` checks
 *   the whole tuple);
 * - NAT mode proxy (DNAT/REDIRECT to a local socket): every server address becomes the proxy's own address, so
 *   (LVS address, port) must now be unique across all servers: a port the LVS legitimately reuses towards a
 *   second server meets the first connection's socket (or its TIME_WAIT) on the proxy and the connection fails
 *   (REDIRECT cannot change the port: `nf_nat_l4proto_unique_tuple` finds no free tuple, the clash is dropped);
 * - pure TPROXY mode (transparent listener, upstream connection with IP_TRANSPARENT from the client's address):
 *   the accepted socket holds (LVS, p, server, 80), so the upstream connection to the same server cannot reuse
 *   p and binds another port q of the LVS address; when the LVS later picks q towards that server, the proxy
 *   already has (LVS, q, server, 80) as an upstream socket and the new connection fails;
 * - TIME_WAIT (TCP_TIMEWAIT_LEN, 60 s, net/ipv4/tcp.h) keeps a tuple busy after each short login connection.
 *
 * Assumed: connection attempts arrive uniformly at random (seeded) over `duration`; each lasts `hold` seconds and
 * its tuples stay busy `timeWait` seconds more on the side that closes (both here); the LVS picks a random free
 * port per destination server (like nf_nat's random offset) from `lvsPorts`; the proxy's upstream sockets take
 * the first free port from a random offset in `proxyPorts` (ip_local_port_range); servers are chosen uniformly;
 * a failed attempt is not retried. "none" is the hourglass baseline: the LVS talks to the servers directly.
 *
 * Leaves out on purpose: retries and SYN retransmission, tcp_tw_reuse, per-client source port behaviour (the
 * clients' own tuples never collide here), LVS persistence, proxy CPU or accept-queue limits.
 */
import { Prng } from "../../../util/prng";

export type ProxyMode = "none" | "nat" | "tproxy";

export interface TupleSpaceParams {
  readonly mode: ProxyMode;
  /** Connection attempts per second, all clients together. */
  readonly rate: number;
  readonly duration: number;
  /** Real servers behind the proxy (all listening on the same well-known port). */
  readonly servers: number;
  readonly hold?: number;
  readonly timeWait?: number;
  readonly lvsPorts?: readonly [number, number];
  readonly proxyPorts?: readonly [number, number];
  readonly seed?: number | string;
}

export interface TupleSpaceResult {
  readonly attempts: number;
  readonly failed: number;
  readonly failureRate: number;
  /** Why attempts failed. */
  readonly reasons: {
    /** The LVS had no free port towards the chosen server. */
    readonly lvsExhausted: number;
    /** The tuple the LVS sent was already taken on the proxy (NAT mode: collapsed destination). */
    readonly proxyCollapsed: number;
    /** TPROXY mode: the tuple was taken by one of the proxy's own upstream sockets. */
    readonly upstreamTaken: number;
    /** The proxy had no free port for its upstream connection. */
    readonly proxyExhausted: number;
  };
  /** Largest number of busy tuples seen at the proxy's client side. */
  readonly peakBusy: number;
}

/** Busy ports of one address towards one destination: port -> time it becomes free. */
class PortSpace {
  private readonly until = new Map<number, number>();
  busy(port: number, now: number): boolean {
    const t = this.until.get(port);
    if (t === undefined) return false;
    if (t <= now) {
      this.until.delete(port);
      return false;
    }
    return true;
  }
  take(port: number, free: number): void {
    this.until.set(port, free);
  }
  get size(): number {
    return this.until.size;
  }
  sweep(now: number): void {
    for (const [p, t] of this.until) if (t <= now) this.until.delete(p);
  }
}

function pickPort(
  space: PortSpace,
  range: readonly [number, number],
  now: number,
  prng: Prng,
): number | undefined {
  const span = range[1] - range[0] + 1;
  const start = prng.getRandomU32() % span;
  for (let i = 0; i < span; i++) {
    const p = range[0] + ((start + i) % span);
    if (!space.busy(p, now)) return p;
  }
  return undefined;
}

export function simulateTupleSpace(params: TupleSpaceParams): TupleSpaceResult {
  const prng = new Prng(params.seed ?? 1);
  const hold = params.hold ?? 1;
  const tw = params.timeWait ?? 60;
  const lvsPorts = params.lvsPorts ?? [1024, 65535];
  const proxyPorts = params.proxyPorts ?? [32768, 60999];
  const attempts = Math.round(params.rate * params.duration);
  const times: number[] = [];
  for (let i = 0; i < attempts; i++) times.push((prng.getRandomU32() / 2 ** 32) * params.duration);
  times.sort((a, b) => a - b);

  // LVS table per server; proxy client side (NAT: one space for all servers; TPROXY: per server, shared with
  // the upstream sockets, since both use the LVS address); proxy upstream from its own address per server (NAT).
  const lvs = Array.from({ length: params.servers }, () => new PortSpace());
  const proxyCollapsed = new PortSpace();
  const proxyUpstream = Array.from({ length: params.servers }, () => new PortSpace());
  const reasons = { lvsExhausted: 0, proxyCollapsed: 0, upstreamTaken: 0, proxyExhausted: 0 };
  let peakBusy = 0;
  let sweepAt = 0;

  for (const now of times) {
    if (now >= sweepAt) {
      for (const s of lvs) s.sweep(now);
      proxyCollapsed.sweep(now);
      for (const s of proxyUpstream) s.sweep(now);
      sweepAt = now + 1;
    }
    const free = now + hold + tw;
    const j = prng.getRandomU32() % params.servers;
    const p = pickPort(lvs[j], lvsPorts, now, prng);
    if (p === undefined) {
      reasons.lvsExhausted++;
      continue;
    }
    lvs[j].take(p, free);
    if (params.mode === "none") continue;
    if (params.mode === "nat") {
      if (proxyCollapsed.busy(p, now)) {
        reasons.proxyCollapsed++;
        continue;
      }
      proxyCollapsed.take(p, free);
      peakBusy = Math.max(peakBusy, proxyCollapsed.size);
      const q = pickPort(proxyUpstream[j], proxyPorts, now, prng);
      if (q === undefined) {
        reasons.proxyExhausted++;
        continue;
      }
      proxyUpstream[j].take(q, free);
      continue;
    }
    // TPROXY: the accepted tuple and the upstream tuples share (LVS address, port) towards server j.
    const space = proxyUpstream[j];
    if (space.busy(p, now)) {
      reasons.upstreamTaken++;
      continue;
    }
    space.take(p, free);
    const q = pickPort(space, proxyPorts, now, prng);
    if (q === undefined) {
      reasons.proxyExhausted++;
      continue;
    }
    space.take(q, free);
    peakBusy = Math.max(peakBusy, space.size);
  }
  const failed =
    reasons.lvsExhausted + reasons.proxyCollapsed + reasons.upstreamTaken + reasons.proxyExhausted;
  return { attempts, failed, failureRate: attempts ? failed / attempts : 0, reasons, peakBusy };
}

export interface TupleSpaceRow {
  readonly clients: number;
  readonly rate: number;
  readonly none: number;
  readonly nat: number;
  readonly tproxy: number;
}

/** Failure rates for growing client counts, each client opening `perClientRate` connections per second. */
export function tupleSpaceTable(
  clients: readonly number[],
  base: Omit<TupleSpaceParams, "mode" | "rate"> & { readonly perClientRate: number },
): TupleSpaceRow[] {
  return clients.map((n) => {
    const rate = n * base.perClientRate;
    const run = (mode: ProxyMode) => simulateTupleSpace({ ...base, mode, rate }).failureRate;
    return { clients: n, rate, none: run("none"), nat: run("nat"), tproxy: run("tproxy") };
  });
}

/** The table as aligned text (percentages with one decimal). */
export function formatTupleSpaceTable(rows: readonly TupleSpaceRow[]): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const head = ["clients", "conn/s", "LVS only", "LVS + NAT-mode proxy", "LVS + pure TPROXY"];
  const body = rows.map((r) => [String(r.clients), String(r.rate), pct(r.none), pct(r.nat), pct(r.tproxy)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
