// Conntrack-only replay: packet dialogues through a host without rules, grouped by what the host does with them.
import { describe, expect, it } from "vitest";
import { CtReplay, replayConntrack } from "../../src/sim/ctreplay";
import type { CtReplayStep } from "../../src/sim/ctreplay";
import { parseHostFile } from "../../src/host/hostfile";
import { InputError } from "../../src/errors";
import type { Packet } from "../../src/wire/packet";
import { tcp, udp } from "../conntrack/packets";

/** The packet at time `t` seconds, arriving on `iface`. */
function at(t: number, p: Packet, extra: Partial<Packet> = {}): Packet {
  return { ...p, tsSec: Math.floor(t), tsNsec: Math.round((t % 1) * 1e9), iface: "eth0", ...extra };
}

const GATEWAY = parseHostFile(
  `hostname: gw
interfaces:
  - { name: eth0, mac: "02:00:00:00:00:01", addresses: ["192.0.2.1/24"] }
  - { name: eth1, mac: "02:00:00:00:00:02", addresses: ["198.51.100.1/24"] }
routes:
  - default via 198.51.100.254 dev eth1
  - blackhole 203.0.113.0/24
sysctl:
  net.ipv4.ip_forward: 1
  net.ipv4.conf.all.rp_filter: 1
`,
  "gw.yaml",
);

const SERVER = parseHostFile(
  `interfaces:
  - { name: eth0, mac: "02:00:00:00:00:01", addresses: ["192.0.2.1/24"] }
`,
  "server.yaml",
);

function expectStep(got: CtReplayStep, want: Partial<CtReplayStep>): void {
  for (const [k, v] of Object.entries(want)) {
    expect((got as unknown as Record<string, unknown>)[k], `step ${got.index} ${k}`).toEqual(v);
  }
}

describe("forwarded TCP through the default router", () => {
  const steps = replayConntrack([
    at(10, tcp("10.0.0.2:40000", "192.0.2.80:80", "S", 1000, 0)),
    at(10.001, tcp("192.0.2.80:80", "10.0.0.2:40000", "SA", 5000, 1001)),
    at(10.002, tcp("10.0.0.2:40000", "192.0.2.80:80", "A", 1001, 5001)),
  ]);

  it("SYN: NEW, SYN_SENT from the NONE cell, forwarded, entry UNREPLIED", () => {
    expectStep(steps[0], {
      state: "NEW",
      ctinfo: "IP_CT_NEW",
      dir: "ORIGINAL",
      tcp: { oldState: "NONE", newState: "SYN_SENT", cell: "tcp_conntracks[ORIGINAL][syn][NONE]" },
      hooks: ["PRE_ROUTING", "FORWARD", "POST_ROUTING"],
      path: "forward",
      fate: "forwarded",
    });
    expect(steps[0].entry?.line).toBe(
      "tcp      6 120 SYN_SENT src=10.0.0.2 dst=192.0.2.80 sport=40000 dport=80 [UNREPLIED] " +
        "src=192.0.2.80 dst=10.0.0.2 sport=80 dport=40000 mark=0 use=1",
    );
    expect(steps[0].entry?.extended.startsWith("ipv4     2 tcp      6 120 SYN_SENT ")).toBe(true);
    expect(steps[0].events.map((e) => e.type)).toEqual(["NEW"]);
  });

  it("SYN/ACK: ESTABLISHED reply, SYN_SENT -> SYN_RECV", () => {
    expectStep(steps[1], {
      state: "ESTABLISHED",
      ctinfo: "IP_CT_ESTABLISHED_REPLY",
      dir: "REPLY",
      tcp: { oldState: "SYN_SENT", newState: "SYN_RECV", cell: "tcp_conntracks[REPLY][synack][SYN_SENT]" },
    });
    expect(steps[1].events.map((e) => e.type)).toEqual(["UPDATE"]);
  });

  it("ACK: ESTABLISHED and ASSURED, timer from the established timeout", () => {
    expectStep(steps[2], {
      state: "ESTABLISHED",
      ctinfo: "IP_CT_ESTABLISHED",
      dir: "ORIGINAL",
      tcp: { oldState: "SYN_RECV", newState: "ESTABLISHED", cell: "tcp_conntracks[ORIGINAL][ack][SYN_RECV]" },
    });
    expect(steps[2].entry?.line).toMatch(/^tcp {6}6 432000 ESTABLISHED .* \[ASSURED\] mark=0 use=1$/);
    expect(steps[0].entry?.id).toBe(steps[2].entry?.id);
  });
});

describe("INVALID packets", () => {
  it("a bare FIN is INVALID from tcp_error and still forwarded, leaving no entry", () => {
    const r = new CtReplay();
    const s = r.step(at(1, tcp("10.0.0.2:1914", "2.2.2.2:80", "F", 1, 0)));
    expectStep(s, { state: "INVALID", path: "forward", fate: "forwarded" });
    expect(s.reason).toEqual({ fn: "tcp_error", text: "invalid tcp flag combination" });
    expect(s.entry).toBeUndefined();
    expect(r.conntrack.count).toBe(0);
  });

  it("--sysctl nf_conntrack_tcp_loose=0: a mid-stream ACK is INVALID from tcp_new", () => {
    const steps = replayConntrack([at(1, tcp("10.0.0.2:1000", "2.2.2.2:80", "A", 1, 1))], {
      sysctl: { nf_conntrack_tcp_loose: "0" },
    });
    expectStep(steps[0], { state: "INVALID" });
    expect(steps[0].reason?.fn).toBe("tcp_new");
    const loose = replayConntrack([at(1, tcp("10.0.0.2:1000", "2.2.2.2:80", "A", 1, 1))]);
    expect(loose[0].state, "with the default tcp_loose=1 the ACK is picked up").toBe("NEW");
  });

  it("the 3.10 profile uses its own log text", () => {
    const steps = replayConntrack([at(1, tcp("10.0.0.2:1914", "2.2.2.2:80", "F", 1, 0))], { kernel: "3.10" });
    expect(steps[0].reason?.text).toBe("invalid TCP flag combination");
  });
});

