import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run, seed001 } from "./cli_helpers";

const example = seed001;
const dir = mkdtempSync(join(tmpdir(), "ctsim-test-"));

describe("ctsim test", () => {
  it("seed 001: the reported behaviour and the fixed rule set both pass (exit 0)", async () => {
    const r = await run("test", example("seed001.test.yaml"), example("rules-fixed.test.yaml"));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("9 cases in 2 files: 9 passed, 0 failed, 0 errors");
  });

  it("the reported rules against the fixed expectations fail (exit 1) with a per-field diff", async () => {
    const text = readFileSync(example("rules-fixed.test.yaml"), "utf8").replace(
      "rules: rules-fixed.v4",
      `rules: ${example("rules.v4")}`,
    );
    const f = join(dir, "leak.test.yaml");
    writeFileSync(f, text.replace("host: host.yaml", `host: ${example("host.yaml")}`));
    const junit = join(dir, "out.xml");
    const json = join(dir, "out.json");
    const r = await run("test", f, "--junit", junit, "--json", json);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FAIL  a bare FIN with no conntrack entry is dropped in FORWARD, not leaked");
    expect(r.stdout).toMatch(
      /leak\.test\.yaml:22:9 {2}fate\n {12}want: dropped\n {12}got: {2}forwarded \(left on eth0\)/,
    );
    expect(r.stdout).toContain("5 cases in 1 file: 2 passed, 3 failed, 0 errors");
    expect(readFileSync(junit, "utf8")).toContain(
      '<testsuite name="' + f + '" tests="5" failures="3" errors="0"',
    );
    const j = JSON.parse(readFileSync(json, "utf8"));
    expect(j.exitCode).toBe(1);
  });

  it("bad input exits 2 with file:line:column", async () => {
    const f = join(dir, "bad.test.yaml");
    writeFileSync(
      f,
      `host: ${example("host.yaml")}\nrules: ${example("rules.v4")}\ncases:\n  - name: x\n    packets: |\n      eth0 In IP 1.2.3.4.5 > 6.7.8.9.10: Flags [S], seq 1, win 1, length 0\n    expect:\n      - fat: dropped\n`,
    );
    const r = await run("test", f);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${f}:8:9: unknown key "fat" in an expectation (did you mean "fate"?)`);
  });

  it("--json - prints JSON on stdout and the report on stderr", async () => {
    const r = await run("test", example("seed001.test.yaml"), "--json", "-");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).passed).toBe(4);
    expect(r.stderr).toContain("4 passed");
  });
});
