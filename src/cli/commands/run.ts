/**
 * `ctsim run topology.yaml`: run a network of emulated Linux hosts and device models (src/sim/net/) on the
 * topology's traffic and print, per event, the hop-by-hop path (node, conntrack state, NAT, fate, TRACE lines),
 * then forwarding loops, the flows' outcomes and a sequence diagram of the packets between nodes.
 *
 * `--format json` prints one JSON document; `-w DIR` writes one pcapng per link (`DIR/<link>.pcapng`);
 * `--until SECONDS` stops the clock; `--conntrack` prints every Linux node's `conntrack -L` at the end.
 * Bad input exits 2 with file:line:column.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import type { CliIo } from "../main";
import { InputError } from "../../errors";
import { buildEngine, loadTopology } from "../../sim/net/topology";
import { parseExperiment, runExperiment } from "../../sim/net/experiment";
import type { Topology } from "../../sim/net/topology";
import type { HopEvent, RunResult } from "../../sim/net/engine";
import { formatSequence } from "../../trace/sequence";
import { packetBrief } from "../../trace/summary";
import { PcapngWriter } from "../../wire/pcapng_writer";
import type { Packet } from "../../wire/packet";

interface RunCliOptions {
  format: string;
  write?: string;
  until?: string;
  conntrack?: boolean;
  trace?: boolean;
  seed?: string;
  quiet?: boolean;
}

const EXAMPLES = `
Examples:
  ctsim run examples/seed001-network/topology.yaml
      seed 001 as a network: the SYN is NATed by the self-built NAT host; a FIN with no conntrack entry leaves
      un-NATed and bounces between the NAT host and the VPC router until its TTL runs out
  ctsim run examples/seed001-network/topology-fixed.yaml --conntrack
  ctsim run topo.yaml --format json > run.json
  ctsim run topo.yaml -w out/ --until 30        # out/<link>.pcapng, simulated time up to 30 s
  ctsim run examples/seed003-tproxy/experiment.yaml
      a file with experiment: (kind tuple-space) instead of nodes: prints the model's table: failed connections
      as clients grow behind a NAT-mode proxy and a pure TPROXY proxy (seed 003)

Output (text): per event "[time] node: what" and one line per packet the node handled (conntrack state, NAT,
fate), TRACE lines with --trace; then forwarding loops with their hop list, the flows (state, error) and a
sequence diagram of every packet that crossed a link.
`;

export function register(program: Command, io: CliIo): void {
  program
    .command("run")
    .description("run a network of emulated hosts and devices (topology YAML) and show every packet's path")
    .argument("<topology>", "topology file (nodes, links, traffic)")
    .option("--format <format>", "text or json", "text")
    .option("-w, --write <dir>", "write one pcapng per link into this directory")
    .option("--until <seconds>", "stop the simulated clock at this time")
    .option("--conntrack", "print every Linux node's conntrack table at the end")
    .option("--trace", "print the TRACE lines of the Linux hosts")
    .option("--seed <n>", "override the topology's seed")
    .option("--quiet", "only loops, flows and totals")
    .addHelpText("after", EXAMPLES)
    .action((file: string, opts: RunCliOptions) => {
      runCommand(file, opts, io);
    });
}

function bad(option: string, message: string): never {
  throw new InputError({ code: "CLI_BAD_OPTION", file: option, message });
}

function readExperiment(file: string) {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined; // loadTopologyFile reports it
  }
  return parseExperiment(text, file);
}

export function loadTopologyFile(file: string, seed?: string): Topology {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError({ code: "READ_OPEN", file, message: `cannot open: ${(err as Error).message}` });
  }
  const base = dirname(resolve(file));
  return loadTopology(text, {
    file,
    readFile: (p) => readFileSync(resolve(base, p), "utf8"),
    ...(seed !== undefined ? { seed: /^\d+$/.test(seed) ? Number(seed) : seed } : {}),
  });
}

function runCommand(file: string, opts: RunCliOptions, io: CliIo): void {
  if (opts.format !== "text" && opts.format !== "json")
    bad("--format", `expected text or json, got "${opts.format}"`);
  let until: number | undefined;
  if (opts.until !== undefined) {
    until = Number(opts.until);
    if (!Number.isFinite(until) || until < 0) bad("--until", `expected seconds >= 0, got "${opts.until}"`);
  }
  const experiment = readExperiment(file);
  if (experiment) {
    const r = runExperiment(experiment);
    if (opts.format === "json")
      io.stdout(`${JSON.stringify({ experiment: experiment.kind, rows: r.rows })}\n`);
    else
      io.stdout(
        `${experiment.description ? `# ${experiment.description}\n` : ""}# failed connections (${experiment.kind}; per client ${experiment.params.perClientRate} conn/s for ${experiment.params.duration} s, ${experiment.params.servers} servers)\n${r.table}\n`,
      );
    return;
  }
  const topo = loadTopologyFile(file, opts.seed);
  const engine = buildEngine(topo);
  const text = opts.format === "text" && !opts.quiet;
  const result = engine.run({
    ...(until !== undefined ? { until } : {}),
    ...(text ? { onEvent: (e: HopEvent) => io.stdout(formatEvent(e, opts.trace === true)) } : {}),
  });
  if (opts.write) writePcaps(opts.write, result);
  if (opts.format === "json") {
    io.stdout(`${JSON.stringify(runJson(topo, result, opts.conntrack === true))}\n`);
    return;
  }
  io.stdout(formatTail(topo, result, opts.conntrack === true));
}

export function formatEvent(e: HopEvent, trace: boolean): string {
  const what =
    e.kind === "action"
      ? `action ${e.label}`
      : e.kind === "timer"
        ? "timer"
        : `${e.link ? `from ${e.link}` : "injected"}: ${e.packet ? packetBrief(e.packet) : ""} ttl ${e.packet?.ip.ttl}`;
  let out = `[${e.time.toFixed(6)}] ${e.node}: ${what}\n`;
  for (const h of e.hops) {
    if (trace) for (const l of h.trace ?? []) out += `    ${l}\n`;
    out += `  ${h.summary}\n`;
  }
  return out;
}

export function formatTail(topo: Topology, r: RunResult, conntrack: boolean): string {
  let out = "";
  if (r.loops.length) {
    out += `\n# forwarding loops\n`;
    for (const l of r.loops) {
      const why = l.reason === "hop-limit" ? "stopped at the hop limit" : "TTL falling on every pass";
      out += `loop: ${l.packet}: ${why}, ${l.count} link crossings\n`;
      const hops = l.hops.slice(0, 12);
      for (const h of hops)
        out += `  ${h.time.toFixed(6)} ${h.from} -> ${h.to} over ${h.link} ttl ${h.ttl}\n`;
      if (l.hops.length > hops.length) out += `  ... ${l.hops.length - hops.length} more\n`;
    }
  }
  if (topo.flows.size) {
    out += `\n# flows\n`;
    for (const f of topo.flows.values()) {
      const sk = f.sock;
      const states = sk ? sk.history.join(" > ") : "not started";
      out += `${f.name} on ${f.node}${sk ? ` ${sk.name}` : ""}: ${states}${f.error ? ` (${f.error})` : ""}\n`;
    }
  }
  out += `\n# sequence\n`;
  for (const l of formatSequence(r.wire, { maxRows: 400 })) out += `${l}\n`;
  if (conntrack) {
    for (const [name, n] of topo.linux) {
      const lines = n.conntrackLines();
      out += `\n# conntrack -L on ${name}\n`;
      for (const l of lines) out += `${l}\n`;
      out += `# ${lines.length} flow entries\n`;
    }
  }
  out += `\n${r.eventCount} events, ${r.wire.length} link crossings, simulated time ${r.endTime.toFixed(6)} s (${r.stoppedBy})\n`;
  return out;
}

function brief(p: Packet | undefined): string | undefined {
  return p ? `${packetBrief(p)} ttl ${p.ip.ttl}` : undefined;
}

export function runJson(topo: Topology, r: RunResult, conntrack: boolean): Record<string, unknown> {
  return {
    topology: topo.file,
    seed: topo.seed,
    events: r.events.map((e) => ({
      seq: e.seq,
      time: e.time,
      node: e.node,
      kind: e.kind,
      ...(e.link ? { link: e.link } : {}),
      ...(e.label ? { label: e.label } : {}),
      ...(e.packet ? { packet: brief(e.packet) } : {}),
      hops: e.hops,
      sent: e.sent.map((s) => ({ iface: s.iface, packet: brief(s.packet) })),
    })),
    loops: r.loops,
    flows: [...topo.flows.values()].map((f) => ({
      name: f.name,
      node: f.node,
      ...(f.sock ? { socket: f.sock.name, states: f.sock.history } : {}),
      ...(f.error ? { error: f.error } : {}),
    })),
    wire: r.wire.map((w) => ({
      time: w.time,
      link: w.link,
      from: w.from,
      to: w.to,
      packet: brief(w.packet),
    })),
    ...(conntrack
      ? { conntrack: Object.fromEntries([...topo.linux].map(([n, l]) => [n, l.conntrackLines()])) }
      : {}),
    endTime: r.endTime,
    eventCount: r.eventCount,
    stoppedBy: r.stoppedBy,
  };
}

function writePcaps(dir: string, r: RunResult): void {
  mkdirSync(dir, { recursive: true });
  const byLink = new Map<string, { w: PcapngWriter; parts: Uint8Array[] }>();
  for (const c of r.wire) {
    if (c.link === "-") continue;
    let f = byLink.get(c.link);
    if (!f) byLink.set(c.link, (f = { w: new PcapngWriter({ linkType: "ethernet" }), parts: [] }));
    const sec = Math.floor(c.time);
    const p: Packet = {
      ...c.packet,
      iface: `${c.from.node}:${c.from.iface}`,
      tsSec: sec,
      tsNsec: Math.round((c.time - sec) * 1e9),
    };
    f.parts.push(f.w.write(p));
  }
  for (const [link, f] of byLink) {
    f.parts.push(f.w.finish());
    const size = f.parts.reduce((n, b) => n + b.length, 0);
    const all = new Uint8Array(size);
    let o = 0;
    for (const b of f.parts) {
      all.set(b, o);
      o += b.length;
    }
    writeFileSync(join(dir, `${link.replace(/[^A-Za-z0-9_.-]/g, "_")}.pcapng`), all);
  }
}
