import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeIpv4, isDecodeFailure } from "../../src/wire/ipv4";
import type { Packet } from "../../src/wire/packet";
import {
  maskTraceId,
  CTPROBE_STATES,
  compareAll,
  compareRecording,
  ctstateFromTrace,
  diffEgress,
  diffFields,
  egressFields,
  formatReport,
  hasCtprobe,
  maskConntrackTimer,
  parseArgs,
  recordedDatagram,
  routerAddresses,
  routerOriginated,
  totals,
  type SimPacketResult,
} from "./compare";
import { simulateConntrackOnly } from "./ctreplay_engine";
import { splitKmsg } from "./record";
import {
  ORACLE_DIR,
  SCENARIO_ROOT,
  listRecordings,
  listScenarios,
  loadRecording,
  loadScenario,
} from "./scenario";

const baseline = JSON.parse(readFileSync(join(ORACLE_DIR, "baseline.json"), "utf8")) as {
  agreement: number;
  conntrackAgreement: number;
};

/** The recording's own values as an engine would return them: egress as datagram bytes. */
function echoBytes(name: string): SimPacketResult[] {
  return loadRecording(name).packets.map((p) => ({
    trace: [...p.trace],
    log: [...(p.log ?? [])],
    egress: p.egress.map((e) => ({ iface: e.iface, bytes: recordedDatagram(e.hex) })),
    conntrack: [...p.conntrack],
  }));
}

/** The same, egress as decoded Packet values (re-encoded by the harness). */
function echoPackets(name: string): SimPacketResult[] {
  return loadRecording(name).packets.map((p) => ({
    trace: [...p.trace],
    log: [...(p.log ?? [])],
    egress: p.egress.map((e) => {
      const b = recordedDatagram(e.hex);
      const packet = decodeIpv4(b, 0, b.length, { tsSec: 0, tsNsec: 0 });
      if (isDecodeFailure(packet)) throw new Error(packet.failure);
      return { iface: e.iface, packet };
    }),
    conntrack: [...p.conntrack],
  }));
}

const routersOf = (name: string) => routerAddresses(loadScenario(join(SCENARIO_ROOT, name)).host);

