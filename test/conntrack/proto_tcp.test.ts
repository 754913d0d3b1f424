// Packet dialogues through nfConntrackTcpPacket, grouped by state (kernel 6.18 profile unless a test says
// otherwise). Sequence numbers: client ISN 1000, server ISN 5000, both sides wscale 7 + SACK.
import { describe, expect, it } from "vitest";
import {
  IPS_ASSURED,
  IPS_SEEN_REPLY,
  NF_ACCEPT,
  NF_DROP,
  NF_INET_LOCAL_OUT,
  NF_INET_PRE_ROUTING,
  NF_REPEAT,
} from "../../src/conntrack/types";
import {
  IP_CT_TCP_FLAG_BE_LIBERAL,
  IP_CT_TCP_FLAG_CLOSE_INIT,
  IP_CT_TCP_FLAG_SACK_PERM,
  canEarlyDrop,
  showState,
  tcpError,
  tcpTracker,
} from "../../src/conntrack/proto_tcp";
import { Dialogue, ORIG, REPLY, SYN_OPTS, established, seg, sysctls } from "./proto_tcp_helpers";

function expectState(d: Dialogue, want: string) {
  expect(d.state, `state: got ${d.state}, want ${want}`).toBe(want);
}
function expectTtl(d: Dialogue, want: number) {
  expect(d.ttl, `timeout: got ${d.ttl}s, want ${want}s`).toBe(want);
}

// Tests for tcp_error (before any state).
describe("tcp_error", () => {
  const ctx = (over = {}) => ({
    hook: NF_INET_PRE_ROUTING as 0,
    sysctl: sysctls(over),
    kernel: "6.18",
    now: 0,
  });
  it("rejects a bare FIN, SYN|FIN and no flags", () => {
    for (const f of ["F", "SF", ""]) {
      expect(tcpError(seg(f, 1, 0), ctx())?.text, `flags ${f || "none"}`).toBe(
        "invalid tcp flag combination",
      );
    }
    expect(tcpError(seg("FA", 1, 1), ctx())).toBeUndefined();
  });
  it("checks the checksum only at PRE_ROUTING with nf_conntrack_checksum=1", () => {
    const bad = seg("S", 1, 0, { checksum: "incorrect" });
    expect(tcpError(bad, ctx())?.text).toBe("bad checksum");
    expect(tcpError(bad, { ...ctx(), hook: NF_INET_LOCAL_OUT })).toBeUndefined();
    expect(tcpError(bad, ctx({ nf_conntrack_checksum: 0 }))).toBeUndefined();
  });
  it("rejects a header shorter than 20 bytes", () => {
    expect(tcpError(seg("S", 1, 0, { dataOffset: 16 }), ctx())?.text).toBe("truncated packet");
  });
  it("uses the 3.10 texts on the 3.10 profile", () => {
    expect(tcpError(seg("F", 1, 0), { ...ctx(), kernel: "3.10" })?.text).toBe("invalid TCP flag combination");
  });
  it("makes the packet INVALID through nf_conntrack_tcp_packet", () => {
    const d = new Dialogue();
    const r = d.send(ORIG, seg("F", 1, 0));
    expect(r.verdict).toBe(-NF_ACCEPT);
    expect(r.reason?.fn).toBe("tcp_error");
  });
});

