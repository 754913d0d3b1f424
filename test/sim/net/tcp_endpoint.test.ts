/**
 * Endpoint TCP against the kernel oracle (test/fixtures/endpoint/recordings.json, Linux 6.18.44): a LISTEN
 * socket's SYN-ACK, resets for closed ports, the RFC 5961 challenge ACKs and their per-socket rate limit, data
 * and FIN ACKs. ISN, timestamps and IP ids are random in both and are not compared; flags, seq/ack relative to
 * the ISNs, windows and the option layout are. Then the client side: SYN retransmissions, refusal, TIME_WAIT.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeIpv4, isDecodeFailure } from "../../../src/wire/ipv4";
import type { Packet, TcpHeader, TcpOption } from "../../../src/wire/packet";
import { TCP_ACK, TCP_SYN } from "../../../src/wire/packet";
import { formatTcpFlags } from "../../../src/wire/tcpdump_format";
import { tcpV4SendReset } from "../../../src/net/tcp_reset";
import { Prng } from "../../../src/util/prng";
import { TcpStack, initialWscale } from "../../../src/sim/net/tcp_endpoint";
import type { TcpOutput } from "../../../src/sim/net/tcp_endpoint";
import { ip } from "./helpers";

interface Seg {
  hex: string;
  flags: string;
  seq: number;
  ack: number;
  window: number;
  options: string[];
}
interface Case {
  name: string;
  sent: Seg[];
  received: Seg[];
}
const rec = JSON.parse(
  readFileSync(new URL("../../fixtures/endpoint/recordings.json", import.meta.url), "utf8"),
) as { provenance: { kernel: string }; cases: Case[] };
const byName = new Map(rec.cases.map((c) => [c.name, c]));

function pkt(hex: string): Packet {
  const b = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  const p = decodeIpv4(b, 0, b.length, { tsSec: 0, tsNsec: 0 });
  if (isDecodeFailure(p)) throw new Error(p.failure);
  return p;
}
const tcp = (p: Packet) => p.l4 as TcpHeader;
/** Option layout as the recorder prints it, with TS values blanked. */
function layout(opts: readonly TcpOption[] | string[]): string {
  return opts
    .map((o) => {
      const t = typeof o === "string" ? o : optText(o);
      return t.startsWith("TS val") ? "TS" : t;
    })
    .join(",");
}
function optText(o: TcpOption): string {
  switch (o.kind) {
    case "mss":
      return `mss ${o.value}`;
    case "wscale":
      return `wscale ${o.shift}`;
    case "sackPermitted":
      return "sackOK";
    case "timestamp":
      return `TS val ${o.tsval} ecr ${o.tsecr}`;
    default:
      return o.kind;
  }
}
function tsecr(o: readonly TcpOption[]): number | undefined {
  for (const x of o) if (x.kind === "timestamp") return x.tsecr;
  return undefined;
}
function recTsecr(s: Seg): number | undefined {
  const t = s.options.find((o) => o.startsWith("TS val"));
  return t ? Number(t.split(" ")[4]) : undefined;
}

/** The recording host had tcp_rmem[2] = 32 MiB (window scale 10); the server app never closes. */
function server(): TcpStack {
  const s = new TcpStack({ prng: new Prng(7), sysctl: { rmemMax: 33554432 } });
  s.listen({ address: 0, port: 80, accept: () => ({}) });
  return s;
}

function feed(s: TcpStack, c: Case, now: number): TcpOutput[] {
  const out: TcpOutput[] = [];
  for (const seg of c.sent) {
    const r = s.rcv(pkt(seg.hex), now);
    if (r) out.push(...r.replies);
    else {
      const rst = tcpV4SendReset(pkt(seg.hex), { dstType: "LOCAL", ttl: 64 });
      if ("packet" in rst) out.push({ packet: rst.packet, cause: "no socket" });
    }
  }
  return out;
}

