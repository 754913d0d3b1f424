/**
 * Throughput benchmark for the capture reader: generates a 1,000,000-packet Ethernet capture (TCP with options,
 * UDP, ICMP echo and ICMP errors quoting a datagram; source MACs cycle through `--macs` clients, as in the
 * trace benchmark's 200 clients) in os.tmpdir(), then reads it through CaptureReader in fixed-size chunks and
 * reports packets/s, MB/s, the median wall and CPU ns/packet over the runs, and peak RSS.
 *
 *   npx tsx bench/pcap-read.ts [--format pcap|pcapng] [--packets N] [--chunk 65536] [--macs 200] [--runs 5]
 *                              [--transfer] [--keep]
 *
 * `--format pcapng` (what bench/trace.ts feeds the CLI) writes one IDB (if_name eth0, if_tsresol 9) and
 * Enhanced Packet Blocks with nanosecond timestamps and an epb_flags option, as src/wire/pcapng_writer.ts does.
 * By default one buffer is reused for every read, so the reader copies each chunk; `--transfer` reads into a
 * fresh buffer each time and hands it over (`push(chunk, true)`), as the CLI does with its read stream.
 * The file is deleted afterwards unless --keep is given; it is never written inside the repository.
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureReader } from "../src/wire/capture";
import { encodeEthernet } from "../src/wire/ipv4";
import type { Packet, TcpOption } from "../src/wire/packet";
import { TCP_ACK, TCP_PSH, TCP_SYN } from "../src/wire/packet";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const PACKETS = arg("--packets", 1_000_000);
const CHUNK = arg("--chunk", 1 << 20);
const KEEP = process.argv.includes("--keep");
const TRANSFER = process.argv.includes("--transfer");
const MACS = arg("--macs", 200);
const RUNS = arg("--runs", 5);
const fi = process.argv.indexOf("--format");
const FORMAT = fi > 0 ? process.argv[fi + 1] : "pcap";
if (FORMAT !== "pcap" && FORMAT !== "pcapng") throw new Error(`--format: got ${FORMAT}, want pcap or pcapng`);

const ipBase = {
  ihl: 20,
  tos: 0,
  totalLength: 0,
  id: 1,
  rf: false,
  df: true,
  mf: false,
  fragOffset: 0,
  ttl: 64,
  checksum: 0,
  options: new Uint8Array(0),
};

function templates(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const eth = { src: "02:00:00:00:00:01", dst: "02:00:00:00:00:02" };
  const common = { tsSec: 0, tsNsec: 0, ipChecksum: "unknown", l4Checksum: "unknown" } as const;
  for (let i = 0; i < 64; i++) {
    const src = 0x0a000001 + (i % 7);
    const dst = 0xc0000201 + (i % 5);
    const kind = i % 8;
    let p: Packet;
    if (kind < 5) {
      const syn = kind === 0;
      const options: TcpOption[] = syn
        ? [
            { kind: "mss", value: 1460 },
            { kind: "sackPermitted" },
            { kind: "timestamp", tsval: 1000 + i, tsecr: 0 },
            { kind: "nop" },
            { kind: "wscale", shift: 7 },
          ]
        : [{ kind: "nop" }, { kind: "nop" }, { kind: "timestamp", tsval: 2000 + i, tsecr: 1000 + i }];
      const payloadLength = syn ? 0 : [0, 40, 100, 512, 1200][kind];
      p = {
        ...common,
        ip: { ...ipBase, protocol: 6, src, dst },
        l4: {
          kind: "tcp",
          srcPort: 40000 + i,
          dstPort: 443,
          seq: 123456 * i,
          ack: syn ? 0 : 654321 * i,
          dataOffset: 20,
          reserved: 0,
          flags: syn ? TCP_SYN : TCP_ACK | (payloadLength ? TCP_PSH : 0),
          window: 502,
          checksum: 0,
          urgentPointer: 0,
          options,
        },
        payloadLength,
        payload: new Uint8Array(payloadLength).fill(i),
      };
    } else if (kind < 7) {
      p = {
        ...common,
        ip: { ...ipBase, protocol: 17, src, dst },
        l4: { kind: "udp", srcPort: 5353 + i, dstPort: 53, length: 0, checksum: 0 },
        payloadLength: 32 + i,
      };
    } else if (i % 16 === 7) {
      p = {
        ...common,
        ip: { ...ipBase, protocol: 1, src, dst },
        l4: { kind: "icmp", type: 8, code: 0, checksum: 0, restOfHeader: (i << 16) | 1 },
        payloadLength: 56,
      };
    } else {
      p = {
        ...common,
        ip: { ...ipBase, protocol: 1, src: dst, dst: src },
        l4: {
          kind: "icmp",
          type: 3,
          code: 3,
          checksum: 0,
          restOfHeader: 0,
          quote: {
            ip: { ...ipBase, protocol: 17, src, dst, totalLength: 60 },
            l4: Uint8Array.of(0x14, 0xe9, 0, 53, 0, 40, 0, 0),
          },
        },
        payloadLength: 0,
      };
    }
    out.push(encodeEthernet(p, eth));
  }
  return out;
}

function generate(path: string): number {
  const tpl = templates();
  const fd = openSync(path, "w");
  const buf = Buffer.alloc(4 << 20);
  let o = 0;
  if (FORMAT === "pcap") {
    buf.writeUInt32LE(0xa1b2c3d4, 0);
    buf.writeUInt16LE(2, 4);
    buf.writeUInt16LE(4, 6);
    buf.writeUInt32LE(65535, 16);
    buf.writeUInt32LE(1, 20);
    o = 24;
  } else {
    // SHB: byte-order magic, version 1.0, section length -1, no options.
    buf.writeUInt32LE(0x0a0d0d0a, 0);
    buf.writeUInt32LE(28, 4);
    buf.writeUInt32LE(0x1a2b3c4d, 8);
    buf.writeUInt16LE(1, 12);
    buf.writeUInt16LE(0, 14);
    buf.writeInt32LE(-1, 16);
    buf.writeInt32LE(-1, 20);
    buf.writeUInt32LE(28, 24);
    // IDB: Ethernet, snaplen 0, if_name "eth0", if_tsresol 9, end of options.
    const idb = 28;
    buf.writeUInt32LE(1, idb);
    buf.writeUInt32LE(40, idb + 4);
    buf.writeUInt16LE(1, idb + 8);
    buf.writeUInt32LE(0, idb + 12);
    buf.writeUInt16LE(2, idb + 16);
    buf.writeUInt16LE(4, idb + 18);
    buf.write("eth0", idb + 20, "latin1");
    buf.writeUInt16LE(9, idb + 24);
    buf.writeUInt16LE(1, idb + 26);
    buf.writeUInt8(9, idb + 28);
    buf.writeUInt32LE(0, idb + 32);
    buf.writeUInt32LE(40, idb + 36);
    o = idb + 40;
  }
  let total = 0;
  for (let i = 0; i < PACKETS; i++) {
    const f = tpl[(i * 7919) % tpl.length];
    const pad = (f.length + 3) & ~3;
    if (o + 64 + pad > buf.length) {
      writeSync(fd, buf, 0, o);
      total += o;
      o = 0;
    }
    const sec = 1_700_000_000 + Math.floor(i / 100_000);
    const usec = (i * 10) % 1_000_000;
    let data: number;
    if (FORMAT === "pcap") {
      buf.writeUInt32LE(sec, o);
      buf.writeUInt32LE(usec, o + 4);
      buf.writeUInt32LE(f.length, o + 8);
      buf.writeUInt32LE(f.length, o + 12);
      data = o + 16;
      o += 16 + f.length;
    } else {
      const len = 28 + pad + 12 + 4;
      const ns = BigInt(sec) * 1_000_000_000n + BigInt(usec) * 1000n;
      buf.writeUInt32LE(6, o);
      buf.writeUInt32LE(len, o + 4);
      buf.writeUInt32LE(0, o + 8);
      buf.writeUInt32LE(Number(ns >> 32n), o + 12);
      buf.writeUInt32LE(Number(ns & 0xffffffffn), o + 16);
      buf.writeUInt32LE(f.length, o + 20);
      buf.writeUInt32LE(f.length, o + 24);
      data = o + 28;
      buf.fill(0, data + f.length, data + pad);
      const opt = data + pad;
      buf.writeUInt16LE(2, opt); // epb_flags: inbound
      buf.writeUInt16LE(4, opt + 2);
      buf.writeUInt32LE(1, opt + 4);
      buf.writeUInt32LE(0, opt + 8); // opt_endofopt
      buf.writeUInt32LE(len, opt + 12);
      o += len;
    }
    buf.set(f, data);
    buf[data + 11] = i % MACS; // source MAC 02:00:00:00:00:NN
  }
  writeSync(fd, buf, 0, o);
  total += o;
  closeSync(fd);
  return total;
}

function read(path: string): { packets: number; skipped: number; seconds: number; cpuSeconds: number } {
  const fd = openSync(path, "r");
  let chunk = Buffer.alloc(CHUNK);
  const reader = new CaptureReader({ file: path, defaultIface: "eth0" });
  let packets = 0;
  let skipped = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (;;) {
    if (TRANSFER) chunk = Buffer.allocUnsafeSlow(CHUNK);
    const n = readSync(fd, chunk, 0, CHUNK, null);
    if (n === 0) break;
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, n);
    for (const f of reader.push(bytes, TRANSFER)) {
      if (f.kind === "packet") packets++;
      else skipped++;
    }
  }
  reader.end();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  closeSync(fd);
  return { packets, skipped, seconds, cpuSeconds: (c.user + c.system) / 1e6 };
}

const path = join(tmpdir(), `ctsim-bench-${process.pid}.${FORMAT}`);
const g0 = process.hrtime.bigint();
const bytes = generate(path);
console.log(
  `generated ${PACKETS} packets, ${(bytes / 1e6).toFixed(1)} MB in ${(Number(process.hrtime.bigint() - g0) / 1e9).toFixed(2)} s: ${path}`,
);
try {
  const rates: number[] = [];
  const cpuNs: number[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const r = read(path);
    rates.push(r.packets / r.seconds);
    cpuNs.push((r.cpuSeconds * 1e9) / r.packets);
    console.log(
      `run ${run}: ${FORMAT}, chunk ${CHUNK} B${TRANSFER ? " transferred" : ""}: ${r.packets} packets (${r.skipped} skipped) in ${r.seconds.toFixed(3)} s = ` +
        `${Math.round(r.packets / r.seconds).toLocaleString("en-US")} packets/s, ${(bytes / 1e6 / r.seconds).toFixed(1)} MB/s, ` +
        `${r.cpuSeconds.toFixed(3)} s CPU`,
    );
  }
  const median = rates.sort((a, b) => a - b)[rates.length >> 1];
  const medianCpu = cpuNs.sort((a, b) => a - b)[cpuNs.length >> 1];
  // CPU time (user + system, GC threads included) is steadier than wall time on a shared machine.
  console.log(
    `median ${Math.round(median).toLocaleString("en-US")} packets/s = ${(1e9 / median).toFixed(0)} ns/packet wall, ` +
      `${medianCpu.toFixed(0)} ns/packet CPU`,
  );
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
} finally {
  if (!KEEP) unlinkSync(path);
}