// Tests for the NONE state (tcp_new).
describe("NONE: tcp_new", () => {
  it("SYN creates SYN_SENT with the SYN_SENT timeout", () => {
    const d = new Dialogue();
    const r = d.send(ORIG, seg("S", 1000, 0, { win: 64240, options: SYN_OPTS }));
    expect(r.verdict).toBe(NF_ACCEPT);
    expectState(d, "SYN_SENT");
    expectTtl(d, 120);
    expect(d.tcp.seen[0].td_end).toBe(1001);
    expect(d.tcp.seen[0].td_scale).toBe(7);
    expect(d.tcp.seen[0].flags & IP_CT_TCP_FLAG_SACK_PERM).toBeTruthy();
  });
  it("SYN/ACK as first packet is invalid new, with the deciding cell", () => {
    const d = new Dialogue();
    const r = d.send(ORIG, seg("SA", 1000, 1));
    expect(r.verdict).toBe(-NF_ACCEPT);
    expect(r.reason).toEqual({
      fn: "tcp_new",
      text: "invalid new",
      cell: { dir: 0, index: "synack", oldState: "NONE", result: "sIV" },
    });
  });
  it("ACK pickup with tcp_loose=1: ESTABLISHED, liberal both ways, capped at UNACK until a reply", () => {
    const d = new Dialogue();
    const r = d.send(ORIG, seg("A", 70000, 9000));
    expect(r.verdict).toBe(NF_ACCEPT);
    expectState(d, "ESTABLISHED");
    expectTtl(d, 300);
    expect(d.tcp.seen[0].flags & IP_CT_TCP_FLAG_BE_LIBERAL).toBeTruthy();
    expect(d.tcp.seen[1].flags & IP_CT_TCP_FLAG_BE_LIBERAL).toBeTruthy();
    d.send(REPLY, seg("A", 9000, 70000));
    d.send(ORIG, seg("A", 70000, 9000));
    expect(d.ct.status & IPS_ASSURED, "ASSURED after a valid answer").toBeTruthy();
    expectTtl(d, 432000);
  });
  it("ACK pickup with tcp_loose=0 is INVALID", () => {
    const d = new Dialogue("6.18", sysctls({ nf_conntrack_tcp_loose: 0 }));
    expect(d.send(ORIG, seg("A", 70000, 9000)).verdict).toBe(-NF_ACCEPT);
  });
  it("3.6 has no UNACK cap on pickup", () => {
    const d = new Dialogue("3.6");
    d.send(ORIG, seg("A", 70000, 9000));
    expectTtl(d, 432000);
  });
});

// Tests for the SYN_SENT state.
describe("SYN_SENT", () => {
  it("SYN/ACK answer moves to SYN_RECV (60 s)", () => {
    const d = new Dialogue();
    d.send(ORIG, seg("S", 1000, 0, { win: 64240, options: SYN_OPTS }));
    const r = d.send(REPLY, seg("SA", 5000, 1001, { win: 65160, options: SYN_OPTS }));
    expect(r.verdict).toBe(NF_ACCEPT);
    expectState(d, "SYN_RECV");
    expectTtl(d, 60);
  });
  it("a retransmitted SYN does not renew the timeout on 6.18, but does on 5.10", () => {
    for (const [kernel, want] of [
      ["6.18", 70],
      ["5.10", 120],
    ] as const) {
      const d = new Dialogue(kernel);
      d.send(ORIG, seg("S", 1000, 0, { win: 64240, options: SYN_OPTS }));
      d.now += 50;
      expect(d.send(ORIG, seg("S", 1000, 0, { win: 64240, options: SYN_OPTS })).verdict).toBe(NF_ACCEPT);
      expect(d.ttl, `${kernel}: got ${d.ttl}, want ${want}`).toBe(want);
    }
  });
  it("an ORIGINAL ACK is invalid (cell sIV)", () => {
    const d = new Dialogue();
    d.send(ORIG, seg("S", 1000, 0));
    const r = d.send(ORIG, seg("A", 1001, 1));
    expect(r.verdict).toBe(-NF_ACCEPT);
    expect(r.reason?.text).toBe("packet (index 3) in dir 0 invalid, state SYN_SENT");
    expect(r.reason?.cell?.result).toBe("sIV");
  });
  it("a REPLY ACK is ignored and remembered as a possible challenge ACK; its RST answer is in window", () => {
    const d = new Dialogue();
    d.send(ORIG, seg("S", 1000, 0));
    const r = d.send(REPLY, seg("A", 7777, 1));
    expect(r.ignored).toBe(true);
    expect(r.reason?.text).toBe("packet (index 3) in dir 1 ignored, state SYN_SENT");
    expect(d.tcp.last_ack).toBe(1);
    // The client resets the connection it does not know, with seq = the challenge ACK's ack.
    // The ignored reply was still accepted, so the core has set SEEN_REPLY: no immediate kill, CLOSE for 10 s.
    const rst = d.send(ORIG, seg("R", 1, 0));
    expect(rst.verdict).toBe(NF_ACCEPT);
    expect(rst.killed).toBeUndefined();
    expectState(d, "CLOSE");
    expectTtl(d, 10);
  });
  it("RST|ACK seq 0 answering the SYN closes and kills the entry", () => {
    const d = new Dialogue();
    d.send(ORIG, seg("S", 1000, 0));
    const r = d.send(REPLY, seg("RA", 0, 1001, { win: 0 }));
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.newState).toBe("CLOSE");
    expect(d.ct.alive).toBe(false);
  });
  it("simultaneous open: SYN both ways -> SYN_SENT2 -> SYN_RECV -> ESTABLISHED", () => {
    const d = new Dialogue();
    d.send(ORIG, seg("S", 1000, 0, { win: 64240 }));
    d.send(REPLY, seg("S", 5000, 0, { win: 65160 }));
    expectState(d, "SYN_SENT2");
    d.send(ORIG, seg("SA", 1000, 5001, { win: 64240 }));
    expectState(d, "SYN_RECV");
    d.send(REPLY, seg("A", 5001, 1001, { win: 65160 }));
    expectState(d, "ESTABLISHED");
    expect(d.ct.status & IPS_ASSURED).toBeTruthy();
  });
  it("3.10 has no SIMULTANEOUS_OPEN flag: the REPLY ACK stays in SYN_RECV", () => {
    const d = new Dialogue("3.10");
    d.send(ORIG, seg("S", 1000, 0, { win: 64240 }));
    d.send(REPLY, seg("S", 5000, 0, { win: 65160 }));
    d.send(ORIG, seg("SA", 1000, 5001, { win: 64240 }));
    d.send(REPLY, seg("A", 5001, 1001, { win: 65160 }));
    expectState(d, "SYN_RECV");
  });
});

