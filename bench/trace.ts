/**
 * Throughput benchmark for `ctsim trace` (issue 4): a kube-proxy-sized rule set with MASQUERADE and a capture
 * of established flows plus new connections through one emulated Kubernetes node (src/sim/host.ts).
 *
 *   npx tsx bench/trace.ts [--rules 10000] [--packets 1000000] [--flows 1000] [--conn-packets 20]
 *                          [--endpoints 2] [--runs 1] [--mode quiet|trace|split|blocks] [--no-cli] [--no-inproc]
 *                          [--keep]
 *
 * Rule set (iptables-save, the shape kube-proxy's iptables mode writes): nat KUBE-SERVICES with one
 * `-d VIP/32 -p tcp -m comment -m tcp --dport P -j KUBE-SVC-x` rule per service and a last
 * `-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`; per service a KUBE-SVC chain (the `! -s 10.0.0.0/8`
 * KUBE-MARK-MASQ rule, then `-m statistic --mode random --probability 1/n` jumps to its KUBE-SEP chains) and per
 * endpoint a KUBE-SEP chain (hairpin KUBE-MARK-MASQ, `-j DNAT --to-destination ep:8080`); KUBE-MARK-MASQ,
 * KUBE-POSTROUTING (`MARK --xor-mark`, MASQUERADE); filter FORWARD -> KUBE-FORWARD (INVALID drop, mark accept,
 * RELATED,ESTABLISHED accept). `--rules N` picks the number of services so the total is close to N
 * (13 fixed rules + (2 + 3 x endpoints) per service).
 *
 * Capture: external clients (192.168.99.0/24 on eth0) open TCP connections to random services; `--flows`
 * connections are in flight at once, interleaved packet by packet; each has `--conn-packets` packets: SYN,
 * SYN/ACK, ACK, data both ways, FIN, FIN/ACK, ACK. The server side is the endpoint pod on cni0 answering the
 * masqueraded address. Which endpoint `-m statistic` picked and which port MASQUERADE chose are only known by
 * running the packets, so the capture is produced by a generation pass through a HostSim with the same seed;
 * the simulator is deterministic, so every measured run repeats those decisions (checked: every packet must
 * leave the host, none INVALID or dropped). Files go to os.tmpdir() and are deleted unless --keep.
 *
 * Measured:
 *   - in-process: HostSim.receive for every packet, packets decoded from the pcapng beforehand in chunks (decode
 *     not timed); "quiet" reads only the fate, with HostSim's `quiet` option and receive's `consume` as
 *     `ctsim trace --quiet` sets them; "trace" also formats the text output (TRACE lines and summaries, as
 *     `ctsim trace` prints them) into a discarded string; "split" (only with `--mode split`) is "quiet" with a
 *     timer around each packet, reporting the mean time of connection-opening SYNs and of every other packet
 *     apart (the timer's own ~0.1 µs included in both); "blocks" (only with `--mode blocks`) runs
 *     bench/trace_blocks.ts, bundled, in a fresh process set up as `ctsim trace --quiet` sets itself up (rules
 *     loaded with V8's optimizing compiler held back, the same garbage-collector flag), and times each block of
 *     50,000 packets, decoding included: the first block carries the JIT warm-up that the warm in-process modes
 *     above do not see;
 *   - CLI: `node bin/ctsim.js trace ... --quiet` and `... > /dev/null` (full TRACE output), wall time of the
 *     whole process (start-up, rule loading, decoding included); the --quiet line also shows the CLI's own
 *     summary, whose packets/s counts from the first packet read to the last (decoding included, start-up and
 *     rule loading not).
 *
 * Run it as `npx tsx bench/trace.ts`. (Larger young-generation semi-spaces, `--max-semi-space-size=64`, measured
 * no difference here: GC takes ~0.2 s of a 1,000,000-packet run either way.)
 */
import { kubeRulesText, servicesFor, svcPort, vip } from "./kube_rules";
import { tcpSegment } from "./packets";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Chalk } from "chalk";
import { CaptureReader } from "../src/wire/capture";
import { PcapngWriter } from "../src/wire/pcapng_writer";
import type { LinkHeader, Packet } from "../src/wire/packet";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from "../src/wire/packet";
import { parseHostFile } from "../src/host/hostfile";
import { loadRuleset } from "../src/netfilter/parse_script";
import { ruleCount } from "../src/netfilter/ruleset";
import { HostSim } from "../src/sim/host";
import { formatReportText } from "../src/cli/commands/trace";
import { buildSync } from "esbuild";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const flag = (name: string) => process.argv.includes(name);