function expectLike(got: TcpOutput[], want: Seg[], isn: { ours: number; kernel: number }, what: string) {
  expect(got.length, `${what}: got ${got.length} segments, want ${want.length}`).toBe(want.length);
  got.forEach((g, i) => {
    const w = want[i];
    const t = tcp(g.packet);
    expect(formatTcpFlags(t.flags), `${what}: flags`).toBe(w.flags);
    const rel = (v: number, base: number) => (v - base) >>> 0;
    if (t.flags & TCP_SYN || w.flags === ".")
      expect(rel(t.seq, isn.ours), `${what}: seq - ISN`).toBe(rel(w.seq, isn.kernel));
    else expect(t.seq, `${what}: seq`).toBe(w.seq);
    expect(t.ack, `${what}: ack`).toBe(w.ack);
    expect(t.window, `${what}: window`).toBe(w.window);
    expect(layout(t.options), `${what}: options`).toBe(layout(w.options));
    if (recTsecr(w) !== undefined) expect(tsecr(t.options), `${what}: TS ecr`).toBe(recTsecr(w));
    expect(g.packet.ip.df, `${what}: DF`).toBe(true);
    expect(g.packet.ip.ttl, `${what}: TTL`).toBe(64);
  });
}

describe(`endpoint TCP vs Linux ${rec.provenance.kernel}`, () => {
  it("uses the window scale tcp_select_initial_window derives from rmem", () => {
    expect(initialWscale(33554432)).toBe(10);
    expect(initialWscale(6291456)).toBe(7);
  });

  // Tests for the LISTEN state.
  it("LISTEN answers a SYN with Linux options with SYN-ACK (mss, sackOK, TS, nop, wscale; window 65160)", () => {
    const s = server();
    const c = byName.get("syn-listen")!;
    const got = feed(s, c, 0);
    expectLike(got, c.received, { ours: tcp(got[0].packet).seq, kernel: c.received[0].seq }, c.name);
    expect(got[0].packet.ip.id, "SYN-ACK IP id").toBe(0);
  });
  it("LISTEN answers a SYN without options with a SYN-ACK carrying only MSS (window 64240)", () => {
    const s = server();
    const c = byName.get("syn-listen-noopts")!;
    const got = feed(s, c, 0);
    expectLike(got, c.received, { ours: tcp(got[0].packet).seq, kernel: c.received[0].seq }, c.name);
  });
  it("a closed port gets tcp_v4_send_reset (R. ack seq+1 for a SYN, R seq=ack for an ACK)", () => {
    const s = server();
    for (const name of ["syn-closed", "ack-closed"]) {
      const c = byName.get(name)!;
      expect(s.rcv(pkt(c.sent[0].hex), 0), `${name}: no socket takes it`).toBeUndefined();
      expectLike(feed(s, c, 0), c.received, { ours: 0, kernel: 0 }, name);
    }
  });

  // Tests for the ESTABLISHED state: the recorded dialogue, with the recorder's pauses.
  it("ESTABLISHED: challenge ACKs for a SYN and an in-window RST, rate-limited, exact RST resets", () => {
    const s = server();
    const hs = byName.get("handshake")!;
    const synack = feed(s, hs, 0);
    const isn = { ours: tcp(synack[0].packet).seq, kernel: hs.received[0].seq };
    expectLike(synack, hs.received, isn, hs.name);
    // The ACK names the kernel's ISN; rewrite it to ours.
    const ackCase = byName.get("ack-established")!;
    const fix = (c: Case): Case => ({
      ...c,
      sent: c.sent.map((g) => {
        const p = pkt(g.hex);
        if (!(tcp(p).flags & TCP_ACK)) return g;
        return {
          ...g,
          hex: "",
          p: { ...p, l4: { ...tcp(p), ack: (tcp(p).ack - isn.kernel + isn.ours) >>> 0 } },
        } as Seg;
      }),
    });
    const feedFixed = (c: Case, now: number) => {
      const out: TcpOutput[] = [];
      for (const g of fix(c).sent) {
        const p = (g as Seg & { p?: Packet }).p ?? pkt(g.hex);
        const r = s.rcv(p, now);
        if (r) out.push(...r.replies);
        else {
          const rst = tcpV4SendReset(p, { dstType: "LOCAL", ttl: 64 });
          if ("packet" in rst) out.push({ packet: rst.packet, cause: "no socket" });
        }
      }
      return out;
    };
    expectLike(feedFixed(ackCase, 0.3), [], isn, ackCase.name);
    const sk = s.find(ip("192.0.2.2"), 80, ip("192.0.2.1"), 40005)!;
    expect(sk.state).toBe("ESTABLISHED");
    const times: [string, number][] = [
      ["syn-established", 1.2],
      ["syn-established-ratelimited", 1.5],
      ["rst-inwindow", 2.4],
      ["rst-outofwindow", 2.7],
      ["rst-exact", 3.0],
    ];
    for (const [name, t] of times) {
      const c = byName.get(name)!;
      expectLike(feedFixed(c, t), c.received, isn, name);
    }
    expect(sk.state, "after the exact RST").toBe("CLOSE");
    expect(sk.error).toBe("ECONNRESET");
    const after = byName.get("ack-after-reset")!;
    const got = feedFixed(after, 3.3);
    expect(got.length).toBe(1);
    expect(formatTcpFlags(tcp(got[0].packet).flags)).toBe("R");
    expect((tcp(got[0].packet).seq - isn.ours) >>> 0, "RST seq = the ACK's ack").toBe(
      (after.received[0].seq - isn.kernel) >>> 0,
    );
  });

  it("ESTABLISHED: data and FIN are ACKed at once; the FIN moves the socket to CLOSE_WAIT", () => {
    const s = server();
    const hs = byName.get("handshake2")!;
    const synack = feed(s, hs, 0);
    const isn = { ours: tcp(synack[0].packet).seq, kernel: hs.received[0].seq };
    for (const [name, t] of [
      ["data", 0.3],
      ["fin", 0.6],
    ] as const) {
      const c = byName.get(name)!;
      const out: TcpOutput[] = [];
      for (const g of c.sent) {
        const p = pkt(g.hex);
        const fixed = { ...p, l4: { ...tcp(p), ack: (tcp(p).ack - isn.kernel + isn.ours) >>> 0 } };
        out.push(...(s.rcv(fixed, t)?.replies ?? []));
      }
      expectLike(out, c.received, isn, name);
    }
    expect(s.find(ip("192.0.2.2"), 80, ip("192.0.2.1"), 40006)!.state).toBe("CLOSE_WAIT");
  });
});

