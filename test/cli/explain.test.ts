import { describe, expect, it } from "vitest";
import { SEED001_ARGS, run, seed001 } from "./cli_helpers";

const example = seed001;
const SEED = SEED001_ARGS;

describe("ctsim explain", () => {
  it("seed 001 --packet 2: the FIN's reason, the skipped MASQUERADE and a tested fix", async () => {
    const r = await run("explain", ...SEED, "--packet", "2");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Packet 2 (");
    expect(r.stdout).toContain('Decided by tcp_error(): "invalid tcp flag combination".');
    expect(r.stdout).toContain("never evaluated: nat:POSTROUTING:rule:1  -A POSTROUTING -j MASQUERADE");
    expect(r.stdout).toMatch(
      /1\. iptables -I FORWARD 1 -m conntrack --ctstate INVALID -j DROP\n.*\n\s+tried: changes the outcome/,
    );
    expect(r.stdout).not.toContain("\u001b[");
  });

  it("--match selects packets; --format json gives one object per packet", async () => {
    const r = await run("explain", ...SEED, "--match", "tcp and src port 1836", "--format", "json");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    const e = JSON.parse(lines[0]);
    expect([e.packet, e.conntrack.cell]).toEqual([1, "tcp_conntracks[ORIGINAL][syn][NONE] = sSS"]);
  });

  it("a filter outside the subset exits 2 with its column", async () => {
    const r = await run("explain", ...SEED, "--match", "tcp and portrange 1-2");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--match:1:9: "portrange" is not supported');
  });

  it("--packet out of range exits 2", async () => {
    const r = await run("explain", ...SEED, "--packet", "3");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the input has 2 packet(s), got 3");
  });
});
