/**
 * `ctsim conntrack PACKETS`: replay packets through the conntrack of one host without rules
 * (src/sim/ctreplay.ts) and show, per packet, what conntrack made of it and where the packet went.
 *
 * Output mirrors the tools: the packet as a tcpdump line (src/wire/tcpdump_format.ts), events as `conntrack -E`
 * prints them and the final table as `conntrack -L` (conntrack-tools 1.4.7, src/conntrack/show.ts). The input is
 * streamed (src/cli/input.ts). Bad input (packets, host file, --sysctl, --kernel) exits 2 with file:line:col.
 */
import type { Command } from "commander";
import { Chalk } from "chalk";
import type { ChalkInstance } from "chalk";
import type { CliIo } from "../main";
import { readPacketInput } from "../input";
import { InputError } from "../../errors";
import { parseHostFile } from "../../host/hostfile";
import type { Host } from "../../host/types";
import { CtReplay } from "../../sim/ctreplay";
import type { CtReplayStep } from "../../sim/ctreplay";
import { formatConntrackEvent } from "../../conntrack/show";
import { DEFAULT_KERNEL, KERNEL_PROFILES } from "../../conntrack/profile";
import { conntrackProtoName } from "../../conntrack/show";
import { formatTcpdump } from "../../wire/tcpdump_format";
import { TEXT_DEFAULTS_HELP } from "../../wire/text";
import { collect, parseSysctlArgs, readText } from "../args";

interface ConntrackCliOptions {
  host?: string;
  in?: string;
  kernel: string;
  sysctl?: string[];
  list?: boolean;
  events?: boolean;
  output?: string;
  format: string;
  lenient?: boolean;
}

const EXAMPLES = `
Examples:
  ctsim conntrack examples/seed001/packets.txt --in eth0
      one block per packet: the tcpdump line, what conntrack decided, and the packet's fate
  ctsim conntrack capture.pcapng --host host.yaml -E -L
      also the conntrack -E events after each packet and the conntrack -L table at the end
  ctsim conntrack trace.txt --sysctl nf_conntrack_tcp_loose=0 --kernel 5.10 --format json
      as a 5.10 kernel without mid-stream pickup, one JSON object per packet (JSON Lines)

Per packet:
  15:33:24.179455 eth0  In  IP 192.168.100.105.1836 > 2.2.2.2.80: Flags [S], seq 1848868094, win 512, length 0
    ct: NEW (IP_CT_NEW) ORIGINAL  tcp NONE -> SYN_SENT via tcp_conntracks[ORIGINAL][syn][NONE]
    => forwarded (out eth0 via 192.168.100.253)
  An INVALID packet shows the kernel's reason and the function that gave it:
    ct: INVALID  tcp_error: invalid tcp flag combination

Host: without --host the host is a router with no addresses that forwards everything. With --host, a packet
to one of its addresses is delivered locally (PRE_ROUTING -> LOCAL_IN), another is forwarded when
net.ipv4.ip_forward=1 (PRE_ROUTING -> FORWARD -> POST_ROUTING) and dropped otherwise; "Out" packets from
the host's own addresses take LOCAL_OUT -> POST_ROUTING. The host file's sysctl: map applies, then --sysctl.

Kernel profiles: ${KERNEL_PROFILES.map((p) => p.id).join(", ")} (default ${DEFAULT_KERNEL}).

Text input:
${TEXT_DEFAULTS_HELP}
`;

export function register(program: Command, io: CliIo): void {
  program
    .command("conntrack")
    .description("replay packets through the conntrack of a host without rules, packet by packet")
    .argument("<packets>", "tcpdump text, pcap or pcapng (told by the first bytes)")
    .option("--host <host.yaml>", "host file (interfaces, addresses, routes, sysctls)")
    .option("--in <iface>", "interface for packets whose input names none")
    .option("--kernel <version>", "kernel profile to emulate", DEFAULT_KERNEL)
    .option("--sysctl <name=value>", "set a sysctl, e.g. nf_conntrack_tcp_loose=0 (repeatable)", collect)
    .option("-L, --list", "print the conntrack table at the end, as conntrack -L")
    .option("-E, --events", "print conntrack events after each packet, as conntrack -E")
    .option("-o, --output <format>", "extended: -o extended form for -L and -E lines")
    .option("--format <format>", "text or json (one JSON object per line)", "text")
    .option("--lenient", "skip text lines that are not packets instead of failing")
    .addHelpText("after", EXAMPLES)
    .action(async (file: string, opts: ConntrackCliOptions) => {
      await conntrackCommand(file, opts, io);
    });
}

function loadHost(file: string): Host {
  return parseHostFile(readText(file), file);
}

