import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "./cli_helpers";

const example = (dir: string, name: string) =>
  new URL(`../../examples/${dir}/${name}`, import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "ctsim-lint-"));

describe("ctsim lint", () => {
  it("seed 001: reports snat-invalid-leak at rules.v4:13 with the demonstration, exit 1", async () => {
    const r = await run("lint", "--host", example("seed001", "host.yaml"), example("seed001", "rules.v4"));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/rules\.v4:13:1: warning snat-invalid-leak \(nat:POSTROUTING:rule:1\)/);
    expect(r.stdout).toContain("fix: iptables -t filter -I FORWARD 1 -m conntrack --ctstate INVALID -j DROP");
    expect(r.stdout).toContain("shown in the emulator (reproduced)");
    expect(r.stdout).toContain("tcp_conntracks[ORIGINAL][fin][NONE] = sIV");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("1 finding (0 error, 1 warning, 0 info) in 1 file");
  });

  it("--fail-on error exits 0 for warnings; the fixed rule set exits 0 at the default level", async () => {
    expect((await run("lint", "--fail-on", "error", example("seed001", "rules.v4"))).code).toBe(0);
    const fixed = await run(
      "lint",
      "--host",
      example("seed001", "host.yaml"),
      example("seed001", "rules-fixed.v4"),
    );
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toContain("0 findings");
  });

  it("--format json: summary counts and findings with file, line, id, severity, fix and demo", async () => {
    const r = await run(
      "lint",
      "--format",
      "json",
      "--host",
      example("moby-18630", "host.yaml"),
      example("moby-18630", "rules.v4"),
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as {
      summary: Record<string, number>;
      findings: {
        id: string;
        line: number;
        file: string;
        severity: string;
        fix: string;
        demo?: { confirmed: boolean };
      }[];
    };
    expect(doc.summary).toEqual({ error: 0, warning: 1, info: 0 });
    expect(doc.findings[0]).toMatchObject({ id: "snat-invalid-leak", line: 12, severity: "warning" });
    expect(doc.findings[0].file).toContain("moby-18630/rules.v4");
    expect(doc.findings[0].demo?.confirmed).toBe(true);
  });

  it("kernel refusals are findings (exit 1 at --fail-on error), not a failed load", async () => {
    const f = join(tmp, "trace.v4");
    writeFileSync(
      f,
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -j TRACE\nCOMMIT\n",
    );
    const r = await run("lint", "--fail-on", "error", f);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/trace\.v4:5:1: error kernel-refused/);
  });

  it("--rule runs one rule; --list lists every rule; bad options exit 2 with a message", async () => {
    const only = await run("lint", "--rule", "unused-chain", example("seed001", "rules.v4"));
    expect(only.code).toBe(0);
    expect(only.stdout).not.toContain("snat-invalid-leak");
    const list = await run("lint", "--list");
    expect(list.stdout).toMatch(/^snat-invalid-leak\s+warning/m);
    expect(list.stdout.trim().split("\n").length).toBeGreaterThanOrEqual(10);
    const bad = await run("lint", "--fail-on", "fatal", example("seed001", "rules.v4"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--fail-on");
    const missing = await run("lint", join(tmp, "nope.v4"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot open");
  });
});
