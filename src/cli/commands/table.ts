/**
 * `ctsim table tcp`: print the TCP conntrack transition table (tables/tcp_conntracks.ts) for a kernel profile,
 * one cell with its kernel comment and what it means for NAT, or the cells that differ between two profiles.
 * Colour (chalk) only when stdout is a TTY and NO_COLOR is unset.
 */
import type { Command } from "commander";
import { Chalk } from "chalk";
import Table from "cli-table3";
import type { CliIo } from "../main";
import { InputError } from "../../errors";
import { DEFAULT_KERNEL, KERNEL_PROFILES, findKernelProfile } from "../../conntrack/profile";
import {
  TCP_CONNTRACKS_PROVENANCE,
  TCP_INDEX_NAMES,
  TCP_STATE_ABBREV,
  get_conntrack_index,
  tcpConntracksFor,
  tcpConntracksSource,
  tcp_conntrack_names,
} from "../../../tables/tcp_conntracks";
import type { TcpCellValue } from "../../../tables/tcp_conntracks";
import { tcpFlagsValid } from "../../../tables/tcp_valid_flags";

const FLAG_BITS: Record<string, number> = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
};
/** tcpdump's letters, plus A for ACK. */
const FLAG_LETTERS: Record<string, number> = {
  F: 0x01,
  S: 0x02,
  R: 0x04,
  P: 0x08,
  ".": 0x10,
  A: 0x10,
  U: 0x20,
  E: 0x40,
  W: 0x80,
};

function bad(code: string, option: string, message: string): never {
  throw new InputError({ code, file: option, message });
}

export function parseTcpFlags(text: string): number {
  let flags = 0;
  const tokens = text
    .trim()
    .split(/[|,+\s]+/)
    .filter((t) => t.length > 0);
  if (tokens.length === 0) bad("TABLE_BAD_FLAGS", "--flags", "expected TCP flags such as SYN, FIN|ACK or SA");
  for (const tok of tokens) {
    const name = tok.toUpperCase();
    if (name in FLAG_BITS) flags |= FLAG_BITS[name];
    else if ([...name].every((c) => c in FLAG_LETTERS)) for (const c of name) flags |= FLAG_LETTERS[c];
    else if (name === "NONE") continue;
    else
      bad(
        "TABLE_BAD_FLAGS",
        "--flags",
        `unknown TCP flag "${tok}" (use SYN, ACK, FIN, RST, PSH, URG, ECE, CWR)`,
      );
  }
  return flags;
}

export function formatTcpFlags(flags: number): string {
  const names = Object.entries(FLAG_BITS)
    .filter(([, bit]) => flags & bit)
    .map(([n]) => n);
  return names.length ? names.join("|") : "none";
}

function parseDir(text: string): 0 | 1 {
  const t = text.trim().toUpperCase();
  if (t === "ORIGINAL" || t === "ORIG" || t === "0") return 0;
  if (t === "REPLY" || t === "1") return 1;
  return bad("TABLE_BAD_DIR", "--dir", `unknown direction "${text}" (use ORIGINAL or REPLY)`);
}

function parseState(text: string): number {
  const t = text.trim();
  const byName = tcp_conntrack_names.indexOf(t.toUpperCase());
  if (byName >= 0) return byName;
  const byAbbrev = TCP_STATE_ABBREV.findIndex((a) => a.toLowerCase() === t.toLowerCase());
  if (byAbbrev >= 0) return byAbbrev;
  return bad(
    "TABLE_BAD_STATE",
    "--state",
    `unknown state "${text}" (use ${tcp_conntrack_names.join(", ")} or ${TCP_STATE_ABBREV.join(", ")})`,
  );
}

function checkKernel(v: string, option: string): string {
  if (!findKernelProfile(v))
    bad(
      "TABLE_BAD_KERNEL",
      option,
      `unknown kernel profile "${v}" (use ${KERNEL_PROFILES.map((p) => p.id).join(", ")})`,
    );
  return v;
}

const DIR_NAMES = ["ORIGINAL", "REPLY"];

/** What a cell means for the packet and for NAT. */
export function cellMeaning(dir: 0 | 1, index: number, oldState: number, to: TcpCellValue): string {
  if (to === "sIV") {
    const first =
      oldState === 0 && dir === 0
        ? ' For a first packet this is tcp_new\'s "invalid new": the entry is never created.'
        : "";
    return (
      "sIV: INVALID — no conntrack is attached, so the nat table is not consulted and no NAT binding is made; " +
      "rules see ctstate INVALID." +
      first
    );
  }
  if (to === "sIG") {
    return (
      "sIG: IGNORE — the packet is accepted with the entry still attached (ctstate unchanged, e.g. ESTABLISHED) " +
      "and the existing NAT binding is applied, but neither state nor timeout changes; conntrack notes the packet " +
      "so that a matching SYN/ACK can resync it."
    );
  }
  const target = tcp_conntrack_names[TCP_STATE_ABBREV.indexOf(to)];
  if (to === "sSS" && oldState >= 7) {
    return (
      `${to}: re-open — if either side sent a FIN, or the last in-window packet was a RST in this direction, the ` +
      "entry is killed and the packet looked up again as NEW, so the nat table makes a fresh binding; otherwise " +
      "the packet is ignored as for sIG."
    );
  }
  const nat =
    oldState === 0
      ? "a new entry: the nat table chains are traversed once and the binding they choose is kept for the connection."
      : "the entry's existing NAT binding is applied; the nat table is not consulted again.";
  const rst = index === 4 ? " RST sequence checks may still make it INVALID or keep the old state." : "";
  return `${to}: moves to ${target} if the packet passes the window check; ${nat}${rst}`;
}

