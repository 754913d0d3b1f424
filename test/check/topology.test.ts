/**
 * `ctsim test` for networks (src/check/topology.ts): a two-host topology written inline, packets injected at a
 * node, the topology's own traffic, and the network keys (path, loop, received, sent, socket) failing with
 * per-field diffs at the check file's line.
 */
import { describe, expect, it } from "vitest";
import { runCheckText } from "../../src/check/run";
import { memEnv } from "./fixtures";

// a router that sends everything back to a NAT host, which sends it back: a loop for any un-NATed packet
const TOPO = `seed: 1
nodes:
  client:
    interfaces: [{ name: eth0, mac: "02:00:00:00:00:01", addresses: ["10.0.0.5/24"] }]
    routes: ["default via 10.0.0.1 dev eth0"]
  router:
    interfaces: [{ name: eth0, mac: "02:00:00:00:00:02", addresses: ["10.0.0.1/24"] }]
    routes: ["default via 10.0.0.2 dev eth0"]
    sysctl: { net.ipv4.ip_forward: 1, net.ipv4.conf.all.send_redirects: 0 }
  nat:
    interfaces: [{ name: eth0, mac: "02:00:00:00:00:03", addresses: ["10.0.0.2/24"] }]
    routes: ["default via 10.0.0.1 dev eth0"]
    sysctl: { net.ipv4.ip_forward: 1, net.ipv4.conf.all.send_redirects: 0 }
  server:
    interfaces: [{ name: eth0, mac: "02:00:00:00:00:04", addresses: ["10.0.0.9/24"] }]
    sockets: [{ port: 80, protocol: tcp }]
links:
  - { name: lan, ends: [client:eth0, router:eth0, nat:eth0, server:eth0] }
traffic:
  - { at: 0, connect: { name: web, node: client, to: "10.0.0.9:80", sport: 40000, send: 10 } }
  - { at: 0, connect: { name: closed, node: client, to: "10.0.0.9:81", sport: 40001 } }
`;

function run(cases: string, head = "topology: net.yaml\n") {
  const r = runCheckText(`${head}cases:\n${cases}`, "/t/net.test.yaml", memEnv({ "/t/net.yaml": TOPO }));
  return r;
}

const LOOP_CASE = `  - name: loop
    node: router
    packets: |
      eth0 In IP 10.0.0.5.1000 > 8.8.8.8.53: Flags [F], seq 1, win 512, length 0
    expect:
`;

describe("topology check files: injected packets", () => {
  it("a loop between two routers: path, loop, ICMP time exceeded at the sender", () => {
    const r = run(
      LOOP_CASE +
        `      - packet: 1
        path: [router, nat, router, nat]
        loop: { nodes: [router, nat], reason: ttl-decreasing, min_ttl: 1 }
      - { packet: 1, node: client, received: [{ proto: icmp, type: 11, code: 0 }] }
      - { packet: 1, node: router, fate: forwarded, leaves: [{ ttl: 63, dst: 8.8.8.8 }] }
      - { packet: 1, node: server, received: none }
`,
    );
    expect(r.errors).toEqual([]);
    expect(r.cases[0].status, JSON.stringify(r.cases[0].diffs)).toBe("passed");
  });

  it("failures name the field, with want and got and the line of the key", () => {
    const r = run(
      LOOP_CASE +
        `      - packet: 1
        path: [router, server]
        loop: { min_ttl: 5 }
      - { packet: 1, node: client, received: none }
`,
    );
    const d = r.cases[0].diffs.map((x) => [x.field, x.want, x.loc.line]);
    expect(d[0]).toEqual(["path", "router > server", 9]);
    expect(r.cases[0].diffs[0].got).toMatch(/^router > nat > router > nat/);
    expect(d[1]).toEqual(["loop.min_ttl", "5", 10]);
    expect(r.cases[0].diffs[1].got).toMatch(/^1 \(/);
    expect(d[2][0]).toBe("received");
    expect(r.cases[0].diffs[2].got).toContain("ICMP time exceeded");
  });

  it("an unknown injection node or interface is an error of the case at node:", () => {
    const r = run(`  - name: x
    node: nowhere
    packets: |
      eth0 In IP 10.0.0.5.1000 > 8.8.8.8.53: Flags [F], seq 1, win 512, length 0
    expect:
      - { packet: 1, path: [router] }
`);
    expect(r.cases[0].status).toBe("error");
    expect([r.cases[0].error?.code, r.cases[0].error?.line, r.cases[0].error?.column]).toEqual([
      "CHECK_UNKNOWN_NODE",
      4,
      11,
    ]);
  });
});

describe("topology check files: the topology's traffic", () => {
  it("sockets: an established flow, a refused one, and the server side by remote address", () => {
    const r = run(`  - name: traffic
    expect:
      - { flow: web, socket: { state: ESTABLISHED, error: none, retransmissions: 0 } }
      - { flow: closed, socket: { state: CLOSE, error: ECONNREFUSED, established: false } }
      - { node: server, socket: { remote: "10.0.0.5:40000", history: [SYN_RECV, ESTABLISHED] } }
      - { node: server, match: { dport: 81, flags: S }, fate: local, leaves: [{ flags: R. }] }
      - { node: client, sent: { src: 10.0.0.5 } }
`);
    expect(r.cases[0].status, JSON.stringify(r.cases[0].diffs)).toBe("passed");
  });

  it("socket and match failures are diffs; an unknown flow says which flows exist", () => {
    const r = run(`  - name: traffic
    expect:
      - { flow: web, socket: { state: CLOSE, retransmissions: 2 } }
      - { flow: nope, socket: ESTABLISHED }
      - { node: server, match: { dport: 99 }, fate: local }
      - { node: server, received: { dport: 81 } }
`);
    const fields = r.cases[0].diffs.map((d) => d.field);
    // every received packet but the one to port 81 differs
    expect(fields).toEqual([
      "socket.state",
      "socket.retransmissions",
      "flow",
      "match",
      "received[0].dport",
      "received[2].dport",
      "received[3].dport",
    ]);
    expect(r.cases[0].diffs[2].got).toContain("flows: web, closed");
  });
});

describe("topology check files: schema", () => {
  it("network keys in a single-host check file are errors at their key", () => {
    const r = runCheckText(
      `host: h.yaml\nrules: r.v4\ncases:\n  - name: x\n    packets: "eth0 In IP 1.1.1.1.1 > 2.2.2.2.2: Flags [S], seq 1, win 1, length 0"\n    expect:\n      - path: [a]\n`,
      "/t/h.test.yaml",
      memEnv({
        "/t/h.yaml": "hostname: h\ninterfaces: [{name: eth0, addresses: [1.1.1.2/24]}]\n",
        "/t/r.v4": "",
      }),
    );
    expect(r.errors.map((e) => [e.code, e.line])).toEqual([["CHECK_BAD_KEY", 7]]);
  });

  it("host keys beside topology: are errors; an unreadable topology is an error of the file", () => {
    expect(
      run(
        "  - name: x\n    expect: [{ flow: web, socket: ESTABLISHED }]\n",
        "topology: net.yaml\nrules: r.v4\n",
      ).errors[0].code,
    ).toBe("CHECK_BAD_KEY");
    const r = run(
      "  - name: x\n    expect: [{ flow: web, socket: ESTABLISHED }]\n",
      "topology: missing.yaml\n",
    );
    expect([r.errors[0].code, r.errors[0].line]).toEqual(["CHECK_READ", 1]);
  });
});