const RULES = arg("--rules", 10_000);
const PACKETS = arg("--packets", 1_000_000);
const FLOWS = arg("--flows", 1000);
const CONN_PACKETS = Math.max(6, arg("--conn-packets", 20));
const ENDPOINTS = Math.max(1, arg("--endpoints", 2));
const RUNS = arg("--runs", 1);
const SEED = 7;
const MODE_ARG = process.argv.includes("--mode")
  ? process.argv[process.argv.indexOf("--mode") + 1]
  : undefined;
const MODES = (["quiet", "trace", "split", "blocks"] as const).filter((m) =>
  MODE_ARG === undefined ? m !== "split" && m !== "blocks" : MODE_ARG === m,
);
const CHUNK = 65536;

const SERVICES = servicesFor(RULES, ENDPOINTS);

const NODE_ETH0 = 0xc0a8630b; // 192.168.99.11
const NODE_CNI0 = 0x0ab400fe; // 10.180.0.254
const ETH0_MAC = "02:00:00:00:00:01";
const CNI0_MAC = "02:00:00:00:0a:01";
const TS0 = 1_700_000_000;
const STEP_NS = 20_000;

/** Deterministic generator for the bench's own choices (not the simulator's). */
let lcg = 12345;
function rand(n: number): number {
  lcg = (Math.imul(lcg, 1103515245) + 12345) >>> 0;
  return (lcg >>> 8) % n;
}

const rulesText = (): string => kubeRulesText(SERVICES, ENDPOINTS);

const HOST_YAML = `hostname: node1
interfaces:
  - { name: eth0, mac: "${ETH0_MAC}", addresses: ["192.168.99.11/24"] }
  - { name: cni0, mac: "${CNI0_MAC}", addresses: ["10.180.0.254/16"] }
routes:
  - default via 192.168.99.1 dev eth0
sysctl:
  net.ipv4.ip_forward: 1
`;

function tcp(
  src: number,
  dst: number,
  sport: number,
  dport: number,
  flags: number,
  seq: number,
  ack: number,
  len: number,
  iface: string,
  link: LinkHeader,
  n: number,
): Packet {
  const ns = n * STEP_NS;
  return tcpSegment({
    src,
    dst,
    sport,
    dport,
    flags,
    seq,
    ack,
    len,
    id: n & 0xffff,
    window: 65535,
    iface,
    link,
    tsSec: TS0 + Math.floor(ns / 1e9),
    tsNsec: ns % 1e9,
    checksums: "unknown",
  });
}

interface Flow {
  client: number;
  cport: number;
  svc: number;
  step: number;
  cseq: number;
  sseq: number;
  /** After the SYN: the endpoint and the masqueraded client address/port, from the generation pass. */
  ep?: number;
  mport?: number;
  maddr?: number;
  clientLink: LinkHeader;
}

const podLink: LinkHeader = { src: "02:00:00:00:0b:02", dst: CNI0_MAC, ethertype: 0x0800, vlans: [] };
const portCounters = new Map<number, number>();

function newFlow(): Flow {
  const client = 0xc0a86300 + 20 + rand(200);
  const next = portCounters.get(client) ?? 0;
  portCounters.set(client, next + 1);
  return {
    client,
    cport: 1024 + (next % 60000),
    svc: rand(SERVICES),
    step: 0,
    cseq: rand(1 << 30),
    sseq: rand(1 << 30),
    clientLink: {
      src: `02:00:00:99:00:${(client & 0xff).toString(16).padStart(2, "0")}`,
      dst: ETH0_MAC,
      ethertype: 0x0800,
      vlans: [],
    },
  };
}

