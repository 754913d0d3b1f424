/**
 * Kernel oracle recorder. Run as root:
 *
 *     npx tsx test/oracle/record.ts [scenario-dir ...]      # default: every test/oracle/scenarios/*
 *
 * For each scenario it builds the namespaces described by the scenario (./netns.ts), injects the packets of
 * packets.txt one at a time on the peer end of their ingress interface, and records for each packet the kernel's
 * TRACE lines, the frames that left the router and `conntrack -L -o extended`, into
 * test/oracle/recordings/<name>.json. Namespaces are deleted on success, failure and Ctrl-C.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseTcpdumpText } from "../../src/wire/text";
import { encodeEthernet } from "../../src/wire/ipv4";
import type { Packet } from "../../src/wire/packet";
import { KmsgReader, Lab, missingPrerequisite, tcpdumpText, toolVersions } from "./netns";
import { completeChecksum, readPcap, toHex, writePcap } from "./pcap";
import {
  ORACLE_DIR,
  RECORDING_ROOT,
  SCENARIO_ROOT,
  listScenarios,
  loadScenario,
  type RecordedEgress,
  type RecordedPacket,
  type Recording,
  type LocalOwner,
  type Scenario,
} from "./scenario";

export interface InputPacket {
  readonly index: number;
  readonly text: string;
  readonly iface: string;
  readonly packet: Packet;
  readonly frame: Uint8Array;
  /** Sent by the router itself as this uid/gid (scenario key `local`), not injected. */
  readonly local?: LocalOwner;
}

/** Splits packets.txt into one text block per packet (a line plus its indented continuation lines). */
export function packetBlocks(text: string): { text: string; line: number }[] {
  const blocks: { text: string; line: number }[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    if (/^\s/.test(line) && blocks.length > 0) blocks[blocks.length - 1].text += `\n${line}`;
    else blocks.push({ text: line, line: i + 1 });
  });
  return blocks;
}

/** Parses and encodes the scenario's packets with the library (the same reader ctsim uses). */
export function loadInputPackets(sc: Scenario): InputPacket[] {
  const ifaces = sc.host.interfaces.filter((i) => i.name !== "lo");
  const defaultIface = ifaces.length === 1 ? ifaces[0].name : undefined;
  const file = `${sc.name}/${sc.packetsFile}`;
  const blocks = packetBlocks(sc.packetsText);
  for (const k of sc.local.keys())
    if (k >= blocks.length) throw new Error(`${sc.name}/scenario.yaml: local.${k}: no such packet`);
  return blocks.map((b, index) => {
    // Pad with empty lines so the parser's line numbers match the file.
    const res = parseTcpdumpText("\n".repeat(b.line - 1) + b.text, { file, defaultIface });
    if (res.errors.length > 0) throw new Error(`${file}:${b.line}: ${res.errors[0].message}`);
    if (res.packets.length !== 1)
      throw new Error(`${file}:${b.line}: got ${res.packets.length} packets, want 1`);
    const packet = res.packets[0];
    const iface = packet.iface ?? defaultIface;
    const ri = ifaces.find((i) => i.name === iface);
    if (!ri) throw new Error(`${file}:${b.line}: packet names no known ingress interface (${iface})`);
    const local = sc.local.get(index);
    if (local) {
      // Sent by the router: "<oif> Out", UDP from one of its addresses (what the sender can reproduce).
      if (packet.direction !== "Out")
        throw new Error(`${file}:${b.line}: a local packet (scenario key local.${index}) must be "Out"`);
      if (packet.l4.kind !== "udp")
        throw new Error(`${file}:${b.line}: local packets are UDP only (the sender uses sendto)`);
      const frame = encodeEthernet(packet, { src: ri.mac, dst: sc.peers[ri.name].mac });
      return { index, text: b.text, iface: ri.name, packet, frame, local };
    }
    if (packet.direction === "Out")
      throw new Error(`${file}:${b.line}: input packets must be "In" (or listed under local:)`);
    const frame = encodeEthernet(packet, { src: sc.peers[ri.name].mac, dst: ri.mac });
    return { index, text: b.text, iface: ri.name, packet, frame };
  });
}

/**
 * Sorts kernel log messages into TRACE lines (from `TRACE: ` on) and LOG target lines (`<prefix>IN=... OUT=...`,
 * verbatim: the prefix is the rule's --log-prefix). Anything else (other kernel messages) is dropped.
 */
