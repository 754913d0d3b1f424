/**
 * Comparison harness: replays every oracle recording through ctsim's `simulateScenario` (looked up
 * dynamically in src/index.ts) and reports, per packet, whether ctsim agrees with the kernel.
 *
 * Full mode (default) compares three aspects per packet:
 *   (a) trace: the TRACE lines (exact, order kept, trailing blanks ignored);
 *   (b) egress: the packets that left the router, as **decoded fields**, not tcpdump text: interface; IP src,
 *       dst, ttl, id, flags, fragment offset, tos, length, protocol, header checksum validity; TCP ports, seq,
 *       ack, flags, window, urgent pointer, options, checksum validity; UDP ports, length, checksum validity;
 *       ICMP type, code, echo id/seq (or the rest-of-header word), checksum validity and the quoted inner
 *       packet (IP src, dst, protocol, ttl, id, tos, flags, length, header checksum validity, ports, TCP seq,
 *       ICMP type/code/id); the payload length. The IP id of packets the router originates itself (source is
 *       one of the router's addresses and id not the input's, e.g. ICMP errors) is masked: the kernel draws
 *       it at random.
 *       Per interface, packets are paired in order.
 *   (c) conntrack: `conntrack -L -o extended` lines as a multiset, countdown timer masked.
 *
 * `--only conntrack` compares only what a conntrack-only emulation can produce, on the recordings whose rules
 * hold the CTPROBE chain (see README): (a') ctstate: the state and direction the CTPROBE chain saw, per pass
 * (from the `mangle:CTPROBE:rule:N` TRACE lines), and (c) conntrack entries as above.
 *
 * Without an engine the harness says so and scores 0%.
 *
 *     npx tsx test/oracle/compare.ts [--only conntrack] [--verbose]
 */
import { join } from "node:path";
import type { Host } from "../../src/host/hostfile";
import type { Packet } from "../../src/wire/packet";
import { formatIpv4 } from "../../src/wire/addr";
import { decodeIpv4, encodeIpv4, isDecodeFailure } from "../../src/wire/ipv4";
import { internetChecksum } from "../../src/wire/checksum";
import { formatTcpFlags, formatTcpOption } from "../../src/wire/tcpdump_format";
import { loadInputPackets } from "./record";
import { simulateConntrackOnly } from "./ctreplay_engine";
import { fromHex } from "./pcap";
import {
  SCENARIO_ROOT,
  listRecordings,
  loadRecording,
  loadScenario,
  type Recording,
  type Scenario,
} from "./scenario";

export type CompareMode = "full" | "conntrack";

/** What the engine gets: the same inputs the recorder used. */
export interface SimInput {
  readonly scenario: string;
  /** "conntrack": only `conntrack` and `ctstate` of the results are compared; trace and egress may be empty. */
  readonly mode: CompareMode;
  readonly host: Host;
  /** Scenario sysctls on top of the host file's (the recorder applies both, host first). */
  readonly sysctl: Readonly<Record<string, number | string>>;
  /** iptables-save text. */
  readonly rulesText: string;
  readonly rulesFile: string;
  /**
   * Parsed input packets, in order, each with its ingress `iface` and link header MACs. Timestamps are those of
   * packets.txt; the recorder waited max(gap_ms, timestamp difference) between packets (see README).
   */
  readonly packets: readonly Packet[];
  /**
   * The recorder's pause between packets in milliseconds: it waited max(gapMs, timestamp difference) after each
   * packet, so that is the kernel's clock (see `recorderClock`).
   */
  readonly gapMs: number;
  /** MAC of the neighbour behind each router interface (for egress Ethernet destinations). */
  readonly peers: Readonly<Record<string, { readonly mac: string; readonly addresses: readonly string[] }>>;
  /** `ipset save` text the recorder loaded with `ipset restore` (scenario key `ipsets`), if any. */
  readonly ipsetsText?: string;
  readonly ipsetsFile?: string;
  /**
   * Packets the router itself sent (scenario key `local`): position in `packets` -> uid/gid of the sending
   * process. Those packets have direction "Out" and the egress interface as `iface`; replay them through the
   * output path with that socket owner (skb->sk: `-m owner`, and TRACE/LOG print `UID= GID=`).
   */
  readonly local?: Readonly<Record<number, { readonly uid: number; readonly gid: number }>>;
}

