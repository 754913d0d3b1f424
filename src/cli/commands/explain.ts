/**
 * `ctsim explain --host h.yaml --rules r.v4 --packets p [--packet N | --match EXPR]`: for each selected packet a
 * plain-language account (src/explain/explain.ts) of conntrack's decision (the table cell or window check, the
 * kernel's reason text, the sysctls that mattered), NAT (why or why not), every rule that matched, the route
 * and fate, with the kernel function per step, and candidate fixes each tried in the emulator.
 * `--format json` prints one JSON object per packet (the Explanation value). Bad input exits 2.
 */
import type { Command } from "commander";
import { Chalk } from "chalk";
import type { CliIo } from "../main";
import { InputError, formatDiagnostic } from "../../errors";
import { readPacketInput } from "../input";
import { parseHostFile } from "../../host/hostfile";
import { DEFAULT_KERNEL, KERNEL_PROFILES } from "../../conntrack/profile";
import type { Packet } from "../../wire/packet";
import type { HostScenario } from "../../check/subject";
import { loadScenarioRules } from "../../check/subject";
import { explainPackets } from "../../explain/explain";
import { matchFilter, parseFilter } from "../../explain/filter";
import { formatExplanation } from "../../explain/format";
import { collect, readText } from "../args";

interface ExplainCliOptions {
  host: string;
  rules: string;
  packets: string;
  packet?: string;
  match?: string;
  format: string;
  kernel: string;
  backend: string;
  sysctl?: string[];
  seed?: string;
  in?: string;
  allowUnknown?: boolean;
}

const MAX_DEFAULT = 20;

const EXAMPLES = `
Examples:
  ctsim explain --host examples/seed001/host.yaml --rules examples/seed001/rules.v4 \\
                --packets examples/seed001/packets.txt --packet 2
      why the seed 001 FIN leaves un-NATed: tcp_error refuses a bare FIN, no conntrack, the nat table (and its
      MASQUERADE) is skipped; an INVALID drop in FORWARD, tried in the emulator, stops the leak
  ctsim explain ... --match 'tcp and dst port 80 and not host 10.0.0.1' --format json

--packet N is 1-based (the first packet is 1). --match takes a pcap-filter subset: tcp, udp, icmp, ip,
[src|dst] host ADDR, [src|dst] [tcp|udp] port N, and/or/not, parentheses. Without either, every packet is
explained (at most ${MAX_DEFAULT}).
Kernel profiles: ${KERNEL_PROFILES.map((p) => p.id).join(", ")} (default ${DEFAULT_KERNEL}).
`;

function bad(option: string, message: string): never {
  throw new InputError({ code: "CLI_BAD_OPTION", file: option, message });
}

export function register(program: Command, io: CliIo): void {
  program
    .command("explain")
    .description("explain, with evidence and tested fixes, what the host did with selected packets")
    .requiredOption("--host <host.yaml>", "host file")
    .requiredOption("--rules <rules>", "iptables-save output or a shell script of iptables commands")
    .requiredOption("--packets <file>", "tcpdump text, pcap or pcapng")
    .option("--packet <N>", "explain packet N (1 is the first)")
    .option("--match <expr>", "explain the packets matching a pcap-filter expression (subset)")
    .option("--format <format>", "text or json", "text")
    .option("--kernel <version>", "kernel profile to emulate", DEFAULT_KERNEL)
    .option("--backend <backend>", "legacy or nft", "legacy")
    .option("--sysctl <name=value>", "set a sysctl (repeatable)", collect)
    .option("--seed <n>", "seed of the random choices", "0")
    .option("--in <iface>", "interface for packets whose input names none")
    .option("--allow-unknown", "evaluate rules with unknown extensions as never matching")
    .addHelpText("after", EXAMPLES)
    .action(async (opts: ExplainCliOptions) => {
      await explainCommand(opts, io);
    });
}

async function explainCommand(opts: ExplainCliOptions, io: CliIo): Promise<void> {
  if (opts.format !== "text" && opts.format !== "json")
    bad("--format", `expected text or json, got "${opts.format}"`);
  if (opts.backend !== "legacy" && opts.backend !== "nft")
    bad("--backend", `expected legacy or nft, got "${opts.backend}"`);
  if (opts.packet !== undefined && opts.match !== undefined)
    bad("--packet", "give --packet or --match, not both");
  const filter = opts.match !== undefined ? parseFilter(opts.match) : undefined;
  let wanted: number | undefined;
  if (opts.packet !== undefined) {
    if (!/^\d+$/.test(opts.packet) || Number(opts.packet) < 1)
      bad("--packet", `expected a packet number (1 is the first), got "${opts.packet}"`);
    wanted = Number(opts.packet);
  }
  const sysctl: Record<string, string> = {};
  for (const item of opts.sysctl ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) bad("--sysctl", `expected name=value, got "${item}"`);
    sysctl[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  const host = parseHostFile(readText(opts.host), opts.host);
  const scenario: HostScenario = {
    host,
    rulesText: readText(opts.rules),
    rulesFile: opts.rules,
    kernel: opts.kernel,
    backend: opts.backend as "legacy" | "nft",
    sysctl,
    seed: /^\d+$/.test(opts.seed ?? "0") ? Number(opts.seed) : (opts.seed ?? "0"),
    allowUnknown: opts.allowUnknown === true,
  };
  const loaded = loadScenarioRules(scenario);
  if (loaded.errors.length > 0) throw new InputError(loaded.errors[0]);
  for (const w of loaded.warnings) io.stderr(`ctsim: warning: ${formatDiagnostic(w)}\n`);

  const packets: Packet[] = [];
  await readPacketInput(
    { file: opts.packets, ...(opts.in ? { defaultIface: opts.in } : {}) },
    { packet: (p) => void packets.push(p) },
  );
  let selected: number[];
  if (wanted !== undefined) {
    if (wanted > packets.length) bad("--packet", `the input has ${packets.length} packet(s), got ${wanted}`);
    selected = [wanted - 1];
  } else {
    selected = packets.map((_, i) => i).filter((i) => !filter || matchFilter(filter, packets[i]));
    if (selected.length === 0) {
      io.stderr(`ctsim: no packet matches ${opts.match ? `"${opts.match}"` : "(empty input)"}\n`);
      return;
    }
    if (!filter && selected.length > MAX_DEFAULT) {
      io.stderr(
        `ctsim: explaining the first ${MAX_DEFAULT} of ${selected.length} packets (use --packet or --match)\n`,
      );
      selected = selected.slice(0, MAX_DEFAULT);
    }
  }
  const out = explainPackets({ scenario, packets, ...(opts.in ? { iface: opts.in } : {}) }, selected);
  if (opts.format === "json") {
    for (const e of out) io.stdout(`${JSON.stringify(e)}\n`);
    return;
  }
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  const c = new Chalk({ level: color ? 1 : 0 });
  const style = { title: c.bold.underline, heading: c.bold, dim: c.dim, good: c.green, bad: c.yellow };
  io.stdout(out.map((e) => formatExplanation(e, style)).join("\n"));
}
