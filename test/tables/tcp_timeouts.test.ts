// tcpTimeout(sysctl, slot): one slot read straight from the sysctls must equal the slot of the full array
// tcpTimeoutsFrom builds, for defaults, overrides and missing sysctls.
import { describe, expect, it } from "vitest";
import { tcpTimeout, tcpTimeoutsFrom, tcp_timeouts } from "../../tables/tcp_timeouts";

const SLOTS = Array.from({ length: 14 }, (_, i) => i);

function mismatches(sysctl: Record<string, number>): string[] {
  const all = tcpTimeoutsFrom(sysctl);
  return SLOTS.filter((i) => tcpTimeout(sysctl, i) !== all[i]).map(
    (i) => `slot ${i}: got ${tcpTimeout(sysctl, i)}, want ${all[i]}`,
  );
}

describe("tcpTimeout", () => {
  it("equals tcpTimeoutsFrom with no sysctls (table defaults)", () => {
    expect(mismatches({})).toEqual([]);
    expect(tcpTimeout({}, 3)).toBe(432000);
    expect(tcpTimeout({}, 10), "sIV is not a timeout slot").toBe(0);
  });

  it("equals tcpTimeoutsFrom when every sysctl is overridden", () => {
    const sysctl: Record<string, number> = {};
    tcp_timeouts.forEach((s, i) => {
      if (s.sysctl) sysctl[s.sysctl] = 1000 + i;
    });
    expect(mismatches(sysctl)).toEqual([]);
    expect(tcpTimeout(sysctl, 0), "NONE follows SYN_SENT").toBe(tcpTimeout(sysctl, 1));
    expect(tcpTimeout(sysctl, 9), "SYN_SENT2 has no sysctl").toBe(120);
  });

  it("sees a sysctl changed between two calls", () => {
    const sysctl: Record<string, number> = { nf_conntrack_tcp_timeout_time_wait: 120 };
    expect(tcpTimeout(sysctl, 7)).toBe(120);
    sysctl.nf_conntrack_tcp_timeout_time_wait = 5;
    expect(tcpTimeout(sysctl, 7)).toBe(5);
  });
});
