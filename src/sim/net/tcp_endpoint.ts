/**
 * Endpoint TCP as a Linux host behaves: the sockets of one emulated host (listeners, accepted and connecting
 * sockets) as a state machine over segments and time, attached to HostSim's local delivery (`tcpRcv`) and output
 * path (packets it originates go out through OUTPUT/POSTROUTING).
 *
 * Mirrors Linux 6.18 (recorded against 6.18.44, test/oracle/endpoint/):
 *   - net/ipv4/tcp_ipv4.c `tcp_v4_rcv` (`skb_steal_sock`: the listener TPROXY assigned takes the segment
 *     whatever its destination, and the request and child sockets get the packet's destination as local
 *     address (`__inet_inherit_port` puts them in the bind bucket of that port); else established lookup, then
 *     listener: `__inet_lookup_listener`, exact address before 0.0.0.0), `tcp_v4_send_reset` for segments no
 *     socket takes (built by src/net/tcp_reset.ts);
 *   - net/ipv4/af_inet.c `inet_bind` / `inet_addr_valid_or_nonlocal` (a non-local source needs IP_TRANSPARENT,
 *     else EADDRNOTAVAIL), net/ipv4/inet_connection_sock.c `inet_csk_get_port` / `inet_csk_bind_conflict`
 *     (an explicit bind() without SO_REUSEADDR fails with EADDRINUSE while any socket, TIME_WAIT included, holds
 *     the port on the same or the wildcard address), net/ipv4/inet_hashtables.c `__inet_hash_connect` /
 *     `__inet_check_established` (connect() without bind(): an ephemeral port whose 4-tuple is free; a 4-tuple
 *     in use: EADDRNOTAVAIL); the lookups behind TPROXY and `-m socket` (`lookup`:
 *     `nf_sk_lookup_slow_v4` / `nf_tproxy_get_sock_v4`);
 *   - net/ipv4/tcp_input.c `tcp_rcv_state_process` (LISTEN: SYN -> request sock; SYN_SENT:
 *     `tcp_rcv_synsent_state_process`: a bad ACK -> RST, RST with a good ACK -> refused, SYN-ACK -> ACK and
 *     ESTABLISHED), `tcp_validate_incoming` (RFC 5961: an out-of-window segment gets a dupack unless it is an
 *     RST; an RST at rcv_nxt resets, an in-window RST elsewhere and any SYN get a challenge ACK), the per-socket
 *     rate limit `__tcp_oow_rate_limited` (net.ipv4.tcp_invalid_ratelimit, 500 ms) that `tcp_send_challenge_ack`
 *     checks first (the host-wide tcp_challenge_ack_limit has defaulted to INT_MAX since 6.0, so it never bites),
 *     `tcp_fin` (ESTABLISHED -> CLOSE_WAIT, FIN_WAIT1 -> CLOSING, FIN_WAIT2 -> TIME_WAIT);
 *   - net/ipv4/tcp_minisocks.c `tcp_check_req` (a retransmitted SYN re-sends the SYN-ACK, rate-limited; the
 *     ACK of the SYN-ACK creates the child), `tcp_timewait_state_process` (FIN again -> ACK; a SYN above
 *     rcv_nxt reopens (TCP_TW_SYN); an RST kills the timewait socket (rfc1337=0); TIME_WAIT lasts
 *     TCP_TIMEWAIT_LEN = 60 s);
 *   - net/ipv4/tcp_output.c `tcp_syn_options`/`tcp_synack_options` (MSS, SACK_PERM, TS, NOP, WSCALE in that
 *     order; TS/SACK/WSCALE only when the peer offered them), `tcp_select_initial_window` (window scale from
 *     max(tcp_rmem[2], rmem_max); the initial window 10 MSS rounded to whole segments: 64240 = 44 x 1460,
 *     65160 = 45 x 1448 with timestamps), `tcp_send_active_reset` (abort: RST|ACK at snd_nxt);
 *   - net/ipv4/tcp_timer.c: SYN retransmission from TCP_TIMEOUT_INIT (1 s) doubling, tcp_syn_retries (6) tries,
 *     then ETIMEDOUT; SYN-ACK retransmission likewise with tcp_synack_retries (5).
 *   - IP: DF set, TTL ip_default_ttl, id 0 for SYN-ACKs and resets (no connected socket yet), a per-socket
 *     counter from a random start otherwise (ip_select_ident_segs).
 *
 * Leaves out on purpose: TIME_WAIT sockets in `lookup` (TPROXY's nf_tproxy_handle_time_wait4 is not modelled,
 * see src/netfilter/xt/xt_TPROXY.ts), SO_REUSEADDR/SO_REUSEPORT, IP_BIND_ADDRESS_NO_PORT, congestion control, data retransmission (RTO after the handshake), delayed ACKs (every
 * data segment is ACKed at once, as in quickack mode), SACK blocks, receive-window growth (the window stays at
 * its initial value), urgent data, syncookies, listen-queue overflow, TCP_DEFER_ACCEPT, MD5/AO, ECN, IPv6.
 */