/** The `  ct: ...` line of a step. */
export function formatCtLine(step: CtReplayStep, c: ChalkInstance): string {
  if (step.state === "NOT_SEEN") return `  ct: ${c.dim("(not seen)")}`;
  const stateColour =
    step.state === "INVALID"
      ? c.red
      : step.state === "NEW"
        ? c.green
        : step.state === "UNTRACKED"
          ? c.dim
          : (s: string) => s;
  let s = `  ct: ${stateColour(step.state)}`;
  if (step.ctinfo && step.state !== "INVALID") s += ` (${step.ctinfo})`;
  if (step.dir) s += ` ${step.dir}`;
  s += " ";
  if (step.tcp) {
    s += ` tcp ${step.tcp.oldState} -> ${step.tcp.newState}`;
    if (step.tcp.cell) s += ` via ${step.tcp.cell}`;
  } else if (step.state !== "INVALID" && step.state !== "UNTRACKED") {
    s += ` ${conntrackProtoName(step.packet.ip.protocol)}`;
  }
  const r = step.reason;
  if (r) {
    const text = `${r.fn}: ${r.text}`;
    if (step.state === "INVALID") s += ` ${c.red(text)}`;
    else s += `${step.tcp ? "; " : " "}${c.yellow(`ignored: ${text}`)}`;
    if (r.cell && !step.tcp)
      s += ` [tcp_conntracks[${r.cell.dir === 0 ? "ORIGINAL" : "REPLY"}][${r.cell.index}][${r.cell.oldState}] = ${r.cell.result}]`;
  }
  return s.trimEnd();
}

function fateLine(step: CtReplayStep, c: ChalkInstance): string {
  const f = step.fate.startsWith("dropped") ? c.red(step.fate) : step.fate;
  return `  => ${f}`;
}

function stepJson(step: CtReplayStep, extended: boolean): Record<string, unknown> {
  return {
    index: step.index,
    origin: step.origin,
    time: step.time,
    packet: formatTcpdump(step.packet, { iface: true, time: "abs" }),
    iface: step.packet.iface,
    hooks: step.hooks,
    state: step.state,
    ctinfo: step.ctinfo,
    dir: step.dir,
    reason: step.reason,
    tcp: step.tcp,
    path: step.path,
    fate: step.fate,
    entry: step.entry,
    events: step.events.map((e) => formatConntrackEvent(e, { extended })),
  };
}

async function conntrackCommand(file: string, opts: ConntrackCliOptions, io: CliIo): Promise<void> {
  const format = opts.format;
  if (format !== "text" && format !== "json")
    throw new InputError({
      code: "CLI_BAD_OPTION",
      file: "--format",
      message: `expected text or json, got "${format}"`,
    });
  if (opts.output !== undefined && opts.output !== "extended")
    throw new InputError({
      code: "CLI_BAD_OPTION",
      file: "-o",
      message: `only "extended" is supported, got "${opts.output}"`,
    });
  const extended = opts.output === "extended";
  const host = opts.host !== undefined ? loadHost(opts.host) : undefined;
  const replay = new CtReplay({
    kernel: opts.kernel,
    sysctl: parseSysctlArgs(opts.sysctl ?? []),
    ...(host ? { host } : {}),
  });
  const color = format === "text" && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const c = new Chalk({ level: color ? 1 : 0 });
  const fmt = { iface: true, time: "abs" as const };
  let last = -Infinity;
  let packets = 0;

  const summary = await readPacketInput(
    { file, lenient: opts.lenient === true, ...(opts.in ? { defaultIface: opts.in } : {}) },
    {
      packet(p) {
        const step = replay.step(p);
        packets++;
        if (step.time > last) last = step.time;
        if (format === "json") {
          io.stdout(JSON.stringify(stepJson(step, extended)) + "\n");
          return;
        }
        let out = formatTcpdump(p, fmt) + "\n";
        out += formatCtLine(step, c) + "\n";
        out += fateLine(step, c) + "\n";
        if (opts.events)
          for (const e of step.events) out += c.cyan(formatConntrackEvent(e, { extended })) + "\n";
        io.stdout(out);
      },
      skipped(note) {
        if (format === "text") io.stdout(note + "\n");
      },
    },
  );

  if (opts.list) {
    const now = last === -Infinity ? 0 : last;
    const lines = replay.list(now, { extended });
    if (format === "json") io.stdout(JSON.stringify({ table: lines, time: now }) + "\n");
    else {
      io.stdout(`\n# conntrack -L${extended ? " -o extended" : ""} after ${packets} packets\n`);
      for (const l of lines) io.stdout(l + "\n");
      io.stdout(`# conntrack v1.4.7 (conntrack-tools): ${lines.length} flow entries have been shown.\n`);
    }
  }
  if (opts.lenient)
    io.stderr(
      `ctsim: ${file}: skipped ${summary.skippedLines} line${summary.skippedLines === 1 ? "" : "s"}\n`,
    );
}
