/**
 * `simulateScenario`: the engine the kernel oracle (test/oracle/compare.ts, type `SimulateScenario`) replays its
 * recordings through — one HostSim (./host.ts) per scenario, fed the recorded input packets on the recorder's
 * clock, answering per packet with the TRACE lines, the packets that left the host and `conntrack -L -o extended`.
 *
 * The recorder (test/oracle/record.ts) waited max(gap_ms, timestamp difference) after each packet, so the kernel
 * saw packet i at the sum of those pauses; the same clock is used here (base 1,000,000 s).
 *
 * `ipsetsText` (the scenario's `ipset save` file) becomes HostSim's `ipsets`; the host file's `sockets:` are
 * answered as root-owned listeners (`rootListeners`), as the recorder's python3 listener opens them.
 *
 * `local` (the scenario's packets the router itself sent, position -> uid/gid of the sending process; direction
 * "Out") are replayed through HostSim's output path (`receive(pkt, {local})`, ip_local_out). HostSim has no
 * way yet to give such a packet a socket owner (skb.owner is never set by `localOut`), so `-m owner` sees no
 * socket and TRACE/LOG lines lack `UID= GID=` for them: a known disagreement (test/oracle/README.md, 70).
 *
 * Leaves out on purpose: nothing of the contract; what the emulator leaves out is listed in ./host.ts.
 */
import type { Packet } from "../wire/packet";
import type { Host } from "../host/types";
import type { SocketRef } from "../netfilter/skb";
import type { SocketQuery } from "../netfilter/host_services";
import { InputError } from "../errors";
import { loadRuleset } from "../netfilter/parse_script";
import { parseIpsetSave } from "../ipset/parse_save";
import { HostSim, hostListener } from "./host";
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
  /** `ipset save` text (the recorder loads it with `ipset restore`), for `-m set`. */
  readonly ipsetsText?: string;
  readonly ipsetsFile?: string;
  /** Packets the host itself sent: position in `packets` -> owner of the sending process. */
  readonly local?: Readonly<Record<number, { readonly uid: number; readonly gid: number }>>;
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

/**
 * The host file's `sockets:` as the recorder opens them: listeners of one python3 process running as root, so
 * a socket TPROXY assigns carries owner 0/0 (the kernel's TRACE/LOG lines then print `UID=0 GID=0`,
 * nf_log_dump_sk_uid_gid). Lookup as `__inet_lookup_listener`: a socket bound to the exact address before
 * one bound to 0.0.0.0. Established sockets: none (the recorder never accepts).
 */
export function rootListeners(
  host: Host,
): (q: SocketQuery, kind: "established" | "listener") => SocketRef | undefined {
  return (q, kind) => (kind === "listener" ? hostListener(host, q, { uid: 0, gid: 0 }) : undefined);
}

export interface SimulateOptions {
  readonly kernel?: string;
  readonly seed?: number | string;
  /** HostSim's quiet mode (no TRACE/LOG records, no per-step detail): egress and conntrack only. */
  readonly quiet?: boolean;
  /** With quiet: hand each packet over (`receive`'s consume), a fresh copy of the input's so it stays intact. */
  readonly consume?: boolean;
}

/** Replays one scenario; throws InputError when the rules do not load. */
export function simulateScenario(input: ScenarioInput, opts: SimulateOptions = {}): ScenarioPacketResult[] {
  const loaded = loadRuleset(input.rulesText, { file: input.rulesFile });
  if (loaded.errors.length > 0) throw new InputError(loaded.errors[0]);
  const peers = input.peers ?? {};
  let ipsets: HostSimOptions["ipsets"];
  if (input.ipsetsText !== undefined) {
    const parsed = parseIpsetSave(input.ipsetsText, input.ipsetsFile ?? "<ipsets>");
    if (parsed.diagnostics.length > 0) throw new InputError(parsed.diagnostics[0]);
    ipsets = parsed.sets;
  }
  const simOpts: HostSimOptions = {
    host: input.host,
    ruleset: loaded.ruleset,
    sysctl: input.sysctl,
    neighbourMac: (iface) => peers[iface]?.mac,
    ...(ipsets ? { ipsets } : {}),
    ...(input.host.sockets.length > 0 ? { socketLookup: rootListeners(input.host) } : {}),
    ...(opts.kernel ? { kernel: opts.kernel } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.quiet ? { quiet: true } : {}),
  };
  const sim = new HostSim(simOpts);
  const times = recorderTimes(input.packets, input.gapMs);
  const out: ScenarioPacketResult[] = [];
  input.packets.forEach((pkt, i) => {
    const owner = input.local?.[i];
    const consume = opts.consume === true;
    const r = sim.receive(consume ? structuredClone(pkt) : pkt, {
      ...(consume ? { consume } : {}),
      time: 1_000_000 + times[i],
      ...(owner ? { local: `sendto() by a process with uid ${owner.uid}, gid ${owner.gid}`, owner } : {}),
    });
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
