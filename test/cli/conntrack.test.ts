import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run, seed001 } from "./cli_helpers";

const example = seed001;
const dir = mkdtempSync(join(tmpdir(), "ctsim-conntrack-"));

function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

const HANDSHAKE = file(
  "handshake.txt",
  [
    "10:00:00.000000 IP 10.0.0.2.40000 > 192.0.2.80.80: Flags [S], seq 1000, win 64240, length 0",
    "10:00:00.001000 IP 192.0.2.80.80 > 10.0.0.2.40000: Flags [S.], seq 5000, ack 1001, win 64240, length 0",
    "10:00:00.002000 IP 10.0.0.2.40000 > 192.0.2.80.80: Flags [.], ack 5001, win 502, length 0",
    "",
  ].join("\n"),
);

describe("ctsim conntrack", () => {
  it("seed 001: the SYN is NEW/SYN_SENT, the bare FIN is INVALID from tcp_error, both forwarded", async () => {
    const r = await run("conntrack", example("packets.txt"), "--in", "eth0");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")).toEqual([
      "15:33:24.179455 eth0  In  IP 192.168.100.105.1836 > 2.2.2.2.80: Flags [S], seq 1848868094, win 512, length 0",
      "  ct: NEW (IP_CT_NEW) ORIGINAL  tcp NONE -> SYN_SENT via tcp_conntracks[ORIGINAL][syn][NONE]",
      "  => forwarded",
      "15:30:34.320464 eth0  In  IP 192.168.100.105.1914 > 2.2.2.2.80: Flags [F], seq 1374184646, win 512, length 0",
      "  ct: INVALID  tcp_error: invalid tcp flag combination",
      "  => forwarded",
      "",
    ]);
  });

  it("seed 001 with its host file: route shown, -E events and -L table", async () => {
    const r = await run(
      "conntrack",
      example("packets.txt"),
      "--in",
      "eth0",
      "--host",
      example("host.yaml"),
      "-E",
      "-L",
    );
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[2]).toBe("  => forwarded (out eth0 via 192.168.100.253)");
    expect(lines[3]).toBe(
      "    [NEW] tcp      6 120 SYN_SENT src=192.168.100.105 dst=2.2.2.2 sport=1836 dport=80 [UNREPLIED] " +
        "src=2.2.2.2 dst=192.168.100.105 sport=80 dport=1836",
    );
    const table = lines.slice(lines.indexOf("# conntrack -L after 2 packets") + 1);
    expect(table[0]).toBe(
      "tcp      6 120 SYN_SENT src=192.168.100.105 dst=2.2.2.2 sport=1836 dport=80 [UNREPLIED] " +
        "src=2.2.2.2 dst=192.168.100.105 sport=80 dport=1836 mark=0 use=1",
    );
    expect(table[1]).toBe("# conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.");
  });

  it("a handshake: transitions per packet, -o extended table with ASSURED", async () => {
    const r = await run("conntrack", HANDSHAKE, "-L", "-o", "extended");
    expect(r.code).toBe(0);
    const ct = r.stdout.split("\n").filter((l) => l.startsWith("  ct: "));
    expect(ct).toEqual([
      "  ct: NEW (IP_CT_NEW) ORIGINAL  tcp NONE -> SYN_SENT via tcp_conntracks[ORIGINAL][syn][NONE]",
      "  ct: ESTABLISHED (IP_CT_ESTABLISHED_REPLY) REPLY  tcp SYN_SENT -> SYN_RECV via tcp_conntracks[REPLY][synack][SYN_SENT]",
      "  ct: ESTABLISHED (IP_CT_ESTABLISHED) ORIGINAL  tcp SYN_RECV -> ESTABLISHED via tcp_conntracks[ORIGINAL][ack][SYN_RECV]",
    ]);
    expect(r.stdout).toContain(
      "ipv4     2 tcp      6 432000 ESTABLISHED src=10.0.0.2 dst=192.0.2.80 sport=40000 dport=80 " +
        "src=192.0.2.80 dst=10.0.0.2 sport=80 dport=40000 [ASSURED] mark=0 use=1\n",
    );
  });

  it("--format json: one object per packet, then the table", async () => {
    const r = await run("conntrack", HANDSHAKE, "--format", "json", "-L");
    expect(r.code).toBe(0);
    const objs = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs).toHaveLength(4);
    expect(objs.map((o) => o.state)).toEqual(["NEW", "ESTABLISHED", "ESTABLISHED", undefined]);
    expect(objs[0].tcp).toEqual({
      oldState: "NONE",
      newState: "SYN_SENT",
      cell: "tcp_conntracks[ORIGINAL][syn][NONE]",
    });
    expect(objs[0].events).toEqual([
      "    [NEW] tcp      6 120 SYN_SENT src=10.0.0.2 dst=192.0.2.80 sport=40000 dport=80 [UNREPLIED] src=192.0.2.80 dst=10.0.0.2 sport=80 dport=40000",
    ]);
    expect((objs[3].table as string[])[0]).toMatch(/^tcp {6}6 432000 ESTABLISHED /);
  });

  it("--sysctl and --kernel reach the tracker", async () => {
    const f = file(
      "ack.txt",
      "10:00:00.000000 IP 10.0.0.2.40000 > 192.0.2.80.80: Flags [.], ack 1, win 502, length 0\n",
    );
    const loose = await run("conntrack", f);
    expect(loose.stdout).toContain("  ct: NEW (IP_CT_NEW) ORIGINAL  tcp NONE -> ESTABLISHED");
    const strict = await run("conntrack", f, "--sysctl", "net.netfilter.nf_conntrack_tcp_loose=0");
    expect(strict.stdout).toContain("  ct: INVALID  tcp_new: Don't try to pick up connections.");
    const old = await run("conntrack", example("packets.txt"), "--kernel", "3.10");
    expect(old.stdout).toContain("  ct: INVALID  tcp_error: invalid TCP flag combination");
  });

  it("bad packet input exits 2 with file:line:col and no stack trace", async () => {
    const f = file(
      "bad.txt",
      "10:00:00.000000 IP 10.0.0.2.40000 > 192.0.2.80.80: Flags [Q], seq 1, win 1, length 0\n",
    );
    const r = await run("conntrack", f);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^ctsim: ${f}:1:\\d+: `));
    expect(r.stderr).not.toContain("    at ");
  });

  it("bad options exit 2: sysctl, kernel, host file, format", async () => {
    const bogus = await run("conntrack", HANDSHAKE, "--sysctl", "nf_conntrack_bogus=1");
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toContain("[SYSCTL_UNKNOWN]");
    const range = await run("conntrack", HANDSHAKE, "--sysctl", "nf_conntrack_tcp_loose=7");
    expect(range.stderr).toContain("[SYSCTL_RANGE]");
    const kernel = await run("conntrack", HANDSHAKE, "--kernel", "9.9");
    expect(kernel.code).toBe(2);
    expect(kernel.stderr).toContain("[KERNEL_UNKNOWN]");
    const host = file("host.yaml", "interfaces:\n  - { name: eth0, mac: nope }\n");
    const badHost = await run("conntrack", HANDSHAKE, "--host", host);
    expect(badHost.code).toBe(2);
    expect(badHost.stderr).toMatch(new RegExp(`^ctsim: ${host}:2:\\d+: `));
    const fmt = await run("conntrack", HANDSHAKE, "--format", "xml");
    expect(fmt.code).toBe(2);
    const missing = await run("conntrack", join(dir, "nope.txt"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("[READ_OPEN]");
  });

  it("help has examples", async () => {
    const r = await run("conntrack", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ctsim conntrack examples/seed001/packets.txt --in eth0");
    expect(r.stdout).toContain("--sysctl <name=value>");
  });
});