/**
 * One packet that left the router: either a validated Packet value (encoded with `encodeIpv4` before
 * comparison, which computes every checksum: checksum arithmetic is then not under test) or the IPv4 datagram
 * bytes from the IP header on (checksums are verified as they are).
 */
export type SimEgress =
  | { readonly iface: string; readonly packet: Packet }
  | { readonly iface: string; readonly bytes: Uint8Array };

/** What the engine returns per input packet. */
export interface SimPacketResult {
  /** Kernel-format TRACE lines (`TRACE: table:chain:type:N IN=...`). */
  readonly trace?: readonly string[];
  /**
   * LOG target lines (`<prefix>IN=...`, what the kernel writes to its log). Compared with the recording's `log`
   * (part of the trace aspect) when the recording has one; absent counts as none.
   */
  readonly log?: readonly string[];
  readonly egress?: readonly SimEgress[];
  /** `conntrack -L -o extended` lines after the packet. */
  readonly conntrack: readonly string[];
  /**
   * ctstate per CTPROBE pass, as CTPROBE_STATES names ("ESTABLISHED REPLY"). When absent it is read from the
   * `mangle:CTPROBE:rule:N` lines of `trace`.
   */
  readonly ctstate?: readonly string[];
}

export type SimulateScenario = (
  input: SimInput,
) => readonly SimPacketResult[] | Promise<readonly SimPacketResult[]>;

/**
 * What rule N (1-based) of the CTPROBE chain matches; "NONE" when the chain returned without a match.
 * Must stay in step with the CTPROBE chain in the scenarios' rules.v4 (README "ctstate probe").
 */
export const CTPROBE_STATES: readonly string[] = [
  "INVALID",
  "NEW ORIGINAL",
  "NEW REPLY",
  "ESTABLISHED ORIGINAL",
  "ESTABLISHED REPLY",
  "RELATED ORIGINAL",
  "RELATED REPLY",
  "UNTRACKED",
];

/** The ctstate of each CTPROBE pass in these TRACE lines, in order. */
export function ctstateFromTrace(trace: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of trace) {
    const m = /\bmangle:CTPROBE:(rule|return):(\d+)\b/.exec(line);
    if (!m) continue;
    out.push(m[1] === "rule" ? (CTPROBE_STATES[Number(m[2]) - 1] ?? `rule ${m[2]}`) : "NONE");
  }
  return out;
}

/**
 * True when the rules are the plain router's (README): nothing but TRACE in raw and the CTPROBE chain, so a
 * conntrack-only engine, which ignores rules, can reproduce the recording. Scenarios 39+ add match and target
 * rules (DROP, REJECT, NOTRACK, CT --zone, NAT) and are compared in full mode only.
 */
export function plainRouterRules(rulesText: string): boolean {
  for (const raw of rulesText.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*nat")) return false;
    if (!line.startsWith("-A ")) continue;
    if (/^-A (PREROUTING|OUTPUT) -j (TRACE|CTPROBE)$/.test(line) || line.startsWith("-A CTPROBE ")) continue;
    return false;
  }
  return true;
}

/** True when the recording was made with the CTPROBE chain (some packet passed it). */
export function hasCtprobe(rec: Recording): boolean {
  return rec.packets.some((p) => ctstateFromTrace(p.trace).length > 0);
}

export interface PacketVerdict {
  readonly index: number;
  /** Aspects compared in this mode; absent ones were not compared. */
  readonly trace?: boolean;
  readonly egress?: boolean;
  readonly ctstate?: boolean;
  readonly conntrack: boolean;
  /** Differences found, `got ..., want ...`; the first one is shown in the table. */
  readonly diffs: readonly string[];
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
  readonly ctstate: number;
  readonly conntrack: number;
  /** Packets agreeing on every aspect compared. */
  readonly all: number;
  /** all / packets, in percent (0 when there are no packets). */
  readonly agreement: number;
}

/** conntrack -L -o extended: `ipv4     2 tcp      6 119 SYN_SENT ...` -> the 119 (timer) becomes `*`. */
export function maskConntrackTimer(line: string): string {
  return line
    .trim()
    .replace(/\s+/g, " ")
    .replace(/^(\S+ \d+ \S+ \d+ )\d+/, "$1*");
}

