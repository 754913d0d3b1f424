import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  formatTupleSpaceTable,
  simulateTupleSpace,
  tupleSpaceTable,
} from "../../../../src/sim/net/devices/tuple_space";

// The figures of examples/seed003-tproxy/README.md (golden: regenerate with the same parameters when the model changes).
const SEED003_CLIENTS = [100, 500, 1000, 2000, 5000, 10000] as const;
const SEED003_PARAMS = { perClientRate: 0.1, duration: 120, servers: 4, seed: 3 } as const;

describe("tuple space: cone device in front of a proxy (seed 003)", () => {
  it("the LVS alone never collides: it only needs tuples unique per server", () => {
    const r = simulateTupleSpace({ mode: "none", rate: 500, duration: 60, servers: 4 });
    expect(r.failed, `got ${r.failed} failures, want 0`).toBe(0);
  });

  it("NAT mode collapses every server onto the proxy's address: failures grow with load", () => {
    const low = simulateTupleSpace({ mode: "nat", rate: 20, duration: 60, servers: 4 });
    const high = simulateTupleSpace({ mode: "nat", rate: 400, duration: 60, servers: 4 });
    expect(high.failureRate).toBeGreaterThan(low.failureRate * 5);
    expect(high.reasons.proxyCollapsed, "the failures are collapsed tuples").toBe(high.failed);
  });

  it("with one server the NAT-mode collapse costs nothing (nothing to collapse)", () => {
    const r = simulateTupleSpace({ mode: "nat", rate: 400, duration: 60, servers: 1 });
    expect(r.reasons.proxyCollapsed).toBe(0);
  });

  it("pure TPROXY fails because upstream sockets take the LVS's own ports towards the same server", () => {
    const r = simulateTupleSpace({ mode: "tproxy", rate: 400, duration: 60, servers: 4 });
    expect(r.failed).toBeGreaterThan(0);
    expect(r.reasons.upstreamTaken).toBe(r.failed);
    // Each accepted connection holds two tuples of the LVS address towards its server.
    expect(r.peakBusy).toBeGreaterThan(((2 * 400 * 61 * 0.8) / 4) * 0.9);
  });

  it("is reproducible from its seed", () => {
    const a = simulateTupleSpace({ mode: "tproxy", rate: 100, duration: 30, servers: 2, seed: 9 });
    const b = simulateTupleSpace({ mode: "tproxy", rate: 100, duration: 30, servers: 2, seed: 9 });
    expect(a).toEqual(b);
  });

  it("reproduces the README table", () => {
    const got = formatTupleSpaceTable(tupleSpaceTable(SEED003_CLIENTS, SEED003_PARAMS));
    const readme = readFileSync(
      new URL("../../../../examples/seed003-tproxy/table.txt", import.meta.url),
      "utf8",
    );
    expect(got + "\n").toBe(readme);
  });
});