import type { Packet, TcpOption } from "../../wire/packet";
import { IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../wire/packet";
import { formatIpv4 } from "../../wire/addr";
import { tcpV4SendReset } from "../../net/tcp_reset";
import type { Prng } from "../../util/prng";
import type { SocketRef } from "../../netfilter/skb";
import type { SocketQuery } from "../../netfilter/host_services";

export type TcpState =
  | "LISTEN"
  | "SYN_SENT"
  | "SYN_RECV"
  | "ESTABLISHED"
  | "FIN_WAIT1"
  | "FIN_WAIT2"
  | "CLOSING"
  | "TIME_WAIT"
  | "CLOSE_WAIT"
  | "LAST_ACK"
  | "CLOSE";

/** Callbacks from the stack to the application owning a socket. */
export interface TcpApp {
  onEstablished?(sk: TcpSock, now: number): void;
  onData?(sk: TcpSock, bytes: number, now: number): void;
  /** The peer's FIN arrived (CLOSE_WAIT, or CLOSING/TIME_WAIT when we had closed). */
  onPeerClose?(sk: TcpSock, now: number): void;
  /** Connection reset by the peer, refused (RST to our SYN) or timed out. */
  onError?(sk: TcpSock, error: "ECONNRESET" | "ECONNREFUSED" | "ETIMEDOUT", now: number): void;
}

export interface ListenOptions {
  readonly address: number;
  readonly port: number;
  /** IP_TRANSPARENT: accepts segments for any destination address (TPROXY). */
  readonly transparent?: boolean;
  /**
   * Called when a connection is accepted (the handshake's ACK); returns the application for it. Default: the
   * `closeOnPeerClose` app.
   */
  readonly accept?: (sk: TcpSock, now: number) => TcpApp | undefined;
  /** Label for output ("nginx"). */
  readonly label?: string;
}

export interface ConnectOptions {
  /** Source address; default: `sourceFor(dst)` of the stack. With `transparent` any address. */
  readonly src?: number;
  /**
   * Source port; 0 picks an ephemeral port in `ephemeralPorts` whose 4-tuple is free (__inet_hash_connect).
   */
  readonly sport: number;
  /** Explicit bind() to src:sport before connect(), without SO_REUSEADDR: EADDRINUSE if the port is held. */
  readonly bind?: boolean;
  /** net.ipv4.ip_local_port_range for `sport: 0` (default [32768, 60999]). */
  readonly ephemeralPorts?: readonly [number, number];
  readonly dst: number;
  readonly dport: number;
  readonly transparent?: boolean;
  readonly app?: TcpApp;
  /** Name of the flow, for output. */
  readonly label?: string;
}

export interface TcpSysctls {
  /** net.ipv4.tcp_syn_retries (6). */
  readonly synRetries: number;
  /** net.ipv4.tcp_synack_retries (5). */
  readonly synackRetries: number;
  /** net.ipv4.tcp_invalid_ratelimit in seconds (0.5). */
  readonly invalidRatelimit: number;
  /** max(net.ipv4.tcp_rmem[2], net.core.rmem_max) in bytes: decides the window scale (6 MiB -> 7). */
  readonly rmemMax: number;
  readonly timestamps: boolean;
  readonly sack: boolean;
  readonly windowScaling: boolean;
}

export const DEFAULT_TCP_SYSCTLS: TcpSysctls = Object.freeze({
  synRetries: 6,
  synackRetries: 5,
  invalidRatelimit: 0.5,
  rmemMax: 6291456,
  timestamps: true,
  sack: true,
  windowScaling: true,
});

/** TCP_TIMEOUT_INIT (1 s) and TCP_TIMEWAIT_LEN (60 s), include/net/tcp.h. */
export const TCP_TIMEOUT_INIT = 1;
export const TCP_TIMEWAIT_LEN = 60;
const MSS = 1460;

export interface TcpStackOptions {
  readonly prng: Prng;
  readonly sysctl?: Partial<TcpSysctls>;
  /** ip_default_ttl. */
  readonly ttl?: number;
  /** Source address for a destination (route lookup); used by connect without `src`. */
  readonly sourceFor?: (dst: number) => number | undefined;
  /** Whether an address is one of the host's (RTN_LOCAL), for resets. */
  readonly isLocal?: (addr: number) => boolean;
}

/** A segment the stack sends, with why. */
export interface TcpOutput {
  readonly packet: Packet;
  readonly cause: string;
}

/** What the stack did with one delivered segment. */
export interface TcpRcvResult {
  /** For the hop record: "tcp 192.0.2.2:80 (LISTEN): SYN -> SYN_RECV, SYN-ACK". */
  readonly to: string;
  readonly replies: readonly TcpOutput[];
}

/** One connection endpoint (struct tcp_sock / request_sock / tcp_timewait_sock in one). */
export class TcpSock {
  state: TcpState;
  readonly laddr: number;
  readonly lport: number;
  readonly raddr: number;
  readonly rport: number;
  readonly label?: string;
  readonly transparent: boolean;
  app?: TcpApp;
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  rcvNxt = 0;
  /** Negotiated options. */
  tsOk = false;
  sackOk = false;
  /** Our receive window scale (0 when the peer did not offer window scaling). */
  rcvWscale = 0;
  rcvWnd = 64240;
  tsOffset = 0;
  tsRecent = 0;
  ipId = 0;
  lastOowAck = -Infinity;
  /** Retransmission timer (SYN / SYN-ACK) or TIME_WAIT expiry. */
  timer?: number;
  retries = 0;
  /** Bytes sent and received, for output. */
  bytesOut = 0;
  bytesIn = 0;
  /** The application asked to close once its queued data is out. */
  closeRequested = false;
  pendingData = 0;
  error?: string;
  /** History of states, for tests and the sequence diagram. */
  readonly history: string[] = [];

  constructor(
    state: TcpState,
    laddr: number,
    lport: number,
    raddr: number,
    rport: number,
    transparent: boolean,
    label?: string,
  ) {
    this.state = state;
    this.laddr = laddr;
    this.lport = lport;
    this.raddr = raddr;
    this.rport = rport;
    this.transparent = transparent;
    this.label = label;
    this.history.push(state);
  }

  /** `192.0.2.2:80 <- 192.0.2.1:40005`. */
  get name(): string {
    return `${formatIpv4(this.laddr)}:${this.lport} ${formatIpv4(this.raddr)}:${this.rport}`;
  }
}

function key(laddr: number, lport: number, raddr: number, rport: number): string {
  return `${laddr}:${lport}:${raddr}:${rport}`;
}

/** before()/after() of include/net/tcp.h: sequence comparison modulo 2^32. */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function seqAfter(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/** tcp_select_initial_window's window scale for an rmem ceiling. */
export function initialWscale(rmemMax: number): number {
  let space = rmemMax;
  let ws = 0;
  while (space > 65535 && ws < 14) {
    space >>>= 1;
    ws++;
  }
  return ws;
}

interface Listener extends ListenOptions {
  readonly transparent: boolean;
}

export class TcpStack {
  readonly sysctl: TcpSysctls;
  private readonly prng: Prng;
  private readonly ttl: number;
  private readonly sourceFor?: (dst: number) => number | undefined;
  private readonly isLocal: (addr: number) => boolean;
  private readonly socks = new Map<string, TcpSock>();
  private readonly listeners: Listener[] = [];
  private readonly outbox: TcpOutput[] = [];
  /** Sockets with a timer, checked by nextWake/wake. */
  private readonly timed = new Set<TcpSock>();
  /** Every connection ever made (closed ones included), in creation order. */
  readonly connections: TcpSock[] = [];
  private readonly wscale: number;

  constructor(opts: TcpStackOptions) {
    this.prng = opts.prng;
    this.sysctl = { ...DEFAULT_TCP_SYSCTLS, ...opts.sysctl };
    this.ttl = opts.ttl ?? 64;
    this.sourceFor = opts.sourceFor;
    this.isLocal = opts.isLocal ?? (() => true);
    this.wscale = initialWscale(this.sysctl.rmemMax);
  }

  // ---------------------------------------------------------------------------------------------------------
  // the socket API

  listen(opts: ListenOptions): void {
    this.listeners.push({ ...opts, transparent: opts.transparent ?? false });
  }

  /** connect(): sends the SYN now and arms the SYN retransmission timer. */
  connect(opts: ConnectOptions, now: number): TcpSock {
    const src = opts.src ?? this.sourceFor?.(opts.dst) ?? 0;
    const transparent = opts.transparent ?? false;
    const failed = (error: string, sport: number): TcpSock => {
      const sk = new TcpSock("CLOSE", src, sport, opts.dst, opts.dport, transparent, opts.label);
      sk.error = error;
      this.connections.push(sk);
      return sk;
    };
    // inet_bind: a source address that is not the host's needs IP_TRANSPARENT (or ip_nonlocal_bind).
    if (opts.src !== undefined && !transparent && !this.isLocal(src))
      return failed("EADDRNOTAVAIL", opts.sport);
    let sport = opts.sport;
    if (sport === 0) {
      const p = this.ephemeralPort(src, opts.dst, opts.dport, opts.ephemeralPorts);
      if (p === undefined) return failed("EADDRNOTAVAIL", 0);
      sport = p;
    } else if (opts.bind && this.portHeld(src, sport)) return failed("EADDRINUSE", sport);
    const k = key(src, sport, opts.dst, opts.dport);
    const old = this.socks.get(k);
    // connect() on a 4-tuple in use fails with EADDRNOTAVAIL before anything is sent.
    if (old && old.state !== "TIME_WAIT" && old.state !== "CLOSE") return failed("EADDRNOTAVAIL", sport);
    if (old) this.forget(old);
    const sk = new TcpSock("SYN_SENT", src, sport, opts.dst, opts.dport, transparent, opts.label);
    sk.app = opts.app;
    sk.iss = this.prng.nextU32();
    sk.sndUna = sk.iss;
    sk.sndNxt = (sk.iss + 1) >>> 0;
    sk.tsOffset = this.prng.nextU32();
    sk.ipId = this.prng.nextU32() & 0xffff;
    sk.rcvWnd = MSS * 44;
    this.socks.set(k, sk);
    this.connections.push(sk);
    this.outbox.push({ packet: this.synPacket(sk, now), cause: `connect() ${sk.label ?? ""}`.trim() });
    this.arm(sk, now + TCP_TIMEOUT_INIT);
    return sk;
  }

  /** send(): queues `bytes` of data; sent at once in MSS-sized segments when ESTABLISHED. */
  send(sk: TcpSock, bytes: number, now: number): void {
    sk.pendingData += bytes;
    this.flush(sk, now);
  }

  /** close(): FIN after the queued data (ESTABLISHED -> FIN_WAIT1, CLOSE_WAIT -> LAST_ACK). */
  close(sk: TcpSock, now: number): void {
    if (sk.state === "SYN_SENT" || sk.state === "SYN_RECV") {
      this.setState(sk, "CLOSE");
      this.forget(sk);
      return;
    }
    sk.closeRequested = true;
    this.flush(sk, now);
  }

  /** Abort (SO_LINGER 0 / tcp_disconnect): RST|ACK at snd_nxt, socket gone. */
  abort(sk: TcpSock, now: number): void {
    if (
      sk.state === "SYN_SENT" ||
      sk.state === "CLOSE" ||
      sk.state === "TIME_WAIT" ||
      sk.state === "LISTEN"
    ) {
      this.setState(sk, "CLOSE");
      this.forget(sk);
      return;
    }
    this.outbox.push({
      packet: this.segment(sk, TCP_RST | TCP_ACK, now),
      cause: "abort(): tcp_send_active_reset",
    });
    this.setState(sk, "CLOSE");
    this.forget(sk);
  }

  /** Packets the sockets originated (connect, send, close, timers, applications); empties the queue. */
  takeOutput(): TcpOutput[] {
    return this.outbox.splice(0, this.outbox.length);
  }

  /** Sockets currently known (not closed). */
  sockets(): TcpSock[] {
    return [...this.socks.values()];
  }

  find(laddr: number, lport: number, raddr: number, rport: number): TcpSock | undefined {
    return this.socks.get(key(laddr, lport, raddr, rport));
  }

  /**
   * inet_csk_bind_conflict without SO_REUSEADDR: a listener or any socket not yet closed (TIME_WAIT included)
   * holds `port` on `addr` or on the wildcard address.
   */
  portHeld(addr: number, port: number): boolean {
    for (const l of this.listeners)
      if (l.port === port && (l.address === 0 || addr === 0 || l.address === addr)) return true;
    for (const sk of this.socks.values())
      if (sk.lport === port && sk.state !== "CLOSE" && (sk.laddr === addr || addr === 0)) return true;
    return false;
  }

  /**
   * __inet_hash_connect: the first port from a seeded offset in `range` whose 4-tuple to dst:dport is free and
   * that no listener holds; undefined when the range is exhausted (connect() then fails with EADDRNOTAVAIL).
   */
  ephemeralPort(
    src: number,
    dst: number,
    dport: number,
    range: readonly [number, number] = [32768, 60999],
  ): number | undefined {
    const [lo, hi] = range;
    const n = hi - lo + 1;
    const off = this.prng.nextU32() % n;
    for (let i = 0; i < n; i++) {
      const port = lo + ((off + i) % n);
      if (this.listeners.some((l) => l.port === port && (l.address === 0 || l.address === src))) continue;
      const old = this.socks.get(key(src, port, dst, dport));
      if (!old || old.state === "CLOSE") return port;
    }
    return undefined;
  }

  /**
   * The socket lookups of TPROXY and `-m socket` (nf_tproxy_get_sock_v4, nf_sk_lookup_slow_v4): "established"
   * finds the socket of the exact 4-tuple seen from this host (request sockets included, TIME_WAIT not),
   * "listener" the listener on daddr:dport, else on 0.0.0.0:dport.
   */
  lookup(q: SocketQuery, kind: "established" | "listener"): SocketRef | undefined {
    if (q.protocol !== "tcp") return undefined;
    if (kind === "established") {
      const sk = this.socks.get(key(q.daddr, q.dport, q.saddr, q.sport));
      if (!sk || sk.state === "TIME_WAIT" || sk.state === "CLOSE") return undefined;
      return {
        protocol: "tcp",
        address: sk.laddr,
        port: sk.lport,
        transparent: sk.transparent,
        listening: false,
      };
    }
    const l = this.listener(q.daddr, q.dport);
    if (!l) return undefined;
    return { protocol: "tcp", address: l.address, port: l.port, transparent: l.transparent, listening: true };
  }

  /** Whether a listener would take a segment to `daddr:dport` (for `-m socket`-like queries). */
  hasListener(daddr: number, dport: number): boolean {
    return this.listener(daddr, dport) !== undefined;
  }

  nextWake(): number | undefined {
    let t: number | undefined;
    for (const sk of this.timed)
      if (sk.timer !== undefined && (t === undefined || sk.timer < t)) t = sk.timer;
    return t;
  }

  /** Runs every timer due at `now`; their packets go to the output queue. */
  wake(now: number): void {
    for (const sk of [...this.timed]) {
      if (sk.timer === undefined || sk.timer > now) continue;
      this.timed.delete(sk);
      sk.timer = undefined;
      this.onTimer(sk, now);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // input

  /**
   * A TCP segment delivered locally (after INPUT). Returns what happened and the replies, or undefined when no
   * socket (and no listener) takes it: the caller sends `tcp_v4_send_reset`.
   */
  rcv(pkt: Packet, now: number, assigned?: SocketRef): TcpRcvResult | undefined {
    const th = pkt.l4;
    if (th.kind !== "tcp") return undefined;
    const ip = pkt.ip;
    const replies: TcpOutput[] = [];
    // skb_steal_sock: a listener TPROXY assigned takes the segment, whatever its destination.
    const stolen =
      assigned?.listening && assigned.protocol === "tcp"
        ? this.listeners.find((l) => l.address === assigned.address && l.port === assigned.port)
        : undefined;
    const sk = stolen ? undefined : this.socks.get(key(ip.dst, th.dstPort, ip.src, th.srcPort));
    if (sk) {
      const before = sk.state;
      const what = this.process(sk, pkt, now, replies);
      replies.push(...this.takeOutput());
      const trans = before === sk.state ? before : `${before} -> ${sk.state}`;
      return { to: `tcp ${formatIpv4(sk.laddr)}:${sk.lport} (${trans}): ${what}`, replies };
    }
    const l = stolen ?? this.listener(ip.dst, th.dstPort);
    if (!l) return undefined;
    const where = `tcp ${formatIpv4(l.address)}:${l.port} (LISTEN${l.transparent ? ", transparent" : ""}${stolen ? ", TPROXY" : ""})`;
    if (th.flags & TCP_RST) return { to: `${where}: RST ignored`, replies };
    if (th.flags & TCP_ACK) {
      // tcp_v4_do_rcv -> tcp_rcv_state_process(LISTEN): an ACK without request sock -> reset.
      replies.push(...this.reset(pkt, "ACK to a listener without a request (tcp_v4_send_reset)"));
      return { to: `${where}: ACK without a connection -> RST`, replies };
    }
    if (!(th.flags & TCP_SYN)) return { to: `${where}: dropped (no SYN)`, replies };
    const child = this.synRecv(l, pkt, now);
    replies.push({ packet: this.synAckPacket(child, now), cause: "tcp_conn_request: SYN-ACK" });
    return { to: `${where}: SYN -> request ${child.name} SYN_RECV, SYN-ACK`, replies };
  }

  private listener(daddr: number, dport: number): Listener | undefined {
    let wild: Listener | undefined;
    for (const l of this.listeners) {
      if (l.port !== dport) continue;
      if (l.address === daddr) return l;
      if (l.address === 0) wild ??= l;
    }
    return wild;
  }

  private synRecv(l: Listener, pkt: Packet, now: number): TcpSock {
    const th = pkt.l4 as Extract<Packet["l4"], { kind: "tcp" }>;
    const sk = new TcpSock(
      "SYN_RECV",
      pkt.ip.dst,
      th.dstPort,
      pkt.ip.src,
      th.srcPort,
      l.transparent,
      l.label,
    );
    this.peerOptions(sk, th.options);
    sk.iss = this.prng.nextU32();
    sk.sndUna = sk.iss;
    sk.sndNxt = (sk.iss + 1) >>> 0;
    sk.rcvNxt = (th.seq + 1) >>> 0;
    sk.tsOffset = this.prng.nextU32();
    sk.ipId = this.prng.nextU32() & 0xffff;
    sk.rcvWnd = sk.tsOk ? (MSS - 12) * 45 : MSS * 44;
    (sk as { listener?: Listener }).listener = l;
    const k = key(sk.laddr, sk.lport, sk.raddr, sk.rport);
    const old = this.socks.get(k);
    if (old) this.forget(old);
    this.socks.set(k, sk);
    this.connections.push(sk);
    this.arm(sk, now + TCP_TIMEOUT_INIT);
    return sk;
  }

  private peerOptions(sk: TcpSock, options: readonly TcpOption[]): void {
    let ws = false;
    for (const o of options) {
      if (o.kind === "timestamp" && this.sysctl.timestamps) {
        sk.tsOk = true;
        sk.tsRecent = o.tsval;
      } else if (o.kind === "sackPermitted" && this.sysctl.sack) sk.sackOk = true;
      else if (o.kind === "wscale" && this.sysctl.windowScaling) ws = true;
    }
    sk.rcvWscale = ws ? this.wscale : 0;
  }

  /** tcp_rcv_state_process for a socket found by its 4-tuple; returns a short account. */
  private process(sk: TcpSock, pkt: Packet, now: number, out: TcpOutput[]): string {
    const th = pkt.l4 as Extract<Packet["l4"], { kind: "tcp" }>;
    const f = th.flags;
    const len = pkt.payloadLength;
    switch (sk.state) {
      case "SYN_SENT":
        return this.synSent(sk, pkt, now, out);
      case "SYN_RECV":
        return this.checkReq(sk, pkt, now, out);
      case "TIME_WAIT":
        return this.timeWait(sk, pkt, now, out);
      case "CLOSE":
      case "LISTEN":
        return "ignored";
      default:
        break;
    }
    // tcp_validate_incoming
    const wnd = sk.rcvWnd;
    const endSeq = (th.seq + len + (f & TCP_SYN ? 1 : 0) + (f & TCP_FIN ? 1 : 0)) >>> 0;
    const acceptable = !seqBefore(endSeq, sk.rcvNxt) && !seqAfter(th.seq, (sk.rcvNxt + wnd) >>> 0);
    if (!acceptable) {
      if (f & TCP_RST) return "RST out of window: dropped";
      if (f & TCP_SYN) return this.challengeAck(sk, now, out, "SYN out of window");
      if (this.oowRateLimited(sk, now)) return "out of window: dupack rate-limited (tcp_invalid_ratelimit)";
      out.push({ packet: this.segment(sk, TCP_ACK, now), cause: "tcp_send_dupack: segment out of window" });
      return "out of window: dupack";
    }
    if (f & TCP_RST) {
      if (th.seq === sk.rcvNxt) {
        this.setState(sk, "CLOSE");
        this.forget(sk);
        sk.error = "ECONNRESET";
        sk.app?.onError?.(sk, "ECONNRESET", now);
        return "RST at rcv_nxt: connection reset (ECONNRESET)";
      }
      return this.challengeAck(sk, now, out, "RST in window but not at rcv_nxt (RFC 5961 3.2)");
    }
    if (f & TCP_SYN)
      return this.challengeAck(sk, now, out, "SYN on an established connection (RFC 5961 4.2)");
    if (!(f & TCP_ACK)) return "no ACK: dropped";
    const notes: string[] = [];
    // tcp_ack
    if (seqAfter(th.ack, sk.sndUna) && !seqAfter(th.ack, sk.sndNxt)) {
      sk.sndUna = th.ack;
      if (sk.sndUna === sk.sndNxt) {
        if (sk.state === "FIN_WAIT1") this.setState(sk, "FIN_WAIT2");
        else if (sk.state === "CLOSING") this.enterTimeWait(sk, now);
        else if (sk.state === "LAST_ACK") {
          this.setState(sk, "CLOSE");
          this.forget(sk);
          return "ACK of our FIN: closed";
        }
      }
    }
    let ack = false;
    if (th.seq === sk.rcvNxt) {
      for (const o of th.options) if (o.kind === "timestamp") sk.tsRecent = o.tsval;
      if (len > 0 && sk.state !== "CLOSE_WAIT" && sk.state !== "LAST_ACK" && sk.state !== "CLOSING") {
        sk.rcvNxt = (sk.rcvNxt + len) >>> 0;
        sk.bytesIn += len;
        ack = true;
        notes.push(`${len} bytes`);
        sk.app?.onData?.(sk, len, now);
      }
      if (f & TCP_FIN) {
        sk.rcvNxt = (sk.rcvNxt + 1) >>> 0;
        ack = true;
        notes.push("FIN");
        if (sk.state === "ESTABLISHED") this.setState(sk, "CLOSE_WAIT");
        else if (sk.state === "FIN_WAIT1") this.setState(sk, "CLOSING");
        else if (sk.state === "FIN_WAIT2") this.enterTimeWait(sk, now);
        sk.app?.onPeerClose?.(sk, now);
      }
    } else if (len > 0 || f & TCP_FIN) {
      ack = true; // out of order or duplicate: dupack
      notes.push("not at rcv_nxt: dupack");
    }
    if (ack && (sk.state as TcpState) !== "CLOSE")
      out.push({ packet: this.segment(sk, TCP_ACK, now), cause: `ACK of ${notes.join(" + ")}` });
    if (sk.state === "ESTABLISHED" || sk.state === "CLOSE_WAIT") this.flush(sk, now);
    return notes.length ? notes.join(" + ") : "ACK";
  }

  private synSent(sk: TcpSock, pkt: Packet, now: number, out: TcpOutput[]): string {
    const th = pkt.l4 as Extract<Packet["l4"], { kind: "tcp" }>;
    const f = th.flags;
    if (f & TCP_ACK && th.ack !== sk.sndNxt) {
      if (f & TCP_RST) return "RST with a bad ACK: dropped";
      out.push(...this.reset(pkt, "SYN_SENT: unacceptable ACK (tcp_v4_send_reset)"));
      return "unacceptable ACK: RST";
    }
    if (f & TCP_RST) {
      if (!(f & TCP_ACK)) return "RST without ACK: dropped";
      this.setState(sk, "CLOSE");
      this.forget(sk);
      sk.error = "ECONNREFUSED";
      sk.app?.onError?.(sk, "ECONNREFUSED", now);
      return "connection refused (ECONNREFUSED)";
    }
    if (!(f & TCP_SYN)) return "no SYN: dropped";
    if (!(f & TCP_ACK)) return "simultaneous open: not modelled, dropped";
    this.peerOptions(sk, th.options);
    sk.rcvNxt = (th.seq + 1) >>> 0;
    sk.sndUna = th.ack;
    sk.rcvWnd = sk.tsOk ? (MSS - 12) * 45 : MSS * 44;
    this.disarm(sk);
    this.setState(sk, "ESTABLISHED");
    out.push({ packet: this.segment(sk, TCP_ACK, now), cause: "ACK of the SYN-ACK" });
    sk.app?.onEstablished?.(sk, now);
    this.flush(sk, now);
    return "SYN-ACK: ESTABLISHED, ACK";
  }

  /** tcp_check_req for a request sock. */
  private checkReq(sk: TcpSock, pkt: Packet, now: number, out: TcpOutput[]): string {
    const th = pkt.l4 as Extract<Packet["l4"], { kind: "tcp" }>;
    const f = th.flags;
    if (f & TCP_SYN && !(f & TCP_ACK) && th.seq === (sk.rcvNxt - 1) >>> 0) {
      if (this.oowRateLimited(sk, now)) return "retransmitted SYN: SYN-ACK rate-limited";
      out.push({
        packet: this.synAckPacket(sk, now),
        cause: "tcp_check_req: retransmitted SYN, SYN-ACK again",
      });
      return "retransmitted SYN: SYN-ACK again";
    }
    const inWindow = !seqBefore(th.seq, sk.rcvNxt) && !seqAfter(th.seq, (sk.rcvNxt + sk.rcvWnd) >>> 0);
    if (f & TCP_RST || f & TCP_SYN) {
      if (!inWindow) return "out of window: dropped";
      this.setState(sk, "CLOSE");
      this.forget(sk);
      return f & TCP_RST ? "RST: request dropped" : "SYN in window: request reset";
    }
    if (!(f & TCP_ACK)) return "no ACK: dropped";
    if (th.ack !== sk.sndNxt) {
      out.push(...this.reset(pkt, "tcp_check_req: bad ACK (tcp_v4_send_reset)"));
      return "bad ACK: RST";
    }
    this.disarm(sk);
    this.setState(sk, "ESTABLISHED");
    sk.sndUna = th.ack;
    if (th.seq === sk.rcvNxt) for (const o of th.options) if (o.kind === "timestamp") sk.tsRecent = o.tsval;
    const l = (sk as { listener?: Listener }).listener;
    sk.app = l?.accept ? l.accept(sk, now) : closeOnPeerClose(this);
    sk.app?.onEstablished?.(sk, now);
    if (pkt.payloadLength > 0 || f & TCP_FIN) return `accepted; ${this.process(sk, pkt, now, out)}`;
    return "ACK: accepted (ESTABLISHED)";
  }

  private timeWait(sk: TcpSock, pkt: Packet, now: number, out: TcpOutput[]): string {
    const th = pkt.l4 as Extract<Packet["l4"], { kind: "tcp" }>;
    const f = th.flags;
    if (f & TCP_RST) {
      this.setState(sk, "CLOSE");
      this.forget(sk);
      return "RST: timewait socket killed (rfc1337=0)";
    }
    if (f & TCP_SYN && !(f & TCP_ACK) && seqAfter(th.seq, sk.rcvNxt)) {
      const l = this.listener(pkt.ip.dst, th.dstPort);
      this.setState(sk, "CLOSE");
      this.forget(sk);
      if (l) {
        const child = this.synRecv(l, pkt, now);
        out.push({
          packet: this.synAckPacket(child, now),
          cause: "TCP_TW_SYN: new connection from TIME_WAIT",
        });
        return "SYN above rcv_nxt: TIME_WAIT reused (TCP_TW_SYN), SYN-ACK";
      }
      return "SYN above rcv_nxt: no listener";
    }
    if (f & TCP_FIN) this.arm(sk, now + TCP_TIMEWAIT_LEN);
    if (this.oowRateLimited(sk, now)) return "TCP_TW_ACK rate-limited";
    out.push({ packet: this.segment(sk, TCP_ACK, now), cause: "tcp_timewait_state_process: TCP_TW_ACK" });
    return "TIME_WAIT: ACK";
  }

  private challengeAck(sk: TcpSock, now: number, out: TcpOutput[], why: string): string {
    if (this.oowRateLimited(sk, now)) return `${why}: challenge ACK rate-limited (tcp_invalid_ratelimit)`;
    out.push({ packet: this.segment(sk, TCP_ACK, now), cause: `tcp_send_challenge_ack: ${why}` });
    return `${why}: challenge ACK`;
  }

  /** __tcp_oow_rate_limited. */
  private oowRateLimited(sk: TcpSock, now: number): boolean {
    const elapsed = now - sk.lastOowAck;
    if (elapsed >= 0 && elapsed < this.sysctl.invalidRatelimit) return true;
    sk.lastOowAck = now;
    return false;
  }

  private reset(pkt: Packet, cause: string): TcpOutput[] {
    const r = tcpV4SendReset(pkt, { dstType: "LOCAL", ttl: this.ttl });
    return "refused" in r ? [] : [{ packet: r.packet, cause }];
  }

  // ---------------------------------------------------------------------------------------------------------
  // timers and output

  private onTimer(sk: TcpSock, now: number): void {
    switch (sk.state) {
      case "SYN_SENT":
        if (sk.retries >= this.sysctl.synRetries) {
          this.setState(sk, "CLOSE");
          this.forget(sk);
          sk.error = "ETIMEDOUT";
          sk.app?.onError?.(sk, "ETIMEDOUT", now);
          return;
        }
        sk.retries++;
        this.outbox.push({ packet: this.synPacket(sk, now), cause: `SYN retransmission #${sk.retries}` });
        this.arm(sk, now + TCP_TIMEOUT_INIT * 2 ** sk.retries);
        return;
      case "SYN_RECV":
        if (sk.retries >= this.sysctl.synackRetries) {
          this.setState(sk, "CLOSE");
          this.forget(sk);
          return;
        }
        sk.retries++;
        this.outbox.push({
          packet: this.synAckPacket(sk, now),
          cause: `SYN-ACK retransmission #${sk.retries}`,
        });
        this.arm(sk, now + TCP_TIMEOUT_INIT * 2 ** sk.retries);
        return;
      case "TIME_WAIT":
        this.setState(sk, "CLOSE");
        this.forget(sk);
        return;
      default:
        return;
    }
  }

  private arm(sk: TcpSock, at: number): void {
    sk.timer = at;
    this.timed.add(sk);
  }
  private disarm(sk: TcpSock): void {
    sk.timer = undefined;
    sk.retries = 0;
    this.timed.delete(sk);
  }

  private enterTimeWait(sk: TcpSock, now: number): void {
    this.setState(sk, "TIME_WAIT");
    this.arm(sk, now + TCP_TIMEWAIT_LEN);
  }

  private setState(sk: TcpSock, s: TcpState): void {
    if (sk.state === s) return;
    sk.state = s;
    sk.history.push(s);
  }

  private forget(sk: TcpSock): void {
    this.timed.delete(sk);
    sk.timer = undefined;
    const k = key(sk.laddr, sk.lport, sk.raddr, sk.rport);
    if (this.socks.get(k) === sk) this.socks.delete(k);
  }

  /** Sends queued data and the FIN when asked for. */
  private flush(sk: TcpSock, now: number): void {
    if (sk.state !== "ESTABLISHED" && sk.state !== "CLOSE_WAIT") return;
    const mss = sk.tsOk ? MSS - 12 : MSS;
    while (sk.pendingData > 0) {
      const n = Math.min(mss, sk.pendingData);
      sk.pendingData -= n;
      sk.bytesOut += n;
      this.outbox.push({ packet: this.segment(sk, TCP_ACK | TCP_PSH, now, n), cause: `send(): ${n} bytes` });
      sk.sndNxt = (sk.sndNxt + n) >>> 0;
    }
    if (sk.closeRequested) {
      sk.closeRequested = false;
      this.outbox.push({ packet: this.segment(sk, TCP_FIN | TCP_ACK, now), cause: "close(): FIN" });
      sk.sndNxt = (sk.sndNxt + 1) >>> 0;
      this.setState(sk, sk.state === "ESTABLISHED" ? "FIN_WAIT1" : "LAST_ACK");
    }
  }

  private tsval(sk: TcpSock, now: number): number {
    return (sk.tsOffset + Math.floor(now * 1000)) >>> 0;
  }

  private synPacket(sk: TcpSock, now: number): Packet {
    const c = this.sysctl;
    const ts = c.timestamps ? { tsval: this.tsval(sk, now), tsecr: 0 } : undefined;
    const options = synOptions(MSS, c.sack, ts, c.windowScaling ? this.wscale : undefined);
    return this.build(sk, sk.iss, 0, TCP_SYN, MSS * 44, options, 0, now, sk.ipId);
  }

  /** tcp_make_synack with tcp_synack_options; id 0 (ip_build_and_send_pkt with DF). */
  private synAckPacket(sk: TcpSock, now: number): Packet {
    const ts = sk.tsOk ? { tsval: this.tsval(sk, now), tsecr: sk.tsRecent } : undefined;
    const options = synOptions(MSS, sk.sackOk, ts, sk.rcvWscale > 0 ? sk.rcvWscale : undefined);
    return this.build(
      sk,
      sk.iss,
      sk.rcvNxt,
      TCP_SYN | TCP_ACK,
      Math.min(sk.rcvWnd, 65535),
      options,
      0,
      now,
      0,
    );
  }

  /** A segment of an established (or closing) connection at snd_nxt acking rcv_nxt. */
  private segment(sk: TcpSock, flags: number, now: number, len = 0): Packet {
    const options: TcpOption[] = sk.tsOk
      ? [
          { kind: "nop" },
          { kind: "nop" },
          { kind: "timestamp", tsval: this.tsval(sk, now), tsecr: sk.tsRecent },
        ]
      : [];
    const ws = sk.rcvWscale;
    const win = ws > 0 ? Math.ceil(sk.rcvWnd / (1 << ws)) : Math.min(sk.rcvWnd, 65535);
    const id = sk.ipId;
    sk.ipId = (sk.ipId + 1) & 0xffff;
    return this.build(sk, sk.sndNxt, sk.rcvNxt, flags, flags & TCP_RST ? 0 : win, options, len, now, id);
  }

  private build(
    sk: TcpSock,
    seq: number,
    ack: number,
    flags: number,
    window: number,
    options: TcpOption[],
    len: number,
    now: number,
    id: number,
  ): Packet {
    let optLen = 0;
    for (const o of options) optLen += TCP_OPTION_LENGTH[o.kind] ?? 0;
    const dataOffset = 20 + ((optLen + 3) & ~3);
    const total = 20 + dataOffset + len;
    const sec = Math.floor(now);
    return {
      ip: {
        ihl: 20,
        tos: 0,
        totalLength: total,
        id,
        rf: false,
        df: true,
        mf: false,
        fragOffset: 0,
        ttl: this.ttl,
        protocol: IPPROTO_TCP,
        checksum: 0,
        src: sk.laddr,
        dst: sk.raddr,
        options: EMPTY,
      },
      l4: {
        kind: "tcp",
        srcPort: sk.lport,
        dstPort: sk.rport,
        seq: seq >>> 0,
        ack: ack >>> 0,
        dataOffset,
        reserved: 0,
        flags,
        window,
        checksum: 0,
        urgentPointer: 0,
        options,
      },
      payloadLength: len,
      tsSec: sec,
      tsNsec: Math.round((now - sec) * 1e9),
      ipChecksum: "unknown",
      l4Checksum: "unknown",
    };
  }
}

const EMPTY = new Uint8Array(0);
const TCP_OPTION_LENGTH: Partial<Record<TcpOption["kind"], number>> = {
  eol: 1,
  nop: 1,
  mss: 4,
  wscale: 3,
  sackPermitted: 2,
  timestamp: 10,
};

/**
 * The option layout tcp_options_write produces for a SYN or SYN-ACK: MSS; SACK_PERM+TS together, or NOP NOP TS,
 * or NOP NOP SACK_PERM; NOP WSCALE.
 */
export function synOptions(
  mss: number,
  sack: boolean,
  ts: { tsval: number; tsecr: number } | undefined,
  wscale: number | undefined,
): TcpOption[] {
  const o: TcpOption[] = [{ kind: "mss", value: mss }];
  if (ts) {
    if (sack) o.push({ kind: "sackPermitted" });
    else o.push({ kind: "nop" }, { kind: "nop" });
    o.push({ kind: "timestamp", tsval: ts.tsval, tsecr: ts.tsecr });
  } else if (sack) o.push({ kind: "nop" }, { kind: "nop" }, { kind: "sackPermitted" });
  if (wscale !== undefined) o.push({ kind: "nop" }, { kind: "wscale", shift: wscale });
  return o;
}

/** The default server application: reads everything, closes when the peer closes (a typical server). */
export function closeOnPeerClose(stack: TcpStack): TcpApp {
  return {
    onPeerClose(sk, now) {
      if (sk.state === "CLOSE_WAIT") stack.close(sk, now);
    },
  };
}

/** Whether a segment is one the host's TCP would answer with tcp_v4_send_reset (for callers without a socket). */
export function isTcpSegment(pkt: Packet): boolean {
  return pkt.l4.kind === "tcp" && pkt.ip.protocol === IPPROTO_TCP;
}
