// Kernel profiles resolved once per id: version comparison, memoised TCP switches, and trackers that switch
// between profiles packet by packet (two tables of different kernels in one process).
import { describe, expect, it } from "vitest";
import { Conntrack } from "../../src/conntrack/core";
import { kernelAtLeast } from "../../src/conntrack/profile";
import { tcpProfile } from "../../src/conntrack/tcp_window";
import { NF_INET_PRE_ROUTING } from "../../src/conntrack/types";
import { tcp } from "./packets";

describe("kernelAtLeast", () => {
  const cases: Array<[string, string, boolean]> = [
    ["6.18", "6.1", true],
    ["6.1", "6.18", false],
    ["5.10", "4.19", true],
    ["4.19", "5.10", false],
    ["3.10", "3.10", true],
    ["3.6", "3.10", false],
    ["6.1", "6.1.0", true],
    ["6", "6.1", false],
  ];
  for (const [k, min, want] of cases)
    it(`${k} >= ${min}: ${want}`, () => {
      expect(kernelAtLeast(k, min)).toBe(want);
      expect(kernelAtLeast(k, min), "again, from the parsed cache").toBe(want);
    });
});

describe("tcpProfile", () => {
  it("returns one frozen object per id", () => {
    const a = tcpProfile("5.10");
    tcpProfile("6.18");
    expect(tcpProfile("5.10")).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect([a.windowActions, a.rstExactSeq, a.logTexts]).toEqual([false, true, "5"]);
    expect(tcpProfile("3.6").emptySegmentAckOnly).toBe(true);
    expect(tcpProfile("6.18").logTexts).toBe("6");
  });

  it("keeps two tables of different kernels apart when their packets interleave", () => {
    const old = new Conntrack({ kernel: "3.10" });
    const cur = new Conntrack({ kernel: "6.18" });
    const bad = tcp("10.0.0.1:1000", "10.0.0.2:80", "SF", 1, 0); // SYN+FIN: invalid flag combination
    for (let i = 0; i < 3; i++) {
      expect(old.in(bad, NF_INET_PRE_ROUTING, 1).reason?.text).toBe("invalid TCP flag combination");
      expect(cur.in(bad, NF_INET_PRE_ROUTING, 1).reason?.text).toBe("invalid tcp flag combination");
    }
    // Then a connection into TIME_WAIT in both, and a SYN from the server on the same ports: REPLY/syn/sTW is
    // sIV in 3.10 (INVALID) and sSS in 6.18 (the old entry is killed and the SYN starts a new one).
    const A = "10.0.0.1:1001";
    const B = "10.0.0.2:80";
    const dialogue = [
      tcp(A, B, "S", 100, 0),
      tcp(B, A, "SA", 500, 101),
      tcp(A, B, "A", 101, 501),
      tcp(A, B, "FA", 101, 501),
      tcp(B, A, "FA", 501, 102),
      tcp(A, B, "A", 102, 502),
    ];
    let now = 2;
    for (const p of dialogue) {
      now += 0.001;
      for (const t of [old, cur]) {
        const r = t.in(p, NF_INET_PRE_ROUTING, now);
        expect(r.state, `${t.kernel}: ${r.reason?.text ?? ""}`).not.toBe("INVALID");
        t.confirm(r.ct!, now, r.ctinfo);
      }
    }
    const serverSyn = tcp(B, A, "S", 9000, 0);
    expect(old.in(serverSyn, NF_INET_PRE_ROUTING, now).state, "3.10").toBe("INVALID");
    expect(cur.in(serverSyn, NF_INET_PRE_ROUTING, now).state, "6.18").toBe("NEW");
  });
});
