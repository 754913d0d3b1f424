/**
 * The TCP conntrack state-transition table `tcp_conntracks[2][6][TCP_CONNTRACK_MAX]`, as typed data with the
 * kernel's own per-cell comments, plus the state names and `get_conntrack_index()`.
 *
 * Mirrors: net/netfilter/nf_conntrack_proto_tcp.c (tcp_conntrack_names, enum tcp_bit_set, tcp_conntracks,
 * get_conntrack_index) and include/uapi/linux/netfilter/nf_conntrack_tcp.h (enum tcp_conntrack).
 *
 * Provenance (read with the project's source search, see TCP_CONNTRACKS_PROVENANCE):
 *   - 6.17.0-rc3 mainline: Kingxukai/linux @ 9b44fff655e2c6f4cc53cb499dd2c038e99cb013. That mirror's text has a
 *     "the" -> "the woke" word-mangling artefact in comments; the comments below carry the original wording.
 *     KERNEL_FACTS §1.2 records the same cell values in 6.1.y, 5.10.13 and 4.19, so those profiles share it.
 *   - 3.10 (Qualcomm CAF): arter97/caf_msm-3.10 @ fda5cd4b376e426531aba44fd559d73ba7f23896: REPLY/syn/sTW = sIV.
 *   - <=3.6 mainline snapshot: torvalds/linux @ 011e3c63251be832d23df9f0697626ab7b354d02: as 3.10, and the
 *     ORIGINAL synack row ignores (sIG) a client SYN/ACK from SYN_RECV through CLOSE.
 * Leaves out: nothing of the table; the behaviour around it (sIG/sIV handling, re-open, RST checks) lives in
 * src/conntrack/proto_tcp.ts.
 */

/** enum tcp_conntrack (uapi nf_conntrack_tcp.h). TCP_CONNTRACK_LISTEN (9) is used as SYN_SENT2. */
export const TCP_CONNTRACK_NONE = 0;
export const TCP_CONNTRACK_SYN_SENT = 1;
export const TCP_CONNTRACK_SYN_RECV = 2;
export const TCP_CONNTRACK_ESTABLISHED = 3;
export const TCP_CONNTRACK_FIN_WAIT = 4;
export const TCP_CONNTRACK_CLOSE_WAIT = 5;
export const TCP_CONNTRACK_LAST_ACK = 6;
export const TCP_CONNTRACK_TIME_WAIT = 7;
export const TCP_CONNTRACK_CLOSE = 8;
export const TCP_CONNTRACK_SYN_SENT2 = 9;
/** sIV in the table. */
export const TCP_CONNTRACK_MAX = 10;
/** sIG in the table. */
export const TCP_CONNTRACK_IGNORE = 11;
/** Timeout-only slots. */
export const TCP_CONNTRACK_RETRANS = 12;
export const TCP_CONNTRACK_UNACK = 13;
export const TCP_CONNTRACK_TIMEOUT_MAX = 14;

/** A real state (0..9). */
export type TcpConntrackState = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

/** tcp_conntrack_names[], as `conntrack -L` and /proc/net/nf_conntrack print them. */
export const tcp_conntrack_names: readonly string[] = [
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
];

/** The table's own abbreviations (the #defines above tcp_conntracks), in column order, then sIV and sIG. */
export type TcpCellValue =
  "sNO" | "sSS" | "sSR" | "sES" | "sFW" | "sCW" | "sLA" | "sTW" | "sCL" | "sS2" | "sIV" | "sIG";
export const TCP_STATE_ABBREV: readonly TcpCellValue[] = [
  "sNO",
  "sSS",
  "sSR",
  "sES",
  "sFW",
  "sCW",
  "sLA",
  "sTW",
  "sCL",
  "sS2",
];

/** Numeric value of a cell (TCP_CONNTRACK_* ; sIV = MAX, sIG = IGNORE). */
export function cellToState(v: TcpCellValue): number {
  if (v === "sIV") return TCP_CONNTRACK_MAX;
  if (v === "sIG") return TCP_CONNTRACK_IGNORE;
  return TCP_STATE_ABBREV.indexOf(v);
}