// Tests for the SYN-SENT state (client side; not in the recording: Linux's documented timers).
describe("endpoint TCP client", () => {
  const srv = ip("192.0.2.2");
  it("retransmits its SYN at 1, 3, 7, 15, 31, 63 s and gives up at 127 s (ETIMEDOUT)", () => {
    const s = new TcpStack({ prng: new Prng(1), sourceFor: () => ip("192.0.2.1") });
    let err: string | undefined;
    const sk = s.connect({ sport: 40000, dst: srv, dport: 80, app: { onError: (_k, e) => (err = e) } }, 0);
    expect(s.takeOutput().length).toBe(1);
    const times: number[] = [];
    for (let t = s.nextWake(); t !== undefined; t = s.nextWake()) {
      s.wake(t);
      if (s.takeOutput().length) times.push(t);
    }
    expect(times, "got retransmission times").toEqual([1, 3, 7, 15, 31, 63]);
    expect(sk.state).toBe("CLOSE");
    expect(err).toBe("ETIMEDOUT");
  });
  it("SYN-ACK -> ACK and ESTABLISHED; a SYN-ACK with a wrong ack gets an RST", () => {
    const s = new TcpStack({ prng: new Prng(1), sourceFor: () => ip("192.0.2.1") });
    const sk = s.connect({ sport: 40000, dst: srv, dport: 80 }, 0);
    const syn = s.takeOutput()[0].packet;
    const synack = (ack: number): Packet => ({
      ...syn,
      ip: { ...syn.ip, src: srv, dst: ip("192.0.2.1") },
      l4: { ...tcp(syn), srcPort: 80, dstPort: 40000, seq: 5000, ack, flags: TCP_SYN | TCP_ACK },
    });
    const bad = s.rcv(synack((tcp(syn).seq + 7) >>> 0), 0.1)!;
    expect(formatTcpFlags(tcp(bad.replies[0].packet).flags)).toBe("R");
    expect(sk.state).toBe("SYN_SENT");
    const good = s.rcv(synack((tcp(syn).seq + 1) >>> 0), 0.2)!;
    expect(formatTcpFlags(tcp(good.replies[0].packet).flags)).toBe(".");
    expect(tcp(good.replies[0].packet).ack).toBe(5001);
    expect(sk.state).toBe("ESTABLISHED");
  });
});
