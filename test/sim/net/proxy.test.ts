/**
 * The proxy socket kind (src/sim/net/proxy.ts) and the socket-layer pieces it needs (src/sim/net/tcp_endpoint.ts):
 * TPROXY's assigned listener, transparent bind of a non-local source, EADDRINUSE, ephemeral ports, the lookups of
 * TPROXY and `-m socket`; then seed 003 packet by packet (examples/seed003-tproxy/topology.yaml).
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/errors";
import { Prng } from "../../../src/util/prng";
import { TCP_ACK, TCP_RST, TCP_SYN } from "../../../src/wire/packet";
import type { Packet } from "../../../src/wire/packet";
import { parseTcpdumpText } from "../../../src/wire/text";
import { TcpStack } from "../../../src/sim/net/tcp_endpoint";
import { buildEngine, loadTopology } from "../../../src/sim/net/topology";
import { installProxy, parseProxyConfig } from "../../../src/sim/net/proxy";
import { defaultSocketRegistry } from "../../../src/sim/net/registry";
import { ip } from "./helpers";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

function pkt(line: string): Packet {
  const r = parseTcpdumpText(`${line}\n`);
  if (r.packets.length !== 1) throw new Error(`bad packet text: ${line}`);
  return r.packets[0];
}

function stack(local: string[] = ["10.2.0.254"]): TcpStack {
  const locals = new Set(local.map(ip));
  return new TcpStack({
    prng: new Prng("proxy-test"),
    isLocal: (a) => locals.has(a),
    sourceFor: () => locals.values().next().value,
  });
}

function tcpFlags(p: Packet): number {
  return p.l4.kind === "tcp" ? p.l4.flags : -1;
}

describe("tcp_endpoint: TPROXY accept", () => {
  const syn = pkt("IP 10.1.0.1.40000 > 10.2.0.11.80: Flags [S], seq 1000, win 64240, length 0");
  const assigned = {
    protocol: "tcp" as const,
    address: 0,
    port: 8080,
    transparent: true,
    listening: true,
  };

  it("a listener on 8080 does not take a SYN to port 80 by itself (no TPROXY assignment)", () => {
    const s = stack();
    s.listen({ address: 0, port: 8080, transparent: true });
    expect(s.rcv(syn, 0), "got a socket for 10.2.0.11:80, want none").toBeUndefined();
  });

  it("the listener TPROXY assigned takes it; the request's local address is the original destination", () => {
    const s = stack();
    s.listen({ address: 0, port: 8080, transparent: true });
    const r = s.rcv(syn, 0, assigned);
    expect(r?.to).toContain("(LISTEN, transparent, TPROXY)");
    expect(r?.replies.map((o) => tcpFlags(o.packet))).toEqual([TCP_SYN | TCP_ACK]);
    const synack = r!.replies[0].packet;
    expect(synack.ip.src, "SYN-ACK from the real server's address").toBe(ip("10.2.0.11"));
    expect(synack.l4.kind === "tcp" && synack.l4.srcPort).toBe(80);
    const req = s.find(ip("10.2.0.11"), 80, ip("10.1.0.1"), 40000);
    expect(req?.state).toBe("SYN_RECV");
    expect(req?.transparent, "request inherits IP_TRANSPARENT").toBe(true);
  });

  it("lookup: the request and the listener, as TPROXY and -m socket see them", () => {
    const s = stack();
    s.listen({ address: 0, port: 8080, transparent: true });
    s.rcv(syn, 0, assigned);
    const q = {
      protocol: "tcp" as const,
      saddr: ip("10.1.0.1"),
      sport: 40000,
      daddr: ip("10.2.0.11"),
      dport: 80,
    };
    expect(s.lookup(q, "established")).toEqual({
      protocol: "tcp",
      address: ip("10.2.0.11"),
      port: 80,
      transparent: true,
      listening: false,
    });
    expect(s.lookup({ ...q, daddr: ip("10.1.0.2"), dport: 8080 }, "listener")?.port).toBe(8080);
    expect(s.lookup({ ...q, sport: 40001 }, "established")).toBeUndefined();
    expect(s.lookup({ ...q, protocol: "udp" }, "established")).toBeUndefined();
  });
});

describe("tcp_endpoint: transparent connect", () => {
  it("a non-local source needs IP_TRANSPARENT (inet_bind: EADDRNOTAVAIL)", () => {
    const s = stack();
    const sk = s.connect({ src: ip("10.1.0.1"), sport: 40000, dst: ip("10.2.0.11"), dport: 80 }, 0);
    expect(sk.error).toBe("EADDRNOTAVAIL");
    expect(s.takeOutput(), "nothing sent").toEqual([]);
    const ok = s.connect(
      { src: ip("10.1.0.1"), sport: 40000, dst: ip("10.2.0.11"), dport: 80, transparent: true },
      0,
    );
    expect(ok.error).toBeUndefined();
    const out = s.takeOutput();
    expect(out.length).toBe(1);
    expect(out[0].packet.ip.src, "SYN from the client's address").toBe(ip("10.1.0.1"));
  });

  it("bind() of an address:port another socket holds fails with EADDRINUSE, even towards another server", () => {
    const s = stack();
    const base = { src: ip("10.1.0.1"), sport: 40000, dport: 80, transparent: true, bind: true };
    expect(s.connect({ ...base, dst: ip("10.2.0.11") }, 0).error).toBeUndefined();
    const second = s.connect({ ...base, dst: ip("10.2.0.12") }, 0);
    expect(second.error).toBe("EADDRINUSE");
    // without bind() (connect's own 4-tuple check) another server is fine
    expect(s.connect({ ...base, bind: false, dst: ip("10.2.0.12") }, 0).error).toBeUndefined();
    expect(s.portHeld(ip("10.1.0.1"), 40001)).toBe(false);
    expect(s.portHeld(0, 40000), "wildcard conflicts with any address").toBe(true);
  });

  it("sport 0 picks an ephemeral port in the range whose 4-tuple is free", () => {
    const s = stack();
    const a = s.connect({ sport: 0, dst: ip("10.2.0.11"), dport: 80, ephemeralPorts: [50000, 50001] }, 0);
    const b = s.connect({ sport: 0, dst: ip("10.2.0.11"), dport: 80, ephemeralPorts: [50000, 50001] }, 0);
    const c = s.connect({ sport: 0, dst: ip("10.2.0.11"), dport: 80, ephemeralPorts: [50000, 50001] }, 0);
    expect([a.lport, b.lport].sort()).toEqual([50000, 50001]);
    expect(c.error, "range exhausted for this destination").toBe("EADDRNOTAVAIL");
    const d = s.connect({ sport: 0, dst: ip("10.2.0.12"), dport: 80, ephemeralPorts: [50000, 50001] }, 0);
    expect(d.error, "another destination reuses the ports").toBeUndefined();
  });
});

describe("proxy config", () => {
  const fail = (path: readonly (string | number)[], code: string, message: string): never => {
    throw new Error(`${code} at ${path.join(".")}: ${message}`);
  };

  it("reads listen, transparent, upstream, source, ports", () => {
    expect(
      parseProxyConfig(
        {
          listen: "0.0.0.0:8080",
          transparent: true,
          upstream: "10.2.0.11:80",
          source: "client",
          ports: [1, 2],
        },
        fail,
      ),
    ).toEqual({
      address: 0,
      port: 8080,
      transparent: true,
      upstream: { address: ip("10.2.0.11"), port: 80 },
      source: "client",
      ports: [1, 2],
      label: "proxy",
    });
    expect(parseProxyConfig({ listen: ":3128" }, fail)).toMatchObject({
      address: 0,
      port: 3128,
      transparent: false,
      upstream: "original",
      source: "own",
    });
  });

  it("rejects bad values at their key", () => {
    expect(() => parseProxyConfig({}, fail)).toThrow(/TOPO_BAD_PROXY at : a proxy needs listen/);
    expect(() => parseProxyConfig({ listen: "1.2.3.4" }, fail)).toThrow(/at listen: expected ADDR:PORT/);
    expect(() => parseProxyConfig({ listen: ":80", source: "peer" }, fail)).toThrow(/at source:/);
    expect(() => parseProxyConfig({ listen: ":80", ports: [3, 2] }, fail)).toThrow(/at ports:/);
    expect(() => parseProxyConfig({ listen: ":80", transparent: "yes" }, fail)).toThrow(/at transparent:/);
  });

  it("is registered as a socket kind, and a topology error points into the socket's mapping", () => {
    expect(defaultSocketRegistry().names()).toContain("proxy");
    const text = [
      "nodes:",
      "  p:",
      '    interfaces: [{name: eth0, mac: "02:00:00:00:00:01", addresses: ["10.0.0.1/24"]}]',
      "    sockets:",
      "      - kind: proxy",
      '        listen: "nowhere"',
    ].join("\n");
    let e: unknown;
    try {
      loadTopology(text, { file: "t.yaml", readFile: () => "" });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(InputError);
    const d = (e as InputError).diagnostic;
    expect(d.code).toBe("TOPO_BAD_PROXY");
    expect(`${d.line}:${d.column}`, "at the listen value").toBe("6:17");
  });
});

/** client -- proxy -- server, the proxy a router with TPROXY; `source` picks the upstream source. */
function tproxyNet(source: "client" | "own"): string {
  return `
seed: 7
nodes:
  client:
    interfaces: [{ name: eth0, mac: "02:00:00:00:00:01", addresses: ["10.1.0.1/24"] }]
    routes: ["default via 10.1.0.2 dev eth0"]
  proxy:
    interfaces:
      - { name: eth0, mac: "02:00:00:00:00:02", addresses: ["10.1.0.2/24"] }
      - { name: eth1, mac: "02:00:00:00:00:03", addresses: ["10.2.0.254/24"] }
    routes: ["local 0.0.0.0/0 dev lo table 100"]
    rules: ["fwmark 1 lookup 100"]
    sysctl: { net.ipv4.ip_forward: 1 }
    iptables: |
      *mangle
      :DIVERT - [0:0]
      -A PREROUTING -p tcp -m socket --transparent -j DIVERT
      -A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 8080 --tproxy-mark 0x1/0x1
      -A DIVERT -j MARK --set-xmark 0x1/0xffffffff
      -A DIVERT -j ACCEPT
      COMMIT
    sockets: [{ kind: proxy, listen: "0.0.0.0:8080", transparent: true, source: ${source}, ports: [33000, 33000] }]
  server:
    interfaces: [{ name: eth0, mac: "02:00:00:00:00:04", addresses: ["10.2.0.11/24"] }]
    routes: ["default via 10.2.0.254 dev eth0"]
    sockets: [{ port: 80, protocol: tcp }]
links:
  - { name: a, ends: [client:eth0, proxy:eth0] }
  - { name: b, ends: [proxy:eth1, server:eth0] }
traffic:
  - { at: 0, connect: { name: c, node: client, to: "10.2.0.11:80", sport: 40000, send: 3000, close: true } }
`;
}

