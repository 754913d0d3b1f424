/**
 * Network-namespace lab for the kernel oracle: one router namespace built from a ctsim host file, one peer
 * namespace per router interface (veth pairs), iptables-legacy rules, tcpdump on the peer ends, frame injection
 * with tcpreplay, TRACE lines from /dev/kmsg and `conntrack -L -o extended`.
 *
 * Needs root, `ip`, `iptables-legacy(-restore)`, `conntrack`, `tcpdump`, `tcpreplay`. Every namespace created
 * is named `ctso-<tag>-...` and removed by `Lab.destroy()`, which callers run in `finally`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, constants, existsSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { formatIpv4, inPrefix } from "../../src/wire/addr";
import { connectedRoutes } from "../../src/host/hostfile";
import type { Scenario } from "./scenario";
import type { Packet } from "../../src/wire/packet";

export function run(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export function nsRun(ns: string, cmd: string, args: readonly string[], input?: string): string {
  return run("ip", ["netns", "exec", ns, cmd, ...args], input);
}

/** What is missing to record on this machine, or undefined when everything is there. */
export function missingPrerequisite(): string | undefined {
  if (process.platform !== "linux") return "not Linux";
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root";
  for (const tool of [
    "ip",
    "iptables-legacy",
    "iptables-legacy-restore",
    "conntrack",
    "tcpdump",
    "tcpreplay",
  ]) {
    const r = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" });
    if (r.status !== 0) return `${tool} not installed`;
  }
  const probe = `ctso-probe-${process.pid}`;
  const r = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (r.status !== 0) return `cannot create network namespaces (${r.stderr.trim()})`;
  spawnSync("ip", ["netns", "del", probe]);
  if (!existsSync("/dev/kmsg")) return "no /dev/kmsg";
  return undefined;
}

export function toolVersions(): { kernel: string; iptables: string; conntrack: string; tcpdump: string } {
  const first = (s: string) =>
    s
      .split("\n")
      .find((l) => l.trim() !== "")
      ?.trim() ?? "";
  const both = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return first(`${r.stdout ?? ""}\n${r.stderr ?? ""}`);
  };
  return {
    kernel: run("uname", ["-r"]).trim(),
    iptables: both("iptables-legacy", ["-V"]),
    conntrack: both("conntrack", ["-V"]),
    tcpdump: both("tcpdump", ["--version"]),
  };
}

/** Reads kernel log records from /dev/kmsg, only those written after construction. */
export class KmsgReader {
  private fd: number;
  private buf = Buffer.alloc(16384);
  constructor() {
    this.fd = openSync("/dev/kmsg", constants.O_RDONLY | constants.O_NONBLOCK);
    this.drain();
  }
  /** Messages (text after the `;`) written since the last call. */
  drain(): string[] {
    const out: string[] = [];
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") break;
        if (code === "EPIPE") continue; // records overwritten before we read them; resume at the next
        throw e;
      }
      if (n <= 0) break;
      const rec = this.buf.toString("utf8", 0, n);
      const semi = rec.indexOf(";");
      // Continuation lines (" KEY=value") after the first newline are dictionary data; keep the message only.
      const msg = rec.slice(semi + 1).split("\n")[0];
      out.push(msg);
    }
    return out;
  }
  close(): void {
    closeSync(this.fd);
  }
}

export interface Capture {
  readonly iface: string;
  readonly file: string;
  readonly proc: ChildProcess;
}

/** The listener process: argv `ADDR,PORT,tcp|udp,0|1` per socket; prints "ready", holds them until killed. */
const LISTENER_PY = `
import socket, sys
held = []
for spec in sys.argv[1:]:
    addr, port, proto, transparent = spec.split(",")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if transparent == "1":
        s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
    s.bind((addr, int(port)))
    if proto == "tcp":
        s.listen(16)
    held.append(s)
print("ready", flush=True)
sys.stdin.read()
`;

/**
 * The local sender: argv `UID GID SRC SPORT DST DPORT LEN`. Drops to uid/gid (no supplementary groups) and
 * sends one UDP datagram of LEN zero bytes from SRC:SPORT (bound, so the kernel picks no port) to DST:DPORT
 * with sendto on an unconnected socket (so the kernel's IP id is 0 with DF set, ip_select_ident_segs).
 */
const SENDER_PY = `
import os, socket, sys
uid, gid, src, sport, dst, dport, n = sys.argv[1:]
os.setgroups([])
os.setgid(int(gid))
os.setuid(int(uid))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, int(sport)))
s.sendto(bytes(int(n)), (dst, int(dport)))
s.close()
`;

