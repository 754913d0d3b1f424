import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "./cli_helpers";

const fixture = (name: string) => new URL(`../fixtures/text/${name}`, import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ctsim-read-"));

describe("ctsim read", () => {
  it("prints one tcpdump line per packet of a text file", async () => {
    const r = await run("read", fixture("seed001_snat_ok.txt"), "--in", "eth0");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")).toEqual([
      "15:33:24.179455 eth0  In  IP 192.168.100.105.1836 > 2.2.2.2.80: Flags [S], seq 1848868094, win 512, length 0",
      "15:33:24.179478 eth0  In  IP 192.168.100.104.1836 > 2.2.2.2.80: Flags [S], seq 1848868094, win 512, length 0",
      "",
    ]);
  });

  it("-v prints the header line with checksums", async () => {
    const r = await run("read", "-v", fixture("seed001_snat_ok.txt"));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "15:33:24.179455 IP (tos 0x0, ttl 64, id 44608, offset 0, flags [none], proto TCP (6), length 40)\n    192.168.100.105.1836 > 2.2.2.2.80: Flags [S], cksum 0x4b19 (correct),",
    );
  });

  it("strict: a non-packet line exits 2 with file:line:column", async () => {
    const f = fixture("seed001_fin_loop.txt");
    const r = await run("read", f);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}:7:17:`);
    expect(r.stderr).toContain("[TEXT_EXPECTED_ADDRESS_LINE]");
    expect(r.stderr).not.toContain("    at "); // no stack trace
  });

  it("--lenient skips bad lines and counts them on stderr", async () => {
    const f = fixture("seed001_fin_loop.txt");
    const r = await run("read", "--lenient", f);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(3);
    expect(r.stderr).toBe(`ctsim: ${f}: skipped 2 lines\n`);
  });

  it("non-IPv4 lines get a line saying so", async () => {
    const f = join(dir, "mixed.txt");
    writeFileSync(
      f,
      "10:00:00.000000 IP6 ::1.1 > ::1.2: UDP, length 1\n10:00:00.5 IP 1.1.1.1.1 > 2.2.2.2.2: UDP, length 3\n",
    );
    const r = await run("read", f);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `# ${f}:1: skipped (not IPv4: IP6)\n10:00:00.500000 IP 1.1.1.1.1 > 2.2.2.2.2: UDP, length 3\n`,
    );
  });

  it("-w writes pcapng that reads back to the same lines", async () => {
    const out = join(dir, "out.pcapng");
    const a = await run("read", fixture("tcpdump_ssh.out"), "--in", "eth1", "-w", out);
    expect(a.code).toBe(0);
    const bytes = readFileSync(out);
    expect(bytes.readUInt32LE(0)).toBe(0x0a0d0d0a);
    const b = await run("read", out);
    expect(b.stderr).toBe("");
    expect(b.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(b.stdout.trim().split("\n")).toHaveLength(54);
  });

  it("a missing file is an input error, exit 2", async () => {
    const r = await run("read", join(dir, "nope.txt"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[READ_OPEN]");
  });
});
