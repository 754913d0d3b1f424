// tcpStatesOf(table): the numeric form of tcp_conntracks the state machine reads per packet must say what the
// annotated cells say, for every profile.
import { describe, expect, it } from "vitest";
import { KERNEL_PROFILES } from "../../src/conntrack/profile";
import {
  TCP_INDEX_NAMES,
  TCP_STATE_ABBREV,
  cellToState,
  tcpConntracksFor,
  tcpStateCell,
  tcpStatesOf,
} from "../../tables/tcp_conntracks";

describe("tcpStatesOf", () => {
  for (const profile of KERNEL_PROFILES) {
    it(`profile ${profile.id}: all 120 cells agree with the annotated table`, () => {
      const table = tcpConntracksFor(profile.id);
      const states = tcpStatesOf(table);
      const bad: string[] = [];
      for (let dir = 0; dir < 2; dir++)
        for (let index = 0; index < 6; index++)
          for (let old = 0; old < 10; old++) {
            const got = states[tcpStateCell(dir, index, old)];
            const want = cellToState(table[dir][index][old].to);
            if (got !== want)
              bad.push(`${dir}/${TCP_INDEX_NAMES[index]}/${TCP_STATE_ABBREV[old]}: got ${got}, want ${want}`);
          }
      expect(bad).toEqual([]);
    });
  }

  it("is built once per table, and profiles sharing cells share it", () => {
    expect(tcpStatesOf(tcpConntracksFor("6.18"))).toBe(tcpStatesOf(tcpConntracksFor("5.10")));
    expect(tcpStatesOf(tcpConntracksFor("3.10"))).not.toBe(tcpStatesOf(tcpConntracksFor("6.18")));
    expect(tcpConntracksFor("4.19")).toBe(tcpConntracksFor("4.19"));
  });
});