describe("oracle recordings are well-formed", () => {
  const scenarios = listScenarios();
  const recordings = listRecordings();

  it("every scenario has a recording and every recording a scenario", () => {
    expect(scenarios.length, `got ${scenarios.length} scenarios, want at least 36`).toBeGreaterThanOrEqual(
      36,
    );
    expect(recordings).toEqual(scenarios);
  });

  for (const name of recordings)
    it(`${name}: provenance and per-packet fields`, () => {
      const rec = loadRecording(name);
      const sc = loadScenario(join(SCENARIO_ROOT, name));
      expect(rec.scenario).toBe(name);
      expect(rec.description, "recording description differs from scenario.yaml: re-record").toBe(
        sc.description,
      );
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

  it("every recorded egress packet decodes, with correct IP and transport checksums", () => {
    for (const name of recordings)
      for (const p of loadRecording(name).packets)
        for (const e of p.egress) {
          const f = new Map(egressFields(e.iface, recordedDatagram(e.hex)));
          const where = `${name} #${p.index} ${e.iface}`;
          expect(f.get("decode"), `${where}: got decode failure`).toBeUndefined();
          expect(f.get("ip.checksum"), `${where} ip.checksum`).toBe("correct");
          for (const k of ["tcp.checksum", "udp.checksum", "icmp.checksum"])
            if (f.has(k)) expect(f.get(k), `${where} ${k}`).toBe("correct");
        }
  });

  it("the plain-router scenarios (15-38) carry the CTPROBE chain and a ctstate for every packet", () => {
    // 15-38: the plain router; 39+ (match/target families) may use nat and need not carry CTPROBE.
    const plain = recordings.filter((n) => Number(n.slice(0, 2)) >= 15 && Number(n.slice(0, 2)) <= 38);
    expect(plain.length, `got ${plain.length} plain-router recordings, want >= 22`).toBeGreaterThanOrEqual(
      22,
    );
    for (const name of plain) {
      const sc = loadScenario(join(SCENARIO_ROOT, name));
      expect(sc.rulesText, `${name}: nat table rules`).not.toMatch(/^\*nat/m);
      for (const p of loadRecording(name).packets) {
        const st = ctstateFromTrace(p.trace);
        expect(st.length, `${name} #${p.index}: got ${st.length} CTPROBE lines, want 1`).toBe(1);
        expect(CTPROBE_STATES).toContain(st[0]);
      }
    }
  });
});

describe("ctstate probe", () => {
  it("maps CTPROBE rule numbers to states and a fall-through to NONE", () => {
    const got = ctstateFromTrace([
      "TRACE: raw:PREROUTING:policy:2 IN=eth0",
      "TRACE: mangle:CTPROBE:rule:5 IN=eth1",
      "TRACE: mangle:CTPROBE:rule:1 IN=eth1",
      "TRACE: mangle:CTPROBE:return:9 IN=eth1",
    ]);
    expect(got).toEqual(["ESTABLISHED REPLY", "INVALID", "NONE"]);
  });

  it("kernel facts seen in the recordings: SYN on ESTABLISHED is ignored, RST|ACK to a SYN removes the entry", () => {
    const syn = loadRecording("29-syn-on-established").packets[6];
    expect(ctstateFromTrace(syn.trace)).toEqual(["ESTABLISHED ORIGINAL"]);
    expect(syn.conntrack[0]).toContain(" ESTABLISHED ");
    const rst = loadRecording("24-rstack-answers-syn").packets[1];
    expect(rst.conntrack, "got an entry after RST|ACK, want none").toEqual([]);
  });
});

describe("egress comparison on decoded fields", () => {
  const name = "01-tcp-handshake-teardown";
  const want = loadRecording(name).packets[0].egress[0];
  const bytes = recordedDatagram(want.hex);

  it("equal datagrams have no differences; a changed TTL and a broken checksum are named", () => {
    const f = egressFields("eth1", bytes);
    expect(diffFields(f, f)).toEqual([]);
    const changed = bytes.slice();
    changed[8] = 64; // TTL, header checksum now wrong too
    const d = diffFields(egressFields("eth1", changed), f);
    expect(d).toContain("ip.ttl: got 64, want 63");
    expect(d).toContain("ip.checksum: got incorrect, want correct");
    const tcp = bytes.slice();
    tcp[20 + 16] ^= 0xff; // TCP checksum
    expect(diffFields(egressFields("eth1", tcp), f)).toEqual(["tcp.checksum: got incorrect, want correct"]);
  });

  it("masks the IP id only for router-originated packets", () => {
    // 01: MASQUERADEd SYN from the router's address but with the client's id: forwarded, not masked.
    const routers = routersOf(name);
    const input = recordedDatagram(loadRecording(name).packets[0].input.hex);
    const inputId = (input[4] << 8) | input[5];
    expect(routerOriginated(bytes, inputId, routers), "got masked for a forwarded packet").toBe(false);
    // 09: the router's own port unreachable: masked.
    const rec09 = loadRecording("09-udp-closed-port-local");
    const p09 = rec09.packets.find((p) => p.egress.length > 0)!;
    const in09 = recordedDatagram(p09.input.hex);
    const icmp = recordedDatagram(p09.egress[0].hex);
    expect(routerOriginated(icmp, (in09[4] << 8) | in09[5], routersOf(rec09.scenario))).toBe(true);
    const otherId = icmp.slice();
    otherId[4] ^= 0x55;
    const fields = (b: Uint8Array) => egressFields("eth0", b);
    expect(
      diffEgress(
        [{ iface: "eth0", fields: fields(otherId) }],
        [{ iface: "eth0", fields: fields(icmp), maskId: true }],
      ).filter((d) => d.includes("ip.id")),
    ).toEqual([]);
    expect(
      diffEgress([{ iface: "eth0", fields: fields(otherId) }], [{ iface: "eth0", fields: fields(icmp) }]),
    ).toContain(
      `egress eth0#1 ip.id: got ${((icmp[4] ^ 0x55) << 8) | icmp[5]}, want ${(icmp[4] << 8) | icmp[5]}`,
    );
  });

  it("decodes the inner header of an ICMP error", () => {
    const rec = loadRecording("36-icmp-error");
    const f = new Map(egressFields("eth0", recordedDatagram(rec.packets[1].egress[0].hex)));
    expect(f.get("icmp.type")).toBe("3");
    expect(f.get("icmp.code")).toBe("1");
    expect(f.get("inner.src")).toBe("198.51.100.2");
    expect(f.get("inner.dport")).toBe("80");
    expect(f.get("inner.sport")).toBe("42016");
    expect(f.get("inner.seq")).toBe("1000");
    expect(f.get("inner.checksum")).toBe("correct");
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

  for (const [label, echo] of [
    ["bytes", echoBytes],
    ["Packet values", echoPackets],
  ] as const)
    it(`an engine echoing every recording (egress as ${label}) agrees 100%`, () => {
      for (const name of listRecordings()) {
        const r = compareRecording(loadRecording(name), echo(name), undefined, {
          routerAddresses: routersOf(name),
        });
        const bad = r.packets.find((p) => p.diffs.length > 0);
        expect(bad?.diffs ?? [], `${name} #${bad?.index}`).toEqual([]);
        expect(totals([r]).agreement).toBe(100);
      }
    });

  it("a changed engine is caught per aspect, with a readable diff", () => {
    const name = "01-tcp-handshake-teardown";
    const rec = loadRecording(name);
    const bad = echoPackets(name);
    bad[0] = { ...bad[0], trace: bad[0].trace!.slice(1) };
    const e = bad[1].egress![0] as { iface: string; packet: Packet };
    bad[1] = {
      ...bad[1],
      egress: [{ iface: e.iface, packet: { ...e.packet, ip: { ...e.packet.ip, ttl: 64 } } }],
    };
    bad[2] = { ...bad[2], conntrack: bad[2].conntrack.map((l) => l.replace("ESTABLISHED", "SYN_RECV")) };
    bad[3] = { ...bad[3], egress: [] };
    const r = compareRecording(rec, bad);
    expect(r.packets.slice(0, 4).map((p) => [p.trace, p.egress, p.conntrack])).toEqual([
      [false, true, true],
      [true, false, true],
      [true, true, false],
      [true, false, true],
    ]);
    expect(r.packets[0].diffs[0]).toMatch(/^trace line 1: got /);
    expect(r.packets[1].diffs).toEqual(["egress eth0#1 ip.ttl: got 64, want 63"]);
    expect(r.packets[2].diffs[0]).toMatch(/^conntrack: got ".*SYN_RECV.*", want ".*ESTABLISHED.*"$/);
    expect(r.packets[3].diffs).toEqual(["egress on eth1: got 0 packets, want 1"]);
    expect(totals([r]).all).toBe(rec.packets.length - 4);
  });

  it("conntrack mode compares ctstate and entries only", () => {
    const name = "29-syn-on-established";
    const rec = loadRecording(name);
    expect(hasCtprobe(rec)).toBe(true);
    expect(hasCtprobe(loadRecording("01-tcp-handshake-teardown"))).toBe(false);
    const sim: SimPacketResult[] = rec.packets.map((p) => ({
      ctstate: ctstateFromTrace(p.trace),
      conntrack: [...p.conntrack],
    }));
    expect(totals([compareRecording(rec, sim, undefined, { mode: "conntrack" })]).agreement).toBe(100);
    sim[6] = { ...sim[6], ctstate: ["INVALID"] };
    const r = compareRecording(rec, sim, undefined, { mode: "conntrack" });
    expect(r.packets[6]).toMatchObject({ ctstate: false, conntrack: true });
    expect(r.packets[6].diffs).toEqual(["ctstate: got INVALID, want ESTABLISHED ORIGINAL"]);
    expect(r.packets[6].trace, "trace is not compared in conntrack mode").toBeUndefined();
  });

  it("parses its arguments", () => {
    expect(parseArgs([])).toEqual({ mode: "full", verbose: false });
    expect(parseArgs(["--only", "conntrack", "-v"])).toEqual({ mode: "conntrack", verbose: true });
    expect(parseArgs(["--only=nat"])).toMatch(/want "conntrack"/);
    expect(parseArgs(["--bogus"])).toMatch(/unknown argument/);
  });

  it("runs over every recording and does not fall below the committed baseline", async () => {
    const reports = await compareAll();
    expect(reports.length).toBe(listRecordings().length);
    const t = totals(reports);
    const engineMissing = reports.every((r) => r.error === "engine not implemented");
    if (t.agreement < baseline.agreement) console.log(formatReport(reports));
    console.log(
      `oracle agreement: ${t.agreement}% (${t.all}/${t.packets} packets)${engineMissing ? " — engine not implemented" : ""}`,
    );
    expect(formatReport(reports)).toMatch(/^total: \d+\/\d+ packets/m);
    expect(
      t.agreement,
      `got ${t.agreement}%, want >= baseline ${baseline.agreement}%`,
    ).toBeGreaterThanOrEqual(baseline.agreement);
  });

  it("conntrack-only agreement does not fall below the committed baseline", async () => {
    const reports = await compareAll(simulateConntrackOnly, "conntrack");
    expect(reports.length, "got no CTPROBE recordings").toBeGreaterThanOrEqual(22);
    const t = totals(reports);
    console.log(`oracle conntrack-only agreement: ${t.agreement}% (${t.all}/${t.packets} packets)`);
    expect(formatReport(reports, "conntrack")).toMatch(/^total \(conntrack only/m);
    expect(
      t.agreement,
      `got ${t.agreement}%, want >= baseline ${baseline.conntrackAgreement}%`,
    ).toBeGreaterThanOrEqual(baseline.conntrackAgreement);
  });
});

describe("maskTraceId", () => {
  const routers = new Set([0xcb007101]); // 203.0.113.1
  it("masks the outer id of a router-originated packet and keeps the quoted packet's", () => {
    const line =
      "TRACE: raw:OUTPUT:policy:1 IN= OUT=eth1 SRC=203.0.113.1 DST=203.0.113.2 LEN=56 TOS=0x00 PREC=0xC0 TTL=64 ID=51234 PROTO=ICMP TYPE=3 CODE=3 [SRC=203.0.113.2 DST=203.0.113.1 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=7 PROTO=UDP SPT=1 DPT=2 LEN=8 ]";
    const masked = maskTraceId(line, routers);
    expect(masked).toContain(" TTL=64 ID=* PROTO=ICMP");
    expect(masked).toContain(" TTL=64 ID=7 PROTO=UDP");
  });
  it("leaves forwarded packets alone", () => {
    const line =
      "TRACE: raw:PREROUTING:policy:2 IN=eth0 OUT= SRC=198.51.100.2 DST=203.0.113.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=1009 DF PROTO=TCP SPT=1 DPT=2 SEQ=1 ACK=0 WINDOW=512 RES=0x00 FIN URGP=0";
    expect(maskTraceId(line, routers)).toBe(line);
  });
});

describe("LOG lines (record.ts splitKmsg, compare.ts log)", () => {
  it("sorts kernel messages into TRACE and LOG lines and drops the rest", () => {
    const got = splitKmsg([
      "TRACE: raw:PREROUTING:policy:2 IN=eth0 OUT= SRC=1.2.3.4",
      "ctsim-tcp: IN=eth0 OUT=eth1 SRC=198.51.100.2 DST=203.0.113.2 ",
      "IN=eth0 OUT=eth1 SRC=198.51.100.2 ",
      "veth0: renamed from eth0",
    ]);
    expect(got.trace, "trace").toEqual(["TRACE: raw:PREROUTING:policy:2 IN=eth0 OUT= SRC=1.2.3.4"]);
    expect(got.log, "log").toEqual([
      "ctsim-tcp: IN=eth0 OUT=eth1 SRC=198.51.100.2 DST=203.0.113.2 ",
      "IN=eth0 OUT=eth1 SRC=198.51.100.2 ",
    ]);
  });
  it("compares a recording's log lines and counts a difference against the trace aspect", () => {
    const rec = loadRecording("55-target-LOG");
    const echo = rec.packets.map((p) => ({
      trace: [...p.trace],
      log: [...(p.log ?? [])],
      egress: p.egress.map((e) => ({ iface: e.iface, bytes: recordedDatagram(e.hex) })),
      conntrack: [...p.conntrack],
    }));
    expect(rec.packets[0].log?.length, "55 #0 log lines").toBeGreaterThan(0);
    const ok = compareRecording(rec, echo);
    expect(ok.packets.every((p) => p.trace)).toBe(true);
    const bad = echo.map((e, i) => (i === 0 ? { ...e, log: e.log.slice(1) } : e));
    const r = compareRecording(rec, bad);
    expect(r.packets[0].trace, "dropped LOG line").toBe(false);
    expect(r.packets[0].diffs[0]).toMatch(/^log line 1: got "/);
    const none = echo.map((e) => ({ ...e, log: undefined }));
    expect(compareRecording(rec, none).packets[0].trace, "no log from the engine").toBe(false);
  });
});

describe("ipsets and listeners (67-69)", () => {
  it("loads the ipsets key and hands its text to the engine", async () => {
    const sc = loadScenario(join(SCENARIO_ROOT, "69-match-set"));
    expect(sc.ipsetsFile, `got ${sc.ipsetsFile}, want ipsets.save`).toBe("ipsets.save");
    expect(sc.ipsetsText).toContain("create clients hash:ip");
    const { simInput } = await import("./compare");
    expect(simInput(sc).ipsetsText).toBe(sc.ipsetsText);
    expect(simInput(loadScenario(join(SCENARIO_ROOT, "58-target-DNAT"))).ipsetsText).toBeUndefined();
  });

  it("answers listener lookups exact address first, owned by root", async () => {
    const { rootListeners } = await import("../../src/sim/scenario");
    const sc = loadScenario(join(SCENARIO_ROOT, "68-match-socket"));
    const look = rootListeners(sc.host);
    const q = { protocol: "tcp" as const, saddr: 0xc6336402, sport: 41000, dport: 3131 };
    const exact = look({ ...q, daddr: 0xcb00715a }, "listener"); // 203.0.113.90
    expect(exact?.address, `got ${exact?.address}, want 203.0.113.90`).toBe(0xcb00715a);
    expect(exact?.uid).toBe(0);
    expect(look({ ...q, daddr: 0xcb00715b }, "listener")).toBeUndefined(); // .91: only .90 is bound
    expect(look({ ...q, dport: 3129, daddr: 0xcb00715b }, "listener")?.address).toBe(0); // wildcard
    expect(look({ ...q, daddr: 0xcb00715a }, "established")).toBeUndefined();
  });
});
