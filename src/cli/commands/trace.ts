/**
 * `ctsim trace --host host.yaml --rules rules.v4 --packets capture.pcapng`: run packets through one emulated
 * host (src/sim/host.ts) and print what the kernel would: its TRACE lines (`TRACE: raw:PREROUTING:policy:2
 * IN=eth0 ...`, field for field as nf_log_syslog prints them), then one summary line per packet (conntrack
 * state and ctinfo, NAT, fate) and one per packet the host generated because of it.
 *
 * Formats: text (default), json (JSON Lines, schema in src/trace/json.ts), xtables-monitor and nft
 * (src/trace/monitor.ts). `--conntrack` prints `conntrack -L` at the end, `--events` the `conntrack -E` lines
 * after each packet, `-w` writes every packet that left the host to a pcapng file (one interface block per
 * interface). The packet input is streamed. Bad input exits 2 with file:line:col.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import type { Command } from "commander";
import { Chalk } from "chalk";
import type { ChalkInstance } from "chalk";
import type { CliIo } from "../main";
import { CliExit } from "../main";
import { readPacketInput } from "../input";
import { InputError, formatDiagnostic } from "../../errors";
import { parseHostFile } from "../../host/hostfile";
import { loadRuleset } from "../../netfilter/parse_script";
import { DEFAULT_KERNEL, KERNEL_PROFILES } from "../../conntrack/profile";
import { formatConntrackEvent } from "../../conntrack/show";
import { PcapngWriter } from "../../wire/pcapng_writer";
import { TEXT_DEFAULTS_HELP } from "../../wire/text";
import { HostSim } from "../../sim/host";
import type { Backend } from "../../sim/host";
import type { PacketReport } from "../../trace/events";
import { formatSummary } from "../../trace/summary";
import { reportJson } from "../../trace/json";
import { formatNftMonitor, formatXtablesMonitor } from "../../trace/monitor";
import { collect, parseSysctlArgs, readText } from "../args";

interface TraceCliOptions {
  host: string;
  rules: string;
  packets: string;
  in?: string;
  kernel: string;
  backend: string;
  traceAll?: boolean;
  format: string;
  conntrack?: boolean;
  events?: boolean;
  write?: string;
  seed?: string;
  sysctl?: string[];
  quiet?: boolean;
  allowUnknown?: boolean;
  lenient?: boolean;
}

const FORMATS = ["text", "json", "xtables-monitor", "nft"] as const;

const EXAMPLES = `
Examples:
  ctsim trace --host examples/seed001/host.yaml --rules examples/seed001/rules.v4 \\
              --packets examples/seed001/packets.txt
      the seed 001 NAT gateway: the SYN is traced through raw, nat, filter and nat POSTROUTING (MASQUERADE);
      the FIN has no conntrack, skips the nat table and leaves un-NATed
  ctsim trace --host h.yaml --rules rules.v4 --packets cap.pcapng --format json > decisions.jsonl
  ctsim trace ... --conntrack --events -w out.pcapng --seed 7

Output (text): the kernel's TRACE lines for traced packets, then per packet
  => #0 tcp 192.168.100.105:1836 > 2.2.2.2:80 [S]: ct NEW IP_CT_NEW ORIGINAL (tcp syn NONE -> SYN_SENT);
     nat SRC 192.168.100.105:1836 -> 192.168.100.104:1836 (nat:POSTROUTING:rule:1); left on eth0
  and "+#N (cause)" lines for packets the host sent because of it (ICMP errors, redirects, RSTs, echo replies).

TRACE: when the rules contain -j TRACE only the packets it marks are traced, as in the kernel; otherwise every
packet is; --trace-all traces every packet anyway. --backend legacy (default) traverses every built-in chain of
a table the rules define (why seed 001 shows filter:FORWARD:policy:1); --backend nft only the chains that
exist as iptables-nft would create them: declared (:CHAIN lines) or named by -A/-I/-P/-F.

Kernel profiles: ${KERNEL_PROFILES.map((p) => p.id).join(", ")} (default ${DEFAULT_KERNEL}).

Text input:
${TEXT_DEFAULTS_HELP}
`;

export function register(program: Command, io: CliIo): void {
  program
    .command("trace")
    .description("trace packets through an emulated host's netfilter datapath, as the kernel's TRACE would")
    .requiredOption(
      "--host <host.yaml>",
      "host file (interfaces, addresses, routes, ip rules, sysctls, sockets)",
    )
    .requiredOption("--rules <rules>", "iptables-save output or a shell script of iptables commands")
    .requiredOption("--packets <file>", "tcpdump text, pcap or pcapng (told by the first bytes)")
    .option("--in <iface>", "interface for packets whose input names none")
    .option("--kernel <version>", "kernel profile to emulate", DEFAULT_KERNEL)
    .option("--backend <backend>", "legacy or nft (which chains are traversed)", "legacy")
    .option("--trace-all", "trace every packet even when the rules have TRACE rules")
    .option("--format <format>", `output format: ${FORMATS.join(", ")}`, "text")
    .option("--conntrack", "print the conntrack table at the end, as conntrack -L")
    .option("--events", "print conntrack events after each packet, as conntrack -E")
    .option("-w, --write <out.pcapng>", "write every packet that leaves the host to a pcapng file")
    .option("--seed <n>", "seed of the random choices (NAT ports, IP ids, statistic)", "0")
    .option("--sysctl <name=value>", "set a sysctl, e.g. net.ipv4.ip_forward=1 (repeatable)", collect)
    .option("--quiet", "no per-packet output; print totals at the end")
    .option("--allow-unknown", "unknown matches/targets/options are warnings and such rules never match")
    .option("--lenient", "skip text lines that are not packets instead of failing")
    .addHelpText("after", EXAMPLES)
    .action(async (opts: TraceCliOptions) => {
      await traceCommand(opts, io);
    });
}

function bad(option: string, message: string): never {
  throw new InputError({ code: "CLI_BAD_OPTION", file: option, message });
}

/** Text output of one report. */
export function formatReportText(r: PacketReport, c: ChalkInstance, events: boolean): string {
  const plain = c.level === 0;
  let out = "";
  for (const h of r.trace) out += `${h.line.trimEnd()}\n`;
  for (const j of r.packets) for (const l of j.log) out += `${plain ? l.trimEnd() : c.dim(l.trimEnd())}\n`;
  for (const j of r.packets) {
    const s = formatSummary(j);
    const f = j.fate?.kind;
    if (plain) out += `${s}\n`;
    else
      out += `${f === "dropped" ? c.red(s) : f === "left" || f === "delivered" ? c.green(s) : c.yellow(s)}\n`;
  }
  if (events)
    for (const e of r.events) out += `${plain ? formatConntrackEvent(e) : c.cyan(formatConntrackEvent(e))}\n`;
  return out;
}

