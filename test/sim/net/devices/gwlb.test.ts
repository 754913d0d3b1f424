import { describe, expect, it } from "vitest";
import { Gwlb, GwlbAppliance, GwlbEndpoint } from "../../../../src/sim/net/devices/gwlb";
import { parseStaticRoute } from "../../../../src/sim/net/devices/common";
import type { StaticRoute } from "../../../../src/sim/net/devices/common";
import { NetEngine } from "../../../../src/sim/net/engine";
import { Prng } from "../../../../src/util/prng";
import { geneveDecapsulate, isGeneveFailure, parseAwsGwlbOptions } from "../../../../src/wire/geneve";
import { ICMP_ECHOREPLY } from "../../../../src/wire/packet";
import { Probe, flow, iface, ip, linux, pkt } from "./helpers";

const r = (t: string) => parseStaticRoute(t) as StaticRoute;

const APPLIANCE_HOST = `
hostname: appliance
interfaces:
  - { name: eth0, mac: "02:00:00:00:00:35", addresses: ["192.168.101.235/24"] }
  - { name: gwlb0, mac: "02:00:00:00:00:36", addresses: ["169.254.0.1/30"] }
routes:
  - default dev gwlb0
sysctl:
  net.ipv4.ip_forward: 1
  net.ipv4.conf.all.send_redirects: 0
`;

const SERVER_HOST = `
hostname: server
interfaces:
  - { name: eth0, mac: "02:00:00:00:00:c5", addresses: ["52.94.212.197/24"] }
routes:
  - default dev eth0
sockets:
  - { address: 0.0.0.0, port: 443, protocol: tcp }
`;

/** app -- gwlbe -- internet, gwlbe -- gwlb -- appliance; the policy is the appliance's FORWARD chain. */
function network(forwardRules: string) {
  const app = new Probe("app");
  const gwlbe = new GwlbEndpoint({
    name: "gwlbe",
    interfaces: [
      iface("eth0", "10.2.101.1/24"),
      iface("eth1", "10.255.0.1/30"),
      iface("eth2", "52.94.212.1/24"),
    ],
    address: ip("10.255.0.1"),
    gwlb: ip("10.255.0.2"),
    endpointId: 0x74a11ad96ec49886n,
    routes: [r("default dev eth2")],
  });
  const gwlb = new Gwlb({
    name: "gwlb",
    interfaces: [iface("eth0", "10.255.0.2/30"), iface("eth1", "192.168.101.247/24")],
    address: ip("192.168.101.247"),
    appliances: [ip("192.168.101.235")],
    routes: [r("10.255.0.1/32 dev eth0")],
    prng: new Prng("gwlb"),
  });
  const applianceNode = linux("appliance", APPLIANCE_HOST, forwardRules);
  const appliance = new GwlbAppliance({ name: "appliance", sim: applianceNode.sim });
  const server = linux("server", SERVER_HOST);
  const links = [
    {
      name: "app",
      ends: [
        { node: "app", iface: "eth0" },
        { node: "gwlbe", iface: "eth0" },
      ],
    },
    {
      name: "pl",
      ends: [
        { node: "gwlbe", iface: "eth1" },
        { node: "gwlb", iface: "eth0" },
      ],
    },
    {
      name: "geneve",
      ends: [
        { node: "gwlb", iface: "eth1" },
        { node: "appliance", iface: "eth0" },
      ],
    },
    {
      name: "igw",
      ends: [
        { node: "gwlbe", iface: "eth2" },
        { node: "server", iface: "eth0" },
      ],
    },
  ];
  const engine = new NetEngine([app, gwlbe, gwlb, appliance, server], links);
  return { engine, app, appliance, gwlb };
}

// A stateful appliance (a conntrack rule makes the kernel register its conntrack hooks, 4.10+).
const STATEFUL =
  "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n";

const ping = pkt("10.2.101.47 > 52.94.212.197: ICMP echo request, id 7, seq 1, length 64");
const syn = pkt("10.2.101.47.48354 > 52.94.212.197.443: Flags [S], seq 1000, win 64240, length 0");

describe("GWLB endpoint service (seed 002)", () => {
  it("carries a ping through the appliance and back; the appliance's conntrack sees the inner flow", () => {
    const { engine, app, appliance } = network(STATEFUL);
    engine.inject(0, "gwlbe", "eth0", ping);
    const res = engine.run();
    if (process.env.DBG)
      for (const e of res.events)
        for (const h of e.hops) console.log(e.time, h.node, h.inIface, h.summary, "|", h.fate);
    const replies = app.got.filter((g) => g.packet.l4.kind === "icmp" && g.packet.l4.type === ICMP_ECHOREPLY);
    expect(replies.length, `got ${replies.length} echo replies, want 1`).toBe(1);
    expect(flow(replies[0].packet)).toBe("52.94.212.197:7 > 10.2.101.47:7");
    const ct = appliance.conntrackLines().join("\n");
    expect(ct).toMatch(/icmp .*src=10\.2\.101\.47 dst=52\.94\.212\.197 type=8 code=0 id=7/);
    // Both directions crossed the GENEVE link twice (to and from the appliance).
    expect(res.wire.filter((w) => w.link === "geneve")).toHaveLength(4);
  });

  it("puts the AWS options on the wire to the appliance, and the appliance echoes them", () => {
    const { engine } = network(STATEFUL);
    engine.inject(0, "gwlbe", "eth0", ping);
    const res = engine.run();
    const onWire = res.wire.filter((w) => w.link === "geneve").map((w) => geneveDecapsulate(w.packet));
    const metas = onWire.map((f) => (isGeneveFailure(f) ? undefined : parseAwsGwlbOptions(f.header.options)));
    expect(metas[0]?.endpointId).toBe(0x74a11ad96ec49886n);
    expect(metas[1], "returned with the same options").toEqual(metas[0]);
    expect(metas[2]?.flowCookie, "the reply direction is the same flow").toBe(metas[0]?.flowCookie);
  });

  it("completes a TCP handshake through the appliance (SYN, SYN-ACK seen as one ESTABLISHED flow)", () => {
    const { engine, app, appliance } = network(STATEFUL);
    engine.inject(0, "gwlbe", "eth0", syn);
    engine.run();
    const synack = app.got.find((g) => g.packet.l4.kind === "tcp" && g.packet.l4.flags === 0x12);
    expect(synack, "got no SYN-ACK at the application host").toBeDefined();
    expect(appliance.conntrackLines().join("\n")).toMatch(
      /tcp +6 \d+ SYN_RECV src=10\.2\.101\.47 dst=52\.94\.212\.197 sport=48354 dport=443/,
    );
  });

  it("a policy that blocks ICMP drops the ping and still passes TCP", () => {
    const { engine, app, appliance } = network(
      "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p icmp -j DROP\nCOMMIT\n",
    );
    engine.inject(0, "gwlbe", "eth0", ping);
    engine.inject(1, "gwlbe", "eth0", syn);
    engine.run();
    expect(
      app.got.filter((g) => g.packet.l4.kind === "icmp"),
      "no echo reply",
    ).toHaveLength(0);
    const tcp = app.got.filter((g) => g.packet.l4.kind === "tcp");
    expect(
      tcp.length,
      "the SYN-ACK came back (and its retransmissions: the probe never ACKs)",
    ).toBeGreaterThan(0);
    expect(tcp.every((g) => g.packet.l4.kind === "tcp" && g.packet.l4.flags === 0x12)).toBe(true);
    expect(appliance.counters.dropped, "one inner packet not returned").toBe(1);
  });
});
