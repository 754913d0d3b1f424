// `ctsim table tcp` through main(argv, io).
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

beforeAll(() => {
  process.env.NO_COLOR = "1";
});

describe("ctsim table tcp", () => {
  it("prints the whole grid with provenance and no colour codes", async () => {
    const r = await run("table", "tcp");
    expect(r.code).toBe(0);
    expect(r.out).toContain("Linux 6.17.0-rc3");
    expect(r.out).toMatch(/REPLY\s+│ syn\s+│ sIV │ sS2 │ sIV │ sIV │ sIV │ sIV │ sIV │ sSS │ sIV │ sS2 │/);
    expect(r.out).not.toMatch(/\u001b\[/);
  });
  it("prints the 3.10 grid with REPLY syn sTW = sIV", async () => {
    const r = await run("table", "tcp", "--kernel", "3.10");
    expect(r.out).toMatch(/REPLY\s+│ syn\s+│ sIV │ sS2 │ sIV │ sIV │ sIV │ sIV │ sIV │ sIV │ sIV │ sS2 │/);
  });
  it("one cell: a bare FIN in NONE is sIV and never reaches the table", async () => {
    const r = await run("table", "tcp", "--dir", "ORIGINAL", "--flags", "FIN", "--state", "NONE");
    expect(r.code).toBe(0);
    expect(r.out).toContain("tcp_conntracks[ORIGINAL][fin][sNO] = sIV");
    expect(r.out).toContain("Too late and no reason to do anything...");
    expect(r.out).toContain(
      "no conntrack is attached, so the nat table is not consulted and no NAT binding is made",
    );
    expect(r.out).toContain("tcp_error() rejects the flag combination first");
  });
  it("one cell: FIN|ACK in ESTABLISHED moves to FIN_WAIT, no tcp_error note", async () => {
    const r = await run("table", "tcp", "--dir", "original", "--flags", "FIN|ACK", "--state", "ESTABLISHED");
    expect(r.out).toContain("tcp_conntracks[ORIGINAL][fin][sES] = sFW");
    expect(r.out).toContain("moves to FIN_WAIT");
    expect(r.out).not.toContain("tcp_error() rejects");
  });
  it("one cell: RST|ACK uses the rst row; REPLY SYN in TIME_WAIT carries the kernel comment per profile", async () => {
    expect((await run("table", "tcp", "--dir", "REPLY", "--flags", "RA", "--state", "sES")).out).toContain(
      "tcp_conntracks[REPLY][rst][sES] = sCL",
    );
    const r6 = await run("table", "tcp", "--dir", "REPLY", "--flags", "SYN", "--state", "TIME_WAIT");
    expect(r6.out).toContain("Reopened connection, but server may have switched role");
    expect(r6.out).toContain("re-open");
    const r3 = await run(
      "table",
      "tcp",
      "--dir",
      "REPLY",
      "--flags",
      "SYN",
      "--state",
      "TIME_WAIT",
      "--kernel",
      "3.10",
    );
    expect(r3.out).toContain("= sIV");
    expect(r3.out).toContain("Reopened connection, but server may not do it.");
  });
  it("SYN in ESTABLISHED is sIG: the entry stays attached", async () => {
    const r = await run("table", "tcp", "--dir", "ORIGINAL", "--flags", "SYN", "--state", "ESTABLISHED");
    expect(r.out).toContain("= sIG");
    expect(r.out).toContain("IGNORE");
  });
  it("--diff lists exactly the differing cells", async () => {
    const r = await run("table", "tcp", "--diff", "3.10");
    expect(r.out.trim().split("\n")).toEqual([
      "cells that differ between kernel 6.18 and 3.10:",
      "  REPLY syn sTW: 6.18 sSS, 3.10 sIV",
    ]);
    const same = await run("table", "tcp", "--kernel", "5.10", "--diff", "4.19");
    expect(same.out).toContain("(none)");
  });
  it("bad input is a typed error with exit code 2, no stack trace", async () => {
    const cases: Array<[string[], string]> = [
      [["--dir", "SIDEWAYS", "--flags", "S", "--state", "NONE"], "TABLE_BAD_DIR"],
      [["--dir", "REPLY", "--flags", "SYN|BOGUS", "--state", "NONE"], "TABLE_BAD_FLAGS"],
      [["--dir", "REPLY", "--flags", "S", "--state", "LISTEN"], "TABLE_BAD_STATE"],
      [["--kernel", "2.4"], "TABLE_BAD_KERNEL"],
      [["--dir", "REPLY"], "TABLE_CELL_NEEDS_ALL"],
    ];
    for (const [args, code] of cases) {
      const r = await run("table", "tcp", ...args);
      expect(r.code, `${args.join(" ")}: got exit ${r.code}, want 2`).toBe(2);
      expect(r.err).toContain(`[${code}]`);
      expect(r.err).not.toContain("    at ");
    }
  });
  it("help has examples", async () => {
    const r = await run("table", "tcp", "--help");
    expect(r.code).toBe(0);
    expect(r.out).toContain("Examples:");
    expect(r.out).toContain("--diff 3.10");
  });
});
