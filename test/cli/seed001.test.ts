// Seed 001 against the field report's own TRACE lines (test/fixtures/seed001/SOURCES.md): with the 3.10 profile
// ctsim prints them field for field, MAC aside (the report's text capture carries no link header).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";

const path = (rel: string) => new URL(`../../${rel}`, import.meta.url).pathname;

async function traceLines(packets: string, kernel: string): Promise<string[]> {
  let stdout = "";
  let stderr = "";
  const code = await main(
    [
      "trace",
      "--host",
      path("examples/seed001/host.yaml"),
      "--rules",
      path("examples/seed001/rules.v4"),
      "--packets",
      path(packets),
      "--in",
      "eth0",
      "--kernel",
      kernel,
    ],
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  );
  expect(code, stderr).toBe(0);
  return stdout.split("\n").filter((l) => l.startsWith("TRACE: "));
}

const noMac = (l: string) => l.replace(/MAC=[0-9a-f:]* /, "MAC= ").trimEnd();

describe("seed 001 replays as the field report shows", () => {
  for (const [pkt, expected] of [
    ["syn.txt", "trace-syn.expected"],
    ["fin.txt", "trace-fin.expected"],
  ]) {
    it(`${pkt}: every TRACE line of the report (3.10 profile)`, async () => {
      const want = readFileSync(path(`test/fixtures/seed001/${expected}`), "utf8")
        .trimEnd()
        .split("\n")
        .map(noMac);
      const got = (await traceLines(`test/fixtures/seed001/${pkt}`, "3.10")).map(noMac);
      expect(got).toEqual(want);
    });
  }

  it("on 6.18 the POSTROUTING line names the input device, as the 6.18.44 recordings show", async () => {
    const got = await traceLines("test/fixtures/seed001/syn.txt", "6.18");
    expect(got[3]).toMatch(/^TRACE: nat:POSTROUTING:rule:1 IN=eth0 OUT=eth0 MAC=/);
  });
});
