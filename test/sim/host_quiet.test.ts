import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseHostFile } from "../../src/host/hostfile";
import { loadRuleset } from "../../src/netfilter/parse_script";
import { parseTcpdumpText } from "../../src/wire/text";
import { HostSim } from "../../src/sim/host";

const SEED = join(__dirname, "../../examples/seed001");

function seedSim(quiet: boolean): HostSim {
  const loaded = loadRuleset(readFileSync(join(SEED, "rules.v4"), "utf8"), { file: "rules.v4" });
  expect(loaded.errors, "rules must load").toEqual([]);
  const host = parseHostFile(readFileSync(join(SEED, "host.yaml"), "utf8"), "host.yaml");
  return new HostSim({ host, ruleset: loaded.ruleset, seed: 7, quiet });
}

function seedPackets() {
  const r = parseTcpdumpText(readFileSync(join(SEED, "packets.txt"), "utf8"), { file: "packets.txt" });
  expect(r.errors).toEqual([]);
  expect(r.packets.length, "seed 001 has packets").toBeGreaterThan(0);
  return r.packets;
}

describe("HostSim quiet option (ctsim trace --quiet)", () => {
  it("decides every packet as without it, counts TRACE hits, records no TRACE hits, events or step detail", () => {
    const loud = seedSim(false);
    const quiet = seedSim(true);
    let records = 0;
    let events = 0;
    let steps = 0;
    for (const p of seedPackets()) {
      const a = loud.receive(p);
      const b = quiet.receive(p);
      records += a.trace.length;
      events += a.events.length;
      expect(b.trace, "quiet: no TRACE records").toEqual([]);
      expect(b.events, "quiet: no conntrack events").toEqual([]);
      expect(b.packets.map((j) => j.fate)).toEqual(a.packets.map((j) => j.fate));
      expect(b.packets.map((j) => j.input)).toEqual(a.packets.map((j) => j.input));
      expect(b.packets.map((j) => j.out)).toEqual(a.packets.map((j) => j.out));
      expect(b.egress.map((e) => e.packet)).toEqual(a.egress.map((e) => e.packet));
      // No per-step detail is recorded.
      for (const j of b.packets) {
        expect([j.hooks.length, j.nat.length, j.log.length, j.ct], `quiet journey ${j.id}`).toEqual([
          0,
          0,
          0,
          undefined,
        ]);
      }
      steps += a.packets.reduce((n, j) => n + j.hooks.length + j.nat.length, 0);
    }
    expect(records, "seed 001 is traced").toBeGreaterThan(0);
    expect(events, "seed 001 has conntrack events").toBeGreaterThan(0);
    expect(steps, "the loud run records hook labels and NAT steps").toBeGreaterThan(0);
    expect(loud.traceHits, `got ${loud.traceHits} hits counted, want ${records} records`).toBe(records);
    expect(quiet.traceHits, `got ${quiet.traceHits} quiet hits, want ${records}`).toBe(records);
    expect(quiet.conntrackLines()).toEqual(loud.conntrackLines());
  });
});
