import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

function file(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "ctsim-rules-"));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("ctsim rules", () => {
  it("prints a summary of a rule set", async () => {
    const p = file(
      "ok.rules",
      "*filter\n:X - [0:0]\n-A INPUT -j X\n-A X -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    );
    const r = await run(["rules", p]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(": 1 table, 4 chains, 2 rules");
    expect(r.out).toMatch(/filter\s+X\s+-\s+1\s+INPUT/);
  });

  it("--save prints the canonical iptables-save form", async () => {
    const p = file("ok.rules", "*filter\n-A INPUT -p tcp --dport 22 -s 1.2.3.4 -j REJECT\nCOMMIT\n");
    const r = await run(["rules", p, "--save"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -s 1.2.3.4/32 -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n",
    );
  });

  it("bad input exits 2 with file:line:col for every error, no stack trace", async () => {
    const p = file("bad.rules", "*filter\n-A INPUT -m foo -j ACCEPT\n-A INPUT -j NOWHERE\nCOMMIT\n");
    const r = await run(["rules", p]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${p}:2:13: unknown match "foo" (supported: addrtype,`);
    expect(r.err).toContain(`${p}:3:13: unknown target or chain "NOWHERE"`);
    expect(r.err).not.toMatch(/\bat \S+ \(/);
  });

  it("--allow-unknown turns unknown extensions into warnings", async () => {
    const p = file("bad.rules", "*filter\n-A INPUT -m foo -j ACCEPT\nCOMMIT\n");
    const r = await run(["rules", p, "--allow-unknown", "--save"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("warning:");
    expect(r.out).toContain("-A INPUT -m foo -j ACCEPT");
  });

  it("a missing file exits 2", async () => {
    const r = await run(["rules", "/nonexistent/x.rules"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("/nonexistent/x.rules: cannot read: ENOENT");
  });
});
