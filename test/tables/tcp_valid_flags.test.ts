import { describe, expect, it } from "vitest";
import { tcpFlagsValid, tcp_valid_flags } from "../../tables/tcp_valid_flags";
import { tcpTimeoutsFrom, tcp_timeouts } from "../../tables/tcp_timeouts";

describe("tcp_valid_flags", () => {
  it("has exactly the nine kernel combinations among the 56 entries ((FIN|SYN|RST|ACK|URG) + 1)", () => {
    expect(tcp_valid_flags.length).toBe(56);
    const valid = tcp_valid_flags.map((v, i) => (v ? i : -1)).filter((i) => i >= 0);
    // SYN, SYN|URG, SYN|ACK, RST, RST|ACK, FIN|ACK, FIN|ACK|URG, ACK, ACK|URG
    expect(valid).toEqual([0x02, 0x04, 0x10, 0x11, 0x12, 0x14, 0x22, 0x30, 0x31]);
  });
  const cases: Array<[string, number, boolean]> = [
    ["bare FIN", 0x01, false],
    ["FIN|ACK", 0x11, true],
    ["SYN|FIN", 0x03, false],
    ["no flags", 0x00, false],
    ["FIN|RST", 0x05, false],
    ["PSH|ACK|ECE|CWR (PSH/ECE/CWR always valid)", 0xd8, true],
    ["PSH alone", 0x08, false],
  ];
  for (const [name, flags, want] of cases)
    it(name, () => expect(tcpFlagsValid(flags), `flags 0x${flags.toString(16)}: want ${want}`).toBe(want));
});

describe("tcp_timeouts", () => {
  it("defaults in seconds with slot 0 = SYN_SENT", () => {
    const t = tcpTimeoutsFrom({});
    expect([t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[12], t[13]]).toEqual([
      120, 120, 60, 432000, 120, 60, 30, 120, 10, 120, 300, 300,
    ]);
  });
  it("sysctls override their slot", () => {
    const t = tcpTimeoutsFrom({
      nf_conntrack_tcp_timeout_established: 7200,
      nf_conntrack_tcp_timeout_syn_sent: 5,
    });
    expect(t[3]).toBe(7200);
    expect(t[0]).toBe(5);
    expect(tcp_timeouts.find((s) => s.name === "UNACK")?.sysctl).toBe(
      "nf_conntrack_tcp_timeout_unacknowledged",
    );
  });
});