describe("routing decision of a host", () => {
  it("a packet to one of the host's addresses goes PRE_ROUTING -> LOCAL_IN and is confirmed", () => {
    const r = new CtReplay({ host: SERVER });
    const s = r.step(at(1, udp("192.0.2.7:5353", "192.0.2.1:53")));
    expectStep(s, { state: "NEW", path: "local", fate: "local", hooks: ["PRE_ROUTING", "LOCAL_IN"] });
    expect(r.conntrack.count).toBe(1);
  });

  it("not local and ip_forward unset (0): dropped before confirm, no entry remains", () => {
    const r = new CtReplay({ host: SERVER });
    expect(r.forwarding).toBe(false);
    const s = r.step(at(1, udp("192.0.2.7:5353", "8.8.8.8:53")));
    expectStep(s, { state: "NEW", path: "dropped", hooks: ["PRE_ROUTING"] });
    expect(s.fate).toMatch(/^dropped: not local and net.ipv4.ip_forward=0/);
    expect(s.entry).toBeUndefined();
    expect(r.conntrack.count, "got entries after a dropped NEW packet").toBe(0);
    expect(s.events).toEqual([]);
  });

  it("--sysctl net.ipv4.ip_forward=1 turns forwarding on", () => {
    const r = new CtReplay({ host: SERVER, sysctl: { "net.ipv4.ip_forward": 1 } });
    expect(r.step(at(1, udp("192.0.2.7:5353", "192.0.2.9:53"))).path).toBe("forward");
  });

  it("forwarding follows table main: default route, connected route, blackhole", () => {
    const r = new CtReplay({ host: GATEWAY });
    expect(r.ignoredSysctls).toEqual(["net.ipv4.conf.all.rp_filter"]);
    expect(r.step(at(1, udp("192.0.2.7:1", "8.8.8.8:53"))).fate).toBe(
      "forwarded (out eth1 via 198.51.100.254)",
    );
    expect(r.step(at(1, udp("198.51.100.9:1", "192.0.2.7:53"))).fate).toBe("forwarded (out eth0)");
    const bh = r.step(at(1, udp("192.0.2.7:1", "203.0.113.5:53")));
    expectStep(bh, { path: "dropped" });
    expect(bh.fate).toMatch(/^dropped: route type blackhole/);
  });

  it("an Out packet from the host is LOCAL_OUT -> POST_ROUTING; an Out copy of a forwarded one is not seen", () => {
    const r = new CtReplay({ host: GATEWAY });
    const out = r.step(at(1, udp("198.51.100.1:40000", "8.8.8.8:53"), { direction: "Out" }));
    expectStep(out, { state: "NEW", path: "output", fate: "sent", hooks: ["LOCAL_OUT", "POST_ROUTING"] });
    const copy = r.step(at(1, udp("192.0.2.7:1", "8.8.8.8:53"), { direction: "Out" }));
    expectStep(copy, { state: "NOT_SEEN", path: "not-seen", hooks: [] });
    expect(r.conntrack.count).toBe(1);
  });
});

describe("time from packet timestamps", () => {
  it("a UDP entry lives 30 s from its last packet: DESTROY is delivered before the next packet, which is NEW again", () => {
    const steps = replayConntrack([
      at(100, udp("10.0.0.2:1000", "192.0.2.53:53")),
      at(129.5, udp("10.0.0.2:1000", "192.0.2.53:53")),
      at(160, udp("10.0.0.2:1000", "192.0.2.53:53")),
    ]);
    expect(steps.map((s) => s.state)).toEqual(["NEW", "NEW", "NEW"]);
    expect(
      steps[1].events.map((e) => e.type),
      "29.5 s later the entry still lives",
    ).toEqual([]);
    expect(steps[1].entry?.line, "the second datagram refreshes the timer").toMatch(/^udp {6}17 30 /);
    expect(steps[2].events.map((e) => e.type)).toEqual(["DESTROY", "NEW"]);
    expect(steps[2].entry?.id).toBe(2);
  });

  it("snapshots: the whole table after each packet", () => {
    const steps = replayConntrack(
      [at(1, udp("10.0.0.2:1000", "192.0.2.53:53")), at(2, udp("10.0.0.3:1000", "192.0.2.53:53"))],
      { snapshots: true },
    );
    expect(steps.map((s) => s.table?.length)).toEqual([1, 2]);
  });
});

describe("bad options", () => {
  it("an unknown conntrack sysctl is an InputError with its code", () => {
    try {
      new CtReplay({ sysctl: { "net.netfilter.nf_conntrack_bogus": 1 } });
      expect.fail("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).diagnostic.code).toBe("SYSCTL_UNKNOWN");
    }
  });

  it("an unknown kernel profile is an InputError", () => {
    expect(() => new CtReplay({ kernel: "9.9" })).toThrow(/unknown kernel profile "9.9"/);
  });

  it("ip_forward must be 0 or 1", () => {
    expect(() => new CtReplay({ sysctl: { "net.ipv4.ip_forward": "yes" } })).toThrow(InputError);
  });
});
