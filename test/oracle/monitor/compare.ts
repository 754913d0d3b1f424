/**
 * Compares ctsim's `--format xtables-monitor` / `--format nft` output (src/trace/monitor.ts) with the lines the
 * real tools printed (./recordings, made by ./record.ts): each recording's scenario is replayed through a HostSim
 * with the nft backend (exactly the chains iptables-nft-restore creates: declared or appended-to) on the
 * recorder's clock, as src/sim/scenario.ts does for the TRACE oracle.
 *
 *     npx tsx test/oracle/monitor/compare.ts [--verbose] [name ...]
 *
 * Masked: the trace id (nf_tables_trace.c nft_trace_init: siphash of the skb address, skb hash and iif with a
 * boot-random key; recording twice gives new ids and otherwise identical text). Ids are replaced by `#1`, `#2`...
 * in order of first appearance, so which lines belong to the same skb is still compared.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadRuleset } from "../../../src/netfilter/parse_script";
import { HostSim } from "../../../src/sim/host";
import { recorderTimes } from "../../../src/sim/scenario";
import { formatNftMonitor, formatXtablesMonitor } from "../../../src/trace/monitor";
import { simInput } from "../compare";
import { SCENARIO_ROOT, loadScenario } from "../scenario";
import { MONITOR_ROOT, MONITOR_SCENARIOS, type MonitorRecording } from "./record";

export function listMonitorRecordings(root = MONITOR_ROOT): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => n.endsWith(".json"))
    .map((n) => n.slice(0, -5))
    .sort();
}

export function loadMonitorRecording(name: string, root = MONITOR_ROOT): MonitorRecording {
  return JSON.parse(readFileSync(join(root, `${name}.json`), "utf8")) as MonitorRecording;
}

/** Replaces trace ids (`TRACE: 2 <id>`, `PACKET: 2 <id>`, `trace id <id>`) by #1, #2... per packet. */
export function maskTraceIds(lines: readonly string[]): string[] {
  const seen = new Map<string, string>();
  const tag = (id: string) => {
    let t = seen.get(id);
    if (!t) seen.set(id, (t = `#${seen.size + 1}`));
    return t;
  };
  return lines.map((l) =>
    l
      .replace(/^( TRACE: 2 |PACKET: 2 )([0-9a-f]{8})\b/, (_, a: string, id: string) => a + tag(id))
      .replace(/^(trace id )([0-9a-f]{8})\b/, (_, a: string, id: string) => a + tag(id)),
  );
}

export interface MonitorOutput {
  readonly xtablesMonitor: string[];
  readonly nftMonitor: string[];
}

/** ctsim's lines for every packet of the scenario the recording was made from. */
export function simulateMonitor(rec: MonitorRecording): MonitorOutput[] {
  const own = join(MONITOR_SCENARIOS, rec.scenario);
  const sc = loadScenario(existsSync(own) ? own : join(SCENARIO_ROOT, rec.scenario));
  const input = simInput(sc);
  const loaded = loadRuleset(input.rulesText, { file: input.rulesFile });
  if (loaded.errors.length > 0) throw new Error(loaded.errors[0].message);
  const sim = new HostSim({
    host: input.host,
    ruleset: loaded.ruleset,
    sysctl: input.sysctl,
    // iptables-nft-restore loaded the rules: exactly the declared (or appended-to) chains exist and run.
    backend: "nft",
    neighbourMac: (iface) => input.peers[iface]?.mac,
  });
  const times = recorderTimes(input.packets, input.gapMs);
  return input.packets.map((pkt, i) => {
    const r = sim.receive(pkt, { time: 1_000_000 + times[i] });
    const opts = { ruleset: loaded.ruleset };
    return { xtablesMonitor: formatXtablesMonitor(r, opts), nftMonitor: formatNftMonitor(r, opts) };
  });
}

export type Tool = keyof MonitorOutput;

export interface PacketDiff {
  readonly index: number;
  readonly tool: Tool;
  /** First differing line: got (ctsim) and want (kernel). */
  readonly line: number;
  readonly got?: string;
  readonly want?: string;
}

/**
 * The IP id of packets the router sent itself (trace ids #2...: REJECT's RST and ICMP errors): the kernel's choice
 * (ip_select_ident, per-destination counters with a random base) is not ctsim's, as in ../compare.ts.
 */
export function maskGeneratedIpId(lines: readonly string[]): string[] {
  return lines.map((l) =>
    /^(?: TRACE: 2 |PACKET: 2 |trace id )#1 /.test(l)
      ? l
      : l.replace(/ ID=\d+ /, " ID=* ").replace(/ ip id \d+ /, " ip id * "),
  );
}

/** Line-by-line comparison (trailing blanks kept: both tools print them). */
export function diffLines(got: readonly string[], want: readonly string[]): number {
  const g = maskGeneratedIpId(maskTraceIds(got));
  const w = maskGeneratedIpId(maskTraceIds(want));
  for (let i = 0; i < Math.max(g.length, w.length); i++) if (g[i] !== w[i]) return i;
  return -1;
}

export interface ScenarioResult {
  readonly name: string;
  readonly packets: number;
  readonly agree: Record<Tool, number>;
  readonly diffs: PacketDiff[];
}

export function compareMonitor(rec: MonitorRecording): ScenarioResult {
  const sim = simulateMonitor(rec);
  const agree: Record<Tool, number> = { xtablesMonitor: 0, nftMonitor: 0 };
  const diffs: PacketDiff[] = [];
  rec.packets.forEach((p, i) => {
    for (const tool of ["xtablesMonitor", "nftMonitor"] as const) {
      const got = sim[i]?.[tool] ?? [];
      const at = diffLines(got, p[tool]);
      if (at < 0) agree[tool]++;
      else
        diffs.push({
          index: i,
          tool,
          line: at,
          got: maskGeneratedIpId(maskTraceIds(got))[at],
          want: maskGeneratedIpId(maskTraceIds(p[tool]))[at],
        });
    }
  });
  return { name: rec.scenario, packets: rec.packets.length, agree, diffs };
}

function main(argv: string[]): number {
  const verbose = argv.includes("--verbose");
  const names = argv.filter((a) => !a.startsWith("--"));
  for (const name of names.length > 0 ? names : listMonitorRecordings()) {
    const r = compareMonitor(loadMonitorRecording(name));
    process.stdout.write(
      `${r.name}: xtables-monitor ${r.agree.xtablesMonitor}/${r.packets}, nft ${r.agree.nftMonitor}/${r.packets}\n`,
    );
    if (verbose)
      for (const d of r.diffs)
        process.stdout.write(
          `  #${d.index} ${d.tool} line ${d.line + 1}:\n    got  ${JSON.stringify(d.got)}\n    want ${JSON.stringify(d.want)}\n`,
        );
  }
  return 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exit(main(process.argv.slice(2)));
}
