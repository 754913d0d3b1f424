import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// bin/ctsim.js as users run it: the shim picks the bundle or the sources, and `trace`/`run` re-run themselves
// once with larger semi-spaces.
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
  it("traces through the re-run child, and the same without it or from the sources", () => {
    const a = run(TRACE);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toContain("left on eth0");
    const b = run(TRACE, { CTSIM_NO_RESPAWN: "1" });
    const c = run(TRACE, { CTSIM_FROM_SOURCE: "1" });
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).toBe(a.stdout);
  }, 30_000);

  it("passes the child's exit code and error message on", () => {
    const r = run(["trace", "--host", "no-such.yaml", "--rules", "x", "--packets", "y"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("no-such.yaml: cannot open");
  }, 30_000);

  it.runIf(process.platform === "linux")(
    "forwards a signal sent to the parent alone to the child",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "ctsim-bin-"));
      const fifo = join(dir, "packets");
      try {
        execFileSync("mkfifo", [fifo]);
        // Reading a FIFO nobody writes to blocks: the child waits until it is told to stop.
        const args = [BIN, ...TRACE.slice(0, 5), "--packets", fifo, "--in", "eth0"];
        const parent = spawn(process.execPath, args, { cwd: ROOT, stdio: "ignore" });
        const children = async (): Promise<string[]> => {
          for (let i = 0; i < 100; i++) {
            const ps = spawnSync("ps", ["-o", "pid=", "--ppid", String(parent.pid)], { encoding: "utf8" });
            const pids = ps.stdout.split(/\s+/).filter(Boolean);
            if (pids.length > 0) return pids;
            await new Promise((r) => setTimeout(r, 50));
          }
          return [];
        };
        const pids = await children();
        expect(pids.length, "the parent started a child").toBe(1);
        const exited = new Promise<[number | null, string | null]>((res) =>
          parent.once("exit", (code, signal) => res([code, signal])),
        );
        parent.kill("SIGTERM");
        const [code, signal] = await exited;
        expect(signal ?? code, "the parent ends because of the signal").toBe("SIGTERM");
        const alive = spawnSync("ps", ["-o", "pid=", "-p", pids[0]], { encoding: "utf8" }).stdout.trim();
        expect(alive, `child ${pids[0]} still running`).toBe("");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    30_000,
  );
});
