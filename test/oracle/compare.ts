/**
 * Comparison harness: replays every oracle recording through ctsim's `simulateScenario` (looked up
 * dynamically in src/index.ts) and reports, per packet, whether ctsim agrees with the kernel on
 *   (a) the TRACE lines (exact, order kept, trailing blanks ignored),
 *   (b) the egress packets (interface + tcpdump text, as a multiset; the IP id of ICMP errors the router
 *       generates itself is masked, since the kernel draws it at random),
 *   (c) the conntrack entries (`conntrack -L -o extended` lines as a multiset, countdown timer masked).
 * When no engine is exported the harness says so and scores 0%.
 *
 *     npx tsx test/oracle/compare.ts            # per-scenario, per-packet table and the total
 */
import { join } from "node:path";
import type { Host } from "../../src/host/hostfile";
import type { Packet } from "../../src/wire/packet";
import { loadInputPackets } from "./record";
import {
  SCENARIO_ROOT,
  listRecordings,
  loadRecording,
  loadScenario,
  type Recording,
  type Scenario,
} from "./scenario";

/** What the engine gets: the same inputs the recorder used. */
export interface SimInput {
  readonly scenario: string;
  readonly host: Host;
  /** Scenario sysctls on top of the host file's (the recorder applies both, host first). */
  readonly sysctl: Readonly<Record<string, number | string>>;
  /** iptables-save text. */
  readonly rulesText: string;
  readonly rulesFile: string;
  /** Parsed input packets, in order, each with its ingress `iface` and link header MACs. */
  readonly packets: readonly Packet[];
  /** MAC of the neighbour behind each router interface (for egress Ethernet destinations). */
  readonly peers: Readonly<Record<string, { readonly mac: string; readonly addresses: readonly string[] }>>;
}

/** What the engine returns per input packet. */
export interface SimPacketResult {
  readonly trace: readonly string[];
  /** Packets that left the router: interface and `tcpdump -nn -S -v -t` text (continuation lines joined). */
  readonly egress: readonly { readonly iface: string; readonly text: string }[];
  /** `conntrack -L -o extended` lines after the packet. */
  readonly conntrack: readonly string[];
}

export type SimulateScenario = (
  input: SimInput,
) => readonly SimPacketResult[] | Promise<readonly SimPacketResult[]>;

export interface PacketVerdict {
  readonly index: number;
  readonly trace: boolean;
  readonly egress: boolean;
  readonly conntrack: boolean;
  /** First difference found, for the report. */
  readonly note?: string;
}

export interface ScenarioReport {
  readonly scenario: string;
  readonly packets: readonly PacketVerdict[];
  /** Set when the scenario could not be simulated at all. */
  readonly error?: string;
}

export interface Totals {
  readonly packets: number;
  readonly trace: number;
  readonly egress: number;
  readonly conntrack: number;
  /** Packets agreeing on all three. */
  readonly all: number;
  /** all / packets, in percent (0 when there are no packets). */
  readonly agreement: number;
}

/** conntrack -L -o extended: `ipv4     2 tcp      6 119 SYN_SENT ...` -> the 119 (timer) becomes `*`. */
export function maskConntrackTimer(line: string): string {
  return line.trim().replace(/^(\S+\s+\d+\s+\S+\s+\d+\s+)\d+/, "$1*");
}

/** Masks the outer IP id of ICMP error messages (kernel-chosen); other text is kept. */
export function normaliseEgressText(text: string): string {
  const t = text.trim().replace(/\s+/g, " ");
  if (/proto ICMP \(1\)/.test(t) && !/ICMP echo (request|reply)/.test(t))
    return t.replace(/\bid \d+/, "id *");
  return t;
}