/** enum tcp_bit_set: the table's second index. */
export const TCP_SYN_SET = 0;
export const TCP_SYNACK_SET = 1;
export const TCP_FIN_SET = 2;
export const TCP_ACK_SET = 3;
export const TCP_RST_SET = 4;
export const TCP_NONE_SET = 5;
export type TcpBitSet = 0 | 1 | 2 | 3 | 4 | 5;
/** Row labels as the kernel comments them (`/*syn*\/`, `/*synack*\/`, ...). */
export const TCP_INDEX_NAMES: readonly string[] = ["syn", "synack", "fin", "ack", "rst", "none"];

// TCP header flag bits (same values as src/wire/packet.ts; repeated so tables/ has no dependency on src/).
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

/** get_conntrack_index(): RST wins, then SYN (SYN/ACK vs SYN), then FIN, then ACK, else NONE. */
export function get_conntrack_index(flags: number): TcpBitSet {
  if (flags & RST) return TCP_RST_SET;
  if (flags & SYN) return flags & ACK ? TCP_SYNACK_SET : TCP_SYN_SET;
  if (flags & FIN) return TCP_FIN_SET;
  if (flags & ACK) return TCP_ACK_SET;
  return TCP_NONE_SET;
}

/** One cell: the new state and the kernel's comment for this `old -> new` line (absent when it has none). */
export interface TcpCell {
  readonly to: TcpCellValue;
  readonly comment?: string;
}
/** One row: ten cells in column order sNO..sS2. */
export type TcpRow = readonly TcpCell[];
/** [dir][index][old state]. */
export type TcpConntracksTable = readonly [readonly TcpRow[], readonly TcpRow[]];

export interface TableProvenance {
  readonly kernel: string;
  readonly path: string;
  readonly mirror: string;
  readonly commit: string;
}

export const TCP_CONNTRACKS_PROVENANCE: Readonly<Record<string, TableProvenance>> = {
  "6.17": {
    kernel: "6.17.0-rc3",
    path: "net/netfilter/nf_conntrack_proto_tcp.c",
    mirror: "Kingxukai/linux",
    commit: "9b44fff655e2c6f4cc53cb499dd2c038e99cb013",
  },
  "3.10": {
    kernel: "3.10 (Qualcomm CAF msm-3.10)",
    path: "net/netfilter/nf_conntrack_proto_tcp.c",
    mirror: "arter97/caf_msm-3.10",
    commit: "fda5cd4b376e426531aba44fd559d73ba7f23896",
  },
  "3.6": {
    kernel: "about 3.5-3.6 (old mainline snapshot)",
    path: "net/netfilter/nf_conntrack_proto_tcp.c",
    mirror: "torvalds/linux",
    commit: "011e3c63251be832d23df9f0697626ab7b354d02",
  },
};

type Comments = Partial<Record<TcpCellValue, string>>;

function row(values: readonly TcpCellValue[], comments: Comments = {}): TcpRow {
  if (values.length !== 10) throw new Error(`tcp_conntracks row needs 10 cells, got ${values.length}`);
  return values.map((to, col) => {
    const comment = comments[TCP_STATE_ABBREV[col]];
    return comment === undefined ? { to } : { to, comment };
  });
}

const IV10: readonly TcpCellValue[] = ["sIV", "sIV", "sIV", "sIV", "sIV", "sIV", "sIV", "sIV", "sIV", "sIV"];