/** The flow's next packet (client side or server side), advancing its sequence numbers. */
function nextPacket(f: Flow, n: number): { pkt: Packet; done: boolean } {
  const k = f.step++;
  const last = CONN_PACKETS - 1;
  const v = vip(f.svc);
  const p = svcPort(f.svc);
  const cli = (flags: number, len: number) =>
    tcp(f.client, v, f.cport, p, flags, f.cseq, f.sseq, len, "eth0", f.clientLink, n);
  const srv = (flags: number, len: number) =>
    tcp(f.ep!, f.maddr!, 8080, f.mport!, flags, f.sseq, f.cseq, len, "cni0", podLink, n);
  let pkt: Packet;
  if (k === 0) {
    pkt = tcp(f.client, v, f.cport, p, TCP_SYN, f.cseq, 0, 0, "eth0", f.clientLink, n);
    f.cseq++;
  } else if (k === 1) {
    pkt = srv(TCP_SYN | TCP_ACK, 0);
    f.sseq++;
  } else if (k === 2) pkt = cli(TCP_ACK, 0);
  else if (k === last - 2) {
    pkt = cli(TCP_FIN | TCP_ACK, 0);
    f.cseq++;
  } else if (k === last - 1) {
    pkt = srv(TCP_FIN | TCP_ACK, 0);
    f.sseq++;
  } else if (k === last) pkt = cli(TCP_ACK, 0);
  else if (k % 2 === 1) {
    pkt = cli(TCP_PSH | TCP_ACK, 100);
    f.cseq += 100;
  } else {
    pkt = srv(TCP_PSH | TCP_ACK, 200);
    f.sseq += 200;
  }
  return { pkt, done: k === last };
}

function load(rulesPath: string, hostPath: string, quiet = false): HostSim {
  const loaded = loadRuleset(readFileSync(rulesPath, "utf8"), { file: rulesPath });
  if (loaded.errors.length) throw new Error(`rules: ${loaded.errors[0].message}`);
  const host = parseHostFile(readFileSync(hostPath, "utf8"), hostPath);
  return new HostSim({ host, ruleset: loaded.ruleset, seed: SEED, quiet });
}

/** Generation pass: builds the capture by running it, so replies answer the NAT the simulator chose. */
function generate(rulesPath: string, hostPath: string, capPath: string): void {
  const sim = load(rulesPath, hostPath);
  const writer = new PcapngWriter({ linkType: "ethernet" });
  const fd = openSync(capPath, "w");
  const active: Flow[] = [];
  for (let i = 0; i < FLOWS; i++) active.push(newFlow());
  let slot = 0;
  for (let n = 0; n < PACKETS; n++) {
    const f = active[slot];
    const { pkt, done } = nextPacket(f, n);
    const r = sim.receive(pkt);
    const fate = r.packets[0]?.fate;
    if (fate?.kind !== "left")
      throw new Error(
        `generation: packet ${n} (${f.step - 1} of its flow) did not leave: ${JSON.stringify(fate)}`,
      );
    if (f.step === 1) {
      const out = r.egress[0].packet;
      if (out.l4.kind !== "tcp") throw new Error("generation: egress is not TCP");
      f.ep = out.ip.dst;
      f.maddr = out.ip.src;
      f.mport = out.l4.srcPort;
    }
    writeSync(fd, writer.write(pkt));
    if (done) active[slot] = newFlow();
    slot = (slot + 1) % active.length;
  }
  writeSync(fd, writer.finish());
  closeSync(fd);
}

function* chunks(capPath: string): Generator<Packet[]> {
  const fd = openSync(capPath, "r");
  const buf = Buffer.alloc(1 << 20);
  const reader = new CaptureReader({ file: capPath });
  let batch: Packet[] = [];
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      const frames = n === 0 ? reader.end() : reader.push(buf.subarray(0, n));
      for (const f of frames) {
        if (f.kind !== "packet") continue;
        batch.push(f.packet);
        if (batch.length === CHUNK) {
          yield batch;
          batch = [];
        }
      }
      if (n === 0) break;
    }
    if (batch.length) yield batch;
  } finally {
    closeSync(fd);
  }
}

