import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRuleset } from "../../src/netfilter/parse_script";
import { HostSim } from "../../src/sim/host";
import { simulateScenario } from "../../src/sim/scenario";
import { simInput } from "../oracle/compare";
import { SCENARIO_ROOT, listScenarios, loadScenario } from "../oracle/scenario";

// Quiet mode rewrites one working copy of each forwarded packet in place instead of copying it at every step.
// Over every kernel-recorded scenario it must leave the same packets and the same conntrack table as a full run,
// also when the caller hands each packet over to be rewritten in place (consume).
describe("HostSim quiet mode over the oracle scenarios", () => {
  const names = listScenarios();
  it("has scenarios to replay", () => {
    expect(names.length, "oracle scenarios").toBeGreaterThan(30);
  });
  for (const name of names) {
    it(`${name}: same egress packets and conntrack entries as a full run`, () => {
      const input = simInput(loadScenario(join(SCENARIO_ROOT, name)));
      const loud = simulateScenario(input);
      for (const consume of [false, true]) {
        const quiet = simulateScenario(input, { quiet: true, consume });
        expect(quiet.length).toBe(loud.length);
        quiet.forEach((q, i) => {
          expect(q.trace, `packet ${i}: quiet records no TRACE lines`).toEqual([]);
          expect(q.egress, `packet ${i} (consume ${consume}): egress`).toEqual(loud[i].egress);
          expect(q.conntrack, `packet ${i} (consume ${consume}): conntrack`).toEqual(loud[i].conntrack);
        });
      }
    });
  }
});

describe("HostSim quiet mode reuses its report", () => {
  it("returns one report object, describing the latest packet each time", () => {
    const input = simInput(loadScenario(join(SCENARIO_ROOT, listScenarios()[0])));
    const loaded = loadRuleset(input.rulesText, { file: input.rulesFile });
    const sim = new HostSim({ host: input.host, ruleset: loaded.ruleset, sysctl: input.sysctl, quiet: true });
    const [a, b] = [input.packets[0], input.packets[1] ?? input.packets[0]];
    const r1 = sim.receive(structuredClone(a), { time: 1 });
    const fate1 = r1.packets[0].fate;
    const r2 = sim.receive(structuredClone(b), { time: 2 });
    expect(r2, "the same object").toBe(r1);
    expect(r2.index).toBe(1);
    expect(r2.time).toBe(2);
    expect(r2.packets[0].id).toBe(0);
    expect(r2.packets[0].input.ip.src).toBe(b.ip.src);
    expect(r2.packets[0].fate, "a fate of its own").toBeDefined();
    expect(fate1).toBeDefined();
    // Egress entries describe this packet's own departure (or there are none).
    for (const e of r2.egress) if (e.packetId === 0) expect(e.packet).toBe(r2.packets[0].out);
    if (r2.packets[0].fate?.kind === "left") expect(r2.egress.length).toBeGreaterThan(0);
  });
});
