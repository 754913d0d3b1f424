import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SEED001_ARGS, run, seed001 } from "./cli_helpers";
import { CaptureReader } from "../../src/wire/capture";

const example = seed001;
const dir = mkdtempSync(join(tmpdir(), "ctsim-trace-"));
const SEED = SEED001_ARGS;

function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe("ctsim trace", () => {
  it("seed 001: the SYN's four TRACE lines and SNAT, the FIN's two lines and no NAT", async () => {
    const r = await run("trace", ...SEED);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    const labels = lines.filter((l) => l.startsWith("TRACE: ")).map((l) => l.split(" ")[1]);
    expect(labels).toEqual([
      "raw:PREROUTING:policy:2",
      "nat:PREROUTING:policy:1",
      "filter:FORWARD:policy:1",
      "nat:POSTROUTING:rule:1",
      "raw:PREROUTING:policy:2",
      "filter:FORWARD:policy:1",
    ]);
    const summaries = lines.filter((l) => l.startsWith("=> "));
    expect(summaries).toEqual([
      "=> #0 tcp 192.168.100.105:1836 > 2.2.2.2:80 [S]: ct NEW IP_CT_NEW ORIGINAL (tcp syn NONE -> SYN_SENT); nat SRC 192.168.100.105:1836 -> 192.168.100.104:1836 (nat:POSTROUTING:rule:1); left on eth0",
      "=> #0 tcp 192.168.100.105:1914 > 2.2.2.2:80 [F]: ct INVALID (tcp_error: invalid tcp flag combination); nat: no conntrack (INVALID): nat table not consulted; left on eth0",
    ]);
  });

  it("--format json: one object per packet with the decisions; --conntrack prints the table", async () => {
    const r = await run("trace", ...SEED, "--format", "json", "--conntrack");
    expect(r.code, r.stderr).toBe(0);
    const objs = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(objs).toHaveLength(3);
    expect(objs[0].packets[0].ct.state).toBe("NEW");
    expect(objs[0].packets[0].fate).toEqual({ kind: "left", iface: "eth0" });
    expect(objs[0].trace.map((t: { type: string }) => t.type)).toEqual([
      "policy",
      "policy",
      "policy",
      "rule",
    ]);
    expect(objs[1].packets[0].ct.state).toBe("INVALID");
    expect(objs[2].conntrack).toHaveLength(1);
    expect(objs[2].conntrack[0]).toContain("dst=192.168.100.104 sport=80 dport=1836");
  });

  it("--format xtables-monitor and nft print the monitor tools' lines", async () => {
    const x = await run("trace", ...SEED, "--format", "xtables-monitor");
    expect(x.code, x.stderr).toBe(0);
    expect(x.stdout).toMatch(/^ TRACE: 2 [0-9a-f]{8} raw:PREROUTING:policy:ACCEPT $/m);
    // The -j TRACE rule's own event, as iptables-nft prints it (needs the rule set: handles and rule text).
    expect(x.stdout).toMatch(
      /^ TRACE: 2 [0-9a-f]{8} raw:PREROUTING:rule:0x[0-9a-f]+:CONTINUE {2}-4 -t raw -A PREROUTING -d 2\.2\.2\.2\/32 -p tcp -j TRACE$/m,
    );
    expect(x.stdout).toMatch(
      /^ TRACE: 2 [0-9a-f]{8} nat:POSTROUTING:rule:0x5:ACCEPT {2}-4 -t nat -A POSTROUTING -j MASQUERADE$/m,
    );
    // Handles number a table's chains first, then its rules (nat has 4 chains, so its first rule is 0x5).
    // Format checked against iptables 1.8.9 / nftables 1.0.6 in test/oracle/monitor.test.ts.
    expect(x.stdout).toMatch(
      /^PACKET: 2 [0-9a-f]{8} IN=eth0 OUT=eth0 .*SRC=192\.168\.100\.105 .*TTL=63 ID=44608 SPORT=1836 DPORT=80 SYN $/m,
    );
    const n = await run("trace", ...SEED, "--format", "nft");
    expect(n.code, n.stderr).toBe(0);
    expect(n.stdout).toMatch(/^trace id [0-9a-f]{8} ip filter FORWARD policy accept $/m);
  });

  it("-w writes the packets that left the host, SNATed", async () => {
    const out = join(dir, "out.pcapng");
    const r = await run("trace", ...SEED, "--quiet", "-w", out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^2 packets \(left 2\), 6 TRACE lines, 1 conntrack entries; \d+ packets\/s\n$/);
    const reader = new CaptureReader({ file: out });
    const frames = [...reader.push(new Uint8Array(readFileSync(out))), ...reader.end()];
    const pkts = frames.flatMap((f) => (f.kind === "packet" ? [f.packet] : []));
    expect(pkts.map((p) => p.ip.src.toString(16))).toEqual(["c0a86468", "c0a86469"]);
  });

  it("bad rules: exit 2 with file:line:column", async () => {
    const rules = file("bad.v4", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m nosuchmatch -j ACCEPT\nCOMMIT\n");
    const r = await run(
      "trace",
      "--host",
      example("host.yaml"),
      "--rules",
      rules,
      "--packets",
      example("packets.txt"),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^ctsim: ${rules.replace(/[.]/g, "\\.")}:3:\\d+: `));
  });

  it("bad host file and bad --format: exit 2 with a location", async () => {
    const host = file("bad.yaml", "hostname: x\ninterfaces:\n  - {name: eth0, mac: nope, addresses: []}\n");
    const r = await run(
      "trace",
      "--host",
      host,
      "--rules",
      example("rules.v4"),
      "--packets",
      example("packets.txt"),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:3:\d+/);
    const f = await run("trace", ...SEED, "--format", "xml");
    expect(f.code).toBe(2);
    expect(f.stderr).toContain("--format");
  });

  it("a packet without an interface on a multi-interface host needs --in", async () => {
    const host = file(
      "two.yaml",
      'hostname: r\ninterfaces:\n  - {name: eth0, mac: "02:00:00:00:00:01", addresses: ["10.0.0.1/24"]}\n  - {name: eth1, mac: "02:00:00:00:00:02", addresses: ["10.0.1.1/24"]}\n',
    );
    const r = await run(
      "trace",
      "--host",
      host,
      "--rules",
      example("rules.v4"),
      "--packets",
      example("packets.txt"),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--in IFACE");
  });
});