/* ORIGINAL direction, 6.17. */
const O_SYN = row(["sSS", "sSS", "sIG", "sIG", "sIG", "sIG", "sIG", "sSS", "sSS", "sS2"], {
  sNO: "Initialize a new connection",
  sSS: "Retransmitted SYN",
  sS2: "Late retransmitted SYN",
  sES: "Error: SYNs in window outside the SYN_SENT state are errors. Receiver will reply with RST and close the connection. Or we are not in sync and hold a dead connection.",
  sTW: "Reopened connection (RFC 1122).",
});
const O_SYNACK = row(["sIV", "sIV", "sSR", "sIV", "sIV", "sIV", "sIV", "sIV", "sIV", "sSR"], {
  sNO: "Too late and no reason to do anything",
  sSS: "Client can't send SYN and then SYN/ACK",
  sS2: "SYN/ACK sent to SYN2 in simultaneous open",
  sSR: "Late retransmitted SYN/ACK in simultaneous open",
  sES: "Invalid SYN/ACK packets sent by the client",
});
const O_FIN = row(["sIV", "sIV", "sFW", "sFW", "sLA", "sLA", "sLA", "sTW", "sCL", "sIV"], {
  sNO: "Too late and no reason to do anything...",
  sSS: "Client migth not send FIN in this state: we enforce waiting for a SYN/ACK reply first.",
  sSR: "Close started.",
  sFW: "FIN seen in both directions, waiting for the last ACK. Migth be a retransmitted FIN as well...",
  sLA: "Retransmitted FIN. Remain in the same state.",
});
const O_ACK = row(["sES", "sIV", "sES", "sES", "sCW", "sCW", "sTW", "sTW", "sCL", "sIV"], {
  sNO: "Assumed.",
  sSS: "ACK is invalid: we haven't seen a SYN/ACK yet.",
  sSR: "Established state is reached.",
  sES: ":-)",
  sFW: "Normal close request answered by ACK.",
  sLA: "Last ACK detected (RFC5961 challenged)",
  sTW: "Retransmitted last ACK. Remain in the same state.",
});
const O_RST = row(["sIV", "sCL", "sCL", "sCL", "sCL", "sCL", "sCL", "sCL", "sCL", "sCL"]);
const NONE_ROW = row(IV10);

/* REPLY direction, 6.17. */
const R_SYN = row(["sIV", "sS2", "sIV", "sIV", "sIV", "sIV", "sIV", "sSS", "sIV", "sS2"], {
  sNO: "Never reached.",
  sSS: "Simultaneous open",
  sS2: "Retransmitted simultaneous SYN",
  sSR: "Invalid SYN packets sent by the server",
  sTW: "Reopened connection, but server may have switched role",
});
const R_SYNACK = row(["sIV", "sSR", "sIG", "sIG", "sIG", "sIG", "sIG", "sIG", "sIG", "sSR"], {
  sSS: "Standard open.",
  sS2: "Simultaneous open",
  sSR: "Retransmitted SYN/ACK, ignore it.",
  sES: "Late retransmitted SYN/ACK?",
  sFW: "Might be SYN/ACK answering ignored SYN",
});
const R_FIN = row(["sIV", "sIV", "sFW", "sFW", "sLA", "sLA", "sLA", "sTW", "sCL", "sIV"], {
  sSS: "Server might not send FIN in this state.",
  sSR: "Close started.",
  sFW: "FIN seen in both directions.",
  sLA: "Retransmitted FIN.",
});
const R_ACK = row(["sIV", "sIG", "sSR", "sES", "sCW", "sCW", "sTW", "sTW", "sCL", "sIG"], {
  sSS: "Might be a half-open connection.",
  sSR: "Might answer late resent SYN.",
  sES: ":-)",
  sFW: "Normal close request answered by ACK.",
  sLA: "Last ACK detected (RFC5961 challenged)",
  sTW: "Retransmitted last ACK.",
});
const R_RST = O_RST;

/** The 6.17 table (also 6.1.y, 5.10 and 4.19). */
export const TCP_CONNTRACKS_6_17: TcpConntracksTable = [
  [O_SYN, O_SYNACK, O_FIN, O_ACK, O_RST, NONE_ROW],
  [R_SYN, R_SYNACK, R_FIN, R_ACK, R_RST, NONE_ROW],
];

function withCells(
  base: TcpConntracksTable,
  changes: ReadonlyArray<{ dir: 0 | 1; index: TcpBitSet; col: TcpCellValue; cell: TcpCell }>,
): TcpConntracksTable {
  const t = base.map((rows) => rows.map((r) => [...r])) as TcpCell[][][];
  for (const c of changes) t[c.dir][c.index][TCP_STATE_ABBREV.indexOf(c.col)] = c.cell;
  return [t[0], t[1]];
}

