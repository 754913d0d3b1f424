// Packet dialogue helpers for the TCP tracker tests: a tiny fake conntrack entry (NfConnL4View) and a driver that
// plays the conntrack core's part (ctinfo, SEEN_REPLY after a reply is accepted, confirm after the first packet).
import type { ChecksumStatus, Packet, TcpOption } from "../../src/wire/packet";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../src/wire/packet";
import type { ConntrackSysctls, CtDir, L4Context, NfConnL4View, NfHook } from "../../src/conntrack/types";
import {
  IPS_CONFIRMED,
  IPS_SEEN_REPLY,
  IP_CT_ESTABLISHED,
  IP_CT_ESTABLISHED_REPLY,
  IP_CT_NEW,
  NF_INET_LOCAL_OUT,
} from "../../src/conntrack/types";
import type { IpCtTcp, TcpL4Result } from "../../src/conntrack/proto_tcp";
import { nfConntrackTcpPacket } from "../../src/conntrack/proto_tcp";
import { tcp_conntrack_names } from "../../tables/tcp_conntracks";

export const ORIG: CtDir = 0;
export const REPLY: CtDir = 1;

export function sysctls(over: Partial<ConntrackSysctls> = {}): ConntrackSysctls {
  return {
    nf_conntrack_tcp_loose: 1,
    nf_conntrack_tcp_be_liberal: 0,
    nf_conntrack_tcp_ignore_invalid_rst: 0,
    nf_conntrack_tcp_max_retrans: 3,
    nf_conntrack_checksum: 1,
    nf_conntrack_max: 65536,
    nf_conntrack_tcp_timeout_syn_sent: 120,
    nf_conntrack_tcp_timeout_syn_recv: 60,
    nf_conntrack_tcp_timeout_established: 432000,
    nf_conntrack_tcp_timeout_fin_wait: 120,
    nf_conntrack_tcp_timeout_close_wait: 60,
    nf_conntrack_tcp_timeout_last_ack: 30,
    nf_conntrack_tcp_timeout_time_wait: 120,
    nf_conntrack_tcp_timeout_close: 10,
    nf_conntrack_tcp_timeout_max_retrans: 300,
    nf_conntrack_tcp_timeout_unacknowledged: 300,
    nf_conntrack_udp_timeout: 30,
    nf_conntrack_udp_timeout_stream: 120,
    nf_conntrack_icmp_timeout: 30,
    nf_conntrack_generic_timeout: 600,
    ...over,
  };
}

export interface FakeCt extends NfConnL4View {
  confirmed: boolean;
  alive: boolean;
  /** When false, kill() reports the entry was already dying. */
  killable: boolean;
}

export function fakeCt(): FakeCt {
  const t = { src: 0xc0000201, dst: 0xc6336401, protonum: 6, srcU: 40000, dstU: 80 };
  const ct: FakeCt = {
    tuplehash: [t, { src: t.dst, dst: t.src, protonum: 6, srcU: t.dstU, dstU: t.srcU }],
    status: 0,
    timeout: 0,
    proto: undefined,
    confirmed: false,
    alive: true,
    killable: true,
    kill() {
      if (!ct.alive || !ct.killable) return false;
      ct.alive = false;
      return true;
    },
  };
  return ct;
}

const FLAG_LETTERS: Record<string, number> = { S: TCP_SYN, A: TCP_ACK, F: TCP_FIN, R: TCP_RST, P: TCP_PSH };

export interface SegOpts {
  win?: number;
  len?: number;
  options?: TcpOption[];
  checksum?: ChecksumStatus;
  dataOffset?: number;
}

/** A TCP segment: flags as letters ("S", "SA", "FA", "RA", "PA"). */
export function seg(flags: string, seq: number, ack: number, o: SegOpts = {}): Packet {
  let f = 0;
  for (const c of flags) f |= FLAG_LETTERS[c];
  const options = o.options ?? [];
  const dataOffset = o.dataOffset ?? 20 + (options.length ? 20 : 0);
  const len = o.len ?? 0;
  return {
    ip: {
      ihl: 20,
      tos: 0,
      totalLength: 20 + dataOffset + len,
      id: 1,
      rf: false,
      df: true,
      mf: false,
      fragOffset: 0,
      ttl: 64,
      protocol: 6,
      checksum: 0,
      src: 0,
      dst: 0,
      options: new Uint8Array(0),
    },
    l4: {
      kind: "tcp",
      srcPort: 40000,
      dstPort: 80,
      seq: seq >>> 0,
      ack: ack >>> 0,
      dataOffset,
      reserved: 0,
      flags: f,
      window: o.win ?? 502,
      checksum: 0,
      urgentPointer: 0,
      options,
    },
    payloadLength: len,
    tsSec: 0,
    tsNsec: 0,
    ipChecksum: "correct",
    l4Checksum: o.checksum ?? "correct",
  };
}

export const SYN_OPTS: TcpOption[] = [
  { kind: "mss", value: 1460 },
  { kind: "sackPermitted" },
  { kind: "nop" },
  { kind: "wscale", shift: 7 },
];

/** A dialogue: one entry, a clock, a kernel profile; `send` plays the core around nf_conntrack_tcp_packet. */
export class Dialogue {
  ct: FakeCt = fakeCt();
  now = 1000;
  constructor(
    public kernel = "6.18",
    public sysctl: ConntrackSysctls = sysctls(),
    public hook: NfHook = NF_INET_LOCAL_OUT,
  ) {}

  ctx(): L4Context {
    return { hook: this.hook, sysctl: this.sysctl, kernel: this.kernel, now: this.now };
  }

  send(dir: CtDir, pkt: Packet): TcpL4Result {
    const ct = this.ct;
    const ctinfo =
      dir === REPLY ? IP_CT_ESTABLISHED_REPLY : ct.status & IPS_SEEN_REPLY ? IP_CT_ESTABLISHED : IP_CT_NEW;
    const r = nfConntrackTcpPacket(ct, pkt, dir, ctinfo, this.ctx());
    if (r.verdict > 0 && ct.alive) {
      if (dir === REPLY) ct.status |= IPS_SEEN_REPLY;
      if (!ct.confirmed) {
        ct.confirmed = true;
        ct.status |= IPS_CONFIRMED;
      }
    }
    return r;
  }

  get tcp(): IpCtTcp {
    return this.ct.proto as IpCtTcp;
  }
  get state(): string {
    return tcp_conntrack_names[this.tcp.state];
  }
  /** Seconds left on the entry's timer. */
  get ttl(): number {
    return this.ct.timeout - this.now;
  }
}

/** SYN 1000 -> SYN/ACK 5000 -> ACK: both sides with wscale 7 and SACK, client window 502 (<<7). */
export function established(kernel = "6.18", sysctl = sysctls()): Dialogue {
  const d = new Dialogue(kernel, sysctl);
  d.send(ORIG, seg("S", 1000, 0, { win: 64240, options: SYN_OPTS }));
  d.send(REPLY, seg("SA", 5000, 1001, { win: 65160, options: SYN_OPTS }));
  d.send(ORIG, seg("A", 1001, 5001, { win: 502 }));
  return d;
}