/**
 * `-w` bytes batched into large writes: one write system call per packet took five times as long as the rest of
 * a 1,000,000-packet run.
 */
class ByteOutput {
  private readonly buf = new Uint8Array(1 << 20);
  private used = 0;
  constructor(private readonly fd: number) {}
  push(b: Uint8Array): void {
    if (this.used + b.length > this.buf.length) this.flush();
    if (b.length > this.buf.length) writeAll(this.fd, b);
    else {
      this.buf.set(b, this.used);
      this.used += b.length;
    }
  }
  flush(): void {
    if (this.used > 0) {
      writeAll(this.fd, this.buf.subarray(0, this.used));
      this.used = 0;
    }
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let o = 0; o < b.length;) o += writeSync(fd, b, o, b.length - o);
}

/** Output text batched into large writes: one write per packet costs more than formatting the packet. */
class OutputBuffer {
  private buf = "";
  constructor(
    private readonly write: (text: string) => void,
    private readonly limit = 1 << 16,
  ) {}
  push(text: string): void {
    this.buf += text;
    if (this.buf.length >= this.limit) this.flush();
  }
  flush(): void {
    if (this.buf) {
      const t = this.buf;
      this.buf = "";
      this.write(t);
    }
  }
}

/**
 * V8's allocation-site pretenuring decides, early in a streamed run, that the capture decoder's packet objects
 * live long (a decoded chunk stays alive while its packets run) and allocates every later one in the old
 * generation: full mark-compacts every few hundred milliseconds. Without it the packets die young (scavenges).
 * 10,000 rules, 200,000 packets, --quiet: 166k -> 211k packets/s. Only the garbage collector's policy changes.
 */