// Tests for the SYN_RECV state.
describe("SYN_RECV", () => {
  it("the client's ACK establishes and sets ASSURED with an IPCT_ASSURED event", () => {
    const d = new Dialogue();
    d.send(ORIG, seg("S", 1000, 0, { win: 64240, options: SYN_OPTS }));
    d.send(REPLY, seg("SA", 5000, 1001, { win: 65160, options: SYN_OPTS }));
    const r = d.send(ORIG, seg("A", 1001, 5001, { win: 502 }));
    expectState(d, "ESTABLISHED");
    expect(d.ct.status & IPS_ASSURED).toBeTruthy();
    expect(r.events).toContain("IPCT_ASSURED");
    expectTtl(d, 432000);
  });
  it("a retransmitted SYN/ACK is ignored (cell sIG) and leaves the timer alone", () => {
    const d = new Dialogue();
    d.send(ORIG, seg("S", 1000, 0, { win: 64240, options: SYN_OPTS }));
    d.send(REPLY, seg("SA", 5000, 1001, { win: 65160, options: SYN_OPTS }));
    d.now += 10;
    const r = d.send(REPLY, seg("SA", 5000, 1001, { win: 65160, options: SYN_OPTS }));
    expect(r.ignored).toBe(true);
    expect(r.reason?.cell).toEqual({ dir: 1, index: "synack", oldState: "SYN_RECV", result: "sIG" });
    expectTtl(d, 50);
  });
});