/** 3.10: the REPLY SYN in TIME_WAIT is invalid; LAST_ACK ACK comments predate RFC 5961 handling. */
export const TCP_CONNTRACKS_3_10: TcpConntracksTable = withCells(TCP_CONNTRACKS_6_17, [
  {
    dir: 1,
    index: TCP_SYN_SET,
    col: "sTW",
    cell: { to: "sIV", comment: "Reopened connection, but server may not do it." },
  },
  { dir: 0, index: TCP_ACK_SET, col: "sLA", cell: { to: "sTW", comment: "Last ACK detected." } },
  { dir: 1, index: TCP_ACK_SET, col: "sLA", cell: { to: "sTW", comment: "Last ACK detected." } },
]);

const SYN_ERR =
  "Error: SYNs in window outside the SYN_SENT state are errors. Receiver will reply with RST and close the connection. Or we are not in sync and hold a dead connection.";

/** <=3.6: as 3.10, and the ORIGINAL SYN/ACK row ignores rather than rejects. */
export const TCP_CONNTRACKS_3_6: TcpConntracksTable = (() => {
  const base = TCP_CONNTRACKS_3_10;
  const synack = row(["sIV", "sIV", "sIG", "sIG", "sIG", "sIG", "sIG", "sIG", "sIG", "sSR"], {
    sNO: "Too late and no reason to do anything",
    sSS: "Client can't send SYN and then SYN/ACK",
    sS2: "SYN/ACK sent to SYN2 in simultaneous open",
    sES: SYN_ERR,
  });
  return [[base[0][0], synack, base[0][2], base[0][3], base[0][4], base[0][5]], base[1]];
})();

function tableForVersion(kernel: string): TcpConntracksTable {
  const [maj, min] = kernel.split(".").map(Number);
  if (maj < 3 || (maj === 3 && min <= 6)) return TCP_CONNTRACKS_3_6;
  if (maj === 3 || (maj === 4 && min < 19)) return TCP_CONNTRACKS_3_10;
  return TCP_CONNTRACKS_6_17;
}

/** Tables already chosen, by profile id (the version string is parsed once per id). */
const TABLE_BY_KERNEL = new Map<string, TcpConntracksTable>();

/** The table a kernel profile uses ("6.18", "6.1", "5.10", "4.19" -> 6.17 cells; "3.10"; "3.6"). */
export function tcpConntracksFor(kernel: string): TcpConntracksTable {
  let t = TABLE_BY_KERNEL.get(kernel);
  if (t === undefined) TABLE_BY_KERNEL.set(kernel, (t = tableForVersion(kernel)));
  return t;
}

/**
 * The same table with each cell as its number (cellToState), flat: `[dir * 60 + index * 10 + oldState]`. The
 * state machine reads this on every packet; the cells with comments stay the source.
 */
export type TcpStateTable = Readonly<Uint8Array>;

const STATES_BY_TABLE = new Map<TcpConntracksTable, TcpStateTable>();

/** Cell index of [dir][index][oldState] in a TcpStateTable. */
export function tcpStateCell(dir: number, index: number, oldState: number): number {
  return dir * 60 + index * 10 + oldState;
}

/** The numeric form of a table (built once per table). */
export function tcpStatesOf(table: TcpConntracksTable): TcpStateTable {
  let s = STATES_BY_TABLE.get(table);
  if (s === undefined) {
    const out = new Uint8Array(120);
    for (let dir = 0; dir < 2; dir++)
      for (let index = 0; index < 6; index++)
        for (let old = 0; old < 10; old++)
          out[tcpStateCell(dir, index, old)] = cellToState(table[dir][index][old].to);
    STATES_BY_TABLE.set(table, (s = out));
  }
  return s;
}

/** Which transcription a profile's table comes from (a key of TCP_CONNTRACKS_PROVENANCE). */
export function tcpConntracksSource(kernel: string): string {
  const t = tcpConntracksFor(kernel);
  return t === TCP_CONNTRACKS_3_6 ? "3.6" : t === TCP_CONNTRACKS_3_10 ? "3.10" : "6.17";
}