export function tuneGarbageCollector(): void {
  try {
    setFlagsFromString("--no-allocation-site-pretenuring");
  } catch {
    /* an engine without the flag: keep its default */
  }
}

/**
 * Runs `load` (reading the host and rule files, compiling the tables) with V8's optimizing compiler off. The
 * loading code runs once, but 10,000 rules make its functions hot: V8 compiled them in the background, and on
 * one core those compilations took the CPU from the loading and then from the first packets. Measured
 * 2026-11-21 (bench/trace.ts, 9,996 rules, --quiet, pinned to one core): loading 330 -> 260 ms, the whole
 * process 2.68 -> 2.60 s (median of 10 alternating runs); no change on two cores.
 */
export function loadWithoutOptimizing<T>(load: () => T): T {
  const toggle = (flag: string) => {
    try {
      setFlagsFromString(flag);
    } catch {
      /* an engine without the flag: keep its default */
    }
  };
  toggle("--no-turbofan");
  try {
    return load();
  } finally {
    toggle("--turbofan");
  }
}

async function traceCommand(opts: TraceCliOptions, io: CliIo): Promise<void> {
  tuneGarbageCollector();
  const format = opts.format;
  if (!(FORMATS as readonly string[]).includes(format))
    bad("--format", `expected one of ${FORMATS.join(", ")}, got "${format}"`);
  if (opts.backend !== "legacy" && opts.backend !== "nft")
    bad("--backend", `expected legacy or nft, got "${opts.backend}"`);
  const seed = /^\d+$/.test(opts.seed ?? "0") ? Number(opts.seed) : (opts.seed ?? "0");

  // Loading runs once: V8's optimizing compiler is held back until the packets start (see loadWithoutOptimizing).
  const { host, loaded, sim } = loadWithoutOptimizing(() => {
    const host = parseHostFile(readText(opts.host), opts.host);
    const loaded = loadRuleset(readText(opts.rules), {
      file: opts.rules,
      allowUnknown: opts.allowUnknown === true,
    });
    if (loaded.errors.length > 0) throw new InputError(loaded.errors[0]);
    for (const w of loaded.warnings) io.stderr(`ctsim: warning: ${formatDiagnostic(w)}\n`);

    const sim = new HostSim({
      host,
      ruleset: loaded.ruleset,
      kernel: opts.kernel,
      backend: opts.backend as Backend,
      traceAll: opts.traceAll === true,
      sysctl: parseSysctlArgs(opts.sysctl ?? []),
      seed,
      quiet: opts.quiet === true,
    });
    return { host, loaded, sim };
  });
  if (sim.problems.length > 0) {
    const lines = sim.problems.map(
      (p) => `${opts.rules}:${p.rule.source.line}:${p.rule.source.column}: ${p.what}`,
    );
    if (!opts.allowUnknown) {
      io.stderr(
        `ctsim: the rule set uses extensions ctsim cannot evaluate yet (--allow-unknown evaluates the rules without them):\n${lines.map((l) => `  ${l}\n`).join("")}`,
      );
      throw new CliExit(2);
    }
    for (const l of lines) io.stderr(`ctsim: warning: ${l} (evaluated without it)\n`);
  }
  for (const s of sim.ignoredSysctls) io.stderr(`ctsim: warning: sysctl ${s} is not modelled; ignored\n`);

  const color = format === "text" && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const c = new Chalk({ level: color ? 1 : 0 });
  const progress = process.stderr.isTTY === true && !process.env.CTSIM_NO_PROGRESS;
  let out: number | undefined;
  let outBytes: ByteOutput | undefined;
  const writer = opts.write ? new PcapngWriter({ linkType: "ethernet" }) : undefined;
  // Fate counts by kind; consecutive packets usually share a fate, so the last counter is kept at hand.
  const fates = new Map<string, { n: number }>();
  const quiet = opts.quiet === true;
  let lastFate = "";
  let lastCount = { n: 0 };
  let packets = 0;
  // --quiet reads only the fate: each packet is handed over and rewritten in place (no working copy).
  const receiveOpts = opts.in ? { iface: opts.in, consume: quiet } : { consume: quiet };
  const started = performance.now();
  const stdout = new OutputBuffer(io.stdout);

  try {
    await readPacketInput(
      { file: opts.packets, lenient: opts.lenient === true, ...(opts.in ? { defaultIface: opts.in } : {}) },
      {
        opened() {
          if (opts.write) outBytes = new ByteOutput((out = openSync(opts.write, "w")));
        },
        packet(p) {
          const r = sim.receive(p, receiveOpts);
          packets++;
          const k = r.packets[0]?.fate?.kind ?? "unknown";
          if (k === lastFate) lastCount.n++;
          else {
            lastFate = k;
            let c = fates.get(k);
            if (c === undefined) fates.set(k, (c = { n: 0 }));
            lastCount = c;
            c.n++;
          }
          if (writer && outBytes !== undefined)
            for (const e of r.egress) outBytes.push(writer.write(e.packet));
          if (progress && packets % 10000 === 0) io.stderr(`\rctsim: ${packets} packets`);
          if (opts.quiet) return;
          switch (format) {
            case "json":
              stdout.push(`${JSON.stringify(reportJson(r))}\n`);
              break;
            case "xtables-monitor":
              for (const l of formatXtablesMonitor(r, { ruleset: loaded.ruleset })) stdout.push(`${l}\n`);
              break;
            case "nft":
              for (const l of formatNftMonitor(r, { ruleset: loaded.ruleset })) stdout.push(`${l}\n`);
              break;
            default:
              stdout.push(formatReportText(r, c, opts.events === true));
          }
        },
        skipped(note) {
          if (format === "text" && !opts.quiet) stdout.push(`${note}\n`);
        },
      },
    );
    if (writer && outBytes !== undefined) outBytes.push(writer.finish());
  } finally {
    // Everything produced before an error is printed (and written) before the error message.
    stdout.flush();
    if (out !== undefined) {
      try {
        outBytes?.flush();
      } finally {
        closeSync(out);
      }
    }
    if (progress && packets >= 10000) io.stderr("\n");
  }

  if (opts.conntrack) {
    const lines = sim.conntrackLines();
    if (format === "json") io.stdout(`${JSON.stringify({ conntrack: lines })}\n`);
    else {
      io.stdout(`# conntrack -L\n`);
      for (const l of lines) io.stdout(`${l}\n`);
      io.stdout(`# conntrack v1.4.7 (conntrack-tools): ${lines.length} flow entries have been shown.\n`);
    }
  }
  if (opts.quiet) {
    const secs = (performance.now() - started) / 1000;
    const fateText = [...fates].map(([k, c]) => `${k} ${c.n}`).join(", ");
    io.stdout(
      `${packets} packets (${fateText || "none"}), ${sim.traceHits} TRACE lines, ${sim.conntrack.count} conntrack entries; ${(packets / Math.max(secs, 1e-9)).toFixed(0)} packets/s\n`,
    );
  }
}
