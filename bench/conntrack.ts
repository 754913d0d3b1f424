/**
 * Throughput and memory benchmark for the conntrack core alone (src/conntrack/core.ts): nf_conntrack_in at
 * PRE_ROUTING plus nf_confirm for every packet, as a forwarding host with no rules would call them.
 *
 *   npx tsx bench/conntrack.ts [--conns 100000] [--window 1000] [--runs 3]
 *   node --expose-gc --import tsx bench/conntrack.ts      (exact heap figures: GC before each measurement)
 *
 * Traffic: `--conns` TCP connections of 10 packets each (1,000,000 packets by default), generated in memory as
 * Packet values before any timing: SYN, SYN/ACK, ACK, data, data+ACK back, ACK, data, FIN/ACK, FIN/ACK back,
 * last ACK. Connections run in blocks of `--window` at a time, step by step inside a block (so about that many
 * handshakes and teardowns are in flight), and every connection stays in the table (TIME_WAIT, 120 s) at the end.
 * The clock advances 1 µs per packet, so nothing expires.
 *
 * Reports: packets/s over the whole mix (best of `--runs`), packets/s for established data alone (a second pass
 * of the data packets over the same table), and heap bytes per tracked connection (heap used after GC with the
 * table full, minus heap used after GC before the table existed, divided by the entries in the table).
 * The run fails (exit 1) when any packet comes out INVALID or the table does not hold every connection.
 */
import { Conntrack } from "../src/conntrack/core";
import { tcpSegment } from "./packets";
import type { Packet } from "../src/wire/packet";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from "../src/wire/packet";
import { IP_CT_NEW, NF_INET_PRE_ROUTING } from "../src/conntrack/types";
import type { CtInfo } from "../src/conntrack/types";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const CONNS = arg("--conns", 100_000);
const WINDOW = arg("--window", 1000);
const RUNS = arg("--runs", 3);
const STEPS = 10;

const gc = (globalThis as { gc?: () => void }).gc;

function heapUsed(): number {
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}

function segment(
  src: number,
  dst: number,
  sport: number,
  dport: number,
  flags: number,
  seq: number,
  ack: number,
  len: number,
): Packet {
  return tcpSegment({ src, dst, sport, dport, flags, seq, ack, len });
}

/** The 10 packets of connection `n`, in order. */
function connection(n: number): Packet[] {
  const client = (0x0a000000 + (n >>> 8)) >>> 0; // 10.x.y.z, 256 connections per client address
  const server = (0xc6336400 + (n % 50)) >>> 0; // 198.51.100.0..49
  const sport = 1024 + (n & 0xff) * 200 + ((n >>> 8) % 200);
  const dport = 443;
  const c = (n * 2654435761) >>> 0; // client ISN
  const s = (n * 40503 + 12345) >>> 0; // server ISN
  const A = TCP_ACK;
  const o = (f: number, seq: number, ack: number, len: number) =>
    segment(client, server, sport, dport, f, seq, ack, len);
  const r = (f: number, seq: number, ack: number, len: number) =>
    segment(server, client, dport, sport, f, seq, ack, len);
  return [
    o(TCP_SYN, c, 0, 0),
    r(TCP_SYN | A, s, c + 1, 0),
    o(A, c + 1, s + 1, 0),
    o(A | TCP_PSH, c + 1, s + 1, 100),
    r(A | TCP_PSH, s + 1, c + 101, 1000),
    o(A, c + 101, s + 1001, 0),
    o(A | TCP_PSH, c + 101, s + 1001, 50),
    o(A | TCP_FIN, c + 151, s + 1001, 0),
    r(A | TCP_FIN, s + 1001, c + 152, 0),
    o(A, c + 152, s + 1002, 0),
  ];
}

/** Data packets (steps 3..6) of the established phase, for the second pass. */
const DATA_STEPS = [3, 4, 5, 6];

function generate(): { all: Packet[]; data: Packet[] } {
  const all: Packet[] = new Array(CONNS * STEPS);
  const data: Packet[] = [];
  let k = 0;
  for (let base = 0; base < CONNS; base += WINDOW) {
    const end = Math.min(CONNS, base + WINDOW);
    const conns: Packet[][] = [];
    for (let n = base; n < end; n++) conns.push(connection(n));
    for (let step = 0; step < STEPS; step++) for (const c of conns) all[k++] = c[step];
    for (const step of DATA_STEPS) for (const c of conns) data.push(c[step]);
  }
  return { all, data };
}

interface RunResult {
  seconds: number;
  invalid: number;
  table: Conntrack;
}

function run(packets: readonly Packet[], table = new Conntrack()): RunResult {
  let invalid = 0;
  let now = 1000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < packets.length; i++) {
    now += 1e-6;
    const res = table.in(packets[i], NF_INET_PRE_ROUTING, now);
    if (res.ct) table.confirm(res.ct, now, (res.ctinfo ?? IP_CT_NEW) as CtInfo);
    else invalid++;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, invalid, table };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function main(): void {
  const { all, data } = generate();
  console.log(
    `conntrack bench: ${fmt(all.length)} TCP packets over ${fmt(CONNS)} connections (window ${WINDOW}), ` +
      `node ${process.version}${gc ? ", --expose-gc" : " (no --expose-gc: heap figures are approximate)"}`,
  );

  let best = Infinity;
  let bestEst = Infinity;
  let bytesPerConn = 0;
  for (let r = 0; r < RUNS; r++) {
    const before = heapUsed();
    const res = run(all);
    const after = heapUsed();
    const count = res.table.count;
    if (res.invalid !== 0 || count !== CONNS) {
      console.error(`FAIL: got ${res.invalid} INVALID packets and ${count} entries, want 0 and ${CONNS}`);
      process.exit(1);
    }
    bytesPerConn = (after - before) / count;
    best = Math.min(best, res.seconds);
    // Established data again over the full table: the lookup + tcp_in_window path without creation.
    const est = run(data, res.table);
    bestEst = Math.min(bestEst, est.seconds);
    console.log(
      `  run ${r + 1}: mix ${fmt(all.length / res.seconds)} pkt/s, established ${fmt(data.length / est.seconds)} pkt/s, ` +
        `${fmt(bytesPerConn)} bytes/connection (${fmt(count)} entries)`,
    );
  }
  console.log(`mix (in + confirm):   ${fmt(all.length / best)} packets/s`);
  console.log(`established only:     ${fmt(data.length / bestEst)} packets/s`);
  console.log(`memory:               ${fmt(bytesPerConn)} bytes per tracked connection`);
}

main();
