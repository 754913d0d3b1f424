/**
 * `simulateScenario`: the engine the kernel oracle (test/oracle/compare.ts, type `SimulateScenario`) replays its
 * recordings through — one HostSim (./host.ts) per scenario, fed the recorded input packets on the recorder's
 * clock, answering per packet with the TRACE lines, the packets that left the host and `conntrack -L -o extended`.
 *
 * The recorder (test/oracle/record.ts) waited max(gap_ms, timestamp difference) after each packet, so the kernel
 * saw packet i at the sum of those pauses; the same clock is used here (base 1,000,000 s).
 *
 * Leaves out on purpose: nothing of the contract; what the emulator leaves out is listed in ./host.ts.
 */
import type { Packet } from "../wire/packet";
import type { Host } from "../host/types";
import { InputError } from "../errors";
import { loadRuleset } from "../netfilter/parse_script";
import { HostSim } from "./host";
import type { HostSimOptions } from "./host";

/** The part of the oracle's SimInput the engine reads (structurally compatible with it). */
export interface ScenarioInput {
  readonly scenario?: string;
  readonly mode?: "full" | "conntrack";
  readonly host: Host;
  readonly sysctl: Readonly<Record<string, number | string>>;
  readonly rulesText: string;
  readonly rulesFile?: string;
  readonly packets: readonly Packet[];
  /** The recorder's pause between packets (ms); default 150. */
  readonly gapMs?: number;
  readonly peers?: Readonly<Record<string, { readonly mac: string; readonly addresses: readonly string[] }>>;
}

export interface ScenarioPacketResult {
  readonly trace: string[];
  /** LOG target lines (`<prefix>IN=...`) of the packet and the packets it caused, in creation order. */
  readonly log: string[];
  readonly egress: { readonly iface: string; readonly packet: Packet }[];
  readonly conntrack: string[];
  /** ctstate per pass through mangle PREROUTING/OUTPUT (what the oracle's CTPROBE chain reports). */
  readonly ctstate: string[];
}

/** When the recorder injected each packet, relative to the first, in seconds. */
export function recorderTimes(packets: readonly Packet[], gapMs = 150): number[] {
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < packets.length; i++) {
    if (i > 0) {
      const a = packets[i - 1];
      const b = packets[i];
      t += Math.max(gapMs / 1000, b.tsSec - a.tsSec + (b.tsNsec - a.tsNsec) / 1e9);
    }
    out.push(t);
  }
  return out;
}

export interface SimulateOptions {
  readonly kernel?: string;
  readonly seed?: number | string;
}

/** Replays one scenario; throws InputError when the rules do not load. */
export function simulateScenario(input: ScenarioInput, opts: SimulateOptions = {}): ScenarioPacketResult[] {
  const loaded = loadRuleset(input.rulesText, { file: input.rulesFile });
  if (loaded.errors.length > 0) throw new InputError(loaded.errors[0]);
  const peers = input.peers ?? {};
  const simOpts: HostSimOptions = {
    host: input.host,
    ruleset: loaded.ruleset,
    sysctl: input.sysctl,
    neighbourMac: (iface) => peers[iface]?.mac,
    ...(opts.kernel ? { kernel: opts.kernel } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  };
  const sim = new HostSim(simOpts);
  const times = recorderTimes(input.packets, input.gapMs);
  const out: ScenarioPacketResult[] = [];
  input.packets.forEach((pkt, i) => {
    const r = sim.receive(pkt, { time: 1_000_000 + times[i] });
    const ctstate: string[] = [];
    for (const j of r.packets) {
      if (!j.hooks.some((h) => h.startsWith("mangle:PREROUTING") || h.startsWith("mangle:OUTPUT"))) continue;
      const c = j.ct;
      if (!c) continue;
      ctstate.push(c.state === "INVALID" || c.state === "UNTRACKED" ? c.state : `${c.state} ${c.dir}`);
    }
    out.push({
      trace: r.trace.map((h) => h.line),
      // LOG target lines only (the journey log also holds NFLOG markers and "(...)" notes).
      log: r.packets.flatMap((j) => j.log.filter((l) => !l.startsWith("(") && !l.startsWith("NFLOG "))),
      egress: r.egress.map((e) => ({ iface: e.iface, packet: e.packet })),
      conntrack: sim.conntrackLines(true),
      ctstate,
    });
  });
  return out;
}