describe("proxy through TPROXY", () => {
  for (const source of ["client", "own"] as const) {
    it(`relays the bytes and the close both ways (source: ${source})`, () => {
      const topo = loadTopology(tproxyNet(source), { file: "t.yaml", readFile: () => "" });
      buildEngine(topo).run({ until: 120 });
      const flow = topo.flows.get("c")!;
      expect(flow.error, "client flow error").toBeUndefined();
      expect(flow.sock!.history).toEqual([
        "SYN_SENT",
        "ESTABLISHED",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
      ]);
      const server = topo.linux.get("server")!.tcp.connections;
      expect(server.length).toBe(1);
      const want = source === "client" ? "10.2.0.11:80 10.1.0.1:40000" : "10.2.0.11:80 10.2.0.254:33000";
      expect(server[0].name, "the server's view of the upstream connection").toBe(want);
      expect(server[0].bytesIn).toBe(3000);
      const proxy = topo.linux.get("proxy")!.tcp.connections;
      expect(proxy.map((s) => s.name)).toEqual([
        "10.2.0.11:80 10.1.0.1:40000",
        source === "client" ? "10.1.0.1:40000 10.2.0.11:80" : "10.2.0.254:33000 10.2.0.11:80",
      ]);
      expect(proxy[0].bytesIn, "proxy read the client's bytes").toBe(3000);
      expect(proxy[1].bytesOut, "and wrote them upstream").toBe(3000);
      expect(proxy[0].transparent && proxy[1].transparent).toBe(source === "client");
    });
  }

  it("the upstream connect failing (refused) resets the client", () => {
    const text = tproxyNet("client").replace("sockets: [{ port: 80, protocol: tcp }]", "sockets: []");
    const topo = loadTopology(text, { file: "t.yaml", readFile: () => "" });
    const r = buildEngine(topo).run({ until: 10 });
    const flow = topo.flows.get("c")!;
    expect(flow.sock!.error ?? flow.error).toBe("ECONNRESET");
    const rst = r.wire.find(
      (w) => w.from.node === "proxy" && w.packet.l4.kind === "tcp" && w.packet.l4.flags & TCP_RST,
    );
    expect(rst?.packet.ip.src, "the proxy's RST comes from the server's address").toBe(ip("10.2.0.11"));
  });

  it("installProxy on a bare stack reports its pairs", () => {
    const s = stack(["10.2.0.254"]);
    const proxy = installProxy(s, {
      address: 0,
      port: 8080,
      transparent: true,
      upstream: "original",
      source: "client",
      ports: [32768, 60999],
      label: "p",
    });
    const assigned = { protocol: "tcp" as const, address: 0, port: 8080, transparent: true, listening: true };
    const syn = pkt("IP 10.1.0.1.40000 > 10.2.0.11.80: Flags [S], seq 1000, win 64240, length 0");
    const synack = s.rcv(syn, 0, assigned)!.replies[0].packet;
    const iss = synack.l4.kind === "tcp" ? synack.l4.seq : 0;
    const ack = pkt(
      `IP 10.1.0.1.40000 > 10.2.0.11.80: Flags [.], seq 1001, ack ${(iss + 1) >>> 0}, win 502, length 0`,
    );
    const r = s.rcv(ack, 0);
    expect(r?.to).toContain("accepted");
    expect(proxy.pairs.length).toBe(1);
    expect(proxy.pairs[0].upstream.name).toBe("10.1.0.1:40000 10.2.0.11:80");
    expect(r!.replies.map((o) => tcpFlags(o.packet))).toEqual([TCP_SYN]);
  });
});

describe("examples/seed003-tproxy/topology.yaml", () => {
  it("the second login's upstream bind collides with the first (EADDRINUSE) and the client is reset", () => {
    const file = resolve(root, "examples/seed003-tproxy/topology.yaml");
    const topo = loadTopology(readFileSync(file, "utf8"), {
      file: "topology.yaml",
      readFile: (p) => readFileSync(resolve(dirname(file), p), "utf8"),
    });
    buildEngine(topo).run({ until: 10 });
    expect(topo.flows.get("login1")!.sock!.state).toBe("TIME_WAIT");
    expect(topo.flows.get("login2")!.sock!.error).toBe("ECONNRESET");
    const proxy = topo.linux.get("proxy")!.tcp.connections.map((s) => `${s.name} ${s.error ?? s.state}`);
    expect(proxy).toEqual([
      "10.2.0.11:80 10.1.0.1:40000 CLOSE",
      "10.1.0.1:40000 10.2.0.11:80 TIME_WAIT",
      "10.2.0.12:80 10.1.0.1:40000 CLOSE",
      "10.1.0.1:40000 10.2.0.12:80 EADDRINUSE",
    ]);
    expect(topo.linux.get("server2")!.tcp.connections, "server2 never sees the second login").toEqual([]);
  });
});
