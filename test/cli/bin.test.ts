import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// bin/ctsim.js as users run it: the shim picks the bundle or the sources.
const ROOT = join(__dirname, "../..");
const BIN = join(ROOT, "bin/ctsim.js");
const SEED = join(ROOT, "examples/seed001");
const TRACE = [
  "trace",
  "--host",
  join(SEED, "host.yaml"),
  "--rules",
  join(SEED, "rules.v4"),
  "--packets",
  join(SEED, "packets.txt"),
];

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", CTSIM_NO_PROGRESS: "1", ...env },
  });
}

describe("bin/ctsim.js", () => {
  it("traces the same from the bundle as from the sources", () => {
    const a = run(TRACE);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toContain("left on eth0");
    const c = run(TRACE, { CTSIM_FROM_SOURCE: "1" });
    expect(c.status, c.stderr).toBe(0);
    expect(c.stdout).toBe(a.stdout);
  }, 30_000);

  it("passes the child's exit code and error message on", () => {
    const r = run(["trace", "--host", "no-such.yaml", "--rules", "x", "--packets", "y"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("no-such.yaml: cannot open");
  }, 30_000);

  it("ends quietly with 141 when the reader of its output goes away (| head)", async () => {
    const child = spawn(process.execPath, [BIN, "lint", "--help"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy(); // closed before the child writes anything: its first write fails with EPIPE
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => child.once("exit", (c) => res(c)));
    expect(stderr).toBe("");
    expect(code).toBe(141);
  }, 30_000);
});