// Tests for the ESTABLISHED state.
describe("ESTABLISHED", () => {
  it("data in window sets UNACK timeout until acknowledged", () => {
    const d = established();
    d.send(ORIG, seg("PA", 1001, 5001, { len: 100 }));
    expectTtl(d, 300);
    d.send(REPLY, seg("A", 5001, 1101));
    expectTtl(d, 432000);
  });
  it("SYN in ORIGINAL is ignored: state ESTABLISHED, timer untouched", () => {
    const d = established();
    d.now += 100;
    const r = d.send(ORIG, seg("S", 9000, 0, { win: 64240, options: SYN_OPTS }));
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.ignored).toBe(true);
    expect(r.reason?.text).toBe("packet (index 0) in dir 0 ignored, state ESTABLISHED");
    expectState(d, "ESTABLISHED");
    expectTtl(d, 432000 - 100);
  });
  it("SYN/ACK resync after an ignored SYN: the entry follows the new connection", () => {
    const d = established();
    d.send(ORIG, seg("S", 9000, 0, { win: 64240, options: SYN_OPTS }));
    const r = d.send(REPLY, seg("SA", 20000, 9001, { win: 65160, options: SYN_OPTS }));
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.ignored).toBeUndefined();
    expectState(d, "SYN_RECV");
    expect(d.tcp.seen[0].td_end).toBe(9001);
    expect(d.tcp.seen[0].td_scale).toBe(7);
    d.send(ORIG, seg("A", 9001, 20001, { win: 502 }));
    expectState(d, "ESTABLISHED");
  });
  it("REPLY SYN is invalid (sIV)", () => {
    const d = established();
    const r = d.send(REPLY, seg("S", 5000, 0));
    expect(r.verdict).toBe(-NF_ACCEPT);
    expect(r.reason?.cell).toEqual({ dir: 1, index: "syn", oldState: "ESTABLISHED", result: "sIV" });
  });

  describe("window tracking", () => {
    it("SEQ over the upper bound but inside the receiver window: IGNORE, td_end moves", () => {
      const d = established();
      const r = d.send(ORIG, seg("PA", 100000, 5001, { len: 10 }));
      expect(r.verdict).toBe(NF_ACCEPT);
      expect(r.ignored).toBe(true);
      expect(r.reason).toEqual({ fn: "tcp_in_window", text: "33850 bytes more than expected" });
      expect(d.tcp.seen[0].td_end).toBe(100010);
    });
    it("SEQ far over the upper bound: INVALID", () => {
      const d = established();
      const r = d.send(ORIG, seg("PA", 200000, 5001, { len: 10 }));
      expect(r.verdict).toBe(-NF_ACCEPT);
      expect(r.reason?.text).toBe("SEQ is over upper bound 66162 (over the window of the receiver)");
    });
    it("ACK over the upper bound: INVALID", () => {
      const d = established();
      const r = d.send(ORIG, seg("A", 1001, 105001));
      expect(r.verdict).toBe(-NF_ACCEPT);
      expect(r.reason?.text).toBe("ACK is over upper bound 5002 (ACKed data not seen yet)");
    });
    it("old retransmission: IGNORE on 6.18, INVALID on 5.10, ACCEPT with be_liberal", () => {
      const play = (kernel: string, over = {}) => {
        const d = established(kernel, sysctls(over));
        d.send(ORIG, seg("PA", 1001, 5001, { len: 60000 }));
        d.send(REPLY, seg("A", 5001, 61001));
        d.send(ORIG, seg("PA", 61001, 5001, { len: 60000 }));
        return d.send(ORIG, seg("PA", 1001, 5001, { len: 1000 }));
      };
      const r6 = play("6.18");
      expect(r6.ignored).toBe(true);
      expect(r6.reason?.text).toBe("SEQ is under lower bound 55840 (already ACKed data retransmitted)");
      const r5 = play("5.10");
      expect(r5.verdict).toBe(-NF_ACCEPT);
      expect(r5.reason?.text).toBe("SEQ is under the lower bound (already ACKed data retransmitted)");
      const rl = play("6.18", { nf_conntrack_tcp_be_liberal: 1 });
      expect(rl.verdict).toBe(NF_ACCEPT);
      expect(rl.ignored).toBeUndefined();
    });
    it("5.10 has no IGNORE: over the upper bound is INVALID with the old text", () => {
      const d = established("5.10");
      const r = d.send(ORIG, seg("PA", 100000, 5001, { len: 10 }));
      expect(r.verdict).toBe(-NF_ACCEPT);
      expect(r.reason?.text).toBe("SEQ is over the upper bound (over the window of the receiver)");
    });
    it("SACK right edge is the acknowledgement checked against the upper bound", () => {
      const d = established();
      const r = d.send(REPLY, seg("A", 5001, 1001, { options: [{ kind: "sack", blocks: [[1001, 3001]] }] }));
      expect(r.verdict).toBe(-NF_ACCEPT);
      expect(r.reason?.text).toBe("ACK is over upper bound 1002 (ACKed data not seen yet)");
    });
  });

  describe("retransmissions and timeouts", () => {
    it("counts identical ACKs and switches to RETRANS after tcp_max_retrans", () => {
      const d = established();
      d.send(ORIG, seg("A", 1001, 5001));
      d.send(ORIG, seg("A", 1001, 5001));
      expect(d.tcp.retrans).toBe(2);
      expectTtl(d, 432000);
      d.send(ORIG, seg("A", 1001, 5001));
      expect(d.tcp.retrans).toBe(3);
      expectTtl(d, 300);
      d.send(ORIG, seg("A", 1001, 5001, { win: 600 }));
      expect(d.tcp.retrans, "a different window resets the count").toBe(0);
      expectTtl(d, 432000);
    });
    it("zero window: RETRANS timeout on 6.18, not on 3.10", () => {
      for (const [kernel, want] of [
        ["6.18", 300],
        ["3.10", 432000],
      ] as const) {
        const d = established(kernel);
        d.send(REPLY, seg("A", 5001, 1001, { win: 0 }));
        expect(d.ttl, `${kernel}: got ${d.ttl}, want ${want}`).toBe(want);
      }
    });
  });

  describe("RST", () => {
    it("RST at exactly td_maxack closes with the CLOSE timeout", () => {
      const d = established();
      const r = d.send(REPLY, seg("R", 5001, 0, { win: 0 }));
      expect(r.verdict).toBe(NF_ACCEPT);
      expectState(d, "CLOSE");
      expectTtl(d, 10);
    });
    it("RST before td_maxack is 'invalid rst' unless tcp_ignore_invalid_rst", () => {
      const d = established();
      const r = d.send(REPLY, seg("R", 4000, 0));
      expect(r.verdict).toBe(-NF_ACCEPT);
      expect(r.reason?.text).toBe("invalid rst");
      const d2 = established("6.18", sysctls({ nf_conntrack_tcp_ignore_invalid_rst: 1 }));
      expect(d2.send(REPLY, seg("R", 4000, 0)).verdict).toBe(NF_ACCEPT);
      expectState(d2, "ESTABLISHED");
      expectTtl(d2, 10);
    });
    it("in-window RST with inexact seq keeps ESTABLISHED (challenge ACK) but drops to 10 s", () => {
      for (const kernel of ["6.18", "5.10"]) {
        const d = established(kernel);
        expect(d.send(REPLY, seg("R", 5500, 0)).verdict).toBe(NF_ACCEPT);
        expectState(d, "ESTABLISHED");
        expectTtl(d, 10);
      }
    });
    it("3.10 closes on any in-window RST", () => {
      const d = established("3.10");
      d.send(REPLY, seg("R", 5500, 0));
      expectState(d, "CLOSE");
    });
    it("nf_tcp_handle_invalid: an invalid FIN answering an invalid RST lowers the timeout to UNACK (6.x only)", () => {
      for (const [kernel, want] of [
        ["6.18", 300],
        ["5.10", 432000],
      ] as const) {
        const d = established(kernel);
        expect(d.send(ORIG, seg("R", 200000, 0)).verdict).toBe(-NF_ACCEPT);
        expect(d.send(REPLY, seg("FA", 300000, 1001)).verdict).toBe(-NF_ACCEPT);
        expect(d.ttl, `${kernel}: got ${d.ttl}, want ${want}`).toBe(want);
        expectState(d, "ESTABLISHED");
      }
    });
    it("RST out of window is INVALID", () => {
      const d = established();
      const r = d.send(REPLY, seg("R", 200000, 0));
      expect(r.verdict).toBe(-NF_ACCEPT);
      expect(r.reason?.fn).toBe("tcp_in_window");
      expect(r.reason?.text).toBe("SEQ is over upper bound 69258 (over the window of the receiver)");
    });
  });
});