function inProcess(
  rulesPath: string,
  hostPath: string,
  capPath: string,
  mode: "quiet" | "trace" | "split",
): {
  packets: number;
  seconds: number;
  cpu: number;
  bytes: number;
  notLeft: number;
  /** split mode: nanoseconds and count of connection-opening SYNs, and of the other packets. */
  syn: { ns: number; n: number };
  other: { ns: number; n: number };
} {
  const sim = load(rulesPath, hostPath, mode !== "trace");
  const syn = { ns: 0, n: 0 };
  const other = { ns: 0, n: 0 };
  const c = new Chalk({ level: 0 });
  let packets = 0;
  let notLeft = 0;
  let bytes = 0;
  let ns = 0n;
  let cpu = 0;
  for (const batch of chunks(capPath)) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    if (mode === "quiet") {
      for (const p of batch) {
        // As `ctsim trace --quiet` does: the packet is handed over and rewritten in place.
        const r = sim.receive(p, { consume: true });
        if (r.packets[0].fate?.kind !== "left") notLeft++;
      }
    } else if (mode === "split") {
      for (const p of batch) {
        const opening = p.l4.kind === "tcp" && (p.l4.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
        const a = process.hrtime.bigint();
        const r = sim.receive(p, { consume: true });
        const d = Number(process.hrtime.bigint() - a);
        const acc = opening ? syn : other;
        acc.ns += d;
        acc.n++;
        if (r.packets[0].fate?.kind !== "left") notLeft++;
      }
    } else {
      for (const p of batch) {
        const r = sim.receive(p);
        if (r.packets[0].fate?.kind !== "left") notLeft++;
        bytes += formatReportText(r, c, false).length;
      }
    }
    ns += process.hrtime.bigint() - t0;
    const c1 = process.cpuUsage(c0);
    cpu += (c1.user + c1.system) / 1e6;
    packets += batch.length;
  }
  return { packets, seconds: Number(ns) / 1e9, cpu, bytes, notLeft, syn, other };
}

