/**
 * ctsim's `--format xtables-monitor` and `--format nft` (src/trace/monitor.ts) against the real tools
 * (test/oracle/monitor/recordings, iptables-nft 1.8.9 / nftables 1.0.6 on Linux 6.18.44), packet by packet,
 * with the trace id masked (and the IP id of packets the router sent itself). The second recordings in
 * monitor/rerun show that nothing else changes from one run to the next.
 */
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import {
  compareMonitor,
  diffLines,
  listMonitorRecordings,
  loadMonitorRecording,
  maskGeneratedIpId,
  maskTraceIds,
} from "./monitor/compare";
import { ORACLE_DIR } from "./scenario";

const RERUN = join(ORACLE_DIR, "monitor", "rerun");

/** Differences we know about and cannot fix in the formatter (see test/oracle/README.md): none left. */
const KNOWN: Record<string, string[]> = {};

describe("xtables-monitor / nft monitor trace against the real tools", () => {
  const names = listMonitorRecordings();
  it("has recordings of at least 5 oracle scenarios", () => {
    expect(names.length, `got ${names.length} recordings`).toBeGreaterThanOrEqual(5);
  });
  for (const name of names) {
    it(`${name}: every packet agrees (known differences listed)`, () => {
      const rec = loadMonitorRecording(name);
      expect(rec.provenance.kernel).toMatch(/^\d+\.\d+/);
      expect(rec.provenance.iptables).toContain("nf_tables");
      expect(rec.provenance.nft).toMatch(/^nftables v/);
      const r = compareMonitor(rec);
      const got = r.diffs.map(
        (d) => `#${d.index} ${d.tool}` + (KNOWN[name] ? "" : `\n  got  ${d.got}\n  want ${d.want}`),
      );
      expect(got, `${name}: differences`).toEqual(KNOWN[name] ?? []);
    });
  }
});

describe("what is random per run", () => {
  for (const name of listMonitorRecordings(RERUN)) {
    it(`${name}: a second recording differs only in trace ids and generated packets' IP ids`, () => {
      const a = loadMonitorRecording(name);
      const b = loadMonitorRecording(name, RERUN);
      expect(b.packets.length).toBe(a.packets.length);
      let rawSame = 0;
      let idOnly = 0;
      a.packets.forEach((p, i) => {
        for (const tool of ["xtablesMonitor", "nftMonitor"] as const) {
          const x = p[tool];
          const y = b.packets[i][tool];
          rawSame += x.filter((l, k) => l === y[k]).length;
          if (diffLines(x, y) >= 0) throw new Error(`${name} #${i} ${tool}: differs after masking`);
          if (maskTraceIds(x).some((l, k) => l !== maskTraceIds(y)[k])) idOnly++;
        }
      });
      // The trace ids really change (no line is byte-identical) ...
      expect(rawSame, "byte-identical lines between the two runs").toBe(0);
      // ... and so do the IP ids of the ICMP errors the router sent (02 sends none: the trace id is all).
      const generated = a.packets.some((p) => maskTraceIds(p.xtablesMonitor).some((l) => l.includes(" #2 ")));
      expect(idOnly > 0, "packets differing in more than the trace id").toBe(generated);
    });
  }
});

describe("masking", () => {
  const lines = [
    "PACKET: 2 0a0b0c0d IN=eth0 SRC=198.51.100.2 DST=203.0.113.2 LEN=44 TOS=0x0 TTL=64 ID=1001 DF ",
    " TRACE: 2 0a0b0c0d raw:PREROUTING:policy:ACCEPT ",
    "PACKET: 2 deadbeef OUT=eth0 SRC=198.51.100.1 DST=198.51.100.2 LEN=66 TOS=0xc0 TTL=64 ID=2408 ",
    'trace id deadbeef ip raw OUTPUT packet: oif "eth0" ip saddr 198.51.100.1 ip id 2408 ip length 66 ',
  ];
  it("numbers trace ids by first appearance, so lines of one skb stay together", () => {
    expect(maskTraceIds(lines).map((l) => l.slice(0, 16))).toEqual([
      "PACKET: 2 #1 IN=",
      " TRACE: 2 #1 raw",
      "PACKET: 2 #2 OUT",
      "trace id #2 ip r",
    ]);
  });
  it("masks the IP id of generated packets only", () => {
    const m = maskGeneratedIpId(maskTraceIds(lines));
    expect(m[0]).toContain(" ID=1001 ");
    expect(m[2]).toContain(" ID=* ");
    expect(m[3]).toContain(" ip id * ");
  });
  it("still catches a change anywhere else", () => {
    const changed = [...lines];
    changed[0] = changed[0].replace("TTL=64", "TTL=63");
    expect(diffLines(changed, lines)).toBe(0);
    expect(diffLines(lines.slice(0, 3), lines)).toBe(3);
    expect(
      diffLines(
        lines.map((l) => l.replace("0a0b0c0d", "01020304")),
        lines,
      ),
    ).toBe(-1);
  });
});
