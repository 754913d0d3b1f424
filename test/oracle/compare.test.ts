import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  compareAll,
  compareRecording,
  maskConntrackTimer,
  normaliseEgressText,
  totals,
  type SimPacketResult,
} from "./compare";
import { ORACLE_DIR, listRecordings, listScenarios, loadRecording } from "./scenario";

const baseline = JSON.parse(readFileSync(join(ORACLE_DIR, "baseline.json"), "utf8")) as { agreement: number };

/** The recording's own values as an engine would return them. */
function echo(name: string): SimPacketResult[] {
  return loadRecording(name).packets.map((p) => ({
    trace: [...p.trace],
    egress: p.egress.map((e) => ({ iface: e.iface, text: e.text })),
    conntrack: [...p.conntrack],
  }));
}

describe("oracle recordings are well-formed", () => {
  const scenarios = listScenarios();
  const recordings = listRecordings();

  it("every scenario has a recording and every recording a scenario", () => {
    expect(scenarios.length, `got ${scenarios.length} scenarios, want at least 12`).toBeGreaterThanOrEqual(
      12,
    );
    expect(recordings).toEqual(scenarios);
  });

  for (const name of recordings)
    it(`${name}: provenance and per-packet fields`, () => {
      const rec = loadRecording(name);
      expect(rec.scenario).toBe(name);
      expect(rec.description.length).toBeGreaterThan(0);
      expect(rec.provenance.kernel).toMatch(/^\d+\.\d+/);
      expect(rec.provenance.command).toContain("test/oracle/record.ts");
      expect(rec.provenance.iptables).toContain("legacy");
      expect(rec.provenance.conntrack).toContain("conntrack");
      expect(Number.isNaN(Date.parse(rec.provenance.date))).toBe(false);
      expect(rec.packets.length).toBeGreaterThan(0);
      rec.packets.forEach((p, i) => {
        expect(p.index, `packet ${i}: got index ${p.index}`).toBe(i);
        expect(p.input.text.length).toBeGreaterThan(0);
        expect(p.input.hex).toMatch(/^([0-9a-f]{2})+$/);
        expect(Array.isArray(p.trace) && Array.isArray(p.egress) && Array.isArray(p.conntrack)).toBe(true);
        for (const t of p.trace) expect(t.startsWith("TRACE: "), `got trace line "${t}"`).toBe(true);
        for (const e of p.egress) {
          expect(e.iface).toMatch(/^\S+$/);
          expect(e.text).toMatch(/^IP /);
          expect(e.hex).toMatch(/^([0-9a-f]{2})+$/);
        }
        for (const c of p.conntrack) expect(c).toMatch(/^ipv4\s+2\s+\S+\s+\d+\s+\d+ /);
      });
    });

  it("the kernel saw every packet (each one produced at least one TRACE line)", () => {
    for (const name of recordings)
      for (const p of loadRecording(name).packets)
        expect(p.trace.length, `${name} #${p.index}: got no TRACE lines`).toBeGreaterThan(0);
  });
});

describe("comparison", () => {
  it("masks the conntrack timer only", () => {
    const a =
      "ipv4     2 tcp      6 119 SYN_SENT src=198.51.100.2 dst=192.0.2.80 sport=1 dport=80 [UNREPLIED]";
    const b = a.replace(" 119 ", " 7 ");
    expect(maskConntrackTimer(a)).toBe(maskConntrackTimer(b));
    expect(maskConntrackTimer(a)).not.toBe(maskConntrackTimer(a.replace("SYN_SENT", "CLOSE")));
  });

  it("masks the IP id of ICMP errors but not of echo or TCP", () => {
    const err =
      "IP (tos 0xc0, ttl 64, id 4242, offset 0, flags [none], proto ICMP (1), length 66) x > y: ICMP y udp port 9 unreachable";
    expect(normaliseEgressText(err)).toContain("id *");
    const tcp =
      "IP (tos 0x0, ttl 63, id 1001, offset 0, flags [DF], proto TCP (6), length 44) a > b: Flags [S]";
    expect(normaliseEgressText(tcp)).toBe(tcp);
  });

  it("an engine echoing the recording agrees 100%; a changed one is caught per aspect", () => {
    const name = listRecordings().find((n) => n.startsWith("01-"))!;
    const rec = loadRecording(name);
    const good = compareRecording(rec, echo(name));
    expect(totals([good]).agreement).toBe(100);
    const bad = echo(name);
    bad[0] = { ...bad[0], trace: bad[0].trace.slice(1) };
    bad[1] = { ...bad[1], egress: [] };
    bad[2] = { ...bad[2], conntrack: bad[2].conntrack.map((l) => l.replace("ESTABLISHED", "SYN_RECV")) };
    const r = compareRecording(rec, bad);
    expect(r.packets.slice(0, 3).map((p) => [p.trace, p.egress, p.conntrack])).toEqual([
      [false, true, true],
      [true, false, true],
      [true, true, false],
    ]);
    expect(r.packets[0].note).toMatch(/^trace/);
    expect(totals([r]).all).toBe(rec.packets.length - 3);
  });

  it("runs over every recording and does not fall below the committed baseline", async () => {
    const reports = await compareAll();
    expect(reports.length).toBe(listRecordings().length);
    const t = totals(reports);
    const engineMissing = reports.every((r) => r.error === "engine not implemented");
    console.log(
      `oracle agreement: ${t.agreement}% (${t.all}/${t.packets} packets)${engineMissing ? " — engine not implemented" : ""}`,
    );
    expect(
      t.agreement,
      `got ${t.agreement}%, want >= baseline ${baseline.agreement}%`,
    ).toBeGreaterThanOrEqual(baseline.agreement);
  });
});