/** Runs the CLI under /usr/bin/time when present, for its CPU time (the machine is shared: wall time is noisy). */
function cli(args: string[], stdoutPath: string): { seconds: number; cpu?: number; out: string } {
  const fd = openSync(stdoutPath, "w");
  const t0 = process.hrtime.bigint();
  const timed = existsSync("/usr/bin/time");
  const argv = ["bin/ctsim.js", ...args];
  const r = spawnSync(
    timed ? "/usr/bin/time" : process.execPath,
    timed ? ["-f", "CPU %U %S", process.execPath, ...argv] : argv,
    {
      stdio: ["ignore", fd, "pipe"],
      env: { ...process.env, CTSIM_NO_PROGRESS: "1", NO_COLOR: "1" },
      maxBuffer: 1 << 26,
    },
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  closeSync(fd);
  if (r.status !== 0) throw new Error(`ctsim ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  const out = stdoutPath === "/dev/null" ? "" : readFileSync(stdoutPath, "utf8");
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(String(r.stderr));
  return { seconds, ...(m ? { cpu: Number(m[1]) + Number(m[2]) } : {}), out };
}

const cpuText = (cpu: number | undefined) =>
  cpu === undefined ? "" : `, ${rate(PACKETS, cpu)} of CPU time (${cpu.toFixed(2)} s, start-up included)`;
const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString("en-US")} packets/s`;

const BLOCK = 50_000;

/**
 * `--mode blocks`: bench/trace_blocks.ts, bundled with esbuild as `npm ci` bundles the CLI (sources run through
 * tsx measured ~10% slower), in a fresh process.
 */
function coldBlocks(rulesPath: string, hostPath: string, capPath: string): void {
  // Inside the project, so the bundle's packages resolve from node_modules.
  const cache = join(import.meta.dirname, "..", "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  const bundle = join(cache, `ctsim-bench-blocks-${process.pid}.mjs`);
  buildSync({
    entryPoints: [join(import.meta.dirname, "trace_blocks.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    packages: "external",
    outfile: bundle,
    logLevel: "warning",
  });
  let r;
  try {
    r = spawnSync(process.execPath, [bundle, rulesPath, hostPath, capPath, String(BLOCK), String(SEED)], {
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
  } finally {
    unlinkSync(bundle);
  }
  if (r.status !== 0) throw new Error(`blocks child exited ${r.status}: ${r.stderr}`);
  const { blocks, packets, ms, notLeft } = JSON.parse(r.stdout) as {
    blocks: number[];
    packets: number;
    ms: number;
    notLeft: number;
  };
  if (notLeft) throw new Error(`blocks: ${notLeft} packets did not leave the host`);
  if (blocks.length < 2) {
    console.log(
      `cold process blocks: ${packets} packets in ${(ms / 1000).toFixed(2)} s (fewer than two blocks)`,
    );
    return;
  }
  const later = blocks.slice(1).sort((a, b) => a - b);
  const median = later[Math.floor((later.length - 1) / 2)];
  console.log(
    `cold process blocks: ${packets} packets in ${(ms / 1000).toFixed(2)} s = ${rate(packets, ms / 1000)}; ` +
      `first ${BLOCK.toLocaleString("en-US")} packets ${blocks[0].toFixed(0)} ms, later blocks median ` +
      `${median.toFixed(0)} ms (${((median * 1000) / BLOCK).toFixed(2)} µs/packet): the first block costs ` +
      `${(blocks[0] - median).toFixed(0)} ms more (JIT warm-up, first use of every rule)`,
  );
}

const base = join(tmpdir(), `ctsim-bench-trace-${process.pid}`);
const rulesPath = `${base}.rules.v4`;
const hostPath = `${base}.host.yaml`;
const capPath = `${base}.pcapng`;
const quietOut = `${base}.quiet.txt`;
const made = [rulesPath, hostPath, capPath, quietOut];
try {
  writeFileSync(rulesPath, rulesText());
  writeFileSync(hostPath, HOST_YAML);
  const sim0 = load(rulesPath, hostPath);
  const nRules = ruleCount(loadRuleset(readFileSync(rulesPath, "utf8"), { file: rulesPath }).ruleset);
  void sim0;
  const g0 = process.hrtime.bigint();
  generate(rulesPath, hostPath, capPath);
  const gs = Number(process.hrtime.bigint() - g0) / 1e9;
  console.log(
    `${nRules} rules (${SERVICES} services x ${ENDPOINTS} endpoints), ${PACKETS} packets, ${FLOWS} flows in flight, ` +
      `${CONN_PACKETS} packets/connection; generation pass ${gs.toFixed(1)} s (${rate(PACKETS, gs)})`,
  );
  for (let run = 1; run <= RUNS; run++) {
    if (!flag("--no-inproc")) {
      for (const mode of MODES) {
        if (mode === "blocks") {
          coldBlocks(rulesPath, hostPath, capPath);
          continue;
        }
        const r = inProcess(rulesPath, hostPath, capPath, mode);
        if (r.notLeft) throw new Error(`${mode}: ${r.notLeft} packets did not leave the host`);
        console.log(
          `in-process ${mode.padEnd(5)}: ${r.packets} packets in ${r.seconds.toFixed(2)} s = ${rate(r.packets, r.seconds)}` +
            ` (${rate(r.packets, r.cpu)} of CPU time)` +
            (mode === "trace" ? ` (${(r.bytes / 1e6).toFixed(0)} MB of text)` : "") +
            (mode === "split"
              ? `; connection-opening SYNs ${(r.syn.ns / r.syn.n / 1000).toFixed(2)} µs each (${r.syn.n}),` +
                ` other packets ${(r.other.ns / r.other.n / 1000).toFixed(2)} µs each (${r.other.n})`
              : ""),
        );
      }
    }
    if (!flag("--no-cli")) {
      const common = [
        "trace",
        "--host",
        hostPath,
        "--rules",
        rulesPath,
        "--packets",
        capPath,
        "--seed",
        String(SEED),
      ];
      const q = cli([...common, "--quiet"], quietOut);
      console.log(
        `cli --quiet        : ${rate(PACKETS, q.seconds)} wall (${q.seconds.toFixed(2)} s)${cpuText(q.cpu)}; ${q.out.trim()}`,
      );
      const t = cli(common, "/dev/null");
      console.log(
        `cli TRACE>/dev/null: ${rate(PACKETS, t.seconds)} wall (${t.seconds.toFixed(2)} s)${cpuText(t.cpu)}`,
      );
    }
  }
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
} finally {
  if (!flag("--keep"))
    for (const p of made) {
      try {
        unlinkSync(p);
      } catch {
        /* not created */
      }
    }
  else console.log(`kept ${base}.*`);
}