export function splitKmsg(messages: readonly string[]): { trace: string[]; log: string[] } {
  const trace: string[] = [];
  const log: string[] = [];
  for (const m of messages) {
    const at = m.indexOf("TRACE: ");
    if (at >= 0) trace.push(m.slice(at));
    else if (/IN=\S* OUT=\S* /.test(m)) log.push(m);
  }
  return { trace, log };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Settle time after each injection before reading TRACE lines and conntrack. */
const SETTLE_MS = 120;

export async function recordScenario(sc: Scenario, tag: string, command: string): Promise<Recording> {
  const inputs = loadInputPackets(sc);
  const work = mkdtempSync(join(tmpdir(), `ctso-${sc.name}-`));
  const lab = new Lab(sc, tag, work);
  const onSignal = () => {
    lab.destroy();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const kmsg = new KmsgReader();
  try {
    lab.build();
    await lab.startListeners();
    await lab.startCaptures();
    await sleep(100);
    kmsg.drain();
    const windows: number[] = []; // wall-clock start (µs) of each packet's window
    const results: { trace: string[]; log: string[]; conntrack: string[] }[] = [];
    for (const inp of inputs) {
      const pcap = join(work, `in-${inp.index}.pcap`);
      writeFileSync(pcap, writePcap([{ tsSec: 0, tsUsec: 0, data: inp.frame }]));
      windows.push(Date.now() * 1000 - 2000);
      if (inp.local) lab.sendLocal(inp.packet, inp.local);
      else lab.inject(inp.iface, pcap);
      await sleep(SETTLE_MS);
      const { trace, log } = splitKmsg(kmsg.drain());
      results.push({ trace, log, conntrack: lab.conntrackList() });
      const next = inputs[inp.index + 1];
      if (next) {
        const tsGapMs =
          (next.packet.tsSec - inp.packet.tsSec) * 1000 + (next.packet.tsNsec - inp.packet.tsNsec) / 1e6;
        const gap = Math.max(sc.gapMs, Number.isFinite(tsGapMs) ? tsGapMs : 0);
        await sleep(Math.max(0, gap - SETTLE_MS));
      }
    }
    await sleep(200);
    const files = await lab.stopCaptures();
    const egress: RecordedEgress[][] = inputs.map(() => []);
    for (const [iface, file] of Object.entries(files).sort()) {
      const frames = readPcap(new Uint8Array(readFileSync(file)));
      if (frames.length === 0) continue;
      const fixed = frames.map((f) => {
        const c = completeChecksum(f.data);
        return { ...f, data: c.frame, completed: c.completed };
      });
      const fixedFile = join(work, `egress-${iface}-fixed.pcap`);
      writeFileSync(fixedFile, writePcap(fixed));
      const texts = tcpdumpText(fixedFile);
      if (texts.length !== fixed.length)
        throw new Error(`tcpdump printed ${texts.length} records for ${fixed.length} frames on ${iface}`);
      fixed.forEach((f, i) => {
        const us = f.tsSec * 1e6 + f.tsUsec;
        let idx = -1;
        for (let k = 0; k < windows.length; k++) if (us >= windows[k]) idx = k;
        if (idx < 0) return; // before the first packet: not ours
        egress[idx].push({
          iface,
          text: texts[i],
          hex: toHex(f.data),
          ...(f.completed ? { checksumCompleted: true } : {}),
        });
      });
    }
    const v = toolVersions();
    const packets: RecordedPacket[] = inputs.map((inp, i) => ({
      index: inp.index,
      input: {
        ...(inp.local ? { local: inp.local } : {}),
        text: inp.text,
        iface: inp.iface,
        hex: toHex(inp.frame),
      },
      trace: results[i].trace,
      log: results[i].log,
      egress: egress[i],
      conntrack: results[i].conntrack,
    }));
    return {
      scenario: sc.name,
      description: sc.description,
      provenance: {
        kernel: v.kernel,
        date: new Date().toISOString(),
        iptables: v.iptables,
        conntrack: v.conntrack,
        tcpdump: v.tcpdump,
        command,
      },
      packets,
    };
  } finally {
    kmsg.close();
    lab.destroy();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    rmSync(work, { recursive: true, force: true });
  }
}

export function recordingJson(rec: Recording): string {
  return `${JSON.stringify(rec, null, 2)}\n`;
}

async function main(argv: string[]): Promise<number> {
  const missing = missingPrerequisite();
  if (missing) {
    process.stderr.write(`record: cannot record: ${missing}\n`);
    return 2;
  }
  const dirs = argv.length > 0 ? argv : listScenarios().map((n) => join(SCENARIO_ROOT, n));
  mkdirSync(RECORDING_ROOT, { recursive: true });
  let failed = 0;
  for (const dir of dirs) {
    const sc = loadScenario(dir);
    const command = `npx tsx test/oracle/record.ts ${relative(join(ORACLE_DIR, "../.."), sc.dir)}`;
    const started = Date.now();
    try {
      const rec = await recordScenario(sc, `${process.pid % 10000}`, command);
      writeFileSync(join(RECORDING_ROOT, `${sc.name}.json`), recordingJson(rec));
      const eg = rec.packets.reduce((n, p) => n + p.egress.length, 0);
      const tr = rec.packets.reduce((n, p) => n + p.trace.length, 0);
      process.stdout.write(
        `${sc.name}: ${rec.packets.length} packets, ${tr} trace lines, ${eg} egress frames (${Date.now() - started} ms)\n`,
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