// ---- Egress as decoded fields ----

/** Decoded, comparable view of one egress packet: field name -> printed value, in a fixed order. */
export type EgressFields = ReadonlyArray<readonly [field: string, value: string]>;

function ipFlags(ip: { rf: boolean; df: boolean; mf: boolean }): string {
  const f = [ip.rf ? "RF" : "", ip.df ? "DF" : "", ip.mf ? "MF" : ""].filter(Boolean).join("+");
  return f === "" ? "none" : f;
}

/** The fields of an IPv4 datagram (bytes from the IP header on). */
export function egressFields(iface: string, bytes: Uint8Array): EgressFields {
  const p = decodeIpv4(bytes, 0, bytes.length, { tsSec: 0, tsNsec: 0 });
  const f: [string, string][] = [["iface", iface]];
  if (isDecodeFailure(p)) {
    f.push(["decode", p.failure]);
    return f;
  }
  const ip = p.ip;
  f.push(
    ["ip.src", formatIpv4(ip.src)],
    ["ip.dst", formatIpv4(ip.dst)],
    ["ip.protocol", String(ip.protocol)],
    ["ip.ttl", String(ip.ttl)],
    ["ip.id", String(ip.id)],
    ["ip.tos", `0x${ip.tos.toString(16)}`],
    ["ip.flags", ipFlags(ip)],
    ["ip.offset", String(ip.fragOffset)],
    ["ip.length", String(ip.totalLength)],
    ["ip.options", Buffer.from(ip.options).toString("hex") || "none"],
    ["ip.checksum", p.ipChecksum],
  );
  const l4 = p.l4;
  switch (l4.kind) {
    case "tcp":
      f.push(
        ["tcp.sport", String(l4.srcPort)],
        ["tcp.dport", String(l4.dstPort)],
        ["tcp.seq", String(l4.seq)],
        ["tcp.ack", String(l4.ack)],
        ["tcp.flags", formatTcpFlags(l4.flags)],
        ["tcp.window", String(l4.window)],
        ["tcp.urg", String(l4.urgentPointer)],
        ["tcp.options", l4.options.map(formatTcpOption).join(",") || "none"],
        ["tcp.checksum", p.l4Checksum],
      );
      break;
    case "udp":
      f.push(
        ["udp.sport", String(l4.srcPort)],
        ["udp.dport", String(l4.dstPort)],
        ["udp.length", String(l4.length)],
        ["udp.checksum", p.l4Checksum],
      );
      break;
    case "icmp": {
      f.push(["icmp.type", String(l4.type)], ["icmp.code", String(l4.code)]);
      if (l4.type === 0 || l4.type === 8 || l4.type === 13 || l4.type === 14)
        f.push(["icmp.id", String(l4.restOfHeader >>> 16)], ["icmp.seq", String(l4.restOfHeader & 0xffff)]);
      else f.push(["icmp.rest", `0x${(l4.restOfHeader >>> 0).toString(16).padStart(8, "0")}`]);
      f.push(["icmp.checksum", p.l4Checksum]);
      const q = l4.quote;
      if (q) {
        const innerAt = ip.ihl + 8;
        const innerOk =
          innerAt + q.ip.ihl <= bytes.length && internetChecksum(bytes, innerAt, q.ip.ihl) === 0
            ? "correct"
            : "incorrect";
        f.push(
          ["inner.src", formatIpv4(q.ip.src)],
          ["inner.dst", formatIpv4(q.ip.dst)],
          ["inner.protocol", String(q.ip.protocol)],
          ["inner.ttl", String(q.ip.ttl)],
          ["inner.id", String(q.ip.id)],
          ["inner.tos", `0x${q.ip.tos.toString(16)}`],
          ["inner.flags", ipFlags(q.ip)],
          ["inner.length", String(q.ip.totalLength)],
          ["inner.checksum", innerOk],
        );
        const b = q.l4;
        const u16 = (o: number) => (b.length >= o + 2 ? String((b[o] << 8) | b[o + 1]) : "absent");
        const u32 = (o: number) =>
          b.length >= o + 4
            ? String(((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0)
            : "absent";
        if (q.ip.protocol === 6 || q.ip.protocol === 17) {
          f.push(["inner.sport", u16(0)], ["inner.dport", u16(2)]);
          if (q.ip.protocol === 6) f.push(["inner.seq", u32(4)]);
        } else if (q.ip.protocol === 1) {
          f.push(
            ["inner.icmp.type", b.length > 0 ? String(b[0]) : "absent"],
            ["inner.icmp.code", b.length > 1 ? String(b[1]) : "absent"],
            ["inner.icmp.id", u16(4)],
          );
        }
      }
      break;
    }
    case "other":
      break;
  }
  f.push(["payload.length", String(p.payloadLength)]);
  return f;
}

/** The IPv4 datagram of a recorded Ethernet frame (hex); the recorder never captured VLAN tags. */
export function recordedDatagram(hex: string): Uint8Array {
  const frame = fromHex(hex);
  if (frame.length < 14 || frame[12] !== 0x08 || frame[13] !== 0x00)
    throw new Error(`recorded frame is not Ethernet/IPv4: ${hex.slice(0, 40)}...`);
  return frame.subarray(14);
}

/** The datagram of an engine egress packet. */
export function simDatagram(e: SimEgress): Uint8Array {
  return "bytes" in e ? e.bytes : encodeIpv4(e.packet);
}

/** Field differences `got X, want Y` between two egress packets ([] when equal). */
export function diffFields(got: EgressFields, want: EgressFields): string[] {
  const g = new Map(got);
  const w = new Map(want);
  const out: string[] = [];
  for (const [k, v] of want) if (g.get(k) !== v) out.push(`${k}: got ${g.get(k) ?? "(none)"}, want ${v}`);
  for (const [k, v] of got) if (!w.has(k)) out.push(`${k}: got ${v}, want (none)`);
  return out;
}

/**
 * True when a recorded egress packet was originated by the router (its IP id is then random): its id is not the
 * input packet's (forwarding never changes the id, even through SNAT/MASQUERADE) and either its source is one
 * of the router's addresses or it is an ICMP error or a TCP RST (generated, then source-NATed back).
 */
export function routerOriginated(
  datagram: Uint8Array,
  inputId: number,
  routerAddresses: ReadonlySet<number>,
): boolean {
  if (datagram.length < 20) return false;
  const src = ((datagram[12] << 24) | (datagram[13] << 16) | (datagram[14] << 8) | datagram[15]) >>> 0;
  const id = (datagram[4] << 8) | datagram[5];
  if (id === inputId) return false;
  if (routerAddresses.has(src)) return true;
  // A packet the router generated whose source NAT rewrote afterwards (an ICMP error or RST answering a
  // REDIRECTed/DNATed packet leaves with the original destination as source, 60-target-REDIRECT): an ICMP error
  // or a TCP RST whose id is not the input's cannot be the forwarded input.
  const ihl = (datagram[0] & 0x0f) * 4;
  const proto = datagram[9];
  if (proto === 1 && datagram.length > ihl) return [3, 4, 5, 11, 12].includes(datagram[ihl]);
  if (proto === 6 && datagram.length > ihl + 13) return (datagram[ihl + 13] & 0x04) !== 0;
  return false;
}

const MASKED_ID = "* (router-originated)";

/**
 * Compares egress lists: counts per interface, then packets pairwise in order per interface. A wanted packet
 * with `maskId` has its IP id masked on both sides.
 */
export function diffEgress(
  got: readonly { iface: string; fields: EgressFields }[],
  want: readonly { iface: string; fields: EgressFields; maskId?: boolean }[],
): string[] {
  const mask = (f: EgressFields): EgressFields =>
    f.map(([k, v]) => (k === "ip.id" ? ([k, MASKED_ID] as const) : ([k, v] as const)));
  const ifaces = [...new Set([...want.map((x) => x.iface), ...got.map((x) => x.iface)])].sort();
  const out: string[] = [];
  for (const iface of ifaces) {
    const g = got.filter((x) => x.iface === iface);
    const w = want.filter((x) => x.iface === iface);
    if (g.length !== w.length) {
      out.push(`egress on ${iface}: got ${g.length} packets, want ${w.length}`);
      continue;
    }
    g.forEach((x, k) => {
      const [gf, wf] = w[k].maskId ? [mask(x.fields), mask(w[k].fields)] : [x.fields, w[k].fields];
      for (const d of diffFields(gf, wf)) out.push(`egress ${iface}#${k + 1} ${d}`);
    });
  }
  return out;
}

function multisetDiff(label: string, got: readonly string[], want: readonly string[]): string[] {
  const left = [...want];
  const extra: string[] = [];
  for (const g of got) {
    const k = left.indexOf(g);
    if (k >= 0) left.splice(k, 1);
    else extra.push(g);
  }
  if (extra.length === 0 && left.length === 0) return [];
  if (extra.length === 1 && left.length === 1) return [`${label}: got "${extra[0]}", want "${left[0]}"`];
  return [
    `${label}: got ${got.length} entries, want ${want.length}` +
      (extra.length ? `; unexpected ${extra.map((x) => `"${x}"`).join(", ")}` : "") +
      (left.length ? `; missing ${left.map((x) => `"${x}"`).join(", ")}` : ""),
  ];
}

const trimEnd = (s: string) => s.replace(/\s+$/, "");

/**
 * Masks the outer `ID=` of a TRACE line whose outer `SRC=` is one of the router's own addresses: such a packet
 * was generated by the router (an ICMP error, a redirect, a RST), and the kernel draws its IP id from
 * `ip_select_ident` (a hash keyed by a per-boot secret), which no emulator can reproduce. The quoted packet of
 * an ICMP error (inside `[...]`) keeps its id: it is the original packet's. Forwarded packets never have a router
 * source before NAT, and TRACE lines show them before NAT.
 */
export function maskTraceId(line: string, routers: ReadonlySet<number>): string {
  const outer = line.split(" [")[0];
  const m = / SRC=(\d+\.\d+\.\d+\.\d+) /.exec(outer);
  if (!m) return line;
  const parts = m[1].split(".").map(Number);
  const addr = ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
  if (!routers.has(addr)) return line;
  const idAt = outer.search(/ ID=\d+ /);
  if (idAt < 0) return line;
  return line.slice(0, idAt) + line.slice(idAt).replace(/ ID=\d+ /, " ID=* ");
}

export interface CompareOptions {
  readonly mode?: CompareMode;
  /** Router addresses (host order), for `routerOriginated` (IP id masking). */
  readonly routerAddresses?: ReadonlySet<number>;
}

/** Compares one recording with the engine's output for it. */
export function compareRecording(
  rec: Recording,
  sim: readonly SimPacketResult[] | undefined,
  why?: string,
  opts: CompareOptions = {},
): ScenarioReport {
  const mode = opts.mode ?? "full";
  const none = (index: number, diffs: string[]): PacketVerdict =>
    mode === "full"
      ? { index, trace: false, egress: false, conntrack: false, diffs }
      : { index, ctstate: false, conntrack: false, diffs };
  if (!sim) {
    return {
      scenario: rec.scenario,
      error: why ?? "engine not implemented",
      packets: rec.packets.map((p) => none(p.index, [])),
    };
  }
  const routers = opts.routerAddresses ?? new Set<number>();
  const packets = rec.packets.map((p, i): PacketVerdict => {
    const s = sim[i];
    if (!s) return none(p.index, ["no result from engine"]);
    const diffs: string[] = [];
    const conntrackDiffs = multisetDiff(
      "conntrack",
      s.conntrack.map(maskConntrackTimer),
      p.conntrack.map(maskConntrackTimer),
    );
    if (mode === "conntrack") {
      const want = ctstateFromTrace(p.trace);
      const got = s.ctstate ? [...s.ctstate] : ctstateFromTrace(s.trace ?? []);
      const ctstate = want.length === got.length && want.every((x, k) => x === got[k]);
      if (!ctstate) diffs.push(`ctstate: got ${got.join(", ") || "(none)"}, want ${want.join(", ")}`);
      diffs.push(...conntrackDiffs);
      return { index: p.index, ctstate, conntrack: conntrackDiffs.length === 0, diffs };
    }
    const wantTrace = p.trace.map((l) => maskTraceId(trimEnd(l), routers));
    const gotTrace = (s.trace ?? []).map((l) => maskTraceId(trimEnd(l), routers));
    const trace = wantTrace.length === gotTrace.length && wantTrace.every((l, k) => l === gotTrace[k]);
    if (!trace) {
      const k = wantTrace.findIndex((l, j) => l !== gotTrace[j]);
      diffs.push(
        k < 0
          ? `trace: got ${gotTrace.length} lines, want ${wantTrace.length}`
          : `trace line ${k + 1}: got "${gotTrace[k] ?? "(none)"}", want "${wantTrace[k]}"`,
      );
    }
    let traceOk = trace;
    if (p.log !== undefined) {
      const wantLog = p.log.map((l) => maskTraceId(trimEnd(l), routers));
      const gotLog = (s.log ?? []).map((l) => maskTraceId(trimEnd(l), routers));
      if (wantLog.length !== gotLog.length || wantLog.some((l, k) => l !== gotLog[k])) {
        traceOk = false;
        const k = wantLog.findIndex((l, j) => l !== gotLog[j]);
        diffs.push(
          k < 0
            ? `log: got ${gotLog.length} lines, want ${wantLog.length}`
            : `log line ${k + 1}: got "${gotLog[k] ?? "(none)"}", want "${wantLog[k]}"`,
        );
      }
    }
    const input = recordedDatagram(p.input.hex);
    const inputId = (input[4] << 8) | input[5];
    const egressDiffs = diffEgress(
      (s.egress ?? []).map((e) => ({ iface: e.iface, fields: egressFields(e.iface, simDatagram(e)) })),
      p.egress.map((e) => {
        const d = recordedDatagram(e.hex);
        return {
          iface: e.iface,
          fields: egressFields(e.iface, d),
          maskId: routerOriginated(d, inputId, routers),
        };
      }),
    );
    diffs.push(...egressDiffs, ...conntrackDiffs);
    return {
      index: p.index,
      trace: traceOk,
      egress: egressDiffs.length === 0,
      conntrack: conntrackDiffs.length === 0,
      diffs,
    };
  });
  return { scenario: rec.scenario, packets };
}

export function totals(reports: readonly ScenarioReport[]): Totals {
  let packets = 0;
  let trace = 0;
  let egress = 0;
  let ctstate = 0;
  let conntrack = 0;
  let all = 0;
  for (const r of reports)
    for (const p of r.packets) {
      packets++;
      if (p.trace) trace++;
      if (p.egress) egress++;
      if (p.ctstate) ctstate++;
      if (p.conntrack) conntrack++;
      if (p.trace !== false && p.egress !== false && p.ctstate !== false && p.conntrack) all++;
    }
  const agreement = packets === 0 ? 0 : Math.round((1000 * all) / packets) / 10;
  return { packets, trace, egress, ctstate, conntrack, all, agreement };
}

/** The engine, when src/index.ts exports one. */
export async function findEngine(): Promise<SimulateScenario | undefined> {
  const mod = (await import("../../src/index")) as Record<string, unknown>;
  const f = mod.simulateScenario;
  return typeof f === "function" ? (f as SimulateScenario) : undefined;
}

export function simInput(sc: Scenario, mode: CompareMode = "full"): SimInput {
  const inputs = loadInputPackets(sc);
  const peers: Record<string, { mac: string; addresses: string[] }> = {};
  for (const [k, v] of Object.entries(sc.peers)) peers[k] = { mac: v.mac, addresses: [...v.addressText] };
  return {
    scenario: sc.name,
    mode,
    gapMs: sc.gapMs,
    host: sc.host,
    sysctl: sc.sysctl,
    rulesText: sc.rulesText,
    rulesFile: sc.rulesFile,
    ...(sc.ipsetsText !== undefined ? { ipsetsText: sc.ipsetsText, ipsetsFile: sc.ipsetsFile } : {}),
    ...(sc.local.size > 0 ? { local: Object.fromEntries(sc.local) } : {}),
    packets: inputs.map((i) => ({
      ...i.packet,
      iface: i.iface,
      link: {
        // A local packet's frame goes from the router to the peer.
        src: i.local ? sc.host.interfaces.find((x) => x.name === i.iface)!.mac : sc.peers[i.iface].mac,
        dst: i.local ? sc.peers[i.iface].mac : sc.host.interfaces.find((x) => x.name === i.iface)!.mac,
        ethertype: 0x0800,
        vlans: [],
      },
    })),
    peers,
  };
}

/** Every address configured on the router (any interface, lo included). */
export function routerAddresses(host: Host): Set<number> {
  const out = new Set<number>();
  for (const i of host.interfaces) for (const a of i.addresses) out.add(a.addr);
  return out;
}

/**
 * Runs the engine (if any) over every recording; in conntrack mode only over the recordings made with the
 * CTPROBE chain.
 */
export async function compareAll(
  engine?: SimulateScenario | null,
  mode: CompareMode = "full",
): Promise<ScenarioReport[]> {
  const sim = engine === undefined ? await findEngine() : (engine ?? undefined);
  const reports: ScenarioReport[] = [];
  for (const name of listRecordings()) {
    const rec = loadRecording(name);
    if (mode === "conntrack" && !hasCtprobe(rec)) continue;
    const sc = loadScenario(join(SCENARIO_ROOT, name));
    if (mode === "conntrack" && !plainRouterRules(sc.rulesText)) continue;
    const opts: CompareOptions = { mode, routerAddresses: routerAddresses(sc.host) };
    if (!sim) {
      reports.push(compareRecording(rec, undefined, undefined, opts));
      continue;
    }
    try {
      const out = await sim(simInput(sc, mode));
      reports.push(compareRecording(rec, out, undefined, opts));
    } catch (e) {
      const why = `engine failed: ${(e as Error).message.split("\n")[0]}`;
      reports.push(compareRecording(rec, undefined, why, opts));
    }
  }
  return reports;
}

export function formatReport(
  reports: readonly ScenarioReport[],
  mode: CompareMode = "full",
  verbose = false,
): string {
  const yn = (b: boolean | undefined) => (b ? "ok" : "--");
  const cols: [keyof PacketVerdict, string][] =
    mode === "full"
      ? [
          ["trace", "trace"],
          ["egress", "egress"],
          ["conntrack", "conntrack"],
        ]
      : [
          ["ctstate", "ctstate"],
          ["conntrack", "conntrack"],
        ];
  const lines: string[] = [];
  lines.push(
    `${"scenario".padEnd(28)} ${"pkt".padStart(3)}  ${cols.map(([, h]) => h.padEnd(9)).join(" ")}  note`,
  );
  for (const r of reports) {
    if (r.error) {
      lines.push(
        `${r.scenario.padEnd(28)} ${"*".padStart(3)}  ${cols.map(() => "--".padEnd(9)).join(" ")}  ${r.error}`,
      );
      continue;
    }
    for (const p of r.packets) {
      const head = `${r.scenario.padEnd(28)} ${String(p.index).padStart(3)}  ${cols
        .map(([k]) => yn(p[k] as boolean | undefined).padEnd(9))
        .join(" ")}`;
      if (verbose && p.diffs.length > 1) {
        lines.push(head.trimEnd());
        for (const d of p.diffs) lines.push(`      ${d}`);
      } else lines.push(`${head}  ${p.diffs[0] ?? ""}`.trimEnd());
    }
  }
  const t = totals(reports);
  lines.push(
    mode === "full"
      ? `total: ${t.all}/${t.packets} packets agree on everything (${t.agreement}%); trace ${t.trace}, egress ${t.egress}, conntrack ${t.conntrack}`
      : `total (conntrack only, ${reports.length} CTPROBE recordings): ${t.all}/${t.packets} packets agree on ctstate and conntrack (${t.agreement}%); ctstate ${t.ctstate}, conntrack ${t.conntrack}`,
  );
  return `${lines.join("\n")}\n`;
}

export function parseArgs(argv: readonly string[]): { mode: CompareMode; verbose: boolean } | string {
  let mode: CompareMode = "full";
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--verbose" || a === "-v") verbose = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v !== "conntrack") return `--only: got "${v ?? ""}", want "conntrack"`;
      mode = "conntrack";
    } else return `unknown argument "${a}" (usage: compare.ts [--only conntrack] [--verbose])`;
  }
  return { mode, verbose };
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === "string") {
    process.stderr.write(`compare: ${args}\n`);
    process.exit(2);
  }
  const engine =
    args.mode === "conntrack" ? (await import("./ctreplay_engine")).simulateConntrackOnly : undefined;
  compareAll(engine, args.mode).then((reports) =>
    process.stdout.write(formatReport(reports, args.mode, args.verbose)),
  );
}
