// Tests for tables/tcp_conntracks.ts: every cell of every profile against a literal copy of the kernel's table
// text (the rows of `tcp_conntracks[2][6][TCP_CONNTRACK_MAX]`, comments between rows dropped).
import { describe, expect, it } from "vitest";
import {
  TCP_ACK_SET,
  TCP_CONNTRACKS_PROVENANCE,
  TCP_FIN_SET,
  TCP_INDEX_NAMES,
  TCP_NONE_SET,
  TCP_RST_SET,
  TCP_STATE_ABBREV,
  TCP_SYNACK_SET,
  TCP_SYN_SET,
  get_conntrack_index,
  tcpConntracksFor,
  tcpConntracksSource,
  tcp_conntrack_names,
} from "../../tables/tcp_conntracks";
import { KERNEL_PROFILES } from "../../src/conntrack/profile";

// net/netfilter/nf_conntrack_proto_tcp.c, 6.17.0-rc3, Kingxukai/linux @ 9b44fff655e2c6f4cc53cb499dd2c038e99cb013.
const KERNEL_6_17 = `
/* ORIGINAL */
/* 	     sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2	*/
/*syn*/	   { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
/*synack*/ { sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/	   { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
/* REPLY */
/*syn*/	   { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2 },
/*synack*/ { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/	   { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
`;

// CAF 3.10, arter97/caf_msm-3.10 @ fda5cd4b376e426531aba44fd559d73ba7f23896.
const KERNEL_3_10 = `
/*syn*/	   { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
/*synack*/ { sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/	   { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
/*syn*/	   { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2 },
/*synack*/ { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/	   { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
`;

// Old mainline snapshot (about 3.5-3.6), torvalds/linux @ 011e3c63251be832d23df9f0697626ab7b354d02.
const KERNEL_3_6 = `
/*syn*/	   { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
/*synack*/ { sIV, sIV, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/	   { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
/*syn*/	   { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2 },
/*synack*/ { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/	   { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
`;

/** Parses the row lines into [dir][index][col] strings, checking the row labels as it goes. */
function parseKernelTable(text: string): string[][][] {
  const rows = [...text.matchAll(/\/\*(\w+)\*\/\s*\{([^}]*)\}/g)].map((m) => ({
    label: m[1],
    cells: m[2].split(",").map((c) => c.trim()),
  }));
  if (rows.length !== 12) throw new Error(`transcription: got ${rows.length} rows, want 12`);
  rows.forEach((r, i) => {
    if (r.label !== TCP_INDEX_NAMES[i % 6]) throw new Error(`row ${i}: got label ${r.label}`);
    if (r.cells.length !== 10) throw new Error(`row ${i}: got ${r.cells.length} cells, want 10`);
  });
  return [rows.slice(0, 6).map((r) => r.cells), rows.slice(6).map((r) => r.cells)];
}

const WANT: Record<string, string> = {
  "6.18": KERNEL_6_17,
  "6.1": KERNEL_6_17,
  "5.10": KERNEL_6_17,
  "4.19": KERNEL_6_17,
  "3.10": KERNEL_3_10,
  "3.6": KERNEL_3_6,
};

describe("tcp_conntracks: all 120 cells per profile", () => {
  for (const profile of KERNEL_PROFILES) {
    it(`profile ${profile.id} matches the kernel text`, () => {
      const want = parseKernelTable(WANT[profile.id]);
      const got = tcpConntracksFor(profile.id);
      const mismatches: string[] = [];
      let checked = 0;
      for (let dir = 0; dir < 2; dir++)
        for (let idx = 0; idx < 6; idx++)
          for (let col = 0; col < 10; col++) {
            checked++;
            const g = got[dir][idx][col].to;
            const w = want[dir][idx][col];
            if (g !== w)
              mismatches.push(
                `${dir ? "REPLY" : "ORIGINAL"}/${TCP_INDEX_NAMES[idx]}/${TCP_STATE_ABBREV[col]}: got ${g}, want ${w}`,
              );
          }
      expect(checked).toBe(120);
      expect(mismatches).toEqual([]);
    });
  }

  it("carries the kernel's per-cell comments", () => {
    const t = tcpConntracksFor("6.18");
    expect(t[1][TCP_SYN_SET][7].comment).toBe("Reopened connection, but server may have switched role");
    expect(t[0][TCP_ACK_SET][6].comment).toBe("Last ACK detected (RFC5961 challenged)");
    expect(t[0][TCP_SYN_SET][3].comment).toMatch(/^Error: SYNs in window outside the SYN_SENT state/);
    expect(tcpConntracksFor("3.10")[1][TCP_SYN_SET][7].comment).toBe(
      "Reopened connection, but server may not do it.",
    );
    // No "the woke" artefact from the mirror survived into the comments.
    for (const dirRows of t)
      for (const r of dirRows) for (const c of r) expect(c.comment ?? "").not.toMatch(/woke/);
  });

  it("names its source for every profile", () => {
    for (const p of KERNEL_PROFILES)
      expect(TCP_CONNTRACKS_PROVENANCE[tcpConntracksSource(p.id)]).toBeDefined();
    expect(tcpConntracksSource("5.10")).toBe("6.17");
    expect(tcpConntracksSource("3.6")).toBe("3.6");
  });
});

describe("get_conntrack_index", () => {
  const cases: Array<[string, number, number]> = [
    ["SYN", 0x02, TCP_SYN_SET],
    ["SYN|ACK", 0x12, TCP_SYNACK_SET],
    ["FIN|ACK is the fin row", 0x11, TCP_FIN_SET],
    ["ACK", 0x10, TCP_ACK_SET],
    ["RST|ACK is the rst row", 0x14, TCP_RST_SET],
    ["SYN|RST: RST wins", 0x06, TCP_RST_SET],
    ["no flags", 0x00, TCP_NONE_SET],
    ["PSH|ACK", 0x18, TCP_ACK_SET],
  ];
  for (const [name, flags, want] of cases)
    it(name, () => {
      expect(get_conntrack_index(flags), `got ${get_conntrack_index(flags)}, want ${want}`).toBe(want);
    });
  it("state names in kernel order", () => {
    expect(tcp_conntrack_names).toEqual([
      "NONE",
      "SYN_SENT",
      "SYN_RECV",
      "ESTABLISHED",
      "FIN_WAIT",
      "CLOSE_WAIT",
      "LAST_ACK",
      "TIME_WAIT",
      "CLOSE",
      "SYN_SENT2",
    ]);
  });
});