// Tests for FIN_WAIT, CLOSE_WAIT, LAST_ACK and TIME_WAIT.
describe("teardown", () => {
  it("client closes first: FIN_WAIT -> CLOSE_WAIT -> LAST_ACK -> TIME_WAIT", () => {
    const d = established();
    d.send(ORIG, seg("FA", 1001, 5001));
    expectState(d, "FIN_WAIT");
    expectTtl(d, 120);
    expect(d.tcp.seen[0].flags & IP_CT_TCP_FLAG_CLOSE_INIT).toBeTruthy();
    d.send(REPLY, seg("A", 5001, 1002));
    expectState(d, "CLOSE_WAIT");
    expectTtl(d, 60);
    d.send(REPLY, seg("FA", 5001, 1002));
    expectState(d, "LAST_ACK");
    expectTtl(d, 30);
    d.send(ORIG, seg("A", 1002, 5002));
    expectState(d, "TIME_WAIT");
    expectTtl(d, 120);
    expect(showState(d.ct)).toBe("TIME_WAIT ");
    expect(canEarlyDrop(d.ct)).toBe(true);
  });
  it("server closes first: CLOSE_INIT on the REPLY side", () => {
    const d = established();
    d.send(REPLY, seg("FA", 5001, 1001));
    expectState(d, "FIN_WAIT");
    expect(d.tcp.seen[1].flags & IP_CT_TCP_FLAG_CLOSE_INIT).toBeTruthy();
    d.send(ORIG, seg("FA", 1001, 5002));
    expectState(d, "LAST_ACK");
    d.send(REPLY, seg("A", 5002, 1002));
    expectState(d, "TIME_WAIT");
  });
  it("SYN in TIME_WAIT after a FIN re-opens: entry killed, -NF_REPEAT", () => {
    const d = established();
    d.send(ORIG, seg("FA", 1001, 5001));
    d.send(REPLY, seg("FA", 5001, 1002));
    d.send(ORIG, seg("A", 1002, 5002));
    expectState(d, "TIME_WAIT");
    const r = d.send(ORIG, seg("S", 90000, 0));
    expect(r.verdict).toBe(-NF_REPEAT);
    expect(d.ct.alive).toBe(false);
  });
  it("re-open drops the packet when the entry is already dying", () => {
    const d = established();
    d.send(ORIG, seg("FA", 1001, 5001));
    d.send(REPLY, seg("FA", 5001, 1002));
    d.send(ORIG, seg("A", 1002, 5002));
    d.ct.killable = false;
    expect(d.send(ORIG, seg("S", 90000, 0)).verdict).toBe(NF_DROP);
  });
  it("SYN in CLOSE after the client's own RST re-opens", () => {
    const d = established();
    d.send(ORIG, seg("R", 1001, 0));
    expectState(d, "CLOSE");
    expect(d.send(ORIG, seg("S", 90000, 0)).verdict).toBe(-NF_REPEAT);
  });
  it("REPLY SYN in TIME_WAIT: re-open on 6.18, invalid on 3.10", () => {
    for (const [kernel, want] of [
      ["6.18", -NF_REPEAT],
      ["3.10", -NF_ACCEPT],
    ] as const) {
      const d = established(kernel);
      d.send(ORIG, seg("FA", 1001, 5001));
      d.send(REPLY, seg("FA", 5001, 1002));
      d.send(ORIG, seg("A", 1002, 5002));
      const r = d.send(REPLY, seg("S", 70000, 0));
      expect(r.verdict, `${kernel}: got ${r.verdict}, want ${want}`).toBe(want);
    }
  });
  it("LAST_ACK: a challenge ACK answering an ignored SYN does not move to TIME_WAIT", () => {
    const d = established();
    d.send(ORIG, seg("FA", 1001, 5001));
    d.send(REPLY, seg("FA", 5001, 1002));
    expectState(d, "LAST_ACK");
    expect(d.send(ORIG, seg("S", 90000, 0)).ignored).toBe(true);
    const r = d.send(REPLY, seg("A", 5002, 1002));
    expect(r.ignored).toBe(true);
    expect(r.reason?.text).toBe("challenge-ack ignored");
    expectState(d, "LAST_ACK");
  });
});

describe("tcpTracker descriptor", () => {
  it("exposes ports as the tuple and inverts them", () => {
    expect(tcpTracker.pktToTuple(seg("S", 1, 0))).toEqual({ srcU: 40000, dstU: 80 });
    expect(tcpTracker.invertTuple({ src: 1, dst: 2, protonum: 6, srcU: 40000, dstU: 80 })).toEqual({
      srcU: 80,
      dstU: 40000,
    });
  });
  it("showState pads like conntrack -L and canEarlyDrop is false while ESTABLISHED", () => {
    const d = established();
    expect(showState(d.ct)).toBe("ESTABLISHED ");
    expect(canEarlyDrop(d.ct)).toBe(false);
    expect(d.ct.status & IPS_SEEN_REPLY).toBeTruthy();
  });
});