function sortedEqual(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

const trimEnd = (s: string) => s.replace(/\s+$/, "");

/** Compares one recording with the engine's output for it. */
export function compareRecording(
  rec: Recording,
  sim: readonly SimPacketResult[] | undefined,
  why?: string,
): ScenarioReport {
  if (!sim) {
    return {
      scenario: rec.scenario,
      error: why ?? "engine not implemented",
      packets: rec.packets.map((p) => ({ index: p.index, trace: false, egress: false, conntrack: false })),
    };
  }
  const packets = rec.packets.map((p, i): PacketVerdict => {
    const s = sim[i];
    if (!s)
      return { index: p.index, trace: false, egress: false, conntrack: false, note: "no result from engine" };
    const wantTrace = p.trace.map(trimEnd);
    const gotTrace = s.trace.map(trimEnd);
    const trace = wantTrace.length === gotTrace.length && wantTrace.every((l, k) => l === gotTrace[k]);
    const egress = sortedEqual(
      p.egress.map((e) => `${e.iface} ${normaliseEgressText(e.text)}`),
      s.egress.map((e) => `${e.iface} ${normaliseEgressText(e.text)}`),
    );
    const conntrack = sortedEqual(p.conntrack.map(maskConntrackTimer), s.conntrack.map(maskConntrackTimer));
    let note: string | undefined;
    if (!trace) {
      const k = wantTrace.findIndex((l, j) => l !== gotTrace[j]);
      note =
        k < 0
          ? `trace: got ${gotTrace.length} lines, want ${wantTrace.length}`
          : `trace line ${k + 1}: got "${gotTrace[k] ?? "(none)"}", want "${wantTrace[k]}"`;
    } else if (!egress)
      note = `egress: got ${s.egress.length} packets, want ${p.egress.length} (or different text)`;
    else if (!conntrack)
      note = `conntrack: got ${s.conntrack.length} entries, want ${p.conntrack.length} (or different)`;
    return { index: p.index, trace, egress, conntrack, ...(note ? { note } : {}) };
  });
  return { scenario: rec.scenario, packets };
}

export function totals(reports: readonly ScenarioReport[]): Totals {
  let packets = 0;
  let trace = 0;
  let egress = 0;
  let conntrack = 0;
  let all = 0;
  for (const r of reports)
    for (const p of r.packets) {
      packets++;
      if (p.trace) trace++;
      if (p.egress) egress++;
      if (p.conntrack) conntrack++;
      if (p.trace && p.egress && p.conntrack) all++;
    }
  const agreement = packets === 0 ? 0 : Math.round((1000 * all) / packets) / 10;
  return { packets, trace, egress, conntrack, all, agreement };
}

/** The engine, when src/index.ts exports one. */
export async function findEngine(): Promise<SimulateScenario | undefined> {
  const mod = (await import("../../src/index")) as Record<string, unknown>;
  const f = mod.simulateScenario;
  return typeof f === "function" ? (f as SimulateScenario) : undefined;
}

export function simInput(sc: Scenario): SimInput {
  const inputs = loadInputPackets(sc);
  const peers: Record<string, { mac: string; addresses: string[] }> = {};
  for (const [k, v] of Object.entries(sc.peers)) peers[k] = { mac: v.mac, addresses: [...v.addressText] };
  return {
    scenario: sc.name,
    host: sc.host,
    sysctl: sc.sysctl,
    rulesText: sc.rulesText,
    rulesFile: sc.rulesFile,
    packets: inputs.map((i) => ({
      ...i.packet,
      iface: i.iface,
      link: {
        src: sc.peers[i.iface].mac,
        dst: sc.host.interfaces.find((x) => x.name === i.iface)!.mac,
        ethertype: 0x0800,
        vlans: [],
      },
    })),
    peers,
  };
}

/** Runs the engine (if any) over every recording. */
export async function compareAll(engine?: SimulateScenario | null): Promise<ScenarioReport[]> {
  const sim = engine === undefined ? await findEngine() : (engine ?? undefined);
  const reports: ScenarioReport[] = [];
  for (const name of listRecordings()) {
    const rec = loadRecording(name);
    if (!sim) {
      reports.push(compareRecording(rec, undefined));
      continue;
    }
    try {
      const out = await sim(simInput(loadScenario(join(SCENARIO_ROOT, name))));
      reports.push(compareRecording(rec, out));
    } catch (e) {
      reports.push(compareRecording(rec, undefined, `engine failed: ${(e as Error).message.split("\n")[0]}`));
    }
  }
  return reports;
}

export function formatReport(reports: readonly ScenarioReport[]): string {
  const yn = (b: boolean) => (b ? "ok" : "--");
  const lines: string[] = [];
  lines.push(`${"scenario".padEnd(28)} ${"pkt".padStart(3)}  trace  egress  conntrack  note`);
  for (const r of reports) {
    if (r.error) {
      lines.push(`${r.scenario.padEnd(28)} ${"*".padStart(3)}  --     --      --         ${r.error}`);
      continue;
    }
    for (const p of r.packets)
      lines.push(
        `${r.scenario.padEnd(28)} ${String(p.index).padStart(3)}  ${yn(p.trace).padEnd(5)}  ${yn(p.egress).padEnd(6)}  ${yn(p.conntrack).padEnd(9)}  ${p.note ?? ""}`.trimEnd(),
      );
  }
  const t = totals(reports);
  lines.push(
    `total: ${t.all}/${t.packets} packets agree on everything (${t.agreement}%); trace ${t.trace}, egress ${t.egress}, conntrack ${t.conntrack}`,
  );
  return `${lines.join("\n")}\n`;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  compareAll().then((reports) => process.stdout.write(formatReport(reports)));
}
