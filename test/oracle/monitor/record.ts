/**
 * Recorder for the nftables trace tools: builds a kernel-oracle scenario's namespaces with ../netns.ts (Lab),
 * but loads `rules.v4` with `iptables-nft-restore` (so `-j TRACE` sets nftrace, see iptables extensions/
 * libxt_TRACE.c `trace_xlate`/nft-shared.c) and, while injecting the packets exactly as ../record.ts does,
 * runs in the router namespace
 *
 *     xtables-monitor --trace       (iptables 1.8.x iptables/xtables-monitor.c)
 *     nft monitor trace             (nftables src/monitor.c, src/trace.c)
 *
 * both line-buffered (`stdbuf -oL`), attributing the lines each tool printed within SETTLE_MS of an injection to
 * that packet. Output: test/oracle/monitor/recordings/<scenario>.json (golden; review changes like code).
 *
 *     npx tsx test/oracle/monitor/record.ts test/oracle/scenarios/02-fin-first [...] [--out DIR]
 *
 * Needs root, iptables-nft(-restore), xtables-monitor, nft, tcpreplay. Leaves out on purpose: egress capture
 * and conntrack (../record.ts records those; the kernel datapath is the same with either iptables backend).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Lab, missingPrerequisite, nsRun, run } from "../netns";
import { loadInputPackets } from "../record";
import { writePcap } from "../pcap";
import { ORACLE_DIR, loadScenario, type Scenario } from "../scenario";

export const MONITOR_ROOT = join(ORACLE_DIR, "monitor", "recordings");
/** Scenarios recorded only for the trace tools (same format as ../scenarios). */
export const MONITOR_SCENARIOS = join(ORACLE_DIR, "monitor", "scenarios");

export interface MonitorPacket {
  readonly index: number;
  readonly input: { readonly text: string; readonly iface: string };
  /** `xtables-monitor --trace` lines for this packet, verbatim (trailing blanks kept). */
  readonly xtablesMonitor: readonly string[];
  /** `nft monitor trace` lines for this packet, verbatim. */
  readonly nftMonitor: readonly string[];
}

export interface MonitorRecording {
  readonly scenario: string;
  readonly description: string;
  readonly provenance: {
    readonly kernel: string;
    readonly date: string;
    readonly iptables: string;
    readonly nft: string;
    readonly rulesLoadedWith: string;
    readonly monitors: readonly string[];
    readonly command: string;
  };
  readonly packets: readonly MonitorPacket[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const SETTLE_MS = 150;

/** A line-buffered monitor process whose complete output lines are collected. */
class Monitor {
  private proc: ChildProcess;
  private buf = "";
  private lines: string[] = [];
  private err = "";
  constructor(ns: string, argv: string[]) {
    this.proc = spawn("ip", ["netns", "exec", ns, "stdbuf", "-oL", ...argv], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc.stdout!.on("data", (d: Buffer) => {
      this.buf += d.toString("utf8");
      const parts = this.buf.split("\n");
      this.buf = parts.pop()!;
      this.lines.push(...parts);
    });
    this.proc.stderr!.on("data", (d: Buffer) => (this.err += d.toString()));
  }
  take(): string[] {
    if (this.proc.exitCode !== null) throw new Error(`monitor exited (${this.proc.exitCode}): ${this.err}`);
    const out = this.lines;
    this.lines = [];
    return out;
  }
  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill("SIGTERM");
  }
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return (
    `${r.stdout ?? ""}${r.stderr ?? ""}`
      .split("\n")
      .find((l) => l.trim() !== "")
      ?.trim() ?? ""
  );
}

export async function recordMonitor(sc: Scenario, tag: string, command: string): Promise<MonitorRecording> {
  const inputs = loadInputPackets(sc);
  const work = mkdtempSync(join(tmpdir(), `ctsm-${sc.name}-`));
  // Lab.build loads rulesText with iptables-legacy-restore: hand it nothing, load the rules with iptables-nft.
  const lab = new Lab({ ...sc, rulesText: "" }, tag, work);
  const monitors: Monitor[] = [];
  const onSignal = () => {
    for (const m of monitors) m.stop();
    lab.destroy();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    lab.build();
    nsRun(lab.router, "iptables-nft-restore", [], sc.rulesText);
    const xt = new Monitor(lab.router, ["xtables-monitor", "--trace"]);
    const nft = new Monitor(lab.router, ["nft", "monitor", "trace"]);
    monitors.push(xt, nft);
    await sleep(500);
    xt.take();
    nft.take();
    const packets: MonitorPacket[] = [];
    for (const inp of inputs) {
      const pcap = join(work, `in-${inp.index}.pcap`);
      writeFileSync(pcap, writePcap([{ tsSec: 0, tsUsec: 0, data: inp.frame }]));
      lab.inject(inp.iface, pcap);
      await sleep(SETTLE_MS);
      packets.push({
        index: inp.index,
        input: { text: inp.text, iface: inp.iface },
        xtablesMonitor: xt.take(),
        nftMonitor: nft.take(),
      });
      const next = inputs[inp.index + 1];
      if (next) {
        const tsGapMs =
          (next.packet.tsSec - inp.packet.tsSec) * 1000 + (next.packet.tsNsec - inp.packet.tsNsec) / 1e6;
        const gap = Math.max(sc.gapMs, Number.isFinite(tsGapMs) ? tsGapMs : 0);
        await sleep(Math.max(0, gap - SETTLE_MS));
      }
    }
    return {
      scenario: sc.name,
      description: sc.description,
      provenance: {
        kernel: run("uname", ["-r"]).trim(),
        date: new Date().toISOString(),
        iptables: version("iptables-nft", ["-V"]),
        nft: version("nft", ["-V"]),
        rulesLoadedWith: "iptables-nft-restore",
        monitors: ["stdbuf -oL xtables-monitor --trace", "stdbuf -oL nft monitor trace"],
        command,
      },
      packets,
    };
  } finally {
    for (const m of monitors) m.stop();
    lab.destroy();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  const missing = missingPrerequisite();
  if (missing) {
    process.stderr.write(`monitor/record: cannot record: ${missing}\n`);
    return 2;
  }
  for (const tool of ["iptables-nft-restore", "xtables-monitor", "nft", "stdbuf"])
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      process.stderr.write(`monitor/record: cannot record: ${tool} not installed\n`);
      return 2;
    }
  let out = MONITOR_ROOT;
  const dirs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") out = argv[++i];
    else dirs.push(argv[i]);
  }
  mkdirSync(out, { recursive: true });
  let failed = 0;
  for (const dir of dirs) {
    const sc = loadScenario(dir);
    const command = `npx tsx test/oracle/monitor/record.ts ${relative(join(ORACLE_DIR, "../.."), sc.dir)}`;
    try {
      const rec = await recordMonitor(sc, `m${process.pid % 10000}`, command);
      writeFileSync(join(out, `${sc.name}.json`), `${JSON.stringify(rec, null, 2)}\n`);
      const n = (k: "xtablesMonitor" | "nftMonitor") => rec.packets.reduce((s, p) => s + p[k].length, 0);
      process.stdout.write(
        `${sc.name}: ${rec.packets.length} packets, ${n("xtablesMonitor")} xtables-monitor lines, ${n("nftMonitor")} nft lines\n`,
      );
    } catch (e) {
      failed++;
      process.stderr.write(`${sc.name}: FAILED: ${(e as Error).message}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
