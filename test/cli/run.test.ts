/** `ctsim run`: text and JSON output of examples/seed001-network, -w per-link pcapng, exit 2 with a location. */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";

async function run(args: string[]) {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe("ctsim run", () => {
  it("text: the hop path, the loop, the flows and the sequence diagram", async () => {
    const r = await run(["run", "examples/seed001-network/topology.yaml"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("nat SRC 192.168.100.105:1836 -> 192.168.100.104:1836 (nat:POSTROUTING:rule:1)");
    expect(r.out).toContain("nat: no conntrack (INVALID): nat table not consulted");
    expect(r.out).toMatch(
      /loop: tcp 192\.168\.100\.105:1914 > 2\.2\.2\.2:80 .*TTL falling on every pass, 63 link crossings/,
    );
    expect(r.out).toContain("ip_forward sent ICMP time exceeded");
    expect(r.out).toContain("web on client 192.168.100.105:1836 2.2.2.2:80: SYN_SENT > ESTABLISHED");
    expect(r.out).toMatch(/\n# sequence\ntime\s+client/);
  });
  it("--trace prints the NAT host's TRACE lines", async () => {
    const r = await run(["run", "examples/seed001-network/topology.yaml", "--trace"]);
    expect(r.out).toContain("TRACE: nat:POSTROUTING:rule:1 IN=eth0 OUT=eth0");
  });
  it("json: one document with events, loops, flows", async () => {
    const r = await run(["run", "examples/seed001-network/topology.yaml", "--format", "json", "--conntrack"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.loops.length).toBe(1);
    expect(j.flows[0].name).toBe("web");
    expect(j.flows[0].error, "web completes").toBeUndefined();
    expect(j.flows[0].states.at(-1)).toBe("ESTABLISHED");
    expect(
      j.conntrack.natgw.some(
        (l: string) => l.includes("src=192.168.100.105") && l.includes("dst=192.168.100.104"),
      ),
    ).toBe(true);
  });
  it("-w writes one pcapng per link; --until stops the clock", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsim-run-"));
    const r = await run([
      "run",
      "examples/seed001-network/topology.yaml",
      "-w",
      dir,
      "--until",
      "0.5",
      "--quiet",
    ]);
    expect(r.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["internet.pcapng", "vpc.pcapng"]);
    const b = readFileSync(join(dir, "vpc.pcapng"));
    expect(b.readUInt32LE(0), "SHB").toBe(0x0a0d0d0a);
    expect(r.out).not.toContain("loop:");
    expect(r.out).toContain("(until)");
  });
  it("bad topology exits 2 with file:line:column", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsim-run-"));
    const f = join(dir, "t.yaml");
    writeFileSync(f, "nodes:\n  gw:\n    kind: warp-drive\n");
    const r = await run(["run", f]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${f}:3:11: unknown node kind "warp-drive"`);
  });
});