function provenanceLine(kernel: string): string {
  const src = TCP_CONNTRACKS_PROVENANCE[tcpConntracksSource(kernel)];
  return `kernel profile ${kernel}: table from Linux ${src.kernel}, ${src.path} (${src.mirror}@${src.commit.slice(0, 12)})`;
}

export function renderTcpGrid(kernel: string, color: boolean): string {
  const chalk = new Chalk({ level: color ? 1 : 0 });
  const paint = (v: string) => (v === "sIV" ? chalk.red(v) : v === "sIG" ? chalk.yellow(v) : v);
  const t = tcpConntracksFor(kernel);
  const grid = new Table({
    head: ["dir", "index", ...TCP_STATE_ABBREV],
    style: { head: [], border: [] },
  });
  for (let dir = 0; dir < 2; dir++)
    for (let idx = 0; idx < 6; idx++)
      grid.push([
        idx === 0 ? DIR_NAMES[dir] : "",
        TCP_INDEX_NAMES[idx],
        ...t[dir][idx].map((c) => paint(c.to)),
      ]);
  return `${provenanceLine(kernel)}\ntcp_conntracks[dir][index][old state] -> new state (sIV invalid, sIG ignored)\n${grid.toString()}\n`;
}

export function renderTcpCell(kernel: string, dir: 0 | 1, flags: number, oldState: number): string {
  const index = get_conntrack_index(flags);
  const cell = tcpConntracksFor(kernel)[dir][index][oldState];
  const col = TCP_STATE_ABBREV[oldState];
  const lines = [
    provenanceLine(kernel),
    `flags ${formatTcpFlags(flags)} -> index ${TCP_INDEX_NAMES[index]} (get_conntrack_index: RST, then SYN/SYN+ACK, then FIN, then ACK)`,
    `tcp_conntracks[${DIR_NAMES[dir]}][${TCP_INDEX_NAMES[index]}][${col}] = ${cell.to}`,
    `kernel comment: ${cell.comment !== undefined ? `${col} -> ${cell.to}\t${cell.comment}` : "(none for this cell)"}`,
    `meaning: ${cellMeaning(dir, index, oldState, cell.to)}`,
  ];
  if (!tcpFlagsValid(flags)) {
    lines.push(
      `note: ${formatTcpFlags(flags)} never reaches the table: tcp_error() rejects the flag combination first ` +
        '("invalid tcp flag combination"), so the packet is INVALID in every state and gets no conntrack.' +
        (index === 2 ? " FIN|ACK is valid and uses this fin row." : ""),
    );
  }
  return lines.join("\n") + "\n";
}

export function renderTcpDiff(kernel: string, other: string): string {
  const a = tcpConntracksFor(kernel);
  const b = tcpConntracksFor(other);
  const out: string[] = [`cells that differ between kernel ${kernel} and ${other}:`];
  for (let dir = 0; dir < 2; dir++)
    for (let idx = 0; idx < 6; idx++)
      for (let col = 0; col < 10; col++) {
        const x = a[dir][idx][col];
        const y = b[dir][idx][col];
        if (x.to !== y.to)
          out.push(
            `  ${DIR_NAMES[dir]} ${TCP_INDEX_NAMES[idx]} ${TCP_STATE_ABBREV[col]}: ${kernel} ${x.to}, ${other} ${y.to}`,
          );
      }
  if (out.length === 1) out.push("  (none)");
  return out.join("\n") + "\n";
}

const EXAMPLES = `
Examples:
  ctsim table tcp                                  the whole table for the default kernel (${DEFAULT_KERNEL})
  ctsim table tcp --kernel 3.10                    the table as Linux 3.10 had it
  ctsim table tcp --dir ORIGINAL --flags FIN|ACK --state ESTABLISHED
                                                   one cell, its kernel comment and what it means for NAT
  ctsim table tcp --dir REPLY --flags SYN --state TIME_WAIT --kernel 3.10
  ctsim table tcp --diff 3.10                      cells that differ between ${DEFAULT_KERNEL} and 3.10
`;

interface TcpTableOptions {
  kernel: string;
  dir?: string;
  flags?: string;
  state?: string;
  diff?: string;
}

export function register(program: Command, io: CliIo): void {
  const table = program.command("table").description("Print the kernel's tables as ctsim carries them");
  table
    .command("tcp")
    .description(
      "The TCP conntrack state table tcp_conntracks[dir][index][old state] (nf_conntrack_proto_tcp.c)",
    )
    .option("--kernel <version>", "kernel profile", DEFAULT_KERNEL)
    .option("--dir <dir>", "direction of the packet: ORIGINAL or REPLY (with --flags and --state)")
    .option("--flags <flags>", "TCP flags of the packet: SYN, SYN|ACK, FIN|ACK, RST, ACK ... or SA, FA")
    .option("--state <state>", "the entry's current state: NONE, SYN_SENT, ... or sNO, sSS, ...")
    .option("--diff <version>", "list the cells that differ from another kernel profile")
    .addHelpText("after", EXAMPLES)
    .action((opts: TcpTableOptions) => {
      const kernel = checkKernel(opts.kernel, "--kernel");
      if (opts.diff !== undefined) {
        io.stdout(renderTcpDiff(kernel, checkKernel(opts.diff, "--diff")));
        return;
      }
      const one = [opts.dir, opts.flags, opts.state];
      if (one.some((x) => x !== undefined)) {
        if (one.some((x) => x === undefined))
          bad(
            "TABLE_CELL_NEEDS_ALL",
            "--dir/--flags/--state",
            "a single cell needs --dir, --flags and --state",
          );
        io.stdout(
          renderTcpCell(kernel, parseDir(opts.dir!), parseTcpFlags(opts.flags!), parseState(opts.state!)),
        );
        return;
      }
      const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
      io.stdout(renderTcpGrid(kernel, color));
    });
}