export class Lab {
  readonly router: string;
  readonly peerNs: Record<string, string> = {};
  private created: string[] = [];
  private captures: Capture[] = [];
  private listener: ChildProcess | undefined;

  constructor(
    readonly scenario: Scenario,
    readonly tag: string,
    readonly workDir: string,
  ) {
    this.router = `ctso-${tag}-r`;
  }

  private addNs(name: string): void {
    run("ip", ["netns", "add", name]);
    this.created.push(name);
    nsRun(name, "sysctl", [
      "-qw",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    nsRun(name, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]);
    run("ip", ["-n", name, "link", "set", "lo", "up"]);
  }

  /** Builds router and peer namespaces, addresses, routes, rules, neighbours, sysctls and loads the rules. */
  build(): void {
    const { scenario: sc } = this;
    const host = sc.host;
    this.addNs(this.router);
    const R = this.router;
    host.interfaces.forEach((iface, i) => {
      if (iface.name === "lo") return;
      const peer = sc.peers[iface.name];
      const P = `ctso-${this.tag}-p${i}`;
      this.addNs(P);
      this.peerNs[iface.name] = P;
      run("ip", ["-n", R, "link", "add", iface.name, "type", "veth", "peer", "name", iface.name, "netns", P]);
      run("ip", ["-n", R, "link", "set", iface.name, "address", iface.mac]);
      run("ip", ["-n", P, "link", "set", iface.name, "address", peer.mac]);
      for (const a of iface.addresses)
        run("ip", ["-n", R, "addr", "add", `${formatIpv4(a.addr)}/${a.len}`, "dev", iface.name]);
      for (const a of peer.addressText) run("ip", ["-n", P, "addr", "add", a, "dev", iface.name]);
      nsRun(R, "sysctl", ["-qw", `net.ipv4.conf.${iface.name}.rp_filter=0`]);
      nsRun(P, "sysctl", ["-qw", `net.ipv4.conf.${iface.name}.rp_filter=0`]);
      run("ip", ["-n", P, "link", "set", iface.name, "arp", "off", "up"]);
      run("ip", ["-n", R, "link", "set", iface.name, "up"]);
      // The peer never answers: every IPv4 packet it receives is dropped before conntrack sees it.
      nsRun(P, "iptables-legacy", ["-t", "raw", "-A", "PREROUTING", "-j", "DROP"]);
      nsRun(P, "iptables-legacy", ["-t", "raw", "-A", "OUTPUT", "-j", "DROP"]);
    });
    const lo = host.interfaces.find((i) => i.name === "lo");
    for (const a of lo?.addresses ?? [])
      if (a.addr !== 0x7f000001)
        run("ip", ["-n", R, "addr", "add", `${formatIpv4(a.addr)}/${a.len}`, "dev", "lo"]);
    // Sysctls: host file first, then the scenario's (conntrack ones need the module; load rules after).
    const sysctls = { ...host.sysctl, ...sc.sysctl };
    // Permanent neighbours: every peer address and every gateway (no ARP ever leaves the router).
    const neigh = new Map<string, string>();
    for (const [ifname, peer] of Object.entries(sc.peers))
      for (const a of peer.addresses) neigh.set(`${formatIpv4(a.addr)} ${ifname}`, peer.mac);
    for (const r of host.routes) {
      if (r.type === "unicast" && r.via !== undefined) {
        const dev =
          r.dev ?? connectedRoutes(host).find((c) => c.type === "unicast" && inPrefix(r.via!, c.prefix))?.dev;
        if (dev && sc.peers[dev]) neigh.set(`${formatIpv4(r.via)} ${dev}`, sc.peers[dev].mac);
      }
    }
    for (const [key, mac] of neigh) {
      const [addr, dev] = key.split(" ");
      run("ip", ["-n", R, "neigh", "replace", addr, "lladdr", mac, "dev", dev, "nud", "permanent"]);
    }
    for (const r of host.routes) run("ip", ["-n", R, "route", "add", ...r.text.split(/\s+/)]);
    for (const r of host.rules) run("ip", ["-n", R, "rule", "add", ...r.text.split(/\s+/)]);
    // ipsets before the rules (a `-m set` rule needs its set to exist).
    if (sc.ipsetsText !== undefined) nsRun(R, "ipset", ["restore"], sc.ipsetsText);
    nsRun(R, "iptables-legacy-restore", [], sc.rulesText);
    const sysArgs = Object.entries(sysctls).map(([k, v]) => `${k}=${v}`);
    if (sysArgs.length > 0) nsRun(R, "sysctl", ["-qw", ...sysArgs]);
  }

  /**
   * Opens the host file's `sockets:` in the router namespace (one python3 process holding them all): TCP
   * sockets listen, UDP sockets are bound; `transparent: true` sets IP_TRANSPARENT (19) before bind(), so a
   * non-local address can be bound (TPROXY, `-m socket --transparent`). Resolves once all are bound.
   */
  async startListeners(): Promise<void> {
    const socks = this.scenario.host.sockets;
    if (socks.length === 0) return;
    const specs = socks.map(
      (s) => `${formatIpv4(s.address)},${s.port},${s.protocol},${s.transparent ? 1 : 0}`,
    );
    const proc = spawn("ip", ["netns", "exec", this.router, "python3", "-c", LISTENER_PY, ...specs], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.listener = proc;
    await new Promise<void>((resolve, reject) => {
      let out = "";
      let err = "";
      const timer = setTimeout(() => reject(new Error(`listener did not start: ${err}`)), 5000);
      proc.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`listener exited (${code}): ${err.trim()}`));
      });
    });
  }

  /** Starts `tcpdump -Q in` on every peer end; resolves once all are listening. */
  async startCaptures(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const [iface, P] of Object.entries(this.peerNs)) {
      const file = join(this.workDir, `egress-${iface}.pcap`);
      const proc = spawn(
        "ip",
        ["netns", "exec", P, "tcpdump", "-i", iface, "--immediate-mode", "-U", "-Q", "in", "-nn", "-w", file],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      this.captures.push({ iface, file, proc });
      waits.push(
        new Promise((resolve, reject) => {
          let err = "";
          const timer = setTimeout(
            () => reject(new Error(`tcpdump on ${iface} did not start: ${err}`)),
            5000,
          );
          proc.stderr!.on("data", (d: Buffer) => {
            err += d.toString();
            if (err.includes("listening on")) {
              clearTimeout(timer);
              resolve();
            }
          });
          proc.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`tcpdump on ${iface} exited (${code}): ${err}`));
          });
        }),
      );
    }
    await Promise.all(waits);
  }

  /** Stops the captures and returns the pcap file per interface. */
  async stopCaptures(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    await Promise.all(
      this.captures.map(
        (c) =>
          new Promise<void>((resolve) => {
            out[c.iface] = c.file;
            if (c.proc.exitCode !== null) return resolve();
            c.proc.removeAllListeners("exit");
            c.proc.on("exit", () => resolve());
            c.proc.kill("SIGINT");
          }),
      ),
    );
    this.captures = [];
    return out;
  }

  /** Sends one Ethernet frame into the router through the peer end of `iface`. */
  inject(iface: string, pcapFile: string): void {
    const P = this.peerNs[iface];
    if (!P) throw new Error(`no peer namespace for router interface ${iface}`);
    nsRun(P, "tcpreplay", ["-q", "-i", iface, pcapFile]);
  }

  /** Sends a UDP datagram from the router itself, as the given uid/gid (see SENDER_PY). */
  sendLocal(pkt: Packet, owner: { uid: number; gid: number }): void {
    if (pkt.l4.kind !== "udp") throw new Error("local packets are UDP only");
    nsRun(this.router, "python3", [
      "-c",
      SENDER_PY,
      String(owner.uid),
      String(owner.gid),
      formatIpv4(pkt.ip.src),
      String(pkt.l4.srcPort),
      formatIpv4(pkt.ip.dst),
      String(pkt.l4.dstPort),
      String(pkt.payloadLength),
    ]);
  }

  conntrackList(): string[] {
    const r = spawnSync("ip", ["netns", "exec", this.router, "conntrack", "-L", "-o", "extended"], {
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`conntrack -L failed: ${r.stderr.trim()}`);
    return r.stdout.split("\n").filter((l) => l.trim() !== "");
  }

  /** Kills captures still running and deletes every namespace this lab created. Never throws. */
  destroy(): void {
    for (const c of this.captures) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
    this.captures = [];
    if (this.listener && this.listener.exitCode === null) {
      this.listener.removeAllListeners("exit");
      this.listener.kill("SIGKILL");
    }
    this.listener = undefined;
    for (const ns of this.created.reverse()) spawnSync("ip", ["netns", "del", ns]);
    this.created = [];
  }
}

/** Text of frames via the real tcpdump (`-nn -S -v -t`), one entry per frame, continuation lines joined. */
export function tcpdumpText(pcapFile: string): string[] {
  const out = run("tcpdump", ["-nn", "-S", "-v", "-t", "-r", pcapFile]);
  const recs: string[] = [];
  for (const line of out.split("\n")) {
    if (line.trim() === "") continue;
    if (/^\s/.test(line) && recs.length > 0) recs[recs.length - 1] += ` ${line.trim()}`;
    else recs.push(line.trim());
  }
  return recs;
}
